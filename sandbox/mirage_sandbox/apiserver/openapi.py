"""OpenAPI documents: ``/openapi/v2`` and ``/openapi/v3`` (root and one per group/version).

kubectl reads them to validate (``apply`` checks that PATCH accepts ``fieldValidation`` and
then validates server-side), to ``explain``, and to build strategic merge patches. Each
group/version document has the REST paths of its resources (with the
``x-kubernetes-group-version-kind`` and query parameters the real server declares) and the
schemas of its kinds.

Schemas of built-ins come from the official Kubernetes schemas bundled with the
``kubernetes-validate`` package when it is installed (converted back from JSON Schema to
OpenAPI); without it, each built-in kind gets a permissive object schema. Custom resources
get their CRD's ``openAPIV3Schema`` with the standard ``apiVersion``/``kind``/``metadata``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from functools import cache
from importlib import resources as importlib_resources
from typing import Any

from mirage_sandbox.apiserver.discovery import KUBERNETES_VERSION, group_versions
from mirage_sandbox.apiserver.resources import Catalog, ResourceType

Schema = dict[str, Any]
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META}.ObjectMeta"
LIST_META = f"{META}.ListMeta"

_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
_METADATA_DOC = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


@cache
def official_definitions() -> dict[str, Schema]:
    """The Kubernetes type definitions (``io.k8s...``) from ``kubernetes-validate``, or ``{}``."""
    try:
        root = importlib_resources.files("kubernetes_validate") / "kubernetes-json-schema"
    except ModuleNotFoundError:
        return {}
    candidates = []
    for entry in root.iterdir():
        match = re.fullmatch(r"v1\.(\d+)\.(\d+)-local", entry.name)
        if match:
            candidates.append((int(match.group(1)), int(match.group(2)), entry))
    if not candidates:
        return {}
    newest = max(candidates, key=lambda c: (c[0], c[1]))[2]
    raw = json.loads((newest / "_definitions.json").read_text(encoding="utf-8"))
    definitions: dict[str, Schema] = raw.get("$defs") or raw.get("definitions") or {}
    return definitions


def _clean(node: Any, ref_prefix: str, *, v3: bool) -> Any:
    """JSON Schema (as bundled) back to OpenAPI: refs, nullable types, int-or-string."""
    if isinstance(node, list):
        return [_clean(item, ref_prefix, v3=v3) for item in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key in {"$schema", "$id"}:
            continue
        if key == "$ref" and isinstance(value, str):
            out[key] = ref_prefix + value.rsplit("/", 1)[-1]
        elif key == "type" and isinstance(value, list):
            kinds = [v for v in value if v != "null"]
            if kinds:
                out[key] = kinds[0]
        elif key == "oneOf" and all(isinstance(v, dict) and set(v) <= {"type"} for v in value):
            kinds = [
                t
                for v in value
                for t in ([v["type"]] if isinstance(v["type"], str) else v["type"])
                if t != "null"
            ]
            if sorted(kinds) == ["integer", "string"]:
                # IntOrString, as kube-openapi publishes it: v3 keeps the oneOf (so kubectl
                # explain names the type from the reference, ``<IntOrString>``); v2 cannot.
                out["format"] = "int-or-string"
                if v3:
                    out["oneOf"] = [{"type": "integer"}, {"type": "string"}]
                else:
                    out["type"] = "string"
            elif kinds:
                out["type"] = kinds[0]
        elif key in {"properties", "patternProperties"} and isinstance(value, dict):
            out[key] = {k: _clean(v, ref_prefix, v3=v3) for k, v in value.items()}
        else:
            out[key] = _clean(value, ref_prefix, v3=v3)
    if v3 and "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _closure(names: set[str], definitions: dict[str, Schema]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in definitions:
            continue
        seen.add(name)
        todo.extend(_refs(definitions[name]) - seen)
    return seen


def _definition_name(rt: ResourceType, definitions: dict[str, Schema], kind: str) -> str | None:
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if (
                gvk.get("group") == rt.group
                and gvk.get("version") == rt.version
                and gvk.get("kind") == kind
            ):
                return name
    return None


def _fallback_kind(rt: ResourceType, kind: str) -> Schema:
    return {
        "description": f"{kind} (schema not available in this sandbox).",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
            "kind": {"type": "string", "description": _KIND_DOC},
            "metadata": {"$ref": OBJECT_META, "description": _METADATA_DOC},
        },
        "x-kubernetes-preserve-unknown-fields": True,
        "x-kubernetes-group-version-kind": [
            {"group": rt.group, "version": rt.version, "kind": kind}
        ],
    }


_FALLBACK_META: dict[str, Schema] = {
    OBJECT_META: {
        "description": "ObjectMeta is metadata that all persisted resources must have.",
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Name must be unique within a namespace."},
            "namespace": {
                "type": "string",
                "description": "Namespace defines the space within which each name must be unique.",
            },
            "labels": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Map of string keys and values that can be used to organize and "
                "categorize objects.",
            },
            "annotations": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Annotations is an unstructured key value map stored with a "
                "resource.",
            },
        },
        "x-kubernetes-preserve-unknown-fields": True,
    },
    LIST_META: {
        "description": "ListMeta describes metadata that synthetic resources must have.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    },
}


def _crd_name(rt: ResourceType, kind: str) -> str:
    reversed_group = ".".join(reversed(rt.group.split(".")))
    return f"{reversed_group}.{rt.version}.{kind}"


def _crd_schema(rt: ResourceType) -> Schema:
    schema = copy.deepcopy(
        dict(
            rt.version_schema() or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        )
    )
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": _API_VERSION_DOC}
    props["kind"] = {"type": "string", "description": _KIND_DOC}
    props["metadata"] = {"$ref": OBJECT_META, "description": _METADATA_DOC}
    schema["x-kubernetes-group-version-kind"] = [
        {"group": rt.group, "version": rt.version, "kind": rt.kind}
    ]
    return schema


def _list_schema(rt: ResourceType, item_ref: str) -> Schema:
    return {
        "description": f"{rt.kind}List is a list of {rt.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
            "items": {
                "type": "array",
                "items": {"$ref": item_ref},
                "description": f"List of {rt.plural}.",
            },
            "kind": {"type": "string", "description": _KIND_DOC},
            "metadata": {"$ref": LIST_META, "description": _METADATA_DOC},
        },
        "x-kubernetes-group-version-kind": [
            {"group": rt.group, "version": rt.version, "kind": f"{rt.kind}List"}
        ],
    }


def _schemas(types: list[ResourceType]) -> tuple[dict[str, Schema], dict[ResourceType, str]]:
    """Raw (``#/``-prefixed refs by bare name) schemas for ``types`` and each type's name."""
    official = official_definitions()
    schemas: dict[str, Schema] = {}
    names: dict[ResourceType, str] = {}
    wanted: set[str] = {OBJECT_META, LIST_META}
    for rt in types:
        if rt.crd is not None:
            name = _crd_name(rt, rt.kind)
            schemas[name] = _crd_schema(rt)
            schemas[f"{name}List"] = _list_schema(rt, name)
            names[rt] = name
            continue
        found = _definition_name(rt, official, rt.kind) if official else None
        if found is None:
            name = f"mirage.sandbox.{rt.group or 'core'}.{rt.version}.{rt.kind}"
            schemas[name] = _fallback_kind(rt, rt.kind)
        else:
            name = found
            wanted.add(name)
            list_name = _definition_name(rt, official, f"{rt.kind}List")
            if list_name:
                wanted.add(list_name)
        names[rt] = name
    if official:
        for name in _closure(wanted, official):
            schemas.setdefault(name, official[name])
    else:
        schemas.update(_FALLBACK_META)
    return schemas, names


def _param(name: str, description: str, kind: str = "string", *, v3: bool) -> Schema:
    if v3:
        return {
            "name": name,
            "in": "query",
            "description": description,
            "schema": {"type": kind, "uniqueItems": True},
        }
    return {
        "name": name,
        "in": "query",
        "description": description,
        "type": kind,
        "uniqueItems": True,
    }


def _write_params(*, v3: bool, patch: bool = False) -> list[Schema]:
    params = [
        _param(
            "dryRun", "When present, indicates that modifications should not be persisted.", v3=v3
        ),
        _param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making "
            "these changes.",
            v3=v3,
        ),
        _param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request "
            "containing unknown or duplicate fields.",
            v3=v3,
        ),
    ]
    if patch:
        params.append(
            _param("force", 'Force is going to "force" Apply requests.', "boolean", v3=v3)
        )
    return params


