"""Attempts to step around the allowed-path check (docs/adr/0068): each is refused by
``mirage validate`` (the shared validator, before anything is applied — for a VaultSecret
and for a MirageService's embedded secret) and by the operator's own check, in both auth
modes, before any Vault request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mirage_operator.api.validation import problems_of
from mirage_operator.api.vaultsecret import VaultSource
from mirage_operator.cli import main
from mirage_operator.config import Config
from mirage_operator.errors import VaultPathNotAllowed
from mirage_operator.vault import VaultClient, check_allowed
from mirage_sandbox.vault import EmulatedVault
from tests.unit.vault.vaultkit import Sleeps

NS = "default"

# (engine, mount, path): every one would make Vault read something other than what the
# allowed-path globs were matched against, or is not one well-formed path.
BYPASSES = [
    # the mount carries path segments (the reported case, and its variants per engine)
    ("kv-v1", "kv/other", "default/x"),
    ("kv-v2", "secret/other", "default/x"),
    ("kv-v2", "secret/data/other", "default/x"),
    ("kv-v2", "secret/metadata", "default/x"),
    ("database", "database/creds", "default"),
    ("database", "team-b/database", "default"),
    # traversal and empty segments, in mount or path
    ("kv-v2", "..", "default/x"),
    ("kv-v2", ".", "default/x"),
    ("kv-v2", "secret/..", "default/x"),
    ("kv-v2", "secret", "default/../other/x"),
    ("kv-v2", "secret", "default/./x"),
    ("kv-v2", "secret", "default//x"),
    ("kv-v2", "secret", "default/x/"),
    ("kv-v2", "secret", "/default/x"),
    ("kv-v2", "/secret", "default/x"),
    ("kv-v2", "secret/", "default/x"),
    ("kv-v2", "", "default/x"),
    # encoded, query, fragment, backslash, glob characters
    ("kv-v2", "secret", "default/%2e%2e/other"),
    ("kv-v2", "secret", "default%2fx"),
    ("kv-v2", "secret", "default/x?version=1"),
    ("kv-v2", "secret", "default/x#frag"),
    ("kv-v2", "secret", "default/..\\other"),
    ("kv-v2", "secret", "default/*"),
    ("kv-v2", "sec%72et", "default/x"),
    # whitespace and control characters, trailing newlines included
    ("kv-v2", "secret", "default/x\n"),
    ("kv-v2", "secret", "default/x "),
    ("kv-v2", "secret", "default/\tx"),
    ("kv-v2", "secret", "default/x\x00"),
    ("kv-v2", "secret", "default/x\x7f"),
    ("kv-v2", "secret\n", "default/x"),
    ("kv-v2", "secret\r", "default/x"),
    ("kv-v2", "secret", "default/x\u2028"),
    ("kv-v2", "secret", "default\uff0fx"),  # a fullwidth slash
    # database roles: a path, traversal, whitespace
    ("database", "database", "default/x"),
    ("database", "database", "../default"),
    ("database", "database", "default\n"),
    ("database", "database", "default "),
    ("database", "database", "default?x"),
    # Vault's own machinery
    ("kv-v1", "sys", "default/x"),
    ("kv-v1", "auth", "default/x"),
    ("kv-v1", "cubbyhole", "default/x"),
    ("kv-v1", "identity", "default/x"),
]


def _ids(case: tuple[str, str, str]) -> str:
    return repr(case)


@pytest.mark.parametrize("case", BYPASSES, ids=_ids)
@pytest.mark.parametrize("auth_mode", ["tenant", "operator"])
def test_operator_check_refuses(case: tuple[str, str, str], auth_mode: str) -> None:
    engine, mount, path = case
    with pytest.raises(VaultPathNotAllowed) as caught:
        check_allowed(Config(vault_auth_mode=auth_mode), NS, VaultSource(engine, mount, path))
    assert caught.value.problems[0].field in {"spec.vault.mount", "spec.vault.path"}


def _vault_secret(vault: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "VaultSecret",
        "metadata": {"name": "x", "namespace": NS},
        "spec": {"vault": vault},
    }


def _mirage_service(vault: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "metadata": {"name": "x", "namespace": NS},
        "spec": {
            "image": "registry.invalid/x:1",
            "secrets": [{"name": "db", "vault": vault, "expose": {"mode": "env"}}],
        },
    }


@pytest.mark.parametrize(
    "case", [c for c in BYPASSES if c[1] not in {"sys", "auth", "cubbyhole", "identity"}], ids=_ids
)
@pytest.mark.parametrize(
    ("document", "prefix"), [(_vault_secret, "spec.vault"), (_mirage_service, "spec.secrets[0]")]
)
def test_validation_refuses_before_anything_is_applied(
    case: tuple[str, str, str], document: Any, prefix: str
) -> None:
    engine, mount, path = case
    _, problems = problems_of(document({"engine": engine, "mount": mount, "path": path}))
    fields = {p.field for p in problems}
    assert any(f.startswith(prefix) and f.rsplit(".", 1)[-1] in {"mount", "path"} for f in fields)


@pytest.mark.parametrize(
    "vault",
    [
        {"engine": "kv-v2", "path": "default/orders/db"},
        {"engine": "kv-v1", "mount": "kv", "path": "default/x_y-z.1@a=b+c,d:e~f"},
        {"engine": "database", "path": "default.readonly"},
        {"engine": "kv-v2", "mount": "team_kv-2.a", "path": "default/x", "version": 3},
    ],
)
def test_well_formed_sources_still_pass(vault: dict[str, Any]) -> None:
    _, problems = problems_of(_vault_secret(vault))
    assert problems == []
    source = VaultSource(
        vault["engine"],
        vault.get("mount") or {"database": "database"}.get(vault["engine"], "secret"),
        vault["path"],
    )
    check_allowed(Config(), NS, source)


@pytest.mark.parametrize("case", BYPASSES[:6], ids=_ids)
async def test_operator_mode_sends_no_request_for_a_bypass(
    vault: EmulatedVault, case: tuple[str, str, str]
) -> None:
    vault.put_kv("other/default/x", {"stolen": "yes"}, mount="kv")
    config = Config(vault_address=vault.address, vault_auth_mode="operator", vault_retries=0)

    async def no_token(*_: Any) -> str:
        raise AssertionError("no login for a refused path")

    client = VaultClient(config, token_for=no_token, sleep=Sleeps())
    try:
        with pytest.raises(VaultPathNotAllowed):
            await client.read(NS, VaultSource(*case))
    finally:
        await client.close()
    assert vault.count() == 0


def test_mirage_validate_refuses_a_mount_with_path_segments(tmp_path: Path) -> None:
    document = _vault_secret({"engine": "kv-v1", "mount": "kv/other", "path": "default/x"})
    path = tmp_path / "trick.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert "spec.vault.mount" in result.output
