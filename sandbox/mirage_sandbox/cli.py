"""``mirage sandbox``: added to the ``mirage`` command through the ``mirage.commands`` entry
point (docs/adr/0120), so that the operator package never imports the sandbox."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from mirage_operator import logs
from mirage_operator.config import Config
from mirage_operator.errors import ConfigError, StartupError
from mirage_operator.examples import EXAMPLES_DIR
from mirage_operator.yamlsafe import YAMLInputError
from mirage_sandbox.session import load_examples, run_sandbox


@click.command()
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
    """Run an emulated cluster with the operator, apply PATHs (default: the examples), report.

    Everything listens on 127.0.0.1 on free ports. Exits 0 when every resource became Ready
    (or, with --keep, when interrupted); 1, with the cause in one line, when it cannot start.
    """
    try:
        config = Config.from_env()
    except ConfigError as exc:  # one line, as the operator's own commands say it
        raise click.ClickException(f"configuration: {exc}") from None
    try:
        documents = load_examples([Path(p) for p in paths] or [EXAMPLES_DIR])
    except YAMLInputError as exc:
        raise click.ClickException(str(exc)) from None
    work = Path(workdir).resolve()
    try:
        work.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(work / "operator.log", mode="w", encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"{work}: {exc.strerror or exc}") from None
    handler.setFormatter(logs.TextFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    try:
        code = asyncio.run(
            run_sandbox(
                documents=documents,
                workdir=work,
                keep=keep,
                wait_seconds=timeout,
                config=config,
                port=port,
            )
        )
    except StartupError as exc:
        raise click.ClickException(f"{exc} (log: {work / 'operator.log'})") from None
    except KeyboardInterrupt:
        click.echo("\nsandbox stopped")
        code = 0
    sys.exit(code)
