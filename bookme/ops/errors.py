"""Expected operator-command failures, printed as one line (exit code 2), never a traceback.

OpsError                  the command cannot do what was asked
├── Unreachable           Postgres, Temporal or every RPC provider did not answer
└── Refused               a workflow or the contract refused the request
"""

from __future__ import annotations


class OpsError(Exception):
    """The command failed for a reason the operator can act on; the message says which."""


class Unreachable(OpsError):
    """A dependency did not answer."""


class Refused(OpsError):
    """The workflow or the contract said no."""
