"""kopf handlers, registered on an explicit registry with the operator's ``Config``.

Handlers are thin: each parses the custom resource into its typed model, calls the pure
builders in ``render``, and hands the result to ``k8s`` (or ``vault``) for I/O.
"""

from __future__ import annotations

import kopf

from mirage_operator.config import Config
from mirage_operator.handlers import activities, mirageservice, slo, vaultsecret
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.handlers.reconciler import register_children_index


def register(registry: kopf.OperatorRegistry, config: Config) -> OperatorContext:
    """Register every handler of the operator on ``registry``; return their shared context."""
    context = OperatorContext(config=config)
    activities.register(registry, context)
    owners = [mirageservice.register(registry, context), slo.register(registry, context)]
    register_children_index(registry, context, owners)
    vaultsecret.register(registry, context)
    return context
