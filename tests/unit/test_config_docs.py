"""Each setting's description and default exist once, in config.py (docs/adr/0131).

``hack/gen_config_docs.py`` writes the README table, the chart's values.yaml entries, its
values.schema.json and its README from config.py and values.yaml; these tests fail when a
written copy is stale, and show that the copies follow their source.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from hack import gen_config_docs as gen
from mirage_operator.config import Config

FIX = "run `.venv/bin/python hack/gen_config_docs.py`"


def test_regenerating_changes_nothing() -> None:
    stale = gen.stale(gen.generate(gen.Sources.read()))
    assert stale == [], f"{', '.join(str(p.relative_to(gen.REPO)) for p in stale)}: {FIX}"


def test_a_changed_description_reaches_every_copy() -> None:
    sources = gen.Sources.read()
    old = '"""Seconds before one Vault request is abandoned."""'
    assert old in sources.config_py
    changed = dataclasses.replace(
        sources, config_py=sources.config_py.replace(old, '"""Seconds, then the request ends."""')
    )
    written = gen.generate(changed)
    assert set(gen.stale(written)) == {gen.VALUES, gen.SCHEMA, gen.CHART_README, gen.README}
    assert "# Seconds, then the request ends (MIRAGE_VAULT_TIMEOUT)." in written[gen.VALUES]
    schema = json.loads(written[gen.SCHEMA])
    timeout = schema["properties"]["vault"]["properties"]["timeout"]
    assert timeout["description"] == "Seconds, then the request ends (MIRAGE_VAULT_TIMEOUT)."
    assert (
        "| `MIRAGE_VAULT_TIMEOUT` | `vault.timeout` | `10` | Seconds, then" in written[gen.README]
    )


def test_a_changed_default_reaches_values_and_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    timeout = next(f for f in dataclasses.fields(Config) if f.name == "vault_timeout")
    monkeypatch.setattr(timeout, "default", 25.0)
    written = gen.generate(gen.Sources.read())
    values = yaml.safe_load(written[gen.VALUES])
    assert values["vault"]["timeout"] == 25
    schema = json.loads(written[gen.SCHEMA])
    assert schema["properties"]["vault"]["properties"]["timeout"]["default"] == 25
    assert "| `MIRAGE_VAULT_TIMEOUT` | `vault.timeout` | `25` |" in written[gen.README]


def test_the_constraints_state_no_description_or_default() -> None:
    sources = gen.Sources.read()
    constraints = json.loads(sources.constraints)
    constraints["properties"]["replicaCount"]["description"] = "a second description"
    changed = dataclasses.replace(sources, constraints=json.dumps(constraints))
    with pytest.raises(ValueError, match="replicaCount states"):
        gen.generate(changed)


def test_a_setting_type_and_choices_come_from_config() -> None:
    schema = json.loads(gen.generate(gen.Sources.read())[gen.SCHEMA])
    operator = schema["properties"]["operator"]["properties"]
    assert operator["logLevel"]["enum"] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    assert operator["logFormat"]["enum"] == ["json", "text"]
    assert operator["resyncInterval"]["type"] == "number"
    assert schema["properties"]["vault"]["properties"]["defaultRefreshInterval"]["type"] == (
        "string"
    )


def test_every_setting_names_how_the_chart_sets_it() -> None:
    values = yaml.safe_load(gen.VALUES.read_text(encoding="utf-8"))
    for setting in gen.settings(gen.CONFIG_PY.read_text(encoding="utf-8")):
        assert bool(setting.chart_value) != bool(setting.chart_set_by), setting.env
        if setting.chart_value:
            node = values
            for part in setting.chart_value.split("."):
                node = node[part]
            assert node == gen.chart_default(setting), setting.env


def test_the_readme_table_sits_between_its_markers() -> None:
    text = Path(gen.README).read_text(encoding="utf-8")
    table = text[text.index(gen.BEGIN) : text.index(gen.END)]
    assert all(f"| `{env}` |" in table for env in Config.variables())
