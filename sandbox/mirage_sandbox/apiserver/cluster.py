"""The semantics of the emulated API server, independent of HTTP.

:class:`Cluster` implements get/list/create/update/patch/apply/delete the way kube-apiserver
does for the resources of its :class:`~.resources.Catalog`: uids, resourceVersions,
generations, managed fields, the status subresource, optimistic concurrency, finalizers and
``deletionTimestamp``, CRD schemas, dry runs. Every method is synchronous and atomic (one lock),
so that the HTTP layer, the background controllers and tests in other threads can all use it.
Errors are raised as :class:`~mirage_sandbox.errors.EmulatedAPIError` (a ``Status``).
"""

from __future__ import annotations

import base64
import builtins
import copy
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mirage_operator import schema as crd_schema
from mirage_operator import yamlsafe
from mirage_operator.errors import Problem
from mirage_sandbox.apiserver import defaults, managed, status, validation
from mirage_sandbox.apiserver.fieldtypes import BuiltinTypes, SchemaTypes, TypeOracle
from mirage_sandbox.apiserver.patch import (
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from mirage_sandbox.apiserver.resources import Catalog, ResourceType, storage_version
from mirage_sandbox.apiserver.selectors import make_filter
from mirage_sandbox.apiserver.store import Obj, RevisionGone, Store
from mirage_sandbox.apiserver.views import from_view, to_view
from mirage_sandbox.errors import EmulatedAPIError

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    APPLY_PATCH,
    "application/apply-patch+cbor",
)

CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    """The current time as Kubernetes timestamps are written (seconds, UTC, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WriteResult:
    """What a write answers: the object (as the resource serves it), and more."""

    obj: Obj
    warnings: list[str] = field(default_factory=list)
    created: bool = False
    deleted: bool = False
    """The object is gone (a delete without finalizers, or the last finalizer removed)."""


@dataclass(frozen=True)
class WriteOptions:
    """Query parameters every write takes."""

    field_manager: str = ""
    dry_run: bool = False
    field_validation: str = "Warn"
    force: bool = False


def types_for(rt: ResourceType) -> TypeOracle:
    """How lists and maps of ``rt``'s objects merge."""
    if rt.crd is not None:
        return SchemaTypes(rt.version_schema(), rt.kind)
    return BuiltinTypes(rt.kind)


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec_part(obj: Mapping[str, Any], rt: ResourceType) -> dict[str, Any]:
    """What bumps the generation: everything but metadata (and status with a subresource)."""
    skip = {"metadata", "apiVersion", "kind"}
    if rt.has_status or rt.crd is None:
        skip.add("status")
    return {k: v for k, v in obj.items() if k not in skip}


