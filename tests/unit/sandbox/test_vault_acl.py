"""The emulated Vault's ACL rules (the contract suite holds them to OpenBao; these pin the
corner cases without a server)."""

from __future__ import annotations

import pytest

from mirage_sandbox.vault_acl import capabilities, rule_matches


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("secret/data/team/*", "secret/data/team/a/b", True),
        ("secret/data/team/*", "secret/data/team", False),
        ("secret/data/team*", "secret/data/team-b/x", True),
        ("secret/data/mid/*/x", "secret/data/mid/q/x", False),
        ("secret/data/mid/*/x", "secret/data/mid/*/x", True),
        ("secret/data/+/x", "secret/data/q/x", True),
        ("secret/data/+/x", "secret/data/q/r/x", False),
        ("secret/data/+/x*", "secret/data/q/xy/z", True),
        ("secret/data/+/+", "secret/data/q/r", True),
        ("secret/data/+/+", "secret/data/q/r/s", False),
        ("database/creds/team.*", "database/creds/team.app", True),
        ("database/creds/team.*", "database/creds/team-b.app", False),
        ("exact", "exact/", False),
    ],
)
def test_rule_matches(pattern: str, path: str, expected: bool) -> None:
    assert rule_matches(pattern, path) is expected


@pytest.mark.parametrize(
    ("rules", "path", "expected"),
    [
        # The exact rule beats the glob, whichever grants more.
        ({"s/*": ["read"], "s/a": ["deny"]}, "s/a", set()),
        ({"s/*": ["deny"], "s/a": ["read"]}, "s/a", {"read"}),
        # A later first wildcard is more specific.
        ({"s/+/x": ["read"], "s/a/*": ["list"]}, "s/a/x", {"list"}),
        # Same first wildcard: the one not ending in * wins.
        ({"s/a/*": ["read"], "s/a/+/in": ["deny"]}, "s/a/z/in", set()),
        # Fewer + segments win.
        ({"s/+/+/c": ["read"], "s/+/b/c": ["list"]}, "s/a/b/c", {"list"}),
        # Longer glob wins.
        ({"s/*": ["read"], "s/ab*": ["list"]}, "s/abc", {"list"}),
        ({"other/*": ["read"]}, "s/a", set()),
    ],
)
def test_most_specific_rule_decides(
    rules: dict[str, list[str]], path: str, expected: set[str]
) -> None:
    assert capabilities([rules], path) == expected


def test_same_path_in_two_policies_merges() -> None:
    granted = capabilities([{"s/a": ["read"]}, {"s/a": ["list"]}], "s/a")
    assert granted == {"read", "list"}
    assert capabilities([{"s/a": ["read"]}, {"s/a": ["deny"]}], "s/a") == frozenset()
