"""The ``mirage`` command line: validate, render and crds, run as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mirage_operator.cli import dump_yaml, main
from tests.conftest import REPO
from tests.unit.factories import write_kubeconfig

EXAMPLES = str(REPO / "examples")


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_validate_passes_the_examples() -> None:
    result = CliRunner().invoke(main, ["validate", EXAMPLES])
    assert result.exit_code == 0, result.output
    assert "4 resource(s) valid" in result.output


def test_validate_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    bad = _write(
        tmp_path,
        "bad.yaml",
        """
apiVersion: mirage.dev/v1alpha1
kind: MirageService
metadata: {name: api, namespace: shop}
spec:
  replicas: many
  colour: blue
  ports: [{name: http, port: 80}, {name: http, port: 81}]
""",
    )
    result = CliRunner().invoke(main, ["validate", bad])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any("spec.image: Required value" in line for line in lines)
    assert any("spec.replicas:" in line for line in lines)
    assert any("spec.colour: Unknown field" in line for line in lines)
    assert any("spec.ports[1]: Duplicate value" in line for line in lines)
    assert all(line.startswith(f"{bad}#0 MirageService/api: ") for line in lines)


def test_non_mirage_documents_are_passed_over_with_a_note(tmp_path: Path) -> None:
    path = _write(tmp_path, "mixed.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    result = CliRunner().invoke(main, ["validate", path])
    assert result.exit_code == 0
    assert "skipping ConfigMap: not a Mirage resource" in result.output


def test_render_prints_children_and_grandchildren_as_yaml() -> None:
    result = CliRunner().invoke(main, ["render", f"{EXAMPLES}/mirageservice-full.yaml"])
    assert result.exit_code == 0, result.output
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    names = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert ("Deployment", "payments") in names
    assert ("ServiceLevelObjective", "payments-availability") in names
    # The child SLO is expanded into its own PrometheusRule.
    assert any(kind == "PrometheusRule" and "availability" in name for kind, name in names)


def test_render_of_an_invalid_resource_fails(tmp_path: Path) -> None:
    bad = _write(
        tmp_path,
        "bad.yaml",
        "apiVersion: mirage.dev/v1alpha1\nkind: MirageService\nmetadata: {name: a}\nspec: {}\n",
    )
    result = CliRunner().invoke(main, ["render", bad])
    assert result.exit_code == 1
    assert "spec.image: Required value" in result.output


SERVICE_WITH_SECRET = """apiVersion: mirage.dev/v1alpha1
kind: MirageService
metadata: {name: api, namespace: shop}
spec:
  image: nginx:1.27
  secrets:
    - name: db
      vault: {engine: kv-v2, mount: secret, path: shop/db}
  monitoring:
    slos:
      - {name: up, objective: 99, sli: {preset: {type: http-availability}}}
"""
VAULT_SECRET = """apiVersion: mirage.dev/v1alpha1
kind: VaultSecret
metadata: {name: %s, namespace: shop}
spec:
  vault: {engine: kv-v2, mount: secret, path: shop/other}
"""
SLO = """apiVersion: mirage.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: api-up, namespace: shop}
spec:
  service: other
  objective: 99.9
  sli: {preset: {type: http-availability}}
"""


@pytest.mark.parametrize(
    ("second", "clash"),
    [
        (VAULT_SECRET % "api-db", "VaultSecret shop/api-db is also made by"),
        (SLO, "ServiceLevelObjective shop/api-up is also made by"),
        (SERVICE_WITH_SECRET, "Deployment shop/api is also made by"),
    ],
    ids=["user VaultSecret vs child", "user SLO vs child", "same service twice"],
)
def test_render_refuses_a_name_two_resources_make(tmp_path: Path, second: str, clash: str) -> None:
    path = _write(tmp_path, "two.yaml", SERVICE_WITH_SECRET + "---\n" + second)
    result = CliRunner().invoke(main, ["render", path])
    assert result.exit_code == 1
    assert (
        "#1 " in result.output
        and clash in result.output
        and "#0 MirageService/api" in result.output
    )


def test_render_accepts_names_that_differ(tmp_path: Path) -> None:
    path = _write(tmp_path, "two.yaml", SERVICE_WITH_SECRET + "---\n" + VAULT_SECRET % "api-db2")
    result = CliRunner().invoke(main, ["render", path])
    assert result.exit_code == 0, result.output


VAULT_PATHS = """apiVersion: mirage.dev/v1alpha1
kind: VaultSecret
metadata: {name: x, namespace: team-a}
spec:
  vault: {engine: kv-v2, mount: secret, path: %s}
