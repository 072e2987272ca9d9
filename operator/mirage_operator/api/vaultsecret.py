"""Typed model of a VaultSecret spec, and the rules its CRD schema cannot express.

``VaultSecretSpec.from_spec`` expects a spec that the CRD schema has validated; it applies the
CRD's defaults itself (:mod:`.defaults`). The ``vault``, ``keys``, ``templates``
and ``refreshInterval`` fields are the *source* part that a MirageService embeds under
``spec.secrets[]``; :func:`source_rules` checks that part on its own so the MirageService
rules can reuse it with their own field prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mirage_operator.api import defaults, k8svalidation
from mirage_operator.config import Config, parse_duration
from mirage_operator.errors import Problem
from mirage_operator.templating import template_error

KIND = "VaultSecret"

DEFAULT_MOUNTS: Mapping[str, str] = {"kv-v2": "secret", "kv-v1": "secret", "database": "database"}
"""Mount used when ``spec.vault.mount`` is omitted (the schema cannot default by engine)."""

REQUIRED_KEYS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "kubernetes.io/tls": ("all", ("tls.crt", "tls.key")),
    "kubernetes.io/dockerconfigjson": ("all", (".dockerconfigjson",)),
    "kubernetes.io/basic-auth": ("any", ("username", "password")),
}
"""Per Secret type: whether ``all`` or ``any`` of the keys must be present (the API server's
own validation of typed Secrets)."""

MOUNT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
"""A mount: ONE path segment (docs/adr/0068). Vault routes a request to the longest mounted
prefix of its path, so a mount of several segments (``kv/other``) could be read as the mount
``kv`` and a path ``other/...`` that the allowed-path check never saw."""

PATH_SEGMENT = re.compile(r"[A-Za-z0-9_.@=+,:~-]+")
"""One segment of a KV path: printable ASCII without ``/``, ``%``, ``?``, ``#``, ``\\``,
``*``, whitespace or control characters (nothing Vault or HTTP would decode, split or
normalise into another path); ``.`` and ``..`` are refused separately."""

DATABASE_ROLE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
"""A database role name, as Vault's database engine accepts it (``creds/<role>``)."""


def is_secret_key(name: str) -> bool:
    """Whether ``name`` is a valid key of a Kubernetes Secret's data (``IsConfigMapKey``)."""
    return not k8svalidation.is_config_map_key(name)


def missing_type_keys(secret_type: str, keys: frozenset[str] | set[str]) -> str | None:
    """Why ``keys`` do not satisfy ``secret_type``, or ``None`` when they do."""
    requirement = REQUIRED_KEYS.get(secret_type)
    if requirement is None:
        return None
    mode, required = requirement
    if mode == "all":
        missing = [k for k in required if k not in keys]
        if missing:
            needed, absent = ", ".join(required), ", ".join(missing)
            return f"type {secret_type} needs the keys {needed}; missing {absent}"
    elif not any(k in keys for k in required):
        return f"type {secret_type} needs at least one of the keys {', '.join(required)}"
    return None


@dataclass(frozen=True)
class VaultSource:
    """Where the data lives in Vault."""

    engine: str
    """``kv-v2``, ``kv-v1`` or ``database``."""
    mount: str
    """Mount path of the engine (the engine's default mount already applied)."""
    path: str
    """Path under the mount; for ``database``, the role name."""
    version: int | None = None
    """kv-v2 only: the pinned version, ``None`` for the latest."""

    @property
    def display(self) -> str:
        """A human-readable reference (engine, mount and path; never data) for messages."""
        pinned = f"?version={self.version}" if self.version is not None else ""
        if self.engine == "database":
            return f"{self.mount}/creds/{self.path}"
        return f"{self.mount}/{self.path}{pinned}"


@dataclass(frozen=True)
class KeyMapping:
    """One Vault key copied into the Secret under ``target``."""

    source: str
    target: str


