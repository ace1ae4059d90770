"""The byte queue under a stream's channels: its bound, its gate, and how it schedules (a get
that finds an item ready does not yield, at most YIELD_EVERY times in a row; it always checks
for cancellation)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from gemini_ws._buffer import YIELD_EVERY, ByteQueue

from .conftest import instrumented


class Steps(trio.abc.Instrument):
    """Records *count()* each time *task* is scheduled (after each of its yields)."""

    def __init__(self, task: trio.lowlevel.Task, count: Callable[[], int]) -> None:
        self.task, self.count, self.seen = task, count, []

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.seen.append(self.count())


async def test_gets_with_items_ready_yield_at_least_every_yield_every() -> None:
    total = 10 * YIELD_EVERY
    queue: ByteQueue[int] = ByteQueue(10**6)
    for i in range(total):
        queue.put_nowait(i, 1)
    taken = 0
    steps = Steps(trio.lowlevel.current_task(), lambda: taken)
    with instrumented(steps):
        for i in range(total):
            assert await queue.get() == i
            taken += 1
    runs = [b - a for a, b in zip(steps.seen, steps.seen[1:], strict=False)]
    # gets taken between two yields: never more than YIELD_EVERY ...
    assert runs and max(runs) <= YIELD_EVERY, runs
    # ... and not one yield per get (that is what it saves)
    assert len(runs) <= total // (YIELD_EVERY // 2), runs


async def test_a_cancelled_get_takes_nothing_even_with_an_item_ready() -> None:
    queue: ByteQueue[str] = ByteQueue(100)
    queue.put_nowait("a", 1)
    with trio.CancelScope() as scope:
        scope.cancel()
        await queue.get()
    assert scope.cancelled_caught
    assert len(queue) == 1 and queue.get_nowait() == "a"


async def test_a_get_cancelled_while_waiting_raises_cancelled_without_a_chain() -> None:
    queue: ByteQueue[str] = ByteQueue(100)
    caught: list[BaseException] = []
    with trio.move_on_after(0.01):
        try:
            await queue.get()
        except trio.Cancelled as exc:
            caught.append(exc)
            raise
    (exc,) = caught
    # (a get once parked inside `except WouldBlock`: every cancel showed that chain)
    assert exc.__context__ is None, repr(exc.__context__)


async def test_a_waiting_get_is_woken_by_a_put_and_the_bound_holds_puts() -> None:
    queue: ByteQueue[bytes] = ByteQueue(10)
    got: list[bytes] = []

    async def getter() -> None:
        got.append(await queue.get())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(getter)
        await trio.testing.wait_all_tasks_blocked()
        await queue.put(b"x" * 8, 8)
    assert got == [b"x" * 8]
    queue.put_nowait(b"a", 8)
    with pytest.raises(trio.WouldBlock):
        queue.put_nowait(b"b", 8)  # 16 > 10, and the queue is not empty
    with trio.move_on_after(0.05) as scope:
        await queue.put(b"b", 8)
    assert scope.cancelled_caught and len(queue) == 1
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.put, b"b", 8)
        await trio.testing.wait_all_tasks_blocked()
        assert queue.statistics().tasks_waiting_put == 1
        assert await queue.get() == b"a"  # room again: the put goes through
    assert queue.get_nowait() == b"b"
    queue.put_nowait(b"z" * 50, 50)  # an empty queue takes one item over the bound
    assert queue.nbytes == 50


async def test_pause_holds_items_in_order_and_close_drains_then_raises() -> None:
    queue: ByteQueue[int] = ByteQueue(100)
    queue.pause("user")
    queue.pause("handover")
    for i in range(3):
        queue.put_nowait(i, 1)
    with pytest.raises(trio.WouldBlock):
        queue.get_nowait()
    queue.resume("user")
    assert queue.paused_by("handover") and queue.paused
    with trio.move_on_after(0.02) as scope:
        await queue.get()
    assert scope.cancelled_caught
    queue.resume("handover")
    assert [await queue.get() for _ in range(2)] == [0, 1]
    queue.close(ValueError("ended"))
    assert await queue.get() == 2
    with pytest.raises(ValueError, match="ended"):
        await queue.get()
    with pytest.raises(ValueError, match="ended"):
        await queue.put(9, 1)
