"""The ``trio-websocket`` transport: the same interface as :class:`~gemini_ws._websocket.WebSocket`
over trio-websocket's public API (``wrap_client_stream``, ``get_message``, ``send_message``,
``ping``, ``aclose``, ``closed``).

We still open the byte stream ourselves (TCP with ``TCP_NODELAY``, TLS with the handshake forced,
our own connect errors), then hand it to trio-websocket. trio-websocket reads the socket in a
background task of its own, which needs a nursery that outlives the call that opened the
connection: each connection gets a host task in the nursery it is given (the Client's), holding a
nursery for that reader and for pings; closing or aborting the connection ends the host task and
waits for it, so no task of a connection outlives it.

Where trio-websocket cannot say what our own transport says, this one is honest about it:

* A close code the wire protocol library (wsproto) does not know, such as 1014, is a protocol
  error to it: the stream ends with ``ProtocolError`` (1002) instead of the server's code, and
  is not resumed.
* A close frame wsproto cannot parse (a reason that is not UTF-8) reads as the server's 1007
  (``InvalidArgumentError``): trio-websocket hands wsproto's own close on as if the server had
  sent it.
* A 1009 close is reported as our own oversize (``MessageTooLargeError``), whichever side sent
  it: trio-websocket does not say who closed.
* After our own close frame, messages the server still sends are discarded (trio-websocket closes
  its queue when the local side closes).
* A write cancelled before its first byte leaves the connection whole; one cancelled while it
  waited for the socket may have written part of a frame: the connection is aborted and the
  message counts as unsent (as with our own transport).
* Pongs are written by trio-websocket's reader under its write lock: a blocked uplink delays them
  (the heartbeat forgives that).
"""

from __future__ import annotations

import contextlib
import math
import ssl
from collections.abc import Iterable

import trio
import trio_websocket

from ._errors import (
    ConnectError,
    ConnectionLostError,
    GeminiWSError,
    HandshakeRejectedError,
    leaves,
)
from ._transport import ByteStream, Endpoint, open_byte_stream, timed_out
from ._websocket import SLOW_WRITE, CloseInfo, WebSocketClosed

__all__ = ["TrioWebSocket"]

#: messages trio-websocket may hold before its reader waits for ours (its default, 1, makes
#: every message a task switch)
_QUEUE = 64
_READ_SIZE = 256 * 1024


class _WatchedStream(trio.abc.Stream):
    """The byte stream handed to trio-websocket, watched: it tells whether a write was under
    way when it failed (a cancel that came before any byte leaves the connection whole), and
    since when a write has been waiting for the socket (for the heartbeat), and whether the
    kernel gave up on the socket (``timed_out``: see :mod:`gemini_ws._transport`)."""

    def __init__(self, inner: ByteStream) -> None:
        self.inner = inner
        self.torn = False
        self.timed_out = False
        self.writing_since: float | None = None
        self.last_slow_write_end = -math.inf

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()  # a cancel here writes nothing
        self.writing_since = trio.current_time()
        try:
            await self.inner.send_all(data)
        except BaseException as exc:
            self.torn = True  # part of a frame may be on the wire
            self.timed_out = self.timed_out or timed_out(exc)
            raise
        finally:
            end = trio.current_time()
            if end - self.writing_since >= SLOW_WRITE:
                self.last_slow_write_end = end
            self.writing_since = None

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        try:
            return await self.inner.receive_some(max_bytes)
        except BaseException as exc:
            self.timed_out = self.timed_out or timed_out(exc)
            raise

    async def aclose(self) -> None:
        await self.inner.aclose()