@dataclass(frozen=True)
class Destination:
    """The Secret written from the Vault data."""

    name: str | None
    """Name of the Secret; ``None`` means the VaultSecret's own name."""
    type: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    overwrite: bool
    """Write into an existing Secret Mirage did not create (without owning it, so deleting
    the VaultSecret leaves it); otherwise such a Secret is reported, never touched."""


@dataclass(frozen=True)
class RestartTarget:
    """A workload restarted when the Secret's data changes."""

    kind: str
    name: str


@dataclass(frozen=True)
class VaultSecretSpec:
    """A VaultSecret's spec, defaulted and typed."""

    vault: VaultSource
    keys: tuple[KeyMapping, ...]
    """Keys to copy; empty means every key (unless there are templates)."""
    templates: Mapping[str, str]
    """Secret key to Jinja2 template source, sorted by key."""
    destination: Destination
    refresh_interval: float
    """Seconds between reads of Vault; ``0`` means only on spec change or force-sync."""
    rollout_restart_targets: tuple[RestartTarget, ...] = ()

    @property
    def copies_all_keys(self) -> bool:
        """Whether every key read from Vault lands in the Secret (no keys, no templates)."""
        return not self.keys and not self.templates

    def secret_name(self, owner_name: str) -> str:
        """Name of the Secret for a VaultSecret called ``owner_name``."""
        return self.destination.name or owner_name

    def output_keys(self) -> frozenset[str] | None:
        """The Secret's keys when the spec alone decides them, ``None`` when they depend on
        what Vault holds (every key is copied)."""
        if self.copies_all_keys:
            return None
        return frozenset(m.target for m in self.keys) | frozenset(self.templates)

    @classmethod
    def from_spec(
        cls,
        spec: Mapping[str, Any],
        *,
        default_refresh_interval: float = Config.vault_default_refresh_interval,
    ) -> VaultSecretSpec:
        """Build from a schema-valid ``spec``, defaulted here by the CRD schema. Also accepts the
        source part that a MirageService embeds (``destination`` and ``rolloutRestartTargets``
        then default)."""
        spec = defaults.defaulted(KIND, spec)
        vault = spec["vault"]
        engine = vault["engine"]
        destination = spec["destination"]
        refresh = spec.get("refreshInterval")
        return cls(
            vault=VaultSource(
                engine=engine,
                mount=vault.get("mount") or DEFAULT_MOUNTS[engine],
                path=vault["path"],
                version=vault.get("version"),
            ),
            keys=tuple(
                KeyMapping(source=k["from"], target=k.get("to") or k["from"])
                for k in spec.get("keys", ())
            ),
            templates=dict(sorted(spec.get("templates", {}).items())),
            destination=Destination(
                name=destination.get("name"),
                type=destination["type"],
                labels=dict(destination.get("labels", {})),
                annotations=dict(destination.get("annotations", {})),
                overwrite=destination["overwrite"],
            ),
            refresh_interval=(
                parse_duration(refresh) if refresh is not None else default_refresh_interval
            ),
            rollout_restart_targets=tuple(
                RestartTarget(kind=t["kind"], name=t["name"])
                for t in spec.get("rolloutRestartTargets", ())
            ),
        )


