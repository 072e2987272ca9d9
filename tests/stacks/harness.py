"""Build the Pulumi program offline with Pulumi's mocks and keep what it declared.

:func:`build` loads a stack file (``Pulumi.<stack>.yaml``) into the mocked runtime's config,
runs :func:`stacks.program.compose` and returns a :class:`Built`: every resource registered
(type, name, URN with its parent chain, inputs resolved) and the stack outputs. No Pulumi
CLI, no provider plugin, no cloud: the mocks answer each registration with its inputs plus
a few computed attributes that real providers would return.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "mirage"


@dataclass
class Registered:
    """One resource the program registered, as the engine would have received it."""

    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    secrets: set[str] = field(default_factory=set)
    """Dotted paths of the inputs that were secret (unwrapped in ``inputs``)."""
    parent_types: tuple[str, ...] = ()
    """Types of the ancestors, outermost first (from the URN's parent chain)."""

    @property
    def component(self) -> str | None:
        """Type token of the nearest ``mirage:`` component ancestor."""
        return next((t for t in reversed(self.parent_types) if t.startswith("mirage:")), None)


_COMPUTED: Mapping[str, Mapping[str, Any]] = {
    "aws:eks/cluster:Cluster": {
        "endpoint": "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
        "certificateAuthority": {"data": "Q0EK"},
        "identities": [
            {"oidcs": [{"issuer": "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF"}]}
        ],
        "vpcConfig": {"clusterSecurityGroupId": "sg-cluster"},
    },
    "aws:rds/instance:Instance": {"address": "pg.example.internal", "port": 5432},
    "aws:docdb/cluster:Cluster": {"endpoint": "docdb.example.internal", "port": 27017},
    "aws:elasticache/replicationGroup:ReplicationGroup": {
        "primaryEndpointAddress": "redis.example.internal"
    },
    "aws:mq/broker:Broker": {"instances": [{"endpoints": ["amqps://mq.example.internal:5671"]}]},
    "aws:opensearch/domain:Domain": {
        "endpoint": "vpc-logs.example.internal",
        "dashboardEndpoint": "vpc-logs.example.internal/_dashboards",
    },
}


VAULT_KV = {"platform/oauth2-proxy": {"client-secret": "idp-client-secret-from-vault"}}
"""The mocked Vault's KV v2 secrets (``<mount>/<path>`` to data)."""

_SECRET_SIG = pulumi.runtime.rpc._special_sig_key
_SECRET = pulumi.runtime.rpc._special_secret_sig


def _unwrap(value: Any, path: str, secrets: set[str]) -> Any:
    # Secret inputs arrive wrapped ({sig: secret, value: ...}): keep the value, note the path.
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == _SECRET:
            secrets.add(path)
            return _unwrap(value["value"], path, secrets)
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


class Mocks(pulumi.runtime.Mocks):
    """Answer every registration with its inputs (plus computed attributes) and record it."""

    def __init__(self) -> None:
        self.registered: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        state.setdefault("arn", f"arn:aws:mock:::{args.name}")
        state.setdefault("name", args.name)
        state.update(_COMPUTED.get(args.typ, {}))
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = "x" * int(args.inputs.get("length", 16))
        secrets: set[str] = set()
        inputs = _unwrap(dict(args.inputs), "", secrets)
        self.registered.append(Registered(args.typ, args.name, inputs, bool(args.custom), secrets))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["eu-west-1a", "eu-west-1b", "eu-west-1c"], "zoneIds": []}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:root"}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": "eu-west-1", "region": "eu-west-1"}
        if args.token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {"json": json.dumps({"Statement": args.args.get("statements", [])})}
        if args.token == "vault:kv/getSecretV2:getSecretV2":  # what a KV v2 read returns
            return {"data": VAULT_KV.get(f"{args.args['mount']}/{args.args['name']}", {})}
        raise AssertionError(f"unexpected invoke {args.token}")


@dataclass
class Built:
    """What one stack declared."""

    stack: str
    resources: list[Registered]
    outputs: dict[str, Any]
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Registered:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        assert len(found) == 1, f"{len(found)} {type_} named {name}: {[r.name for r in found]}"
        return found[0]

    def types(self) -> set[str]:
        return {r.type for r in self.resources}

    def __iter__(self) -> Iterator[Registered]:
        return iter(self.resources)


def stack_config(stack: str) -> dict[str, Any]:
    """The ``config:`` of ``Pulumi.<stack>.yaml`` (secure values as the CLI would decrypt
    them: the tests give every secret a placeholder)."""
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return dict(document.get("config") or {})


def _as_config(values: Mapping[str, Any]) -> dict[str, str]:
    # The engine hands the program every value as a string; objects as JSON.
    return {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()
    }


def build(
    stack: str, *, overrides: Mapping[str, Any] | None = None, secrets: Mapping[str, str] = {}
) -> Built:
    """Run the program for ``Pulumi.<stack>.yaml`` (with ``overrides``) under mocks."""
    from stacks import program

    values = {**stack_config(stack), **(overrides or {})}
    values = {k: v for k, v in values.items() if v is not None}
    values.update(secrets)
    # Pulumi runs on the thread's current event loop; async tests before this one may have
    # left none (pytest-asyncio): give the build its own, and take it away afterwards.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    pulumi.runtime.set_all_config(_as_config(values), list(secrets))
    monitor = pulumi.runtime.settings.get_monitor()
    outputs: dict[str, Any] = {}
    resolved: dict[str, Any] = {}
    secret_outputs: set[str] = set()

    def capture(name: str, value: Any) -> None:
        outputs[name] = value

    async def settle() -> None:
        for key, value in outputs.items():
            output = pulumi.Output.from_input(value)
            resolved[key] = await output.future()
            if await output.is_secret():
                secret_outputs.add(key)

    original_export = pulumi.export
    pulumi.export = capture
    try:
        _sync_await(run_pulumi_func(program.compose))
        _sync_await(run_pulumi_func(lambda: _sync_await(settle())))
    finally:
        pulumi.export = original_export
        asyncio.set_event_loop(None)
        loop.close()
    by_urn = monitor.get_registered_resources()  # type: ignore[union-attr]
    chains = {
        urn.split("::")[-1] + "|" + urn.split("::")[2].split("$")[-1]: tuple(
            urn.split("::")[2].split("$")[:-1]
        )
        for urn in by_urn
    }
    for resource in mocks.registered:
        resource.parent_types = chains.get(f"{resource.name}|{resource.type}", ())
    return Built(stack, mocks.registered, resolved, secret_outputs)
