"""The Secret builder: key selection, sandboxed templates, Secret types, HMAC and preview."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from mirage_operator.api.vaultsecret import VaultSecretSpec
from mirage_operator.errors import SecretDataError
from mirage_operator.render.secret import (
    PREVIEW_ANNOTATION,
    build_secret,
    render_preview,
    secret_mac,
    secret_values,
)
from mirage_operator.templating import MAX_SECRET_BYTES, template_error

PASSWORD = "pa55-w0rd-Zq9"
DATA = {"user": "u-7f3k", "password": PASSWORD, "host": "db.team-a", "port": "5432"}


def spec(**fields: Any) -> VaultSecretSpec:
    return VaultSecretSpec.from_spec({"vault": {"path": "team-a/app"}, **fields})


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def build(model: VaultSecretSpec, data: dict[str, str | bytes] | None = None) -> dict[str, Any]:
    return build_secret(
        name="vs", namespace="team-a", spec=model, data=DATA if data is None else data, labels={}
    )


# --- selection and metadata ---------------------------------------------------------------


def test_every_key_by_default() -> None:
    assert decoded(build(spec())) == DATA


def test_selected_and_renamed_keys_only() -> None:
    model = spec(keys=[{"from": "user", "to": "username"}, {"from": "password"}])
    assert decoded(build(model)) == {"username": "u-7f3k", "password": PASSWORD}


def test_templates_see_every_key_and_replace_the_raw_data() -> None:
    model = spec(
        templates={"url": "postgres://{{ data.user }}:{{ data.password }}@{{ data.host }}"}
    )
    assert decoded(build(model)) == {"url": f"postgres://u-7f3k:{PASSWORD}@db.team-a"}


def test_templates_beside_listed_keys() -> None:
    model = spec(keys=[{"from": "port"}], templates={"host": "{{ data.host | upper }}"})
    assert decoded(build(model)) == {"port": "5432", "host": "DB.TEAM-A"}


def test_metadata_labels_annotations_owner_and_type() -> None:
    model = spec(
        destination={
            "name": "creds",
            "type": "kubernetes.io/basic-auth",
            "labels": {"team": "a", "app.kubernetes.io/managed-by": "someone"},
            "annotations": {"note": "x"},
        },
        keys=[{"from": "user", "to": "username"}],
    )
    owner = {"apiVersion": "mirage.dev/v1alpha1", "kind": "VaultSecret", "name": "vs", "uid": "1"}
    secret = build_secret(
        name="vs",
        namespace="team-a",
        spec=model,
        data=DATA,
        labels={"app.kubernetes.io/managed-by": "mirage"},
        owner=owner,
    )
    meta = secret["metadata"]
    assert (meta["name"], meta["namespace"]) == ("creds", "team-a")
    assert meta["labels"] == {"team": "a", "app.kubernetes.io/managed-by": "mirage"}
    assert meta["annotations"] == {"note": "x"}
    assert meta["ownerReferences"] == [owner]
    assert secret["type"] == "kubernetes.io/basic-auth"


def test_secret_name_defaults_to_the_vaultsecret() -> None:
    assert build(spec())["metadata"]["name"] == "vs"


def test_binary_values_are_kept_byte_for_byte() -> None:
    blob = bytes(range(256))
    secret = build(spec(), {"keystore.p12": blob})
    assert base64.b64decode(secret["data"]["keystore.p12"]) == blob


def test_same_input_same_output() -> None:
    model = spec(templates={"a": "{{ data.user }}"}, keys=[{"from": "port"}])
    assert build(model) == build(model)
    assert list(build(model)["data"]) == sorted(build(model)["data"])


# --- data that does not fit ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"keys": [{"from": "missing"}]}, "'missing' not found"),
        ({"templates": {"x": "{{ data.missing }}"}}, "'missing' is undefined"),
        ({"templates": {"x": "{{ data.password | int + 'a' }}"}}, "TypeError"),
        ({"templates": {"x": "{{ data.password | b64dec }}"}}, "template 'x' failed"),
        ({"templates": {"x": "{{ data.password | fromjson }}"}}, "template 'x' failed"),
        (
            {
                "keys": [{"from": "user", "to": "tls.crt"}],
                "destination": {"type": "kubernetes.io/tls"},
            },
            "missing tls.key",
        ),
        (
            {"destination": {"type": "kubernetes.io/tls"}},
            "needs the keys tls.crt, tls.key",
        ),
        (
            {
                "templates": {".dockerconfigjson": "{{ data.password }}"},
                "destination": {"type": "kubernetes.io/dockerconfigjson"},
            },
            "not valid JSON",
        ),
    ],
)
def test_data_errors_name_keys_never_values(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(SecretDataError) as caught:
        build(spec(**fields))
    assert words in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert caught.value.__cause__ is None  # no chained exception carrying a value either
    assert caught.value.__context__ is None


def test_invalid_vault_key_when_copying_everything() -> None:
    with pytest.raises(SecretDataError, match="not a valid Secret key"):
        build(spec(), {"bad key": "v"})


def test_too_large_secret() -> None:
    with pytest.raises(SecretDataError, match="exceed"):
        build(spec(), {"a": "x" * MAX_SECRET_BYTES})


# --- templates: helpers and the sandbox ---------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ data.user | b64enc }}", base64.b64encode(b"u-7f3k").decode()),
        ("{{ (data.user | b64enc) | b64dec }}", "u-7f3k"),
        ("{{ {'u': data.user, 'h': '<&>'} | tojson }}", json.dumps({"h": "<&>", "u": "u-7f3k"})),
        ("{{ ('{\"a\": [1, 2]}' | fromjson).a | sum }}", "3"),
        ("{% for k in data | sort %}{{ k }},{% endfor %}", "host,password,port,user,"),
        ("{{ data.port | int + 1 }}", "5433"),
        ("{{ [data.user, data.host] | join('@') }}", "u-7f3k@db.team-a"),
        ("{{ data.user ~ '-' ~ data.port }}", "u-7f3k-5432"),
        ("line\n", "line\n"),
    ],
)
def test_template_helpers(template: str, expected: str) -> None:
    assert decoded(build(spec(templates={"x": template}))) == {"x": expected}


def test_dockerconfigjson_helper() -> None:
    model = spec(
        templates={
            ".dockerconfigjson": "{{ dockerconfigjson('r.invalid', data.user, data.password) }}"
        },
        destination={"type": "kubernetes.io/dockerconfigjson"},
    )
    secret = build(model)
    config = json.loads(decoded(secret)[".dockerconfigjson"])
    entry = config["auths"]["r.invalid"]
    assert (entry["username"], entry["password"]) == ("u-7f3k", PASSWORD)
    assert base64.b64decode(entry["auth"]).decode() == f"u-7f3k:{PASSWORD}"


@pytest.mark.parametrize(
    "template",
    [
        "{{ data.__class__ }}",
        "{{ data.user.__class__.__mro__ }}",
        "{{ ''.__class__.__base__.__subclasses__() }}",
        "{{ data.items.__globals__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ data.update({'x': 1}) }}",  # the environment is immutable
        "{{ config }}",
        "{{ 'x' * 100000000 }}",
        "{{ data.password * 10000000 }}",
        "{{ 2 ** 100000 }}",
        "{{ '%0100000d' % 1 }}",
        "{{ data.password.center(100000000) }}",
        "{{ data.password.replace('', data.password) }}",
        "{{ '{:>99999999}'.format(1) }}",
        "{% for i in range(10000000) %}{% endfor %}",
        "{{ range(900) | join(data.password * 1000) }}",
        "{% set a = data.password * 2000 %}{% set b = a ~ a ~ a ~ a %}{% set c = b ~ b ~ b ~ b %}"
        "{{ c ~ c ~ c ~ c }}",
        "{% for i in range(999) %}{{ data.password * 1000 }}{% endfor %}",
    ],
)
def test_sandbox_refuses_escapes_and_blowups(template: str) -> None:
    # Either refused at compile time or failing at render; never a value or object leak.
    error = template_error(template)
    if error is None:
        with pytest.raises(SecretDataError) as caught:
            build(spec(templates={"x": template}))
        assert PASSWORD not in str(caught.value)
        assert "template 'x' failed" in str(caught.value)


def test_sandbox_errors_never_carry_values() -> None:
    with pytest.raises(SecretDataError) as caught:
        build(spec(templates={"x": "{{ data.password.nope }}"}))
    assert PASSWORD not in str(caught.value)
    assert "'nope' is undefined" in str(caught.value)


@pytest.mark.parametrize("template", ["{{ x", "{% if %}", "{{ x | nosuch }}", "{% endfor %}"])
def test_template_error_reports_syntax(template: str) -> None:
    assert template_error(template) is not None


def test_template_error_accepts_valid_templates() -> None:
    assert template_error("{{ data.a | b64enc }}{% if data.b %}x{% endif %}") is None


# --- the HMAC -----------------------------------------------------------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


KEY = b"k" * 32


def test_mac_is_stable_for_equal_data() -> None:
    one = {"a": b64("1"), "b": b64("2")}
    reordered = {"b": b64("2"), "a": b64("1")}
    assert secret_mac(KEY, one) == secret_mac(KEY, reordered)
    assert len(secret_mac(KEY, one)) == 64


@pytest.mark.parametrize(
    "other",
    [
        {"a": b64("1"), "b": b64("3")},  # a value changed
        {"a": b64("1"), "c": b64("2")},  # a key renamed
        {"a": b64("1")},  # a key removed
        {"a": b64("1"), "b": b64("2"), "c": b64("")},  # an empty key added
        {"a": b64("1b"), "": b64("2")},  # boundaries shifted between key and value
    ],
)
def test_mac_changes_with_the_data(other: dict[str, str]) -> None:
    assert secret_mac(KEY, {"a": b64("1"), "b": b64("2")}) != secret_mac(KEY, other)


def test_mac_depends_on_the_key_and_hides_the_data() -> None:
    data = {"password": b64(PASSWORD)}
    assert secret_mac(KEY, data) != secret_mac(b"other", data)
    assert PASSWORD not in secret_mac(KEY, data)


def test_mac_of_built_secret_follows_vault_data() -> None:
    model = spec(keys=[{"from": "password"}])
    before = secret_mac(KEY, build(model)["data"])
    assert secret_mac(KEY, build(model)["data"]) == before
    changed = build(model, {**DATA, "password": "rotated"})
    assert secret_mac(KEY, changed["data"]) != before
    # A change to a key the Secret does not copy leaves the MAC alone: no needless rollout.
    unrelated = build(model, {**DATA, "host": "elsewhere"})
    assert secret_mac(KEY, unrelated["data"]) == before


# --- the preview --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"keys": [{"from": "password", "to": "pw"}, {"from": "user"}]},
        {"templates": {"url": "{{ data.user }}:{{ data.password }}"}, "keys": [{"from": "host"}]},
    ],
)
def test_preview_never_holds_values(fields: dict[str, Any]) -> None:
    model = spec(**fields)
    preview = render_preview(name="vs", namespace="team-a", spec=model, labels={"l": "v"})
    text = json.dumps(preview)
    for value in DATA.values():
        assert value not in text
    assert "data" not in preview
    real = build(model)
    assert preview["metadata"]["name"] == real["metadata"]["name"]
    assert preview["type"] == real["type"]
    known = model.output_keys()
    assert set(preview["stringData"]) == (set() if known is None else known)
    assert "team-a/app" in preview["metadata"]["annotations"][PREVIEW_ANNOTATION]


def test_preview_placeholders_name_their_source() -> None:
    model = spec(keys=[{"from": "password", "to": "pw"}], templates={"t": "x"})
    preview = render_preview(name="vs", namespace="team-a", spec=model, labels={})
    assert "#password" in preview["stringData"]["pw"]
    assert preview["stringData"]["t"] == "<template>"


def test_secret_values_match_built_secret() -> None:
    model = spec(keys=[{"from": "user"}])
    assert secret_values(model, DATA) == {"user": b"u-7f3k"}