class Cluster:
    """Kubernetes API semantics over a :class:`Store` and a :class:`Catalog`."""

    def __init__(self, store: Store | None = None, catalog: Catalog | None = None) -> None:
        self.store = store or Store()
        self.catalog = catalog or Catalog()
        self._lock = threading.RLock()
        self.after_commit: list[Callable[[ResourceType, str, Obj], None]] = []
        """Hooks called (under the lock) after each committed change: type, event, object."""

    # -- lookups -------------------------------------------------------------------------------

    def resource(self, name: str) -> ResourceType:
        """Resolve ``deployments``, ``deploy``, ``deployments.apps``, ``msvc``... (404 if none)."""
        try:
            return self.catalog.resolve(name)
        except KeyError:
            raise EmulatedAPIError(
                404, "NotFound", f'the server doesn\'t have a resource type "{name}"'
            ) from None

    def _stored(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        return self.store.get(rt.storage, namespace if rt.namespaced else None, name)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        """The object (404 if missing)."""
        stored = self._stored(rt, namespace, name)
        if stored is None:
            raise status.not_found(rt, name)
        return to_view(rt, stored)

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """The object or ``None``."""
        stored = self._stored(rt, namespace, name)
        return to_view(rt, stored) if stored is not None else None

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        copy_items: bool = True,
    ) -> Obj:
        """A ``<Kind>List`` with the semantics of resourceVersion/limit/continue.

        ``copy_items=False`` shares the items with the store (to serialise right away)."""
        predicate = self._filter(rt, label_selector, field_selector)
        ns = namespace if rt.namespaced else None
        current = self.store.revision
        start_after: tuple[str, str] | None = None
        if continue_token:
            if resource_version:
                raise status.bad_request(
                    "specifying resource version is not allowed when using continue"
                )
            revision, start_after = _decode_continue(continue_token)
            try:
                items = self.store.list_at(rt.storage, revision)
            except RevisionGone:
                raise status.gone(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use the "
                    "continue value from the response to get an inconsistent list."
                ) from None
            if ns is not None:
                items = [i for i in items if _meta(i).get("namespace") == ns]
        else:
            revision = current
            items = self._list_at(rt, ns, resource_version, resource_version_match, copy_items)
            if resource_version_match == "Exact" and resource_version:
                revision = int(resource_version)
        selected = [to_view(rt, i) for i in items if predicate(i)]
        if start_after is not None:
            selected = [i for i in selected if _item_key(i) > start_after]
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        if limit and limit > 0 and len(selected) > limit:
            rest = len(selected) - limit
            selected = selected[:limit]
            metadata["continue"] = _encode_continue(revision, _item_key(selected[-1]))
            metadata["remainingItemCount"] = rest
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": metadata,
            "items": selected,
        }

    def _list_at(
        self, rt: ResourceType, ns: str | None, rv: str | None, match: str | None, fresh: bool
    ) -> builtins.list[Obj]:
        current = self.store.revision
        if rv and rv != "0":
            try:
                wanted = int(rv)
            except ValueError:
                raise status.bad_request(f'invalid resource version "{rv}"') from None
            if wanted > current:
                raise EmulatedAPIError(
                    504,
                    "Timeout",
                    f"Timeout: Too large resource version: {wanted}, current: {current}",
                    details={
                        "causes": [
                            {
                                "reason": "ResourceVersionTooLarge",
                                "message": "Too large resource version",
                            }
                        ],
                        "retryAfterSeconds": 1,
                    },
                )
            if match == "Exact" and wanted != current:
                try:
                    items = self.store.list_at(rt.storage, wanted)
                except RevisionGone as exc:
                    raise status.gone(
                        f"The resourceVersion for the provided list is too old. ({exc})"
                    ) from None
                return [i for i in items if ns is None or _meta(i).get("namespace") == ns]
        elif match == "Exact":
            raise status.bad_request(
                'resourceVersionMatch "Exact" is forbidden for resourceVersion ""'
            )
        return self.store.list(rt.storage, ns) if fresh else self.store.peek_list(rt.storage, ns)

    def _filter(
        self, rt: ResourceType, label_selector: str | None, field_selector: str | None
    ) -> Callable[[Mapping[str, Any]], bool]:
        extra: tuple[str, ...] = ()
        if rt.crd is not None:
            extra = tuple(
                str(f.get("jsonPath", "")).lstrip(".")
                for f in rt.version_entry().get("selectableFields") or []
            )
        base = make_filter(
            label_selector, field_selector, rt.kind, custom=rt.crd is not None, extra_fields=extra
        )
        if rt.group == "events.k8s.io":
            # Selectors name the events.k8s.io fields; the store holds the core shape.
            return lambda obj: base(to_view(rt, dict(obj)))
        return base

    # -- writes: create ------------------------------------------------------------------------

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Mapping[str, Any],
        options: WriteOptions | None = None,
    ) -> WriteResult:
        """POST: create ``body`` (409 AlreadyExists if the name is taken)."""
        options = options or WriteOptions()
        if "create" not in rt.verbs:
            raise status.method_not_allowed("")
        obj = from_view(rt, _as_object(body))
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise status.bad_request("metadata must be an object")
        self._check_namespace_of_body(rt, namespace, meta)
        with self._lock:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = self._generate_name(rt, namespace, str(meta["generateName"]))
            name = str(meta.get("name") or "")
            problems = validation.check_name(rt, name)
            if problems:
                raise status.invalid(rt, name, problems)
            if self._stored(rt, namespace, name) is not None:
                raise status.already_exists(rt, name)
            if rt.namespaced:
                self._check_namespace_open(rt, namespace or "", name)
            manager = options.field_manager or "unknown"
            return self._write(rt, namespace, name, None, obj, "", manager, options)

    def _generate_name(self, rt: ResourceType, namespace: str | None, prefix: str) -> str:
        for _ in range(100):
            candidate = prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
            if self._stored(rt, namespace, candidate) is None:
                return candidate
        raise EmulatedAPIError(500, "InternalError", "could not generate a unique name")

    def _check_namespace_of_body(
        self, rt: ResourceType, namespace: str | None, meta: dict[str, Any]
    ) -> None:
        if not rt.namespaced:
            meta.pop("namespace", None)
            return
        given = meta.get("namespace")
        if given and namespace and given != namespace:
            raise status.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = namespace or given or "default"

    def _check_namespace_open(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns_type = self.catalog.lookup("", "v1", "namespaces")
        assert ns_type is not None
        ns = self._stored(ns_type, None, namespace)
        if ns is None:
            raise status.not_found(ns_type, namespace)
        if _meta(ns).get("deletionTimestamp"):
            raise status.forbidden(
                rt,
                name,
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
            )

    # -- writes: update ------------------------------------------------------------------------

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        options: WriteOptions | None = None,
        *,
        subresource: str = "",
    ) -> WriteResult:
        """PUT: replace the object (409 Conflict on a stale ``metadata.resourceVersion``)."""
        options = options or WriteOptions()
        obj = from_view(rt, _as_object(body))
        meta = obj.setdefault("metadata", {})
        body_name = meta.get("name")
        if body_name and body_name != name:
            raise status.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        self._check_namespace_of_body(rt, namespace, meta)
        with self._lock:
            old = self._stored(rt, namespace, name)
            if old is None:
                raise status.not_found(rt, name)
            manager = options.field_manager or "unknown"
            return self._write(rt, namespace, name, old, obj, subresource, manager, options)

    # -- writes: patch -------------------------------------------------------------------------

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        body: Any,
        options: WriteOptions | None = None,
        *,
        subresource: str = "",
    ) -> WriteResult:
        """PATCH with any of the four patch types (apply creates a missing object)."""
        options = options or WriteOptions()
        patch_type = patch_type.split(";")[0].strip()
        if patch_type not in PATCH_TYPES:
            raise status.unsupported_media_type(patch_type)
        if patch_type == STRATEGIC_PATCH and rt.crd is not None:
            raise status.unsupported_media_type(patch_type)
        if patch_type.startswith("application/apply-patch"):
            return self.apply(rt, namespace, name, body, options, subresource=subresource)
        parsed = _parse_patch_body(body)
        with self._lock:
            old = self._stored(rt, namespace, name)
            if old is None:
                raise status.not_found(rt, name)
            current = to_view(rt, old)
            try:
                if patch_type == JSON_PATCH:
                    patched = json_patch(current, parsed)
                elif patch_type == MERGE_PATCH:
                    patched = merge_patch(current, parsed)
                else:
                    patched = strategic_merge_patch(current, parsed, types_for(rt))
            except PatchError as exc:
                raise EmulatedAPIError(
                    422,
                    "Invalid",
                    str(exc),
                    details={"name": name, "group": rt.group, "kind": rt.kind},
                ) from None
            if not isinstance(patched, dict):
                raise status.bad_request("the patch did not produce an object")
            obj = from_view(rt, patched)
            meta = obj.setdefault("metadata", {})
            if meta.get("name") != name:
                raise status.bad_request("metadata.name cannot be changed by a patch")
            manager = options.field_manager or "unknown"
            return self._write(rt, namespace, name, old, obj, subresource, manager, options)

    def apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        options: WriteOptions,
        *,
        subresource: str = "",
    ) -> WriteResult:
        """Server-side apply (``application/apply-patch+yaml``)."""
        if not options.field_manager:
            raise EmulatedAPIError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                "is required for apply patch",
                details={
                    "group": "meta.k8s.io",
                    "kind": "PatchOptions",
                    "causes": [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: is required for apply patch",
                            "field": "fieldManager",
                        }
                    ],
                },
            )
        applied = _parse_apply_body(body)
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise status.bad_request(
                f"Object 'Kind' is missing in '{json.dumps(applied, separators=(',', ':'))[:200]}'"
            )
        if applied["apiVersion"] != rt.api_version or applied["kind"] != rt.kind:
            raise status.bad_request(
                f"the API version in the data ({applied['apiVersion']}) does not match the "
                f"expected API version ({rt.api_version})"
                if applied["apiVersion"] != rt.api_version
                else f"the kind in the data ({applied['kind']}) does not match the expected "
                f"kind ({rt.kind})"
            )
        meta = applied.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise status.bad_request("metadata must be an object")
        if meta.get("name") and meta["name"] != name:
            raise status.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the "
                f"URL ({name})"
            )
        meta["name"] = name
        self._check_namespace_of_body(rt, namespace, meta)
        apply_warnings: builtins.list[str] = []
        if rt.crd is not None:
            # Unknown fields of the applied configuration go before ownership is computed.
            schema = rt.version_schema()
            if schema is not None:
                pruned, removed = crd_schema.prune(schema, applied)
                if removed and options.field_validation == "Strict":
                    unknown = ", ".join(f'unknown field "{p}"' for p in removed)
                    raise status.bad_request(
                        f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                        f"strict decoding error: {unknown}"
                    )
                if options.field_validation != "Ignore":
                    apply_warnings = [f'unknown field "{p}"' for p in removed]
                applied = pruned
        part = "all"
        if rt.has_status:
            part = "status" if subresource == "status" else "main"
        me = managed.Entry(
            options.field_manager, "Apply", rt.api_version, set(), subresource, now_rfc3339()
        )
        with self._lock:
            old = self._stored(rt, namespace, name)
            created = old is None
            if created:
                problems = validation.check_name(rt, name)
                if problems:
                    raise status.invalid(rt, name, problems)
                if subresource:
                    raise status.not_found(rt, name)
                if rt.namespaced:
                    self._check_namespace_open(rt, namespace or "", name)
            live = to_view(rt, old) if old is not None else None
            entries = managed.parse_entries(live or {})
            try:
                merged, new_entries = managed.apply_upgrading_client_side(
                    live, applied, entries, me, types_for(rt), force=options.force, part=part
                )
            except managed.ApplyConflict as exc:
                causes = [
                    {
                        "reason": "FieldManagerConflict",
                        "message": f"conflict with {c.entry.describe()}",
                        "field": managed.render_path(c.path),
                    }
                    for c in exc.conflicts
                ]
                raise EmulatedAPIError(
                    409,
                    "Conflict",
                    str(exc),
                    details={"name": name, "group": rt.group, "kind": rt.plural, "causes": causes},
                ) from None
            obj = from_view(rt, merged)
            obj.setdefault("metadata", {})["managedFields"] = managed.render_entries(new_entries)
            result = self._write(
                rt,
                namespace,
                name,
                old,
                obj,
                subresource,
                options.field_manager,
                options,
                applied=True,
            )
            result.warnings = apply_warnings + result.warnings
            return result

    # -- the write pipeline --------------------------------------------------------------------

    def _write(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        old: Obj | None,
        new: Obj,
        subresource: str,
        manager: str,
        options: WriteOptions,
        *,
        applied: bool = False,
    ) -> WriteResult:
        meta = new.setdefault("metadata", {})
        # Like the real field manager, managedFields written in an update replace the live
        # ones (kubectl's client-side-to-server-side apply migration relies on it); an update
        # without them, or to a subresource, keeps the live ones.
        given = meta.get("managedFields")
        written_entries = (
            managed.parse_entries(new)
            if not applied and not subresource and given and given != [{}]
            else None
        )
        if old is not None:
            old_meta = _meta(old)
            wanted_rv = meta.get("resourceVersion")
            if wanted_rv and wanted_rv != old_meta.get("resourceVersion"):
                raise status.stale(rt, name)
        new = self._prepare(rt, namespace, name, old, new, subresource)
        meta = new["metadata"]
        warnings: builtins.list[str] = []
        problems: builtins.list[Problem] = validation.check_metadata(new)
        if rt.crd is not None:
            new, warnings = validation.check_custom(
                rt, name, new, to_view(rt, old) if old else None, options.field_validation
            )
            meta = new["metadata"]
        elif rt.kind == "CustomResourceDefinition":
            problems += validation.check_crd(new)
        else:
            if subresource != "status":
                defaults.apply_defaults(rt.group, rt.kind, rt.version, new)
            problems += validation.check_builtin(rt, new)
        if old is not None and _meta(old).get("deletionTimestamp"):
            added = [
                f
                for f in meta.get("finalizers") or []
                if f not in (_meta(old).get("finalizers") or [])
            ]
            if added:
                problems.append(
                    Problem(
                        "metadata.finalizers",
                        "Forbidden: no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers []string{{{', '.join(map(json.dumps, added))}}}",
                    )
                )
        if problems:
            raise status.invalid(rt, name, problems)
        if rt.has_generation and old is not None and _spec_part(new, rt) != _spec_part(old, rt):
            meta["generation"] = int(_meta(old).get("generation") or 1) + 1
        # ``managedFields: [{}]`` is the documented way to strip every entry.
        reset = meta.get("managedFields") == [{}]
        if reset:
            meta.pop("managedFields", None)
        if not applied and not reset:
            part = "all"
            if rt.has_status:
                part = "status" if subresource == "status" else "main"
            me = managed.Entry(manager, "Update", rt.api_version, set(), subresource, now_rfc3339())
            entries = written_entries
            if entries is None:
                entries = managed.parse_entries(to_view(rt, old)) if old else []
            new_entries = managed.track_update(
                entries,
                to_view(rt, old) if old else None,
                to_view(rt, new),
                me,
                types_for(rt),
                part=part,
            )
            meta["managedFields"] = managed.render_entries(new_entries)
        if not meta.get("managedFields"):
            meta.pop("managedFields", None)
        return self._commit(rt, old, new, options, warnings)

    def _prepare(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        old: Obj | None,
        new: Obj,
        subresource: str,
    ) -> Obj:
        """Server-owned metadata, and the split between the main resource and ``status``."""
        new["apiVersion"] = (
            from_view(rt, {})["apiVersion"]
            if old is None
            else old.get("apiVersion", rt.api_version)
        )
        if rt.crd is not None:
            new["apiVersion"] = rt.api_version
        new["kind"] = rt.kind
        meta = new["metadata"]
        meta["name"] = name
        if rt.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta.pop("selfLink", None)
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta.pop("resourceVersion", None)
            meta.pop("deletionTimestamp", None)
            meta.pop("deletionGracePeriodSeconds", None)
            if rt.has_generation:
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            if rt.has_status:
                new.pop("status", None)
            _defaults_on_create(rt, new)
            return new
        old_meta = _meta(old)
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        if rt.has_status and subresource == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            result["metadata"]["managedFields"] = meta.get(
                "managedFields", old_meta.get("managedFields")
            )
            return result
        if rt.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        if rt.kind == "Namespace" and subresource != "finalize":
            new["spec"] = copy.deepcopy(old.get("spec", {}))
        return new

    def _commit(
        self,
        rt: ResourceType,
        old: Obj | None,
        new: Obj,
        options: WriteOptions,
        warnings: builtins.list[str],
    ) -> WriteResult:
        if old is not None and _same(old, new):
            return WriteResult(to_view(rt, old), warnings)
        finished = old is not None and self._deletion_done(rt, new)
        if options.dry_run:
            if old is None:
                new["metadata"].pop("resourceVersion", None)
            return WriteResult(to_view(rt, new), warnings, created=old is None, deleted=finished)
        if finished:
            stored = self.store.commit(rt.storage, "DELETED", new, old)
            self._after(rt, "DELETED", stored)
            return WriteResult(to_view(rt, stored), warnings, deleted=True)
        change = "ADDED" if old is None else "MODIFIED"
        stored = self.store.commit(rt.storage, change, new, old)
        revision = self.store.revision
        self._after(rt, change, stored)
        if self.store.revision != revision:  # what ``_after`` wrote is part of the answer
            stored = (
                self._stored(rt, _meta(stored).get("namespace"), _meta(stored)["name"]) or stored
            )
        return WriteResult(to_view(rt, stored), warnings, created=old is None)

    @staticmethod
    def _deletion_done(rt: ResourceType, obj: Obj) -> bool:
        meta = _meta(obj)
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return False
        return not (rt.kind == "Namespace" and (obj.get("spec") or {}).get("finalizers"))

    def _after(self, rt: ResourceType, change: str, stored: Obj) -> None:
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self._crd_changed(change, stored)
        if rt.kind == "Namespace" and rt.group == "" and change == "ADDED":
            self._namespace_created(stored)
        for hook in list(self.after_commit):
            hook(rt, change, stored)

    # -- writes: delete ------------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> WriteResult:
        """DELETE: gone at once, or marked with ``deletionTimestamp`` while finalizers remain."""
        if "delete" not in rt.verbs:
            raise status.method_not_allowed("")
        if propagation not in {None, "", "Foreground", "Background", "Orphan"}:
            raise status.bad_request(
                'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                f'Unsupported value: "{propagation}"'
            )
        with self._lock:
            old = self._stored(rt, namespace, name)
            if old is None:
                raise status.not_found(rt, name)
            meta = _meta(old)
            for key in ("uid", "resourceVersion"):
                wanted = (preconditions or {}).get(key)
                if wanted and wanted != meta.get(key):
                    label = "UID" if key == "uid" else "ResourceVersion"
                    raise status.conflict(
                        rt,
                        name,
                        f"Precondition failed: {label} in precondition: {wanted}, "
                        f"{label} in object meta: {meta.get(key)}",
                    )
            new = copy.deepcopy(old)
            new_meta = new["metadata"]
            finalizers = list(new_meta.get("finalizers") or [])
            if propagation == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if propagation == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            pending = bool(finalizers) or (
                rt.kind == "Namespace" and (new.get("spec") or {}).get("finalizers")
            )
            if not pending:
                if dry_run:
                    return WriteResult(to_view(rt, old), deleted=True)
                stored = self.store.commit(rt.storage, "DELETED", new, old)
                self._after(rt, "DELETED", stored)
                return WriteResult(to_view(rt, stored), deleted=True)
            if finalizers:
                new_meta["finalizers"] = finalizers
            if not new_meta.get("deletionTimestamp"):
                new_meta["deletionTimestamp"] = now_rfc3339()
                new_meta["deletionGracePeriodSeconds"] = 0
                if rt.has_generation:
                    new_meta["generation"] = int(new_meta.get("generation") or 1) + 1
                if rt.kind == "Namespace":
                    new.setdefault("status", {})["phase"] = "Terminating"
            if _same(old, new):
                return WriteResult(to_view(rt, old))
            if dry_run:
                return WriteResult(to_view(rt, new))
            stored = self.store.commit(rt.storage, "MODIFIED", new, old)
            self._after(rt, "MODIFIED", stored)
            return WriteResult(to_view(rt, stored))

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        propagation: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """DELETE on a collection: delete every matching object; answers the list deleted."""
        listed = self.list(
            rt, namespace, label_selector=label_selector, field_selector=field_selector
        )
        items = []
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                result = self.delete(
                    rt,
                    meta.get("namespace"),
                    meta["name"],
                    propagation=propagation,
                    dry_run=dry_run,
                )
            except EmulatedAPIError as exc:
                if exc.code != 404:
                    raise
                continue
            items.append(result.obj)
        listed["items"] = items
        return listed

    # -- CRDs and namespaces -------------------------------------------------------------------

    def _crd_changed(self, change: str, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        if change == "DELETED":
            self.catalog.unregister_crd(name)
            return
        self.catalog.register_crd(crd)
        if crd["metadata"].get("deletionTimestamp"):
            return
        crd_rt = self.catalog.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_rt is not None
        wanted = copy.deepcopy(crd)
        meta = wanted["metadata"]
        if CRD_CLEANUP_FINALIZER not in (meta.get("finalizers") or []):
            meta.setdefault("finalizers", []).append(CRD_CLEANUP_FINALIZER)
        spec = crd["spec"]
        accepted = copy.deepcopy(spec["names"])
        accepted.setdefault("singular", accepted["kind"].lower())
        accepted.setdefault("listKind", f"{accepted['kind']}List")
        stamp = now_rfc3339()
        previous = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}
        conditions = []
        for ctype, reason, message in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ):
            old_condition = previous.get(ctype)
            since = (
                old_condition.get("lastTransitionTime")
                if old_condition and old_condition.get("status") == "True"
                else stamp
            )
            conditions.append(
                {
                    "type": ctype,
                    "status": "True",
                    "lastTransitionTime": since,
                    "reason": reason,
                    "message": message,
                }
            )
        stored_versions = list((crd.get("status") or {}).get("storedVersions") or [])
        if storage_version(crd) not in stored_versions:
            stored_versions.append(storage_version(crd))
        wanted["status"] = {
            "conditions": conditions,
            "acceptedNames": accepted,
            "storedVersions": stored_versions,
        }
        if wanted == crd:
            return
        if "managedFields" in meta:
            entries = managed.parse_entries(crd)
            me = managed.Entry(
                "kube-apiserver", "Update", "apiextensions.k8s.io/v1", set(), "status", stamp
            )
            entries = managed.track_update(
                entries, crd, wanted, me, types_for(crd_rt), part="status"
            )
            meta["managedFields"] = managed.render_entries(entries)
        stored = self.store.commit(crd_rt.storage, "MODIFIED", wanted, crd)
        self._after(crd_rt, "MODIFIED", stored)

    def _namespace_created(self, ns: Obj) -> None:
        name = ns["metadata"]["name"]
        sa_rt = self.catalog.lookup("", "v1", "serviceaccounts")
        cm_rt = self.catalog.lookup("", "v1", "configmaps")
        assert sa_rt is not None and cm_rt is not None
        system = WriteOptions(field_manager="kube-controller-manager")
        if self._stored(sa_rt, name, "default") is None:
            self._write(
                sa_rt,
                name,
                "default",
                None,
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": name},
                },
                "",
                "kube-controller-manager",
                system,
            )
        if self._stored(cm_rt, name, "kube-root-ca.crt") is None:
            data = {"ca.crt": _FAKE_CA}
            self._write(
                cm_rt,
                name,
                "kube-root-ca.crt",
                None,
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "data": data,
                    "metadata": {
                        "name": "kube-root-ca.crt",
                        "namespace": name,
                        "annotations": {"kubernetes.io/description": _CA_DESCRIPTION},
                    },
                },
                "",
                "kube-controller-manager",
                system,
            )

    def ensure_namespace(self, name: str) -> None:
        """Create namespace ``name`` unless it exists."""
        ns_rt = self.catalog.lookup("", "v1", "namespaces")
        assert ns_rt is not None
        with self._lock:
            if self._stored(ns_rt, None, name) is None:
                self.create(
                    ns_rt,
                    None,
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                    WriteOptions(field_manager="kube-apiserver"),
                )

    def commit_system(self, rt: ResourceType, old: Obj, new: Obj) -> Obj:
        """Store a change made by the emulated controllers (no admission, no field tracking)."""
        with self._lock:
            current = self._stored(rt, _meta(old).get("namespace"), _meta(old)["name"])
            if current is None or _meta(current).get("resourceVersion") != _meta(old).get(
                "resourceVersion"
            ):
                raise status.stale(rt, _meta(old)["name"])
            if _same(current, new):
                return current
            if self._deletion_done(rt, new):
                stored = self.store.commit(rt.storage, "DELETED", new, current)
                self._after(rt, "DELETED", stored)
                return stored
            stored = self.store.commit(rt.storage, "MODIFIED", new, current)
            self._after(rt, "MODIFIED", stored)
            return stored


