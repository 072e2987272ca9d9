"""The ``mirage`` command: run the operator, render, validate, print CRDs; and the commands
other distributions add (``mirage sandbox``, from mirage-sandbox)."""

from __future__ import annotations

import asyncio
import sys
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import click
import kopf
import yaml

from mirage_operator import __version__, logs
from mirage_operator.api.validation import is_mirage, problems_of
from mirage_operator.config import Config
from mirage_operator.crds import load_crds
from mirage_operator.errors import (
    ConfigError,
    InvalidSpecError,
    Problem,
    StartupError,
    VaultPathNotAllowed,
)
from mirage_operator.yamlsafe import Document, YAMLInputError, read_objects


class _Inputs:
    """The PATH arguments' documents; each fault is one line on stderr, and remembered."""

    def __init__(self) -> None:
        self.failed = False

    def report(self, error: YAMLInputError) -> None:
        click.echo(str(error), err=True)
        self.failed = True

    def mirage_documents(self, paths: Sequence[str]) -> Iterator[Document]:
        """Every Mirage document in ``paths`` (files or directories, recursively); objects
        of other kinds are passed over with a note on stderr."""
        for document in read_objects(map(Path, paths), on_error=self.report):
            if is_mirage(document.body):
                yield document
            else:
                click.echo(
                    f"{document.where}: skipping {document.body['kind']}: not a Mirage resource",
                    err=True,
                )


def _config() -> Config:
    try:
        return Config.from_env()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


# libyaml's emitter where PyYAML was built with it: most of `mirage render`'s time was
# pure-Python YAML (issue 10).
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _BlockDumper(_SafeDumper):  # type: ignore[valid-type,misc]
    """Writes multi-line strings (config files, templates) as literal blocks, and every shared
    object in full: anchors and aliases (``&id001``) are YAML that kubectl and people read
    badly, and that the bounded loader counts against its alias budget."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def dump_yaml(objects: Sequence[Mapping[str, Any]]) -> str:
    """Multi-document YAML of ``objects``, keys in builder order."""
    return yaml.dump_all(objects, Dumper=_BlockDumper, sort_keys=False, explicit_start=True)


class _OneLineErrors(click.Group):
    """Click, with every error in one line (``Error: ...``), usage errors included: the
    usage text is on ``--help``. Exit codes stay click's: 2 for usage, 1 for the rest."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `mirage`: the help
            click.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except OSError as exc:  # writing the output failed (disk full, closed pipe, ...)
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"Error: {where}{exc.strerror or exc}", err=True)
            sys.exit(1)


COMMANDS_ENTRY_POINTS = "mirage.commands"
"""Entry-point group through which other distributions add commands to ``mirage``: the
sandbox is one (docs/adr/0120). They are loaded only when named, so the operator never
imports them to run."""

NOT_INSTALLED = {
    "sandbox": (
        "Not installed: needs the mirage-sandbox package.",
        "`mirage sandbox` needs the mirage-sandbox package, which is not installed: in the "
        "repository, run `make install` or `pip install -e ./sandbox`",
    ),
}
"""Commands that live in another distribution: (short help, the one line saying how to
install it), for when that distribution is missing."""


def _not_installed(name: str) -> click.Command:
    """A stand-in for ``name`` that says how to install it, whatever the arguments."""
    summary, hint = NOT_INSTALLED[name]

    def refuse() -> None:
        raise click.ClickException(hint)

    return click.Command(
        name,
        callback=refuse,
        help=summary,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


class _Commands(_OneLineErrors):
    """The built-in commands, plus those of the ``mirage.commands`` entry points."""

    @staticmethod
    def _entry_points() -> dict[str, metadata.EntryPoint]:
        return {ep.name: ep for ep in metadata.entry_points(group=COMMANDS_ENTRY_POINTS)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._entry_points(), *NOT_INSTALLED})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry_point = self._entry_points().get(cmd_name)
        if entry_point is not None:
            loaded = entry_point.load()
            if not isinstance(loaded, click.Command):
                raise click.ClickException(f"{entry_point.value}: not a click command")
            return loaded
        return _not_installed(cmd_name) if cmd_name in NOT_INSTALLED else None


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="mirage")
def main() -> None:
    """Mirage: services, Vault-sourced Secrets and SLO rules on Kubernetes."""


