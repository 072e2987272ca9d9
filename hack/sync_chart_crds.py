"""Copy the generated files the Helm chart ships into ``charts/mirage-operator/files/``.

A chart can only read files inside its own directory, so it carries copies of:

- ``crds/*.yaml`` (the source of truth) as ``files/crds/*.yaml``, rendered by
  ``templates/crds.yaml``;
- the operator's Grafana dashboard, built in code by
  :func:`mirage_operator.render.dashboards.operator_dashboard`, as
  ``files/dashboards/mirage-operator.json``.

``tests/chart/test_chart_files.py`` fails when a copy drifts. Run after changing a CRD or the
dashboard: ``.venv/bin/python hack/sync_chart_crds.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mirage_operator.render.dashboards import operator_dashboard

REPO = Path(__file__).resolve().parent.parent
CRDS = REPO / "crds"
CHART_FILES = REPO / "charts" / "mirage-operator" / "files"
DASHBOARD_FILE = "mirage-operator.json"


def dashboard_json() -> str:
    """The operator dashboard as the chart ships it (the same serialisation as the operator's
    own dashboard ConfigMaps, plus a final newline)."""
    return json.dumps(operator_dashboard(), indent=2, sort_keys=True) + "\n"


def generated_files() -> dict[Path, bytes]:
    """Every file under ``files/`` this script owns, by path, with its expected content."""
    files = {CHART_FILES / "crds" / path.name: path.read_bytes() for path in CRDS.glob("*.yaml")}
    files[CHART_FILES / "dashboards" / DASHBOARD_FILE] = dashboard_json().encode()
    return files


def main() -> int:
    """Write the copies and remove stale ones; print what changed."""
    expected = generated_files()
    for directory in {path.parent for path in expected}:
        directory.mkdir(parents=True, exist_ok=True)
        # A CRD removed from crds/ must leave the chart too.
        for stale in sorted(set(directory.iterdir()) - set(expected)):
            stale.unlink()
            print(f"removed {stale.relative_to(REPO)}")
    for path, content in sorted(expected.items()):
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
