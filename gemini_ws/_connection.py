"""One WebSocket to the Live API: open, receive, send, heartbeat, close handshake, statistics.

A :class:`LiveConnection` runs no task of its own. The stream that uses it runs, in its own
nursery, the one task that reads it (:meth:`LiveConnection.receive`) and its heartbeat
(:meth:`LiveConnection.heartbeat`); an idle warm spare in the pool is read by nobody (a spare
receives nothing before its setup) and is checked with :meth:`LiveConnection.poll_dead`.

The heartbeat forgives both kinds of backpressure: while the application's buffer is full the
receiver does not read, so pongs cannot arrive; while a write waits for the socket the uplink is
the bottleneck, so a ping (written after the data ahead of it) and its pong are late for a reason
that is not a dead connection. Only a missing pong on a connection that was reading and writing
freely is a heartbeat timeout.
"""

from __future__ import annotations

import logging
import math
import os
import ssl
from collections.abc import Sequence

import attrs
import trio

from ._errors import (
    ConfigurationError,
    ConnectionLostError,
    ConnectTimeoutError,
    GeminiWSError,
    HeartbeatTimeoutError,
    InvalidArgumentError,
    MessageTooLargeError,
    PolicyViolationError,
    ProtocolError,
    ServerClosedError,
    ServerInternalError,
    StreamClosedError,
)
from ._ticks import wait_tick
from ._transport import Endpoint
from ._validate import validated
from ._websocket import TRANSPORTS, CloseInfo, Transport, WebSocketClosed, open_transport

__all__ = ["ConnectionOptions", "ConnectionStatistics", "LiveConnection", "error_for_close"]

logger = logging.getLogger("gemini_ws")


#: the transport used when none is named (the test suite runs against each in turn)
DEFAULT_TRANSPORT = TRANSPORTS[0]


def error_for_close(
    code: int, reason: str | None, *, resume_handle: str | None = None
) -> GeminiWSError:
    """The error for a close frame the server sent with *code* and *reason*."""
    cls: type[ServerClosedError] = {
        1007: InvalidArgumentError,
        1008: PolicyViolationError,
        1011: ServerInternalError,
    }.get(code, ServerClosedError)
    return cls(code, reason, resume_handle=resume_handle)


def error_for_end(
    info: CloseInfo, *, resume_handle: str | None = None, dead_after: float
) -> GeminiWSError:
    """The error for the end of a connection, by who ended it and how (*dead_after*: the
    ``TCP_USER_TIMEOUT`` the socket had, for the message of a socket that timed out)."""
    if info.by_peer:
        return error_for_close(info.code, info.reason, resume_handle=resume_handle)
    if info.by_us:
        return StreamClosedError("the connection was closed by this client")
    if info.code == 1009:
        return MessageTooLargeError(
            f"a message from the server was larger than max_message_size ({info.reason})",
            resume_handle=resume_handle,
        )
    if info.code == 1006 and info.timed_out:
        return HeartbeatTimeoutError(
            f"the server took none of the data sent for {dead_after:g} s (the socket timed "
            f"out): the connection is considered dead",
            resume_handle=resume_handle,
        )
    if info.code == 1006:
        return ConnectionLostError(
            "the connection was lost without a close frame", resume_handle=resume_handle
        )
    return ProtocolError(
        f"the server broke the WebSocket protocol ({info.code}: {info.reason}); "
        "the connection was closed",
        resume_handle=resume_handle,
    )


