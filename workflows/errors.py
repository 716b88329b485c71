"""Errors the booking workflows raise to callers and activities raise to workflows.

    temporalio.exceptions.ApplicationError
     ├── BookingRequestRejected      an update refused; non-retryable, the workflow stays healthy
     │    ├── WrongCaller            the caller is not the party the request needs
     │    ├── WrongState             the booking's status does not allow the request now
     │    ├── InvalidRequest         malformed input (tx hash, empty reason, unknown kind)
     │    ├── LimitReached           the booking already accepted its maximum of such requests
     │    └── RelayRefused           a relayed payment not sent (``code`` says why); also raised
     │                               by the relay activity, before any gas is spent
     └── ActivityRejected            an activity input retrying cannot fix; non-retryable,
                                     ``type`` is one of constants.NON_RETRYABLE_ERROR_TYPES

Callers see ``error.type`` (the class name for rejections) and the message; nothing secret is
ever put in either.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from workflows.constants import INVALID_ACTIVITY_INPUT


class BookingRequestRejected(ApplicationError):
    """An update the booking refuses; the validator or handler raises it, the workflow goes on."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type=type(self).__name__, non_retryable=True)


class WrongCaller(BookingRequestRejected):
    """The caller is not the party this request needs."""


class WrongState(BookingRequestRejected):
    """The booking's current status does not allow this request."""


class InvalidRequest(BookingRequestRejected):
    """The request itself is malformed."""


class LimitReached(BookingRequestRejected):
    """The booking already accepted the maximum number of such requests (bounds history)."""


class RelayRefused(BookingRequestRejected):
    """A relayed payment the platform will not send; ``code`` (the first detail) says why."""

    def __init__(self, message: str, code: str) -> None:
        ApplicationError.__init__(self, message, code, type=type(self).__name__, non_retryable=True)

    @property
    def code(self) -> str:
        return str(self.details[0]) if self.details else "relay_refused"


class ActivityRejected(ApplicationError):
    """An activity input that retrying cannot fix."""

    def __init__(self, message: str, *, error_type: str = INVALID_ACTIVITY_INPUT) -> None:
        super().__init__(message, type=error_type, non_retryable=True)


__all__ = [
    "ActivityRejected",
    "BookingRequestRejected",
    "InvalidRequest",
    "LimitReached",
    "RelayRefused",
    "WrongCaller",
    "WrongState",
]
