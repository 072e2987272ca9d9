"""Admission checks of the emulated API server: object names, CRDs and custom resources.

Built-ins get the checks clients trip over in practice (names, selectors matching templates,
containers with a name and an image); custom resources get their CRD's structural schema
through :mod:`mirage_operator.schema` (pruning, defaults, types, enums, CEL).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mirage_operator import schema as crd_schema
from mirage_operator.errors import Problem
from mirage_sandbox.apiserver import names, status
from mirage_sandbox.apiserver.resources import ResourceType
from mirage_sandbox.apiserver.selectors import match_label_selector_object

# Kinds whose names must be DNS labels rather than subdomains.
_NAME_RULES: dict[str, Callable[[str], list[str]]] = {
    "Namespace": names.dns1123_label,
    "Service": names.dns1035_label,
}
ANNOTATIONS_MAX_BYTES = 256 * 1024
SECRET_MAX_BYTES = 1024 * 1024


def _quote(value: Any) -> str:
    return '"' + str(value).replace('"', '\\"') + '"'


def _invalid(path: str, value: Any, messages: list[str]) -> list[Problem]:
    return [Problem(path, f"Invalid value: {_quote(value)}: {m}") for m in messages]


def check_name(rt: ResourceType, name: str) -> list[Problem]:
    """``metadata.name`` rules of the kind."""
    if not name:
        return [Problem("metadata.name", "Required value: name or generateName is required")]
    if rt.crd is None and rt.group in {"rbac.authorization.k8s.io"}:
        return []  # RBAC names are path segments, e.g. "system:controller:x"
    rule = _NAME_RULES.get(rt.kind, names.dns1123_subdomain) if rt.crd is None else None
    return _invalid("metadata.name", name, (rule or names.dns1123_subdomain)(name))


def check_labels(path: str, labels: Any) -> list[Problem]:
    """Label keys (qualified names) and values (ValidateLabels)."""
    if labels is None:
        return []
    if not isinstance(labels, Mapping):
        return [Problem(path, "Invalid value: must be a map of strings")]
    problems = []
    for key, value in labels.items():
        problems += _invalid(path, key, names.qualified_name(str(key)))
        if not isinstance(value, str):
            problems.append(Problem(path, f"Invalid value: {key}: must be a string"))
        else:
            problems += _invalid(path, value, names.label_value(value))
    return problems


def check_annotations(path: str, annotations: Any) -> list[Problem]:
    """Annotation keys (qualified names, case-insensitively) and their total size."""
    if annotations is None:
        return []
    if not isinstance(annotations, Mapping):
        return [Problem(path, "Invalid value: must be a map of strings")]
    problems = []
    size = 0
    for key, value in annotations.items():
        problems += _invalid(path, key, names.qualified_name(str(key).lower()))
        if not isinstance(value, str):
            problems.append(Problem(path, f"Invalid value: {key}: must be a string"))
        else:
            size += len(str(key)) + len(value)
    if size > ANNOTATIONS_MAX_BYTES:
        problems.append(
            Problem(path, f"Too long: may not be more than {ANNOTATIONS_MAX_BYTES} bytes")
        )
    return problems


def check_metadata(obj: Mapping[str, Any], prefix: str = "metadata") -> list[Problem]:
    """ObjectMeta: labels and annotations."""
    meta = obj.get("metadata") or {}
    return check_labels(f"{prefix}.labels", meta.get("labels")) + check_annotations(
        f"{prefix}.annotations", meta.get("annotations")
    )


def _check_ports(path: str, ports: Any, rule: Callable[[str], list[str]]) -> list[Problem]:
    """Port names: valid, unique, and required when a Service has several ports."""
    items = [p for p in ports if isinstance(p, Mapping)] if isinstance(ports, list) else []
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, port in enumerate(items):
        name = port.get("name")
        where = f"{path}[{i}].name"
        if not name:
            if rule is names.dns1123_label and len(items) > 1:
                problems.append(Problem(where, "Required value"))
            continue
        problems += _invalid(where, name, rule(str(name)))
        if name in seen:
            problems.append(Problem(where, f"Duplicate value: {_quote(name)}"))
        seen.add(name)
    return problems


def _check_pod_template(prefix: str, template: Any, selector: Any) -> list[Problem]:
    problems = []
    if not isinstance(selector, Mapping):
        problems.append(Problem(f"{prefix}.selector", "Required value"))
    else:
        problems += check_labels(f"{prefix}.selector.matchLabels", selector.get("matchLabels"))
    if not isinstance(template, Mapping):
        return [*problems, Problem(f"{prefix}.template", "Required value")]
    problems += check_metadata(template, f"{prefix}.template.metadata")
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
    seen: set[str] = set()
    for i, container in enumerate(containers):
        if not isinstance(container, Mapping):
            continue
        where = f"{prefix}.template.spec.containers[{i}]"
        name = container.get("name")
        if not name:
            problems.append(Problem(f"{where}.name", "Required value"))
        else:
            problems += _invalid(f"{where}.name", name, names.dns1123_label(str(name)))
            if name in seen:
                problems.append(Problem(f"{where}.name", f"Duplicate value: {_quote(name)}"))
            seen.add(name)
        if not container.get("image"):
            problems.append(Problem(f"{where}.image", "Required value"))
        problems += _check_ports(f"{where}.ports", container.get("ports"), names.port_name)
    return problems


def _check_data_keys(obj: Mapping[str, Any], *fields: str) -> list[Problem]:
    problems = []
    for field in fields:
        for key in obj.get(field) or {}:
            problems += _invalid(f"{field}[{key}]", key, names.config_key(str(key)))
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
        problems += _check_ports("spec.ports", spec.get("ports"), names.dns1123_label)
        return problems + check_labels("spec.selector", spec.get("selector"))
    if rt.kind == "Secret":
        for key, value in (obj.get("data") or {}).items():
            if not isinstance(value, str):
                return [Problem(f"data[{key}]", "Invalid value: must be a base64 string")]
        problems = _check_data_keys(obj, "data", "stringData")
        size = sum(len(k) + len(v) * 3 // 4 for k, v in (obj.get("data") or {}).items())
        if size > SECRET_MAX_BYTES:
            problems.append(
                Problem("data", f"Too long: may not be more than {SECRET_MAX_BYTES} bytes")
            )
        return problems
    if rt.kind == "ConfigMap":
        return _check_data_keys(obj, "data", "binaryData")
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
