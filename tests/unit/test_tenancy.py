"""The tenant contract: one set of names and one policy renderer for the operator, the stacks
and the sandbox (the real-Vault check of the policies is in tests/stacks/test_vault_referee.py)."""

from __future__ import annotations

import pytest

from mirage_operator import tenancy
from mirage_operator.config import Config
from mirage_sandbox.tenants import tenant_policy


def test_operator_defaults_are_the_contract() -> None:
    config = Config()
    assert config.vault_role_template == tenancy.VAULT_ROLE_TEMPLATE == "mirage-{namespace}"
    assert config.vault_service_account == tenancy.SERVICE_ACCOUNT == "mirage-vault"
    assert config.vault_token_audience == tenancy.TOKEN_AUDIENCE == "vault"
    assert config.vault_auth_mount == tenancy.AUTH_MOUNT
    assert config.vault_allowed_paths == tenancy.KV_PATH_TEMPLATES
    assert config.vault_allowed_database_roles == tenancy.DATABASE_ROLE_TEMPLATES
    assert config.monitoring_labels == tenancy.MONITORING_LABELS
    assert config.dashboard_labels == tenancy.DASHBOARD_LABELS
    assert config.ingress_class == tenancy.INGRESS_CLASS


def test_tenant_policy_rules_scope_every_path_to_the_namespace() -> None:
    rules = tenancy.tenant_policy_rules("team-a")
    assert rules == {
        "secret/data/team-a/*": ("read",),
        "kv/team-a/*": ("read",),
        "database/creds/team-a": ("read",),
        "database/creds/team-a.*": ("read",),
        "sys/leases/renew/database/creds/team-a/*": ("update",),
        "sys/leases/renew/database/creds/team-a.*": ("update",),
        "sys/leases/revoke/database/creds/team-a/*": ("update",),
        "sys/leases/revoke/database/creds/team-a.*": ("update",),
        "auth/token/lookup-self": ("read",),
        "auth/token/renew-self": ("update",),
        "auth/token/revoke-self": ("update",),
    }
    # No body-form lease endpoint (it cannot be scoped), no bare glob, no sudo.
    assert not {"sys/leases/renew", "sys/leases/revoke", "sys/renew", "*"} & set(rules)
    assert all("sudo" not in caps for caps in rules.values())


@pytest.mark.parametrize(
    ("mounts", "expected"),
    [
        ({"team-kv": "kv-v2"}, {"team-kv/data/ns/*"}),
        ({"old": "kv-v1"}, {"old/ns/*"}),
        (
            {"pg": "database"},
            {
                "pg/creds/ns",
                "pg/creds/ns.*",
                "sys/leases/renew/pg/creds/ns/*",
                "sys/leases/renew/pg/creds/ns.*",
                "sys/leases/revoke/pg/creds/ns/*",
                "sys/leases/revoke/pg/creds/ns.*",
            },
        ),
    ],
)
def test_each_engine_by_its_mount(mounts: dict[str, str], expected: set[str]) -> None:
    rules = tenancy.tenant_policy_rules("ns", mounts)
    assert set(rules) - set(tenancy.TOKEN_SELF_RULES) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mounts": {"x": "pki"}}, "unknown engine 'pki'"),
        ({"kv_paths": ("*/{namespace}",)}, "only at the end"),
        ({"kv_paths": ("{namespace}/+/x",)}, "only at the end"),
        ({"database_roles": ("*{namespace}",)}, "database role template"),
    ],
)
def test_inexpressible_templates_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tenancy.tenant_policy_rules("ns", **kwargs)  # type: ignore[arg-type]


def test_policy_hcl_renders_one_block_per_rule() -> None:
    hcl = tenancy.policy_hcl({"b/*": ("read",), "a": ("read", "update")})
    assert hcl == (
        'path "a" {\n  capabilities = ["read", "update"]\n}\n'
        'path "b/*" {\n  capabilities = ["read"]\n}\n'
    )
    assert tenancy.tenant_policy_hcl("ns").count("path ") == len(tenancy.tenant_policy_rules("ns"))


def test_sandbox_tenants_use_the_contract_with_the_operator_templates() -> None:
    assert tenant_policy("ns", tenancy.MOUNTS) == {
        path: list(caps) for path, caps in tenancy.tenant_policy_rules("ns").items()
    }
    config = Config(vault_allowed_paths=("apps/{namespace}/*",))
    assert "secret/data/apps/ns/*" in tenant_policy("ns", tenancy.MOUNTS, config=config)


def test_names() -> None:
    assert tenancy.vault_role("team-a") == "mirage-team-a"
    assert tenancy.vault_role("team-a", "k8s-{namespace}") == "k8s-team-a"
    assert tenancy.vault_policy_name("team-a") == "tenant-team-a"
    assert tenancy.database_role("team-a") == "team-a"
    assert tenancy.database_role("team-a", "readonly") == "team-a.readonly"
    assert tenancy.labels_arg((("a", "1"), ("b", "2"))) == "a=1,b=2"