class TrioWebSocket:
    """One client WebSocket over trio-websocket (see the module docstring)."""

    def __init__(self, conn: trio_websocket.WebSocketConnection, stream: _WatchedStream) -> None:
        #: when the pong of the last answered ping arrived
        self.last_pong_at = -math.inf
        self._conn = conn
        self._stream = stream
        self._closed: CloseInfo | None = None
        self._ended = trio.Event()
        self._we_closed = False
        self._broken = False
        self._pings: dict[bytes, tuple[trio.Event, trio.CancelScope]] = {}
        self._tasks: trio.Nursery | None = None
        self._finish = trio.Event()
        self._host_done = trio.Event()
        self.reader_attached = False

    @property
    def writing_since(self) -> float | None:
        """When the write waiting for the socket started (None while none waits)."""
        return self._stream.writing_since

    @property
    def last_slow_write_end(self) -> float:
        """When the last write that had to wait for the socket finished."""
        return self._stream.last_slow_write_end

    # --- opening -------------------------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        endpoint: Endpoint,
        *,
        headers: Iterable[tuple[str, str]],
        ssl_context: ssl.SSLContext | None,
        max_message_size: int,
        nursery: trio.Nursery | None,
        dead_after: float | None = None,
    ) -> TrioWebSocket:
        """TCP (+TLS), then the upgrade through trio-websocket. The caller bounds the call.
        *dead_after*: see :func:`~gemini_ws._transport.open_byte_stream`."""
        if nursery is None:
            raise ConnectError("the trio-websocket transport needs the Client's nursery")
        stream = _WatchedStream(
            await open_byte_stream(endpoint, ssl_context, dead_after=dead_after)
        )
        extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        try:
            ws: TrioWebSocket = await nursery.start(
                cls._host, stream, endpoint, extra, max_message_size
            )
        except BaseException as exc:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
            raise _handshake_error(exc, endpoint) from None
        return ws

    @classmethod
    async def _host(
        cls,
        stream: _WatchedStream,
        endpoint: Endpoint,
        extra: list[tuple[bytes, bytes]],
        max_message_size: int,
        *,
        task_status: trio.TaskStatus[TrioWebSocket] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        ws: TrioWebSocket | None = None
        try:
            async with trio.open_nursery() as tasks:
                conn = await trio_websocket.wrap_client_stream(
                    tasks,
                    stream,  # type: ignore[arg-type]  # any trio Stream is served
                    endpoint.host_header,
                    endpoint.resource,
                    extra_headers=extra,
                    message_queue_size=_QUEUE,
                    max_message_size=max_message_size,
                    receive_buffer_size=_READ_SIZE,
                )
                ws = cls(conn, stream)
                ws._tasks = tasks
                task_status.started(ws)
                await ws._finish.wait()
                tasks.cancel_scope.cancel()
        except BaseException as exc:
            if ws is None:
                raise  # before started: nursery.start raises it in connect
            # cancelled (the Client is closing), or trio-websocket's reader failed after the
            # upgrade: either way the connection is over
            ws._broken = True
            ws._end(CloseInfo(1006, "", by_peer=False, timed_out=stream.timed_out))
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
            if _only_cancelled(exc):
                raise
        finally:
            if ws is not None:
                ws._host_done.set()

    # --- state -----------------------------------------------------------------------------
    @property
    def closed(self) -> CloseInfo | None:
        """How the connection ended, once it has."""
        return self._closed

    @property
    def is_open(self) -> bool:
        """True while messages can be sent and received."""
        return self._closed is None and self._conn.closed is None and not self._broken

    async def wait_ended(self) -> None:
        """Wait until the connection has ended."""
        await self._ended.wait()

    def poll_dead(self) -> bool:
        """True once trio-websocket's own reader saw the connection end. Does not block."""
        return self._closed is not None or self._broken or self._conn.closed is not None

    def _info(self, reason: trio_websocket.CloseReason | None) -> CloseInfo:
        timed_out = self._stream.timed_out
        if reason is None:
            return CloseInfo(1006, "", by_peer=False, by_us=self._we_closed, timed_out=timed_out)
        code, text = int(reason.code), reason.reason or ""
        if self._we_closed:
            return CloseInfo(code, text, by_peer=False, by_us=True)
        if code == 1006:
            return CloseInfo(code, text, by_peer=False, timed_out=timed_out)
        # 1006 is trio-websocket's own record of a drop; 1002 is a protocol error (wsproto's
        # own, or the server saying we broke the protocol: a ProtocolError either way); 1009 is
        # most likely its own oversize check (see the module docstring)
        return CloseInfo(code, text, by_peer=code not in (1002, 1006, 1009))

    def _end(self, info: CloseInfo) -> None:
        if self._closed is None:
            self._closed = info
            self._ended.set()
            for event, scope in self._pings.values():
                scope.cancel()
                event.set()
            self._pings.clear()

    # --- receiving (one task) ------------------------------------------------------------
    async def receive(self) -> bytes:
        """The next complete message as bytes; :class:`WebSocketClosed` at the end."""
        if self._closed is not None:
            await trio.lowlevel.checkpoint()
            raise WebSocketClosed(self._closed)
        try:
            message = await self._conn.get_message()
        except trio_websocket.ConnectionClosed as exc:
            self._end(self._info(exc.reason))
            assert self._closed is not None
            raise WebSocketClosed(self._closed) from None
        return message.encode() if isinstance(message, str) else message

    # --- sending ---------------------------------------------------------------------------
    async def send(self, data: str | bytes) -> None:
        """Send one message (text for ``str``)."""
        if not self.is_open:
            await trio.lowlevel.checkpoint()
            raise WebSocketClosed(self._closed or self._info(self._conn.closed))
        try:
            await self._conn.send_message(data)
        except trio_websocket.ConnectionClosed as exc:
            self._end(self._info(exc.reason))
            assert self._closed is not None
            raise WebSocketClosed(self._closed) from None
        except BaseException as exc:
            if isinstance(exc, trio.Cancelled) and not self._stream.torn:
                raise  # cancelled before any byte was written: the connection is whole
            # part of a frame may be on the wire: never write on this connection again
            self._broken = True
            await self._stop(CloseInfo(1006, "", by_peer=False, by_us=True))
            if isinstance(exc, GeminiWSError | trio.Cancelled | KeyboardInterrupt):
                raise
            raise WebSocketClosed(CloseInfo(1006, "", by_peer=False)) from None

    async def ping(self, payload: bytes) -> trio.Event:
        """Send a ping; the event is set when its pong arrives (or the connection ends)."""
        if not self.is_open or self._tasks is None:
            await trio.lowlevel.checkpoint()
            raise WebSocketClosed(self._closed or self._info(self._conn.closed))
        event = trio.Event()
        scope = trio.CancelScope()
        self._pings[payload] = (event, scope)

        async def wait_for_pong() -> None:
            with scope:
                with contextlib.suppress(trio_websocket.ConnectionClosed):
                    await self._conn.ping(payload)
                    self.last_pong_at = trio.current_time()
            self._pings.pop(payload, None)
            event.set()

        self._tasks.start_soon(wait_for_pong)
        await trio.lowlevel.checkpoint()
        return event

    def forget_ping(self, payload: bytes) -> None:
        """Stop waiting for the pong of *payload*."""
        entry = self._pings.pop(payload, None)
        if entry is not None:
            entry[1].cancel()

    # --- closing ---------------------------------------------------------------------------
    async def aclose(self, code: int = 1000, reason: str = "", *, bound: float) -> bool:
        """Close handshake bounded by *bound* seconds (shielded); True when a close frame came
        from the peer (the answer to ours, or its own close)."""
        with trio.CancelScope(shield=True):
            if self._closed is not None or self._broken:
                await self._stop(self._closed or CloseInfo(1006, "", by_peer=False, by_us=True))
                return bool(self._closed and self._closed.by_peer)
            conn = self._conn
            before = conn.closed
            answered = False
            if before is not None:
                # the peer closed first (or the connection dropped): nothing to hand-shake
                info = self._info(before)
                answered = info.by_peer
            else:
                self._we_closed = True
                with trio.move_on_after(bound):
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(conn.aclose, code, reason or None)
                        # trio-websocket records a placeholder reason (1000) when it starts
                        # our close, and replaces it with the peer's when the answer comes
                        # (no event to wait for: the child task sets it on its first step)
                        while (placeholder := conn.closed) is None:
                            await trio.lowlevel.checkpoint()
                answered = conn.closed is not placeholder
                info = CloseInfo(
                    int(conn.closed.code) if conn.closed is not None else 1006,
                    (conn.closed.reason or "") if conn.closed is not None else "",
                    by_peer=answered,
                    by_us=True,
                )
            await self._stop(info)
        return answered

    async def abort(self) -> None:
        """Drop the connection at once, without a close handshake."""
        self._we_closed = True
        self._broken = True
        await self._stop(CloseInfo(1006, "", by_peer=False, by_us=True))

    async def _stop(self, info: CloseInfo) -> None:
        self._end(info)
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self._stream)
            self._finish.set()
            await self._host_done.wait()


def _only_cancelled(exc: BaseException) -> bool:
    return all(isinstance(e, trio.Cancelled) for e in leaves(exc))


def _handshake_error(exc: BaseException, endpoint: Endpoint) -> BaseException:
    """The error for a failed upgrade (*exc* may be an exception group from the reader)."""
    members = leaves(exc)
    real = [e for e in members if not isinstance(e, trio.Cancelled)]
    if not real:
        return members[0]
    first = real[0]
    if isinstance(first, trio_websocket.ConnectionRejected):
        body = (first.body or b"").decode("utf-8", "replace")
        return HandshakeRejectedError(first.status_code, body)
    if isinstance(first, GeminiWSError | KeyboardInterrupt):
        return first
    if isinstance(first, trio_websocket.ConnectionClosed | trio.BrokenResourceError | OSError):
        return ConnectionLostError("the connection broke during the WebSocket upgrade")
    return ConnectError(
        f"the WebSocket upgrade with {endpoint.host}:{endpoint.port} failed: "
        f"{type(first).__name__}"
    )
