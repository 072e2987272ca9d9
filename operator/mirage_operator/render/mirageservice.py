"""Every object a MirageService becomes, composed from the single-kind builders.

This module is where a field of the custom resource can be followed to the child that carries
it: ``build_children`` calls one builder per child kind, in the order a reader expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirage_operator import API_VERSION
from mirage_operator.api.mirageservice import MirageServiceSpec, mesh_caller_problems
from mirage_operator.api.names import secret_name, slo_name
from mirage_operator.config import Config
from mirage_operator.errors import InvalidSpecError, Problem
from mirage_operator.render.mesh import (
    NETWORKING_API_VERSION,
    SECURITY_API_VERSION,
    build_authorization_policy,
    build_destination_rule,
    build_jwt_policy,
    build_peer_authentication,
    build_request_authentication,
)
from mirage_operator.render.meta import checksum, object_meta, selector_labels, standard_labels
from mirage_operator.render.networking import (
    build_ingress,
    build_network_policy,
    build_oidc_middlewares,
    build_service,
)
from mirage_operator.render.prometheusrule import build_custom_rules
from mirage_operator.render.scaling import build_hpa, build_pdb
from mirage_operator.render.servicemonitor import build_service_monitor
from mirage_operator.render.workload import (
    build_config_map,
    build_deployment,
    build_service_account,
)

# Kinds of platform add-ons (Istio, Traefik's CRDs) that a cluster may not serve: kopf does not
# watch a kind the cluster does not serve, so the index simply holds none of them (ADR 0023).
OPTIONAL_CHILD_KINDS: tuple[tuple[str, str], ...] = (
    (SECURITY_API_VERSION, "PeerAuthentication"),
    (SECURITY_API_VERSION, "RequestAuthentication"),
    (SECURITY_API_VERSION, "AuthorizationPolicy"),
    (NETWORKING_API_VERSION, "DestinationRule"),
    ("traefik.io/v1alpha1", "Middleware"),
)

# Every kind a MirageService may own, in apply order (dependencies first). The operator deletes
# an owned object of these kinds when the spec stops asking for it.
CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    (API_VERSION, "VaultSecret"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1", "Ingress"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    (API_VERSION, "ServiceLevelObjective"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    *OPTIONAL_CHILD_KINDS,
)


def pod_checksum(*, spec: MirageServiceSpec, secret_macs: Mapping[str, str]) -> str:
    """Checksum of what the pods read at start: config data and each synced secret's HMAC.

    HMACs (never the data) stand for the secrets, so the annotation reveals nothing.
    """
    return checksum({"config": dict(spec.config_data or {}), "secrets": dict(secret_macs)})


def build_vault_secret(
    *,
    service: str,
    namespace: str,
    name: str,
    vault_spec: Mapping[str, Any],
    owner: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The child VaultSecret of one ``spec.secrets`` entry; its Secret has the same name."""
    target = secret_name(service, name)
    return {
        "apiVersion": API_VERSION,
        "kind": "VaultSecret",
        "metadata": object_meta(
            name=target,
            namespace=namespace,
            labels=standard_labels(name=service, component="secret"),
            owner=owner,
        ),
        "spec": {**vault_spec, "destination": {"name": target}},
    }