---
apiVersion: mirage.dev/v1alpha1
kind: MirageService
metadata: {name: api, namespace: team-a}
spec:
  image: nginx:1.27
  secrets:
    - name: own
      vault: {engine: kv-v1, path: team-a/app}
    - name: db
      vault: {engine: database, path: %s}
"""


@pytest.mark.parametrize(
    ("kv_path", "db_role", "env", "refused"),
    [
        ("team-a/app", "team-a.readonly", {}, []),
        ("team-b/app", "team-a", {}, ["#0 VaultSecret/x: spec.vault.path: Forbidden"]),
        ("team-a/app", "team-b", {}, ["#1 MirageService/api: spec.secrets[1].vault.path"]),
        ("team-a", "team-ab", {}, ["spec.vault.path", "spec.secrets[1].vault.path"]),
        ("shared/app", "team-a", {"MIRAGE_VAULT_ALLOWED_PATHS": "shared/*"}, ["spec.secrets[0]"]),
    ],
    ids=["own", "foreign kv path", "foreign database role", "prefixes", "operator config"],
)
def test_validate_refuses_vault_paths_the_namespace_may_not_read(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kv_path: str,
    db_role: str,
    env: dict[str, str],
    refused: list[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = _write(tmp_path, "paths.yaml", VAULT_PATHS % (kv_path, db_role))
    result = CliRunner().invoke(main, ["validate", path])
    assert result.exit_code == (1 if refused else 0), result.output
    problems = [line for line in result.output.splitlines() if "Forbidden" in line]
    assert len(problems) == len(refused), result.output
    for expected in refused:
        assert any(expected in line for line in problems), result.output


MESH_CONFIG_DEPENDENT = """apiVersion: mirage.dev/v1alpha1
kind: MirageService
metadata: {name: api, namespace: shop}
spec:
  image: nginx:1.27
  %s
