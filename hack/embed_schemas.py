"""Copy the VaultSecret and ServiceLevelObjective spec schemas into the MirageService CRD.

A MirageService embeds both (``spec.secrets[]`` and ``spec.monitoring.slos[]``). CRDs have no
``$ref``, so the copies are written here and ``tests/unit/test_crds.py`` fails when they
drift. Run after editing either CRD: ``.venv/bin/python hack/embed_schemas.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from mirage_operator.crds import embedded_secret_item, embedded_slo_item, spec_schema

CRDS = Path(__file__).resolve().parent.parent / "crds"


def _load(name: str) -> Any:
    return yaml.safe_load((CRDS / name).read_text(encoding="utf-8"))


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def main() -> int:
    """Rewrite ``crds/mirage.dev_mirageservices.yaml`` with fresh embedded copies."""
    path = CRDS / "mirage.dev_mirageservices.yaml"
    service = _load(path.name)
    spec = spec_schema(service)
    spec["properties"]["secrets"]["items"] = embedded_secret_item(
        service, _load("mirage.dev_vaultsecrets.yaml")
    )
    spec["properties"]["monitoring"]["properties"]["slos"]["items"] = embedded_slo_item(
        service, _load("mirage.dev_servicelevelobjectives.yaml")
    )
    text = yaml.dump(service, Dumper=_NoAliases, sort_keys=False, width=100, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