def _read_params(*, v3: bool) -> list[Schema]:
    names = [
        "labelSelector",
        "fieldSelector",
        "resourceVersion",
        "resourceVersionMatch",
        "continue",
        "limit",
        "watch",
        "allowWatchBookmarks",
        "timeoutSeconds",
        "sendInitialEvents",
    ]
    kinds = {
        "limit": "integer",
        "timeoutSeconds": "integer",
        "watch": "boolean",
        "allowWatchBookmarks": "boolean",
        "sendInitialEvents": "boolean",
    }
    return [_param(n, n, kinds.get(n, "string"), v3=v3) for n in names]


def _op(
    rt: ResourceType,
    action: str,
    verb: str,
    ref: str,
    params: list[Schema],
    *,
    v3: bool,
    kind: str | None = None,
) -> Schema:
    op: Schema = {
        "description": f"{action} {rt.kind}",
        "operationId": f"{verb}{rt.kind}",
        "tags": [f"{rt.group or 'core'}_{rt.version}"],
        "parameters": params,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rt.group,
            "version": rt.version,
            "kind": kind or rt.kind,
        },
    }
    if v3:
        op["responses"] = {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}
        }
        if action in {"post", "put", "patch"}:
            media = ["application/json"]
            if action == "patch":
                # Custom resources take no strategic merge patch: kubectl reads this list.
                media = ["application/json-patch+json", "application/merge-patch+json"]
                if rt.crd is None:
                    media.append("application/strategic-merge-patch+json")
                media.append("application/apply-patch+yaml")
            op["requestBody"] = {
                "content": {
                    m: {"schema": {"$ref": ref} if action != "patch" else {"type": "object"}}
                    for m in media
                },
                "required": True,
            }
    else:
        op["responses"] = {"200": {"description": "OK", "schema": {"$ref": ref}}}
        op["consumes"] = ["*/*"]
        op["produces"] = ["application/json"]
        if action in {"post", "put", "patch"}:
            op["parameters"] = [
                {
                    "name": "body",
                    "in": "body",
                    "required": True,
                    "schema": {"$ref": ref} if action != "patch" else {"type": "object"},
                },
                *params,
            ]
    return op


