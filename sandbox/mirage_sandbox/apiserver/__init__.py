"""An in-process Kubernetes API server with the semantics kopf, kubectl and the operator use.

Modules, one concern each:

- ``resources``  the catalogue of served resource types (built-ins + CRDs);
- ``store``      objects, the global resourceVersion, the change history (etcd's role);
- ``cluster``    API semantics: CRUD, generation, status subresource, finalizers, dry run;
- ``managed``    managed fields and server-side apply; ``patch`` the other patch types;
- ``fieldtypes`` list/map merge behaviour; ``validation`` admission; ``selectors``;
- ``watch``      watch streams; ``discovery`` and ``openapi`` documents; ``tables`` printing;
- ``gc``         garbage collection and namespace cleanup; ``controllers`` workload status;
- ``faults``     fault injection; ``requestlog`` the request log; ``tokens`` SA tokens;
- ``app``        the HTTP layer; ``server`` :class:`APIServer` and its lifecycle.
"""

from mirage_sandbox.apiserver.server import (
    INITIAL_NAMESPACES,
    APIServer,
    run_apiserver_in_thread,
)

__all__ = ["INITIAL_NAMESPACES", "APIServer", "run_apiserver_in_thread"]
