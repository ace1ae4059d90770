"""ConnectionPool: warm spare connections, limits, FIFO waiters, lazy expiry, handover slots.

A Live session carries conversation state, so a connection that ran a session is never handed
to another: the pool does not recycle connections, it keeps *warm spares* (TCP, TLS and the
WebSocket upgrade done, ``setup`` not yet sent). Checking one out takes connection set-up out of
the time to first chunk, and makes a goAway handover near-instant.

The pool is built the httpcore way. Its state is plain lists, changed only by synchronous code
between checkpoints (trio is single-threaded, so no lock is needed):

* ``idle``: spares as ``(connection, idle since)``, newest last;
* ``active``: connections checked out and not yet released;
* ``dials``: connections being opened, for a checkout or as a spare;
* ``held``: sessions between two connections (a goAway handover or a re-dial) that keep the
  slot of their old connection (see :meth:`ConnectionPool.checkout_replacement`);
* ``waiters``: checkouts queued, first in first out, while ``max_connections`` are in use.

Each of these holds one of the ``max_connections`` slots, so the count never exceeds the
limit. One pure function, :func:`decide`, reads that state and the time and says which waiters
get a connection (a spare, or a slot to dial), which spares to close (expired, dead) and how
many spares to open; the pool's methods apply the decision and do the I/O outside it (closing
in the client's nursery, shielded). A checkout cancelled at any point gives what it holds
back (see httpcore #1093 for the bug this avoids). Expiry is checked lazily whenever the pool is
touched; there is no reaper task.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

import attrs
import trio

from ._connection import LiveConnection
from ._errors import ConfigurationError, GeminiWSError, PoolTimeoutError, StreamClosedError
from ._validate import check_int, check_number, validated

__all__ = ["ConnectionPool", "Decision", "PoolStatistics", "check_pool_options", "decide"]

logger = logging.getLogger("gemini_ws")


@validated
@attrs.frozen
class PoolStatistics:
    """A snapshot of the pool: current counts and lifetime counters."""

    #: slots held by sessions (connections checked out, and sessions between two connections)
    active: int
    idle: int
    #: connections being opened (for a checkout, a handover or as a spare)
    connecting: int
    waiting: int
    pool_size: int
    max_connections: int | None
    #: checkouts (handovers included) served by a warm spare
    warm_checkouts: int
    #: checkouts (handovers included) that had to open a connection
    cold_checkouts: int
    #: spares found closed or dead on checkout, discarded and replaced unseen
    discarded_dead: int
    #: spares closed because they were idle longer than ``idle_timeout``
    expired: int
    #: spares that failed to open (the caller never saw these errors)
    spare_failures: int
    #: checkouts that gave up after ``pool_timeout``
    timeouts: int
    #: sessions between two connections, keeping their old connection's slot (counted in
    #: ``active``, or in ``connecting`` while their new connection opens)
    handing_over: int = 0
    #: connections handed out by :meth:`ConnectionPool.checkout_replacement`
    replacements: int = 0


def check_pool_options(
    pool_size: int, max_connections: int | None, idle_timeout: float, pool_timeout: float
) -> None:
    """Raise :class:`ConfigurationError` for pool options that make no sense (bools too)."""
    check_int("pool_size", pool_size)
    check_int("max_connections", max_connections, minimum=1, optional=True)
    if max_connections is not None and pool_size > max_connections:
        raise ConfigurationError("pool_size cannot exceed max_connections")
    check_number("idle_timeout", idle_timeout)
    check_number("pool_timeout", pool_timeout)


# --- the decision ---------------------------------------------------------------------------


class _Conn(Protocol):
    @property
    def is_open(self) -> bool: ...


C = TypeVar("C", bound=_Conn)
W = TypeVar("W")
R = TypeVar("R")


@attrs.frozen
class Decision(Generic[C, W, R]):
    """What :func:`decide` says the pool should do next."""

    #: replacement requests, each with a spare ``(connection, idle since)`` or ``None``: dial
    #: in the slot it inherited. Taking a spare gives the inherited slot back.
    replacements: tuple[tuple[R, tuple[C, float] | None], ...] = ()
    #: the first waiters, each with a spare or ``None``: dial in a free slot
    grants: tuple[tuple[W, tuple[C, float] | None], ...] = ()
    #: the spares that stay idle, newest last
    idle: tuple[tuple[C, float], ...] = ()
    #: spares to close: expired, dead, or every spare of a closed pool
    close: tuple[C, ...] = ()
    #: how many of ``close`` expired, and how many were found dead
    expired: int = 0
    dead: int = 0
    #: how many spares to start opening
    open_spares: int = 0


def decide(
    *,
    now: float,
    idle: Sequence[tuple[C, float]],
    waiters: Sequence[W],
    replacements: Sequence[R] = (),
    busy: int,
    spares_connecting: int,
    spare_target: int,
    max_connections: int | None,
    idle_timeout: float,
    closed: bool = False,
) -> Decision[C, W, R]:
    """The pool's next step, from its state and the time. Pure: no trio, no I/O, and the
    arguments are not changed.

    *idle* are the spares ``(connection, idle since)``, newest last; *waiters* the queued
    checkouts, first in first out; *replacements* the sessions asking for a new connection in
    the slot they hold (served first: they never queue). *busy* counts the slots held by
    everything but the idle spares (active connections, dials, sessions between connections);
    *spares_connecting* the spares being opened (part of *busy*). *spare_target* is how many
    spares should be idle or opening: ``pool_size`` once a checkout was served or a slot
    released, ``0`` while a checkout is being served or when only a dial ended (the pool never
    dials a spare beside a caller's dial, so a failing server is not dialled twice as often,
    nor again in a loop).

    Spares idle for longer than *idle_timeout*, and dead ones, are closed; live spares go out
    newest first (the oldest expire). Waiters are served in order and stop at the first that
    cannot be served; no spare is opened while anybody waits. Only idle and opening spares
    count towards *spare_target* (not active connections: httpcore #1000).
    """
    if closed:
        return Decision(close=tuple(conn for conn, _ in idle))
    keep: list[tuple[C, float]] = []
    close: list[C] = []
    expired = dead = 0
    for spare in idle:
        conn, since = spare
        if now - since > idle_timeout:
            expired += 1
            close.append(conn)
        elif not conn.is_open:
            dead += 1
            close.append(conn)
        else:
            keep.append(spare)
    free = (math.inf if max_connections is None else max_connections) - busy - len(keep)
    replaced: list[tuple[R, tuple[C, float] | None]] = []
    for request in replacements:
        if keep:
            replaced.append((request, keep.pop()))
            free += 1  # the spare had a slot of its own: the inherited one is given back
        else:
            replaced.append((request, None))
    grants: list[tuple[W, tuple[C, float] | None]] = []
    for waiter in waiters:
        if keep:
            grants.append((waiter, keep.pop()))
        elif free > 0:
            grants.append((waiter, None))
            free -= 1
        else:
            break
    # (a waiter left waiting means no spare and no free slot: no spare opens before it)
    open_spares = int(max(0, min(spare_target - len(keep) - spares_connecting, free)))
    return Decision(
        replacements=tuple(replaced),
        grants=tuple(grants),
        idle=tuple(keep),
        close=tuple(close),
        expired=expired,
        dead=dead,
        open_spares=open_spares,
    )


# --- the pool -------------------------------------------------------------------------------


class _Dial:
    """A slot taken by a connection being opened."""

    __slots__ = ("spare",)

    def __init__(self, *, spare: bool) -> None:
        self.spare = spare


class _Waiter:
    """A queued checkout; once granted it holds a spare or a dial."""

    __slots__ = ("dial", "event", "granted", "spare")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.granted = False
        self.spare: tuple[LiveConnection, float] | None = None
        self.dial: _Dial | None = None


class _Held:
    """A session between two connections, holding the slot of its old one."""

    __slots__ = ("dialing", "old")

    def __init__(self, old: LiveConnection) -> None:
        self.old = old
        self.dialing = False


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
        self._active: list[LiveConnection] = []
        self._dials: list[_Dial] = []
        self._held: list[_Held] = []
        self._waiters: list[_Waiter] = []
        self._spare_done = trio.Event()
        self._closed = False
        self._warm = 0
        self._cold = 0
        self._discarded = 0
        self._expired = 0
        self._spare_failures = 0
        self._timeouts = 0
        self._replacements = 0

    # --- state ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<ConnectionPool: {s.active} active, {s.idle} idle, "
            f"{s.connecting} connecting, {s.waiting} waiting>"
        )

    def statistics(self) -> PoolStatistics:
        """An immutable snapshot of the pool."""
        redialing = sum(h.dialing for h in self._held)
        return PoolStatistics(
            active=len(self._active) + len(self._held) - redialing,
            idle=len(self._idle),
            connecting=len(self._dials) + redialing,
            waiting=len(self._waiters),
            pool_size=self.pool_size,
            max_connections=self.max_connections,
            warm_checkouts=self._warm,
            cold_checkouts=self._cold,
            discarded_dead=self._discarded,
            expired=self._expired,
            spare_failures=self._spare_failures,
            timeouts=self._timeouts,
            handing_over=len(self._held),
            replacements=self._replacements,
        )

    def _decide(
        self, spare_target: int, replacement: _Held | None = None
    ) -> Decision[LiveConnection, _Waiter, _Held]:
        return decide(
            now=trio.current_time(),
            idle=self._idle,
            waiters=self._waiters,
            replacements=() if replacement is None else (replacement,),
            busy=len(self._active) + len(self._dials) + len(self._held),
            spares_connecting=sum(d.spare for d in self._dials),
            spare_target=spare_target,
            max_connections=self.max_connections,
            idle_timeout=self.idle_timeout,
            closed=self._closed,
        )

    def _apply(
        self, decision: Decision[LiveConnection, _Waiter, _Held]
    ) -> tuple[LiveConnection, ...]:
        """Make *decision* the state (no I/O, no checkpoint); returns the spares to close."""
        self._idle = list(decision.idle)
        self._expired += decision.expired
        self._discarded += decision.dead
        for held, spare in decision.replacements:
            if spare is not None:
                self._held.remove(held)
                self._hand_out(spare[0])
        for waiter, spare in decision.grants:
            if spare is not None:
                self._hand_out(spare[0])
            else:
                waiter.dial = _Dial(spare=False)
                self._dials.append(waiter.dial)
            waiter.spare = spare
            waiter.granted = True
            waiter.event.set()
        del self._waiters[: len(decision.grants)]  # the grants are the head of the queue
        for _ in range(decision.open_spares):
            dial = _Dial(spare=True)
            self._dials.append(dial)
            self._nursery.start_soon(self._open_spare, dial)
        if decision.expired or decision.dead:
            logger.debug(
                "pool: closing %d expired and %d dead spare(s)", decision.expired, decision.dead
            )
        return decision.close

    def _hand_out(self, conn: LiveConnection) -> None:
        conn.was_spare = True
        self._active.append(conn)
        self._warm += 1

    def _reconcile(self, spare_target: int) -> None:
        """Decide, apply, and close what is to be closed in the client's nursery."""
        for conn in self._apply(self._decide(spare_target)):
            self._nursery.start_soon(_close, conn)

    def refill(self) -> None:
        """Start opening spares until ``pool_size`` are idle or opening, within the limit
        (and after the waiters). Synchronous: the spares open in the client's nursery."""
        self._reconcile(self.pool_size)

    # --- checkout / release --------------------------------------------------------------
    async def checkout(self) -> LiveConnection:
        """A connection for a new session: a warm spare, or a new one. Waits (first in, first
        out) while ``max_connections`` are in use, up to ``pool_timeout``, then raises
        :class:`PoolTimeoutError` (a dial failure raises the dial's own error instead)."""
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise ConfigurationError("the pool is closed")
        waiter = _Waiter()
        self._waiters.append(waiter)
        try:
            with trio.fail_after(self.pool_timeout):
                self._reconcile(0)  # (the pool refills once this checkout is served)
                while not waiter.granted:
                    if self._closed:
                        raise ConfigurationError("the client is closed")
                    await waiter.event.wait()
        except trio.TooSlowError:
            self._withdraw(waiter)
            self._timeouts += 1
            raise PoolTimeoutError(
                f"no connection available within {self.pool_timeout} s "
                f"({self!r}; max_connections={self.max_connections})"
            ) from None
        except BaseException:
            self._withdraw(waiter)
            raise
        if waiter.spare is not None:
            self._reconcile(self.pool_size)  # refill
            spare = waiter.spare[0]
            with trio.CancelScope(shield=True):
                await spare.stop_keeping()
            return spare
        # We hold a slot (a dial): it is ours until the connection is open, and given back
        # whatever happens, including cancellation.
        assert waiter.dial is not None
        try:
            conn = await self._open()
        except BaseException:
            self._dials.remove(waiter.dial)
            self._reconcile(0)  # the slot goes to the next waiter
            raise
        self._dials.remove(waiter.dial)
        self._active.append(conn)
        self._cold += 1
        self._reconcile(self.pool_size)
        return conn

    def _withdraw(self, waiter: _Waiter) -> None:
        """A checkout gave up: leave the queue, or give back what it was granted."""
        if not waiter.granted:
            self._waiters.remove(waiter)
        elif waiter.spare is not None:  # granted, but the checkout never ran again
            conn, since = waiter.spare
            self._active.remove(conn)
            self._warm -= 1
            conn.was_spare = False
            self._idle.append((conn, since))
            self._idle.sort(key=lambda spare: spare[1])
        elif waiter.dial is not None:
            self._dials.remove(waiter.dial)
        self._reconcile(0)

    async def checkout_replacement(self, old: LiveConnection) -> LiveConnection:
        """A connection for the session now on *old* (a goAway handover or a re-dial), in the
        slot *old* holds.

        *old* must have been checked out of this pool (by :meth:`checkout` or an earlier
        replacement). From this call on, *old* no longer counts against ``max_connections``:
        the session holds its slot, and a later ``release(old)`` is a no-op once a
        replacement was returned. If *old* is still open, the caller closes it.

        This never queues behind waiting checkouts and never raises
        :class:`PoolTimeoutError`. It takes a warm spare when there is one (the inherited slot
        then goes to the first waiter), else it opens a connection in the inherited slot. If
        that fails (or is cancelled), the error propagates and the slot stays with the
        session: call ``checkout_replacement(old)`` again to retry, or ``release(old)`` to give
        the slot back. After a replacement was returned, the slot is the new connection's: to
        retry past a failed ``setup`` on it, call ``checkout_replacement(new)``.
        """
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise ConfigurationError("the client is closed")
        held = self._hold(old)
        if held.dialing:
            raise ConfigurationError("a replacement for this connection is already opening")
        decision = self._decide(0, replacement=held)
        for conn in self._apply(decision):
            self._nursery.start_soon(_close, conn)
        ((_, spare),) = decision.replacements
        if spare is not None:
            self._replacements += 1
            self._reconcile(self.pool_size)  # refill
            with trio.CancelScope(shield=True):
                await spare[0].stop_keeping()
            return spare[0]
        held.dialing = True
        try:
            conn = await self._open()
        finally:
            held.dialing = False
        if held not in self._held:  # released while the connection opened
            await _close(conn)  # here, not in the background: the stream waits for it
            raise StreamClosedError("the session was released while its new connection opened")
        self._held.remove(held)
        self._active.append(conn)
        self._cold += 1
        self._replacements += 1
        self._reconcile(self.pool_size)
        return conn

    def _hold(self, old: LiveConnection) -> _Held:
        """The slot *old*'s session holds between connections (moved out of ``active``)."""
        for held in self._held:
            if held.old is old:
                return held
        if old not in self._active:
            raise ConfigurationError(f"{old!r} is not checked out of this pool")
        self._active.remove(old)
        held = _Held(old)
        self._held.append(held)
        return held

    def note_dead_spare(self) -> None:
        """Count a spare that turned out dead only when its session was being set up (the
        server had dropped it and the client had not read that yet): it did not serve the
        checkout after all."""
        self._discarded += 1
        self._warm -= 1

    def release(self, conn: LiveConnection) -> None:
        """The session on *conn* is over (the caller closes it). Frees its slot; a no-op for a
        connection that holds none (released before, or replaced)."""
        if conn in self._active:
            self._active.remove(conn)
        else:
            held = next((h for h in self._held if h.old is conn), None)
            if held is None:
                return
            self._held.remove(held)
        self._reconcile(self.pool_size)

    # --- spares --------------------------------------------------------------------------
    async def _open_spare(self, dial: _Dial) -> None:
        conn: LiveConnection | None = None
        try:
            conn = await self._open()
        except GeminiWSError as exc:
            self._spare_failures += 1
            logger.debug("a spare connection failed to open: %s", exc)
        finally:
            self._dials.remove(dial)
            if conn is not None:
                self._idle.append((conn, trio.current_time()))
                # read and heartbeat it while it waits (stopped when it is handed out)
                self._nursery.start_soon(conn.keep_warm)
            self._reconcile(0)  # a waiter may take it (a closed pool closes it)
            self._spare_done.set()
            self._spare_done = trio.Event()

    async def prewarm(self, n: int) -> int:
        """Open spares until *n* are idle (within ``max_connections``, after any waiters) and
        wait for every spare being opened. Returns how many spares are idle afterwards."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigurationError(f"prewarm needs an int >= 0, got {n!r:.40}")
        if self._closed:
            raise ConfigurationError("the pool is closed")
        self._reconcile(n)
        while any(d.spare for d in self._dials):
            await self._spare_done.wait()
        await trio.lowlevel.checkpoint()
        return len(self._idle)

    async def aclose(self) -> None:
        """Close every idle spare (active connections belong to their streams) and wake the
        waiters, which raise ConfigurationError."""
        self._closed = True
        for waiter in self._waiters:
            waiter.event.set()
        with trio.CancelScope(shield=True):
            for conn in self._apply(self._decide(0)):
                await conn.aclose(1000)


async def _close(conn: LiveConnection) -> None:
    """Close a spare the pool let go (bounded by the connection's close timeout)."""
    with trio.CancelScope(shield=True):
        await conn.aclose(1000)
