"""The secure pod defaults (Pod Security Standards "restricted" + Mirage's own) on live pod
templates: a corpus of violations, each found by path and reverted, checked against the
official Deployment schema (kubernetes-validate) before and after."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from mirage_operator.render.podsecurity import (
    Violation,
    deployment_revert_patch,
    describe,
    harden,
    merge_patch,
)
from mirage_operator.render.workload import build_deployment
from mirage_sandbox.apiserver.patch import merge_patch as apply_merge_patch
from tests.unit.factories import ServiceFactory, service_body

K8S_VERSION = "1.33"
POD = "spec.template.spec"
APP = f"{POD}.containers[app]"
Template = dict[str, Any]


def _deployment(make_spec: ServiceFactory, **spec: Any) -> dict[str, Any]:
    deployment = build_deployment(
        name="api",
        namespace="shop",
        spec=make_spec(**spec),
        owner=service_body(),
        checksum="c",
    )
    deployment["metadata"]["resourceVersion"] = "42"
    return deployment


def _app(t: Template) -> dict[str, Any]:
    return t["spec"]["containers"][0]  # type: ignore[no-any-return]


def _app_ctx(t: Template) -> dict[str, Any]:
    return _app(t)["securityContext"]  # type: ignore[no-any-return]


def _pod_ctx(t: Template) -> dict[str, Any]:
    return t["spec"]["securityContext"]  # type: ignore[no-any-return]


def _set(**fields: Any) -> Callable[[Template], None]:
    return lambda t: t["spec"].update(fields)


def _app_set(**fields: Any) -> Callable[[Template], None]:
    return lambda t: _app_ctx(t).update(fields)


def _pod_set(**fields: Any) -> Callable[[Template], None]:
    return lambda t: _pod_ctx(t).update(fields)


def _host_path(t: Template) -> None:
    t["spec"]["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    _app(t)["volumeMounts"].append({"name": "host", "mountPath": "/host"})


def _nfs(t: Template) -> None:
    t["spec"]["volumes"].append({"name": "share", "nfs": {"server": "nfs", "path": "/x"}})
    _app(t)["volumeMounts"].append({"name": "share", "mountPath": "/share"})


def _host_port(t: Template) -> None:
    _app(t)["ports"][0]["hostPort"] = 8080


def _sidecar(list_name: str, **ctx: Any) -> Callable[[Template], None]:
    def add(t: Template) -> None:
        container: dict[str, Any] = {"name": "side", "image": "busybox:1.36"}
        if ctx:
            container["securityContext"] = ctx
        t["spec"].setdefault(list_name, []).append(container)

    return add


def _annotate(key: str, value: str) -> Callable[[Template], None]:
    return lambda t: t["metadata"].setdefault("annotations", {}).update({key: value})


def _drop_pod_seccomp(t: Template) -> None:
    del _pod_ctx(t)["seccompProfile"]


SIDE_DEFAULTS = {
    "securityContext.allowPrivilegeEscalation",
    "securityContext.readOnlyRootFilesystem",
    "securityContext.capabilities.drop",
}

# (mutation of a secure template, paths of the violations it introduces)
CORPUS: dict[str, tuple[Callable[[Template], None], set[str]]] = {
    "hostNetwork": (_set(hostNetwork=True), {f"{POD}.hostNetwork"}),
    "hostPID": (_set(hostPID=True), {f"{POD}.hostPID"}),
    "hostIPC": (_set(hostIPC=True), {f"{POD}.hostIPC"}),
    "all-host-namespaces": (
        _set(hostNetwork=True, hostPID=True, hostIPC=True),
        {f"{POD}.hostNetwork", f"{POD}.hostPID", f"{POD}.hostIPC"},
    ),
    # A real API server refuses privileged (or CAP_SYS_ADMIN) with allowPrivilegeEscalation
    # false, so a writer turns both on.
    "privileged": (
        _app_set(privileged=True, allowPrivilegeEscalation=True),
        {f"{APP}.securityContext.privileged", f"{APP}.securityContext.allowPrivilegeEscalation"},
    ),
    "cap-add-cap-sys-admin": (
        _app_set(allowPrivilegeEscalation=True, capabilities={"add": ["CAP_SYS_ADMIN"]}),
        {
            f"{APP}.securityContext.allowPrivilegeEscalation",
            f"{APP}.securityContext.capabilities.add",
            f"{APP}.securityContext.capabilities.drop",
        },
    ),
    "cap-add-sys-admin": (
        _app_set(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
        {f"{APP}.securityContext.capabilities.add"},
    ),
    "cap-add-mixed": (
        _app_set(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "NET_RAW"]}),
        {f"{APP}.securityContext.capabilities.add"},
    ),
    "cap-drop-not-all": (
        _app_set(capabilities={"drop": ["NET_RAW"]}),
        {f"{APP}.securityContext.capabilities.drop"},
    ),
    "cap-drop-missing": (
        _app_set(capabilities={}),
        {f"{APP}.securityContext.capabilities.drop"},
    ),
    "privilege-escalation": (
        _app_set(allowPrivilegeEscalation=True),
        {f"{APP}.securityContext.allowPrivilegeEscalation"},
    ),
    "container-run-as-root-allowed": (
        _app_set(runAsNonRoot=False),
        {f"{APP}.securityContext.runAsNonRoot"},
    ),
    "pod-run-as-root-allowed": (
        _pod_set(runAsNonRoot=False),
        {f"{POD}.securityContext.runAsNonRoot"},
    ),
    "container-uid-0": (_app_set(runAsUser=0), {f"{APP}.securityContext.runAsUser"}),
    "pod-uid-0": (_pod_set(runAsUser=0), {f"{POD}.securityContext.runAsUser"}),
    "root-groups": (
        _pod_set(runAsGroup=0, fsGroup=0, supplementalGroups=[0, 5000]),
        {
            f"{POD}.securityContext.runAsGroup",
            f"{POD}.securityContext.fsGroup",
            f"{POD}.securityContext.supplementalGroups",
        },
    ),
    "writable-root": (
        _app_set(readOnlyRootFilesystem=False),
        {f"{APP}.securityContext.readOnlyRootFilesystem"},
    ),
    "pod-seccomp-unconfined": (
        _pod_set(seccompProfile={"type": "Unconfined"}),
        {f"{POD}.securityContext.seccompProfile"},
    ),
    "pod-seccomp-missing": (_drop_pod_seccomp, {f"{POD}.securityContext.seccompProfile"}),
    "container-seccomp-unconfined": (
        _app_set(seccompProfile={"type": "Unconfined"}),
        {f"{APP}.securityContext.seccompProfile"},
    ),
    "pod-apparmor-unconfined": (
        _pod_set(appArmorProfile={"type": "Unconfined"}),
        {f"{POD}.securityContext.appArmorProfile"},
    ),
    "container-apparmor-unconfined": (
        _app_set(appArmorProfile={"type": "Unconfined"}),
        {f"{APP}.securityContext.appArmorProfile"},
    ),
    "apparmor-annotation-unconfined": (
        _annotate("container.apparmor.security.beta.kubernetes.io/app", "unconfined"),
        {"spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]"},
    ),
    "seccomp-annotation-unconfined": (
        _annotate("seccomp.security.alpha.kubernetes.io/pod", "unconfined"),
        {"spec.template.metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]"},
    ),
    "proc-mount-unmasked": (
        _app_set(procMount="Unmasked"),
        {f"{APP}.securityContext.procMount"},
    ),
    "selinux-spc": (
        _pod_set(seLinuxOptions={"type": "spc_t", "user": "system_u", "level": "s0:c1"}),
        {
            f"{POD}.securityContext.seLinuxOptions.type",
            f"{POD}.securityContext.seLinuxOptions.user",
        },
    ),
    "host-process": (
        _app_set(windowsOptions={"hostProcess": True}),
        {f"{APP}.securityContext.windowsOptions.hostProcess"},
    ),
    "unsafe-sysctl": (
        _pod_set(
            sysctls=[
                {"name": "net.ipv4.tcp_syncookies", "value": "1"},
                {"name": "kernel.msgmax", "value": "65536"},
            ]
        ),
        {f"{POD}.securityContext.sysctls[kernel.msgmax]"},
    ),
    "host-path-volume": (_host_path, {f"{POD}.volumes[host].hostPath"}),
    "nfs-volume": (_nfs, {f"{POD}.volumes[share].nfs"}),
    "host-port": (_host_port, {f"{APP}.ports[8080].hostPort"}),
    "token-automount": (
        _set(automountServiceAccountToken=True),
        {f"{POD}.automountServiceAccountToken"},
    ),
    "added-sidecar": (
        _sidecar("containers"),
        {f"{POD}.containers[side].{p}" for p in SIDE_DEFAULTS},
    ),
    "added-privileged-init": (
        _sidecar(
            "initContainers",
            privileged=True,
            allowPrivilegeEscalation=True,
            readOnlyRootFilesystem=True,
            capabilities={"drop": ["ALL"], "add": ["NET_ADMIN"]},
        ),
        {
            f"{POD}.initContainers[side].securityContext.privileged",
            f"{POD}.initContainers[side].securityContext.allowPrivilegeEscalation",
            f"{POD}.initContainers[side].securityContext.capabilities.add",
        },
    ),
    "added-ephemeral": (
        _sidecar("ephemeralContainers", runAsUser=0),
        {f"{POD}.ephemeralContainers[side].{p}" for p in SIDE_DEFAULTS}
        | {f"{POD}.ephemeralContainers[side].securityContext.runAsUser"},
    ),
}

# Allowed by the restricted profile: nothing is reverted.
ALLOWED: dict[str, Callable[[Template], None]] = {
    "net-bind-service": _app_set(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
    "container-seccomp-localhost": _app_set(
        seccompProfile={"type": "Localhost", "localhostProfile": "p.json"}
    ),
    "apparmor-runtime-default": _annotate(
        "container.apparmor.security.beta.kubernetes.io/app", "runtime/default"
    ),
    "safe-sysctl": _pod_set(
        sysctls=[{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    ),
    # Not Pod Security controls (ADR 0080): the default user namespace, a shared process
    # namespace, host-independent volume types, a non-root user of the container's own.
    "host-users": _set(hostUsers=True),
    "share-process-namespace": _set(shareProcessNamespace=True),
    "csi-volume": lambda t: t["spec"]["volumes"].append(
        {"name": "c", "csi": {"driver": "secrets-store.csi.k8s.io"}}
    ),
    "container-uid": _app_set(runAsUser=2000),
    "secure-sidecar": _sidecar(
        "containers",
        allowPrivilegeEscalation=False,
        readOnlyRootFilesystem=True,
        capabilities={"drop": ["ALL"]},
    ),
}


def _validate(deployment: dict[str, Any]) -> None:
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {
            "secrets": [
                {
                    "name": "db",
                    "vault": {"path": "shop/db"},
                    "expose": {"mode": "files", "mountPath": "/db"},
                }
            ]
        },
        {"config": {"data": {"a": "1"}, "mountPath": "/etc/app"}},
        {"autoscaling": {"maxReplicas": 4, "targetCPUUtilization": 60}},
    ],
    ids=["plain", "secret-files", "config-files", "autoscaling"],
)
def test_the_builder_meets_every_rule(make_spec: ServiceFactory, spec: dict[str, Any]) -> None:
    deployment = _deployment(make_spec, **spec)
    assert harden(deployment["spec"]["template"]).violations == []
    assert deployment_revert_patch(deployment) == ({}, [])


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_each_violation_is_found_by_path_and_reverted(make_spec: ServiceFactory, case: str) -> None:
    mutate, expected = CORPUS[case]
    secure = _deployment(make_spec)
    live = copy.deepcopy(secure)
    mutate(live["spec"]["template"])
    _validate(live)  # a value a real API server accepts

    hardened = harden(live["spec"]["template"])

    assert {v.path for v in hardened.violations} == expected
    assert all(v.control for v in hardened.violations)
    assert harden(hardened.template).violations == []
    fixed = {**live, "spec": {**live["spec"], "template": hardened.template}}
    _validate(fixed)
    patch, violations = deployment_revert_patch(live)
    assert violations == hardened.violations
    assert patch["metadata"] == {"resourceVersion": "42"}
    assert apply_merge_patch(live, patch)["spec"] == fixed["spec"]


@pytest.mark.parametrize(
    "case",
    # Not these: what the builder never set (extra items, groups, sysctls, SELinux), and the
    # pod's user, which the operator's own apply sets back (the revert only removes uid 0).
    sorted(
        c
        for c in CORPUS
        if not c.startswith(("added-", "cap-", "root-", "unsafe-", "selinux", "pod-uid"))
    ),
)
def test_a_violation_of_the_app_container_reverts_to_the_built_template(
    make_spec: ServiceFactory, case: str
) -> None:
    """Where the builder's value is the secure one, reverting gives back exactly that."""
    secure = _deployment(make_spec)
    live = copy.deepcopy(secure)
    CORPUS[case][0](live["spec"]["template"])
    fixed = harden(live["spec"]["template"]).template
    annotations = fixed["metadata"].get("annotations", {})
    assert fixed["spec"] == secure["spec"]["template"]["spec"]
    assert annotations == secure["spec"]["template"]["metadata"]["annotations"]


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_what_the_restricted_profile_allows_is_left_alone(
    make_spec: ServiceFactory, case: str
) -> None:
    live = _deployment(make_spec)
    ALLOWED[case](live["spec"]["template"])
    _validate(live)
    assert harden(live["spec"]["template"]).violations == []


