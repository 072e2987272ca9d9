"""The README documents every configuration variable the operator reads."""

from __future__ import annotations

from mirage_operator.config import Config
from tests.conftest import REPO


def test_every_config_variable_is_in_the_readme_table() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [name for name in Config.variables() if f"| `{name}` |" not in readme]
    assert missing == []
