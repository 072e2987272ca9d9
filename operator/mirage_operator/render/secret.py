"""Pure builders of the Secret a VaultSecret keeps in sync, its HMAC, and a value-free preview.

Templates are evaluated by :mod:`mirage_operator.templating`. Errors raised here name keys and
Vault paths, never values. The operator runs the templates in a worker process bounded in
memory and time (:mod:`mirage_operator.template_worker`, docs/adr/0067).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from mirage_operator.api.vaultsecret import (
    VaultSecretSpec,
    is_secret_key,
    missing_type_keys,
)
from mirage_operator.errors import SecretDataError
from mirage_operator.k8s.ownership import ADOPTED_BY_ANNOTATION
from mirage_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL
from mirage_operator.templating import MAX_SECRET_BYTES, as_bytes, render_template

PREVIEW_ANNOTATION = "mirage.dev/preview"
"""Annotation on a preview Secret explaining where its values will come from."""

_MAC_DOMAIN = b"mirage.dev/secret-mac/v1\x00"


def _is_json(value: bytes) -> bool:
    # A bool, so that the decoder's error (which holds the document) is never chained.
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def secret_values(
    spec: VaultSecretSpec,
    data: Mapping[str, str | bytes],
    *,
    rendered: Mapping[str, bytes] | None = None,
) -> dict[str, bytes]:
    """The Secret's data (key to raw bytes) for the Vault ``data``: key selection and
    renaming, then templates (which see every Vault key and win over copied keys), then the
    Secret type's requirements. :class:`SecretDataError` when the data does not fit.

    ``rendered`` holds the templates already rendered (by the operator's bounded worker,
    :mod:`mirage_operator.template_worker`); ``None`` renders them here, unbounded in time."""
    where = spec.vault.display
    values: dict[str, bytes] = {}
    if spec.copies_all_keys:
        for key in sorted(data):
            if not is_secret_key(key):
                raise SecretDataError(
                    f"Vault key {key!r} at {where} is not a valid Secret key; list the keys "
                    "to copy with a rename in spec.keys"
                )
            values[key] = as_bytes(data[key])
    for mapping in spec.keys:
        if mapping.source not in data:
            raise SecretDataError(f"key {mapping.source!r} not found in Vault data at {where}")
        values[mapping.target] = as_bytes(data[mapping.source])
    for key, source in spec.templates.items():
        values[key] = rendered[key] if rendered is not None else render_template(key, source, data)

    reason = missing_type_keys(spec.destination.type, set(values))
    if reason is not None:
        raise SecretDataError(f"{reason} (Vault data at {where})")
    if spec.destination.type == "kubernetes.io/dockerconfigjson" and not _is_json(
        values[".dockerconfigjson"]
    ):
        raise SecretDataError(f".dockerconfigjson is not valid JSON (Vault data at {where})")
    if sum(len(k) + len(v) for k, v in values.items()) > MAX_SECRET_BYTES:
        raise SecretDataError(f"the Secret's data would exceed {MAX_SECRET_BYTES} bytes")
    return values


def _metadata(
    *,
    name: str,
    namespace: str,
    spec: VaultSecretSpec,
    labels: Mapping[str, str],
    owner: Mapping[str, Any] | None,
    extra_annotations: Mapping[str, str] | None = None,
    adopted_by: str | None = None,
) -> dict[str, Any]:
    # The operator's labels win: they are how it finds what it manages.
    metadata: dict[str, Any] = {
        "name": spec.secret_name(name),
        "namespace": namespace,
        "labels": {**spec.destination.labels, **labels},
    }
    annotations = {**spec.destination.annotations, **(extra_annotations or {})}
    if adopted_by is not None:
        annotations[ADOPTED_BY_ANNOTATION] = adopted_by
    if annotations:
        metadata["annotations"] = annotations
    if owner is not None and adopted_by is None:
        metadata["ownerReferences"] = [dict(owner)]
    return metadata


def secret_labels() -> dict[str, str]:
    """The operator's own labels on every Secret it keeps in sync (they win over the spec's:
    the first is how the operator finds what it manages)."""
    return {MANAGED_BY_LABEL: MANAGED_BY, "app.kubernetes.io/part-of": "mirage"}


def build_secret(
    *,
    name: str,
    namespace: str,
    spec: VaultSecretSpec,
    data: Mapping[str, str | bytes],
    labels: Mapping[str, str],
    owner: Mapping[str, Any] | None = None,
    rendered: Mapping[str, bytes] | None = None,
    adopted_by: str | None = None,
) -> dict[str, Any]:
    """The Secret for the VaultSecret ``name`` in ``namespace`` holding the Vault ``data``.

    ``labels`` are the operator's own labels (merged over ``spec.destination.labels``);
    ``owner`` is an ownerReference for the VaultSecret, set as the only owner; ``rendered``
    as in :func:`secret_values`. ``adopted_by`` (the VaultSecret's name) marks a Secret
    written under ``destination.overwrite`` that Mirage did not create: it gets the
    :data:`ADOPTED_BY_ANNOTATION` and no owner reference (docs/adr/0069).
    Raises :class:`SecretDataError` when the data does not fit the spec.
    """
    values = secret_values(spec, data, rendered=rendered)
    encoded = {k: base64.b64encode(v).decode("ascii") for k, v in values.items()}
    return secret_with_data(
        name=name,
        namespace=namespace,
        spec=spec,
        data=encoded,
        labels=labels,
        owner=owner,
        adopted_by=adopted_by,
    )


def secret_with_data(
    *,
    name: str,
    namespace: str,
    spec: VaultSecretSpec,
    data: Mapping[str, str],
    labels: Mapping[str, str],
    owner: Mapping[str, Any] | None = None,
    adopted_by: str | None = None,
) -> dict[str, Any]:
    """The Secret of :func:`build_secret` around data that is already final (key to base64
    text, as a live Secret holds it): restoring the Secret's metadata needs no Vault read."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(
            name=name,
            namespace=namespace,
            spec=spec,
            labels=labels,
            owner=owner,
            adopted_by=adopted_by,
        ),
        "type": spec.destination.type,
        "data": {k: data[k] for k in sorted(data)},
    }


