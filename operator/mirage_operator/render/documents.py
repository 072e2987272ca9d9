"""Offline rendering: every object the operator would create for a custom resource, recursively.

``mirage render`` prints this; the tests validate it against the real schemas. A
MirageService's child VaultSecrets and ServiceLevelObjectives are expanded into their own
children, the way the operator reconciles them in turn. Secret values are never rendered.

Only the resources given are admitted (pruned, defaulted and validated as the API server would);
the children built from them are defaulted but not validated again, as the operator does not
re-admit what it reads (docs/adr/0021): the parent's schema has already checked every field a
child takes from it, and ``tests/unit/test_render_schemas.py`` holds the builders to the
children's schemas.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.slo import ServiceLevelObjectiveSpec
from mirage_operator.api.validation import admit, check_admitted
from mirage_operator.api.vaultsecret import VaultSecretSpec
from mirage_operator.config import Config
from mirage_operator.crds import schema_for
from mirage_operator.render.mirageservice import build_children
from mirage_operator.render.secret import render_preview, secret_labels
from mirage_operator.render.slo import build_slo_children
from mirage_operator.schema import apply_defaults


def render_document(
    document: Mapping[str, Any], *, config: Config, built: bool = False
) -> list[dict[str, Any]]:
    """Every object ``document`` (a Mirage custom resource) becomes, children before grandchildren.
    ``built``: ``document`` was built by the operator from an admitted parent.

    Raises :class:`~mirage_operator.errors.InvalidSpecError` for an invalid document.
    """
    if built:
        schema = schema_for(str(document["apiVersion"]), str(document["kind"]))
        assert schema is not None  # the operator builds only its own kinds
        body = dict(check_admitted(apply_defaults(schema, copy.deepcopy(dict(document)))))
    else:
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
                rendered += render_document(child, config=config, built=True)
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
