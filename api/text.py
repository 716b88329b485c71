"""What a text input may contain: only what Postgres `text` (UTF-8) can store.

Postgres refuses NUL (`\\u0000`) in text and cannot encode a lone UTF-16 surrogate
(`\\ud800`-`\\udfff`, which JSON's `\\u` escapes can produce). Such a value accepted at the
edge fails later, inside a workflow's first write, where a retry cannot fix it; so every
text field, parameter and claim that reaches Postgres or Temporal is checked here first.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_problem(value: str) -> str | None:
    """Why Postgres cannot store `value`, or None when it can."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    char = found.group()
    what = "a NUL character" if char == "\x00" else "a lone surrogate"
    return f"must not contain {what} (U+{ord(char):04X} at position {found.start()})"


def check_storable(value: str) -> str:
    """Pydantic validator: refuse text Postgres cannot store (a 422 naming the field)."""
    problem = unstorable_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


StorableText = Annotated[str, AfterValidator(check_storable)]

__all__ = ["StorableText", "check_storable", "unstorable_problem"]
