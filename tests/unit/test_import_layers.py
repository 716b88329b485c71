"""Imports flow one way (DESIGN.md): no package imports a package above it.

Read with ``ast`` from the source tree, nothing imported or executed. Imports under
``TYPE_CHECKING`` and inside functions count too: a lazy import hides a cycle, it does not end it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("chain", "db", "workflows", "activities", "listener", "api", "bookme")
# The one settings object (with logging setup and the endpoint fallbacks) every process reads:
# below the services, above chain and workflows (it builds the BookingPolicy a booking is frozen
# with; the endpoints read the deployment file). With it, what every process does with its
# settings at start: connect to Temporal (one code path) and check the chain against them.
CONFIG = {
    "bookme.settings",
    "bookme.settings_checks",
    "bookme.relay_settings",
    "bookme.webhook_settings",
    "bookme.logging",
    "bookme.endpoints",
    "bookme.temporal_connect",
    "bookme.world",
    "bookme.tracing",
}
# The `bookme` command line on top of everything it dispatches to.
CLI = {"bookme.cli", "bookme.__main__"}

BELOW_SERVICES = {"chain", "db", "config", "workflows"}
# Which layer may import which, bottom to top. Peers do not import each other.
ALLOWED: dict[str, set[str]] = {
    "chain": set(),
    "workflows": {"chain"},  # pure parts only (reason codes, the event codec); no I/O
    "db": {"workflows"},  # the domain's vocabulary (BookingStatus) for its CHECK clauses
    # The production checks recognise well-known keys; Settings builds the BookingPolicy.
    "config": {"chain", "workflows"},
    "activities": BELOW_SERVICES,
    "listener": BELOW_SERVICES,
    "api": BELOW_SERVICES,
    "bookme": BELOW_SERVICES | {"activities", "listener", "api"},  # dev stack, demo, schedules
    "bookme.ops": BELOW_SERVICES | {"activities", "listener", "api", "bookme"},
    "cli": BELOW_SERVICES | {"activities", "listener", "api", "bookme", "bookme.ops"},
    "worker": BELOW_SERVICES | {"activities", "listener", "bookme"},
}
# Known upward imports still to remove; each must still exist (the test says when to drop it).
PENDING: set[tuple[str, str]] = set()


def layer(module: str) -> str | None:
    """The layer of a dotted module name, None outside the checked packages."""
    if module == "worker":
        return "worker"
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if parts[0] != "bookme":
        return parts[0]
    name = ".".join(parts[:2])
    if name in CONFIG:
        return "config"
    if name in CLI:
        return "cli"
    return "bookme.ops" if name == "bookme.ops" else "bookme"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> Iterator[Path]:
    yield ROOT / "worker.py"
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> Iterator[str]:
    """Every absolute module an import statement in the file names (relative ones stay inside)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            # `from bookme import settings` names the submodule, not the package.
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def upward_imports() -> set[tuple[str, str, str]]:
    """(file, layer it may not import, module) for every import across a forbidden edge."""
    found = set()
    for path in sources():
        source = layer(module_name(path))
        assert source is not None, path
        for module in imported(path):
            target = layer(module)
            if target is None or target == source or target in ALLOWED[source]:
                continue
            found.add((str(path.relative_to(ROOT)), target, module))
    return found


def test_no_package_imports_a_layer_above_it() -> None:
    unexpected = {
        (file, target, module)
        for file, target, module in upward_imports()
        if (file, target) not in PENDING
    }
    assert not unexpected, "\n".join(f"{f} imports {m} ({t})" for f, t, m in sorted(unexpected))


def test_pending_exceptions_are_still_needed() -> None:
    present = {(file, target) for file, target, _ in upward_imports()}
    stale = PENDING - present
    assert not stale, f"remove from PENDING, the import is gone: {sorted(stale)}"


def test_the_layers_form_no_cycle() -> None:
    """The allowed edges themselves go one way (so a cycle needs a forbidden edge)."""
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"cycle: {' -> '.join((*path, node))}"
        if node in done:
            return
        for below in ALLOWED[node]:
            visit(below, (*path, node))
        done.add(node)

    for node in ALLOWED:
        visit(node, ())


def test_the_check_sees_the_imports_it_forbids(tmp_path: Path) -> None:
    """An upward import written lazily under TYPE_CHECKING, as the old cycle was, is caught."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from listener.delivery import Deliverer\n"
        "def f():\n    from bookme import ops\n"
    )
    modules = set(imported(source))
    assert {"listener.delivery", "bookme.ops"} <= modules
    assert "listener" not in ALLOWED["activities"]
    assert "bookme.ops" not in ALLOWED["worker"]
