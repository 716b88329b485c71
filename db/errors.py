"""What a Postgres error means for the caller: an outage to wait out, or data it can never store.

One reading of SQLSTATEs for the API (503 vs 500) and the activities (retry vs give up).
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

# "Postgres is not there right now", not "this request is wrong": class 08 (connection
# exception), 53 (insufficient resources), and the shutdown/startup codes a restarting server
# answers with (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now).
_OUTAGE_PREFIXES = ("08", "53", "57P01", "57P02", "57P03")
# The value itself is unstorable (class 22: NUL in text, out of range, bad encoding) or breaks
# a constraint (class 23). Retrying cannot help. Unique violations (23505) are left out: the
# writers expect them and handle them with ON CONFLICT, so one reaching here is a race to retry.
_INVALID_DATA_PREFIXES = ("22", "23")
_UNIQUE_VIOLATION = "23505"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error, looked up through SQLAlchemy's and asyncpg's wrappers."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str):
            return code
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def is_outage(exc: DBAPIError) -> bool:
    code = sqlstate(exc)
    return exc.connection_invalidated or (code is not None and code.startswith(_OUTAGE_PREFIXES))


def is_invalid_data(exc: BaseException) -> bool:
    code = sqlstate(exc)
    return (
        code is not None and code.startswith(_INVALID_DATA_PREFIXES) and code != _UNIQUE_VIOLATION
    )
