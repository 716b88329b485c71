"""Ceiling workflows: the same count of messages and activities as a booking, and nothing else."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

BARE_ACTIVITY = "bench_bare_activity"
BARE_TIMEOUT = timedelta(seconds=30)


@activity.defn(name=BARE_ACTIVITY)
async def bare_activity() -> str:
    return "done"


@workflow.defn(name="bench-bare-lifecycle")
class BareLifecycle:
    """One activity per message received (signal), then the rest; as many of them local
    activities as the booking runs (its Postgres writes), the others regular ones."""

    def __init__(self) -> None:
        self.pending = 0

    @workflow.run
    async def run(self, messages: int, activities: int, local_activities: int = 0) -> None:
        kinds = [True] * local_activities + [False] * activities
        for index in range(max(messages, len(kinds))):
            if index < messages:
                await workflow.wait_condition(lambda: self.pending > 0)
                self.pending -= 1
            if index < len(kinds):
                await self._activity(local=kinds[index])

    @staticmethod
    async def _activity(*, local: bool) -> None:
        if local:
            await workflow.execute_local_activity(
                BARE_ACTIVITY, start_to_close_timeout=BARE_TIMEOUT
            )
        else:
            await workflow.execute_activity(BARE_ACTIVITY, start_to_close_timeout=BARE_TIMEOUT)

    @workflow.signal(name="poke")
    def poke(self) -> None:
        self.pending += 1


@workflow.defn(name="bench-bare-update")
class BareUpdate:
    """An update whose handler runs one activity: the floor under `payment-authorization`."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update(name="sign")
    async def sign(self) -> str:
        result: str = await workflow.execute_activity(
            BARE_ACTIVITY, start_to_close_timeout=BARE_TIMEOUT
        )
        self.done = True
        return result


@workflow.defn(name="bench-bare-create")
class BareCreate:
    """Creation's floor: one local activity (the booking's row), then an update answers."""

    def __init__(self) -> None:
        self.recorded = False

    @workflow.run
    async def run(self) -> None:
        await workflow.execute_local_activity(BARE_ACTIVITY, start_to_close_timeout=BARE_TIMEOUT)
        self.recorded = True
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update(name="recorded")
    async def recorded_update(self) -> str:
        await workflow.wait_condition(lambda: self.recorded)
        return "recorded"
