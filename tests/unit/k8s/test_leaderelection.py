"""Leader election against an in-memory Lease with the API server's optimistic concurrency."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import kopf
import pytest

from mirage_operator.config import Config
from mirage_operator.errors import ConfigError, KubernetesAPIError, NotLeaderError
from mirage_operator.k8s import resources
from mirage_operator.k8s.client import KubeClient
from mirage_operator.k8s.leaderelection import ElectionSettings, LeaderElector


class FakeLeases:
    """One Lease; PUT succeeds only with the current resourceVersion (409 otherwise)."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False
        self.calls: list[str] = []

    def _check(self, verb: str) -> None:
        self.calls.append(verb)
        if self.down:
            raise KubernetesAPIError(0, "no answer from the API server")

    def _stored(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(dict(body))
        stored["metadata"] = {**stored["metadata"], "resourceVersion": str(self.version)}
        self.lease = stored
        return copy.deepcopy(stored)


class FakeClient:
    def __init__(self, leases: FakeLeases) -> None:
        self.leases = leases

    async def get(self, resource: Any, *, namespace: str, name: str) -> dict[str, Any] | None:
        self.leases._check("get")
        return copy.deepcopy(self.leases.lease)

    async def create(self, resource: Any, *, namespace: str, body: Mapping[str, Any]) -> Any:
        self.leases._check("create")
        if self.leases.lease is not None:
            raise KubernetesAPIError(409, "already exists")
        return self.leases._stored(body)

    async def replace(
        self, resource: Any, *, namespace: str, name: str, body: Mapping[str, Any]
    ) -> Any:
        self.leases._check("update")
        assert self.leases.lease is not None
        if body["metadata"].get("resourceVersion") != str(self.leases.version):
            raise KubernetesAPIError(409, "the object has been modified")
        return self.leases._stored(body)

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SETTINGS: dict[str, Any] = {
    "namespace": "mirage-system",
    "name": "mirage",
    "lease_duration": 15,
    "renew_deadline": 10,
    "retry_period": 2,
}


def candidate(leases: FakeLeases, clock: Clock, identity: str) -> LeaderElector:
    return LeaderElector(
        FakeClient(leases),  # type: ignore[arg-type]
        ElectionSettings(identity=identity, **SETTINGS),
        clock=clock,
        wall_clock=clock,
        jitter=lambda: 0.0,
    )


async def test_one_candidate_leads_and_the_other_waits_for_the_lease_to_expire() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = candidate(leases, clock, "a"), candidate(leases, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == "a"
    # a dies: b takes over only once the record has not changed for the lease duration,
    # counted from when b saw it change.
    clock.now += 14
    assert not await b.try_acquire_or_renew()
    clock.now += 15
    assert await b.try_acquire_or_renew()
    spec = leases.lease["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)


async def test_a_renewing_leader_keeps_the_lease_and_renews_without_reading() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = candidate(leases, clock, "a"), candidate(leases, clock, "b")
    assert await a.try_acquire_or_renew()
    for _ in range(20):
        clock.now += 2
        leases.calls.clear()
        assert await a.try_acquire_or_renew()
        assert leases.calls == ["update"]  # one call per renewal
        assert not await b.try_acquire_or_renew()
    assert a.is_leader and not b.is_leader


async def test_a_leader_that_cannot_renew_stops_by_the_clock_before_anyone_takes_over() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = candidate(leases, clock, "a"), candidate(leases, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    leases.down = True
    clock.now += 9.9
    assert await a.try_acquire_or_renew()  # failed, but still within the renew deadline
    assert a.is_leader
    clock.now += 0.2  # past the renew deadline: no more writes, whatever the loop does
    assert not a.is_leader
    leases.down = False
    assert not await b.try_acquire_or_renew()  # the lease has not expired for b yet
    clock.now += 5
    assert await b.try_acquire_or_renew()


async def test_two_candidates_racing_for_a_free_lease_make_one_leader() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = candidate(leases, clock, "a"), candidate(leases, clock, "b")
    assert await a.try_acquire_or_renew()
    await a.release()
    # Both saw the released record; only the first write with its version wins.
    c = candidate(leases, clock, "c")
    results = [await b.try_acquire_or_renew(), await c.try_acquire_or_renew()]
    assert results == [True, False]


async def test_release_lets_a_standby_take_over_at_its_next_try() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = candidate(leases, clock, "a"), candidate(leases, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.release()
    assert not a.is_leader
    assert await b.try_acquire_or_renew()


async def test_release_after_a_renewal_it_did_not_see_answered_still_frees_the_lease() -> None:
    # A renewal cut short by the shutdown was written all the same: the version the leader
    # holds is stale, and the release reads the Lease again instead of leaving it held.
    leases, clock = FakeLeases(), Clock()
    a, b = candidate(leases, clock, "a"), candidate(leases, clock, "b")
    assert await a.try_acquire_or_renew()
    assert leases.lease is not None
    leases._stored(leases.lease)
    assert await a.release()
    assert leases.lease["spec"]["holderIdentity"] == ""
    assert await b.try_acquire_or_renew()


async def test_release_leaves_a_lease_someone_else_took() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = candidate(leases, clock, "a"), candidate(leases, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.now += 20
    assert await b.try_acquire_or_renew()
    clock.now -= 20  # a still believes it leads (its clock says the renewal is fresh)
    assert not await a.release()
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == "b"


async def test_keep_calls_on_lost_once_renewals_fail_past_the_deadline() -> None:
    leases = FakeLeases()
    a = LeaderElector(
        FakeClient(leases),  # type: ignore[arg-type]
        ElectionSettings(
            identity="a",
            namespace="ns",
            name="l",
            lease_duration=0.3,
            renew_deadline=0.2,
            retry_period=0.02,
        ),
    )
    await a.acquire()
    leases.down = True
    lost: list[bool] = []
    await a.keep(lambda: lost.append(True))
    assert lost == [True] and not a.is_leader


async def test_a_replica_that_does_not_lead_writes_nothing_but_the_lease() -> None:
    client = KubeClient(kopf.ConnectionInfo(server="http://127.0.0.1:9"), may_write=lambda: False)
    body = {"metadata": {"name": "x", "namespace": "ns"}}
    with pytest.raises(NotLeaderError):
        await client.apply(resources.DEPLOYMENT, body, field_manager="m")
    with pytest.raises(NotLeaderError):
        await client.delete(resources.SECRET, namespace="ns", name="x")
    # Reads and the Lease itself go through (and here fail to connect: nobody listens).
    with pytest.raises(KubernetesAPIError):
        await client.get(resources.SECRET, namespace="ns", name="x")
    with pytest.raises(KubernetesAPIError):
        await client.replace(resources.LEASE, namespace="ns", name="l", body=body)
    await client.close()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"MIRAGE_LEASE_DURATION": "10", "MIRAGE_RENEW_DEADLINE": "10"}, "MIRAGE_RENEW_DEADLINE"),
        ({"MIRAGE_RENEW_DEADLINE": "3", "MIRAGE_RETRY_PERIOD": "3"}, "MIRAGE_RETRY_PERIOD"),
        ({"MIRAGE_NAMESPACES": "a,b", "MIRAGE_SHARD_NAMESPACES": "a,c"}, "b"),
    ],
)
def test_election_terms_and_shards_that_cannot_work_are_refused_at_start(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        Config.from_env(environ)


def test_the_default_terms_are_client_gos() -> None:
    config = Config.from_env({"MIRAGE_LEADER_ELECTION": "true", "MIRAGE_VAULT_TOKEN_SECRET": "t"})
    assert (config.lease_duration, config.renew_deadline, config.retry_period) == (15, 10, 2)
    assert config.leader_election and config.leader_election_lease == "mirage-operator"
    assert (config.vault_token_secret, config.vault_token_key_secret) == (
        "t",
        "mirage-vault-token-key",
    )
