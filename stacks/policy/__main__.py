"""The Mirage policy pack: ``pulumi preview --policy-pack stacks/policy`` (rules in
:mod:`stacks.policy.policies`; every policy is mandatory)."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stacks.policy.pack import pack

pack()
