"""Vault's ACL path rules, for the emulated Vault.

This is the referee the emulated Vault enforces, written from Vault's documented rules
("Policies: Priority matching") and held to OpenBao by ``tests/contract``; it deliberately
shares nothing with the operator's own allowed-path check
(:mod:`mirage_operator.vault.policy`), which it judges.

- A path ending in ``*`` is a prefix glob; a ``*`` anywhere else is a literal character.
- ``+`` stands for exactly one path segment, anywhere.
- Rules for the same path string in several policies are merged (capabilities added).
- Of the rules that match, the most specific decides alone: P1 is less specific than P2 when
  its first ``+`` or ``*`` comes earlier; else when only P1 ends in ``*``; else when P1 has
  more ``+`` segments; else when P1 is shorter; else when it sorts first.
- ``deny`` in the deciding rule refuses everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def rule_matches(pattern: str, path: str) -> bool:
    """Whether the ACL path ``pattern`` covers the request ``path``."""
    glob = pattern.endswith("*")
    body = pattern[:-1] if glob else pattern
    if "+" not in body:
        return path.startswith(body) if glob else path == body
    wanted, actual = body.split("/"), path.split("/")
    if len(actual) < len(wanted) or (not glob and len(actual) != len(wanted)):
        return False
    last = len(wanted) - 1
    for index, (segment, given) in enumerate(zip(wanted, actual, strict=False)):
        if segment == "+":
            continue
        if glob and index == last:
            if not given.startswith(segment):
                return False
        elif segment != given:
            return False
    return True


def _specificity(pattern: str) -> tuple[int, bool, int, int, str]:
    """Sort key: the most specific pattern sorts last."""
    offsets, offset = [], 0
    for segment in pattern.split("/"):
        if segment == "+":
            offsets.append(offset)
        offset += len(segment) + 1
    if pattern.endswith("*"):
        offsets.append(len(pattern) - 1)
    first = min(offsets, default=len(pattern) + 1)
    plus = pattern.split("/").count("+")
    return first, not pattern.endswith("*"), -plus, len(pattern), pattern


def capabilities(policies: Iterable[Mapping[str, Iterable[str]]], path: str) -> frozenset[str]:
    """The capabilities ``policies`` (each: path pattern to capabilities) grant on ``path``;
    empty when none matches or the deciding rule denies."""
    merged: dict[str, set[str]] = {}
    for policy in policies:
        for pattern, granted in policy.items():
            merged.setdefault(pattern, set()).update(granted)
    matching = [p for p in merged if rule_matches(p, path)]
    if not matching:
        return frozenset()
    decided = merged[max(matching, key=_specificity)]
    return frozenset() if "deny" in decided else frozenset(decided)
