"""The chart's defaults are the operator's: ``helm template`` with values.yaml alone gives the
process the configuration ``Config()`` has, except where config.py says the chart differs
(``chart_default``) or derives the value from the release (``set_by``) (docs/adr/0131)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from mirage_operator.config import Config
from tests.chart.helm import Rendered
from tests.chart.test_render import operator_environment


def test_the_default_chart_configures_the_operator_with_its_defaults(
    render: Callable[[str], Rendered],
) -> None:
    rendered = Config.from_env(operator_environment(render("default")))
    defaults = Config()
    differ = {
        f.name: f.metadata["chart_default"]
        for f in dataclasses.fields(Config)
        if f.metadata["chart_default"] is not None
    }
    derived = {f.name for f in dataclasses.fields(Config) if f.metadata["chart_set_by"]}
    assert differ == {"vault_address": "https://vault.vault.svc:8200"}
    for f in dataclasses.fields(Config):
        if f.name in derived:
            continue
        expected = differ.get(f.name, getattr(defaults, f.name))
        assert getattr(rendered, f.name) == expected, f.metadata["env"]
