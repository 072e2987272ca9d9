"""The chart grants exactly what the operator's resource table declares, where it is needed,
with the table's reason as the comment on every rule (docs/adr/0072)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import yaml

from mirage_operator.k8s import resources
from mirage_operator.k8s.resources import Resource
from mirage_operator.render.mirageservice import CHILD_KINDS
from tests.chart.helm import CASES, NAMESPACE, Rendered

Rule = tuple[str, str, frozenset[str], tuple[str, ...]]
"""(API group, resource[/subresource], verbs, resourceNames) of one grant."""

ROLE_KINDS = ("ClusterRole", "Role")


def resource_name(resource: Resource) -> str:
    return f"{resource.plural}/{resource.subresource}" if resource.subresource else resource.plural


def rule(resource: Resource, names: Iterable[str] = (), verbs: Iterable[str] | None = None) -> Rule:
    """The grant a table row calls for, optionally narrowed to object names or some verbs."""
    granted = resource.verbs if verbs is None else frozenset(verbs)
    return (resource.group, resource_name(resource), granted, tuple(names))


def rendered_rules(role: dict[str, Any]) -> set[Rule]:
    """The grants of a Role/ClusterRole, one per (group, resource)."""
    found = set()
    for item in role["rules"]:
        for group in item["apiGroups"]:
            for name in item["resources"]:
                found.add(
                    (group, name, frozenset(item["verbs"]), tuple(item.get("resourceNames", ())))
                )
    return found


def service_account_name(values: dict[str, Any]) -> str:
    # `helm install mirage` names everything mirage-operator unless told otherwise.
    return values["serviceAccount"]["name"] or "mirage-operator"


def expected_roles(values: dict[str, Any]) -> dict[tuple[str, str | None], set[Rule]]:
    """Rules by (kind, namespace) of each Role/ClusterRole, derived from ``resources.ALL``."""
    if not values["rbac"]["create"]:
        return {}
    shards = values["shards"]
    namespaces = [n for s in shards for n in s["namespaces"]] or values["watch"]["namespaces"]
    tenant_mode = values["vault"]["auth"]["mode"] == "tenant"
    narrowed = {resources.SERVICE_ACCOUNT_TOKEN, resources.LEASE}
    namespaced = {rule(r) for r in resources.ALL if r.namespaced and r not in narrowed}
    cluster = {rule(r) for r in resources.ALL if not r.namespaced}
    if shards:  # the first shard lists the Mirage kinds to report namespaces no shard owns
        surveyed = (resources.MIRAGE_SERVICE, resources.VAULT_SECRET, resources.SLO)
        cluster |= {rule(r, verbs=["list"]) for r in surveyed}
    tenant_token = (
        {rule(resources.SERVICE_ACCOUNT_TOKEN, [values["vault"]["auth"]["serviceAccount"]])}
        if tenant_mode
        else set()
    )
    roles: dict[tuple[str, str | None], set[Rule]] = {}
    if not namespaces:
        # kopf lists namespaces only when it does not watch the whole cluster.
        roles["ClusterRole", None] = (
            (cluster - {rule(resources.NAMESPACE)}) | namespaced | tenant_token
        )
    else:
        roles["ClusterRole", None] = cluster
        for namespace in namespaces:
            roles["Role", namespace] = namespaced | tenant_token
    own = set()
    operator = values["operator"]
    if namespaces:
        kept = [operator["vaultTokenSecret"], operator["vaultTokenKeySecret"]]
        own.add(rule(resources.SECRET, [operator["hmacKeySecret"], *kept]))
    if values["leaderElection"]["enabled"]:
        leases = [f"mirage-operator-{s['name']}" for s in shards] or ["mirage-operator"]
        own.add(rule(resources.LEASE, leases, verbs=["get", "update"]))
        own.add(rule(resources.LEASE, verbs=["create"]))  # RBAC cannot narrow a create
    if not tenant_mode:
        own.add(rule(resources.SERVICE_ACCOUNT_TOKEN, [service_account_name(values)]))
    if own:
        roles["Role", NAMESPACE] = own
    return roles


@pytest.mark.parametrize("case", CASES)
def test_rules_are_exactly_the_resource_table(render: Callable[[str], Rendered], case: str) -> None:
    rendered = render(case)
    actual: dict[tuple[str, str | None], set[Rule]] = {}
    for kind in ROLE_KINDS:
        for role in rendered.of_kind(kind):
            key = (kind, role["metadata"].get("namespace"))
            assert key not in actual, f"two {kind}s in {key[1]}"
            actual[key] = rendered_rules(role)
    assert actual == expected_roles(rendered.values)


def test_every_table_row_is_granted_by_the_default_install(
    render: Callable[[str], Rendered],
) -> None:
    # Cluster-wide and namespaced scope together grant every row: nothing in the table is
    # forgotten by the chart in both scopes.
    granted: dict[tuple[str, str], frozenset[str]] = {}
    for case in ("default", "namespaced-scope"):
        for kind in ROLE_KINDS:
            for role in render(case).of_kind(kind):
                for group, name, verbs, _ in rendered_rules(role):
                    granted[group, name] = granted.get((group, name), frozenset()) | verbs
    assert granted == {(r.group, resource_name(r)): r.verbs for r in resources.ALL}


_RULE_START = re.compile(r"^\s*- apiGroups:")


def comments_above_rules(document: str) -> list[list[str]]:
    """For each rule of a rendered Role/ClusterRole, the comment lines right above it."""
    blocks: list[list[str]] = []
    pending: list[str] = []
    for line in document.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        if _RULE_START.match(line):
            blocks.append(pending)
        pending = []
    return blocks


@pytest.mark.parametrize("case", CASES)
def test_every_rule_is_justified_by_the_table(render: Callable[[str], Rendered], case: str) -> None:
    why = {(r.group, resource_name(r)): r.why for r in resources.ALL}
    checked = 0
    for document in render(case).documents():
        role = yaml.safe_load(document)
        if not role or role["kind"] not in ROLE_KINDS:
            continue
        comments = comments_above_rules(document)
        assert len(comments) == len(role["rules"])
        for item, comment in zip(role["rules"], comments, strict=True):
            (group,), (name,) = item["apiGroups"], item["resources"]
            assert comment, f"{role['kind']} rule on {name} has no comment"
            assert comment[0] == why[group, name], f"{name}: comment is not the table's why"
            checked += 1
    assert checked or not render(case).values["rbac"]["create"]


@pytest.mark.parametrize("case", CASES)
def test_bindings_grant_the_roles_to_the_operator(
    render: Callable[[str], Rendered], case: str
) -> None:
    rendered = render(case)
    roles = {
        (r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"])
        for kind in ROLE_KINDS
        for r in rendered.of_kind(kind)
    }
    bindings = rendered.of_kind("ClusterRoleBinding") + rendered.of_kind("RoleBinding")
    assert len(bindings) == len(roles)
    subject = {
        "kind": "ServiceAccount",
        "name": service_account_name(rendered.values),
        "namespace": NAMESPACE,
    }
    bound = set()
    for binding in bindings:
        assert binding["subjects"] == [subject]
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        bound.add((ref["kind"], namespace, ref["name"]))
    assert bound == roles
    deployment = rendered.one("Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == subject["name"]


def test_children_applied_with_ssa_can_be_created() -> None:
    missing = [
        kind
        for api_version, kind in CHILD_KINDS
        if "create" not in resources.for_kind(api_version, kind).verbs
    ]
    assert not missing, f"no create verb for: {', '.join(missing)}"