def vault_source_problems(
    engine: str, mount: str, path: str, *, prefix: str = "spec.vault"
) -> list[Problem]:
    """Why ``mount`` and ``path`` do not name exactly one Vault path for ``engine``
    (docs/adr/0068): the mount is one segment; the path has no empty, ``.`` or ``..`` segment,
    no leading or trailing ``/``, nothing encoded, no query or fragment, no whitespace or
    control characters; a database path is one role name. Field paths start with ``prefix``.
    Values are quoted with ``repr`` so that control characters show."""
    problems: list[Problem] = []
    if not MOUNT.fullmatch(mount):
        problems.append(
            Problem(
                f"{prefix}.mount",
                f"Invalid value: {mount!r}: a mount is one path segment (letters, digits, "
                "'_', '-', '.'), with no '/': Vault would route a request to the longest "
                "mounted prefix, which the allowed-path check cannot know",
            )
        )
    if engine == "database":
        if not DATABASE_ROLE.fullmatch(path):
            problems.append(
                Problem(
                    f"{prefix}.path",
                    f"Invalid value: {path!r}: for engine database, path is a role name "
                    "(letters, digits, '_', '-', '.'; no '/')",
                )
            )
    elif not all(
        PATH_SEGMENT.fullmatch(segment) and segment not in {".", ".."}
        for segment in path.split("/")
    ):
        problems.append(
            Problem(
                f"{prefix}.path",
                f"Invalid value: {path!r}: segments separated by single '/', each of letters, "
                "digits and '_.@=+,:~-', none '.' or '..', no leading or trailing '/'",
            )
        )
    return problems


def source_rules(source: Mapping[str, Any], *, prefix: str) -> list[Problem]:
    """Check the source part (``vault``, ``keys``, ``templates``, ``refreshInterval``) of a
    schema-valid spec; field paths start with ``prefix`` (e.g. ``spec.secrets[0]``)."""
    vault = defaults.defaulted(KIND, source)["vault"]
    engine = str(vault["engine"])
    problems = vault_source_problems(
        engine,
        str(vault.get("mount") or DEFAULT_MOUNTS.get(engine, "")),
        str(vault.get("path", "")),
        prefix=f"{prefix}.vault",
    )
    refresh = source.get("refreshInterval")
    if refresh is not None:
        try:
            parse_duration(refresh)
        except ValueError as exc:
            problems.append(Problem(f"{prefix}.refreshInterval", f"Invalid value: {exc}"))

    seen: dict[str, int] = {}
    for index, item in enumerate(source.get("keys", ())):
        target = item.get("to") or item["from"]
        if not is_secret_key(target):
            # The schema checks this too; repeated so that the embedded copy is covered.
            problems.append(
                Problem(
                    f"{prefix}.keys[{index}].{'to' if item.get('to') else 'from'}",
                    f"Invalid value: {target!r} is not a valid Secret key",
                )
            )
        if target in seen:
            problems.append(
                Problem(
                    f"{prefix}.keys[{index}]",
                    f"Duplicate value: Secret key {target!r} is also written by "
                    f"{prefix}.keys[{seen[target]}]",
                )
            )
        seen.setdefault(target, index)

    for name, template in sorted(source.get("templates", {}).items()):
        where = f"{prefix}.templates[{name}]"
        if not is_secret_key(name):
            problems.append(Problem(where, f"Invalid value: {name!r} is not a valid Secret key"))
        if name in seen:
            problems.append(
                Problem(
                    where,
                    f"Duplicate value: Secret key {name!r} is also written by "
                    f"{prefix}.keys[{seen[name]}]",
                )
            )
        error = template_error(template)
        if error is not None:
            problems.append(Problem(where, f"Invalid value: {error}"))
    return problems


def rules(body: Mapping[str, Any]) -> list[Problem]:
    """Rules across fields that the CRD schema does not express; ``body`` is schema-valid."""
    spec = defaults.defaulted(KIND, body.get("spec", {}))
    problems = source_rules(spec, prefix="spec")
    destination = spec["destination"]
    problems += k8svalidation.label_problems(
        destination.get("labels", {}), field="spec.destination.labels"
    )
    problems += k8svalidation.annotation_problems(
        destination.get("annotations", {}), field="spec.destination.annotations"
    )
    secret_type = destination["type"]
    if not problems and secret_type in REQUIRED_KEYS:
        keys = VaultSecretSpec.from_spec(spec).output_keys()
        # Only knowable when the spec lists the keys; with "every key" Vault decides.
        reason = missing_type_keys(secret_type, keys) if keys is not None else None
        if reason is not None:
            problems.append(Problem("spec.destination.type", f"Invalid value: {reason}"))
    return problems
