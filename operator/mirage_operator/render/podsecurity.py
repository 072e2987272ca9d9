"""The secure pod defaults of a MirageService, checked and restored on a live pod template.

The rule set is the Pod Security Standards' *restricted* profile (which includes *baseline*),
https://kubernetes.io/docs/concepts/security/pod-security-standards/ , plus what Mirage
promises beyond it: a read-only root filesystem for every container and no automatically
mounted ServiceAccount token. Fields another manager wrote are not removed by server-side
apply, so :func:`harden` finds every field of a live template that breaks a rule and returns
the template with those fields reverted; :func:`merge_patch` turns that into the one write
that restores it (ADR 0080).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

# Restricted: "Volume Types" — every other volume source (hostPath first of all) is refused.
ALLOWED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
# Restricted: "Capabilities" — drop ALL; NET_BIND_SERVICE is the only one that may be added.
ALLOWED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
# Baseline: "Sysctls" — the safe set.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
# Baseline: "SELinux" — the types a container may run as; user and role must not be set.
ALLOWED_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
# Restricted: "Seccomp"; baseline: "AppArmor" (Unconfined is refused).
CONFINED_PROFILES = frozenset({"RuntimeDefault", "Localhost"})
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
MESH_BYPASS_ANNOTATIONS = ("traffic.sidecar.istio.io/", "sidecar.istio.io/interceptionMode")
"""Pod annotations that route traffic around the Istio sidecar (ports or address ranges left
out of its redirection, or no redirection): in a meshed pod they switch off mTLS, the
AuthorizationPolicy and the JWT check for that traffic. The operator sets none of them."""
SECCOMP_ANNOTATIONS = (
    "seccomp.security.alpha.kubernetes.io/pod",
    "container.seccomp.security.alpha.kubernetes.io/",
)


@dataclass(frozen=True)
class Violation:
    """One field of a live pod template that breaks a rule."""

    path: str
    """Where it is, e.g. ``spec.template.spec.containers[app].securityContext.privileged``
    (list items by name). Never a value: the path is all an Event or status may show."""
    control: str
    """The Pod Security Standards control (or Mirage rule) it breaks, e.g. ``Host Namespaces``."""

    def __str__(self) -> str:
        return f"{self.path} ({self.control})"


@dataclass
class Hardened:
    """The outcome of :func:`harden`."""

    template: dict[str, Any]
    """The pod template with every violating field reverted."""
    violations: list[Violation] = field(default_factory=list)


class _Fixer:
    def __init__(self, template: Mapping[str, Any], prefix: str) -> None:
        self.template: dict[str, Any] = copy.deepcopy(dict(template))
        self.prefix = prefix
        self.violations: list[Violation] = []

    def found(self, path: str, control: str) -> None:
        self.violations.append(Violation(f"{self.prefix}.{path}", control))

    def security_context(self, ctx: dict[str, Any], where: str, *, pod: bool) -> None:
        """Rules shared by the pod's and each container's securityContext."""
        windows = ctx.get("windowsOptions")
        if isinstance(windows, dict) and windows.get("hostProcess") is True:
            del windows["hostProcess"]
            if not windows:
                del ctx["windowsOptions"]
            self.found(f"{where}.windowsOptions.hostProcess", "HostProcess")
        selinux = ctx.get("seLinuxOptions")
        if isinstance(selinux, dict):
            if selinux.get("type", "") not in ALLOWED_SELINUX_TYPES:
                del selinux["type"]
                self.found(f"{where}.seLinuxOptions.type", "SELinux")
            for key in ("user", "role"):
                if selinux.get(key):
                    del selinux[key]
                    self.found(f"{where}.seLinuxOptions.{key}", "SELinux")
        apparmor = ctx.get("appArmorProfile")
        if isinstance(apparmor, dict) and apparmor.get("type") not in CONFINED_PROFILES:
            del ctx["appArmorProfile"]
            self.found(f"{where}.appArmorProfile", "AppArmor")
        seccomp = ctx.get("seccompProfile")
        seccomp_type = seccomp.get("type") if isinstance(seccomp, dict) else None
        if pod and seccomp_type not in CONFINED_PROFILES:
            # The pod's profile must be set: containers without their own inherit it.
            ctx["seccompProfile"] = {"type": "RuntimeDefault"}
            self.found(f"{where}.seccompProfile", "Seccomp")
        elif not pod and seccomp is not None and seccomp_type not in CONFINED_PROFILES:
            del ctx["seccompProfile"]
            self.found(f"{where}.seccompProfile", "Seccomp")
        # The pod must say true; a container may leave it to the pod but not say false.
        if ctx.get("runAsNonRoot") is False or (pod and ctx.get("runAsNonRoot") is not True):
            ctx["runAsNonRoot"] = True
            self.found(f"{where}.runAsNonRoot", "Running as Non-root")
        if ctx.get("runAsUser") == 0:
            del ctx["runAsUser"]
            self.found(f"{where}.runAsUser", "Running as Non-root user")
        for key in ("runAsGroup", "fsGroup"):
            if ctx.get(key) == 0:
                del ctx[key]
                self.found(f"{where}.{key}", "Non-root groups")
        groups = ctx.get("supplementalGroups")
        if isinstance(groups, list) and 0 in groups:
            ctx["supplementalGroups"] = [g for g in groups if g != 0]
            self.found(f"{where}.supplementalGroups", "Non-root groups")

    def pod(self) -> None:
        spec = self.template.setdefault("spec", {})
        for key in HOST_NAMESPACES:
            if spec.get(key) is True:
                del spec[key]
                self.found(f"spec.{key}", "Host Namespaces")
        if spec.get("automountServiceAccountToken") is not False:
            spec["automountServiceAccountToken"] = False
            self.found("spec.automountServiceAccountToken", "Mirage: no ServiceAccount token")
        ctx = spec.get("securityContext")
        if not isinstance(ctx, dict):
            ctx = spec["securityContext"] = {}
        self.security_context(ctx, "spec.securityContext", pod=True)
        sysctls = ctx.get("sysctls")
        if isinstance(sysctls, list):
            unsafe = [s for s in sysctls if s.get("name") not in SAFE_SYSCTLS]
            for item in unsafe:
                self.found(f"spec.securityContext.sysctls[{item.get('name')}]", "Sysctls")
            if unsafe:
                ctx["sysctls"] = [s for s in sysctls if s.get("name") in SAFE_SYSCTLS]
        self.volumes(spec)
        for list_name in CONTAINER_LISTS:
            for container in spec.get(list_name) or []:
                self.container(container, f"spec.{list_name}[{container.get('name')}]")
        self.annotations()

    def volumes(self, spec: dict[str, Any]) -> None:
        refused = set()
        for volume in spec.get("volumes") or []:
            sources = set(volume) - {"name"}
            bad = sorted(sources - ALLOWED_VOLUME_SOURCES)
            if bad:
                refused.add(volume.get("name"))
                self.found(f"spec.volumes[{volume.get('name')}].{bad[0]}", "Volume Types")
        if not refused:
            return
        # The volume goes, and with it every mount of it (a dangling mount is invalid).
        spec["volumes"] = [v for v in spec["volumes"] if v.get("name") not in refused]
        for list_name in CONTAINER_LISTS:
            for container in spec.get(list_name) or []:
                for key in ("volumeMounts", "volumeDevices"):
                    if key in container:
                        container[key] = [m for m in container[key] if m.get("name") not in refused]

    def container(self, container: dict[str, Any], where: str) -> None:
        ctx = container.get("securityContext")
        if not isinstance(ctx, dict):
            ctx = container["securityContext"] = {}
        at = f"{where}.securityContext"
        if ctx.get("privileged") is True:
            del ctx["privileged"]
            self.found(f"{at}.privileged", "Privileged Containers")
        if ctx.get("allowPrivilegeEscalation") is not False:
            ctx["allowPrivilegeEscalation"] = False
            self.found(f"{at}.allowPrivilegeEscalation", "Privilege Escalation")
        if ctx.get("readOnlyRootFilesystem") is not True:
            ctx["readOnlyRootFilesystem"] = True
            self.found(f"{at}.readOnlyRootFilesystem", "Mirage: read-only root filesystem")
        if ctx.get("procMount", "Default") != "Default":
            del ctx["procMount"]
            self.found(f"{at}.procMount", "/proc Mount Type")
        caps = ctx.get("capabilities")
        if not isinstance(caps, dict):
            caps = ctx["capabilities"] = {}
        added = caps.get("add") or []
        if any(c not in ALLOWED_CAPABILITIES for c in added):
            kept = [c for c in added if c in ALLOWED_CAPABILITIES]
            if kept:
                caps["add"] = kept
            else:
                del caps["add"]
            self.found(f"{at}.capabilities.add", "Capabilities")
        dropped = caps.get("drop") or []
        if "ALL" not in dropped:
            caps["drop"] = [*dropped, "ALL"]
            self.found(f"{at}.capabilities.drop", "Capabilities")
        self.security_context(ctx, at, pod=False)
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                del port["hostPort"]
                self.found(f"{where}.ports[{port.get('containerPort')}].hostPort", "Host Ports")

    def annotations(self) -> None:
        metadata = self.template.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        meshed = (metadata.get("labels") or {}).get("sidecar.istio.io/inject") == "true"
        for key, value in list(annotations.items()):
            if meshed and key.startswith(MESH_BYPASS_ANNOTATIONS):
                allowed = False
                control = "Mesh bypass"
            elif key.startswith(APPARMOR_ANNOTATION):
                allowed = value == "runtime/default" or value.startswith("localhost/")
                control = "AppArmor"
            elif key.startswith(SECCOMP_ANNOTATIONS):
                allowed = value in ("runtime/default", "docker/default") or value.startswith(
                    "localhost/"
                )
                control = "Seccomp"
            else:
                continue
            if not allowed:
                del annotations[key]
                self.found(f"metadata.annotations[{key}]", control)


def harden(template: Mapping[str, Any], *, prefix: str = "spec.template") -> Hardened:
    """Check a pod template against the secure pod defaults and revert what breaks them.

    ``template`` is a PodTemplateSpec (``metadata`` and ``spec``), as in a Deployment's
    ``spec.template``; it is not modified. Every container (init, regular, ephemeral, whoever
    added it) is held to the same rules. A field is reverted by removing it where the default
    is safe (``hostNetwork``, ``privileged``, ``hostPort``, an unsafe sysctl, a ``hostPath``
    volume with its mounts, ...) and by setting the safe value where only that is safe
    (``allowPrivilegeEscalation: false``, ``capabilities.drop: [ALL]``, ``runAsNonRoot:
    true``, the pod's ``seccompProfile: RuntimeDefault``, ``readOnlyRootFilesystem: true``,
    ``automountServiceAccountToken: false``). Violation paths start with ``prefix``.
    """
    fixer = _Fixer(template, prefix)
    fixer.pod()
    return Hardened(fixer.template, fixer.violations)


def merge_patch(live: Any, wanted: Any) -> Any:
    """The RFC 7386 JSON merge patch that turns ``live`` into ``wanted`` (lists whole)."""
    if not isinstance(live, Mapping) or not isinstance(wanted, Mapping):
        return wanted
    patch: dict[str, Any] = {}
    for key in live.keys() - wanted.keys():
        patch[key] = None
    for key, value in wanted.items():
        if key not in live:
            patch[key] = value
        elif live[key] != value:
            patch[key] = merge_patch(live[key], value)
    return patch


def deployment_revert_patch(
    deployment: Mapping[str, Any],
) -> tuple[dict[str, Any], list[Violation]]:
    """(merge patch restoring a live Deployment's pod template, the violations it reverts).

    The patch carries the Deployment's ``resourceVersion``, so that it is refused (409) if
    the object changed since it was read; it is ``{}`` when nothing is to be reverted.
    """
    template = (deployment.get("spec") or {}).get("template") or {}
    hardened = harden(template)
    if not hardened.violations:
        return {}, []
    return (
        {
            "metadata": {"resourceVersion": deployment["metadata"]["resourceVersion"]},
            "spec": {"template": merge_patch(template, hardened.template)},
        },
        hardened.violations,
    )


def describe(violations: list[Violation], *, limit: int = 8) -> str:
    """The paths of ``violations`` for an Event or a condition message (never values),
    shortened after ``limit`` so that the message stays within an Event's 1 KiB."""
    shown = ", ".join(str(v) for v in violations[:limit])
    more = len(violations) - limit
    return f"{shown} and {more} more" if more > 0 else shown
