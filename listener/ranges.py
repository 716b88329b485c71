"""Adaptive eth_getLogs block ranges: grow while answers come back, shrink when refused."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(kw_only=True)
class AdaptiveRange:
    """The next span (in blocks) to ask for; doubles on success, halves or obeys on refusal."""

    size: int
    minimum: int = 1
    maximum: int = 2000

    def __post_init__(self) -> None:
        self.size = self._clamp(self.size)

    def _clamp(self, value: int) -> int:
        return max(self.minimum, min(self.maximum, value))

    def end(self, start: int, limit: int) -> int:
        """The last block of the next query starting at `start`, not beyond `limit`."""
        return min(limit, start + self.size - 1)

    def succeeded(self, span: int, results: int, result_budget: int = 5_000) -> None:
        """Grow after a full-size success; hold when results crowd the provider's typical cap."""
        if span >= self.size and results < result_budget:
            self.size = self._clamp(self.size * 2)

    def refused(self, span: int, suggested_span: int | None = None) -> None:
        """Too many results, too wide or timed out: take the provider's hint or halve."""
        if suggested_span is not None and 0 < suggested_span < span:
            self.size = self._clamp(suggested_span)
        else:
            self.size = self._clamp(max(1, span // 2))
