"""Server-side printing: the ``meta.k8s.io/v1`` ``Table`` that ``kubectl get`` asks for.

Built-ins get the columns kubectl users know (``READY``, ``UP-TO-DATE``, ``CLUSTER-IP``...);
custom resources get ``NAME`` plus their CRD's ``additionalPrinterColumns`` (``AGE`` when the
CRD declares none), evaluated with the JSONPath subset CRDs use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from mirage_sandbox.apiserver.resources import ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, str, Callable[[Obj], Any]]  # name, type, format, cell


def human_duration(seconds: float) -> str:
    """Kubernetes' ``HumanDuration`` (``45s``, ``3m20s``, ``5h``, ``12d``)."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return f"{hours // (24 * 365)}y{(hours // 24) % 365}d"
    return f"{hours // (24 * 365)}y"


def age(timestamp: Any) -> str:
    """Time since an RFC 3339 timestamp, humanised (``<unknown>`` if absent)."""
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - then).total_seconds())


# -- JSONPath (the subset additionalPrinterColumns use) ---------------------------------------

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-$]+)
      | \[(?P<index>-?\d+|\*)\]
      | \[\?\(@\.(?P<fpath>[A-Za-z0-9_.\-]+)\s*(?P<op>==|!=)\s*(?P<fval>"[^"]*"|'[^']*'|[^)\s]+)\)\]
      | \[['"](?P<qfield>[^'"]+)['"]\]
    """,
    re.VERBOSE,
)


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Evaluate ``.a.b[0].c``, ``[*]`` and ``[?(@.type=="Ready")]`` paths; all matches."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    text = text.removeprefix("$")
    nodes: list[Any] = [obj]
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            return []
        pos = match.end()
        found: list[Any] = []
        for node in nodes:
            if match.group("field") is not None or match.group("qfield") is not None:
                name = match.group("field") or match.group("qfield")
                if isinstance(node, Mapping) and name in node:
                    found.append(node[name])
            elif match.group("index") is not None:
                if not isinstance(node, list):
                    continue
                if match.group("index") == "*":
                    found.extend(node)
                else:
                    i = int(match.group("index"))
                    if -len(node) <= i < len(node):
                        found.append(node[i])
            else:
                if not isinstance(node, list):
                    continue
                wanted = match.group("fval").strip("'\"")
                for item in node:
                    values = jsonpath(item, "." + match.group("fpath"))
                    hit = bool(values) and str(_scalar(values[0])) == wanted
                    if hit == (match.group("op") == "=="):
                        found.append(item)
        nodes = found
    return nodes


def _scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


# -- columns ---------------------------------------------------------------------------------


def _name(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _age(obj: Obj) -> str:
    return age(obj.get("metadata", {}).get("creationTimestamp"))


def _get(obj: Obj, dotted: str, default: Any = None) -> Any:
    values = jsonpath(obj, "." + dotted)
    return values[0] if values else default


def _ports(obj: Obj) -> str:
    ports = (obj.get("spec") or {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _selector(selector: Any) -> str:
    labels = (selector or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "<none>"


def _ready(obj: Obj) -> str:
    status = obj.get("status") or {}
    return f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 1)}"


def _event_object(obj: Obj) -> str:
    ref = obj.get("involvedObject") or obj.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _s(value: Any) -> str:
    return "<none>" if value in (None, "", [], {}) else str(value)


_NAME: Column = ("Name", "string", "name", _name)
_AGE: Column = ("Age", "string", "", _age)

BUILTIN_COLUMNS: dict[str, list[Column]] = {
    "Namespace": [_NAME, ("Status", "string", "", lambda o: _get(o, "status.phase", "")), _AGE],
    "Pod": [
        _NAME,
        (
            "Ready",
            "string",
            "",
            lambda o: "0/" + str(len((o.get("spec") or {}).get("containers") or [])),
        ),
        ("Status", "string", "", lambda o: _get(o, "status.phase", "Pending")),
        ("Restarts", "string", "", lambda o: "0"),
        _AGE,
    ],
    "Deployment": [
        _NAME,
        ("Ready", "string", "", _ready),
        ("Up-to-date", "integer", "", lambda o: _get(o, "status.updatedReplicas", 0)),
        ("Available", "integer", "", lambda o: _get(o, "status.availableReplicas", 0)),
        _AGE,
    ],
    "StatefulSet": [_NAME, ("Ready", "string", "", _ready), _AGE],
    "DaemonSet": [
        _NAME,
        ("Desired", "integer", "", lambda o: _get(o, "status.desiredNumberScheduled", 0)),
        ("Current", "integer", "", lambda o: _get(o, "status.currentNumberScheduled", 0)),
        ("Ready", "integer", "", lambda o: _get(o, "status.numberReady", 0)),
        _AGE,
    ],
    "Service": [
        _NAME,
        ("Type", "string", "", lambda o: _get(o, "spec.type", "ClusterIP")),
        ("Cluster-IP", "string", "", lambda o: _s(_get(o, "spec.clusterIP"))),
        ("External-IP", "string", "", lambda o: _s(_get(o, "spec.externalIPs"))),
        ("Port(s)", "string", "", _ports),
        _AGE,
    ],
    "Secret": [
        _NAME,
        ("Type", "string", "", lambda o: o.get("type", "Opaque")),
        (
            "Data",
            "integer",
            "",
            lambda o: len(o.get("data") or {}) + len(o.get("stringData") or {}),
        ),
        _AGE,
    ],
    "ConfigMap": [
        _NAME,
        (
            "Data",
            "integer",
            "",
            lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
        ),
        _AGE,
    ],
    "ServiceAccount": [
        _NAME,
        ("Secrets", "integer", "", lambda o: len(o.get("secrets") or [])),
        _AGE,
    ],
    "HorizontalPodAutoscaler": [
        _NAME,
        (
            "Reference",
            "string",
            "",
            lambda o: (
                f"{_get(o, 'spec.scaleTargetRef.kind', '')}/"
                f"{_get(o, 'spec.scaleTargetRef.name', '')}"
            ),
        ),
        ("MinPods", "string", "", lambda o: _s(_get(o, "spec.minReplicas", 1))),
        ("MaxPods", "integer", "", lambda o: _get(o, "spec.maxReplicas", 0)),
        ("Replicas", "integer", "", lambda o: _get(o, "status.currentReplicas", 0)),
        _AGE,
    ],
    "PodDisruptionBudget": [
        _NAME,
        ("Min Available", "string", "", lambda o: _s(_get(o, "spec.minAvailable", "N/A"))),
        ("Max Unavailable", "string", "", lambda o: _s(_get(o, "spec.maxUnavailable", "N/A"))),
        ("Allowed Disruptions", "integer", "", lambda o: _get(o, "status.disruptionsAllowed", 0)),
        _AGE,
    ],
    "Ingress": [
        _NAME,
        ("Class", "string", "", lambda o: _s(_get(o, "spec.ingressClassName"))),
        (
            "Hosts",
            "string",
            "",
            lambda o: (
                ",".join(str(r.get("host", "*")) for r in (o.get("spec") or {}).get("rules") or [])
                or "*"
            ),
        ),
        ("Address", "string", "", lambda o: ""),
        ("Ports", "string", "", lambda o: "80, 443" if (o.get("spec") or {}).get("tls") else "80"),
        _AGE,
    ],
    "NetworkPolicy": [
        _NAME,
        ("Pod-Selector", "string", "", lambda o: _selector(_get(o, "spec.podSelector"))),
        _AGE,
    ],
    "Event": [
        (
            "Last Seen",
            "string",
            "",
            lambda o: age(
                o.get("lastTimestamp") or o.get("eventTime") or o.get("deprecatedLastTimestamp")
            ),
        ),
        ("Type", "string", "", lambda o: o.get("type", "")),
        ("Reason", "string", "", lambda o: o.get("reason", "")),
        ("Object", "string", "", _event_object),
        ("Message", "string", "", lambda o: o.get("message") or o.get("note") or ""),
    ],
    "CustomResourceDefinition": [
        _NAME,
        ("Created At", "date", "", lambda o: _get(o, "metadata.creationTimestamp", "")),
    ],
    "Lease": [_NAME, ("Holder", "string", "", lambda o: _get(o, "spec.holderIdentity", "")), _AGE],
    "Endpoints": [_NAME, ("Endpoints", "string", "", lambda o: "<none>"), _AGE],
}


def _crd_columns(rt: ResourceType) -> list[Column]:
    entry = rt.version_entry()
    declared = entry.get("additionalPrinterColumns")
    if not declared:
        return [_NAME, _AGE]
    columns: list[Column] = [_NAME]
    for col in declared:
        path = str(col.get("jsonPath", ""))
        kind = str(col.get("type", "string"))

        def cell(obj: Obj, path: str = path, kind: str = kind) -> Any:
            values = jsonpath(obj, path)
            if not values:
                return None
            if kind == "date":
                return age(values[0])
            if len(values) > 1:
                return ",".join(str(_scalar(v)) for v in values)
            value = values[0]
            return value if kind in {"integer", "number", "boolean"} else str(_scalar(value))

        columns.append((str(col.get("name", "")), kind, str(col.get("format", "")), cell))
    return columns


def columns_for(rt: ResourceType) -> list[Column]:
    """The columns of ``rt``."""
    if rt.crd is not None:
        return _crd_columns(rt)
    return BUILTIN_COLUMNS.get(rt.kind, [_NAME, _AGE])


def _priority(rt: ResourceType, name: str) -> int:
    for col in rt.version_entry().get("additionalPrinterColumns") or []:
        if col.get("name") == name:
            return int(col.get("priority", 0))
    return 0


def to_table(
    rt: ResourceType,
    items: list[Obj],
    *,
    resource_version: str,
    include: str = "Metadata",
    continue_token: str | None = None,
) -> Obj:
    """A ``Table`` of ``items`` (``include``: ``None``, ``Metadata`` or ``Object``)."""
    columns = columns_for(rt)
    definitions = [
        {
            "name": name,
            "type": "string" if kind == "date" else kind,
            "format": fmt,
            "description": name,
            "priority": _priority(rt, name),
        }
        for name, kind, fmt, _ in columns
    ]
    rows = []
    for obj in items:
        row: Obj = {"cells": [cell(obj) for _, _, _, cell in columns]}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata", {}),
            }
        rows.append(row)
    metadata: Obj = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    }


def wants_table(accept: str) -> bool:
    """Whether an ``Accept`` header asks for a ``Table`` (``as=Table``)."""
    return any("as=Table" in {p.strip() for p in part.split(";")} for part in accept.split(","))
