"""``spec.destination``: which Secret a VaultSecret writes, whether it may write it, what it
writes there.

- :func:`observe` finds the Secret named ``destination.name`` (default: the VaultSecret's
  name), and the one written before under another name (``status.secretName``, deleted once
  the new one is written). Secrets Mirage labels are watched (metadata only: the index keeps
  no data), so a Secret the index does not hold is not read: it is created with a POST, which
  fails instead of taking over a Secret someone else made (docs/adr/0126). A Secret another
  object controls is never written; a user's own only with ``destination.overwrite``
  (docs/adr/0069).
- :func:`desired_secret` builds the Secret from Vault's data (pure builders in
  :mod:`mirage_operator.render.secret`: keys, templates, type, labels).
- :func:`write` creates or applies it (server-side apply), owned by the VaultSecret, and
  removes the keys Vault does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mirage_operator.api.vaultsecret import VaultSecretSpec
from mirage_operator.errors import KubernetesAPIError, SecretConflictError, SecretExistsError
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.k8s import resources
from mirage_operator.k8s.children import (
    INTENT_ANNOTATION,
    Observed,
    SyncResult,
    converge_children,
    observe_children,
)
from mirage_operator.k8s.ownership import ADOPTED_BY_ANNOTATION, controller_of, foreign_owner
from mirage_operator.render.meta import owner_reference
from mirage_operator.render.secret import build_secret, secret_labels, secret_with_data
from mirage_operator.vault import VaultData


@dataclass
class Destination:
    """What :func:`observe` found of the Secrets a VaultSecret writes and wrote."""

    name: str
    """The Secret to write."""
    observed: Observed = field(default_factory=dict)
    """The Secret to write as read (with its data), and a previous destination this
    VaultSecret controls (from the index: metadata only, enough to delete it)."""
    adopted: bool = False
    """The Secret exists, Mirage did not create it, and ``destination.overwrite`` lets this
    VaultSecret write into it."""

    @property
    def live(self) -> dict[str, Any] | None:
        """The Secret to write, as read; ``None`` when none is known (it is then created)."""
        return self.observed.get(("Secret", self.name))


async def observe(
    context: OperatorContext,
    body: Mapping[str, Any],
    spec: VaultSecretSpec,
    previous: str | None,
    *,
    check_first: bool = False,
) -> Destination:
    """The Secret this VaultSecret writes, read by name only when it is known to exist (the
    index of Secrets Mirage labels holds it) or ``check_first`` asks (it may exist without
    Mirage's label: ``destination.overwrite``, a read of Vault that issues credentials, or a
    create that found the name taken); and the one it wrote before under another name, when
    it controls it (so that it is deleted).

    A Secret controlled by another object is left alone (:class:`SecretConflictError`);
    one nobody controls (a user's own) too (:class:`SecretExistsError`), unless
    ``destination.overwrite`` is set.
    """
    meta = body["metadata"]
    namespace, secret_name = meta["namespace"], spec.secret_name(meta["name"])
    found = Destination(secret_name)
    if check_first or context.children.named("Secret", namespace, secret_name) is not None:
        secret = await context.kube.client.get(
            resources.SECRET, namespace=namespace, name=secret_name
        )
        if secret is not None:
            foreign = foreign_owner(secret, body)
            if foreign is not None:
                _check_adoption(secret, spec, foreign, meta["name"])
                found.adopted = True
            found.observed["Secret", secret_name] = secret
    if previous and previous != secret_name:
        # Deleted only when this VaultSecret controls it: the index holds it then (the
        # operator labels every Secret it writes). Another's is left alone, unread.
        owned = observe_children(context.children, owner=body).get(("Secret", previous))
        if owned is not None:
            found.observed["Secret", previous] = owned
    return found


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
    found: Destination,
    known: bool,
) -> tuple[SyncResult, dict[str, Any] | None] | None:
    """Converge the Secret (and delete a previous destination); the result and the Secret as
    written. ``known``: it was synced before, so one found missing or changed is drift.
    ``None`` when the Secret to create exists after all (one without Mirage's label, which the
    index cannot hold): nothing was written or deleted, the caller reads it and decides.
    Errors name the fields and the reason, never the API server's message (which might quote
    the data)."""
    name = desired["metadata"]["name"]
    key = ("Secret", name)
    try:
        result = await converge_children(
            context.kube.client,
            owner=body,
            desired=[desired],
            observed=found.observed,
            field_manager=context.config.field_manager,
            known={key} if known else set(),
            index=context.children,
            # A Secret not read is created, never applied: the POST fails on a name taken.
            create={key} if found.live is None else set(),
        )
    except KubernetesAPIError as error:
        raise error.about(f"writing Secret {name}", quote_values=False) from None
    for failure in result.failed.values():
        raise failure.about("writing the Secret", quote_values=False) from None
    if result.taken:
        return None
    live = result.live.get(key)
    written = await _remove_stale_fields(context, desired, live)
    return result, written or live


def stale_fields(
    desired: Mapping[str, Any], live: Mapping[str, Any], field_manager: str
) -> dict[str, Any]:
    """The merge patch removing from the live Secret what the VaultSecret no longer writes
    but an apply cannot remove (``{}``: nothing):

    - data keys it does not write (another writer's, or a user's in a Secret written under
      ``destination.overwrite``): the Secret holds exactly Vault's data, and its HMAC stays
      equal to status;
    - labels and annotations the operator's create set (its ``Update`` entry in
      managedFields still owns them) that the spec dropped since: an apply removes only the
      fields its own ``Apply`` entry alone owns.
    """
    patch: dict[str, Any] = {}
    extra = set(live.get("data") or {}) - set(desired.get("data") or {})
    if extra:
        patch["data"] = dict.fromkeys(sorted(extra))
    for part in ("labels", "annotations"):
        wanted = set(desired["metadata"].get(part) or {}) | {INTENT_ANNOTATION}
        present = live["metadata"].get(part) or {}
        stale = sorted(
            k for k in _created(live, field_manager, part) if k in present and k not in wanted
        )
        if stale:
            patch.setdefault("metadata", {})[part] = dict.fromkeys(stale)
    return patch


def _created(live: Mapping[str, Any], field_manager: str, part: str) -> set[str]:
    """Keys of ``metadata.<part>`` that ``field_manager``'s create (its ``Update`` entry in
    managedFields) still owns."""
    keys: set[str] = set()
    for entry in live["metadata"].get("managedFields") or ():
        if (
            entry.get("manager") == field_manager
            and entry.get("operation") == "Update"
            and not entry.get("subresource")
        ):
            owned = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get(f"f:{part}") or {}
            keys |= {k[2:] for k in owned if k.startswith("f:")}
    return keys


async def _remove_stale_fields(
    context: OperatorContext, desired: Mapping[str, Any], live: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Patch away :func:`stale_fields`; the Secret after the patch, if one was needed."""
    patch = stale_fields(desired, live, context.config.field_manager) if live else {}
    if live is None or not patch:
        return None
    patched = await context.kube.client.merge_patch(
        resources.SECRET,
        namespace=live["metadata"]["namespace"],
        name=live["metadata"]["name"],
        patch=patch,
    )
    if patched is not None:
        context.children.update(patched)  # its watch echo is then nothing new
    return patched
