"""One WebSocket to the Live API: open, setup handshake, heartbeat, close handshake, statistics.

A :class:`LiveConnection` is served by :meth:`LiveConnection.run`, a task started with
``nursery.start`` in the client's nursery. It returns (through ``task_status``) once TCP, TLS
and the WebSocket upgrade are done, and from then on never raises into that nursery: a failure
is recorded and handed to whoever sends or receives next, as one of our errors.

Tasks per connection: trio-websocket's reader (the one task that reads the socket; it answers
pings itself) and our heartbeat. The stream above drains messages as fast as they arrive into a
byte-bounded buffer, so the reader is only held up when that buffer is full; the heartbeat knows
and is suspended rather than declaring the connection dead.
"""

from __future__ import annotations

import logging
import math
import os
import ssl
from collections.abc import Sequence

import attrs
import trio
import trio_websocket

from ._errors import (
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    GeminiWSError,
    HeartbeatTimeoutError,
    InvalidArgumentError,
    MessageTooLargeError,
    PolicyViolationError,
    ServerClosedError,
    ServerInternalError,
    StreamClosedError,
)
from ._transport import (
    Endpoint,
    MessageTap,
    Sink,
    open_websocket_stream,
    translate_reader_error,
)

__all__ = ["ConnectionOptions", "ConnectionStatistics", "LiveConnection", "error_for_close"]

logger = logging.getLogger("gemini_ws")

_LOCAL_TOO_BIG = "Exceeded maximum message size"


def error_for_close(
    code: int, reason: str | None, *, resume_handle: str | None = None
) -> GeminiWSError:
    """The error for a WebSocket close with *code* and *reason* (1006: no close frame)."""
    if code == 1006:
        return ConnectionLostError(
            "the connection was lost without a close frame", resume_handle=resume_handle
        )
    if code == 1009 and reason and reason.startswith(_LOCAL_TOO_BIG):
        return MessageTooLargeError(
            f"a message from the server was larger than max_message_size ({reason})",
            resume_handle=resume_handle,
        )
    cls: type[ServerClosedError] = {
        1007: InvalidArgumentError,
        1008: PolicyViolationError,
        1011: ServerInternalError,
    }.get(code, ServerClosedError)
    return cls(code, reason, resume_handle=resume_handle)


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


