"""Template failures never carry a Vault value (docs/adr/0066): a corpus of failing templates,
one per exception class a template, a filter or a decoder can raise, each fed a distinctive
marker as the secret; the marker must appear in no message, repr or exception chain."""

from __future__ import annotations

import base64

import pytest

from mirage_operator.errors import InvalidTemplate
from mirage_operator.templating import render_template, template_error

MARKER = "MARKER-q8Zt-secret"
DATA: dict[str, str | bytes] = {
    "password": MARKER,
    "user": "u",
    "num": "12",
    "bin": b"\xff\xfe" + MARKER.encode(),
}

FAILING = [
    # (template, exception class named in the message)
    ("{{ data[data.password] }}", "UndefinedError"),
    ("{{ data.user[data.password] }}", "UndefinedError"),
    ("{{ data|attr(data.password) }}", "UndefinedError"),
    ("{{ (data.password|list)|sort(attribute=data.password) }}", "UndefinedError"),
    ("{{ (data.password, data.password)|max(attribute=data.password) }}", "UndefinedError"),
    ("{{ data.password|groupby(data.password) }}", "UndefinedError"),
    ("{{ data.password + 1 }}", "TypeError"),
    ("{{ data.password|round(data.password) }}", "TypeError"),
    ("{{ data.password|truncate(data.password) }}", "TypeError"),
    ("{% include data.password %}", "TypeError"),
    ("{% extends data.password %}", "TypeError"),
    ("{{ 1 / (data.password|length - data.password|length) }}", "ZeroDivisionError"),
    ("{{ [1, 2].index(data.password) }}", "ValueError"),
    ("{{ data.password[::0] }}", "ValueError"),
    ("{{ ('%(' ~ data.password ~ ')s') % {} }}", "KeyError"),  # the value as a key
    ("{{ data.password.encode(data.password) }}", "LookupError"),  # the value as a codec
    ("{{ data.password|b64dec }}", "invalid base64"),
    ("{{ data.password|fromjson }}", "JSONDecodeError"),
    ("{{ (data.password ~ '{')|fromjson }}", "JSONDecodeError"),
    ("{{ data.bin|b64enc|b64dec }}", "UnicodeDecodeError"),  # the error object holds bytes
    ("{{ data.num|float ** 100000 }}", "OverflowError"),
    ("{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(data.password) }}", "RecursionError"),
    ("{{ data.password|select(data.password)|list }}", "TemplateRuntimeError"),  # test name
    ("{{ data.password|map(data.password)|list }}", "TemplateRuntimeError"),  # filter name
    ("{{ data.password|dictsort }}", "AttributeError"),
    ("{{ range(data.password|length * 1000000) }}", "SecurityError"),
]


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def assert_value_free(error: BaseException) -> None:
    """No form of the marker in the error's text, repr, args or chain."""
    forms = (MARKER, base64.b64encode(MARKER.encode()).decode(), MARKER[:10])
    for link in _chain(error):
        text = " ".join([str(link), repr(link), repr(link.args)])
        for form in forms:
            assert form not in text
    assert error.__cause__ is None and error.__context__ is None


@pytest.mark.parametrize(("template", "kind"), FAILING)
def test_failing_templates_name_the_key_line_and_class_never_the_value(
    template: str, kind: str
) -> None:
    assert template_error(template) is None  # each compiles: it fails only on the data
    with pytest.raises(InvalidTemplate) as caught:
        render_template("conn", template, DATA)
    assert_value_free(caught.value)
    message = str(caught.value)
    assert message.startswith("template 'conn' failed (line 1): ")
    assert kind in message
    assert caught.value.reason == "InvalidTemplate"


def test_the_failing_line_is_named() -> None:
    with pytest.raises(InvalidTemplate, match=r"\(line 3\): TypeError"):
        render_template("conn", "a\nb\n{{ data.password + 1 }}", DATA)


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("{{ data.pasword }}", "'pasword' is undefined"),  # a typo of a key is named
        ("{{ data.password.nope }}", "'nope' is undefined"),
        ("{{ data.password ~ nosuchname }}", "'nosuchname' is undefined"),
    ],
)
def test_undefined_names_written_in_the_template_are_named(template: str, named: str) -> None:
    with pytest.raises(InvalidTemplate) as caught:
        render_template("conn", template, DATA)
    assert named in str(caught.value)
    assert "Vault keys: bin, num, password, user" in str(caught.value)


def test_a_name_equal_to_a_value_is_not_named_although_the_template_spells_it() -> None:
    # The value "nope" is also written in the template: naming it would confirm the value.
    data: dict[str, str | bytes] = {"password": "nope"}
    with pytest.raises(InvalidTemplate) as caught:
        render_template("conn", "{{ 'nope' if false }}{{ data[data.password] }}", data)
    assert "nope" not in str(caught.value)
    assert "a name, attribute or key is undefined" in str(caught.value)


@pytest.mark.parametrize(
    "template",
    ["{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "{% if x %}" * 3000 + "{% endif %}" * 3000],
)
def test_templates_nested_too_deeply_are_refused_at_validation(template: str) -> None:
    error = template_error(template)
    assert error is not None and "template does not compile" in error
