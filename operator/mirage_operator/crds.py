"""The Mirage CustomResourceDefinitions, read from ``crds/`` (shipped in the package as ``_crds``).

``crds/`` at the repository root is the source of truth; the package reaches it through the
``_crds`` link, which a wheel build turns into a copy.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

CRDS_DIR = Path(__file__).resolve().parent / "_crds"


@cache
def load_crds() -> tuple[dict[str, Any], ...]:
    """Every Mirage CRD, in file-name order."""
    return tuple(
        yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(CRDS_DIR.glob("*.yaml"))
    )


def crd_for(group: str, kind: str) -> dict[str, Any] | None:
    """The CRD defining ``kind`` in ``group``, or ``None``."""
    for crd in load_crds():
        if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind:
            return crd
    return None


def schema_for(api_version: str, kind: str) -> dict[str, Any] | None:
    """The openAPIV3Schema of ``kind`` at ``api_version`` (``group/version``), or ``None``."""
    group, _, version = api_version.rpartition("/")
    crd = crd_for(group, kind)
    if crd is None:
        return None
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    return None