@validated
@attrs.frozen
class ConnectionOptions:
    """How to open and keep a connection (all times in seconds; ``None`` disables)."""

    connect_timeout: float = 10.0
    close_timeout: float = 3.0
    heartbeat_interval: float | None = 20.0
    heartbeat_timeout: float = 60.0
    max_message_size: int = 64 * 1024 * 1024
    receive_buffer_size: int = 64 * 1024
    ssl_context: ssl.SSLContext | None = None
    #: ``"websockets"`` (the default: websockets' sans-I/O protocol driven by our own
    #: receiver) or ``"trio-websocket"``
    transport: str = attrs.field(factory=lambda: DEFAULT_TRANSPORT)

    @transport.validator
    def _check_transport(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in TRANSPORTS:
            raise ConfigurationError(
                f"transport must be one of {', '.join(map(repr, TRANSPORTS))}, got {value!r:.40}"
            )


@validated
@attrs.frozen
class ConnectionStatistics:
    """A snapshot of one connection's counters (sizes are payload bytes)."""

    state: str
    messages_sent: int
    bytes_sent: int
    messages_received: int
    bytes_received: int
    pings_sent: int
    pongs_received: int
    last_heartbeat_rtt: float | None
    heartbeats_suspended: int
    time_to_open: float | None
    close_code: int | None
    close_reason: str | None


class LiveConnection:
    """One WebSocket connection to a Live endpoint. Not used directly by most applications:
    :meth:`Client.stream <gemini_ws.Client.stream>` opens and closes them."""

    def __init__(
        self,
        endpoint: Endpoint,
        headers: Sequence[tuple[str, str]],
        options: ConnectionOptions,
    ) -> None:
        self.endpoint = endpoint
        self._headers = tuple(headers)
        self.options = options
        self._ws: Transport | None = None
        self._state = "new"
        self._error: GeminiWSError | None = None
        self._close_lock = trio.Lock()
        # backpressure: set by the consumer while it cannot take more messages
        self._backpressure = False
        self._backpressure_ended_at = -math.inf
        self._heartbeats_suspended = 0
        self._messages_sent = 0
        self._bytes_sent = 0
        self._messages_received = 0
        self._bytes_received = 0
        self._pings_sent = 0
        self._pongs_received = 0
        self._last_rtt: float | None = None
        #: the ping waiting for its pong: (payload, set when it came, sent at)
        self._ping: tuple[bytes, trio.Event, float] | None = None
        self._time_to_open: float | None = None
        self.opened_at: float | None = None
        #: The newest resumption handle known on this connection (set by the stream).
        self.resume_handle: str | None = None
        #: True when the pool handed this connection out as a warm spare.
        self.was_spare = False

    def __repr__(self) -> str:
        return f"<LiveConnection {self.endpoint.url} {self.state}>"

    # --- lifetime ------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """``new``, ``connecting``, ``open``, ``closing`` or ``closed``."""
        if self._state == "open" and self._ws is not None and self._ws.closed is not None:
            return "closed"
        return self._state

    @property
    def is_open(self) -> bool:
        """True while messages can be sent and received. For a connection nobody reads (a
        warm spare, which receives nothing before its setup) the socket is polled: anything
        readable means the server is closing it."""
        ws = self._ws
        if self._state != "open" or self._error is not None or ws is None or not ws.is_open:
            return False
        return ws.reader_attached or not ws.poll_dead()

    async def open(self, nursery: trio.Nursery | None = None) -> LiveConnection:
        """TCP, TLS and the WebSocket upgrade, bounded by ``connect_timeout``. Raises one of
        our :class:`ConnectError` subclasses (the socket is closed on failure). The
        ``trio-websocket`` transport runs its reader in *nursery* (the Client's)."""
        self._state = "connecting"
        t0 = trio.current_time()
        try:
            with trio.fail_after(self.options.connect_timeout):
                self._ws = await open_transport(
                    self.options.transport,
                    self.endpoint,
                    nursery=nursery,
                    headers=self._headers,
                    ssl_context=self.options.ssl_context,
                    max_message_size=self.options.max_message_size,
                    # the kernel's half of the heartbeat: a peer that takes none of our
                    # bytes for that long is dead even while every write waits (no ping
                    # can go out then)
                    dead_after=(
                        None
                        if self.options.heartbeat_interval is None
                        else self.options.heartbeat_timeout
                    ),
                )
        except trio.TooSlowError:
            self._state = "closed"
            raise ConnectTimeoutError(
                f"connecting to {self.endpoint.host}:{self.endpoint.port} took longer "
                f"than {self.options.connect_timeout} s"
            ) from None
        except BaseException:
            self._state = "closed"
            raise
        self.opened_at = trio.current_time()
        self._time_to_open = self.opened_at - t0
        self._state = "open"
        return self

    async def aclose(self, code: int = 1000, reason: str = "") -> bool:
        """Close with a close handshake (*code*, default 1000), bounded by ``close_timeout``
        and shielded from cancellation; then close the socket. Idempotent. Returns True when
        the server answered the close (it read everything written before it)."""
        answered = False
        with trio.CancelScope(shield=True):
            async with self._close_lock:
                if self._ws is not None and self._state != "closed":
                    self._state = "closing"
                    try:
                        answered = await self._ws.aclose(
                            code, reason, bound=self.options.close_timeout
                        )
                    finally:
                        self._state = "closed"
                self._state = "closed"
        return answered

    async def abort(self, error: GeminiWSError | None = None) -> None:
        """Drop the connection at once without a close handshake (records *error*)."""
        if error is not None and self._error is None:
            self._error = error
        if self._ws is not None:
            await self._ws.abort()
        else:
            await trio.lowlevel.checkpoint()
        self._state = "closed"

    async def wait_closed(self) -> None:
        """Wait until the connection has ended (``aclose``, ``abort``, or an end seen by the
        task that reads it)."""
        while self._ws is not None and self._ws.closed is None:
            await self._ws.wait_ended()
        await trio.lowlevel.checkpoint()

    async def keep_warm(self) -> None:
        """Serve an idle warm spare until :meth:`stop_keeping`: read it (a close or a drop is
        noticed at once; a spare receives nothing before its setup, so any message means the
        server is misbehaving and the spare is dropped) and run the heartbeat, so a spare that
        stopped answering pings is found out while it waits, not by its next session."""
        ws = self._ws
        if ws is None or self._keeping_stopped:
            return  # handed out before this task started
        done = self._keeper_done = trio.Event()
        try:
            with trio.CancelScope() as scope:
                self._keeper_scope = scope
                ws.reader_attached = True
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self.heartbeat)
                    try:
                        await ws.receive()
                    except WebSocketClosed:
                        pass
                    else:
                        await self.abort(ConnectionLostError("the server wrote to an idle spare"))
                    nursery.cancel_scope.cancel()
        finally:
            ws.reader_attached = False
            self._keeper_scope = None
            done.set()

    async def stop_keeping(self) -> None:
        """End :meth:`keep_warm` (the connection is about to carry a session)."""
        self._keeping_stopped = True
        scope, done = self._keeper_scope, self._keeper_done
        if scope is not None and done is not None:
            scope.cancel()
            await done.wait()
        else:
            await trio.lowlevel.checkpoint()

    _keeping_stopped = False
    _keeper_scope: trio.CancelScope | None = None
    _keeper_done: trio.Event | None = None

    def attach_reader(self, attached: bool) -> None:
        """Called by the task that reads this connection when it starts and stops."""
        if self._ws is not None:
            self._ws.reader_attached = attached

    # --- I/O ---------------------------------------------------------------------------------
    def _ended_error(self, info: CloseInfo | None) -> GeminiWSError:
        if self._error is not None:
            return self._error
        if info is None:
            return ConnectionLostError("the connection is closed", resume_handle=self.resume_handle)
        return error_for_end(
            info, resume_handle=self.resume_handle, dead_after=self.options.heartbeat_timeout
        )

    def error(self) -> GeminiWSError | None:
        """The error that ended this connection, if it has ended."""
        if self._error is not None:
            return self._error
        if self._ws is not None and self._ws.closed is not None:
            return self._ended_error(self._ws.closed)
        return None

    async def send(self, message: str | bytes) -> None:
        """Send one WebSocket message (text for ``str``)."""
        ws = self._ws
        if ws is None or self._error is not None:
            raise self._ended_error(None if ws is None else ws.closed)
        try:
            await ws.send(message)
        except WebSocketClosed as exc:
            raise self._ended_error(exc.info) from None
        self._messages_sent += 1
        self._bytes_sent += len(message)

    async def receive(self) -> bytes:
        """Receive the next WebSocket message, or raise the error that ended the connection.
        Only one task may call it (the stream's receiver)."""
        ws = self._ws
        if ws is None:
            raise self._ended_error(None)
        try:
            message = await ws.receive()
        except WebSocketClosed as exc:
            raise self._ended_error(exc.info) from None
        self._messages_received += 1
        self._bytes_received += len(message)
        return message

    # --- heartbeat ---------------------------------------------------------------------------
    def set_backpressure(self, active: bool) -> None:
        """Called by the consumer: True while it cannot take more messages (its buffer is
        full). While that holds, pongs cannot be read and the heartbeat is suspended."""
        if self._backpressure and not active:
            self._backpressure_ended_at = trio.current_time()
        self._backpressure = active

    async def heartbeat(self) -> None:
        """Ping every ``heartbeat_interval`` with a random payload; abort the connection with
        :class:`HeartbeatTimeoutError` when a pong is missing for ``heartbeat_timeout`` on a
        connection that was not held up by backpressure either way. Returns when the connection
        ends; run it beside the reader.

        One timer per ping and no wake-up for its pong: the pong is looked at when the next
        ping is due (or the timeout, whichever comes first), so an idle connection costs one
        trip round the scheduler per interval.

        Pings go out on a grid shared by every connection with the same interval (multiples
        of it on trio's clock; the first between half an interval and one and a half after
        the open): many idle connections of a process wake together, once per interval,
        instead of each at its own moment (a wake from idle is the costly part of a ping)."""
        interval = self.options.heartbeat_interval
        ws = self._ws
        if interval is None or ws is None:
            return
        timeout = self.options.heartbeat_timeout
        next_ping = math.ceil((trio.current_time() + interval / 2) / interval) * interval
        while ws.closed is None:
            ping = self._ping
            if ping is None or next_ping <= ping[2] + timeout:
                await wait_tick(next_ping)  # (shared with every connection on the grid)
            else:
                await trio.sleep_until(ping[2] + timeout)
            if ws.closed is not None:
                return
            now = trio.current_time()
            if ping is not None and not self._take_pong() and now >= ping[2] + timeout:
                self._ping = None
                ws.forget_ping(ping[0])
                sent_at = ping[2]
                # held up either way: the app not reading (so neither is the stream), or the
                # uplink full around the ping (it may sit behind the send buffers); a write the
                # socket took at once says nothing (a peer that stopped reading still lets the
                # buffers fill for a while: an app streaming audio must not hide it)
                if (
                    self._backpressure
                    or self._backpressure_ended_at >= sent_at
                    or ws.writing_since is not None
                    or ws.last_slow_write_end >= sent_at - timeout
                ):
                    self._heartbeats_suspended += 1
                else:
                    await self.abort(
                        HeartbeatTimeoutError(
                            f"no pong within {timeout} s: the connection is considered dead",
                            resume_handle=self.resume_handle,
                        )
                    )
                    return
            if now < next_ping:
                continue
            next_ping = (math.floor(now / interval) + 1) * interval  # the next grid point
            if self._ping is not None:
                continue  # still waiting for the last pong (the timeout is the longer)
            if self._backpressure or ws.writing_since is not None:
                self._heartbeats_suspended += 1
                continue
            payload = os.urandom(8)
            try:
                pong = await ws.ping(payload)  # waits behind a write under way: not timed
            except WebSocketClosed:
                return
            self._ping = (payload, pong, trio.current_time())
            self._pings_sent += 1

    def _take_pong(self) -> bool:
        """Count the outstanding ping as answered if its pong came; True if it did."""
        ping = self._ping
        ws = self._ws
        if ping is None or ws is None or not ping[1].is_set() or ws.closed is not None:
            return False
        self._ping = None
        self._pongs_received += 1
        self._last_rtt = max(0.0, ws.last_pong_at - ping[2])
        return True

    def statistics(self) -> ConnectionStatistics:
        """An immutable snapshot of this connection's counters."""
        self._take_pong()  # (a pong that came since the heartbeat last looked)
        closed = self._ws.closed if self._ws is not None else None
        return ConnectionStatistics(
            state=self.state,
            messages_sent=self._messages_sent,
            bytes_sent=self._bytes_sent,
            messages_received=self._messages_received,
            bytes_received=self._bytes_received,
            pings_sent=self._pings_sent,
            pongs_received=self._pongs_received,
            last_heartbeat_rtt=self._last_rtt,
            heartbeats_suspended=self._heartbeats_suspended,
            time_to_open=self._time_to_open,
            close_code=closed.code if closed is not None else None,
            close_reason=closed.reason if closed is not None else None,
        )
