"""ConnectionPool: warm spare connections, limits, FIFO waiters, lazy expiry.

A Live session carries conversation state, so a connection that ran a session is never handed
to another: the pool does not recycle connections, it keeps *warm spares* (TCP, TLS and the
WebSocket upgrade done, ``setup`` not yet sent). Checking one out takes connection set-up out of
the time to first chunk, and makes a goAway handover near-instant.

The state is plain counters and lists, changed only by synchronous code between checkpoints
(trio is single-threaded), so no lock is needed:

* ``idle``: spares, newest last, each stamped with the time it became idle;
* ``active``: connections checked out and not yet released;
* ``connecting``: connections being opened (for a caller or as a spare);
* ``waiters``: callers queued, first in first out, when ``max_connections`` is reached.

Every connection, whatever its state, holds one of the ``max_connections`` slots from the moment
it starts connecting until it is closed. A checkout cancelled at any point gives its slot back
(see httpcore #1093 for the bug this avoids). Expiry is checked lazily whenever the pool is
touched; there is no reaper task. Closing connections (I/O) happens in the client's nursery,
never while deciding.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable

import attrs
import trio

from ._connection import LiveConnection
from ._errors import ConfigurationError, GeminiWSError, PoolTimeoutError

__all__ = ["ConnectionPool", "PoolStatistics", "check_pool_options"]

logger = logging.getLogger("gemini_ws")


@attrs.frozen
class PoolStatistics:
    """A snapshot of the pool: current counts and lifetime counters."""

    active: int
    idle: int
    connecting: int
    waiting: int
    pool_size: int
    max_connections: int | None
    #: checkouts served by a warm spare
    warm_checkouts: int
    #: checkouts that had to open a connection
    cold_checkouts: int
    #: spares found closed or dead on checkout, discarded and replaced unseen
    discarded_dead: int
    #: spares closed because they were idle longer than ``idle_timeout``
    expired: int
    #: spares that failed to open (the caller never saw these errors)
    spare_failures: int
    #: checkouts that gave up after ``pool_timeout``
    timeouts: int


def check_pool_options(
    pool_size: int, max_connections: int | None, idle_timeout: float, pool_timeout: float
) -> None:
    """Raise :class:`ConfigurationError` for pool options that make no sense."""
    if not isinstance(pool_size, int) or pool_size < 0:
        raise ConfigurationError(f"pool_size must be an int >= 0, got {pool_size!r:.40}")
    if max_connections is not None and (
        not isinstance(max_connections, int) or max_connections < 1
    ):
        raise ConfigurationError(
            f"max_connections must be a positive int or None, got {max_connections!r:.40}"
        )
    if max_connections is not None and pool_size > max_connections:
        raise ConfigurationError("pool_size cannot exceed max_connections")
    for name, value in (("idle_timeout", idle_timeout), ("pool_timeout", pool_timeout)):
        if not isinstance(value, int | float) or not value > 0:
            raise ConfigurationError(f"{name} must be a positive number, got {value!r:.40}")


class _Waiter:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = trio.Event()


class ConnectionPool:
    """Warm spares and connection limits for one :class:`~gemini_ws.Client`."""

    def __init__(
        self,
        open_connection: Callable[[], Awaitable[LiveConnection]],
        nursery: trio.Nursery,
        *,
        pool_size: int = 0,
        max_connections: int | None = None,
        idle_timeout: float = 30.0,
        pool_timeout: float = 30.0,
    ) -> None:
        check_pool_options(pool_size, max_connections, idle_timeout, pool_timeout)
        self._open = open_connection
        self._nursery = nursery
        self.pool_size = pool_size
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.pool_timeout = pool_timeout
        self._idle: list[tuple[LiveConnection, float]] = []
        self._active: set[LiveConnection] = set()
        self._connecting = 0
        self._spares_connecting = 0
        self._waiters: deque[_Waiter] = deque()
        self._spare_done = trio.Event()
        self._closed = False
        self._warm = 0
        self._cold = 0
        self._discarded = 0
        self._expired = 0
        self._spare_failures = 0
        self._timeouts = 0

    # --- state ---------------------------------------------------------------------------
    def _total(self) -> int:
        return len(self._idle) + len(self._active) + self._connecting

    def _has_room(self) -> bool:
        limit = math.inf if self.max_connections is None else self.max_connections
        return self._total() < limit

    def __repr__(self) -> str:
        return (
            f"<ConnectionPool: {len(self._active)} active, {len(self._idle)} idle, "
            f"{self._connecting} connecting, {len(self._waiters)} waiting>"
        )

    def statistics(self) -> PoolStatistics:
        """An immutable snapshot of the pool."""
        return PoolStatistics(
            active=len(self._active),
            idle=len(self._idle),
            connecting=self._connecting,
            waiting=len(self._waiters),
            pool_size=self.pool_size,
            max_connections=self.max_connections,
            warm_checkouts=self._warm,
            cold_checkouts=self._cold,
            discarded_dead=self._discarded,
            expired=self._expired,
            spare_failures=self._spare_failures,
            timeouts=self._timeouts,
        )

    def _wake_head(self) -> None:
        if self._waiters:
            self._waiters[0].event.set()

    def _close_later(self, conn: LiveConnection) -> None:
        """Close *conn* in the client's nursery (I/O stays out of the decision code)."""
        self._nursery.start_soon(conn.aclose, 1000, None)

    def _expire(self) -> None:
        """Drop spares idle for longer than ``idle_timeout``, and dead ones (lazy check)."""
        now = trio.current_time()
        keep: list[tuple[LiveConnection, float]] = []
        for conn, since in self._idle:
            if now - since > self.idle_timeout:
                self._expired += 1
                self._close_later(conn)
            elif not conn.is_open:
                self._discarded += 1
                self._close_later(conn)
            else:
                keep.append((conn, since))
        if len(keep) != len(self._idle):
            self._idle = keep
            self._wake_head()

    def _take_spare(self) -> LiveConnection | None:
        self._expire()
        while self._idle:
            conn, _ = self._idle.pop()  # newest first: the oldest expire
            if conn.is_open:
                conn.was_spare = True
                return conn
            self._discarded += 1
            self._close_later(conn)
        return None

    # --- checkout / release --------------------------------------------------------------
    async def checkout(self) -> LiveConnection:
        """A connection for a new session: a warm spare, or a new one. Waits (first in, first
        out) while ``max_connections`` are in use, up to ``pool_timeout``."""
        if self._closed:
            raise ConfigurationError("the pool is closed")
        waiter = _Waiter()
        self._waiters.append(waiter)
        try:
            with trio.fail_after(self.pool_timeout):
                while True:
                    if self._closed:
                        raise ConfigurationError("the client is closed")
                    if self._waiters[0] is waiter:
                        spare = self._take_spare()
                        if spare is not None:
                            self._active.add(spare)
                            self._warm += 1
                            break
                        if self._has_room():
                            self._connecting += 1
                            spare = None
                            break
                    await waiter.event.wait()
                    waiter.event = trio.Event()
        except trio.TooSlowError:
            self._timeouts += 1
            raise PoolTimeoutError(
                f"no connection available within {self.pool_timeout} s "
                f"({self!r}; max_connections={self.max_connections})"
            ) from None
        finally:
            self._waiters.remove(waiter)
            self._wake_head()
        if spare is not None:
            self._refill()
            return spare
        # We hold a slot (counted in _connecting): it is ours until the connection is open,
        # and given back whatever happens, including cancellation.
        try:
            conn = await self._open()
        except BaseException:
            self._connecting -= 1
            self._wake_head()
            raise
        self._connecting -= 1
        self._active.add(conn)
        self._cold += 1
        self._refill()
        return conn

    def note_dead_spare(self) -> None:
        """Count a spare that turned out dead only when its session was being set up (the
        server had dropped it and the client had not read that yet): it did not serve the
        checkout after all."""
        self._discarded += 1
        self._warm -= 1

    def release(self, conn: LiveConnection) -> None:
        """The session on *conn* is over (the caller closes it). Frees its slot."""
        if conn in self._active:
            self._active.discard(conn)
            self._wake_head()
            self._refill()

    # --- spares --------------------------------------------------------------------------
    def _refill(self) -> None:
        """Start opening spares until ``pool_size`` are idle or connecting, within limits.
        Waiters come first: no spare is opened while somebody waits for a slot."""
        if self._closed:
            return
        while (
            len(self._idle) + self._spares_connecting < self.pool_size
            and self._has_room()
            and not self._waiters
        ):
            self._connecting += 1
            self._spares_connecting += 1
            self._nursery.start_soon(self._open_spare)

    async def _open_spare(self) -> None:
        conn: LiveConnection | None = None
        try:
            conn = await self._open()
        except GeminiWSError as exc:
            self._spare_failures += 1
            logger.debug("a spare connection failed to open: %s", exc)
        finally:
            self._connecting -= 1
            self._spares_connecting -= 1
            if conn is not None:
                if self._closed:
                    self._close_later(conn)
                else:
                    self._idle.append((conn, trio.current_time()))
            self._wake_head()
            self._spare_done.set()
            self._spare_done = trio.Event()

    async def prewarm(self, n: int) -> int:
        """Open spares until *n* are idle (within ``max_connections``) and wait for every spare
        being opened. Returns how many spares are idle afterwards."""
        if not isinstance(n, int) or n < 0:
            raise ConfigurationError(f"prewarm needs an int >= 0, got {n!r:.40}")
        self._expire()
        while len(self._idle) + self._spares_connecting < n and self._has_room():
            self._connecting += 1
            self._spares_connecting += 1
            self._nursery.start_soon(self._open_spare)
        while self._spares_connecting:
            await self._spare_done.wait()
        return len(self._idle)

    async def aclose(self) -> None:
        """Close every idle spare (active connections belong to their streams)."""
        self._closed = True
        for waiter in self._waiters:
            waiter.event.set()
        idle, self._idle = self._idle, []
        with trio.CancelScope(shield=True):
            for conn, _ in idle:
                await conn.aclose()