"""


@pytest.mark.parametrize(
    ("fields", "mesh_default", "refused"),
    [
        (
            "mesh: {resilience: {connectionPool: {maxConnections: 9}}}",
            "false",
            "spec.mesh.resilience",
        ),
        ("mesh: {resilience: {connectionPool: {maxConnections: 9}}}", "true", None),
        (
            "networkPolicy: {allowFrom: [{podLabels: {app: legacy}}]}",
            "true",
            "spec.networkPolicy.allowFrom[0].podLabels",
        ),
        ("networkPolicy: {allowFrom: [{podLabels: {app: legacy}}]}", "false", None),
    ],
    ids=["resilience, mesh off", "resilience, mesh on", "pod labels, mesh on", "pod labels, off"],
)
def test_validate_refuses_what_render_refuses_under_the_operators_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fields: str,
    mesh_default: str,
    refused: str | None,
) -> None:
    """The CRD cannot know MIRAGE_MESH_DEFAULT: validate asks the operator's config, as render
    does, and both say the same."""
    monkeypatch.setenv("MIRAGE_MESH_DEFAULT", mesh_default)
    path = _write(tmp_path, "svc.yaml", MESH_CONFIG_DEPENDENT % fields)
    validated = CliRunner().invoke(main, ["validate", path])
    rendered = CliRunner().invoke(main, ["render", path])
    assert validated.exit_code == rendered.exit_code == (1 if refused else 0), (
        validated.output,
        rendered.output,
    )
    if refused:
        assert f"#0 MirageService/api: {refused}: Forbidden" in validated.output
        assert f"{refused}: Forbidden" in rendered.output


def test_render_writes_no_yaml_aliases(tmp_path: Path) -> None:
    # The NetworkPolicy's rules share one list of ports; a dumper that keeps identities would
    # write it once as &id001 and then *id001.
    service = MESH_CONFIG_DEPENDENT % (
        "networkPolicy: {allowFrom: [{service: a}, {service: b}, {namespace: c}]}"
    )
    result = CliRunner().invoke(main, ["render", _write(tmp_path, "svc.yaml", service)])
    assert result.exit_code == 0, result.output
    events = list(yaml.parse(result.output))
    assert not [e for e in events if isinstance(e, yaml.AliasEvent) or getattr(e, "anchor", None)]
    shared = [1, 2]
    assert "&" not in dump_yaml([{"a": shared, "b": shared}])


def test_crds_prints_the_three_definitions() -> None:
    result = CliRunner().invoke(main, ["crds"])
    assert result.exit_code == 0
    kinds = sorted(d["spec"]["names"]["kind"] for d in yaml.safe_load_all(result.stdout) if d)
    assert kinds == ["MirageService", "ServiceLevelObjective", "VaultSecret"]


def test_console_script_is_installed() -> None:
    mirage = Path(sys.executable).parent / "mirage"
    result = subprocess.run(
        [str(mirage), "validate", EXAMPLES], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# --- Hostile and malformed input: one line per fault, naming file and document; exit 1 ---

MIRAGE = "apiVersion: mirage.dev/v1alpha1\nkind: MirageService\nmetadata: {name: api}\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
VALID = MIRAGE + "spec: {image: nginx:1}\n"


def laughs(depth: int, width: int) -> str:
    """ "Billion laughs": ``depth`` levels of anchors, each a list of ``width`` aliases to the
    one before, under a Mirage resource's labels."""
    lines = [MIRAGE.replace("{name: api}", "{name: api, labels: {a: x}}"), "spec:"]
    lines.append(f"  l0: &l0 [{', '.join(['lol'] * width)}]")
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)]
    return "\n".join(lines) + "\n"


def nested_block(levels: int) -> str:
    return CONFIGMAP + "data:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, levels))


