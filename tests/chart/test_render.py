"""What ``helm template`` renders for each values file: valid objects, only those asked for,
and a Deployment that runs the operator as configured."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mirage_operator.config import Config
from mirage_operator.durations import parse_interval
from tests.chart.helm import (
    CASES,
    NAMESPACE,
    Helm,
    Rendered,
    case_values,
    keys,
    notes,
    values_args,
)
from tests.conftest import REPO
from tests.schemas import validate_monitoring_object

K8S_VERSIONS = ("1.33", kubernetes_validate.latest_version())
FULLNAME = "mirage-operator"  # `helm install mirage` with no overrides


@pytest.mark.parametrize("case", CASES)
def test_every_object_passes_its_schema(render: Callable[[str], Rendered], case: str) -> None:
    objects = render(case).objects
    assert objects
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            validate_monitoring_object(obj)
        else:
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(obj, version, strict=True)


def expected_objects(values: dict[str, Any]) -> set[tuple[str, str | None, str]]:
    """(kind, namespace, name) of everything the values ask for, and nothing else."""
    crds = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
    namespaces = values["watch"]["namespaces"]
    wanted: set[tuple[str, str | None, str]] = {("Deployment", NAMESPACE, FULLNAME)}
    if values["crds"]["install"]:
        wanted |= {("CustomResourceDefinition", None, crd["metadata"]["name"]) for crd in crds}
    if values["serviceAccount"]["create"]:
        wanted.add(("ServiceAccount", NAMESPACE, values["serviceAccount"]["name"] or FULLNAME))
    if values["rbac"]["create"]:
        wanted |= {("ClusterRole", None, FULLNAME), ("ClusterRoleBinding", None, FULLNAME)}
        for namespace in namespaces:
            wanted |= {("Role", namespace, FULLNAME), ("RoleBinding", namespace, FULLNAME)}
        operator_mode = values["vault"]["auth"]["mode"] == "operator"
        if namespaces or operator_mode or values["leaderElection"]["enabled"]:
            own = f"{FULLNAME}-self"
            wanted |= {("Role", NAMESPACE, own), ("RoleBinding", NAMESPACE, own)}
    if values["metrics"]["enabled"]:
        wanted.add(("Service", NAMESPACE, f"{FULLNAME}-metrics"))
        if values["metrics"]["serviceMonitor"]["enabled"]:
            wanted.add(("ServiceMonitor", NAMESPACE, FULLNAME))
    if values["dashboard"]["enabled"]:
        where = values["dashboard"]["namespace"] or NAMESPACE
        wanted.add(("ConfigMap", where, f"{FULLNAME}-dashboard"))
    if values["podDisruptionBudget"]["enabled"]:
        wanted.add(("PodDisruptionBudget", NAMESPACE, FULLNAME))
    if values["networkPolicy"]["enabled"]:
        wanted.add(("NetworkPolicy", NAMESPACE, FULLNAME))
    return wanted


@pytest.mark.parametrize("case", CASES)
def test_only_what_the_values_ask_for(render: Callable[[str], Rendered], case: str) -> None:
    rendered = render(case)
    assert len(keys(rendered.objects)) == len(rendered.objects), "duplicate objects"
    assert keys(rendered.objects) == expected_objects(rendered.values)


def test_the_values_files_cover_every_optional_object(render: Callable[[str], Rendered]) -> None:
    kinds = {obj["kind"] for case in CASES for obj in render(case).objects}
    assert kinds >= {
        "ServiceMonitor", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy", "Role",
        "ClusterRole", "CustomResourceDefinition", "ServiceAccount", "Service",
    }  # fmt: skip
    # And the minimal file really is minimal.
    assert {obj["kind"] for obj in render("minimal").objects} == {"Deployment"}


def container(rendered: Rendered) -> dict[str, Any]:
    (operator,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(operator)


def operator_environment(rendered: Rendered) -> dict[str, str]:
    """The container's environment as the operator process would see it."""
    env = {}
    for item in container(rendered)["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif item["name"] == "MIRAGE_LEADER_ELECTION_IDENTITY":
            assert item["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
            env[item["name"]] = "mirage-operator-pod"
        else:
            assert item["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
            env[item["name"]] = NAMESPACE
    return env


@pytest.mark.parametrize("case", CASES)
def test_every_variable_the_chart_sets_is_a_config_variable(
    render: Callable[[str], Rendered], case: str
) -> None:
    names = [item["name"] for item in container(render(case))["env"]]
    assert len(names) == len(set(names))
    assert set(names) <= set(Config.variables()), set(names) - set(Config.variables())


def test_every_config_variable_is_set_from_values(render: Callable[[str], Rendered]) -> None:
    # A new Config field must reach the chart (a value, or a fixed setting like the namespace).
    names = {item["name"] for item in container(render("default"))["env"]}
    assert names == set(Config.variables()), set(Config.variables()) - names


def _labels(pairs: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs.items()))


def expected_config(values: dict[str, Any], ca_path: str) -> dict[str, Any]:
    """Config fields the values determine, by field name."""
    vault, auth, operator, platform = (
        values["vault"], values["vault"]["auth"], values["operator"], values["platform"],
    )  # fmt: skip
    election = values["leaderElection"]
    return {
        "namespaces": tuple(values["watch"]["namespaces"]),
        "operator_namespace": NAMESPACE,
        "field_manager": operator["fieldManager"],
        "resync_interval": float(operator["resyncInterval"]),
        "kube_api_qps": float(operator["kubeAPIQPS"]),
        "kube_api_burst": int(operator["kubeAPIBurst"]),
        "metrics_port": values["metrics"]["port"] if values["metrics"]["enabled"] else 0,
        "log_level": operator["logLevel"],
        "log_format": operator["logFormat"],
        "hmac_key_secret": operator["hmacKeySecret"],
        "ingress_class": platform["ingressClass"],
        "ingress_controller_namespace": platform["ingressControllerNamespace"],
        "prometheus_namespace": platform["prometheusNamespace"],
        "monitoring_labels": _labels(platform["monitoringLabels"]),
        "dashboard_labels": _labels(platform["dashboardLabels"]),
        "mesh_default": platform["meshDefault"],
        "mesh_trust_domain": platform["meshTrustDomain"],
        "cluster_domain": platform["clusterDomain"],
        "oauth2_proxy_url": platform["oauth2ProxyUrl"],
        "oauth2_proxy_service": platform["oauth2ProxyService"],
        "vault_address": vault["address"],
        "vault_ca_path": ca_path,
        "vault_tls_server_name": vault["tlsServerName"],
        "vault_namespace": vault["namespace"],
        "vault_auth_mode": auth["mode"],
        "vault_auth_mount": auth["mount"],
        "vault_role_template": auth["roleTemplate"],
        "vault_service_account": auth["serviceAccount"],
        "vault_token_audience": auth["tokenAudience"],
        "vault_token_expiration": auth["tokenExpiration"],
        "vault_operator_role": auth["operatorRole"],
        "vault_operator_service_account": values["serviceAccount"]["name"] or FULLNAME,
        "vault_allowed_paths": tuple(vault["allowedPaths"]),
        "vault_allowed_database_roles": tuple(vault["allowedDatabaseRoles"]),
        "vault_timeout": float(vault["timeout"]),
        "vault_retries": vault["retries"],
        "vault_default_refresh_interval": parse_interval(vault["defaultRefreshInterval"]),
        "vault_token_secret": operator["vaultTokenSecret"],
        "vault_token_key_secret": operator["vaultTokenKeySecret"],
        "leader_election": election["enabled"],
        "leader_election_lease": FULLNAME,
        "leader_election_identity": "mirage-operator-pod",
        "lease_duration": float(election["leaseDuration"]),
        "renew_deadline": float(election["renewDeadline"]),
        "retry_period": float(election["retryPeriod"]),
        "shard_namespaces": (),
    }


def mounted_ca(rendered: Rendered) -> str:
    """Path of the Vault CA file the pod mounts, from its volumes; "" when none."""
    spec = rendered.one("Deployment")["spec"]["template"]["spec"]
    ca = rendered.values["vault"]["caCert"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container(rendered)["volumeMounts"]:
        volume = volumes[mount["name"]]
        source = volume.get("configMap") or volume.get("secret")
        if source:
            assert mount["readOnly"] is True
            assert source.get("name", source.get("secretName")) == (ca["configMap"] or ca["secret"])
            (item,) = source["items"]
            assert item["key"] == ca["key"]
            return str(Path(mount["mountPath"]) / item["path"])
    return ""


@pytest.mark.parametrize("case", CASES)
def test_the_operator_reads_the_configuration_the_values_describe(
    render: Callable[[str], Rendered], case: str
) -> None:
    rendered = render(case)
    config = Config.from_env(operator_environment(rendered))
    ca_path = mounted_ca(rendered)
    assert bool(ca_path) == bool(
        rendered.values["vault"]["caCert"]["configMap"]
        or rendered.values["vault"]["caCert"]["secret"]
    )
    expected = expected_config(rendered.values, ca_path)
    assert expected.keys() == set(Config.variables().values())
    assert {name: getattr(config, name) for name in expected} == expected


@pytest.mark.parametrize("case", CASES)
def test_pod_runs_restricted_with_its_token(render: Callable[[str], Rendered], case: str) -> None:
    rendered = render(case)
    deployment = rendered.one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == rendered.values["replicaCount"]
    # A new pod stands by before an old one stops (docs/adr/0110).
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    # The operator needs its ServiceAccount token to talk to the API server.
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    user = rendered.values["securityContext"]["runAsUser"]
    assert pod["securityContext"].get("runAsUser") == user and user > 0
    security = container(rendered)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    # With a read-only root, /tmp is the one writable place.
    tmp = next(m for m in container(rendered)["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp["name"])


def test_openshift_can_leave_the_user_to_the_platform(render_with: Callable[..., Rendered]) -> None:
    pod = render_with("securityContext.runAsUser=null", "securityContext.runAsGroup=null")
    security = pod.one("Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert "runAsUser" not in security and "runAsGroup" not in security
    assert security["runAsNonRoot"] is True


@pytest.mark.parametrize("case", CASES)
def test_liveness_probe_reaches_kopfs_endpoint(
    render: Callable[[str], Rendered], case: str
) -> None:
    rendered = render(case)
    operator = container(rendered)
    port = rendered.values["livenessProbe"]["port"]
    assert operator["args"] == ["run", f"--liveness=http://0.0.0.0:{port}/healthz"]
    probe = operator["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert probe["path"] == "/healthz"
    assert ports[probe["port"]] == port
    for key in ("periodSeconds", "failureThreshold", "timeoutSeconds", "initialDelaySeconds"):
        assert operator["livenessProbe"][key] == rendered.values["livenessProbe"][key]


@pytest.mark.parametrize("case", CASES)
def test_image_resources_and_scheduling(render: Callable[[str], Rendered], case: str) -> None:
    rendered = render(case)
    values = rendered.values
    operator = container(rendered)
    image = values["image"]
    if image["digest"]:
        assert operator["image"] == f"{image['repository']}@{image['digest']}"
    else:
        assert operator["image"] == f"{image['repository']}:{image['tag'] or '0.1.0'}"
    wanted = {
        section: {k: str(v) for k, v in values["resources"][section].items() if str(v)}
        for section in ("requests", "limits")
    }
    assert operator["resources"] == {k: v for k, v in wanted.items() if v}
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert pod.get("tolerations", []) == values["tolerations"]
    assert pod.get("nodeSelector", {}) == values["nodeSelector"]
    assert pod.get("priorityClassName", "") == values["priorityClassName"]
    assert pod.get("imagePullSecrets", []) == values["imagePullSecrets"]
    labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels.items() >= values["podLabels"].items()


@pytest.mark.parametrize("case", CASES)
def test_metrics_service_and_service_monitor_find_the_pod(
    render: Callable[[str], Rendered], case: str
) -> None:
    rendered = render(case)
    if not rendered.values["metrics"]["enabled"]:
        assert "metrics" not in {p["name"] for p in container(rendered)["ports"]}
        return
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = rendered.one("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == rendered.values["metrics"]["port"]
    assert port["targetPort"] == "metrics"
    assert "metrics" in {p["name"] for p in container(rendered)["ports"]}
    for monitor in rendered.of_kind("ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
        # Prometheus selects it by the same labels as the operator's own ServiceMonitors.
        monitoring = rendered.values["platform"]["monitoringLabels"]
        assert monitor["metadata"]["labels"].items() >= monitoring.items()


def test_pod_disruption_budget_selects_the_pod(render: Callable[[str], Rendered]) -> None:
    for case in ("ha", "everything-on"):
        rendered = render(case)
        budget = rendered.one("PodDisruptionBudget")["spec"]
        pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
        assert budget["selector"]["matchLabels"].items() <= pod_labels.items()
        assert budget["maxUnavailable"] == rendered.values["podDisruptionBudget"]["maxUnavailable"]
        assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_network_policy_allows_only_api_server_vault_dns_and_scrapes(
    render: Callable[[str], Rendered], render_with: Callable[..., Rendered]
) -> None:
    rendered = render("everything-on")
    values = rendered.values["networkPolicy"]
    policy = rendered.one("NetworkPolicy")["spec"]
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    # Ingress: the metrics port, from Prometheus's namespace, and nothing else.
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    (source,) = ingress["from"]
    prometheus = rendered.values["platform"]["prometheusNamespace"]
    assert source["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": prometheus}
    # Egress: exactly three destinations.
    api, vault, dns = policy["egress"]
    assert {p["port"] for p in api["ports"]} == set(values["apiServer"]["ports"])
    assert [t["ipBlock"]["cidr"] for t in api["to"]] == values["apiServer"]["cidrs"]
    assert vault["ports"] == [{"port": values["vault"]["port"], "protocol": "TCP"}]
    (vault_peer,) = vault["to"]
    assert vault_peer["namespaceSelector"]["matchLabels"] == values["vault"]["namespaceSelector"]
    assert vault_peer["podSelector"]["matchLabels"] == values["vault"]["podSelector"]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {
        (values["dns"]["port"], "UDP"),
        (values["dns"]["port"], "TCP"),
    }
    (dns_peer,) = dns["to"]
    assert dns_peer["podSelector"]["matchLabels"] == values["dns"]["podSelector"]
    # Vault outside the cluster: by address instead of by selectors.
    external = render_with(
        "networkPolicy.enabled=true", "networkPolicy.vault.cidrs={192.0.2.10/32}"
    ).one("NetworkPolicy")["spec"]["egress"][1]
    assert external["to"] == [{"ipBlock": {"cidr": "192.0.2.10/32"}}]
    # Metrics off: no ingress at all.
    closed = render_with("networkPolicy.enabled=true", "metrics.enabled=false")
    assert closed.one("NetworkPolicy")["spec"]["ingress"] == []


def test_namespaced_scope_watches_only_the_listed_namespaces(
    render: Callable[[str], Rendered],
) -> None:
    rendered = render("namespaced-scope")
    env = operator_environment(rendered)
    listed = rendered.values["watch"]["namespaces"]
    assert env["MIRAGE_NAMESPACES"].split(",") == listed
    assert {r["metadata"]["namespace"] for r in rendered.of_kind("Role")} == {*listed, NAMESPACE}


def test_notes_tell_what_was_installed(helm: Helm) -> None:
    default = notes(helm)
    assert "watching every namespace" in default
    assert "kubectl apply -f examples/" in default
    tenant_account = case_values("default")["vault"]["auth"]["serviceAccount"]
    assert f"ServiceAccount named {tenant_account}," in default
    assert "paused" not in default
    namespaced = notes(helm, *values_args("namespaced-scope"), "--set", "replicaCount=0")
    listed = case_values("namespaced-scope")["watch"]["namespaces"]
    assert f"watching: {', '.join(listed)}." in namespaced
    assert "paused" in namespaced
    assert "as its own ServiceAccount" in namespaced


def test_replicas_spread_over_nodes_and_keep_one_through_a_drain(
    render: Callable[[str], Rendered],
) -> None:
    rendered = render("default")
    deployment = rendered.one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    budget = rendered.one("PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1 < deployment["spec"]["replicas"]


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value", "") for item in operator["env"]}


def test_shards_are_deployments_with_disjoint_namespaces_and_their_own_leases(
    render_with: Callable[..., Rendered], helm: Any
) -> None:
    rendered = render_with(
        "shards[0].name=a", "shards[0].namespaces={x,y}",
        "shards[1].name=b", "shards[1].namespaces={z}",
    )  # fmt: skip
    deployments = {d["metadata"]["name"]: d for d in rendered.of_kind("Deployment")}
    assert set(deployments) == {f"{FULLNAME}-a", f"{FULLNAME}-b"}
    a, b = _env(deployments[f"{FULLNAME}-a"]), _env(deployments[f"{FULLNAME}-b"])
    assert (a["MIRAGE_NAMESPACES"], b["MIRAGE_NAMESPACES"]) == ("x,y", "z")
    assert (a["MIRAGE_SHARD_NAMESPACES"], b["MIRAGE_SHARD_NAMESPACES"]) == ("x,y,z", "")
    assert a["MIRAGE_LEADER_ELECTION_LEASE"] == f"{FULLNAME}-a"
    assert b["MIRAGE_LEADER_ELECTION_LEASE"] == f"{FULLNAME}-b"
    selectors = [d["spec"]["selector"]["matchLabels"] for d in deployments.values()]
    assert selectors[0] != selectors[1]
    budgets = rendered.of_kind("PodDisruptionBudget")
    assert sorted(p["spec"]["selector"]["matchLabels"]["mirage.dev/shard"] for p in budgets) == [
        "a",
        "b",
    ]
    roles = {(r["metadata"]["namespace"]) for r in rendered.of_kind("Role")}
    assert {"x", "y", "z"} <= roles
    overlap = helm.template(
        "--set", "shards[0].name=a", "--set", "shards[0].namespaces={x}",
        "--set", "shards[1].name=b", "--set", "shards[1].namespaces={x}",
    )  # fmt: skip
    assert overlap.returncode != 0
    assert "namespace x is in two shards" in overlap.stderr


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (
            ["shards[0].name=a", "shards[0].namespaces={x}", "shards[1].name=a",
             "shards[1].namespaces={y}"],
            "two shards are named a",
        ),
        (["watch.namespaces={z}", "shards[0].name=a", "shards[0].namespaces={x}"],
         "shards and watch.namespaces: set one"),
        (["leaderElection.renewDeadline=20"], "renewDeadline must be shorter than"),
        (["leaderElection.retryPeriod=12"], "retryPeriod must be shorter than"),
    ],
    ids=["duplicate shard names", "shards and watched namespaces", "deadline", "retry period"],
)  # fmt: skip
def test_values_the_operator_would_refuse_fail_the_install(
    helm: Helm, values: list[str], reason: str
) -> None:
    result = helm.template(*[arg for value in values for arg in ("--set", value)])
    assert result.returncode != 0
    assert reason in result.stderr
