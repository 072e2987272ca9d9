"""RE2 (Go) regular expressions, as the apiserver reads ``pattern`` and CEL ``matches()``.

Python's ``re`` differs from RE2 in a few spellings that real CRDs use: inline flags in the
middle of a pattern (``^(?i)(abort|warn)?$`` in prometheus-operator's PrometheusRule CRD),
which Python accepts only at the very start, and ``\\z`` for end of text.
"""

from __future__ import annotations

import re
from functools import lru_cache

_INLINE_FLAGS = re.compile(r"(?<!\\)\(\?([imsU]+)\)")


def translate(pattern: str) -> str:
    """The Python spelling of an RE2 ``pattern``."""
    text = pattern.replace(r"\z", r"\Z")
    # From the last flag group backwards: ``X(?i)Y`` means Y case-insensitive, ``X(?i:Y)``.
    for match in reversed(list(_INLINE_FLAGS.finditer(text))):
        flags = match.group(1).replace("U", "")  # ungreedy-by-default has no Python form
        rest = text[match.end() :]
        text = text[: match.start()] + (f"(?{flags}:{rest})" if flags else rest)
    return text


@lru_cache(maxsize=2048)
def compile_re2(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern; raises :class:`re.error` when it is not valid."""
    return re.compile(translate(pattern))
