"""Expected operator-command failures, printed as one line (exit code 2), never a traceback.

OpsError                  the command cannot do what was asked
├── Unreachable           Postgres, Temporal or every RPC provider did not answer
├── Refused               a workflow or the contract refused the request
└── NotManaged            the booking is a marketplace row this service does not manage
"""

from __future__ import annotations


class OpsError(Exception):
    """The command failed for a reason the operator can act on; the message says which."""


class Unreachable(OpsError):
    """A dependency did not answer."""


class Refused(OpsError):
    """The workflow or the contract said no."""


class NotManaged(OpsError):
    """The booking row is the marketplace's own (no workflow): nothing here acts on it."""

    def __init__(self, ref: str, status: str) -> None:
        super().__init__(
            f"booking {ref} is the marketplace's own row (status {status!r}, no workflow): this"
            " service does not manage it, so no workflow or escrow record belongs to it"
        )
