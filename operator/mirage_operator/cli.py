"""The ``mirage`` command: run the operator, render, validate, print CRDs, run the sandbox."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import kopf
import yaml

from mirage_operator import __version__, logs
from mirage_operator.api.validation import is_mirage, problems_of
from mirage_operator.config import Config
from mirage_operator.crds import load_crds
from mirage_operator.errors import ConfigError, InvalidSpecError

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Document:
    """One YAML document and where it came from."""

    source: str
    index: int
    body: dict[str, Any]

    @property
    def label(self) -> str:
        """``file#index Kind/name`` for messages."""
        name = (self.body.get("metadata") or {}).get("name", "?")
        return f"{self.source}#{self.index} {self.body.get('kind', '?')}/{name}"


def _files(paths: Sequence[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()
            )
        elif path.exists():
            yield path
        else:
            raise click.BadParameter(f"{raw}: no such file or directory", param_hint="PATH")


def load_documents(paths: Sequence[str]) -> Iterator[Document]:
    """Every Mirage document in ``paths`` (files or directories, recursively).

    Documents of other kinds are passed over with a note on stderr.
    """
    for path in _files(paths):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as exc:
            raise click.ClickException(f"{path}: not valid YAML: {exc}") from None
        for index, body in enumerate(documents):
            if body is None:
                continue
            if not isinstance(body, dict) or not is_mirage(body):
                kind = body.get("kind", "?") if isinstance(body, dict) else type(body).__name__
                click.echo(f"{path}#{index}: skipping {kind}: not a Mirage resource", err=True)
                continue
            yield Document(str(path), index, body)


def _config() -> Config:
    try:
        return Config.from_env()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (config files, templates) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def dump_yaml(objects: Sequence[Mapping[str, Any]]) -> str:
    """Multi-document YAML of ``objects``, keys in builder order."""
    return yaml.dump_all(objects, Dumper=_BlockDumper, sort_keys=False, explicit_start=True)


@click.group()
@click.version_option(__version__, prog_name="mirage")
def main() -> None:
    """Mirage: services, Vault-sourced Secrets and SLO rules on Kubernetes."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
def validate(paths: tuple[str, ...]) -> None:
    """Check custom resources against the CRD schemas and the operator's own rules.

    Prints one line per problem and exits 1 if there is any.
    """
    count = 0
    failed = False
    for document in load_documents(paths):
        count += 1
        _, problems = problems_of(document.body)
        for problem in problems:
            failed = True
            click.echo(f"{document.label}: {problem}")
    if failed:
        sys.exit(1)
    click.echo(f"{count} resource(s) valid", err=True)


@main.command()
@click.argument("paths", nargs=-1, required=True)
def render(paths: tuple[str, ...]) -> None:
    """Print every object the operator would create for the given resources, as YAML."""
    from mirage_operator.render.documents import render_document

    config = _config()
    objects: list[dict[str, Any]] = []
    failed = False
    for document in load_documents(paths):
        try:
            objects += render_document(document.body, config=config)
        except InvalidSpecError as exc:
            failed = True
            for problem in exc.problems:
                click.echo(f"{document.label}: {problem}", err=True)
    if failed:
        sys.exit(1)
    click.echo(dump_yaml(objects), nl=False)


@main.command()
def crds() -> None:
    """Print the Mirage CustomResourceDefinitions."""
    click.echo(dump_yaml(list(load_crds())), nl=False)


@main.command()
@click.option("--liveness", default="http://0.0.0.0:8081/healthz", show_default=True,
              help="kopf liveness endpoint URL ('' disables).")  # fmt: skip
def run(liveness: str) -> None:
    """Run the operator against the current kubeconfig or in-cluster config."""
    from mirage_operator.handlers import register

    config = _config()
    logs.configure(config)
    registry = kopf.OperatorRegistry()
    register(registry, config)
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            liveness_endpoint=liveness or None,
        )
    )


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--keep", is_flag=True, help="Keep serving after convergence, for kubectl.")
@click.option(
    "--workdir", default=".sandbox", show_default=True, help="Kubeconfig and operator log."
)
@click.option(
    "--timeout", default=120.0, show_default=True, help="Seconds to wait for convergence."
)
@click.option("--port", default=0, help="Port of the emulated API (0: any free port).")
def sandbox(paths: tuple[str, ...], keep: bool, workdir: str, timeout: float, port: int) -> None:
    """Run an emulated cluster with the operator, apply PATHs (default: examples/), report.

    Exits 0 when every resource became Ready (or, with --keep, when interrupted).
    """
    from mirage_operator.sandbox.session import run_sandbox

    examples = [Path(p) for p in paths or ("examples",)]
    for path in examples:
        if not path.exists():
            raise click.BadParameter(f"{path}: no such file or directory", param_hint="PATH")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(work / "operator.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    try:
        code = asyncio.run(
            run_sandbox(examples=examples, workdir=work, keep=keep, wait_seconds=timeout, port=port)
        )
    except KeyboardInterrupt:
        click.echo("\nsandbox stopped")
        code = 0
    sys.exit(code)
