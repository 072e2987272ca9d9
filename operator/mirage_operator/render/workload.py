"""Builders of a MirageService's workload: ServiceAccount, ConfigMap and Deployment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirage_operator.api.mirageservice import MirageServiceSpec, Probe, SecretRef
from mirage_operator.api.names import config_map_name, secret_name
from mirage_operator.render.mesh import MESH_POD_ANNOTATIONS, mesh_pod_labels
from mirage_operator.render.meta import (
    CHECKSUM_ANNOTATION,
    image_version,
    object_meta,
    selector_labels,
    standard_labels,
)

CONTAINER_NAME = "app"
# Fluent Bit's kubernetes filter (K8S-Logging.Parser On) parses a pod's lines with the parser
# this annotation names; text lines are kept as they are, so ``text`` sets none.
LOG_PARSER_ANNOTATION = "fluentbit.io/parser"
LOG_PARSERS = {"json": "json", "logfmt": "logfmt"}
TMP_VOLUME = "tmp"
CONFIG_VOLUME = "config"


def build_service_account(
    *, name: str, namespace: str, owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The service's own ServiceAccount; its token is not mounted unless a pod asks."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_meta(
            name=name, namespace=namespace, labels=standard_labels(name=name), owner=owner
        ),
        "automountServiceAccountToken": False,
    }


def build_config_map(
    *, name: str, namespace: str, data: Mapping[str, str], owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The ConfigMap of ``spec.config.data``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(
            name=config_map_name(name),
            namespace=namespace,
            labels=standard_labels(name=name, component="config"),
            owner=owner,
        ),
        "data": dict(data),
    }


def _probe(probe: Probe, spec: MirageServiceSpec) -> dict[str, Any]:
    return {
        "httpGet": {"path": probe.path, "port": spec.port_named(probe.port).name},
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "failureThreshold": probe.failure_threshold,
    }


def _secret_env(
    service: str, secret: SecretRef
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(env, envFrom) entries exposing one secret as environment variables."""
    target = secret_name(service, secret.name)
    if secret.env:
        env = [
            {"name": m.name, "valueFrom": {"secretKeyRef": {"name": target, "key": m.key}}}
            for m in secret.env
        ]
        return env, []
    env_from: dict[str, Any] = {"secretRef": {"name": target}}
    if secret.env_prefix:
        env_from["prefix"] = secret.env_prefix
    return [], [env_from]


def build_deployment(
    *,
    name: str,
    namespace: str,
    spec: MirageServiceSpec,
    owner: Mapping[str, Any] | None,
    checksum: str | None,
    mesh: bool = False,
) -> dict[str, Any]:
    """The Deployment, with secure pod defaults and config/secret wiring.

    ``mesh`` puts the pods in the Istio mesh (sidecar injection, canonical service labels).

    ``checksum`` (of the config data and the synced secrets' HMACs) goes on the pod template,
    so that a change of either rolls the pods once; ``None`` leaves it out (offline render).
    """
    version = image_version(spec.image)
    labels = standard_labels(name=name, component="server", version=version)

    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in spec.env]
    env_from: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = [{"name": TMP_VOLUME, "mountPath": "/tmp"}]  # noqa: S108
    volumes: list[dict[str, Any]] = [{"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}}]

    if spec.config_data is not None:
        if spec.config_mount_path:
            mounts.append(
                {"name": CONFIG_VOLUME, "mountPath": spec.config_mount_path, "readOnly": True}
            )
            volumes.append({"name": CONFIG_VOLUME, "configMap": {"name": config_map_name(name)}})
        else:
            env_from.append({"configMapRef": {"name": config_map_name(name)}})

    for secret in spec.secrets:
        if secret.expose_as == "files":
            volume = f"secret-{secret.name}"
            mounts.append({"name": volume, "mountPath": secret.mount_path, "readOnly": True})
            volumes.append(
                {
                    "name": volume,
                    "secret": {"secretName": secret_name(name, secret.name), "defaultMode": 0o440},
                }
            )
        else:
            more_env, more_env_from = _secret_env(name, secret)
            env += more_env
            env_from += more_env_from

    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "ports": [
            {"name": p.name, "containerPort": p.port, "protocol": p.protocol} for p in spec.ports
        ],
        "resources": {k: dict(v) for k, v in spec.resources.items() if v},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    if env:
        container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    for field, probe in (
        ("livenessProbe", spec.liveness),
        ("readinessProbe", spec.readiness),
        ("startupProbe", spec.startup),
    ):
        if probe is not None and probe.enabled:
            container[field] = _probe(probe, spec)

    pod_spec: dict[str, Any] = {
        "serviceAccountName": name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": spec.run_as_user,
            "runAsGroup": spec.run_as_group,
            "fsGroup": spec.fs_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in spec.image_pull_secrets]

    template_labels = dict(labels)
    template_annotations: dict[str, str] = {}
    if mesh:
        template_labels.update(mesh_pod_labels(name=name, version=version))
        template_annotations.update(MESH_POD_ANNOTATIONS)
    if spec.log_format in LOG_PARSERS:
        template_annotations[LOG_PARSER_ANNOTATION] = LOG_PARSERS[spec.log_format]
    if checksum:
        template_annotations[CHECKSUM_ANNOTATION] = checksum
    template_meta: dict[str, Any] = {"labels": template_labels}
    if template_annotations:
        template_meta["annotations"] = template_annotations

    deployment_spec: dict[str, Any] = {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector_labels(name=name)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": spec.max_surge, "maxUnavailable": spec.max_unavailable},
        },
        "template": {"metadata": template_meta, "spec": pod_spec},
    }
    # With autoscaling the HPA owns the replica count: leaving the field out of our apply
    # means our field manager never fights the autoscaler.
    if spec.autoscaling is None:
        deployment_spec["replicas"] = spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(name=name, namespace=namespace, labels=labels, owner=owner),
        "spec": deployment_spec,
    }
