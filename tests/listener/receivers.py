"""Tiny workflows standing in for the booking and orphan workflows: they record signals."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.types import ChainEventSignal, OrphanPaymentInput


@workflow.defn(name="listener-test-booking")
class ReceivingBooking:
    """Stands in for BookingWorkflow: records the chain signals it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name="payment_confirmed")
    def payment_confirmed(self, event: ChainEventSignal) -> None:
        self.received.append(("payment_confirmed", event.key))

    @workflow.signal(name="service_completed")
    def service_completed(self, event: ChainEventSignal) -> None:
        self.received.append(("service_completed", event.key))

    @workflow.query(name="received")
    def get_received(self) -> list[tuple[str, str]]:
        return self.received


@workflow.defn(name="orphan-payment")
class ReceivingOrphan:
    """Registered under the orphan workflow's name on this test's own task queue."""

    def __init__(self) -> None:
        self.payments: list[str] = []

    @workflow.run
    async def run(self, orphan: OrphanPaymentInput) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name="payment_confirmed")
    def payment_confirmed(self, event: ChainEventSignal) -> None:
        self.payments.append(event.key)

    @workflow.query(name="payments")
    def get_payments(self) -> list[str]:
        return self.payments


BENCH_APPLY_ACTIVITY = "listener_bench_apply"
APPLY_TIMEOUT = timedelta(seconds=30)


class _ApplyOnceBase:
    """One chain signal, then one activity: the activity kind is the subclass's."""

    def __init__(self) -> None:
        self.event: ChainEventSignal | None = None

    @workflow.signal(name="payment_confirmed")
    def payment_confirmed(self, event: ChainEventSignal) -> None:
        self.event = event


@workflow.defn(name="orphan-payment")
class ApplyOnce(_ApplyOnceBase):
    """The bench's "bare workflow": one chain signal, one activity, done."""

    @workflow.run
    async def run(self, orphan: OrphanPaymentInput) -> None:
        await workflow.wait_condition(lambda: self.event is not None)
        await workflow.execute_activity(
            BENCH_APPLY_ACTIVITY, self.event, start_to_close_timeout=APPLY_TIMEOUT
        )


@workflow.defn(name="orphan-payment")
class ApplyOnceLocal(_ApplyOnceBase):
    """ApplyOnce with a local activity: the shape of the booking's PAID write."""

    @workflow.run
    async def run(self, orphan: OrphanPaymentInput) -> None:
        await workflow.wait_condition(lambda: self.event is not None)
        await workflow.execute_local_activity(
            BENCH_APPLY_ACTIVITY, self.event, start_to_close_timeout=APPLY_TIMEOUT
        )


@workflow.defn(name="orphan-payment")
class TakeSignal:
    """A no-op receiver: completes as soon as its signal arrives."""

    def __init__(self) -> None:
        self.seen = False

    @workflow.run
    async def run(self, orphan: OrphanPaymentInput) -> None:
        await workflow.wait_condition(lambda: self.seen)

    @workflow.signal(name="payment_confirmed")
    def payment_confirmed(self, event: ChainEventSignal) -> None:
        self.seen = True