def _paths(rt: ResourceType, name: str, ref_prefix: str, *, v3: bool) -> dict[str, Schema]:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    ref = ref_prefix + name
    list_ref = ref_prefix + f"{name}List"
    scoped = (
        f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
        if rt.namespaced
        else f"{prefix}/{rt.plural}"
    )
    path_params = (
        [
            {
                "name": "namespace",
                "in": "path",
                "required": True,
                **({"schema": {"type": "string"}} if v3 else {"type": "string"}),
            }
        ]
        if rt.namespaced
        else []
    )
    name_param = [
        {
            "name": "name",
            "in": "path",
            "required": True,
            **({"schema": {"type": "string"}} if v3 else {"type": "string"}),
        }
    ]
    paths: dict[str, Schema] = {}
    collection: Schema = {"parameters": path_params}
    if "list" in rt.verbs:
        collection["get"] = _op(
            rt, "list", "list", list_ref, _read_params(v3=v3), v3=v3, kind=rt.kind
        )
    if "create" in rt.verbs:
        collection["post"] = _op(rt, "post", "create", ref, _write_params(v3=v3), v3=v3)
    paths[scoped] = collection
    if "get" in rt.verbs:
        paths[f"{scoped}/{{name}}"] = {
            "parameters": [*name_param, *path_params],
            "get": _op(rt, "get", "read", ref, [], v3=v3),
            "put": _op(rt, "put", "replace", ref, _write_params(v3=v3), v3=v3),
            "patch": _op(rt, "patch", "patch", ref, _write_params(v3=v3, patch=True), v3=v3),
            "delete": _op(
                rt,
                "delete",
                "delete",
                ref,
                [
                    _param("dryRun", "dry run", v3=v3),
                    _param("propagationPolicy", "propagation", v3=v3),
                ],
                v3=v3,
            ),
        }
        if rt.namespaced and "list" in rt.verbs:
            paths[f"{prefix}/{rt.plural}"] = {
                "get": _op(rt, "list", "listForAllNamespaces", list_ref, _read_params(v3=v3), v3=v3)
            }
        if "status" in rt.subresources:
            paths[f"{scoped}/{{name}}/status"] = {
                "parameters": [*name_param, *path_params],
                "get": _op(rt, "get", "readStatus", ref, [], v3=v3),
                "put": _op(rt, "put", "replaceStatus", ref, _write_params(v3=v3), v3=v3),
                "patch": _op(
                    rt, "patch", "patchStatus", ref, _write_params(v3=v3, patch=True), v3=v3
                ),
            }
    return paths


