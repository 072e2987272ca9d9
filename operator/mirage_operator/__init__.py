"""Mirage operator: reconciles Mirage custom resources into Kubernetes objects.

The package is laid out by concern:

- ``config``     one frozen dataclass loaded from ``MIRAGE_*`` environment variables;
- ``errors``     the operator's own exceptions;
- ``crds``       the CustomResourceDefinitions (loaded from ``crds/``);
- ``schema``     structural-schema engine: pruning, defaulting, validation, CEL;
- ``api``        typed models of each kind's spec and the validator ``mirage validate`` shares;
- ``render``     pure builders: a typed spec in, plain manifest dicts out;
- ``handlers``   thin kopf handlers: parse, build, hand over to I/O;
- ``k8s``        all Kubernetes API I/O (server-side apply, status, events);
- ``vault``      all Vault I/O;
- ``metrics``    the operator's Prometheus metrics;
- ``examples``   the sample resources shipped with the package;
- ``cli``        the ``mirage`` command.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mirage-operator")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

GROUP = "mirage.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