def build_slo(
    *, service: str, namespace: str, slo: Mapping[str, Any], owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The child ServiceLevelObjective of one ``spec.monitoring.slos`` entry."""
    fields = {k: v for k, v in slo.items() if k != "name"}
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceLevelObjective",
        "metadata": object_meta(
            name=slo_name(service, slo["name"]),
            namespace=namespace,
            labels=standard_labels(name=service, component="slo"),
            owner=owner,
        ),
        "spec": {**fields, "service": service},
    }


def _mesh_children(
    *,
    name: str,
    namespace: str,
    spec: MirageServiceSpec,
    config: Config,
    owner: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    children = [build_peer_authentication(name=name, namespace=namespace, spec=spec, owner=owner)]
    # The L7 twin of the NetworkPolicy: absent when it is (no policy admits everyone at both).
    if spec.network_policy_enabled:
        children.append(
            build_authorization_policy(
                name=name, namespace=namespace, spec=spec, config=config, owner=owner
            )
        )
    if spec.jwt is not None:
        children += [
            build_request_authentication(name=name, namespace=namespace, spec=spec, owner=owner),
            build_jwt_policy(name=name, namespace=namespace, spec=spec, owner=owner),
        ]
    if spec.mesh.connection_pool or spec.mesh.outlier_detection:
        children.append(
            build_destination_rule(
                name=name, namespace=namespace, spec=spec, config=config, owner=owner
            )
        )
    return children


def config_problems(spec: MirageServiceSpec, config: Config) -> list[Problem]:
    """What is wrong with a schema-valid ``spec`` only under the operator's ``config``: the
    CRD cannot know ``MIRAGE_MESH_DEFAULT``. ``mirage validate`` asks this too, so that it
    refuses what ``mirage render`` and the operator refuse."""
    if spec.mesh_enabled(config.mesh_default):
        return mesh_caller_problems(spec.allow_from)
    if spec.mesh.connection_pool or spec.mesh.outlier_detection:
        # The CRD refuses it beside an explicit `enabled: false`; here the mesh is off by the
        # operator's default.
        return [
            Problem(
                "spec.mesh.resilience",
                "Forbidden: takes effect only in the mesh, which the operator's default "
                "(MIRAGE_MESH_DEFAULT) leaves off; set spec.mesh.enabled true or remove it",
            )
        ]
    return []


def build_children(
    *,
    name: str,
    namespace: str,
    spec: MirageServiceSpec,
    config: Config,
    owner: Mapping[str, Any] | None,
    secret_macs: Mapping[str, str] | None,
) -> list[dict[str, Any]]:
    """Every child object of the service, in apply order.

    ``secret_macs`` maps each ``spec.secrets`` name to its synced data's HMAC; ``None`` (an
    offline render) leaves the checksum annotation out of the pod template.
    """
    children: list[dict[str, Any]] = [
        build_service_account(name=name, namespace=namespace, owner=owner)
    ]
    if spec.config_data is not None:
        children.append(
            build_config_map(name=name, namespace=namespace, data=spec.config_data, owner=owner)
        )
    children += [
        build_vault_secret(
            service=name, namespace=namespace, name=s.name, vault_spec=s.vault_spec, owner=owner
        )
        for s in spec.secrets
    ]
    if problems := config_problems(spec, config):
        raise InvalidSpecError(problems)
    mesh = spec.mesh_enabled(config.mesh_default)
    pod_sum = None if secret_macs is None else pod_checksum(spec=spec, secret_macs=secret_macs)
    children.append(
        build_deployment(
            name=name, namespace=namespace, spec=spec, owner=owner, checksum=pod_sum, mesh=mesh
        )
    )
    children.append(build_service(name=name, namespace=namespace, spec=spec, owner=owner))
    if spec.autoscaling is not None:
        children.append(build_hpa(name=name, namespace=namespace, spec=spec, owner=owner))
    if spec.disruption.enabled:
        children.append(build_pdb(name=name, namespace=namespace, spec=spec, owner=owner))
    if spec.network_policy_enabled:
        children.append(
            build_network_policy(
                name=name, namespace=namespace, spec=spec, config=config, owner=owner
            )
        )
    if spec.ingress is not None:
        if spec.ingress.oidc is not None:
            children += build_oidc_middlewares(
                name=name, namespace=namespace, spec=spec, config=config, owner=owner
            )
        children.append(
            build_ingress(name=name, namespace=namespace, spec=spec, config=config, owner=owner)
        )
    if mesh:
        children += _mesh_children(
            name=name, namespace=namespace, spec=spec, config=config, owner=owner
        )
    metrics = spec.monitoring.metrics
    if metrics.enabled:
        children.append(
            build_service_monitor(
                name=name,
                namespace=namespace,
                selector_labels=selector_labels(name=name),
                labels=standard_labels(name=name),
                port=spec.port_named(metrics.port).name,
                path=metrics.path,
                interval=metrics.interval,
                scrape_timeout=metrics.scrape_timeout,
                relabelings=metrics.relabelings,
                config=config,
                owner=owner,
            )
        )
    children += [
        build_slo(service=name, namespace=namespace, slo=s, owner=owner)
        for s in spec.monitoring.slos
    ]
    if spec.monitoring.alerts:
        children.append(
            build_custom_rules(
                service=name,
                namespace=namespace,
                alerts=spec.monitoring.alerts,
                config=config,
                owner=owner,
            )
        )
    return children
