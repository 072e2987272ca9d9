"""Label and field selectors, parsed and matched as kube-apiserver does.

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``,
joined by commas (all must hold). Field selectors: ``f=v``, ``f==v``, ``f!=v`` over the fields
each resource supports (``metadata.name``, ``metadata.namespace`` everywhere, plus a few per
kind such as ``involvedObject.name`` for events and ``status.phase`` for pods).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mirage_sandbox.apiserver.status import bad_request
from mirage_sandbox.errors import EmulatedAPIError

_SET_EXPR = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*\Z")
_EQ_EXPR = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*\Z")


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this clause."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in {"=", "in"}:
            return present and value in self.values
        return not present or value not in self.values  # "!=" and "notin"


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (part.strip() for part in parts) if p]


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse a label selector; 400 BadRequest on a syntax error, like the real server."""
    if not text:
        return []
    requirements = []
    for clause in _split_top(text):
        eq = _EQ_EXPR.match(clause)
        if eq:
            key, op, value = eq.groups()
            requirements.append(Requirement(key, "!=" if op == "!=" else "=", frozenset({value})))
            continue
        match = _SET_EXPR.match(clause)
        if not match:
            raise bad_request(
                f"unable to parse requirement: found '{clause}', expected: identifier"
            )
        negated, key, op, values = match.groups()
        if op:
            if negated:
                raise bad_request(f"unable to parse requirement: '{clause}'")
            vals = frozenset(v.strip() for v in values.split(",") if v.strip())
            requirements.append(Requirement(key, op, vals))
        else:
            requirements.append(Requirement(key, "!exists" if negated else "exists"))
    return requirements


def labels_match(requirements: list[Requirement], obj: Mapping[str, Any]) -> bool:
    """Whether ``obj``'s labels satisfy every requirement."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


def match_label_selector_object(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Match a structured ``LabelSelector`` (``matchLabels``/``matchExpressions``)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in selector.get("matchExpressions") or []:
        req = Requirement(expr["key"], ops[expr["operator"]], frozenset(expr.get("values") or []))
        if not req.matches(labels):
            return False
    return True


def _dig(obj: Mapping[str, Any], dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _as_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Fields each kind supports beyond metadata.name/metadata.namespace (the field label
# conversion functions of the real registries).
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "regarding.kind",
        "regarding.name",
        "regarding.namespace",
        "regarding.uid",
    ),
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "ReplicaSet": ("status.replicas",),
    "Node": ("spec.unschedulable",),
}


@dataclass(frozen=True)
class FieldRequirement:
    """One clause of a field selector."""

    field: str
    negated: bool
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` satisfies this clause."""
        if self.field == "source":
            actual = _as_field(_dig(obj, "source.component"))
        else:
            actual = _as_field(_dig(obj, self.field))
        return (actual == self.value) != self.negated


def parse_field_selector(text: str | None, kind: str, *, custom: bool) -> list[FieldRequirement]:
    """Parse a field selector for ``kind``; 400 naming an unsupported field, as the server does.
    Custom resources support ``metadata.name`` and ``metadata.namespace`` (plus CRD
    ``selectableFields``, passed in ``kind`` checks by the caller)."""
    if not text:
        return []
    allowed = {"metadata.name", "metadata.namespace", *_KIND_FIELDS.get("" if custom else kind, ())}
    requirements = []
    for clause in _split_top(text):
        eq = _EQ_EXPR.match(clause)
        if not eq:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{clause}'")
        field, op, value = eq.groups()
        if field not in allowed:
            raise bad_request(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, op == "!=", value))
    return requirements


def fields_match(requirements: list[FieldRequirement], obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` satisfies every field requirement."""
    return all(r.matches(obj) for r in requirements)


def make_filter(
    label_selector: str | None,
    field_selector: str | None,
    kind: str,
    *,
    custom: bool,
    extra_fields: tuple[str, ...] = (),
) -> Callable[[Mapping[str, Any]], bool]:
    """One predicate for both selectors (raises 400 on a malformed one)."""
    labels = parse_label_selector(label_selector)
    try:
        fields = parse_field_selector(field_selector, kind, custom=custom)
    except EmulatedAPIError:
        if not extra_fields:
            raise
        # CRD selectableFields: re-parse allowing them.
        fields = []
        for clause in _split_top(field_selector or ""):
            eq = _EQ_EXPR.match(clause)
            if not eq or eq.group(1) not in {"metadata.name", "metadata.namespace", *extra_fields}:
                raise
            fields.append(FieldRequirement(eq.group(1), eq.group(2) == "!=", eq.group(3)))

    def predicate(obj: Mapping[str, Any]) -> bool:
        return labels_match(labels, obj) and fields_match(fields, obj)

    return predicate
