"""What the attacks of a chaos run did and what their victims must end with, for the checks.

Four records: each request an attacker sent that the API must refuse (`Refusal`), each
transaction an attacker sent that the contract must revert (`Revert`), each action a victim
took that the policy allows (`VictimAction`: it must succeed), and each victim booking's final
state and money (`Expectation`: checked against Postgres and the chain after quiescence).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.chaos.workload import Kind

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """An attacker's request the API must refuse: its last answer after outages were retried."""

    attack: Kind
    action: str
    booking_id: str | None
    status: int | None  # None: no HTTP answer in time
    code: str
    started: float  # monotonic; the attempt may span a fault window from here to `at`
    at: float
    wanted: tuple[int, ...] = ()  # the exact statuses expected; empty: any 4xx

    @property
    def refused(self) -> bool:
        if self.status is None:
            return False
        return self.status in self.wanted if self.wanted else 400 <= self.status < 500


@dataclass(frozen=True, kw_only=True)
class Revert:
    """An attacker's transaction the contract must revert, moving no money."""

    attack: Kind
    action: str
    tx_hash: str
    reverted: bool
    error: str  # the custom error eth_call decoded before sending ("" when it did not revert)
    expected_error: str
    usdc_moved: int  # attacker's USDC balance before minus after
    escrow_logs: int  # logs the escrow emitted in the transaction


@dataclass(frozen=True, kw_only=True)
class VictimAction:
    """An action the policy allows a victim (or its operator) after an attack."""

    attack: Kind
    booking_id: str | None
    action: str
    ok: bool
    status: int | None  # the API's refusal when that is what failed it
    detail: str
    started: float
    ended: float
    # An observation of the booking (not a request that a fault could cut short): always judged.
    observed: bool = False


@dataclass(frozen=True, kw_only=True)
class Expectation:
    """How a victim's booking must end: its status, what was paid in, who gets what back."""

    attack: Kind
    booking_id: str
    chain_booking_id: str
    status: str
    customer: str
    provider: str
    amount: int
    inviter: str = ZERO_ADDRESS
    customer_refund: int | None = None  # CANCELLED: what the customer's authorization returns
    no_operator_refund: bool = False  # the operator must not have refunded it


@dataclass(frozen=True, kw_only=True)
class BudgetBurn:
    """One provider's run of cancellation requests on a victim's booking."""

    booking_id: str
    answered: int  # 200s before the first refusal
    authorizations: int  # distinct authorizations among them
    refusal: str  # status, code and message of the first refusal ("" if none)


@dataclass
class AdversaryLog:
    refusals: list[Refusal] = field(default_factory=list)
    reverts: list[Revert] = field(default_factory=list)
    victims: list[VictimAction] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    burns: list[BudgetBurn] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def by_attack(self) -> dict[str, Counter[str]]:
        """Per attack: refusals wanted and got, reverts, victim actions ok and failed."""
        table: dict[str, Counter[str]] = {}
        for r in self.refusals:
            row = table.setdefault(r.attack.value, Counter())
            row["requests to refuse"] += 1
            row["refused"] += r.refused
        for t in self.reverts:
            row = table.setdefault(t.attack.value, Counter())
            row["transactions to revert"] += 1
            row["reverted"] += t.reverted and t.usdc_moved == 0 and t.escrow_logs == 0
        for v in self.victims:
            row = table.setdefault(v.attack.value, Counter())
            row["victim actions"] += 1
            row["victim actions ok"] += v.ok
        return table
