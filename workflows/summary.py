"""Human-readable one-liners for the Temporal UI (static summary and current details)."""

from __future__ import annotations

from datetime import UTC

from workflows.types import BookingInput, BookingStatus

USDC_DECIMALS = 6


def format_usdc(units: int) -> str:
    """``100000000`` -> ``"100.00 USDC"``; keeps every significant decimal, at least two."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**USDC_DECIMALS)
    digits = f"{frac:0{USDC_DECIMALS}d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits} USDC"


def short_wallet(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


def booking_summary(booking: BookingInput, status: BookingStatus | None = None) -> str:
    """``"100.00 USDC · provider 0x1234…abcd · 2026-12-01 14:00 UTC · PAID"``."""
    parts = [
        format_usdc(booking.amount_units),
        f"provider {short_wallet(booking.provider_wallet)}",
        booking.scheduled_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    ]
    if status is not None:
        parts.append(status.value)
    return " · ".join(parts)
