"""``spec.destination``: which Secret a VaultSecret writes, whether it may write it, what it
writes there.

- :func:`observe` reads the Secret named ``destination.name`` (default: the VaultSecret's
  name), and the one written before under another name (``status.secretName``, deleted once
  the new one is written). A Secret another object controls is never written; a user's own
  only with ``destination.overwrite`` (docs/adr/0069).
- :func:`desired_secret` builds the Secret from Vault's data (pure builders in
  :mod:`mirage_operator.render.secret`: keys, templates, type, labels).
- :func:`write` applies it by server-side apply, owned by the VaultSecret, and removes the
  keys Vault does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirage_operator.api.vaultsecret import VaultSecretSpec
from mirage_operator.errors import KubernetesAPIError, SecretConflictError, SecretExistsError
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.k8s import resources
from mirage_operator.k8s.children import Observed, SyncResult, converge_children
from mirage_operator.k8s.client import KubeClient
from mirage_operator.k8s.ownership import ADOPTED_BY_ANNOTATION, controller_of, foreign_owner
from mirage_operator.render.meta import owner_reference
from mirage_operator.render.secret import build_secret, secret_labels, secret_with_data
from mirage_operator.vault import VaultData


async def observe(
    kube: KubeClient, body: Mapping[str, Any], spec: VaultSecretSpec, previous: str | None
) -> tuple[Observed, bool]:
    """The Secret this VaultSecret writes, and the one it wrote before under another
    destination name (so that it is deleted), each read by name; and whether the first is
    a Secret Mirage did not create that ``destination.overwrite`` lets it write into.

    A Secret controlled by another object is left alone (:class:`SecretConflictError`);
    one nobody controls (a user's own) too (:class:`SecretExistsError`), unless
    ``destination.overwrite`` is set. A previous destination is deleted only when this
    VaultSecret controls it.
    """
    meta = body["metadata"]
    namespace, secret_name = meta["namespace"], spec.secret_name(meta["name"])
    observed: Observed = {}
    adopted = False
    for name in dict.fromkeys(n for n in (secret_name, previous) if n):
        secret = await kube.get(resources.SECRET, namespace=namespace, name=name)
        foreign = foreign_owner(secret, body) if secret is not None else None
        if secret is None or (foreign is not None and name != secret_name):
            continue  # gone, or a previous destination that is not ours: left alone
        if foreign is not None:
            _check_adoption(secret, spec, foreign, meta["name"])
            adopted = True
        observed["Secret", name] = secret
    return observed, adopted


def _check_adoption(
    secret: Mapping[str, Any], spec: VaultSecretSpec, foreign: str, vault_secret: str
) -> None:
    """Raise unless ``destination.overwrite`` lets ``vault_secret`` write into the existing
    ``secret`` it does not control (``foreign`` says why)."""
    name = secret["metadata"]["name"]
    if controller_of(secret) is not None:
        raise SecretConflictError(f"{foreign}; choose another spec.destination.name", delay=60.0)
    adopter = (secret["metadata"].get("annotations") or {}).get(ADOPTED_BY_ANNOTATION)
    if adopter not in (None, vault_secret):
        raise SecretConflictError(
            f"Secret/{name} is written by VaultSecret {adopter}; choose another "
            "spec.destination.name",
            delay=60.0,
        )
    if not spec.destination.overwrite:
        raise SecretExistsError(
            f"{foreign}: left alone; set spec.destination.overwrite: true to replace its "
            "data with Vault's (it is then kept when this VaultSecret is deleted), or "
            "choose another spec.destination.name",
            delay=60.0,
        )
    live_type = secret.get("type", "Opaque")
    if live_type != spec.destination.type:
        raise SecretExistsError(
            f"Secret/{name} has type {live_type} and spec.destination.type is "
            f"{spec.destination.type}; a Secret's type cannot change",
            delay=60.0,
        )


def desired_secret(
    body: Mapping[str, Any],
    spec: VaultSecretSpec,
    read: VaultData | None,
    live: Mapping[str, Any] | None,
    rendered: Mapping[str, bytes],
    *,
    adopted: bool,
) -> dict[str, Any]:
    """The Secret to converge: built from what was read, or — when there was no reason to
    read — the live Secret's data (known to be the synced data) with the spec's metadata, so
    that an edit of its labels or type is restored without Vault. ``adopted``: a Secret
    Mirage did not create, written under ``destination.overwrite`` (no owner reference)."""
    meta = body["metadata"]
    fields: dict[str, Any] = {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "spec": spec,
        "labels": secret_labels(),
        "owner": owner_reference(body),
        "adopted_by": meta["name"] if adopted else None,
    }
    if read is not None:
        return build_secret(data=read.data, rendered=rendered, **fields)
    assert live is not None  # a missing Secret is always a reason to read
    return secret_with_data(data=live.get("data") or {}, **fields)


async def write(
    context: OperatorContext,
    body: Mapping[str, Any],
    desired: Mapping[str, Any],
    observed: Observed,
    known: bool,
) -> tuple[SyncResult, dict[str, Any] | None]:
    """Converge the Secret (and delete a previous destination); the result and the Secret as
    written. ``known``: it was synced before, so one found missing or changed is drift.
    Errors name the fields and the reason, never the API server's message (which might quote
    the data)."""
    name = desired["metadata"]["name"]
    try:
        result = await converge_children(
            context.kube.client,
            owner=body,
            desired=[desired],
            observed=observed,
            field_manager=context.config.field_manager,
            known={("Secret", name)} if known else set(),
        )
    except KubernetesAPIError as error:
        raise error.about(f"writing Secret {name}", quote_values=False) from None
    for failure in result.failed.values():
        raise failure.about("writing the Secret", quote_values=False) from None
    live = result.live.get(("Secret", name))
    namespace = body["metadata"]["namespace"]
    written = await _remove_other_keys(context.kube.client, namespace, desired, live)
    return result, written or live


async def _remove_other_keys(
    kube: KubeClient, namespace: str, desired: Mapping[str, Any], live: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Remove the keys of the live Secret that the VaultSecret does not write (another
    writer's, or a user's in a Secret written under ``destination.overwrite``): the Secret
    holds exactly Vault's data, and its HMAC stays equal to status. The Secret after the
    patch, if one was needed."""
    extra = set((live or {}).get("data") or {}) - set(desired["data"])
    if live is None or not extra:
        return None
    return await kube.merge_patch(
        resources.SECRET,
        namespace=namespace,
        name=live["metadata"]["name"],
        patch={"data": dict.fromkeys(sorted(extra))},
    )
