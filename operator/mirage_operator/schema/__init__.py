"""Structural-schema engine: apply a CRD's ``openAPIV3Schema`` as a real kube-apiserver does.

Shared by ``mirage validate`` and the emulated API server (``mirage_sandbox``). The
apiserver's write path is, in order: :func:`prune` unknown fields, :func:`apply_defaults`,
then :func:`validate` (OpenAPI keywords, list-type uniqueness, CEL rules).
:func:`structural_problems` checks a schema itself, as CRD creation does.

Modules: ``pruning``, ``defaulting``, ``validation`` (keywords), ``listtypes``, ``formats``,
``cel`` (``x-kubernetes-validations`` via celpy), ``structural``, ``reasons`` (apiserver-style
wording) and ``values`` (JSON helpers and field paths).
"""

from __future__ import annotations

from mirage_operator.schema.defaulting import apply_defaults
from mirage_operator.schema.pruning import prune
from mirage_operator.schema.structural import structural_problems
from mirage_operator.schema.validation import validate

__all__ = ["apply_defaults", "prune", "structural_problems", "validate"]
