"""How many event streams may be open at once: per user, and in this API process.

A stream holds no database connection of its own (it waits on the process's change feed and
reads through its shared reader), but each one still costs memory and a socket: the caps keep
one user, or a flood of users, from holding this process. Counted in memory, so the per-user
cap is per process too.
"""

from __future__ import annotations

from collections import Counter

from api.errors import TooManyRequests

# A stream ends within `sse_max_seconds`; a refused client should wait about a poll cycle.
RETRY_AFTER_SECONDS = 5


class StreamSlots:
    """Hands out one slot per open stream; `release` gives it back (exactly once per take)."""

    def __init__(self, *, per_user: int, per_process: int) -> None:
        self._per_user = per_user
        self._per_process = per_process
        self._by_user: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return self._by_user.total()

    def take(self, user_id: str) -> None:
        """Count a new stream for `user_id`; 429 with a message when a cap is reached."""
        if self._by_user[user_id] >= self._per_user:
            raise TooManyRequests(
                f"at most {self._per_user} event streams may be open per user; "
                "close one before opening another",
                retry_after=RETRY_AFTER_SECONDS,
                code="too_many_streams",
            )
        if self.open >= self._per_process:
            raise TooManyRequests(
                f"this server has its maximum of {self._per_process} event streams open; "
                "retry shortly",
                retry_after=RETRY_AFTER_SECONDS,
                code="server_streams_full",
            )
        self._by_user[user_id] += 1

    def release(self, user_id: str) -> None:
        self._by_user[user_id] -= 1
        if self._by_user[user_id] <= 0:
            del self._by_user[user_id]


__all__ = ["StreamSlots"]
