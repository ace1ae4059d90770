"""The WebSocket under a Live connection: websockets' sans-I/O ``ClientProtocol`` driven by us.

The protocol object parses and builds frames (C-accelerated masking) and never does I/O; this
module feeds it the bytes of a stream we opened (:mod:`gemini_ws._transport`) and writes what it
wants sent. One task reads (the stream's receiver, through :meth:`WebSocket.receive`); writers
share one lock. Nothing else reads the socket, so there is one route for frames.

* Pings from the server are answered by the protocol; the pong goes out at once from the reading
  task when no write is under way, else the writer holding the lock flushes it right after its
  own write (the lock is never waited for by the reader, so a slow uplink never stops reading).
* Messages are reassembled here from their frames (websockets leaves that to its caller), under
  ``max_message_size`` counted over all the fragments.
* The peer's close code and reason are reported exactly as sent (1014 included); a failure we
  detected ourselves (a protocol error, an oversized message) is reported as ours.
* A cancelled write may have left a torn frame on the wire: the connection is then aborted and
  can never be written again.
"""

from __future__ import annotations

import logging
import select
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Protocol

import attrs
import trio
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus, PayloadTooBig
from websockets.frames import Close, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from ._errors import ConnectError, ConnectionLostError, HandshakeRejectedError
from ._tls import TLSStream
from ._transport import ByteStream, Endpoint, open_byte_stream, timed_out

__all__ = ["CloseInfo", "Transport", "WebSocket", "WebSocketClosed"]

_READ_SIZE = 256 * 1024

#: a write that took this long had to wait for the socket: the send buffers were full, and a
#: ping written around then may sit behind them (the heartbeat does not count its pong late)
SLOW_WRITE = 0.01


@attrs.frozen
class CloseInfo:
    """How a WebSocket ended: ``code``/``reason`` as the peer sent them when ``by_peer``;
    otherwise the code we failed the connection with (``1006``: no close frame at all)."""

    code: int
    reason: str
    by_peer: bool
    #: we started the close (``aclose``) or aborted the connection ourselves
    by_us: bool = False
    #: the kernel dropped the connection: the peer took none of our data for the
    #: heartbeat timeout (``TCP_USER_TIMEOUT``, see :mod:`gemini_ws._transport`)
    timed_out: bool = False


class WebSocketClosed(Exception):
    """Raised by :class:`WebSocket` I/O once the connection has ended (internal)."""

    def __init__(self, info: CloseInfo) -> None:
        self.info = info
        super().__init__(f"websocket closed: {info}")


class Transport(Protocol):
    """What a Live connection needs from the WebSocket under it. Two implementations:
    :class:`WebSocket` (websockets' sans-I/O protocol driven by us, the default) and
    :class:`~gemini_ws._websocket_trio.TrioWebSocket` (trio-websocket's public API).

    One task reads (:meth:`receive`); any task may :meth:`send` and :meth:`ping`. The
    attributes let the heartbeat tell a dead connection from backpressure."""

    #: set by the task that reads the connection while it does
    reader_attached: bool
    @property
    def writing_since(self) -> float | None:
        """When the write under way started (None while no write waits for the socket)."""

    @property
    def last_slow_write_end(self) -> float:
        """When the last write that had to wait for the socket (:data:`SLOW_WRITE` or longer)
        finished (``-inf`` before one). A write the socket takes at once says nothing about
        a pong: a peer that stopped reading still lets the send buffers fill for a while."""

    @property
    def last_pong_at(self) -> float:
        """When the pong of the last answered :meth:`ping` arrived (``-inf`` before one)."""

    @property
    def closed(self) -> CloseInfo | None: ...
    @property
    def is_open(self) -> bool: ...
    async def wait_ended(self) -> None: ...
    def poll_dead(self) -> bool: ...
    async def receive(self) -> bytes: ...
    async def send(self, data: str | bytes) -> None: ...
    async def ping(self, payload: bytes) -> trio.Event: ...
    def forget_ping(self, payload: bytes) -> None: ...
    async def aclose(self, code: int = 1000, reason: str = "", *, bound: float) -> bool: ...
    async def abort(self) -> None: ...


#: the transports a Client can use, by name (the first is the default)
TRANSPORTS = ("websockets", "trio-websocket")


