"""Decoding the protobuf request bodies kubectl's typed commands send.

``kubectl create namespace|configmap|secret|serviceaccount|token`` and ``kubectl auth
can-i`` encode their object as
Kubernetes protobuf (``application/vnd.kubernetes.protobuf``: the ``k8s\\x00`` magic, then a
``runtime.Unknown`` envelope naming apiVersion/kind around the object's message), and a real
server has no JSON fallback for them. This module decodes exactly those kinds (and
DeleteOptions) into the JSON shape, dropping zero values as Go's ``omitempty`` does. Answers
stay JSON, which clients accept. Anything else is refused with 415, as before.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

MAGIC = b"k8s\x00"

# A message spec maps field numbers to (json name, type); a type is a scalar name, a nested
# spec (dict), ("repeated", type) or ("map", value type) for map<string, value>.
Spec = dict[int, tuple[str, Any]]

TIME: Spec = {1: ("seconds", "int"), 2: ("nanos", "int")}
OWNER_REFERENCE: Spec = {
    1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
    5: ("apiVersion", "string"), 6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool"),
}  # fmt: skip
OBJECT_META: Spec = {
    1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
    5: ("uid", "string"), 6: ("resourceVersion", "string"), 7: ("generation", "int"),
    8: ("creationTimestamp", "time"), 9: ("deletionTimestamp", "time"),
    10: ("deletionGracePeriodSeconds", "int"), 11: ("labels", ("map", "string")),
    12: ("annotations", ("map", "string")), 13: ("ownerReferences", ("repeated", OWNER_REFERENCE)),
    14: ("finalizers", ("repeated", "string")),
}  # fmt: skip
OBJECT_REFERENCE: Spec = {
    1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string"), 4: ("uid", "string"),
    5: ("apiVersion", "string"), 6: ("resourceVersion", "string"), 7: ("fieldPath", "string"),
}  # fmt: skip
KINDS: dict[tuple[str, str], Spec] = {
    ("v1", "ConfigMap"): {
        1: ("metadata", OBJECT_META), 2: ("data", ("map", "string")),
        3: ("binaryData", ("map", "bytes")), 4: ("immutable", "bool"),
    },
    ("v1", "Secret"): {
        1: ("metadata", OBJECT_META), 2: ("data", ("map", "bytes")), 3: ("type", "string"),
        4: ("stringData", ("map", "string")), 5: ("immutable", "bool"),
    },
    ("v1", "Namespace"): {
        1: ("metadata", OBJECT_META), 2: ("spec", {1: ("finalizers", ("repeated", "string"))}),
    },
    ("v1", "ServiceAccount"): {
        1: ("metadata", OBJECT_META), 2: ("secrets", ("repeated", OBJECT_REFERENCE)),
        3: ("imagePullSecrets", ("repeated", {1: ("name", "string")})),
        4: ("automountServiceAccountToken", "bool"),
    },
    ("authentication.k8s.io/v1", "TokenRequest"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", {
            1: ("audiences", ("repeated", "string")), 4: ("expirationSeconds", "int"),
            3: ("boundObjectRef", {1: ("kind", "string"), 2: ("apiVersion", "string"),
                                   3: ("name", "string"), 4: ("uid", "string")}),
        }),
    },
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): {
        1: ("metadata", OBJECT_META),
        2: ("spec", {
            1: ("resourceAttributes", {
                1: ("namespace", "string"), 2: ("verb", "string"), 3: ("group", "string"),
                4: ("version", "string"), 5: ("resource", "string"),
                6: ("subresource", "string"), 7: ("name", "string"),
            }),
            2: ("nonResourceAttributes", {1: ("path", "string"), 2: ("verb", "string")}),
        }),
    },
    ("meta.k8s.io/v1", "DeleteOptions"): {
        1: ("gracePeriodSeconds", "int"),
        2: ("preconditions", {1: ("uid", "string"), 2: ("resourceVersion", "string")}),
        3: ("orphanDependents", "bool"), 4: ("propagationPolicy", "string"),
        5: ("dryRun", ("repeated", "string")),
    },
    ("v1", "DeleteOptions"): {
        1: ("gracePeriodSeconds", "int"),
        2: ("preconditions", {1: ("uid", "string"), 2: ("resourceVersion", "string")}),
        3: ("orphanDependents", "bool"), 4: ("propagationPolicy", "string"),
        5: ("dryRun", ("repeated", "string")),
    },
}  # fmt: skip


class ProtobufError(ValueError):
    """The body is not a protobuf message this server can read."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ProtobufError("varint too long")


def fields(data: bytes) -> list[tuple[int, int, Any]]:
    """The raw (field number, wire type, value) triples of one message."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
            if pos > len(data):
                raise ProtobufError("truncated field")
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: str, wire: int, value: Any) -> Any:
    if kind == "string":
        return bytes(value).decode("utf-8")
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode()
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return _signed(value)
    if kind == "time":
        parsed = decode_message(bytes(value), TIME)
        seconds = parsed.get("seconds", 0)
        if not seconds:
            return None
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise ProtobufError(f"unknown scalar {kind}")


def _value(kind: Any, wire: int, value: Any) -> Any:
    if isinstance(kind, dict):
        return decode_message(bytes(value), kind)
    return _scalar(kind, wire, value)


def _empty(value: Any) -> bool:
    return value in (None, "", 0, False) or value == {} or value == []


def decode_message(data: bytes, spec: Spec) -> dict[str, Any]:
    """Decode one message by ``spec``, omitting zero values (Go's ``omitempty``)."""
    out: dict[str, Any] = {}
    for number, wire, raw in fields(data):
        if number not in spec:
            continue  # fields we do not model: dropped, like unknown JSON fields
        name, kind = spec[number]
        if isinstance(kind, tuple) and kind[0] == "repeated":
            out.setdefault(name, []).append(_value(kind[1], wire, raw))
        elif isinstance(kind, tuple) and kind[0] == "map":
            entry = {n: v for n, _, v in fields(bytes(raw))}
            key = bytes(entry.get(1, b"")).decode("utf-8")
            out.setdefault(name, {})[key] = _value(kind[1], 2, entry.get(2, b""))
        else:
            decoded = _value(kind, wire, raw)
            if not _empty(decoded):
                out[name] = decoded
    return {k: v for k, v in out.items() if not _empty(v) or k in {"data", "stringData"}}


def decode(body: bytes) -> dict[str, Any]:
    """Decode a ``k8s\\x00``-framed protobuf object into its JSON form."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    envelope = {n: v for n, _, v in fields(body[len(MAGIC) :])}
    type_meta = {n: bytes(v).decode() for n, _, v in fields(bytes(envelope.get(1, b"")))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    spec = KINDS.get((api_version, kind))
    if spec is None:
        raise ProtobufError(f"protobuf bodies of {api_version}/{kind} are not supported")
    obj = decode_message(bytes(envelope.get(2, b"")), spec)
    return {"apiVersion": api_version, "kind": kind, **obj}
