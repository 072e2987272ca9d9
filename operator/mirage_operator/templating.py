"""The VaultSecret template language: Jinja2 in a sandbox, compiled and evaluated.

Shared by the API rules (a template must compile: :func:`template_error`) and the Secret
builder (:func:`render_template`), so that neither imports the other's package.

Templates run in a Jinja2 ``ImmutableSandboxedEnvironment`` with a curated set of filters and
guards against memory blow-ups (string repetition, big exponents, huge joins and
concatenations, over-long output), because template authors are tenants and the operator is
shared. Errors raised here name keys, never values: a template failure is reported by the
template's key, its line, the exception's class and a fixed description — never the
exception's own text, which can quote data (Jinja's "has no attribute '<value>'",
``UnicodeDecodeError``'s bytes, ``ValueError``'s operands) — and is raised with no chained
cause or context. The operator runs these functions in a worker process bounded in memory
and time (:mod:`mirage_operator.template_worker`, docs/adr/0067).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import traceback
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mirage_operator.errors import InvalidTemplate

MAX_SECRET_BYTES = 1024 * 1024
"""Kubernetes refuses Secrets whose data exceeds 1 MiB; a template may not produce more."""

MAX_RANGE = 1000
"""Largest ``range()`` a template may iterate over."""

MAX_INT_ARGUMENT = 10_000
"""Largest integer passed to a method from a template (widths, counts)."""

# str methods that can multiply their input's size; templates use the checked filters instead.
_AMPLIFYING_METHODS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "replace", "join", "format", "format_map"}
)
_KEPT_FILTERS = (
    "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first",
    "float", "groupby", "int", "items", "last", "length", "list", "lower", "map", "max", "min",
    "reject", "rejectattr", "reverse", "round", "select", "selectattr", "sort", "string",
    "sum", "title", "trim", "truncate", "unique", "upper", "urlencode",
)  # fmt: skip


class _Refused(SecurityError):
    """A guard of this module refused an operation; its message is fixed text, never data."""


def _too_big(size: int) -> None:
    if size > MAX_SECRET_BYTES:
        raise _Refused(f"template result exceeds {MAX_SECRET_BYTES} bytes")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _b64enc(value: str | bytes) -> str:
    raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def _b64dec(value: str | bytes) -> str:
    return base64.b64decode(value, validate=True).decode("utf-8")


def _tojson(value: Any, indent: int | None = None) -> str:
    # Jinja's own tojson escapes <, >, & and ' for HTML; Secrets need the plain JSON.
    return json.dumps(value, indent=indent, sort_keys=True, ensure_ascii=False)


def _fromjson(value: str | bytes) -> Any:
    return json.loads(value)


def _join(values: Iterable[Any], separator: str = "") -> str:
    parts = [_text(v) for v in values]
    _too_big(sum(len(p) for p in parts) + len(separator) * max(len(parts) - 1, 0))
    return separator.join(parts)


def _range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise _Refused(f"range() is limited to {MAX_RANGE} items in templates")
    return result


def _dockerconfigjson(server: str, username: str, password: str) -> str:
    """The ``.dockerconfigjson`` document for one registry."""
    auth = _b64enc(f"{username}:{password}")
    entry = {"username": username, "password": password, "auth": auth}
    return _tojson({"auths": {server: entry}})


class _CheckedConcat(CodeGenerator):
    """Route ``~`` concatenation through the environment so its size is checked."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _CheckedConcat
    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        builtin = self.filters
        self.filters = {name: builtin[name] for name in _KEPT_FILTERS}
        self.filters.update(
            b64enc=_b64enc, b64dec=_b64dec, tojson=_tojson, fromjson=_fromjson, join=_join
        )
        self.globals = {"range": _range, "dict": dict, "dockerconfigjson": _dockerconfigjson}

    def checked_concat(self, values: Iterable[Any]) -> str:
        return _join(values)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str | bytes) and attr in _AMPLIFYING_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
                    _too_big(len(seq) * times)
        elif operator == "**":
            ints = isinstance(left, int) and isinstance(right, int)
            if ints and right > 0 and left.bit_length() * right > 4096:
                raise _Refused("exponent too large in template")
        elif operator == "%" and isinstance(left, str | bytes):
            # printf-style widths are the amplifier: refuse long digit runs in the format.
            text = left.decode("latin-1") if isinstance(left, bytes) else left
            if re.search(r"\d{5,}", text):
                raise _Refused("format width too large in template")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and abs(value) > MAX_INT_ARGUMENT:
                raise _Refused("integer argument too large in template")
        return super().call(__context, __obj, *args, **kwargs)


