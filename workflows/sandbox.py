"""The workflow runner every worker, replayer and bench ceiling uses: the sandbox, narrowed.

The sandbox re-imports a workflow's module for each run, so that module's state starts fresh
and its calls are checked (``datetime.now()``, ``random``, I/O raise instead of silently
breaking replay). What the module imports need not be re-imported: our pure modules (types,
constants, guards, timers, event rules) and the deterministic libraries they use are passed
through from the host. Re-importing them cost more CPU per booking than running its
activations (issue #17); the workflow classes' own modules stay sandboxed.
"""

from __future__ import annotations

import pkgutil
from functools import cache

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# The chain modules workflow code imports: pure encoding and arithmetic, no client.
CHAIN_MODULES = (
    "chain.basis_points",
    "chain.eip712",
    "chain.event_key",
    "chain.events",
    "chain.reason_codes",
    "chain.transfer_auth",
)
# Deterministic third-party libraries our types and chain encodings are built on.
LIBRARIES = ("pydantic", "pydantic_core", "annotated_types", "eth_utils", "eth_hash", "eth_typing")


def workflow_class_modules() -> frozenset[str]:
    """The modules defining the registered workflows, and the packages above them."""
    from workflows import WORKFLOWS

    modules = {cls.__module__ for cls in WORKFLOWS}
    parents = {m.rsplit(".", depth)[0] for m in modules for depth in range(1, m.count(".") + 1)}
    return frozenset(modules | parents)


def passthrough_modules() -> tuple[str, ...]:
    """Every module of ``workflows`` except the workflow classes' own, plus the chain's pure
    modules and the libraries they use."""
    import workflows

    sandboxed = workflow_class_modules()
    ours = (m.name for m in pkgutil.walk_packages(workflows.__path__, "workflows."))
    return (*sorted(m for m in ours if m not in sandboxed), *CHAIN_MODULES, *LIBRARIES)


@cache
def workflow_runner() -> SandboxedWorkflowRunner:
    """The one runner definition: the default sandbox with ``passthrough_modules()``."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*passthrough_modules())
    return SandboxedWorkflowRunner(restrictions=restrictions)
