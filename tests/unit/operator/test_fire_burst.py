"""FireBurst: the operator's other calls wait for the schedules' fires of the moment, never for ever."""

from __future__ import annotations

import asyncio

from jobplane_operator.handlers import FireBurst
from tests.conftest import run_coroutine


def test_nothing_waits_when_no_fire_is_under_way() -> None:
    async def scenario() -> bool:
        burst = FireBurst(hold=3600)
        await burst.wait()  # would hang for an hour if it waited
        return burst.firing

    assert run_coroutine(scenario()) is False


def test_a_waiting_call_goes_on_once_the_last_fire_is_made() -> None:
    async def scenario() -> list[str]:
        burst = FireBurst(hold=3600)
        order: list[str] = []
        first, second = asyncio.Event(), asyncio.Event()

        async def fire(name: str, done: asyncio.Event) -> None:
            with burst.fire():
                await done.wait()
                order.append(name)

        async def other() -> None:
            await burst.wait()
            order.append("other")

        fires = [asyncio.create_task(fire("fire 1", first)), asyncio.create_task(fire("fire 2", second))]
        await asyncio.sleep(0)  # both fires under way
        waiting = asyncio.create_task(other())
        await asyncio.sleep(0)
        first.set()
        await fires[0]
        await asyncio.sleep(0)
        assert not waiting.done(), "one fire is still under way"
        second.set()
        await asyncio.gather(*fires, waiting)
        return order

    assert run_coroutine(scenario()) == ["fire 1", "fire 2", "other"]


def test_the_wait_is_bounded_so_endless_fires_starve_nothing() -> None:
    async def scenario() -> bool:
        burst = FireBurst(hold=0.01)
        never = asyncio.Event()

        async def fire() -> None:
            with burst.fire():
                await never.wait()

        task = asyncio.create_task(fire())
        await asyncio.sleep(0)
        await burst.wait()  # returns after its bound although the fire goes on
        still = burst.firing
        task.cancel()
        return still

    assert run_coroutine(scenario()) is True


def test_a_fire_that_fails_still_ends_the_burst() -> None:
    async def scenario() -> bool:
        burst = FireBurst(hold=3600)
        try:
            with burst.fire():
                raise RuntimeError("the apiserver refused")
        except RuntimeError:
            pass
        await burst.wait()
        return burst.firing

    assert run_coroutine(scenario()) is False