@lru_cache(maxsize=1)
def template_environment() -> ImmutableSandboxedEnvironment:
    """The one sandbox every VaultSecret template is compiled in."""
    return _Sandbox()


@lru_cache(maxsize=512)
def _compile(source: str) -> Any:
    return template_environment().from_string(source)


def template_error(source: str) -> str | None:
    """Why ``source`` does not compile as a template, or ``None`` when it does."""
    try:
        _compile(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        return f"template does not compile: {exc.message}{where}"
    except (RecursionError, MemoryError):
        return "template does not compile: it is nested too deeply"
    return None


_UNDEFINED_NAME = (
    re.compile(r"has no (?:attribute|element) ('(?:[^'\\]|\\.)*')$"),
    re.compile(r"^('(?:[^'\\]|\\.)*') is undefined$"),
)
_DESCRIPTIONS: tuple[tuple[type[Exception], str], ...] = (
    (binascii.Error, "invalid base64"),
    (UnicodeError, "not UTF-8 text"),
    (json.JSONDecodeError, "invalid JSON"),
    (RecursionError, "recursion too deep"),
    (MemoryError, "exceeded the memory limit"),
)
"""Fixed descriptions of common failures; any other exception is described by its class."""


@lru_cache(maxsize=512)
def _source_names(source: str) -> frozenset[str]:
    """Every name, attribute and string constant written in ``source``: the spec shows them."""
    tree = template_environment().parse(source)
    names = {n.name for n in tree.find_all(nodes.Name)}
    names |= {n.attr for n in tree.find_all(nodes.Getattr)}
    names |= {n.value for n in tree.find_all(nodes.Const) if isinstance(n.value, str)}
    return frozenset(names)


def _undefined_name(exc: UndefinedError, source: str, values: Iterable[str | bytes]) -> str | None:
    """The missing name of an ``UndefinedError`` when the template's source spells it and no
    Vault value equals it: a typo (``data.pasword``) is named, a value used as a key is not."""
    match = next((m for p in _UNDEFINED_NAME if (m := p.search(exc.message or ""))), None)
    if match is None:
        return None
    name = match.group(1)[1:-1]
    if name not in _source_names(source) or any(name in (v, as_bytes(name)) for v in values):
        return None
    return name


def _line(exc: BaseException) -> int | None:
    # Jinja rewrites tracebacks so that template frames carry the template's line numbers.
    lines = [
        f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<template>"
    ]
    return lines[-1] if lines else None


def _describe(exc: Exception, source: str, data: Mapping[str, str | bytes]) -> str:
    """``(line N): Class: fixed description``, never the exception's text (only the messages
    of this module's own guards, which are fixed, are passed on)."""
    line = _line(exc)
    where = f" (line {line})" if line else ""
    kind = "SecurityError" if isinstance(exc, _Refused) else type(exc).__name__
    if isinstance(exc, _Refused | TemplateSyntaxError):
        # Fixed text, or the compiler's (which sees the source, never the data).
        detail = exc.message if isinstance(exc, TemplateSyntaxError) else str(exc)
    elif isinstance(exc, UndefinedError):
        name = _undefined_name(exc, source, data.values())
        keys = ", ".join(sorted(data)[:20]) or "none"
        what = f"{name!r} is undefined" if name else "a name, attribute or key is undefined"
        detail = f"{what} (Vault keys: {keys})"
    elif isinstance(exc, SecurityError):
        detail = "the sandbox refused an unsafe attribute or call"
    else:
        detail = next((d for t, d in _DESCRIPTIONS if isinstance(exc, t)), "evaluation failed")
    return f"{where}: {kind}: {detail}"


def render_template(key: str, source: str, data: Mapping[str, str | bytes]) -> bytes:
    """Render one template with ``data``.

    Raises :class:`InvalidTemplate` naming ``key``, the line, and the exception's class, for
    ANY exception the template raises; the error has no ``__cause__`` and no ``__context__``
    (it is raised after the handler, so nothing derived from the data hangs on it).
    """
    context = {k: _context_value(v) for k, v in data.items()}
    failure = ""
    try:
        size = 0
        parts = []
        for chunk in _compile(source).generate(data=context):
            size += len(chunk)
            _too_big(size)
            parts.append(chunk)
        return "".join(parts).encode("utf-8")
    except Exception as exc:
        failure = _describe(exc, source, data)
    raise InvalidTemplate(f"template {key!r} failed{failure}")


def _context_value(value: str | bytes) -> str | bytes:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value  # binary stays bytes; b64enc handles it
    return value


def as_bytes(value: str | bytes) -> bytes:
    """``value`` as bytes (text as UTF-8)."""
    return value if isinstance(value, bytes) else value.encode("utf-8")