def _finish(schemas: dict[str, Schema], ref_prefix: str, *, v3: bool) -> dict[str, Schema]:
    out = {}
    for name, schema in schemas.items():
        # Bundled schemas use "#/$defs/<name>"; ours use bare names: both become ref_prefix+name.
        fixed = json.loads(
            json.dumps(schema)
            .replace('"$ref": "#/$defs/', '"$ref": "')
            .replace('"$ref": "' + ref_prefix, '"$ref": "')
        )
        out[name] = _clean(_rewrite_refs(fixed), ref_prefix, v3=v3)
    return out


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                "#/$defs/" + v
                if k == "$ref" and isinstance(v, str) and "/" not in v
                else _rewrite_refs(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def group_version_document(catalog: Catalog, group: str, version: str) -> Schema | None:
    """The OpenAPI v3 document of one group/version."""
    types = [rt for rt in catalog if rt.group == group and rt.version == version]
    if not types:
        return None
    schemas, names = _schemas(types)
    prefix = "#/components/schemas/"
    paths: dict[str, Schema] = {}
    for rt in types:
        paths.update(_paths(rt, names[rt], prefix, v3=True))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": _finish(schemas, prefix, v3=True)},
    }


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def v3_root(catalog: Catalog) -> Schema:
    """``/openapi/v3``: where each group/version document is."""
    paths = {}
    for group, version in group_versions(catalog):
        doc = group_version_document(catalog, group, version)
        digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:64].upper()
        path = _gv_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def v2_document(catalog: Catalog) -> Schema:
    """``/openapi/v2``: one Swagger 2.0 document for everything served."""
    types = list(catalog)
    schemas, names = _schemas(types)
    prefix = "#/definitions/"
    paths: dict[str, Schema] = {}
    for rt in types:
        paths.update(_paths(rt, names[rt], prefix, v3=False))
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION["gitVersion"]},
        "paths": paths,
        "definitions": _finish(schemas, prefix, v3=False),
    }


def document(catalog: Catalog, segments: list[str], url: str) -> Schema | None:
    """The OpenAPI document at ``/openapi/<segments>``, or ``None``."""
    if segments == ["v2"]:
        return v2_document(catalog)
    if segments == ["v3"]:
        return v3_root(catalog)
    if segments[:1] == ["v3"]:
        rest = segments[1:]
        if rest[:1] == ["api"] and len(rest) == 2:
            return group_version_document(catalog, "", rest[1])
        if rest[:1] == ["apis"] and len(rest) == 3:
            return group_version_document(catalog, rest[1], rest[2])
    return None
