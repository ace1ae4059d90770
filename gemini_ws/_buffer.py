"""A queue bounded in bytes, with a pause gate: the one buffer type under a stream's channels.

Why not a trio memory channel: a channel bounds the number of items, and the Live API sends
anything from a 40-byte transcript to a 100 KiB audio chunk. A burst of thousands of small
chunks must not stall the socket, and a few huge ones must not eat memory, so the bound here is
in bytes. The queue always admits an item when it is empty, so one message larger than the bound
still passes (alone).

Scheduling: ``put`` is a full checkpoint (cancellation and a yield) as trio's channels are.
``get`` always checks for cancellation, but one that finds an item ready does not yield to the
scheduler, at most :data:`YIELD_EVERY` calls in a row: a yield is a trip round trio's run loop,
and a stream would pay it on every message. A ``get`` that must wait parks, which is a yield.
So a consumer that keeps finding messages handles at most ``YIELD_EVERY`` of them between
yields (well under a millisecond of the stream's own work), and other tasks (the stream's
receiver, the heartbeat) are never starved for longer than the application's own handling of
that many messages takes.

``paused`` holds items back from ``get`` (they stay queued, in order) without refusing ``put``
until the byte bound is reached. ``close(error)`` wakes everybody: ``get`` hands out what is
queued, then raises *error* (or :class:`trio.EndOfChannel` when there is none); ``put`` raises
at once.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import attrs
import trio

T = TypeVar("T")

__all__ = ["YIELD_EVERY", "BufferStatistics", "ByteQueue"]

#: The most calls of ``get`` in a row that return without yielding (sends written at once from
#: the caller's task follow the same bound: see ``SessionRunner.submit``).
YIELD_EVERY = 32


@attrs.frozen
class BufferStatistics:
    """A snapshot of a :class:`ByteQueue`."""

    items: int
    bytes: int
    max_bytes: int
    paused: bool
    closed: bool
    tasks_waiting_put: int
    tasks_waiting_get: int


class ByteQueue(Generic[T]):
    """A FIFO of items bounded by the sum of their sizes in bytes, with a pause gate."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._pausers: set[str] = set()
        self._closed = False
        self._error: BaseException | None = None
        self._put_lot = trio.lowlevel.ParkingLot()
        #: tasks parked in put (counted here: a take looks at it every time)
        self._putters = 0
        #: tasks waiting in ``get``, oldest first (what a ParkingLot does, without its
        #: generality: waking the one consumer is the hot path, once per message)
        self._getters: deque[trio.lowlevel.Task] = deque()
        self._get_streak = 0  # gets since the last one that yielded

    # --- state -------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        """True while ``get`` holds items back (for any reason)."""
        return bool(self._pausers)

    def paused_by(self, reason: str) -> bool:
        """True while *reason* holds the gate closed."""
        return reason in self._pausers

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """The sum of the sizes of the queued items."""
        return self._bytes

    def full_for(self, size: int) -> bool:
        """True when an item of *size* bytes would have to wait."""
        return bool(self._items) and self._bytes + size > self.max_bytes

    def pause(self, reason: str = "user") -> None:
        """Hold items back from ``get`` (idempotent per *reason*; several reasons may hold the
        gate at once, e.g. the application and a connection handover)."""
        self._pausers.add(reason)

    def resume(self, reason: str = "user") -> None:
        """Withdraw *reason*; once no reason holds the gate, ``get`` hands out items again,
        oldest first (idempotent)."""
        if reason in self._pausers:
            self._pausers.discard(reason)
            if not self._pausers and self._getters:
                self._wake_getters()

    def close(self, error: BaseException | None = None) -> None:
        """No more puts. ``get`` drains what is queued, then raises *error* (idempotent: the
        first error wins)."""
        if not self._closed:
            self._closed = True
            self._error = error
        self._put_lot.unpark_all()
        self._wake_getters()

    def drain(self) -> list[T]:
        """Remove and return everything queued (used to report what was never sent)."""
        items = [item for item, _ in self._items]
        self._items.clear()
        self._bytes = 0
        if self._putters:
            self._put_lot.unpark_all()
        return items

    def statistics(self) -> BufferStatistics:
        """An immutable snapshot of the queue's state."""
        return BufferStatistics(
            items=len(self._items),
            bytes=self._bytes,
            max_bytes=self.max_bytes,
            paused=self.paused,
            closed=self._closed,
            tasks_waiting_put=self._put_lot.statistics().tasks_waiting,
            tasks_waiting_get=len(self._getters),
        )

    # --- put / get ---------------------------------------------------------------------
    def _raise_closed(self) -> None:
        if self._error is not None:
            raise self._error
        raise trio.ClosedResourceError("the queue is closed")

    async def put(self, item: T, size: int) -> None:
        """Queue *item* (weighing *size* bytes), waiting while the byte bound is reached.
        A full checkpoint, always (a queued item waits for another task anyway)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            if self._closed:
                self._raise_closed()
            if not self.full_for(size):
                break
            self._putters += 1
            try:
                await self._put_lot.park()
            finally:
                self._putters -= 1
        self._append(item, size)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def _append(self, item: T, size: int) -> None:
        self._items.append((item, size))
        self._bytes += size
        if self._getters:
            trio.lowlevel.reschedule(self._getters.popleft())

    def put_nowait(self, item: T, size: int) -> None:
        """Queue *item* now or raise :class:`trio.WouldBlock`."""
        if self._closed:
            self._raise_closed()
        items = self._items
        if items and self._bytes + size > self.max_bytes:  # (full_for, inlined: per message)
            raise trio.WouldBlock
        items.append((item, size))
        self._bytes += size
        if self._getters:
            trio.lowlevel.reschedule(self._getters.popleft())

    def push_front(self, item: T, size: int) -> None:
        """Put *item* back at the head of the queue, ignoring the byte bound (it was taken
        out earlier and is being returned, e.g. a message whose write was interrupted)."""
        self._items.appendleft((item, size))
        self._bytes += size
        if self._getters:
            trio.lowlevel.reschedule(self._getters.popleft())

    def push_back(self, item: T, size: int) -> None:
        """Queue *item* now, ignoring the byte bound and a close (what a connection that is
        being retired still read must not be lost, nor wait for room)."""
        self._append(item, size)

    def _take(self) -> T:
        item, size = self._items.popleft()
        self._bytes -= size
        if self._putters:
            self._put_lot.unpark_all()
        if self._items and self._getters and not self._pausers:
            trio.lowlevel.reschedule(self._getters.popleft())
        return item

    def get_nowait(self) -> T:
        """Take the oldest item now or raise :class:`trio.WouldBlock`."""
        if self._items and not self._pausers:
            return self._take()
        if self._closed and not self._items:  # paused or not: nothing is held back
            self._raise_ended()
        raise trio.WouldBlock

    def _raise_ended(self) -> None:
        if self._error is not None:
            raise self._error
        raise trio.EndOfChannel

    async def get(self) -> T:
        """Take the oldest item, waiting while the queue is empty or paused. Always checks
        for cancellation; yields as the module docstring says.

        Any yield comes before the item is taken: once it is, ``get`` returns without
        yielding, so no other task ever sees the queue empty while the item is between the
        queue and its taker (the stream's flush on exit relies on that)."""
        if self._get_streak >= YIELD_EVERY:
            await trio.lowlevel.checkpoint()
            self._get_streak = 0
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        self._get_streak += 1
        while True:
            if self._items and not self._pausers:
                return self._take()
            if self._closed and not self._items:
                self._raise_ended()
            self._get_streak = 0
            await self._wait_for_item()  # (outside any except block: no exception chain)

    async def _wait_for_item(self) -> None:
        task = trio.lowlevel.current_task()
        getters = self._getters
        getters.append(task)

        def abort(_: object) -> trio.lowlevel.Abort:
            getters.remove(task)  # (a woken task is no longer listed: never aborted then)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def _wake_getters(self) -> None:
        while self._getters:
            trio.lowlevel.reschedule(self._getters.popleft())