def secret_mac(key: bytes, data: Mapping[str, str]) -> str:
    """HMAC-SHA256 (hex) of a Secret's ``data`` (key to base64 text, as in the Secret).

    The values are decoded first and the pairs encoded length-prefixed in key order, so the
    result depends only on the bytes the Secret holds: equal data, equal MAC, whatever the
    order of the mapping or the base64 layout.
    """
    mac = hmac.new(key, _MAC_DOMAIN, hashlib.sha256)
    for name in sorted(data, key=lambda k: k.encode("utf-8")):
        raw_name = name.encode("utf-8")
        value = base64.b64decode(data[name])
        mac.update(len(raw_name).to_bytes(4, "big") + raw_name)
        mac.update(len(value).to_bytes(8, "big") + value)
    return mac.hexdigest()


HMAC_KEY_FIELD = "key"
"""Key of the HMAC key Secret's data that holds the key."""

HMAC_KEY_BYTES = 32
"""Length of the HMAC key the operator generates, and the least it accepts."""


def build_hmac_key_secret(*, name: str, namespace: str, key: bytes) -> dict[str, Any]:
    """The Secret holding the installation's HMAC key (immutable: a changed key changes every
    ``status.secretMAC``, so it is replaced only by deleting it)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": secret_labels()},
        "type": "Opaque",
        "immutable": True,
        "data": {HMAC_KEY_FIELD: base64.b64encode(key).decode("ascii")},
    }


def hmac_key_of(secret: Mapping[str, Any]) -> bytes | None:
    """The HMAC key a key Secret holds; ``None`` when it holds no usable key."""
    encoded = (secret.get("data") or {}).get(HMAC_KEY_FIELD)
    if not isinstance(encoded, str):
        return None
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return None
    return key if len(key) >= HMAC_KEY_BYTES else None


def placeholder(spec: VaultSecretSpec, source_key: str | None) -> str:
    """The stand-in for one value in a preview: where it will come from, never what it is."""
    if source_key is None:
        return "<template>"
    return f"<vault {spec.vault.engine} {spec.vault.display}#{source_key}>"


def render_preview(
    *,
    name: str,
    namespace: str,
    spec: VaultSecretSpec,
    labels: Mapping[str, str],
    owner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Secret as ``mirage render`` shows it, without reading Vault: the keys the spec
    decides, each with a placeholder naming its source (``stringData``, so the document stays
    valid). When every Vault key is copied the keys are unknown and ``stringData`` is empty."""
    values: dict[str, str] = {m.target: placeholder(spec, m.source) for m in spec.keys}
    values.update({k: placeholder(spec, None) for k in spec.templates})
    if spec.copies_all_keys:
        note = f"every key of Vault {spec.vault.engine} {spec.vault.display}, read by the operator"
    else:
        note = f"values from Vault {spec.vault.engine} {spec.vault.display}, read by the operator"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(
            name=name,
            namespace=namespace,
            spec=spec,
            labels=labels,
            owner=owner,
            extra_annotations={PREVIEW_ANNOTATION: note},
        ),
        "type": spec.destination.type,
        "stringData": dict(sorted(values.items())),
    }
