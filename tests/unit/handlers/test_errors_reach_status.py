"""Errors that must not disappear (issue 9 item 12): the API server's reason and refused field
reach the Ready condition, a request refused as malformed is not retried until the object
changes, other failures back off (and events that cannot change the outcome do not cut the
backoff short), and a parent is not Ready while a child resource it owns is not."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
from typing import Any, cast

import pytest

from mirage_operator.config import Config
from mirage_operator.errors import KubernetesAPIError
from mirage_operator.handlers import mirageservice as service_handler
from mirage_operator.handlers.context import OperatorContext, Outcome, WorkQueue
from mirage_operator.handlers.reconciler import BACKOFF_MAX, backoff
from mirage_operator.k8s.client import _api_error
from tests.unit.handlers.fakes import Connection, FakeKube

LOGGER = logging.getLogger("test")
pytestmark = pytest.mark.usefixtures("events")


def _status(code: int, reason: str, field: str = "", message: str = "refused") -> str:
    causes = [{"field": field, "message": "Invalid value", "reason": "FieldValueInvalid"}]
    details = {"causes": causes} if field else {}
    return json.dumps(
        {"kind": "Status", "code": code, "reason": reason, "message": message, "details": details}
    )


# (status code, Status reason, refused field, condition reason, retried)
REFUSALS = [
    (422, "Invalid", "spec.ports[0].port", "KubernetesAPIInvalid", False),
    (400, "BadRequest", "", "KubernetesAPIBadRequest", False),
    (413, "RequestEntityTooLarge", "", "KubernetesAPIRequestEntityTooLarge", False),
    (403, "Forbidden", "", "KubernetesAPIForbidden", True),
    (409, "Conflict", "", "KubernetesAPIConflict", True),
    (503, "ServiceUnavailable", "", "KubernetesAPIServiceUnavailable", True),
]


@pytest.mark.parametrize(("code", "reason", "field", "condition", "retried"), REFUSALS)
def test_an_api_error_keeps_the_status_reason_and_the_refused_field(
    code: int, reason: str, field: str, condition: str, retried: bool
) -> None:
    error = _api_error(code, _status(code, reason, field, message="Service x is invalid"), None)
    assert (error.status, error.reason, error.permanent) == (code, condition, not retried)
    if field:
        assert field in str(error)
    # Where the message may quote what was sent (a Secret's data), only fields and reason.
    quiet = error.about("writing Secret x", quote_values=False)
    assert "is invalid" not in str(quiet) and reason in str(quiet)
    if field:
        assert field in str(quiet)


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"message": 5}'])
def test_an_api_error_without_a_status_body_still_says_something(text: str) -> None:
    error = _api_error(500, text, None)
    assert str(error).startswith("Kubernetes API 500: ") and len(str(error)) > 20


@pytest.mark.parametrize(("code", "reason", "field", "condition", "retried"), REFUSALS)
async def test_a_refused_child_reaches_the_status_and_only_transient_ones_are_retried(
    code: int, reason: str, field: str, condition: str, retried: bool
) -> None:
    fake = FakeKube()
    refused = fake.apply

    async def apply(resource: Any, body: Any, **kwargs: Any) -> Any:
        if body["kind"] == "Service":
            raise _api_error(code, _status(code, reason, field), None)
        return await refused(resource, body, **kwargs)

    fake.apply = apply  # type: ignore[method-assign]
    context = OperatorContext(config=Config(), kube=cast(Any, Connection(fake)))
    reconciler = service_handler.ServiceReconciler(context)
    body = {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "metadata": {"name": "api", "namespace": "shop", "uid": "u1", "generation": 1},
        "spec": {"image": "registry.example/app:1"},
    }
    fake.objects[("MirageService", "shop", "api")] = body
    outcome = await reconciler.run(copy.deepcopy(body), LOGGER)
    status = fake.objects[("MirageService", "shop", "api")]["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", condition)
    assert "Service/api" in ready["message"] and (field in ready["message"])
    assert ("Deployment", "shop", "api") in fake.objects  # the other children converged
    if retried:
        assert outcome.hold and 0 < outcome.delay <= BACKOFF_MAX
    else:
        assert math.isinf(outcome.delay)


def test_backoff_doubles_per_failure_up_to_its_ceiling() -> None:
    delays = [backoff(1.0, failures, 1.0) for failures in range(1, 12)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert delays == sorted(delays) and delays[-1] == BACKOFF_MAX
    assert backoff(1.0, 3, 0.0) == pytest.approx(0.8 * 4)  # jitter spreads the top fifth


async def test_a_backoff_is_not_cut_short_by_events_but_by_a_change() -> None:
    queue = WorkQueue(workers=2)
    runs: list[float] = []
    loop = asyncio.get_running_loop()

    async def process(key: Any) -> Outcome:
        runs.append(loop.time())
        if len(runs) == 1:
            raise RuntimeError("boom")  # logged, retried with a hold; no task left behind
        return Outcome(math.inf)

    queue.process["K"] = process
    queue.ensure_started()
    try:
        queue.add(("K", "ns", "a"))
        while not runs:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        for _ in range(5):  # e.g. the echo of its own status write
            queue.add(("K", "ns", "a"))
        await asyncio.sleep(0.1)
        assert len(runs) == 1  # held for the backoff (60 s after an unexpected error)
        queue.add(("K", "ns", "a"), urgent=True)  # a new generation
        while len(runs) < 2:
            await asyncio.sleep(0.01)
    finally:
        await queue.stop()


def _child(kind: str, ready: str | None, observed: int = 1) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": ready, "reason": "R"}] if ready else []
    return {
        "kind": kind,
        "metadata": {"name": "c", "generation": 1},
        "status": {"observedGeneration": observed, "conditions": conditions},
    }


@pytest.mark.parametrize(
    ("child", "failing", "settling"),
    [
        (_child("ServiceLevelObjective", "True"), False, False),
        (_child("ServiceLevelObjective", "False"), True, False),
        (_child("ServiceLevelObjective", "Unknown"), True, False),
        (_child("ServiceLevelObjective", None), False, True),  # not reported yet
        (_child("VaultSecret", "True", observed=0), False, True),  # an older generation's
        (_child("VaultSecret", "False"), True, False),
    ],
)
def test_a_parent_is_not_ready_while_a_child_resource_is_not(
    child: dict[str, Any], failing: bool, settling: bool
) -> None:
    found = service_handler.children_state({(child["kind"], "c"): child})
    assert (bool(found[0]), bool(found[1])) == (failing, settling)


def test_a_kubernetes_api_error_is_transient_unless_the_request_is_malformed() -> None:
    assert KubernetesAPIError(422, "x").permanent and not KubernetesAPIError(0, "x").permanent