async def open_transport(
    name: str,
    endpoint: Endpoint,
    *,
    headers: Iterable[tuple[str, str]],
    ssl_context: ssl.SSLContext | None,
    max_message_size: int,
    nursery: trio.Nursery | None,
    dead_after: float | None = None,
) -> Transport:
    """Open a WebSocket with the transport called *name* (one of :data:`TRANSPORTS`);
    *dead_after*: see :func:`~gemini_ws._transport.open_byte_stream`."""
    if name == "trio-websocket":
        from ._websocket_trio import TrioWebSocket

        return await TrioWebSocket.connect(
            endpoint,
            headers=headers,
            ssl_context=ssl_context,
            max_message_size=max_message_size,
            nursery=nursery,
            dead_after=dead_after,
        )
    return await WebSocket.connect(
        endpoint,
        headers=headers,
        ssl_context=ssl_context,
        max_message_size=max_message_size,
        dead_after=dead_after,
    )


class WebSocket:
    """One client WebSocket on a byte stream we own (see the module docstring)."""

    def __init__(self, stream: ByteStream, protocol: ClientProtocol) -> None:
        self._stream = stream
        self._protocol = protocol
        self._send_lock = trio.Lock()
        self._messages: deque[bytes] = deque()
        self._fragments: list[bytes] = []
        self._fragment_size = 0
        self._closed: CloseInfo | None = None
        self._ended = trio.Event()
        self._reading = False
        self._reader_attached = False
        #: woken when the reader attaches, detaches or stops reading, and at the end (costs
        #: nothing when nobody waits: it is checked on every read)
        self._reader_changed = trio.lowlevel.ParkingLot()
        self._broken = False
        self._timed_out = False  # the kernel gave up on the socket (see CloseInfo)
        self._pongs: dict[bytes, trio.Event] = {}
        #: set while a write is under way (seen by other tasks only while it waits for the
        #: socket: the uplink is the bottleneck)
        self.writing_since: float | None = None
        #: when the last write that had to wait for the socket finished
        self.last_slow_write_end = float("-inf")
        self.last_pong_at = float("-inf")

    # --- opening -------------------------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        endpoint: Endpoint,
        *,
        headers: Iterable[tuple[str, str]],
        ssl_context: ssl.SSLContext | None,
        max_message_size: int,
        dead_after: float | None = None,
    ) -> WebSocket:
        """TCP (+TLS), then the upgrade. The caller bounds the whole call. *dead_after*: see
        :func:`~gemini_ws._transport.open_byte_stream`."""
        stream = await open_byte_stream(endpoint, ssl_context, dead_after=dead_after)
        try:
            protocol = ClientProtocol(
                parse_uri(endpoint.url), max_size=max_message_size, logger=_QUIET
            )
            request = protocol.connect()
            for name, value in headers:
                request.headers[name] = value
            protocol.send_request(request)
            ws = cls(stream, protocol)
            await ws._write_pending()
            await ws._await_response(endpoint)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
            raise
        return ws

    async def _await_response(self, endpoint: Endpoint) -> None:
        protocol = self._protocol
        while True:
            try:
                data = await self._stream.receive_some(_READ_SIZE)
            except (trio.BrokenResourceError, OSError) as exc:
                raise ConnectionLostError(
                    f"the connection broke during the WebSocket upgrade: {exc}"
                ) from None
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            events = protocol.events_received()
            if events:
                break
            if not data:
                raise ConnectionLostError("the server closed the connection during the upgrade")
        response = events[0]
        failure = protocol.handshake_exc
        if failure is not None:
            if isinstance(failure, InvalidStatus):
                body = failure.response.body or b""
                raise HandshakeRejectedError(
                    failure.response.status_code, body.decode("utf-8", "replace")
                )
            raise ConnectError(
                f"the WebSocket upgrade with {endpoint.host}:{endpoint.port} failed: {failure}"
            )
        assert isinstance(response, Response)
        self._absorb(events[1:])

    # --- state -----------------------------------------------------------------------------
    @property
    def reader_attached(self) -> bool:
        """Set by the task that reads this connection while it does (``aclose`` then lets it
        read the close reply instead of reading itself)."""
        return self._reader_attached

    @reader_attached.setter
    def reader_attached(self, attached: bool) -> None:
        self._reader_attached = attached
        self._note_reader_change()

    def _note_reader_change(self) -> None:
        if self._reader_changed:
            self._reader_changed.unpark_all()

    @property
    def closed(self) -> CloseInfo | None:
        """How the connection ended, once it has."""
        return self._closed

    @property
    def is_open(self) -> bool:
        """True while messages can be sent and received."""
        return self._closed is None and self._protocol.state is State.OPEN and not self._broken

    async def wait_ended(self) -> None:
        """Wait until the connection has ended."""
        await self._ended.wait()

    def poll_dead(self) -> bool:
        """For a connection nobody reads (a warm spare): True when the peer sent something or
        closed. A spare receives nothing before its setup, so anything readable means the
        server is closing it. Does not block."""
        if self._closed is not None or self._broken:
            return True
        stream = self._stream
        fd = stream.fileno() if isinstance(stream, TLSStream) else stream.socket.fileno()
        try:
            readable, _, _ = select.select([fd], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    # --- receiving (one task) ------------------------------------------------------------
    async def receive(self) -> bytes:
        """The next complete message (text or binary, as bytes). Raises
        :class:`WebSocketClosed` once the connection has ended and every message received
        before its end was returned."""
        while True:
            if self._messages:
                # no checkpoint here: the next read is one (receive_some), and a batch is at
                # most one read's worth of messages
                return self._messages.popleft()
            if self._closed is not None:
                await trio.lowlevel.checkpoint()
                raise WebSocketClosed(self._closed)
            if self._reading:
                # the close handshake is reading the answer itself (it started while no
                # reader was attached): wait for that read instead of racing it for the socket
                await self._reader_changed.park()
                continue
            await self._read_once()

    async def _read_once(self) -> None:
        self._reading = True
        try:
            data = await self._stream.receive_some(_READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._timed_out = self._timed_out or timed_out(exc)
            data = b""
        finally:
            self._reading = False
            self._note_reader_change()
        protocol = self._protocol
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        reply_due = self._absorb(protocol.events_received())
        if self._closed is None and (
            not data
            or protocol.close_rcvd is not None
            or protocol.state is State.CLOSED
            or (protocol.close_sent is not None and not self._we_closed)
        ):
            self._end(self._close_info())
        if reply_due or self._closed is not None:
            await self._flush_from_reader()  # a pong, or the answer to a close
        if self._closed is not None:
            await self._close_stream()

    def _absorb(self, events: Iterable[object]) -> bool:
        """Take the frames the protocol parsed; True when it queued a reply (a pong, or the
        answer to a close frame, or its own close after a protocol error)."""
        reply_due = False
        for frame in events:
            opcode = getattr(frame, "opcode", None)
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
                data: bytes = frame.data  # type: ignore[attr-defined]
                if frame.fin and not self._fragments:  # type: ignore[attr-defined]
                    self._messages.append(bytes(data))
                else:
                    self._fragments.append(bytes(data))
                    if frame.fin:  # type: ignore[attr-defined]
                        self._messages.append(b"".join(self._fragments))
                        self._fragments.clear()
            elif opcode is Opcode.PONG:
                waiter = self._pongs.pop(bytes(frame.data), None)  # type: ignore[attr-defined]
                if waiter is not None:
                    self.last_pong_at = trio.current_time()
                    waiter.set()
            else:  # PING, CLOSE
                reply_due = True
        return reply_due or self._protocol.close_sent is not None

    def _close_info(self) -> CloseInfo:
        protocol = self._protocol
        rcvd: Close | None = protocol.close_rcvd
        sent: Close | None = protocol.close_sent
        if rcvd is not None:
            return CloseInfo(int(rcvd.code), rcvd.reason, by_peer=True, by_us=self._we_closed)
        if sent is not None and not self._we_closed:
            # we failed the connection: a protocol error or an oversized message
            if isinstance(protocol.parser_exc, PayloadTooBig):
                return CloseInfo(1009, str(protocol.parser_exc), by_peer=False)
            return CloseInfo(int(sent.code), sent.reason, by_peer=False)
        return CloseInfo(1006, "", by_peer=False, by_us=self._we_closed, timed_out=self._timed_out)

    _we_closed = False

    def _end(self, info: CloseInfo) -> None:
        if self._closed is None:
            self._closed = info
            self._ended.set()
            self._note_reader_change()
            for waiter in self._pongs.values():
                waiter.set()
            self._pongs.clear()

    # --- sending ---------------------------------------------------------------------------
    async def _flush_from_reader(self) -> None:
        """Write what the protocol queued (a pong, a close reply) from the reading task, unless
        a writer holds the lock: its write loop sends it right after its own data."""
        if self._broken:
            return
        # a cancel of the reading task is seen before the reply is taken from the protocol:
        # it then stays queued, and the next write carries it
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._send_lock.acquire_nowait()
        except trio.WouldBlock:
            return
        try:
            await self._write_pending()
        except WebSocketClosed:
            pass
        finally:
            self._send_lock.release()

    async def _write_pending(self) -> None:
        """Write everything the protocol has queued (the caller holds the lock or is the only
        writer)."""
        while True:
            chunks = [chunk for chunk in self._protocol.data_to_send() if chunk]
            if not chunks:
                return
            await self._write(b"".join(chunks))

    async def _write(self, data: bytes) -> None:
        # A cancel here leaves nothing on the wire: the connection stays whole (the frame is
        # simply not sent). Past this point trio's send_all raises Cancelled only while it
        # waits for the socket with part of the data written: then the frame is torn.
        await trio.lowlevel.checkpoint_if_cancelled()
        self.writing_since = trio.current_time()
        try:
            await self._stream.send_all(data)
        except BaseException as exc:
            # a torn frame may be on the wire: nothing may be written on this connection again
            self._broken = True
            self._timed_out = self._timed_out or timed_out(exc)
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)
            cancelled = isinstance(exc, trio.Cancelled)
            self._end(
                CloseInfo(1006, "", by_peer=False, by_us=cancelled, timed_out=self._timed_out)
            )
            if isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError | OSError):
                raise WebSocketClosed(self._closed or CloseInfo(1006, "", by_peer=False)) from None
            raise
        finally:
            end = trio.current_time()
            if end - self.writing_since >= SLOW_WRITE:
                self.last_slow_write_end = end
            self.writing_since = None

    async def send(self, data: str | bytes) -> None:
        """Send one message (text for ``str``). Waits while another write is under way.

        Always checks for cancellation, but yields to other tasks only when it has to wait (for
        the lock, or for the socket): the caller decides how often to yield (the stream does,
        at least every few sends)."""
        await self._lock_for_writing()
        try:
            if not self.is_open:
                raise WebSocketClosed(self._closed or CloseInfo(1006, "", by_peer=False))
            if isinstance(data, str):
                self._protocol.send_text(data.encode())
            else:
                self._protocol.send_binary(data)
            await self._write_pending()
        finally:
            self._send_lock.release()

    async def _lock_for_writing(self) -> None:
        """Take the send lock: waiting (a yield) only while another write holds it; always
        a cancellation point."""
        lock = self._send_lock
        if lock.locked():
            await lock.acquire()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
            lock.acquire_nowait()

    async def ping(self, payload: bytes) -> trio.Event:
        """Send a ping; returns an event set when its pong arrives (or the connection ends).
        The caller bounds the wait and calls :meth:`forget_ping` if it gives up."""
        event = trio.Event()
        await self._lock_for_writing()
        try:
            if not self.is_open:
                raise WebSocketClosed(self._closed or CloseInfo(1006, "", by_peer=False))
            self._pongs[payload] = event
            self._protocol.send_ping(payload)
            await self._write_pending()
        finally:
            self._send_lock.release()
        return event

    def forget_ping(self, payload: bytes) -> None:
        """Stop waiting for the pong of *payload*."""
        self._pongs.pop(payload, None)

    # --- closing ---------------------------------------------------------------------------
    async def aclose(self, code: int = 1000, reason: str = "", *, bound: float) -> bool:
        """Close handshake (bounded by *bound* seconds, shielded), then close the socket.
        Returns True when the peer answered the close: it read everything written before."""
        answered = False
        with trio.CancelScope(shield=True):
            try:
                if self._closed is None and not self._broken:
                    self._we_closed = True
                    with trio.move_on_after(bound):
                        async with self._send_lock:
                            if self._protocol.state is State.OPEN:
                                self._protocol.send_close(code, reason)
                                await self._write_pending()
                        # The reader reads the answer while it is attached; once it is not
                        # (it may be on its way out: cancelled with the stream, not yet
                        # detached when this started), this task reads it.
                        while self._closed is None:
                            if self._reader_attached or self._reading:
                                await self._reader_changed.park()
                            else:
                                await self._read_once()
                                self._messages.clear()
            except WebSocketClosed:
                pass
            finally:
                answered = self._closed is not None and self._closed.by_peer
                self._end(CloseInfo(1006, "", by_peer=False, by_us=True))
                await self._close_stream()
        return answered

    async def abort(self) -> None:
        """Drop the connection at once, without a close handshake."""
        self._we_closed = True
        self._broken = True
        self._end(CloseInfo(1006, "", by_peer=False, by_us=True))
        await self._close_stream()

    async def _close_stream(self) -> None:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self._stream)


#: websockets logs protocol events at debug level and a frame may hold the key, so its records
#: go nowhere (our own logger records what matters, redacted).
_QUIET = logging.getLogger("gemini_ws.websockets")
_QUIET.propagate = False
_QUIET.disabled = True
