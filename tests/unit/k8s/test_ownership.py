"""An object named like a child but made by someone else is never taken over (docs/adr/0069):
``foreign_owner`` decides, ``converge_children`` skips it, converges the rest and reports it —
as ``ChildOwnedElsewhere`` when nobody controls it, as ``ChildNameConflict`` naming the
controller when another owner does (docs/adr/0011)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mirage_operator.errors import ChildNameConflictError, ChildOwnedElsewhere, MirageError
from mirage_operator.k8s.children import SyncResult, converge_children
from mirage_operator.k8s.ownership import foreign_owner
from tests.unit.handlers.fakes import FakeKube

OWNER: dict[str, Any] = {
    "apiVersion": "mirage.dev/v1alpha1",
    "kind": "MirageService",
    "metadata": {"name": "shop", "namespace": "team-a", "uid": "u-shop"},
}
OURS = {"apiVersion": "mirage.dev/v1alpha1", "kind": "MirageService", "name": "shop"}


def _object(kind: str, name: str, **metadata: Any) -> dict[str, Any]:
    api = {"Deployment": "apps/v1"}.get(kind, "v1")
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": "team-a", **metadata},
        "data": {"by": "someone else"},
    }


FOREIGN = [
    ({}, "was not created by Mirage"),  # made by hand
    ({"labels": {"app.kubernetes.io/managed-by": "mirage-operator"}}, "not created by Mirage"),
    ({"ownerReferences": [{**OURS, "uid": "u-shop"}]}, "not created by Mirage"),  # no controller
    (
        {"ownerReferences": [{**OURS, "name": "old", "uid": "u-old", "controller": True}]},
        "controlled by MirageService/old",
    ),
    (
        {"ownerReferences": [{"kind": "HelmRelease", "name": "x", "uid": "h", "controller": True}]},
        "controlled by HelmRelease/x",
    ),
]


@pytest.mark.parametrize(("metadata", "why"), FOREIGN)
def test_foreign_owner_names_the_object_and_the_reason(metadata: dict[str, Any], why: str) -> None:
    reason = foreign_owner(_object("ConfigMap", "shop-config", **metadata), OWNER)
    assert reason is not None and reason.startswith("ConfigMap/shop-config ") and why in reason


def test_an_object_the_owner_controls_is_not_foreign() -> None:
    live = _object(
        "ConfigMap", "shop", ownerReferences=[{**OURS, "uid": "u-shop", "controller": True}]
    )
    assert foreign_owner(live, OWNER) is None


@pytest.mark.parametrize(("metadata", "why"), FOREIGN)
async def test_converge_children_never_takes_a_foreign_object_over(
    metadata: dict[str, Any], why: str
) -> None:
    kube = FakeKube()
    foreign = kube.put(_object("ConfigMap", "shop-config", **copy.deepcopy(metadata)))
    before = copy.deepcopy(foreign)
    desired = [
        {**_object("ConfigMap", "shop-config"), "data": {"mine": "1"}},
        {**_object("ConfigMap", "shop-dashboard"), "data": {"mine": "2"}},
    ]
    controlled = any(ref.get("controller") for ref in metadata.get("ownerReferences", []))
    expected: type[MirageError] = ChildNameConflictError if controlled else ChildOwnedElsewhere
    with pytest.raises(expected) as caught:
        await converge_children(
            kube, owner=OWNER, desired=desired, observed={}, field_manager="mirage"
        )
    assert kube.objects[("ConfigMap", "team-a", "shop-config")] == before
    assert ("ConfigMap", "team-a", "shop-dashboard") in kube.objects  # the rest converged
    message = str(caught.value)
    if controlled:
        other = metadata["ownerReferences"][0]
        assert f"ConfigMap shop-config is controlled by {other['kind']} {other['name']}" in message
        assert caught.value.reason == "ChildNameConflict"
    else:
        assert "ConfigMap/shop-config" in message and why in message
        assert caught.value.reason == "ChildOwnedElsewhere"


async def test_a_child_to_create_is_never_applied_over_an_object_of_its_name() -> None:
    """A child whose name an object the index cannot see may hold (a Secret without
    Mirage's label) is created with a POST: refused when the name is taken, the object is
    left as it is, reported in ``taken``, and nothing observed is deleted (docs/adr/0126)."""
    kube = FakeKube()
    before = copy.deepcopy(kube.put(_object("Secret", "shop-db")))
    previous = kube.put(
        _object("Secret", "old-db", ownerReferences=[{**OURS, "uid": "u-shop", "controller": True}])
    )
    key = ("Secret", "shop-db")

    async def sync(**known: Any) -> SyncResult:
        return await converge_children(
            kube,
            owner=OWNER,
            desired=[{**_object("Secret", "shop-db"), "data": {"mine": "1"}}],
            observed={("Secret", "old-db"): previous},
            field_manager="mirage",
            create={key},
            **known,
        )

    result = await sync()
    assert result.taken == [key] and not result.applied and not result.deleted
    assert kube.objects[("Secret", "team-a", "shop-db")] == before
    assert ("Secret", "team-a", "old-db") in kube.objects  # kept until the caller decides
    assert kube.gets == []  # no read spent on a name that is almost always free

    del kube.objects[("Secret", "team-a", "shop-db")]
    result = await sync(known={key})
    assert result.applied == ["Secret/shop-db"] and result.restored == ["Secret/shop-db"]
    assert result.deleted == ["Secret/old-db"]
    assert kube.writes == [("create", "Secret", "shop-db"), ("delete", "Secret", "old-db")]
    assert kube.objects[("Secret", "team-a", "shop-db")]["data"] == {"mine": "1"}
