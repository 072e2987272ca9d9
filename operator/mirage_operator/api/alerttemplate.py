"""Prometheus alert templates: a parse check faithful to Go's ``text/template`` as Prometheus
uses it, and a way to write literal text into a template.

Prometheus expands every label value and annotation of an alerting rule as a Go
``text/template`` with its own functions (``humanize``, ``query``, ...) and the variables
``$labels``, ``$externalLabels``, ``$externalURL`` and ``$value`` defined in front of the text;
``promtool check rules`` (``rulefmt.testTemplateParsing``) parses them and Prometheus refuses the
whole rule group when one does not parse. No maintained Python parser of Go templates exists
(the one PyPI package wraps Go through CGo), so this module mirrors the lexer and parser of Go
1.19's ``text/template/parse`` (lex.go, parse.go, node.go's ``newNumber``), the Go that builds
the promtool the tests hold it to (``tests/rules/test_rule_corpus.py``). It only parses: what
fails at execution time (a missing label, a wrong argument type) does not make Prometheus
refuse the group.

Source of the function table: prometheus/template/template.go (v2.42) and Go's
``text/template`` builtins, each checked against promtool by the corpus test.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

BUILTIN_FUNCTIONS = frozenset(
    {
        "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
        "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
    }
)  # fmt: skip
PROMETHEUS_FUNCTIONS = frozenset(
    {
        "query", "first", "label", "value", "strvalue", "args", "reReplaceAll", "safeHtml",
        "match", "title", "toUpper", "toLower", "graphLink", "tableLink", "sortByLabel",
        "humanize", "humanize1024", "humanizeDuration", "humanizePercentage",
        "humanizeTimestamp", "toTime", "parseDuration", "pathPrefix", "externalURL",
        "stripPort", "stripDomain",
    }
)  # fmt: skip
FUNCTIONS = BUILTIN_FUNCTIONS | PROMETHEUS_FUNCTIONS
ALERT_VARIABLES = ("$", "$labels", "$externalLabels", "$externalURL", "$value")
"""Variables defined in front of every alert template (rulefmt's ``defs``)."""

_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil"}
_KEYWORDS |= {"template", "with"}
_SPACE = " \t\r\n"
_DIGITS = "0123456789"


class TemplateSyntaxError(ValueError):
    """The text is not a Go template Prometheus can parse; the message says why."""


@dataclass(frozen=True)
class _Token:
    kind: str
    """text, left, right, space, assign, declare, pipe, string, raw, variable, char,
    charconst, number, complex, field, dot, identifier, bool, nil, lparen, rparen, a keyword,
    comment or eof."""
    value: str


def literal(text: str) -> str:
    """``text`` written so that Go's ``text/template`` expands it to itself: every ``{{`` becomes
    the action ``{{ "{{" }}`` (a ``}}`` outside an action is already literal)."""
    return '{{ "{{" }}'.join(text.split("{{"))


def template_problem(text: str) -> str | None:
    """Why Prometheus cannot parse ``text`` as an alert label or annotation template, or
    ``None`` when it can."""
    try:
        _Parser(_lex(text)).parse()
    except TemplateSyntaxError as exc:
        return str(exc)
    return None


# --- lexer (text/template/parse/lex.go) ------------------------------------------------------


def _alphanumeric(char: str) -> bool:
    return char == "_" or char.isalpha() or char.isdecimal()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.tokens: list[_Token] = []
        self.paren_depth = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        char = self.peek()
        self.pos += len(char) or 1
        return char

    def backup(self) -> None:
        self.pos -= 1

    def emit(self, kind: str) -> None:
        self.tokens.append(_Token(kind, self.text[self.start : self.pos]))
        self.start = self.pos

    def at_right_delim(self) -> tuple[bool, bool]:
        rest = self.text[self.pos :]
        if len(rest) >= 2 and rest[0] in _SPACE and rest[1] == "-" and rest[2:].startswith("}}"):
            return True, True
        return rest.startswith("}}"), False

    def at_terminator(self) -> bool:
        char = self.peek()
        return char == "" or char in _SPACE or char in ".,|:)(}"

    def accept(self, valid: str) -> bool:
        if self.peek() and self.peek() in valid:
            self.next()
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.accept(valid):
            pass


def _left_trim(rest: str) -> bool:
    return len(rest) >= 2 and rest[0] == "-" and rest[1] in _SPACE


def _lex(text: str) -> list[_Token]:
    lx = _Lexer(text)
    while True:
        found = text.find("{{", lx.pos)
        if found < 0:
            lx.pos = len(text)
            if lx.pos > lx.start:
                lx.emit("text")
            lx.tokens.append(_Token("eof", ""))
            return lx.tokens
        lx.pos = found
        if lx.pos > lx.start:
            lx.emit("text")
        lx.pos += 2
        trim = 2 if _left_trim(text[lx.pos :]) else 0
        if text.startswith("/*", lx.pos + trim):
            lx.pos += trim
            _lex_comment(lx)
            continue
        lx.emit("left")
        lx.pos += trim
        lx.start = lx.pos
        lx.paren_depth = 0
        _lex_action(lx)


def _lex_comment(lx: _Lexer) -> None:
    end = lx.text.find("*/", lx.pos + 2)
    if end < 0:
        raise TemplateSyntaxError("unclosed comment")
    lx.pos = end + 2
    delim, trim = lx.at_right_delim()
    if not delim:
        raise TemplateSyntaxError("comment ends before closing delimiter")
    lx.pos += 4 if trim else 2
    lx.start = lx.pos
    lx.tokens.append(_Token("comment", ""))


def _lex_action(lx: _Lexer) -> None:
    while True:
        delim, trim = lx.at_right_delim()
        if delim:
            if lx.paren_depth:
                raise TemplateSyntaxError("unclosed left paren")
            lx.pos += 4 if trim else 2
            lx.emit("right")
            return
        char = lx.next()
        if char == "":
            raise TemplateSyntaxError("unclosed action")
        if char in _SPACE:
            lx.backup()
            _lex_space(lx)
            continue
        if char == "=":
            lx.emit("assign")
        elif char == ":":
            if lx.next() != "=":
                raise TemplateSyntaxError("expected :=")
            lx.emit("declare")
        elif char == "|":
            lx.emit("pipe")
        elif char == '"':
            _lex_quote(lx, '"', "string", "unterminated quoted string")
        elif char == "`":
            end = lx.text.find("`", lx.pos)
            if end < 0:
                raise TemplateSyntaxError("unterminated raw quoted string")
            lx.pos = end + 1
            lx.emit("raw")
        elif char == "$":
            _lex_field_or_variable(lx, "variable")
        elif char == "'":
            _lex_quote(lx, "'", "charconst", "unterminated character constant")
        elif char == "." and not (lx.peek() and lx.peek() in _DIGITS):
            _lex_field_or_variable(lx, "field")
        elif char in "+-." or char in _DIGITS:
            lx.backup()
            _lex_number(lx)
        elif _alphanumeric(char):
            lx.backup()
            _lex_identifier(lx)
        elif char == "(":
            lx.emit("lparen")
            lx.paren_depth += 1
        elif char == ")":
            lx.emit("rparen")
            lx.paren_depth -= 1
            if lx.paren_depth < 0:
                raise TemplateSyntaxError("unexpected right paren")
        elif " " <= char <= "~":
            lx.emit("char")
        else:
            raise TemplateSyntaxError(f"unrecognized character in action: {char!r}")


def _lex_space(lx: _Lexer) -> None:
    spaces = 0
    while lx.peek() and lx.peek() in _SPACE:
        lx.next()
        spaces += 1
    # The last space and a following "-}}" are a trim marker, not a separator.
    if lx.text.startswith("-}}", lx.pos):
        lx.backup()
        if spaces == 1:
            return
    lx.emit("space")


def _lex_quote(lx: _Lexer, quote: str, kind: str, unterminated: str) -> None:
    while True:
        char = lx.next()
        if char == "\\":
            char = lx.next()
            if char in ("", "\n"):
                raise TemplateSyntaxError(unterminated)
        elif char in ("", "\n"):
            raise TemplateSyntaxError(unterminated)
        elif char == quote:
            lx.emit(kind)
            return


def _lex_field_or_variable(lx: _Lexer, kind: str) -> None:
    if lx.at_terminator():
        lx.emit("variable" if kind == "variable" else "dot")
        return
    while lx.peek() and _alphanumeric(lx.peek()):
        lx.next()
    if not lx.at_terminator():
        raise TemplateSyntaxError(f"bad character {lx.peek()!r}")
    lx.emit(kind)


def _lex_identifier(lx: _Lexer) -> None:
    while lx.peek() and _alphanumeric(lx.peek()):
        lx.next()
    if not lx.at_terminator():
        raise TemplateSyntaxError(f"bad character {lx.peek()!r}")
    word = lx.text[lx.start : lx.pos]
    if word in _KEYWORDS:
        lx.emit(word)
    elif word in ("true", "false"):
        lx.emit("bool")
    else:
        lx.emit("identifier")


def _scan_number(lx: _Lexer) -> bool:
    lx.accept("+-")
    digits = "0123456789_"
    if lx.accept("0"):
        if lx.accept("xX"):
            digits = "0123456789abcdefABCDEF_"
        elif lx.accept("oO"):
            digits = "01234567_"
        elif lx.accept("bB"):
            digits = "01_"
    lx.accept_run(digits)
    if lx.accept("."):
        lx.accept_run(digits)
    if len(digits) == 11 and lx.accept("eE"):
        lx.accept("+-")
        lx.accept_run("0123456789_")
    if len(digits) == 23 and lx.accept("pP"):
        lx.accept("+-")
        lx.accept_run("0123456789_")
    lx.accept("i")
    if lx.peek() and _alphanumeric(lx.peek()):
        lx.next()
        return False
    return True


def _lex_number(lx: _Lexer) -> None:
    if not _scan_number(lx):
        raise TemplateSyntaxError(f"bad number syntax: {lx.text[lx.start : lx.pos]!r}")
    if lx.peek() in ("+", "-"):
        if not _scan_number(lx) or lx.text[lx.pos - 1] != "i":
            raise TemplateSyntaxError(f"bad number syntax: {lx.text[lx.start : lx.pos]!r}")
        lx.emit("complex")
    else:
        lx.emit("number")


# --- Go literals (strconv) -------------------------------------------------------------------

_SIMPLE_ESCAPES = "abfnrtv\\"
_HEX = "0123456789abcdefABCDEF"


def _unquote_char(text: str, pos: int, quote: str) -> int:
    """Position after one (possibly escaped) character of a Go literal quoted by ``quote``."""
    char = text[pos]
    if char == quote and quote in "'\"":
        raise TemplateSyntaxError("invalid syntax")
    if char != "\\":
        return pos + 1
    kind = text[pos + 1] if pos + 1 < len(text) else ""
    if kind in _SIMPLE_ESCAPES and kind:
        return pos + 2
    if kind in ("'", '"'):
        if kind != quote:
            raise TemplateSyntaxError("invalid syntax")
        return pos + 2
    width = {"x": 2, "u": 4, "U": 8}.get(kind)
    if width is not None:
        digits = text[pos + 2 : pos + 2 + width]
        if len(digits) != width or any(d not in _HEX for d in digits):
            raise TemplateSyntaxError("invalid syntax")
        value = int(digits, 16)
        if kind != "x" and (value > 0x10FFFF or 0xD800 <= value <= 0xDFFF):
            raise TemplateSyntaxError("invalid syntax")
        return pos + 2 + width
    digits = text[pos + 1 : pos + 4]
    if len(digits) == 3 and all(d in "01234567" for d in digits) and int(digits, 8) <= 255:
        return pos + 4
    raise TemplateSyntaxError("invalid syntax")


def _check_string(token: _Token) -> None:
    """strconv.Unquote of a quoted or raw string token (the lexer found its end)."""
    if token.kind == "raw":
        return
    text, pos = token.value[1:-1], 0
    while pos < len(text):
        pos = _unquote_char(text, pos, '"')


def _check_char(text: str) -> None:
    body = text[1:]
    end = _unquote_char(body, 0, "'") if body else 0
    if body[end:] != "'":
        raise TemplateSyntaxError(f"malformed character constant: {text}")


def _underscore_ok(text: str) -> bool:
    """strconv's underscoreOK: underscores only between digits or after a base prefix."""
    text = text[1:] if text[:1] in ("+", "-") else text
    saw, i, hexa = "^", 0, False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        i, saw, hexa = 2, "0", text[1].lower() == "x"
    for char in text[i:]:
        if char in _DIGITS or (hexa and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


def _go_int(text: str, *, signed: bool) -> int | None:
    """strconv.ParseInt/ParseUint(text, 0, 64), or ``None`` on any error."""
    body = text
    if body[:1] in ("+", "-"):
        if not signed:
            return None
        body = body[1:]
    base, digits = 10, body
    if body[:1] == "0" and len(body) > 1:
        prefix = body[1].lower()
        base = {"x": 16, "o": 8, "b": 2}.get(prefix, 8)
        digits = body[2:] if prefix in "xob" else body[1:]
    if "_" in digits and not _underscore_ok(text):
        return None
    digits = digits.replace("_", "")
    alphabet = "0123456789abcdef"[:base]
    if not digits or any(d.lower() not in alphabet for d in digits):
        return None
    value = int(digits, base) * (-1 if text.startswith("-") else 1)
    low, high = (-(2**63), 2**63 - 1) if signed else (0, 2**64 - 1)
    return value if low <= value <= high else None


_DECIMAL_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_HEX_FLOAT = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")


def _go_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64), or ``None`` on a syntax or range error."""
    if "_" in text and not _underscore_ok(text):
        return None
    plain = text.replace("_", "")
    if _DECIMAL_FLOAT.fullmatch(plain):
        value = float(plain)
    elif _HEX_FLOAT.fullmatch(plain):
        value = float.fromhex(plain)
    else:
        return None
    return None if math.isinf(value) else value


def _check_number(token: _Token) -> None:
    """node.go's newNumber: a number token must be an int, a uint, a float or imaginary."""
    text = token.value
    if token.kind == "charconst":
        _check_char(text)
        return
    if token.kind == "complex":
        sign = max(text.rfind("+"), text.rfind("-"))
        if _go_float(text[:sign]) is None or _go_float(text[sign:-1]) is None:
            raise TemplateSyntaxError(f"illegal number syntax: {text!r}")
        return
    if text.endswith("i") and _go_float(text[:-1]) is not None:
        return
    if _go_int(text, signed=False) is not None or _go_int(text, signed=True) is not None:
        return
    if _go_float(text) is not None:
        if not any(c in text for c in ".eEpP"):
            raise TemplateSyntaxError(f"integer overflow: {text!r}")
        return
    raise TemplateSyntaxError(f"illegal number syntax: {text!r}")


# --- parser (text/template/parse/parse.go) ---------------------------------------------------

_OPERAND_START = {
    "bool", "charconst", "complex", "dot", "field", "identifier", "number", "nil", "raw",
    "string", "variable", "lparen",
}  # fmt: skip
_LITERALS = {"bool", "dot", "nil", "number", "string"}
"""Node kinds that cannot start a pipeline stage after the first."""


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.vars: list[str] = list(ALERT_VARIABLES)
        self.range_depth = 0
        self.defined: set[str] = set()

    # token access; spaces are tokens, as in Go
    def next(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def next_non_space(self) -> _Token:
        token = self.next()
        while token.kind == "space":
            token = self.next()
        return token

    def peek_non_space(self) -> _Token:
        token = self.next_non_space()
        self.pos -= 1
        return token

    def unexpected(self, token: _Token, context: str) -> TemplateSyntaxError:
        shown = token.value or token.kind
        return TemplateSyntaxError(f"unexpected {shown!r} in {context}")

    def expect(self, kind: str, context: str) -> _Token:
        token = self.next_non_space()
        if token.kind != kind:
            raise self.unexpected(token, context)
        return token

    def parse(self) -> None:
        while self.peek().kind != "eof":
            if self.peek().kind == "left":
                start = self.pos
                self.next()
                if self.next_non_space().kind == "define":
                    self.definition()
                    continue
                self.pos = start
            end = self.text_or_action()
            if end in ("end", "else"):
                raise TemplateSyntaxError(f"unexpected {{{{{end}}}}}")

    def template_name(self, context: str) -> _Token:
        """The quoted name of a define, block or template clause (parseTemplateName)."""
        name = self.next_non_space()
        if name.kind not in ("string", "raw"):
            raise self.unexpected(name, context)
        _check_string(name)
        return name

    def definition(self) -> None:
        name = self.template_name("define clause")
        self.expect("right", "define clause")
        self.sub_template(name.value, "define clause")

    def sub_template(self, name: str, context: str) -> None:
        """The body of a define or block: its own variables, up to its {{end}}."""
        outer_vars, outer_depth = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        empty, end = self.item_list()
        if end != "end":
            raise TemplateSyntaxError(f"unexpected {{{{{end}}}}} in {context}")
        self.vars, self.range_depth = outer_vars, outer_depth
        if name in self.defined and not empty:
            raise TemplateSyntaxError(f"template: multiple definition of template {name}")
        if not empty:
            self.defined.add(name)

    def item_list(self) -> tuple[bool, str]:
        """Parse up to {{end}} or {{else}}: (whether the list is empty of output, which)."""
        empty = True
        while self.peek_non_space().kind != "eof":
            token = self.peek_non_space()
            end = self.text_or_action()
            if end in ("end", "else"):
                return empty, end
            if end != "comment" and not (token.kind == "text" and not token.value.strip()):
                empty = False
        raise TemplateSyntaxError("unexpected EOF")

    def text_or_action(self) -> str:
        """Parse one text, comment or action; returns ``end``/``else`` for those, else the
        kind of node."""
        token = self.next_non_space()
        if token.kind in ("text", "comment"):
            return token.kind
        if token.kind == "left":
            return self.action()
        raise self.unexpected(token, "input")

    def action(self) -> str:
        token = self.next_non_space()
        kind = token.kind
        if kind == "block":
            name = self.template_name("block clause")
            self.pipeline("block clause", "right")
            self.sub_template(name.value, "block clause")
            return "block"
        if kind in ("break", "continue"):
            after = self.next_non_space()
            if after.kind != "right":
                raise self.unexpected(after, f"{{{{{kind}}}}}")
            if not self.range_depth:
                raise TemplateSyntaxError(f"{{{{{kind}}}}} outside {{{{range}}}}")
            return kind
        if kind == "else":
            if self.peek_non_space().kind != "if":
                self.expect("right", "else")
            return "else"
        if kind == "end":
            self.expect("right", "end")
            return "end"
        if kind in ("if", "range", "with"):
            self.control(kind)
            return kind
        if kind == "template":
            self.template_name("template clause")
            if self.next_non_space().kind != "right":
                self.pos -= 1
                self.pipeline("template clause", "right")
            return "template"
        self.pos -= 1
        self.pipeline("command", "right")
        return "action"

    def control(self, context: str) -> None:
        depth = len(self.vars)
        self.pipeline(context, "right")
        if context == "range":
            self.range_depth += 1
        _, end = self.item_list()
        if context == "range":
            self.range_depth -= 1
        if end == "else":
            if context == "if" and self.peek().kind == "if":
                # {{else if}}: the nested if consumes the one {{end}}.
                self.next()
                self.control("if")
            else:
                _, end = self.item_list()
                if end != "end":
                    raise TemplateSyntaxError(f"expected end; found {{{{{end}}}}}")
        del self.vars[depth:]

    def pipeline(self, context: str, end: str) -> None:
        declared = 0
        while self.peek_non_space().kind == "variable":
            variable = self.next_non_space()
            after_variable = self.peek()
            following = self.peek_non_space()
            if following.kind in ("assign", "declare"):
                self.next_non_space()
                self.vars.append(variable.value)
                break
            if following.kind == "char" and following.value == ",":
                self.next_non_space()
                self.vars.append(variable.value)
                declared += 1
                if context == "range" and declared < 2:
                    if self.peek_non_space().kind in ("variable", "right", "rparen"):
                        continue
                    raise TemplateSyntaxError("range can only initialize variables")
                raise TemplateSyntaxError(f"too many declarations in {context}")
            # Not a declaration: the variable is the first operand.
            self.pos -= 2 if after_variable.kind == "space" else 1
            break
        commands: list[str] = []
        while True:
            token = self.next_non_space()
            if token.kind == end:
                break
            if token.kind not in _OPERAND_START:
                raise self.unexpected(token, context)
            self.pos -= 1
            commands.append(self.command())
        if not commands:
            raise TemplateSyntaxError(f"missing value for {context}")
        for stage, first in enumerate(commands[1:], start=2):
            if first in _LITERALS:
                raise TemplateSyntaxError(f"non executable command in pipeline stage {stage}")

    def command(self) -> str:
        """Parse one command; returns the node kind of its first operand."""
        first = ""
        while True:
            self.peek_non_space()
            kind = self.operand()
            if kind and not first:
                first = kind
            token = self.next()
            if token.kind == "space":
                continue
            if token.kind in ("right", "rparen"):
                self.pos -= 1
            elif token.kind != "pipe":
                raise self.unexpected(token, "operand")
            break
        if not first:
            raise TemplateSyntaxError("empty command")
        return first

    def operand(self) -> str | None:
        kind = self.term()
        if kind is None:
            return None
        if self.peek().kind == "field":
            while self.peek().kind == "field":
                self.next()
            if kind in _LITERALS:
                raise TemplateSyntaxError("unexpected . after term")
            return "chain"
        return kind

    def term(self) -> str | None:
        token = self.next_non_space()
        kind = token.kind
        if kind == "identifier":
            if token.value not in FUNCTIONS:
                raise TemplateSyntaxError(f"function {token.value!r} not defined")
            return "identifier"
        if kind == "variable":
            name = token.value.split(".")[0]
            if name not in self.vars:
                raise TemplateSyntaxError(f"undefined variable {name!r}")
            return "variable"
        if kind in ("charconst", "complex", "number"):
            _check_number(token)
            return "number"
        if kind == "lparen":
            self.pipeline("parenthesized pipeline", "rparen")
            return "pipeline"
        if kind in ("string", "raw"):
            _check_string(token)
            return "string"
        if kind in ("dot", "nil", "field", "bool"):
            return kind
        self.pos -= 1
        return None
