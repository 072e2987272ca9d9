"""Admission checks of the emulated API server: object names, CRDs and custom resources.

Built-ins get the checks clients trip over in practice (names, selectors matching templates,
containers with a name and an image); custom resources get their CRD's structural schema
through :mod:`mirage_operator.schema` (pruning, defaults, types, enums, CEL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirage_operator import schema as crd_schema
from mirage_operator.api import k8svalidation
from mirage_operator.errors import Problem
from mirage_operator.sandbox.apiserver import status
from mirage_operator.sandbox.apiserver.resources import ResourceType
from mirage_operator.sandbox.apiserver.selectors import match_label_selector_object


def _quote(value: Any) -> str:
    return '"' + str(value).replace('"', '\\"') + '"'


# Kinds whose names follow another rule than a DNS-1123 subdomain (ValidateObjectMeta's
# name function of each kind).
_NAME_RULES = {"Namespace": "dns1123-label", "Service": "dns1035-label"}


def check_name(rt: ResourceType, name: str) -> list[Problem]:
    """``metadata.name`` rules of the kind."""
    if not name:
        return [Problem("metadata.name", "Required value: name or generateName is required")]
    if rt.crd is None and rt.group in {"rbac.authorization.k8s.io"}:
        return []  # RBAC names are path segments, e.g. "system:controller:x"
    rule = _NAME_RULES.get(rt.kind, "dns1123-subdomain") if rt.crd is None else "dns1123-subdomain"
    return k8svalidation.name_problems(name, field="metadata.name", rule=rule)


def check_metadata(obj: Mapping[str, Any]) -> list[Problem]:
    """Labels (ValidateLabels) and annotations (ValidateAnnotations) of ``metadata``."""
    problems = []
    meta = obj.get("metadata") or {}
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and not isinstance(value, Mapping):
            problems.append(Problem(f"metadata.{field}", "Invalid value: must be a map of strings"))
            continue
        strings = {}
        for key, item in (value or {}).items():
            if isinstance(item, str):
                strings[key] = item
            else:
                problems.append(
                    Problem(f"metadata.{field}", f"Invalid value: {key}: must be a string")
                )
        if field == "labels":
            problems += k8svalidation.label_problems(strings, field="metadata.labels")
        else:
            problems += k8svalidation.annotation_problems(strings, field="metadata.annotations")
    return problems


def _check_pod_template(prefix: str, template: Any, selector: Any) -> list[Problem]:
    problems = []
    if not isinstance(selector, Mapping):
        problems.append(Problem(f"{prefix}.selector", "Required value"))
    if not isinstance(template, Mapping):
        return [*problems, Problem(f"{prefix}.template", "Required value")]
    labels = (template.get("metadata") or {}).get("labels") or {}
    if isinstance(selector, Mapping) and not match_label_selector_object(selector, labels):
        problems.append(
            Problem(
                f"{prefix}.template.metadata.labels",
                f"Invalid value: map[string]string{{{labels}}}: "
                "`selector` does not match template `labels`",
            )
        )
    containers = ((template.get("spec") or {}).get("containers")) or []
    if not containers:
        problems.append(Problem(f"{prefix}.template.spec.containers", "Required value"))
    for i, container in enumerate(containers):
        if not isinstance(container, Mapping):
            continue
        if not container.get("name"):
            problems.append(
                Problem(f"{prefix}.template.spec.containers[{i}].name", "Required value")
            )
        if not container.get("image"):
            problems.append(
                Problem(f"{prefix}.template.spec.containers[{i}].image", "Required value")
            )
    return problems


def check_builtin(rt: ResourceType, obj: Mapping[str, Any]) -> list[Problem]:
    """The few built-in validations worth emulating."""
    spec = obj.get("spec") or {}
    if rt.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}:
        problems = _check_pod_template("spec", spec.get("template"), spec.get("selector"))
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            problems.append(
                Problem(
                    "spec.replicas",
                    f"Invalid value: {replicas}: must be greater than or equal to 0",
                )
            )
        return problems
    if rt.kind == "Service":
        problems = []
        for i, port in enumerate(spec.get("ports") or []):
            if not isinstance(port, Mapping) or not isinstance(port.get("port"), int):
                problems.append(Problem(f"spec.ports[{i}].port", "Required value"))
        return problems
    if rt.kind == "Secret":
        for key, value in (obj.get("data") or {}).items():
            if not isinstance(value, str):
                return [Problem(f"data[{key}]", "Invalid value: must be a base64 string")]
    return []


# -- custom resources ------------------------------------------------------------------------


def check_custom(
    rt: ResourceType,
    name: str,
    obj: dict[str, Any],
    old: Mapping[str, Any] | None,
    field_validation: str,
) -> tuple[dict[str, Any], list[str]]:
    """Prune, default and validate a custom resource against its CRD schema.

    Returns the object as it will be stored and the warnings to send. Unknown fields are
    dropped (``Warn``: with a warning; ``Strict``: 400 naming them); problems are a 422.
    """
    schema = rt.version_schema()
    if schema is None:
        return obj, []
    pruned, removed = crd_schema.prune(schema, obj)
    warnings = []
    if removed:
        unknown = ", ".join(f'unknown field "{path}"' for path in removed)
        if field_validation == "Strict":
            raise status.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {unknown}"
            )
        if field_validation != "Ignore":
            warnings = [f'unknown field "{path}"' for path in removed]
    result: dict[str, Any] = crd_schema.apply_defaults(schema, pruned)
    problems = crd_schema.validate(schema, result, old=old)
    if problems:
        raise status.invalid(rt, name, problems)
    return result, warnings


# -- CustomResourceDefinitions ---------------------------------------------------------------


def check_crd(crd: Mapping[str, Any]) -> list[Problem]:
    """What the real server checks in a CRD before serving it."""
    problems: list[Problem] = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    name = (crd.get("metadata") or {}).get("name", "")
    if not group:
        problems.append(Problem("spec.group", "Required value"))
    if not plural:
        problems.append(Problem("spec.names.plural", "Required value"))
    if not names.get("kind"):
        problems.append(Problem("spec.names.kind", "Required value"))
    if group and plural and name != f"{plural}.{group}":
        problems.append(
            Problem(
                "metadata.name",
                f'Invalid value: {_quote(name)}: must be spec.names.plural+"."+spec.group',
            )
        )
    if spec.get("scope") not in {"Namespaced", "Cluster"}:
        problems.append(
            Problem(
                "spec.scope",
                f"Unsupported value: {_quote(spec.get('scope'))}: "
                'supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions") or []
    if not versions or sum(1 for v in versions if v.get("storage")) != 1:
        problems.append(
            Problem(
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    for i, version in enumerate(versions):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        where = f"spec.versions[{i}].schema.openAPIV3Schema"
        if schema is None:
            problems.append(Problem(where, "Required value: schemas are required"))
            continue
        for text in crd_schema.structural_problems(schema):
            field, sep, reason = text.partition(": ")
            if sep and not field.startswith(("Required", "Invalid", "Forbidden", "Unsupported")):
                problems.append(Problem(f"{where}.{field}" if field else where, reason))
            else:
                problems.append(Problem(where, text))
    return problems
