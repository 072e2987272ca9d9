"""Running the real ``helm`` on charts/mirage-operator, once per values file per session."""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

CHART = REPO / "charts" / "mirage-operator"
VALUES_DIR = Path(__file__).resolve().parent / "values"
VALUES_FILES = {path.stem: path for path in sorted(VALUES_DIR.glob("*.yaml"))}
CASES = ("default", *VALUES_FILES)
"""``default`` (the chart's values.yaml alone) and every file in tests/chart/values/."""

RELEASE = "mirage"
NAMESPACE = "mirage-system"
KUBE_VERSION = "1.33.0"


def default_values() -> dict[str, Any]:
    """The chart's values.yaml."""
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    return values


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of a values file over the defaults: maps merge, anything else replaces,
    and null removes the key."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def case_values(case: str) -> dict[str, Any]:
    """The values a case renders with (defaults, then its file)."""
    if case == "default":
        return default_values()
    override = yaml.safe_load(VALUES_FILES[case].read_text(encoding="utf-8")) or {}
    return merge_values(default_values(), override)


@dataclass
class Helm:
    """The helm binary, with its cache and config kept out of the user's home."""

    binary: str
    home: Path

    def env(self) -> dict[str, str]:
        """Environment of every helm call: isolated state, no network settings needed."""
        env = dict(os.environ)
        for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env[name] = str(self.home / name.lower())
        # Never a real cluster: every call here is offline.
        env["KUBECONFIG"] = str(self.home / "no-kubeconfig")
        return env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run helm; the caller checks the return code."""
        return subprocess.run(
            [self.binary, *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=60,
            check=False,
        )

    def template(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``helm template`` of the chart as release ``mirage`` in ``mirage-system``."""
        return self.run(
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            *args,
        )


def notes(helm: Helm, *args: str) -> str:
    """NOTES.txt as ``helm install --dry-run=client`` prints it (no cluster involved)."""
    result = helm.run(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", *args
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.partition("NOTES:\n")[2]


def values_args(case: str) -> list[str]:
    """The ``-f`` arguments of a case."""
    return [] if case == "default" else ["-f", str(VALUES_FILES[case])]


@dataclass
class Rendered:
    """One case's ``helm template`` output: the text (comments included) and the objects."""

    case: str
    text: str
    values: dict[str, Any]
    objects: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.objects = [doc for doc in yaml.safe_load_all(self.text) if doc]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Every object of ``kind``."""
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        """The single object of ``kind``."""
        (obj,) = self.of_kind(kind)
        return obj

    def documents(self) -> Iterator[str]:
        """The text of each rendered document (for checks on comments)."""
        for document in self.text.split("\n---\n"):
            if document.strip():
                yield document


def keys(objects: Sequence[Mapping[str, Any]]) -> set[tuple[str, str | None, str]]:
    """(kind, namespace, name) of each object."""
    return {
        (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]) for obj in objects
    }
