"""In-process emulations of the services Mirage talks to: the Kubernetes API and Vault.

They back ``mirage sandbox`` (:mod:`mirage_sandbox.cli`) and the test suites. They are a
distribution of their own, apart from the operator (docs/adr/0120): the sandbox imports
``mirage_operator``, never the reverse, and the operator image carries none of it.

- ``apiserver``        the emulated Kubernetes API server;
- ``vault``            the emulated Vault, ``vault_acl`` its policy engine;
- ``tenants``          the per-namespace Vault role and policy the sandbox seeds;
- ``monitoring_crds``  minimal CRDs of the platform kinds the operator writes;
- ``session``          ``mirage sandbox``: the emulators, the operator and the examples;
- ``errors``           :class:`~mirage_sandbox.errors.EmulatedAPIError`.
"""
