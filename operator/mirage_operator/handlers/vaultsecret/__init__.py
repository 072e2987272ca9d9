"""VaultSecret handlers: keep each VaultSecret's Secret equal to what Vault holds (docs/adr/0125).

Where each part of a VaultSecret goes, from the CRD to Vault and to the Secret:

- ``spec.vault``: parsed in :mod:`mirage_operator.api.vaultsecret`, checked against the
  allowed paths (:mod:`mirage_operator.vault.policy`), read by its engine's source
  (:mod:`.sources`) through :class:`~mirage_operator.vault.client.VaultClient`.
- ``spec.refreshInterval``: the KV sources read on that clock
  (:func:`~mirage_operator.vault.schedule.refresh_reasons`, ``next_run_in``);
  ``status.refreshInterval`` shows it.
- the database lease: :class:`.sources.DatabaseSource` issues, renews and replaces it
  (``VaultClient.ensure_credentials``), keeps it in ``status.lease*``, revokes it on delete.
- ``spec.destination``: :mod:`.destination` — which Secret, whether it may be written, what it
  holds (built by :mod:`mirage_operator.render.secret`, with ``spec.keys`` and
  ``spec.templates``; templates run in :mod:`mirage_operator.template_worker`).
- ``spec.rolloutRestartTargets``: :mod:`.restarts`, when ``status.secretMAC`` changes.
- ``status.secretMAC``: an HMAC of the Secret's data under the key of :mod:`.hmackey`.
- between reconciles: :mod:`.memory`, what status cannot say or says too late.

The steps of one reconcile are :meth:`.reconciler.VaultSecretReconciler.reconcile`, on the
shared :class:`~mirage_operator.handlers.reconciler.Reconciler` base (failures to status,
retries, the work queue).

The queue is the object's only scheduler: it reconciles when the object or its Secret
changes (watch events; not the echoes of the operator's own writes), when the refresh
interval or the database lease asks for it, after a failure (backoff 5 s to 60 s with jitter,
not cut short by events that cannot change the outcome), and at each resync as a level-based
backstop. Every VaultSecret is reconciled when the operator starts (kopf's initial listing),
so changes made while the operator was down are caught. Whether a reconcile reads Vault is
the source's decision; the Secret is written only when its data or metadata differ, and
``rolloutRestartTargets`` are restarted only when the data's HMAC changed (docs/adr/0061,
docs/adr/0063). Deleting a VaultSecret whose source holds a lease revokes it: only those carry
a finalizer (docs/adr/0022).
"""

from __future__ import annotations

from typing import Any

import kopf

from mirage_operator import GROUP, VERSION
from mirage_operator.handlers import common
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.handlers.vaultsecret.reconciler import VaultSecretReconciler
from mirage_operator.handlers.vaultsecret.sources import holds_lease
from mirage_operator.handlers.watches import register_reconciler
from mirage_operator.k8s.ownership import ADOPTED_BY_ANNOTATION
from mirage_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL
from mirage_operator.vault import VaultClient
from mirage_operator.vault.tokenstore import SecretTokenStore


def _holds_lease(spec: kopf.Spec, **_: Any) -> bool:
    return holds_lease((spec.get("vault") or {}).get("engine"))


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> VaultSecretReconciler:
    """Register the VaultSecret handlers; return the reconciler they share."""

    async def token_for(namespace: str, service_account: str, audience: str, seconds: int) -> str:
        return await context.kube.client.request_token(
            namespace, service_account, audience, seconds
        )

    # Tokens outlive the process, so that the next leader keeps renewing their leases.
    config = context.config
    store = SecretTokenStore(config, context.kube) if config.vault_token_secret else None
    reconciler = VaultSecretReconciler(
        context, vault=VaultClient(config, token_for=token_for, store=store)
    )
    register_reconciler(registry, reconciler)
    kind = reconciler.kind

    # Only a lease needs cleaning up when a VaultSecret goes: kopf puts its finalizer on
    # those alone (and takes it off others, where an older version left it).
    @kopf.on.delete(
        GROUP, VERSION, "vaultsecrets", registry=registry, id="release", when=_holds_lease
    )
    async def release(
        body: kopf.Body,
        namespace: str | None,
        name: str,
        retry: int,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        assert namespace is not None  # VaultSecrets are namespaced
        async with context.serializer.lock((kind, namespace, name)):
            await reconciler.release(body, retry=retry, logger=logger)

    # The API server sends only Secrets with this label (activities.SECRET_WATCH_SELECTOR,
    # docs/adr/0126); the filter below is kopf's, in the operator.
    @kopf.on.event(
        "",
        "v1",
        "secrets",
        labels={MANAGED_BY_LABEL: MANAGED_BY},
        registry=registry,
        id="secret-event",
    )
    async def on_secret_event(body: kopf.Body, namespace: str | None, **_: Any) -> None:
        annotations = body.get("metadata", {}).get("annotations") or {}
        owner = common.owner_of(body, kind) or annotations.get(ADOPTED_BY_ANNOTATION)
        if (
            owner is not None
            and namespace
            and reconciler.memory.secret_changed(namespace, owner, body)
        ):
            reconciler.touch((kind, namespace, owner), follow_up=True)

    @kopf.on.cleanup(registry=registry, id="close-vault")
    async def close_vault(**_: Any) -> None:
        await reconciler.vault.close()
        await reconciler.templates.close()

    return reconciler
