"""Figures, percentiles, the one summary table and the JSON files under bench/results/."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of non-empty samples."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, kw_only=True)
class Latency:
    """Milliseconds."""

    n: int
    p50: float
    p95: float
    p99: float

    @classmethod
    def of_seconds(cls, samples: list[float]) -> Latency:
        ms = [s * 1000 for s in samples]
        if not ms:
            return cls(n=0, p50=math.nan, p95=math.nan, p99=math.nan)
        return cls(
            n=len(ms), p50=percentile(ms, 50), p95=percentile(ms, 95), p99=percentile(ms, 99)
        )

    def text(self) -> str:
        return f"p50 {self.p50:.0f} / p95 {self.p95:.0f} / p99 {self.p99:.0f} ms (n={self.n})"


@dataclass(frozen=True, kw_only=True)
class Row:
    """One line of the table: a figure, its ceiling (same run), and a note."""

    section: str
    name: str
    value: str
    ceiling: str = ""
    note: str = ""


@dataclass
class Report:
    """Everything one run measured; `data` is the machine-readable side."""

    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    settings: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, section: str, name: str, value: str, ceiling: str = "", note: str = "") -> None:
        self.rows.append(Row(section=section, name=name, value=value, ceiling=ceiling, note=note))

    def table(self) -> str:
        headers = ("section", "figure", "value", "ceiling (same run)", "note")
        cells = [headers] + [(r.section, r.name, r.value, r.ceiling, r.note) for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
        lines = []
        for n, row in enumerate(cells):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines += [f"ERROR: {e}" for e in self.errors]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "settings": self.settings,
            "rows": [asdict(r) for r in self.rows],
            "data": self.data,
            "errors": self.errors,
        }

    def write(self, directory: Path = RESULTS_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        body = json.dumps(self.as_json(), indent=2, default=_jsonable) + "\n"
        path = directory / f"bench-{self.started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_text(body)
        (directory / "latest.json").write_text(body)
        return path


def _jsonable(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)  # type: ignore[call-overload]
    return str(value)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.nan
