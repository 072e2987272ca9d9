"""kopf handlers, registered on an explicit registry with the operator's ``Config``.

Handlers are thin: each parses the custom resource into its typed model, calls the pure
builders in ``render``, and hands the result to ``k8s`` (or ``vault``) for I/O. Every kind
reconciles on the shared base of :mod:`.reconciler` (work queue, failures to status, retries):
:mod:`.mirageservice` and :mod:`.slo` in one module each; :mod:`.vaultsecret` is a package, its
helpers and its one source per secrets engine beside it (docs/adr/0125).
"""

from __future__ import annotations

import kopf

from mirage_operator.config import Config
from mirage_operator.handlers import activities, vaultsecret
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.handlers.mirageservice import ServiceReconciler
from mirage_operator.handlers.slo import SLOReconciler
from mirage_operator.handlers.watches import register_children_index, register_reconciler


def register(registry: kopf.OperatorRegistry, config: Config) -> OperatorContext:
    """Register every handler of the operator on ``registry``; return their shared context."""
    context = OperatorContext(config=config)
    activities.register(registry, context)
    owners = [ServiceReconciler(context), SLOReconciler(context)]
    for owner in owners:
        register_reconciler(registry, owner)
    # A VaultSecret's Secret is a child in the index too (its metadata: docs/adr/0126).
    register_children_index(registry, context, [*owners, vaultsecret.register(registry, context)])
    return context
