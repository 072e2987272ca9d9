"""The operator's allowed-path check: templates, globs, and what it refuses."""

from __future__ import annotations

import pytest

from mirage_operator.api.vaultsecret import VaultSource
from mirage_operator.config import Config
from mirage_operator.errors import VaultPathNotAllowed
from mirage_operator.vault.policy import allowed_patterns, check_allowed, glob_matches


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("team-a/*", "team-a/app", True),
        ("team-a/*", "team-a/deep/er/path", True),
        ("team-a/*", "team-a", False),
        ("team-a/*", "team-ab/app", False),
        ("team-a/*", "other/team-a/app", False),
        ("*/shared", "x/y/shared", True),
        ("a.b", "aXb", False),  # regex metacharacters are literal
        ("team-a", "team-a", True),
    ],
)
def test_glob_matches(pattern: str, path: str, matches: bool) -> None:
    assert glob_matches(pattern, path) is matches


@pytest.mark.parametrize(
    ("namespace", "source"),
    [
        ("team-a", VaultSource("kv-v2", "secret", "team-a/app")),
        ("team-a", VaultSource("kv-v1", "kv", "team-a/x/y")),
        ("team-a", VaultSource("kv-v2", "apps-kv", "team-a/app", version=3)),
        ("team-a", VaultSource("database", "database", "team-a")),
        ("team-a", VaultSource("database", "database", "team-a.readonly")),
    ],
)
def test_allowed_by_default(namespace: str, source: VaultSource) -> None:
    check_allowed(Config(), namespace, source)


@pytest.mark.parametrize(
    ("namespace", "source", "field", "words"),
    [
        ("team-a", VaultSource("kv-v2", "secret", "team-b/app"), "spec.vault.path", "team-a/*"),
        ("team-a", VaultSource("kv-v2", "secret", "team-a"), "spec.vault.path", "Forbidden"),
        ("team", VaultSource("kv-v2", "secret", "team-a/app"), "spec.vault.path", "team/*"),
        ("team-a", VaultSource("kv-v2", "secret", "team-a/../b"), "spec.vault.path", "Invalid"),
        ("team-a", VaultSource("kv-v2", "secret", "team-a//b"), "spec.vault.path", "Invalid"),
        ("team", VaultSource("database", "database", "team-a.app"), "spec.vault.path", "role"),
        ("team", VaultSource("database", "database", "team-x"), "spec.vault.path", "role"),
        ("team-a", VaultSource("kv-v1", "sys", "team-a/x"), "spec.vault.mount", "mount"),
        ("team-a", VaultSource("kv-v1", "auth/token", "team-a/x"), "spec.vault.mount", "mount"),
        ("team-a", VaultSource("kv-v1", "a/../sys", "team-a/x"), "spec.vault.mount", "mount"),
    ],
)
def test_refused(namespace: str, source: VaultSource, field: str, words: str) -> None:
    with pytest.raises(VaultPathNotAllowed) as caught:
        check_allowed(Config(), namespace, source)
    assert caught.value.problems[0].field == field
    assert words in caught.value.problems[0].reason
    assert caught.value.reason == "VaultPathNotAllowed"


def test_configured_templates() -> None:
    config = Config(vault_allowed_paths=("apps/{namespace}/*", "shared/*"))
    assert allowed_patterns(config, "team-a", "kv-v2") == ("apps/team-a/*", "shared/*")
    check_allowed(config, "team-a", VaultSource("kv-v2", "secret", "shared/ca"))
    with pytest.raises(VaultPathNotAllowed):
        check_allowed(config, "team-a", VaultSource("kv-v2", "secret", "team-a/app"))


def test_custom_field_path_for_embedded_sources() -> None:
    with pytest.raises(VaultPathNotAllowed) as caught:
        check_allowed(
            Config(),
            "team-a",
            VaultSource("kv-v2", "secret", "team-b/x"),
            field="spec.secrets[1].vault.path",
        )
    assert caught.value.problems[0].field == "spec.secrets[1].vault.path"
