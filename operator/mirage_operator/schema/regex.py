"""RE2 (Go) regular expressions, as the apiserver reads ``pattern`` and CEL ``matches()``.

Python's ``re`` differs from RE2 in a few spellings that real CRDs use: inline flags in the
middle of a pattern (``^(?i)(abort|warn)?$`` in prometheus-operator's PrometheusRule CRD),
which Python accepts only at the very start, and ``\\z`` for end of text. It also differs in
meaning: Python's ``$`` matches before a final newline as well, RE2's only at the end of the
text (without the ``m`` flag), so ``^[a-z]+$`` must refuse ``"hello\\n"``; and Python's ``\\d``,
``\\w`` and ``\\s`` match Unicode digits, letters and spaces, RE2's only ASCII ones.
"""

from __future__ import annotations

import re
from functools import lru_cache

_INLINE_FLAGS = re.compile(r"(?<!\\)\(\?([imsU]+)\)")


def _end_of_text(pattern: str) -> str:
    r"""``pattern`` with each ``$`` outside a character class spelled ``\Z`` (RE2's meaning)."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]" or out[-1] in ("[", "[^")  # "[]...]": a leading ] is a member
        elif char == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                out.append("[^")
                i += 2
                continue
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return "".join(out)


def translate(pattern: str) -> str:
    """The Python spelling of an RE2 ``pattern``."""
    text = pattern.replace(r"\z", r"\Z")
    if not re.search(r"\(\?[a-zU]*m", text):
        # With the m flag both mean end of line, before a newline or at the end.
        text = _end_of_text(text)
    # From the last flag group backwards: ``X(?i)Y`` means Y case-insensitive, ``X(?i:Y)``.
    for match in reversed(list(_INLINE_FLAGS.finditer(text))):
        flags = match.group(1).replace("U", "")  # ungreedy-by-default has no Python form
        rest = text[match.end() :]
        text = text[: match.start()] + (f"(?{flags}:{rest})" if flags else rest)
    return text


@lru_cache(maxsize=2048)
def compile_re2(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern; raises :class:`re.error` when it is not valid."""
    return re.compile(translate(pattern), re.ASCII)
