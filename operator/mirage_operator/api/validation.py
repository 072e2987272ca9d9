"""The one validator of Mirage custom resources, shared by ``mirage validate`` and the operator.

``admit`` does what the API server and the operator together do to a custom resource: reject
unknown fields (strict field validation), apply the CRD's defaults, check the schema (types,
enums, bounds, CEL rules), then check the rules a schema cannot say (each kind's ``rules``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from mirage_operator import API_VERSION, GROUP
from mirage_operator.api import k8svalidation, mirageservice, slo, vaultsecret
from mirage_operator.crds import schema_for
from mirage_operator.errors import InvalidSpecError, Problem
from mirage_operator.schema import apply_defaults, prune, validate
from mirage_operator.schema.values import ROOT_PATH

Rules = Callable[[Mapping[str, Any]], list[Problem]]

KIND_RULES: dict[str, Rules] = {
    "MirageService": mirageservice.rules,
    "VaultSecret": vaultsecret.rules,
    "ServiceLevelObjective": slo.rules,
}

# metadata.name of each kind, by what it names: a MirageService names its Service (a DNS-1035
# label); the others name objects whose names are DNS-1123 subdomains.
_NAME_RULE = {"MirageService": "dns1035-label"}


def is_mirage(document: Mapping[str, Any]) -> bool:
    """Whether ``document`` claims to be a Mirage custom resource."""
    return str(document.get("apiVersion", "")).startswith(f"{GROUP}/")


def _metadata_problems(document: Mapping[str, Any]) -> list[Problem]:
    meta = document.get("metadata")
    if not isinstance(meta, Mapping):
        return [Problem("metadata", "Required value")]
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return [Problem("metadata.name", "Required value: name is required")]
    rule = _NAME_RULE.get(str(document.get("kind")), "dns1123-subdomain")
    return k8svalidation.name_problems(name, field="metadata.name", rule=rule)


def problems_of(document: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The defaulted document and every problem found in it (empty when it is valid)."""
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if api_version != API_VERSION:
        return dict(document), [
            Problem(
                "apiVersion",
                f"Unsupported value: {api_version!r}: supported values: {API_VERSION!r}",
            )
        ]
    schema = schema_for(API_VERSION, str(kind))
    if schema is None or kind not in KIND_RULES:
        supported = ", ".join(repr(k) for k in KIND_RULES)
        return dict(document), [
            Problem("kind", f"Unsupported value: {kind!r}: supported values: {supported}")
        ]

    problems = _metadata_problems(document)
    pruned, unknown = prune(schema, copy.deepcopy(dict(document)))
    problems += [Problem(path, "Unknown field") for path in unknown]
    defaulted: dict[str, Any] = apply_defaults(schema, pruned)
    found = validate(schema, defaulted)
    if problems:
        # The CRD's root rule on metadata.name says the same without the field's path.
        found = [p for p in found if not (p.field == ROOT_PATH and "metadata.name" in p.reason)]
    problems += found
    if not problems:
        problems += KIND_RULES[str(kind)](defaulted)
    return defaulted, problems


def check_admitted(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """``document`` itself, as the operator reads it from the API server, which has already
    pruned, defaulted and validated it against the CRD schema: only the rules a schema cannot
    express are checked again (its name, each kind's ``rules``), not a second run of the
    schema and CEL engine (docs/adr/0021). :class:`InvalidSpecError` if any fails."""
    problems = _metadata_problems(document) or KIND_RULES[str(document["kind"])](document)
    if problems:
        raise InvalidSpecError(problems)
    return document


def admit(document: Mapping[str, Any]) -> dict[str, Any]:
    """The defaulted document; :class:`InvalidSpecError` listing every problem if invalid."""
    defaulted, problems = problems_of(document)
    if problems:
        raise InvalidSpecError(problems)
    return defaulted