def one_line(text: str) -> str:
    """``text`` with every unprintable character escaped as Python writes it (``\\n``): a
    field name or value from the user's file cannot split one problem over two lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _vault_path_problems(body: dict[str, Any], config: Config) -> list[Problem]:
    """The Vault paths of a valid resource that its namespace may not read under ``config``'s
    allowed-path templates, as the operator refuses them (``default`` when no namespace)."""
    from mirage_operator.api.vaultsecret import VaultSecretSpec
    from mirage_operator.vault.policy import check_allowed

    spec, namespace = body["spec"], body["metadata"].get("namespace") or "default"
    sources = {"spec.vault.path": spec} if body["kind"] == "VaultSecret" else {}
    if body["kind"] == "MirageService":
        sources = {
            f"spec.secrets[{i}].vault.path": s for i, s in enumerate(spec.get("secrets", []))
        }
    problems: list[Problem] = []
    for field, source in sources.items():
        try:
            check_allowed(config, namespace, VaultSecretSpec.from_spec(source).vault, field=field)
        except VaultPathNotAllowed as exc:
            problems += exc.problems
    return problems


def _config_problems(body: dict[str, Any], config: Config) -> list[Problem]:
    """What the operator (and ``mirage render``) refuse in a valid MirageService under
    ``config`` only, e.g. ``podLabels`` callers when ``MIRAGE_MESH_DEFAULT`` puts it in the mesh."""
    if body["kind"] != "MirageService":
        return []
    from mirage_operator.api.mirageservice import MirageServiceSpec
    from mirage_operator.render.mirageservice import config_problems

    return config_problems(MirageServiceSpec.from_spec(body["spec"]), config)


@main.command()
@click.argument("paths", nargs=-1, required=True)
def validate(paths: tuple[str, ...]) -> None:
    """Check custom resources against the CRD schemas and the operator's own rules.

    Prints one line per problem and exits 1 if there is any.
    """
    config = _config()
    inputs = _Inputs()
    count = 0
    failed = False
    for document in inputs.mirage_documents(paths):
        count += 1
        body, problems = problems_of(document.body)
        problems = problems or _vault_path_problems(body, config) + _config_problems(body, config)
        for problem in problems:
            failed = True
            click.echo(one_line(f"{document.label}: {problem}"))
    if failed or inputs.failed:
        sys.exit(1)
    click.echo(f"{count} resource(s) valid", err=True)


@main.command()
@click.argument("paths", nargs=-1, required=True)
def render(paths: tuple[str, ...]) -> None:
    """Print every object the operator would create for the given resources, as YAML."""
    from mirage_operator.render.documents import render_document

    config = _config()
    inputs = _Inputs()
    objects: list[dict[str, Any]] = []
    made_by: dict[tuple[str, str, str, str], str] = {}
    failed = False
    for document in inputs.mirage_documents(paths):
        try:
            rendered = render_document(document.body, config=config)
        except InvalidSpecError as exc:
            failed = True
            for problem in exc.problems:
                click.echo(one_line(f"{document.label}: {problem}"), err=True)
            continue
        # The resource itself counts: a MirageService's child VaultSecret may bear the name of
        # a VaultSecret of the user's. In a cluster the second owner gets ChildNameConflict
        # (ADR 0011); offline the clash is told here.
        for obj in [document.body, *rendered]:
            meta = obj["metadata"]
            namespace = meta.get("namespace") or ("default" if obj is document.body else "")
            key = (obj["apiVersion"], obj["kind"], namespace, meta["name"])
            if (first := made_by.setdefault(key, document.label)) != document.label:
                failed = True
                where = f"{key[2]}/{key[3]}" if key[2] else key[3]
                click.echo(
                    one_line(f"{document.label}: {key[1]} {where} is also made by {first}"),
                    err=True,
                )
        objects += rendered
    if failed or inputs.failed:
        sys.exit(1)
    click.echo(dump_yaml(objects), nl=False)


@main.command()
def crds() -> None:
    """Print the Mirage CustomResourceDefinitions."""
    click.echo(dump_yaml(list(load_crds())), nl=False)


_LIVENESS = "http://0.0.0.0:8081/healthz"


def _liveness_url(_: click.Context, __: click.Parameter, value: str) -> str:
    if not value:
        return value
    url = urllib.parse.urlsplit(value)
    try:
        port = url.port
    except ValueError:
        port = None
    if url.scheme != "http" or not url.hostname or port is None:
        raise click.BadParameter(f"{value!r}: expected http://HOST:PORT/PATH, e.g. {_LIVENESS}")
    return value


@main.command()
@click.option("--liveness", default=_LIVENESS, show_default=True, callback=_liveness_url,
              help="kopf liveness endpoint URL ('' disables).")  # fmt: skip
def run(liveness: str) -> None:
    """Run the operator against the current kubeconfig or in-cluster config."""
    from mirage_operator.handlers import register
    from mirage_operator.handlers.activities import (
        connection_info,
        failure_cause,
        tune_garbage_collector,
    )
    from mirage_operator.k8s.client import KubeClient
    from mirage_operator.leadership import WarmStandby, beside, elector_for, run_elected, warm_up
    from mirage_operator.shards import report_unowned

    config = _config()
    try:
        info = connection_info(kopf.OperatorSettings())
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    logs.configure(config)
    registry = kopf.OperatorRegistry()
    settings = kopf.OperatorSettings()
    context = register(registry, config)

    async def operator() -> None:
        await kopf.operator(
            registry=registry,
            settings=settings,
            standalone=True,  # the Lease, not kopf's peering, decides who runs (ADR 0110)
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            liveness_endpoint=liveness or None,
        )

    async def survey() -> None:
        # The leader's alone: a cluster-wide LIST per resync interval.
        client = KubeClient(info, user_agent=context.kube.user_agent)
        try:
            await report_unowned(client, config)
        finally:
            await client.close()

    duty = survey if config.shard_namespaces else None
    tune_garbage_collector()
    try:
        if config.leader_election:
            elector = elector_for(config, info, context)
            standby = WarmStandby(registry, settings, context)
            warm_up()
            asyncio.run(run_elected(elector, operator, standby, duty))
        else:
            asyncio.run(beside(operator(), duty))
    except Exception as exc:  # kopf logged the details; the command says why, in one line
        raise click.ClickException(f"the operator stopped: {failure_cause(exc)}") from None