@attrs.frozen
class ConnectionStatistics:
    """A snapshot of one connection's counters (sizes are payload bytes, or characters for
    text frames)."""

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
        self._ws: trio_websocket.WebSocketConnection | None = None
        self._tap: MessageTap | None = None
        self._stream: trio.abc.Stream | None = None
        self._state = "new"
        self._error: GeminiWSError | None = None
        self._closing = False
        self._close_requested = trio.Event()
        self._done = trio.Event()
        self._close_lock = trio.Lock()
        self._cancel_scope: trio.CancelScope | None = None
        # backpressure: set by the consumer while it cannot take more messages
        self._backpressure = False
        self._backpressure_ended_at = -math.inf
        self._heartbeats_suspended = 0
        # counters
        self._messages_sent = 0
        self._bytes_sent = 0
        self._messages_received = 0
        self._bytes_received = 0
        self._pings_sent = 0
        self._pongs_received = 0
        self._last_rtt: float | None = None
        self._time_to_open: float | None = None
        self.opened_at: float | None = None
        #: The newest resumption handle known on this connection (set by the stream).
        self.resume_handle: str | None = None
        #: True when the pool handed this connection out as a warm spare.
        self.was_spare = False

    def __repr__(self) -> str:
        return f"<LiveConnection {self.endpoint.url} {self._state}>"

    # --- lifetime ------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """``new``, ``connecting``, ``open``, ``closing`` or ``closed``."""
        return self._state

    @property
    def is_open(self) -> bool:
        """True while messages can be sent and received."""
        return self._state == "open" and self._error is None and self._ws is not None and (
            self._ws.closed is None
        )

    async def run(self, *, task_status: trio.TaskStatus[LiveConnection]) -> None:
        """Open the connection, report it through *task_status*, then serve it until closed.

        Raises (before ``task_status.started``) one of our :class:`ConnectError` subclasses;
        after that it never raises except for cancellation.
        """
        started = False
        self._state = "connecting"
        t0 = trio.current_time()
        try:
            async with trio.open_nursery() as inner:
                self._cancel_scope = inner.cancel_scope
                try:
                    with trio.fail_after(self.options.connect_timeout):
                        self._ws, self._stream, self._tap = await open_websocket_stream(
                            inner,
                            self.endpoint,
                            headers=self._headers,
                            ssl_context=self.options.ssl_context,
                            max_message_size=self.options.max_message_size,
                            receive_buffer_size=self.options.receive_buffer_size,
                        )
                except trio.TooSlowError:
                    raise ConnectTimeoutError(
                        f"connecting to {self.endpoint.host}:{self.endpoint.port} took longer "
                        f"than {self.options.connect_timeout} s"
                    ) from None
                self.opened_at = trio.current_time()
                self._time_to_open = self.opened_at - t0
                self._state = "open"
                if self.options.heartbeat_interval is not None:
                    inner.start_soon(self._heartbeat, self.options.heartbeat_interval)
                started = True
                task_status.started(self)
                await self._close_requested.wait()
                inner.cancel_scope.cancel()
        except BaseException as exc:  # translated or recorded below
            error = _single_error(exc)
            if isinstance(error, trio.Cancelled) or not isinstance(error, Exception):
                raise
            translated = translate_reader_error(error)
            if not started:
                if isinstance(translated, GeminiWSError):
                    raise translated from None
                raise ConnectError(f"could not open the connection: {translated!r}") from exc
            logger.debug("connection task ended with %r", translated)
            if self._error is None and isinstance(translated, GeminiWSError):
                self._error = translated
        finally:
            self._state = "closed"
            if self._stream is not None:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(self._stream)
            self._done.set()

    async def wait_closed(self) -> None:
        """Wait until the connection's task has finished and its socket is closed."""
        await self._done.wait()

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Close with a close handshake (*code*, default 1000), bounded by ``close_timeout`` and
        shielded from cancellation; then close the socket. Idempotent."""
        with trio.CancelScope(shield=True):
            async with self._close_lock:
                if self._ws is not None and not self._closing:
                    self._closing = True
                    self._state = "closing"
                    with trio.move_on_after(self.options.close_timeout):
                        await self._ws.aclose(code, reason)
                self._closing = True
                self._close_requested.set()
                if self._cancel_scope is not None:
                    self._cancel_scope.cancel()
                if self._state != "new":
                    with trio.move_on_after(self.options.close_timeout):
                        await self._done.wait()

    async def abort(self, error: GeminiWSError | None = None) -> None:
        """Drop the connection at once without a close handshake (records *error*)."""
        if error is not None and self._error is None:
            self._error = error
        self._closing = True
        if self._stream is not None:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)
        self._close_requested.set()

    # --- I/O ---------------------------------------------------------------------------------
    def _closed_error(self, exc: trio_websocket.ConnectionClosed | None) -> GeminiWSError:
        if self._error is not None:
            return self._error
        reason = exc.reason if exc is not None else (self._ws.closed if self._ws else None)
        if self._closing:
            return StreamClosedError("the connection was closed by this client")
        if reason is None:
            return ConnectionLostError("the connection is closed", resume_handle=self.resume_handle)
        return error_for_close(reason.code, reason.reason, resume_handle=self.resume_handle)

    def error(self) -> GeminiWSError | None:
        """The error that ended this connection, if it has ended."""
        if self._error is not None:
            return self._error
        if self._ws is not None and self._ws.closed is not None:
            return self._closed_error(None)
        return None

    async def send(self, message: str | bytes) -> None:
        """Send one WebSocket message (text for ``str``)."""
        ws = self._ws
        if ws is None or self._error is not None:
            raise self._closed_error(None)
        try:
            await ws.send_message(message)
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed_error(exc) from None
        self._messages_sent += 1
        self._bytes_sent += len(message)

    async def receive(self) -> str | bytes:
        """Receive the next WebSocket message, or raise the error that ended the connection."""
        ws = self._ws
        if ws is None:
            raise self._closed_error(None)
        try:
            message = await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed_error(exc) from None
        self._messages_received += 1
        self._bytes_received += len(message)
        return message

    def receive_nowait(self) -> str | bytes | None:
        """A message already waiting in trio-websocket's queue, or None."""
        ws = self._ws
        if ws is None:
            return None
        try:
            message = ws._recv_channel.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            return None
        self._messages_received += 1
        self._bytes_received += len(message)
        return message

    def set_sink(self, sink: Sink | None) -> None:
        """Hand every further message straight to *sink* (run in the reader task) instead of
        queueing it for :meth:`receive`; ``None`` restores queueing. :meth:`receive` still
        raises the error that ends the connection."""
        if self._tap is None:
            return
        if sink is None:
            self._tap.sink = None
            return

        async def counting(message: str | bytes) -> None:
            self._messages_received += 1
            self._bytes_received += len(message)
            await sink(message)

        self._tap.sink = counting

    # --- heartbeat ---------------------------------------------------------------------------
    def set_backpressure(self, active: bool) -> None:
        """Called by the consumer: True while it cannot take more messages (its buffer is
        full). While that holds, pongs cannot be read and the heartbeat is suspended."""
        if self._backpressure and not active:
            self._backpressure_ended_at = trio.current_time()
        self._backpressure = active

    async def _heartbeat(self, interval: float) -> None:
        ws = self._ws
        assert ws is not None
        timeout = self.options.heartbeat_timeout
        while True:
            await trio.sleep(interval)
            if self._backpressure:
                self._heartbeats_suspended += 1
                continue
            payload = os.urandom(8)
            sent_at = trio.current_time()
            self._pings_sent += 1
            with trio.move_on_after(timeout) as scope:
                try:
                    await ws.ping(payload)
                except trio_websocket.ConnectionClosed:
                    return
            if not scope.cancelled_caught:
                self._pongs_received += 1
                self._last_rtt = trio.current_time() - sent_at
                continue
            ws._pings.pop(payload, None)  # trio-websocket leaves a cancelled ping registered
            if self._backpressure or self._backpressure_ended_at >= sent_at:
                self._heartbeats_suspended += 1
                continue
            await self.abort(
                HeartbeatTimeoutError(
                    f"no pong within {timeout} s: the connection is considered dead",
                    resume_handle=self.resume_handle,
                )
            )
            return

    def statistics(self) -> ConnectionStatistics:
        """An immutable snapshot of this connection's counters."""
        closed = self._ws.closed if self._ws is not None else None
        return ConnectionStatistics(
            state=self._state,
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


def _single_error(exc: BaseException) -> BaseException:
    """Unwrap nested exception groups holding one real error (Cancelled ones dropped)."""
    while isinstance(exc, BaseExceptionGroup):
        real = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        if len(real) == 1:
            exc = real[0]
        elif not real:
            return exc.exceptions[0]
        else:
            return exc
    return exc