# (file contents, the document named (None: the file itself), a phrase of the reason)
HOSTILE: dict[str, tuple[bytes, int | None, str]] = {
    "not-utf8": (CONFIGMAP.encode() + b"data: {a: caf\xe9}\n", None, "not UTF-8"),
    "utf16-bom": ((CONFIGMAP).encode("utf-16"), None, "UTF-16"),
    "utf16-be-bom": (b"\xfe\xff" + CONFIGMAP.encode("utf-16-be"), None, "UTF-16"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), None, "not UTF-8"),
    "nul-byte": (CONFIGMAP.encode() + b"data: {a: \x00}\n", 0, "character"),
    "deep-flow": (b"[" * 100_000 + b"]" * 100_000, 0, "nested deeper than"),
    "deep-block": (nested_block(300).encode(), 0, "nested deeper than"),
    "laughs-9x10": (laughs(9, 10).encode(), 0, "once aliases are expanded"),
    "laughs-5x20": (laughs(5, 20).encode(), 0, "once aliases are expanded"),
    "laughs-3x100": (laughs(3, 100).encode(), 0, "once aliases are expanded"),
    "laughs-2nd-doc": (("---\n" + VALID + "---\n" + laughs(8, 9)).encode(), 1, "aliases"),
    "recursive-alias": ((CONFIGMAP + "data: &d {a: *d}\n").encode(), 0, "contains it"),
    "undefined-alias": ((CONFIGMAP + "data: {a: *nope}\n").encode(), 0, "undefined alias"),
    "huge-scalar": (CONFIGMAP.encode() + b"data: {a: " + b"x" * (5 << 20) + b"}\n", None, "larger"),
    "many-documents": (b"---\n" * 10_001, 10_000, "more than 10000 documents"),
    "duplicate-key": ((MIRAGE + "spec: {image: a, image: b}\n").encode(), 0, "duplicate key"),
    "duplicate-key-doc-2": (
        (VALID + "---\n" + CONFIGMAP + "data: {x: 1}\ndata: {y: 2}\n").encode(),
        1,
        "duplicate key 'data'",
    ),
    "duplicate-after-json": ((CONFIGMAP + 'data: {1: a, "1": b}\n').encode(), 0, "duplicate"),
    "python-tag": (b"!!python/object/apply:os.system ['true']\n", 0, "python/object"),
    "python-name": ((CONFIGMAP + "data: !!python/name:os.system\n").encode(), 0, "python/name"),
    "binary-tag": ((CONFIGMAP + "data: {a: !!binary aGk=}\n").encode(), 0, "no JSON form"),
    "set-tag": ((CONFIGMAP + "data: !!set {a, b}\n").encode(), 0, "no JSON form"),
    "complex-key": ((CONFIGMAP + "data: {[a, b]: c}\n").encode(), 0, "must be a string"),
    "syntax-error": ((MIRAGE + "spec: {image: [a\n").encode(), 0, "line 5"),
    "tab-indent": ((MIRAGE + "spec:\n\timage: a\n").encode(), 0, "line"),
    "list-document": (b"- apiVersion: v1\n  kind: ConfigMap\n", 0, "document is a list"),
    "scalar-document": (b"--- hello\n", 0, "the scalar 'hello'"),
    "number-document": (VALID.encode() + b"--- 42\n", 1, "the scalar '42'"),
    "no-kind": (b"metadata: {name: x}\n", 0, "no apiVersion and no kind"),
    "kind-not-a-string": (b"apiVersion: v1\nkind: [ConfigMap]\n", 0, "no kind"),
    "list-item-scalar": (b"apiVersion: v1\nkind: List\nitems: [5]\n", 0, "items[0]: not a"),
    "list-item-null": (b"apiVersion: v1\nkind: List\nitems: [~]\n", 0, "the item is the scalar"),
}


def _one_line_error(result: Any, path: str, document: int | None, phrase: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    where = path if document is None else f"{path}#{document}"
    assert lines[0].startswith(f"{where}: "), lines[0]
    assert phrase in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["validate", "render"])
