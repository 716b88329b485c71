"""Modules do one job and functions one step: no module over 400 lines, no function over 60.

Read with ``ast`` from the source tree, nothing imported. A module counts its physical lines; a
function counts from its first decorator to its last line, docstring and nested functions
included (a nested function is also checked on its own). Production code only: the packages
below and ``worker.py``; not tests, bench, the Alembic migrations (one generated-then-frozen
script per schema change) or the compiled contract artifacts (JSON).

The allow-lists are today's exceptions, each with its reason, so the check fails on a new one;
an entry that is back under the limit must be removed (the last test says which).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("activities", "api", "bookme", "chain", "db", "listener", "workflows")
EXCLUDED = ("db/migrations/",)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# Today's exceptions, each with its reason.
LARGE_MODULES: dict[str, str] = {}

LONG_FUNCTIONS: dict[str, str] = {}


def sources() -> Iterator[Path]:
    yield ROOT / "worker.py"
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not relative(path).startswith(EXCLUDED):
                yield path


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, lines) of every function, methods and nested functions included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            yield f"{prefix}{node.name}", node.end_lineno - first + 1
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def large_modules() -> dict[str, int]:
    sizes = {relative(path): len(path.read_text().splitlines()) for path in sources()}
    return {name: size for name, size in sizes.items() if size > MAX_MODULE_LINES}


def long_functions() -> dict[str, int]:
    found = {}
    for path in sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, size in functions(tree):
            if size > MAX_FUNCTION_LINES:
                found[f"{relative(path)}::{name}"] = size
    return found


def test_no_new_module_over_the_limit() -> None:
    new = {name: size for name, size in large_modules().items() if name not in LARGE_MODULES}
    assert not new, f"modules over {MAX_MODULE_LINES} lines (split them by job): {new}"


def test_no_new_function_over_the_limit() -> None:
    new = {name: size for name, size in long_functions().items() if name not in LONG_FUNCTIONS}
    assert not new, f"functions over {MAX_FUNCTION_LINES} lines (extract steps): {new}"


def test_every_exception_is_still_needed() -> None:
    stale = (LARGE_MODULES.keys() - large_modules().keys()) | (
        LONG_FUNCTIONS.keys() - long_functions().keys()
    )
    assert not stale, f"back under the limit (or gone), remove from the allow-list: {sorted(stale)}"


def test_the_check_counts_decorators_docstrings_and_nested_functions() -> None:
    source = "class A:\n    @staticmethod\n    def f():\n        '''Doc.'''\n        def g():\n            pass\n"
    assert dict(functions(ast.parse(source))) == {"A.f": 5, "A.f.g": 2}
