"""Offline rendering: every object the operator would create for a custom resource, recursively.

``mirage render`` prints this; the tests validate it against the real schemas. A
MirageService's child VaultSecrets and ServiceLevelObjectives are expanded into their own
children, the way the operator reconciles them in turn. Secret values are never rendered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.slo import ServiceLevelObjectiveSpec
from mirage_operator.api.validation import admit
from mirage_operator.api.vaultsecret import VaultSecretSpec
from mirage_operator.config import Config
from mirage_operator.render.mirageservice import build_children
from mirage_operator.render.secret import render_preview, secret_labels
from mirage_operator.render.slo import build_slo_children


def render_document(document: Mapping[str, Any], *, config: Config) -> list[dict[str, Any]]:
    """Every object ``document`` (a Mirage custom resource) becomes, children before grandchildren.

    Raises :class:`~mirage_operator.errors.InvalidSpecError` for an invalid document.
    """
    body = admit(document)
    meta = body["metadata"]
    name, namespace = meta["name"], meta.get("namespace", "default")
    kind = body["kind"]
    if kind == "MirageService":
        spec = MirageServiceSpec.from_spec(body["spec"])
        rendered = []
        for child in build_children(
            name=name, namespace=namespace, spec=spec, config=config, owner=None, secret_macs=None
        ):
            rendered.append(child)
            if child["apiVersion"] == body["apiVersion"]:
                rendered += render_document(child, config=config)
        return rendered
    if kind == "VaultSecret":
        secret = VaultSecretSpec.from_spec(body["spec"])
        target = secret.destination.name or name
        return [
            render_preview(name=target, namespace=namespace, spec=secret, labels=secret_labels())
        ]
    if kind == "ServiceLevelObjective":
        slo = ServiceLevelObjectiveSpec.from_spec(body["spec"])
        return build_slo_children(name=name, namespace=namespace, slo=slo, config=config)
    return []
