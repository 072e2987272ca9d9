"""Is a CRD schema *structural*? The apiextensions rules, as human-readable violations.

Checked (paths relative to ``openAPIV3Schema``, wording after the apiserver's):

- every node specifies a non-empty ``type`` (``object`` at the root), unless it has
  ``x-kubernetes-int-or-string`` or ``x-kubernetes-preserve-unknown-fields``; an
  int-or-string node has no ``type``; arrays have ``items``; embedded resources are objects;
- ``properties`` and ``additionalProperties`` are mutually exclusive, and
  ``additionalProperties: false``, ``uniqueItems: true`` and the keywords CRDs do not support
  (``$ref``, ``patternProperties``, ``dependencies``...) are absent;
- inside ``allOf``/``anyOf``/``oneOf``/``not`` only value validations appear (no ``type``,
  ``default``, ``nullable``, ``description``, ``x-kubernetes-*``...), apart from the
  int-or-string ``anyOf: [{type: integer}, {type: string}]`` pattern, and every property
  named there is also specified in the enclosing structural schema;
- root ``metadata`` restricts nothing but ``name`` and ``generateName`` (strings);
- list types are ``atomic``/``set``/``map``; a map list has ``x-kubernetes-list-map-keys`` of
  scalar item properties that are required or defaulted;
- ``pattern``\\ s compile, ``default``\\ s are pruned (no unknown fields) and valid against
  their own schema, and every CEL rule compiles.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from mirage_operator.schema import cel, reasons
from mirage_operator.schema.pruning import prune
from mirage_operator.schema.regex import compile_re2
from mirage_operator.schema.validation import validate

_UNSUPPORTED = (
    "$ref",
    "$schema",
    "id",
    "definitions",
    "dependencies",
    "patternProperties",
    "additionalItems",
)
_JUNCTORS = ("allOf", "anyOf", "oneOf")
# Keywords that would change the shape of the data inside a logical junctor.
_NOT_IN_JUNCTORS = (
    "type",
    "default",
    "description",
    "title",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
)
_SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean"})


def structural_problems(schema: Mapping[str, Any]) -> list[str]:
    """Every reason ``schema`` (an ``openAPIV3Schema``) is not structural; empty if it is."""
    problems: list[str] = []
    path = "openAPIV3Schema"
    if not isinstance(schema, Mapping):
        return [f"{path}: Required value: must be an object"]
    if schema.get("type") != "object":
        problems.append(
            f"{path}.type: " + reasons.invalid(schema.get("type", ""), "must be object at the root")
        )
    _check_node(schema, path, problems, root=True)
    return problems


def _add(problems: list[str], path: str, reason: str) -> None:
    problems.append(f"{path}: {reason}")


def _check_node(
    schema: Mapping[str, Any], path: str, problems: list[str], *, root: bool = False
) -> None:
    _check_keywords(schema, path, problems)
    kind = schema.get("type")
    int_or_string = schema.get("x-kubernetes-int-or-string") is True
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if preserve is False:
        _add(
            problems,
            f"{path}.x-kubernetes-preserve-unknown-fields",
            reasons.invalid(False, "must be true or undefined"),
        )
    if int_or_string:
        if kind:
            _add(
                problems,
                f"{path}.type",
                reasons.invalid(kind, "must be empty if x-kubernetes-int-or-string is true"),
            )
    elif not kind and preserve is not True and not root:
        _add(problems, f"{path}.type", reasons.required("must not be empty for specified fields"))
    if schema.get("x-kubernetes-embedded-resource") is True:
        if kind != "object":
            _add(
                problems,
                f"{path}.type",
                reasons.invalid(
                    kind or "", "must be object if x-kubernetes-embedded-resource is true"
                ),
            )
        if not schema.get("properties") and preserve is not True:
            detail = (
                "must not be empty if x-kubernetes-embedded-resource is true without "
                "x-kubernetes-preserve-unknown-fields"
            )
            _add(problems, f"{path}.properties", reasons.required(detail))
    if kind == "array" and not isinstance(schema.get("items"), Mapping):
        _add(problems, f"{path}.items", reasons.required("must be specified"))
    properties = schema.get("properties")
    additional = schema.get("additionalProperties")
    if properties and additional is not None:
        _add(
            problems,
            f"{path}.additionalProperties",
            reasons.forbidden("additionalProperties and properties are mutual exclusive"),
        )
    if additional is False:
        _add(problems, f"{path}.additionalProperties", reasons.forbidden("must not be false"))
    if schema.get("uniqueItems") is True:
        detail = "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
        _add(problems, f"{path}.uniqueItems", reasons.forbidden(detail))
    _check_list_type(schema, path, problems)
    _check_pattern(schema, path, problems)
    _check_rules(schema, path, problems, root=root)
    _check_default(schema, path, problems)
    for sub, sub_path in _junctor_branches(schema, path):
        _check_junctor(sub, sub_path, schema, problems, int_or_string=int_or_string)
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            sub_path = f"{path}.properties[{name}]"
            if root and name == "metadata":
                _check_root_metadata(sub, sub_path, problems)
            else:
                _check_node(sub, sub_path, problems)
    if isinstance(additional, Mapping):
        _check_node(additional, f"{path}.additionalProperties", problems)
    items = schema.get("items")
    if isinstance(items, Mapping):
        _check_node(items, f"{path}.items", problems)
    elif items is not None:
        _add(
            problems,
            f"{path}.items",
            reasons.forbidden("items must be a schema object and not an array"),
        )


def _check_keywords(schema: Mapping[str, Any], path: str, problems: list[str]) -> None:
    for keyword in _UNSUPPORTED:
        if keyword in schema:
            _add(problems, f"{path}.{keyword}", reasons.forbidden(f"{keyword} is not supported"))


def _check_list_type(schema: Mapping[str, Any], path: str, problems: list[str]) -> None:
    list_type = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys")
    if list_type is None:
        if keys is not None:
            detail = "must not be set if x-kubernetes-list-type is not map"
            _add(problems, f"{path}.x-kubernetes-list-map-keys", reasons.forbidden(detail))
        return
    if schema.get("type") != "array":
        detail = "must only be used if type is array"
        _add(problems, f"{path}.x-kubernetes-list-type", reasons.invalid(list_type, detail))
    if list_type not in ("atomic", "set", "map"):
        _add(
            problems,
            f"{path}.x-kubernetes-list-type",
            reasons.unsupported(list_type, ["atomic", "set", "map"]),
        )
        return
    raw_items = schema.get("items")
    items: Mapping[str, Any] = raw_items if isinstance(raw_items, Mapping) else {}
    if (
        list_type == "set"
        and items.get("type") in ("object", "array")
        and items.get("x-kubernetes-map-type") != "atomic"
    ):
        detail = "must be atomic as item of a list with x-kubernetes-list-type=set"
        _add(problems, f"{path}.items.x-kubernetes-map-type", reasons.required(detail))
    if list_type != "map":
        if keys is not None:
            detail = "must not be set if x-kubernetes-list-type is not map"
            _add(problems, f"{path}.x-kubernetes-list-map-keys", reasons.forbidden(detail))
        return
    if not keys:
        detail = "must not be empty if x-kubernetes-list-type is map"
        _add(problems, f"{path}.x-kubernetes-list-map-keys", reasons.required(detail))
        return
    if items.get("type") != "object":
        detail = "must be object if parent array's x-kubernetes-list-type is map"
        _add(problems, f"{path}.items.type", reasons.invalid(items.get("type", ""), detail))
        return
    item_props = items.get("properties") or {}
    required = set(items.get("required") or ())
    for i, name in enumerate(keys):
        where = f"{path}.x-kubernetes-list-map-keys[{i}]"
        prop = item_props.get(name)
        if prop is None:
            _add(
                problems,
                where,
                reasons.invalid(name, "entries must all be names of item properties"),
            )
        elif (
            prop.get("type") not in _SCALAR_TYPES
            and prop.get("x-kubernetes-int-or-string") is not True
        ):
            _add(problems, where, reasons.invalid(name, "must be a scalar property"))
        elif name not in required and prop.get("default") is None:
            _add(problems, where, reasons.invalid(name, "must be required or have a default"))
    if len(set(keys)) != len(keys):
        _add(
            problems,
            f"{path}.x-kubernetes-list-map-keys",
            reasons.invalid(keys, "must not contain duplicates"),
        )


def _check_pattern(schema: Mapping[str, Any], path: str, problems: list[str]) -> None:
    pattern = schema.get("pattern")
    if pattern is None:
        return
    try:
        compile_re2(str(pattern))
    except re.error as exc:
        _add(
            problems,
            f"{path}.pattern",
            reasons.invalid(pattern, f"must be a valid regular expression: {exc}"),
        )


def _check_rules(schema: Mapping[str, Any], path: str, problems: list[str], *, root: bool) -> None:
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or ()):
        where = f"{path}.x-kubernetes-validations[{i}]"
        if not isinstance(rule, Mapping) or not rule.get("rule"):
            _add(problems, f"{where}.rule", reasons.required("rule is not specified"))
            continue
        compiled = cel.compile_rule(str(rule["rule"]))
        error = compiled.error or cel.undeclared_field(schema, str(rule["rule"]), root=root)
        if error:
            detail = f"compilation failed: {error}"
            _add(problems, f"{where}.rule", reasons.invalid(rule["rule"], detail))
        expression = rule.get("messageExpression")
        if expression:
            compiled = cel.compile_rule(str(expression))
            if compiled.error:
                detail = f"messageExpression compilation failed: {compiled.error}"
                _add(problems, f"{where}.messageExpression", reasons.invalid(expression, detail))
        message = rule.get("message")
        if message is not None and ("\n" in str(message) or not str(message).strip()):
            detail = "message must be non-empty and not contain line breaks"
            _add(problems, f"{where}.message", reasons.invalid(message, detail))
        reason = rule.get("reason")
        allowed = [
            "FieldValueInvalid",
            "FieldValueForbidden",
            "FieldValueRequired",
            "FieldValueDuplicate",
        ]
        if reason is not None and reason not in allowed:
            _add(problems, f"{where}.reason", reasons.unsupported(reason, allowed))


def _check_default(schema: Mapping[str, Any], path: str, problems: list[str]) -> None:
    if "default" not in schema:
        return
    default = schema["default"]
    where = f"{path}.default"
    if default is None:
        if schema.get("nullable") is not True:
            _add(problems, where, reasons.forbidden("must not be null for a non-nullable field"))
        return
    pruned, removed = prune(schema, default)
    if removed:
        _add(
            problems,
            where,
            reasons.invalid(default, f"must not have unknown fields: {', '.join(removed)}"),
        )
    # The apiserver checks a default as the new and as the old value: transition rules apply.
    for problem in validate(schema, pruned, old=pruned):
        _add(
            problems,
            f"{where}.{problem.field}" if problem.field != "<nil>" else where,
            problem.reason,
        )


def _check_root_metadata(schema: Mapping[str, Any], path: str, problems: list[str]) -> None:
    detail = (
        "must not specify anything other than name and generateName, "
        "but metadata is implicitly specified"
    )
    allowed_top = {"type", "properties", "description"}
    if schema.get("type") not in (None, "object") or set(schema) - allowed_top:
        _add(problems, path, reasons.forbidden(detail))
        return
    for name, sub in (schema.get("properties") or {}).items():
        if name not in ("name", "generateName"):
            _add(problems, f"{path}.properties[{name}]", reasons.forbidden(detail))
            continue
        if not isinstance(sub, Mapping) or sub.get("type") != "string" or "default" in sub:
            _add(problems, f"{path}.properties[{name}]", reasons.forbidden(detail))
            continue
        _check_node(sub, f"{path}.properties[{name}]", problems)


def _check_junctor(
    schema: Any,
    path: str,
    outer: Mapping[str, Any],
    problems: list[str],
    *,
    int_or_string: bool,
) -> None:
    if not isinstance(schema, Mapping):
        _add(problems, path, reasons.invalid(schema, "must be a schema object"))
        return
    _check_keywords(schema, path, problems)
    for keyword in _NOT_IN_JUNCTORS:
        if keyword not in schema:
            continue
        # int-or-string may be spelled anyOf: [{type: integer}, {type: string}].
        if keyword == "type" and int_or_string and schema["type"] in ("integer", "string"):
            continue
        detail = (
            "must be empty to be structural"
            if keyword == "type"
            else "must be undefined to be structural"
        )
        _add(problems, f"{path}.{keyword}", reasons.forbidden(detail))
    if schema.get("nullable") is True:
        _add(problems, f"{path}.nullable", reasons.forbidden("must be false to be structural"))
    _check_pattern(schema, path, problems)
    outer_props = outer.get("properties") or {}
    outer_additional = outer.get("additionalProperties")
    for name, sub in (schema.get("properties") or {}).items():
        sub_path = f"{path}.properties[{name}]"
        outer_sub = outer_props.get(name)
        if outer_sub is None and isinstance(outer_additional, Mapping):
            outer_sub = outer_additional
        if outer_sub is None:
            _add(
                problems,
                sub_path,
                reasons.forbidden("must be specified in the structural schema as well"),
            )
            continue
        _check_junctor(
            sub,
            sub_path,
            outer_sub,
            problems,
            int_or_string=outer_sub.get("x-kubernetes-int-or-string") is True,
        )
    items = schema.get("items")
    if isinstance(items, Mapping):
        outer_items = outer.get("items")
        if not isinstance(outer_items, Mapping):
            _add(
                problems,
                f"{path}.items",
                reasons.forbidden("must be specified in the structural schema as well"),
            )
        else:
            _check_junctor(
                items,
                f"{path}.items",
                outer_items,
                problems,
                int_or_string=outer_items.get("x-kubernetes-int-or-string") is True,
            )
    for sub, sub_path in _junctor_branches(schema, path):
        _check_junctor(sub, sub_path, outer, problems, int_or_string=int_or_string)


def _junctor_branches(schema: Mapping[str, Any], path: str) -> Iterator[tuple[Any, str]]:
    """Each schema under ``allOf``, ``anyOf``, ``oneOf`` and ``not`` of ``schema``, with its
    path."""
    for junctor in _JUNCTORS:
        for i, sub in enumerate(schema.get(junctor) or ()):
            yield sub, f"{path}.{junctor}[{i}]"
    if schema.get("not") is not None:
        yield schema["not"], f"{path}.not"
