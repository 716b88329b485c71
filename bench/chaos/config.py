"""What one chaos run does: its seed, size, fault budget and the short booking timers it runs with."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class ChaosTimers:
    """Booking timers short enough that every booking ends within a run (seconds)."""

    payment_deadline: int = 45
    auto_complete_delay: int = 2
    monitoring_window: int = 15
    push_grace: int = 3
    poll_interval: int = 2
    # Above the workflow's MIN_REUSABLE_AUTHORIZATION (60 s), so a repeated request gets the
    # same authorization back for a while: the adversaries' budget burning needs that path.
    authorization_ttl: int = 120
    confirmations: int = 2

    def env(self) -> dict[str, str]:
        return {
            "BOOKME_PAYMENT_DEADLINE_SECONDS": str(self.payment_deadline),
            "BOOKME_AUTO_COMPLETE_DELAY_SECONDS": str(self.auto_complete_delay),
            "BOOKME_MONITORING_WINDOW_SECONDS": str(self.monitoring_window),
            "BOOKME_PUSH_GRACE_SECONDS": str(self.push_grace),
            "BOOKME_POLL_INTERVAL_SECONDS": str(self.poll_interval),
            "BOOKME_AUTHORIZATION_TTL_SECONDS": str(self.authorization_ttl),
            "BOOKME_CONFIRMATIONS": str(self.confirmations),
        }


@dataclass(frozen=True, kw_only=True)
class ChaosConfig:
    """One run, reproducible from ``seed`` (the workload plan and the fault plan derive from it)."""

    seed: int
    bookings: int = 500
    # Faults are drawn at random times inside the workload's first `duration` seconds.
    faults: int = 16
    duration: float = 300.0
    # Production shape's own faults (kill mid operator burst, partitions, the 2 min Temporal
    # outage, the clock step): the full run and the soak; too long for the short test.
    production_faults: bool = True
    # Auto-completing bookings' appointments: this share starts on a `burst_slot` boundary, so
    # their auto-completions bunch into operator transaction bursts (0: no bunching).
    burst_share: float = 0.6
    burst_slot: int = 60
    # The soak's faults come at even intervals ("every few minutes"), not at random times.
    even_faults: bool = False
    concurrency: int = 40
    quiescence_timeout: float = 420.0
    # Every process fault kind at least once, whatever `faults` says (the short test relies on it).
    cover_every_kind: bool = True
    # Postgres and Temporal restarts are the slow faults; the short run picks one of them.
    server_restarts: tuple[str, ...] = ("postgres", "temporal")
    # Share of the bookings that are attacks (bench/chaos/adversary.py), interleaved with the
    # honest ones; every attack kind at least once when above 0.
    adversary_share: float = 0.15
    timers: ChaosTimers = field(default_factory=ChaosTimers)
    # How far ahead an auto-completing appointment is booked (seconds): a create retried through
    # an outage must still name a future time.
    create_ahead: float = 30.0


# Production shape's faults include Temporal down two minutes: the client flows' clocks must
# outlast it (a deadline that passes during an outage is the right answer, but not the test).
OUTAGE_PROOF_TIMERS = ChaosTimers(payment_deadline=240)
OUTAGE_PROOF_AHEAD = 150.0