def test_a_host_path_volume_goes_with_its_mounts(make_spec: ServiceFactory) -> None:
    live = _deployment(make_spec)
    _host_path(live["spec"]["template"])
    fixed = harden(live["spec"]["template"]).template
    assert [v["name"] for v in fixed["spec"]["volumes"]] == ["tmp"]
    assert [m["name"] for m in _app(fixed)["volumeMounts"]] == ["tmp"]


def test_only_net_bind_service_is_kept_of_added_capabilities(make_spec: ServiceFactory) -> None:
    live = _deployment(make_spec)
    CORPUS["cap-add-mixed"][0](live["spec"]["template"])
    assert _app_ctx(harden(live["spec"]["template"]).template)["capabilities"] == {
        "drop": ["ALL"],
        "add": ["NET_BIND_SERVICE"],
    }


def test_messages_name_paths_never_values(make_spec: ServiceFactory) -> None:
    live = _deployment(make_spec)
    _annotate("container.apparmor.security.beta.kubernetes.io/app", "localhost-secret-x")(
        live["spec"]["template"]
    )
    _pod_set(sysctls=[{"name": "kernel.msgmax", "value": "s3cr3t-value"}])(live["spec"]["template"])
    message = describe(harden(live["spec"]["template"]).violations)
    assert "kernel.msgmax" in message and "apparmor" in message
    assert "s3cr3t" not in message and "localhost-secret" not in message


