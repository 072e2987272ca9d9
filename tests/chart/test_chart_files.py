"""The chart's metadata and the files it copies from elsewhere in the repository."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable

import yaml

from hack.sync_chart_crds import CHART_FILES, generated_files
from mirage_operator.config import Config
from mirage_operator.render.dashboards import build_operator_dashboard, operator_dashboard
from tests.chart.helm import CHART, NAMESPACE, Rendered
from tests.conftest import REPO

SYNC = "run `.venv/bin/python hack/sync_chart_crds.py`"


def test_chart_metadata_follows_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "mirage-operator"
    assert chart["appVersion"] == project["version"], "Chart.yaml appVersion != pyproject version"


def test_chart_copies_are_up_to_date() -> None:
    expected = generated_files()
    # Every CRD in crds/ is copied, and nothing else sits beside the copies.
    assert {p.name for p in (REPO / "crds").glob("*.yaml")} <= {p.name for p in expected}
    present = {p for d in {p.parent for p in expected} if d.exists() for p in d.iterdir()}
    assert present == set(expected), f"files/ holds stale or missing copies: {SYNC}"
    for path, content in expected.items():
        assert path.read_bytes() == content, f"{path.relative_to(REPO)} is out of date: {SYNC}"


def test_crd_copies_equal_the_source_of_truth() -> None:
    # Independent of the script: the bytes under files/crds/ are those of crds/.
    for source in sorted((REPO / "crds").glob("*.yaml")):
        copy = CHART_FILES / "crds" / source.name
        assert copy.exists(), f"{copy.relative_to(REPO)} missing: {SYNC}"
        assert copy.read_bytes() == source.read_bytes(), f"{source.name} differs: {SYNC}"


def test_rendered_crds_have_the_source_spec(render: Callable[[str], Rendered]) -> None:
    sources = {
        doc["metadata"]["name"]: doc
        for doc in (yaml.safe_load(p.read_text()) for p in (REPO / "crds").glob("*.yaml"))
    }
    rendered = {crd["metadata"]["name"]: crd for crd in render("default").of_kind(
        "CustomResourceDefinition"
    )}  # fmt: skip
    assert rendered.keys() == sources.keys()
    for name, crd in rendered.items():
        assert crd["spec"] == sources[name]["spec"], name
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_crds_without_keep_have_no_resource_policy(render_with: Callable[..., Rendered]) -> None:
    rendered = render_with("crds.keep=false")
    crds = rendered.of_kind("CustomResourceDefinition")
    assert crds
    assert all("annotations" not in crd["metadata"] for crd in crds)


def test_dashboard_configmap_ships_the_operator_dashboard(
    render: Callable[[str], Rendered],
) -> None:
    rendered = render("everything-on")
    values = rendered.values
    (config_map,) = rendered.of_kind("ConfigMap")
    # The same data the operator's own builder produces, parsed back to the same dashboard.
    built = build_operator_dashboard(namespace=NAMESPACE, config=Config())
    assert config_map["data"] == built["data"]
    assert json.loads(config_map["data"]["mirage-operator.json"]) == operator_dashboard()
    meta = config_map["metadata"]
    assert meta["namespace"] == values["dashboard"]["namespace"]
    assert meta["annotations"]["grafana_folder"] == values["dashboard"]["folder"]
    # The sidecar's selector labels win over the extra labels.
    for key, value in {
        **values["dashboard"]["labels"],
        **values["platform"]["dashboardLabels"],
    }.items():
        assert meta["labels"][key] == value
