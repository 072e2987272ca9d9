"""The real kubectl binary against the emulated API: get, describe, apply (client- and
server-side), diff, explain, wait, delete — with a test CRD and with built-ins."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mirage_sandbox.apiserver import APIServer, run_apiserver_in_thread
from mirage_sandbox.apiserver.managed import LAST_APPLIED
from tests.conftest import require_tool
from tests.sandbox.conftest import deployment, widget, widget_crd


class Kubectl:
    """Runs the real kubectl against one server with an isolated HOME and cache."""

    def __init__(self, binary: str, kubeconfig: Path, home: Path) -> None:
        self.binary = binary
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}

    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[APIServer, Kubectl]]:
    binary = require_tool("kubectl")
    # client-go never sends bearer tokens over plain HTTP, so this server cannot require them.
    with run_apiserver_in_thread() as server:
        server.install_crds([widget_crd()])
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        yield server, Kubectl(binary, kubeconfig, tmp_path)


def manifest(tmp_path: Path, *documents: dict[str, Any]) -> str:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return str(path)


def test_get_and_describe_built_ins(cluster: tuple[APIServer, Kubectl]) -> None:
    server, kubectl = cluster
    server.create(deployment("web", replicas=2))
    namespaces = kubectl("get", "namespaces").stdout
    assert "default" in namespaces and "kube-system" in namespaces and "Active" in namespaces
    assert "default" in kubectl("get", "serviceaccounts", "-A").stdout
    server.wait_for  # noqa: B018 - the controller sets status right away; poll below
    got = kubectl("get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}")
    assert got.stdout in {"", "2"}
    described = kubectl("describe", "deployment", "web").stdout
    assert re.search(r"^Name:\s+web$", described, re.MULTILINE) and "nginx:1.27" in described
    # The server's defaults show as a real server's do.
    assert re.search(
        r"^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$", described, re.M
    )
    assert "Replicas:" in described


def test_apply_client_side_get_describe_and_delete_custom_resource(
    cluster: tuple[APIServer, Kubectl], tmp_path: Path
) -> None:
    server, kubectl = cluster
    path = manifest(tmp_path, widget("w1", replicas=2))
    assert "widget.test.mirage.dev/w1 created" in kubectl("apply", "-f", path).stdout
    assert "widget.test.mirage.dev/w1 unchanged" in kubectl("apply", "-f", path).stdout
    path = manifest(tmp_path, widget("w1", replicas=3))
    assert "widget.test.mirage.dev/w1 configured" in kubectl("apply", "-f", path).stdout
    assert server.get("widgets", "w1", "default")["spec"]["replicas"] == 3
    server.patch(
        "widgets",
        "w1",
        {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Fine"}]}},
        "default",
        subresource="status",
    )
    table = kubectl("get", "widgets").stdout.splitlines()
    assert table[0].split() == ["NAME", "REPLICAS", "READY"]
    assert table[1].split() == ["w1", "3", "True"]
    described = kubectl("describe", "wdg", "w1").stdout
    assert "Kind:         Widget" in described and "Reason:  Fine" in described
    kubectl("wait", "--for=condition=Ready", "widget/w1", "--timeout=10s")
    assert 'widget.test.mirage.dev "w1" deleted' in kubectl("delete", "-f", path).stdout
    assert server.find("widgets", "w1", "default") is None


def test_apply_server_side_conflicts_and_force(
    cluster: tuple[APIServer, Kubectl], tmp_path: Path
) -> None:
    server, kubectl = cluster
    path = manifest(tmp_path, widget("ssa", replicas=2))
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", path).stdout
    managers = {
        e["manager"] for e in server.get("widgets", "ssa", "default")["metadata"]["managedFields"]
    }
    assert managers == {"kubectl"}
    server.apply(widget("ssa", replicas=5), field_manager="someone-else", force=True)
    conflict = kubectl("apply", "--server-side", "-f", path, check=False)
    assert conflict.returncode != 0
    assert 'conflict with "someone-else": .spec.replicas' in conflict.stderr
    kubectl("apply", "--server-side", "--force-conflicts", "-f", path)
    assert server.get("widgets", "ssa", "default")["spec"]["replicas"] == 2


def test_diff_uses_server_side_dry_run(cluster: tuple[APIServer, Kubectl], tmp_path: Path) -> None:
    server, kubectl = cluster
    path = manifest(tmp_path, widget("d", replicas=2))
    kubectl("apply", "-f", path)
    assert kubectl("diff", "-f", path, check=False).returncode == 0
    revision = server.store.revision
    changed = manifest(tmp_path, widget("d", replicas=4))
    result = kubectl("diff", "-f", changed, check=False)
    assert result.returncode == 1
    assert "-  replicas: 2" in result.stdout and "+  replicas: 4" in result.stdout
    assert server.store.revision == revision
    assert server.get("widgets", "d", "default")["spec"]["replicas"] == 2


def test_explain_reads_the_crd_schema(cluster: tuple[APIServer, Kubectl]) -> None:
    _, kubectl = cluster
    explained = kubectl("explain", "widget.spec.replicas").stdout
    assert "FIELD: replicas <integer>" in explained and "How many widgets." in explained
    assert "DeploymentSpec" in kubectl("explain", "deployment.spec").stdout


def test_server_side_validation_errors_reach_kubectl(
    cluster: tuple[APIServer, Kubectl], tmp_path: Path
) -> None:
    _, kubectl = cluster
    invalid = kubectl("apply", "-f", manifest(tmp_path, widget("bad", replicas=0)), check=False)
    assert invalid.returncode != 0
    # kubectl rewords the Status from its details: kind, name, then each cause.
    assert 'The Widget "bad" is invalid: spec.replicas: Invalid value: 0' in invalid.stderr
    unknown = kubectl("apply", "-f", manifest(tmp_path, widget("odd", colour="red")), check=False)
    assert unknown.returncode != 0 and 'unknown field "spec.colour"' in unknown.stderr


def test_apply_and_delete_built_ins_with_strategic_merge(
    cluster: tuple[APIServer, Kubectl], tmp_path: Path
) -> None:
    server, kubectl = cluster
    path = manifest(tmp_path, deployment("smp"))
    kubectl("apply", "-f", path)
    server.patch(
        "deployments",
        "smp",
        {"spec": {"template": {"metadata": {"annotations": {"restarted": "now"}}}}},
        "default",
    )
    changed = deployment("smp", replicas=3)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    assert "configured" in kubectl("apply", "-f", manifest(tmp_path, changed)).stdout
    live = server.get("deployments", "smp", "default")
    assert live["spec"]["replicas"] == 3
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    # Someone else's annotation survives the client-side apply's three-way merge.
    assert live["spec"]["template"]["metadata"]["annotations"] == {"restarted": "now"}
    patches = [
        r
        for r in server.requests
        if r.method == "PATCH"
        and r.resource == "deployments"
        and r.field_manager.startswith("kubectl")
    ]
    assert patches[-1].content_type.startswith("application/strategic-merge-patch+json")
    kubectl("delete", "deployment", "smp")
    assert server.find("deployments", "smp", "default") is None


def test_typed_create_commands_send_protobuf(cluster: tuple[APIServer, Kubectl]) -> None:
    server, kubectl = cluster
    kubectl("create", "namespace", "team-x")
    kubectl("create", "configmap", "settings", "-n", "team-x", "--from-literal=a=b")
    kubectl("create", "secret", "generic", "creds", "-n", "team-x", "--from-literal=k=v")
    kubectl("create", "serviceaccount", "bot", "-n", "team-x")
    token = kubectl("create", "token", "bot", "-n", "team-x", "--audience=vault").stdout.strip()
    assert server.get("configmaps", "settings", "team-x")["data"] == {"a": "b"}
    assert server.get("secrets", "creds", "team-x")["data"] == {"k": "dg=="}
    authenticated, user, audiences = server.review_token(token, ["vault"])
    assert authenticated and user["username"] == "system:serviceaccount:team-x:bot"
    assert audiences == ["vault"]
    bodies = {r.resource: r.content_type for r in server.requests if r.verb == "create"}
    assert bodies["configmaps"] == "application/vnd.kubernetes.protobuf"
    kubectl("delete", "namespace", "team-x")


def test_client_side_then_server_side_apply_migrates_ownership(
    cluster: tuple[APIServer, Kubectl], tmp_path: Path
) -> None:
    server, kubectl = cluster
    path = manifest(tmp_path, widget("mig", replicas=2))
    kubectl("apply", "-f", path)
    result = kubectl("apply", "--server-side", "-f", path)
    assert "serverside-applied" in result.stdout and "Warning" not in result.stderr
    entries = server.get("widgets", "mig", "default")["metadata"]["managedFields"]
    by_manager = {(e["manager"], e["operation"]) for e in entries}
    assert ("kubectl", "Apply") in by_manager
    assert ("kubectl-client-side-apply", "Update") not in by_manager
    assert server.get("widgets", "mig", "default")["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    "make",
    [lambda r: deployment("up", replicas=r), lambda r: widget("up", replicas=r)],
    ids=["deployment", "custom-resource"],
)
def test_server_side_apply_by_kubectl_upgrades_client_side_applied_objects(
    cluster: tuple[APIServer, Kubectl], tmp_path: Path, make: Any
) -> None:
    """Two client-side applies, then ``apply --server-side`` (manager ``kubectl``) changing a
    value: no conflict, since the value is the one the last-applied annotation recorded."""
    server, kubectl = cluster
    kubectl("apply", "-f", manifest(tmp_path, make(2)))
    kubectl("apply", "-f", manifest(tmp_path, make(3)))
    plural = "deployments" if make(1)["kind"] == "Deployment" else "widgets"
    applied = kubectl("apply", "--server-side", "-f", manifest(tmp_path, make(4)))
    assert "serverside-applied" in applied.stdout
    live = server.get(plural, "up", "default")
    assert live["spec"]["replicas"] == 4
    owners = {
        e["manager"]: e["operation"]
        for e in live["metadata"]["managedFields"]
        if "f:replicas" in (e.get("fieldsV1") or {}).get("f:spec", {})
    }
    assert owners == {"kubectl": "Apply"}
    last = yaml.safe_load(live["metadata"]["annotations"][LAST_APPLIED])
    assert last["spec"]["replicas"] == 4, "the annotation follows the server-side apply"


def test_server_side_apply_still_conflicts_where_another_manager_changed_the_value(
    cluster: tuple[APIServer, Kubectl], tmp_path: Path
) -> None:
    server, kubectl = cluster
    kubectl("apply", "-f", manifest(tmp_path, deployment("moved", replicas=2)))
    kubectl("apply", "-f", manifest(tmp_path, deployment("moved", replicas=2)))
    kubectl("scale", "deployment/moved", "--replicas=3")  # manager kubectl-scale, not recorded
    refused = kubectl(
        "apply",
        "--server-side",
        "-f",
        manifest(tmp_path, deployment("moved", replicas=4)),
        check=False,
    )
    assert refused.returncode != 0 and "conflict" in refused.stderr
    assert server.get("deployments", "moved", "default")["spec"]["replicas"] == 3
    # Another field manager opts out of the upgrade, as on a real server.
    kubectl("apply", "-f", manifest(tmp_path, deployment("other", replicas=2)))
    kubectl("apply", "-f", manifest(tmp_path, deployment("other", replicas=2)))
    other = kubectl(
        "apply",
        "--server-side",
        "--field-manager=ci",
        "-f",
        manifest(tmp_path, deployment("other", replicas=5)),
        check=False,
    )
    assert other.returncode != 0 and "conflict" in other.stderr


def test_explain_shows_int_or_string_as_a_real_server_does(
    cluster: tuple[APIServer, Kubectl],
) -> None:
    """Built-ins: ``<IntOrString>`` (kube-openapi publishes a oneOf in v3). CRD fields with
    ``x-kubernetes-int-or-string``: ``<Object>``, a real server's known quirk
    (kubernetes/kubernetes#130946)."""
    server, kubectl = cluster
    for field in ("maxSurge", "maxUnavailable"):
        explained = kubectl("explain", f"deployment.spec.strategy.rollingUpdate.{field}").stdout
        assert f"FIELD: {field} <IntOrString>" in explained
    assert "targetPort\t<IntOrString>" in kubectl("explain", "service.spec.ports").stdout
    v2 = server.openapi_document(["v2"])["definitions"]
    assert v2["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"] == "string"