_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across "
    "distributions of Kubernetes clusters."
)
_FAKE_CA = "-----BEGIN CERTIFICATE-----\nMIRAGE-SANDBOX-NOT-A-REAL-CA\n-----END CERTIFICATE-----\n"


def _same(a: Obj, b: Obj) -> bool:
    return a == b


def _item_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _meta(obj)
    return (meta.get("namespace") or "", meta.get("name") or "")


def _encode_continue(revision: int, after: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": list(after)})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(raw["rv"]), (str(raw["start"][0]), str(raw["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError):
        raise status.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion"
        ) from None


def _as_object(body: Any) -> Obj:
    if not isinstance(body, Mapping):
        raise status.bad_request("the request body must be a JSON object")
    return copy.deepcopy(dict(body))


def _parse_patch_body(body: Any) -> Any:
    if isinstance(body, (bytes, str)):
        try:
            return json.loads(body)
        except ValueError as exc:
            raise status.bad_request(f"the request body is not valid JSON: {exc}") from None
    return copy.deepcopy(body)


class _NotPlainJSON(ValueError):
    """Text that JSON rules alone do not decide: left to the YAML decoder."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _NotPlainJSON("a duplicate key")
    return obj


def _refuse_constant(name: str) -> Any:
    raise _NotPlainJSON(name)  # NaN and Infinity are not JSON


def _plain_json(text: str) -> Any:
    """``text`` decoded as JSON, which the API server's YAML decoder reads the same way and
    clients send under the apply-patch+yaml type (kubectl, kopf, the operator); ``None``
    for anything else (YAML, duplicate keys, NaN, nesting past the interpreter's limit),
    which the bounded YAML loader decides. The C JSON decoder is ~20x the YAML composer's
    speed: in the benchmark, decoding apply bodies was 18 % of the emulated API's CPU."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None


def _parse_apply_body(body: Any) -> Obj:
    if isinstance(body, (bytes, str)):
        try:
            text = body if isinstance(body, str) else yamlsafe.decode(body, source="body")
            parsed = _plain_json(text)
            if parsed is None:
                parsed = yamlsafe.load_one(text, source="the apply configuration")
        except yamlsafe.YAMLInputError as exc:
            raise status.bad_request(f"error decoding YAML: {exc}") from None
    else:
        parsed = copy.deepcopy(body)
    if not isinstance(parsed, dict):
        raise status.bad_request("the apply configuration must be an object")
    return parsed


_SERVICE_IPS = iter(range(1, 65000))


def _defaults_on_create(rt: ResourceType, obj: Obj) -> None:
    """What the server allocates once, on create (Service IPs, Namespace phase); defaults
    that hold on every write are :mod:`.defaults`'."""
    if rt.crd is not None:
        return
    if rt.kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"][
            "name"
        ]
    elif rt.kind == "Service":
        spec = obj.setdefault("spec", {})
        if spec.get("clusterIP") != "None" and spec.get("type", "ClusterIP") != "ExternalName":
            n = next(_SERVICE_IPS)
            spec.setdefault("clusterIP", f"10.96.{n // 250}.{n % 250 + 1}")
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        obj["status"] = {"loadBalancer": {}}
