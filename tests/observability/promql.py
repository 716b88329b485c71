"""The metric names a PromQL expression reads: enough PromQL to check our dashboards and rules.

Names are the bare identifiers left once strings, label matchers, range and subquery brackets,
grouping lists and function calls are set aside; a `{__name__=~"re"}` matcher is returned as a
regular expression that must match some exported name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
KEYWORDS |= {"unless", "bool", "offset", "inf", "nan"}
_NAME_REGEX = re.compile(r'__name__\s*=~\s*"((?:[^"\\]|\\.)*)"')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


@dataclass
class Names:
    exact: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)


def metric_names(expr: str) -> Names:
    """The metric names `expr` selects (exact) and the `__name__` regexes it matches."""
    names = Names(patterns=set(_NAME_REGEX.findall(expr)))
    text = _STRING.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    for name, call in _IDENTIFIER.findall(text):
        if not call and name.lower() not in KEYWORDS:
            names.exact.add(name)
    return names


def missing(
    exprs: list[str], exported: set[str], builtin: frozenset[str] = frozenset()
) -> list[str]:
    """Each name or `__name__` pattern the expressions read that nothing exports."""
    problems = []
    for expr in exprs:
        names = metric_names(expr)
        problems += [f"{n} (in {expr!r})" for n in sorted(names.exact - exported - builtin)]
        problems += [
            f"no exported name matches {p!r} (in {expr!r})"
            for p in sorted(names.patterns)
            if not any(re.fullmatch(p, n) for n in exported)
        ]
    return problems
