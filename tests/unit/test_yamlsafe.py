"""The bounded YAML loader, with libyaml's parser and with PyYAML's own: the same documents,
the same refusals, and work bounded by the limits rather than by the input's expansion."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mirage_operator import yamlsafe
from tests.conftest import REPO
from tests.unit.test_cli import HOSTILE, laughs

LOADERS = {"pure": yamlsafe._PureLoader}
if yaml.__with_libyaml__:
    LOADERS["libyaml"] = yamlsafe._CLoader
elif os.environ.get("CI"):
    raise AssertionError("PyYAML without libyaml: the C parser's path is not tested")


@pytest.fixture(params=sorted(LOADERS))
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(yamlsafe, "_Loader", LOADERS[request.param])
    yield request.param


def _files() -> list[Path]:
    return sorted([*(REPO / "examples").glob("*.yaml"), *(REPO / "crds").glob("*.yaml")])


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_real_files_load_as_pyyaml_loads_them(loader: str, path: Path) -> None:
    expected = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    assert list(yamlsafe.read_documents(path)) == expected


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_inputs_are_refused_alike(loader: str, case: str, tmp_path: Path) -> None:
    content, document, phrase = HOSTILE[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(content)
    errors: list[yamlsafe.YAMLInputError] = []
    list(yamlsafe.read_objects([path], on_error=errors.append))
    assert len(errors) == 1
    assert (errors[0].source, errors[0].document) == (str(path), document)
    assert phrase in str(errors[0])


@pytest.mark.parametrize(("depth", "width"), [(3, 100), (4, 30), (6, 10), (9, 10), (12, 3)])
def test_alias_expansion_is_refused_after_bounded_work(
    loader: str, depth: int, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``width ** depth`` nodes once expanded; the composer visits each written node once."""
    calls = 0
    compose = yamlsafe._BoundedComposer.compose_node

    def counting(self: Any, parent: Any, index: Any) -> Any:
        nonlocal calls
        calls += 1
        return compose(self, parent, index)

    monkeypatch.setattr(yamlsafe._BoundedComposer, "compose_node", counting)
    text = laughs(depth, width)
    with pytest.raises(yamlsafe.YAMLInputError, match="once aliases are expanded"):
        list(yamlsafe.load_all(text, source="laughs"))
    assert calls <= 2 * text.count(",") + 50  # the nodes written, not width ** depth


@pytest.mark.parametrize("levels", [yamlsafe.MAX_DEPTH + 1, 1_000, 100_000])
def test_nesting_is_refused_before_any_recursion_limit(loader: str, levels: int) -> None:
    with pytest.raises(yamlsafe.YAMLInputError, match="nested deeper than"):
        list(yamlsafe.load_all("[" * levels + "]" * levels, source="deep"))


def test_nesting_up_to_the_limit_loads(loader: str) -> None:
    levels = yamlsafe.MAX_DEPTH
    (document,) = yamlsafe.load_all("[" * levels + "]" * levels, source="deep")
    for _ in range(levels - 1):
        (document,) = document
    assert document == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 2024-01-01\n", {"a": "2024-01-01"}),  # JSON has no dates: stays a string
        ("1: a\ntrue: b\n", {"1": "a", "true": "b"}),  # keys become their text, as in kubectl
        ("a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n", {"a": {"b": 1}, "c": {"b": 1, "d": 2}}),
        ("a: [1, 2.5, null, true, '0x10']\n", {"a": [1, 2.5, None, True, "0x10"]}),
    ],
)
def test_documents_are_plain_json_data(loader: str, text: str, expected: Any) -> None:
    assert list(yamlsafe.load_all(text, source="t")) == [expected]


def test_load_one_refuses_a_second_document(loader: str) -> None:
    assert yamlsafe.load_one("a: 1\n", source="body") == {"a": 1}
    with pytest.raises(yamlsafe.YAMLInputError, match="body#1: expected one YAML document"):
        yamlsafe.load_one("a: 1\n---\nb: 2\n", source="body")
