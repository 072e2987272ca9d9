"""Entry point of ``pulumi up`` (``Pulumi.yaml``: ``main: stacks/``): read the stack's
configuration and compose the platform (:func:`stacks.program.compose`)."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script: make the repository root importable, so that the
# program is the package `stacks` here as in the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stacks.program import compose

compose()