@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_input_is_one_line_naming_file_and_document(
    tmp_path: Path, case: str, command: str
) -> None:
    content, document, phrase = HOSTILE[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(content)
    result = CliRunner().invoke(main, [command, str(path)])
    _one_line_error(result, str(path), document, phrase)
    if command == "render":
        assert result.stdout == ""  # nothing half-rendered for a GitOps pipeline to apply


def test_every_file_of_a_directory_is_reported_and_the_rest_still_checked(tmp_path: Path) -> None:
    for case, (content, _, _) in HOSTILE.items():
        (tmp_path / f"{case}.yaml").write_bytes(content)
    (tmp_path / "good.yaml").write_text(MIRAGE + "spec: {image: nginx:1}\n")
    # A file the operating system refuses to read (EIO here, whoever runs the test).
    (tmp_path / "unreadable.yaml").symlink_to("/proc/self/mem")
    (tmp_path / "subdir.yaml").mkdir()  # a directory named like a file is descended into
    result = CliRunner().invoke(main, ["validate", str(tmp_path), str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if ": skipping " not in line]
    assert len(lines) == len(HOSTILE) + 2, result.stderr
    assert f"{tmp_path / 'unreadable.yaml'}: cannot read: Input/output error" in lines
    assert f"{tmp_path / 'missing.yaml'}: no such file or directory" in lines
    assert "Traceback" not in result.output


def test_hostile_corpus_is_bounded_in_a_real_process(tmp_path: Path) -> None:
    """The whole corpus in one `mirage validate` run: the guard rejects each input after work
    bounded by its limits, not by the input's expansion (9 levels of laughs are 10^9 nodes)."""
    paths = []
    for case, (content, _, _) in HOSTILE.items():
        paths.append(tmp_path / f"{case}.yaml")
        paths[-1].write_bytes(content)
    mirage = Path(sys.executable).parent / "mirage"
    result = subprocess.run(
        [str(mirage), "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if ": skipping " not in line]
    assert len(errors) == len(HOSTILE), result.stderr


# Inputs that are not errors: exit 0, with a note where something was passed over.
BENIGN: dict[str, tuple[str, str]] = {
    "empty-file": ("", "0 resource(s) valid"),
    "comments-only": ("# nothing here\n", "0 resource(s) valid"),
    "null-documents": ("---\n---\n~\n---\nnull\n", "0 resource(s) valid"),
    "other-kind": (CONFIGMAP, "skipping ConfigMap: not a Mirage resource"),
    "other-group": (
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r}\n",
        "skipping PrometheusRule",
    ),
    "bom": ("\ufeff" + VALID, "1 resource(s) valid"),
    "merge-key": (
        MIRAGE.replace("{name: api}", "{name: api, labels: &l {team: a}}")
        + "spec:\n  image: nginx:1\n  config:\n    data:\n      <<: *l\n      tier: web\n",
        "1 resource(s) valid",
    ),
    "small-aliases": (
        MIRAGE + "spec:\n  image: &i nginx:1\n  args: [*i, *i]\n",
        "1 resource(s) valid",
    ),
    "timestamp-stays-a-string": (
        MIRAGE + "spec:\n  image: nginx:1\n  config: {data: {since: 2024-01-01}}\n",
        "1 resource(s) valid",
    ),
}


@pytest.mark.parametrize("case", BENIGN)
def test_benign_inputs_pass_with_a_note(tmp_path: Path, case: str) -> None:
    text, note = BENIGN[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert note in result.stderr


# --- Command-line mistakes: one line, no traceback ---


@pytest.mark.parametrize(
    ("args", "env", "code", "phrase"),
    [
        (["validate"], {}, 2, "Missing argument"),
        (["nosuchcommand"], {}, 2, "No such command"),
        (["validate", "/nonexistent/x.yaml"], {}, 1, "/nonexistent/x.yaml: no such file"),
        (["render", "--bogus", "x"], {}, 2, "No such option"),
        (["render", EXAMPLES], {"MIRAGE_RESYNC_INTERVAL": "soon"}, 1, "MIRAGE_RESYNC_INTERVAL"),
        (["crds", "extra"], {}, 2, "unexpected extra argument"),
        (["run", "--liveness", "nonsense"], {}, 2, "expected http://HOST:PORT/PATH"),
        (["run", "--liveness", "http://0.0.0.0:99999/x"], {}, 2, "--liveness"),
        (["run", "--liveness", ""], {"KUBECONFIG": "/nonexistent/kc"}, 1, "kubeconfig"),
        (["run"], {"MIRAGE_METRICS_PORT": "http"}, 1, "MIRAGE_METRICS_PORT"),
        (["sandbox", "/nonexistent"], {}, 1, "/nonexistent: no such file"),
        (["sandbox", "--timeout", "soon"], {}, 2, "--timeout"),
    ],
)
def test_command_line_mistakes_are_one_line(
    args: list[str], env: dict[str, str], code: int, phrase: str
) -> None:
    result = CliRunner().invoke(main, args, env={"KUBERNETES_SERVICE_HOST": None, **env})
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert phrase in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("endpoint", ["metrics", "liveness"])
def test_run_on_a_busy_port_stops_in_one_line(tmp_path: Path, endpoint: str) -> None:
    """In a pod 0.0.0.0 is right; a port already taken stops the operator with the cause."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig")
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        metrics, liveness = ("0", f"http://0.0.0.0:{port}/healthz")
        if endpoint == "metrics":
            metrics, liveness = (str(port), "")
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "MIRAGE_METRICS_PORT": metrics}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        result = subprocess.run(
            [str(Path(sys.executable).parent / "mirage"), "run", "--liveness", liveness],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]  # before it, the operator's own JSON log lines
    assert last.startswith("Error: the operator stopped: "), result.stderr
    assert f"{port}" in last and "already in use" in last.lower(), last
    assert "Traceback" not in last


@pytest.mark.parametrize("args", [["crds"], ["render", EXAMPLES], ["validate", EXAMPLES]])
def test_output_that_cannot_be_written_is_one_line(args: list[str]) -> None:
    with Path("/dev/full").open("w") as full:  # every write fails: no space left on device
        result = subprocess.run(
            [str(Path(sys.executable).parent / "mirage"), *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    errors = [line for line in result.stderr.splitlines() if "resource(s) valid" not in line]
    if args[0] == "validate":  # prints nothing on stdout when all is valid
        assert (result.returncode, errors) == (0, [])
        return
    assert result.returncode == 1
    assert errors == ["Error: No space left on device"]


@pytest.mark.parametrize("command", ["validate", "render"])
@pytest.mark.parametrize(
    "text",
    [
        "metadata: [1]\nspec: [1]\n",
        "metadata: 5\nspec: 5\n",
        "metadata: {name: [a], namespace: 7}\nspec: {image: 5}\n",
        "metadata: {name: x, labels: [a]}\nspec: {image: x, secrets: [5], ports: 5}\n",
        "metadata: {name: x}\nspec: {image: x, monitoring: {slos: [1]}, env: [{name: 1}]}\n",
    ],
)
def test_mistyped_mirage_documents_are_problems_not_crashes(
    tmp_path: Path, command: str, text: str
) -> None:
    path = _write(
        tmp_path, "m.yaml", "apiVersion: mirage.dev/v1alpha1\nkind: MirageService\n" + text
    )
    result = CliRunner().invoke(main, [command, path])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert lines and all(line.startswith(f"{path}#0 MirageService/") for line in lines), lines


@pytest.mark.parametrize("command", ["validate", "render"])
@pytest.mark.parametrize(
    "spec",
    [
        '{image: x, "evil\\nline": 1}',
        '{image: x, "tab\\there": 1, "cr\\rhere": 2}',
        '{image: "x", env: [{name: "A\\nB", value: v}]}',
        '{image: "x", configData: {"k\\u2028ey": v}}',
    ],
)
def test_a_problem_is_one_line_whatever_the_field_holds(
    tmp_path: Path, command: str, spec: str
) -> None:
    path = _write(
        tmp_path,
        "m.yaml",
        "apiVersion: mirage.dev/v1alpha1\nkind: MirageService\n"
        f"metadata: {{name: x}}\nspec: {spec}\n",
    )
    result = CliRunner().invoke(main, [command, path])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines and all(line.startswith(f"{path}#0 MirageService/x: ") for line in lines), lines


def test_a_list_document_stands_for_its_items(tmp_path: Path) -> None:
    """As ``kubectl get -o yaml`` prints them, and as ``kubectl apply`` reads them."""
    path = _write(
        tmp_path,
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n"
        "- " + VALID.replace("\n", "\n  ").rstrip() + "\n"
        "- apiVersion: mirage.dev/v1alpha1\n  kind: MirageService\n  metadata: {name: b}\n"
        "  spec: {image: x, replicas: many}\n",
    )
    result = CliRunner().invoke(main, ["validate", path])
    assert result.exit_code == 1
    assert f"{path}#0 items[0]: skipping ConfigMap: not a Mirage resource" in result.stderr
    problems = result.stdout.splitlines()
    assert problems and all(p.startswith(f"{path}#0 items[2] MirageService/b: ") for p in problems)
    (tmp_path / "ok.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n- " + VALID.replace("\n", "\n  ").rstrip() + "\n"
    )
    rendered = CliRunner().invoke(main, ["render", str(tmp_path / "ok.yaml")])
    assert rendered.exit_code == 0, rendered.output
    assert ("Deployment", "api") in {
        (d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(rendered.stdout) if d
    }
