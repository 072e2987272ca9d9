"""The sample custom resources of ``examples/``, shipped in the package as ``_examples``.

``examples/`` at the repository root is the source; the package reaches it through the
``_examples`` link, which a wheel build turns into a copy. The operator validates them to warm
up its schema engine; ``mirage sandbox`` applies them by default.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent / "_examples"
