"""In-process emulations of the services Mirage talks to: the Kubernetes API and Vault.

They back ``mirage sandbox`` and the test suites; both ship in the package because the sandbox
command uses them. The Kubernetes API lives in :mod:`mirage_operator.sandbox.apiserver`.
"""