def test_long_lists_are_shortened() -> None:
    violations = [Violation(f"spec.x{i}", "C") for i in range(20)]
    assert describe(violations, limit=3) == "spec.x0 (C), spec.x1 (C), spec.x2 (C) and 17 more"


@pytest.mark.parametrize(
    ("live", "wanted", "patch"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
        ({"a": {"x": 1}}, {"a": {"x": 2, "y": 3}}, {"a": {"x": 2, "y": 3}}),
        ({"l": [1, 2]}, {"l": [1]}, {"l": [1]}),
        ({"a": 1}, {"a": 1}, {}),
    ],
)
def test_merge_patch_turns_live_into_wanted(
    live: dict[str, Any], wanted: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert merge_patch(live, wanted) == patch
    assert apply_merge_patch(live, patch) == wanted


BYPASS = {
    "inbound port left out": ("traffic.sidecar.istio.io/excludeInboundPorts", "8080"),
    "inbound ports narrowed": ("traffic.sidecar.istio.io/includeInboundPorts", "9090"),
    "outbound range left out": ("traffic.sidecar.istio.io/excludeOutboundIPRanges", "0.0.0.0/0"),
    "no redirection": ("sidecar.istio.io/interceptionMode", "NONE"),
}


@pytest.mark.parametrize("case", sorted(BYPASS))
@pytest.mark.parametrize("mesh", [True, False], ids=["meshed", "not meshed"])
def test_annotations_that_route_around_the_sidecar_are_reverted_in_the_mesh(
    make_spec: ServiceFactory, case: str, mesh: bool
) -> None:
    key, value = BYPASS[case]
    deployment = build_deployment(
        name="api", namespace="shop", spec=make_spec(), owner=service_body(), checksum="c",
        mesh=mesh,
    )  # fmt: skip
    template = deployment["spec"]["template"]
    assert harden(template).violations == []
    _annotate(key, value)(template)
    hardened = harden(template)
    if mesh:
        assert [(v.path, v.control) for v in hardened.violations] == [
            (f"spec.template.metadata.annotations[{key}]", "Mesh bypass")
        ]
        assert key not in hardened.template["metadata"]["annotations"]
    else:  # outside the mesh the annotation means nothing
        assert hardened.violations == []
