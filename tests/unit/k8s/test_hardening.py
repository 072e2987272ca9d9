"""Reverting a live Deployment's insecure fields: one guarded patch, re-read on conflict,
failures reported (never raised), nothing at all when the template is secure."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mirage_operator.errors import KubernetesAPIError
from mirage_operator.k8s.hardening import CONFLICT_ATTEMPTS, restore_secure_defaults
from mirage_operator.k8s.resources import Resource
from mirage_operator.render.workload import build_deployment
from tests.unit.factories import ServiceFactory, service_body

HOST_NETWORK = "spec.template.spec.hostNetwork"
WRITABLE = "spec.template.spec.containers[app].securityContext.readOnlyRootFilesystem"


class Kube:
    """A Deployment store answering the first ``errors`` patches with those codes."""

    def __init__(self, live: dict[str, Any], errors: list[int]) -> None:
        self.live, self.errors = live, list(errors)
        self.calls: list[tuple[str, Any]] = []

    async def get(self, resource: Resource, *, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append(("get", name))
        return copy.deepcopy(self.live)

    async def merge_patch(
        self, resource: Resource, *, namespace: str, name: str, patch: Any, field_manager: str
    ) -> dict[str, Any]:
        self.calls.append(("patch", (patch["metadata"]["resourceVersion"], field_manager)))
        if self.errors:
            raise KubernetesAPIError(self.errors.pop(0), "refused: value=s3cr3t")
        return self.live


def _deployment(make_spec: ServiceFactory, rv: str = "1", **pod: Any) -> dict[str, Any]:
    deployment = build_deployment(
        name="api", namespace="shop", spec=make_spec(), owner=service_body(), checksum=None
    )
    deployment["metadata"]["resourceVersion"] = rv
    deployment["spec"]["template"]["spec"].update(pod)
    return deployment


async def _restore(kube: Kube, before: Any, after: Any) -> Any:
    return await restore_secure_defaults(
        kube,  # type: ignore[arg-type]
        before=before,
        after=after,
        field_manager="mirage-operator",
    )


async def test_a_secure_deployment_costs_no_call(make_spec: ServiceFactory) -> None:
    live = _deployment(make_spec)
    kube = Kube(live, [])
    result = await _restore(kube, live, live)
    assert (result.reverted, result.failed, kube.calls) == ([], [], [])


async def test_one_guarded_patch_reverts_what_the_apply_left(make_spec: ServiceFactory) -> None:
    live = _deployment(make_spec, rv="7", hostNetwork=True)
    kube = Kube(live, [])
    result = await _restore(kube, live, live)
    assert [v.path for v in result.reverted] == [HOST_NETWORK]
    assert kube.calls == [("patch", ("7", "mirage-operator"))]
    assert "Deployment/api: reverted spec.template.spec.hostNetwork" in result.message()


async def test_what_the_apply_already_reverted_is_reported_too(make_spec: ServiceFactory) -> None:
    before = _deployment(make_spec)
    before["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFilesystem"
    ] = False
    after = _deployment(make_spec)
    kube = Kube(after, [])
    result = await _restore(kube, before, after)
    assert [v.path for v in result.reverted] == [WRITABLE]
    assert kube.calls == []


@pytest.mark.parametrize("conflicts", range(1, CONFLICT_ATTEMPTS))
async def test_a_conflict_reads_again_and_retries(
    make_spec: ServiceFactory, conflicts: int
) -> None:
    stale = _deployment(make_spec, rv="1", hostPID=True)
    kube = Kube(_deployment(make_spec, rv="2", hostPID=True), [409] * conflicts)
    result = await _restore(kube, stale, stale)
    assert result.failed == [] and [v.path for v in result.reverted] == [
        "spec.template.spec.hostPID"
    ]
    assert kube.calls[0] == ("patch", ("1", "mirage-operator"))
    assert kube.calls[-1] == ("patch", ("2", "mirage-operator"))


@pytest.mark.parametrize("errors", [[500], [422], [403], [409] * CONFLICT_ATTEMPTS])
async def test_a_refused_revert_is_reported_without_the_message(
    make_spec: ServiceFactory, errors: list[int]
) -> None:
    live = _deployment(make_spec, hostNetwork=True, hostIPC=True)
    kube = Kube(live, errors)
    result = await _restore(kube, live, live)
    assert result.reverted == []
    assert [v.path for v in result.failed] == [HOST_NETWORK, "spec.template.spec.hostIPC"]
    (problem,) = result.unreverted()
    assert problem.startswith("Deployment/api (InsecureFields: the API server answered")
    assert HOST_NETWORK in problem and "s3cr3t" not in problem
