"""Fault injection: the :class:`Fault` descriptions and the transport wrapper that carries them out.

Counting rules (the same for every fault that takes a trigger):

- Server messages are the JSON messages the fake server sends on one connection, numbered from 1:
  message 1 is ``setupComplete``. Frames injected by faults (``malformed_json``,
  ``unknown_message``, ``oversized_frame``) are not counted; the ``goAway`` that
  :meth:`Fault.go_away_after_handle` sends is a real server message and is counted (and recorded
  in ``FakeConnection.sent``) like any other.
- ``at_message=N`` fires when the server is about to send message N (before it goes out).
- ``after_message=N`` fires right after message N went out.
- ``on_client_message=N`` fires when the N-th client message arrives (the ``setup`` message is
  number 1), after it is recorded in ``FakeConnection.received_raw`` and before it is processed
  (so it is not in ``FakeConnection.received``). The N-th client message *after* the setup is
  ``on_client_message=N + 1``. After an ``abort`` fired this way the server reads nothing more:
  ``received_raw`` ends with the triggering message.
- A fault given without a trigger uses ``at_message=1``.
- :meth:`Fault.go_away_after_handle` has its own trigger: the N-th resumable
  ``sessionResumptionUpdate`` (one with a non-empty ``newHandle``) sent on the connection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

import trio

from .._errors import ConfigurationError

__all__ = ["Fault", "FaultKind"]

FaultKind = Literal[
    "abort",
    "close",
    "stall",
    "delay",
    "delay_pongs",
    "malformed_json",
    "unknown_message",
    "oversized_frame",
    "reject_upgrade",
    "go_away_after_handle",
]

#: The close reason the real service sends when a ``goAway`` deadline passes.
REASON_DEADLINE = "Deadline expired before operation could complete."

_HTTP_STATUS_TEXT = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login"
        " cookie or other valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "Internal error encountered."),
    503: ("UNAVAILABLE", "The service is currently unavailable."),
}


def http_error_body(status: int) -> bytes:
    """A small Google-style JSON error body for an HTTP rejection with ``status``."""
    import json

    name, message = _HTTP_STATUS_TEXT.get(status, ("UNKNOWN", "Unknown error."))
    body = {"error": {"code": status, "message": message, "status": name}}
    return json.dumps(body, indent=2).encode("utf-8")


@dataclasses.dataclass(frozen=True)
class Fault:
    """One misbehaviour of the fake server on one connection. Build it with the class methods.

    Apply faults with ``FakeLiveServer.inject(...)`` (next N connections) or the ``faults=``
    argument of ``open_fake_server`` (every connection). See the module docstring for how
    ``at_message`` / ``after_message`` / ``on_client_message`` count.
    """

    kind: FaultKind
    at_message: int | None = None
    after_message: int | None = None
    on_client_message: int | None = None
    code: int = 1011
    reason: str = ""
    seconds: float = 0.0
    size_bytes: int = 0
    status: int = 0
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    payload: bytes | None = None
    message: Mapping[str, Any] | None = None
    after_handle: int | None = None
    closes: bool = True

    # -- triggers ---------------------------------------------------------------------------

    @staticmethod
    def _trigger(
        at_message: int | None, after_message: int | None, on_client_message: int | None
    ) -> tuple[int | None, int | None, int | None]:
        given = [x for x in (at_message, after_message, on_client_message) if x is not None]
        if len(given) > 1:
            raise ConfigurationError(
                "give at most one of at_message, after_message, on_client_message"
            )
        if any(x < 1 for x in given):
            raise ConfigurationError("message numbers start at 1")
        if not given:
            at_message = 1
        return at_message, after_message, on_client_message

    def fires_at(self, n: int) -> bool:
        """True if this fault fires before server message ``n``."""
        return self.at_message == n

    def fires_after(self, n: int) -> bool:
        """True if this fault fires after server message ``n``."""
        return self.after_message == n

    def fires_on_client(self, n: int) -> bool:
        """True if this fault fires when client message ``n`` arrives."""
        return self.on_client_message == n

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def abort(
        cls,
        at_message: int | None = None,
        *,
        after_message: int | None = None,
        on_client_message: int | None = None,
    ) -> Fault:
        """Drop the TCP connection without a WebSocket close frame.

        The socket is closed: the client sees FIN, or RST when client bytes the server has not
        read are still pending (e.g. a client flushing several messages at once). Either way
        the client must report an abnormal closure (1006). With ``on_client_message`` the
        server stops reading at that message.
        """
        return cls("abort", *cls._trigger(at_message, after_message, on_client_message))

    @classmethod
    def close(
        cls,
        code: int = 1011,
        reason: str = "Internal error encountered.",
        *,
        at_message: int | None = None,
        after_message: int | None = None,
        on_client_message: int | None = None,
    ) -> Fault:
        """Close the WebSocket with ``code`` and ``reason`` (cut to 123 UTF-8 bytes).

        1005, 1006 and 1015 cannot be sent in a close frame: with those the connection is
        aborted instead (and recorded with that code).
        """
        return cls(
            "close",
            *cls._trigger(at_message, after_message, on_client_message),
            code=code,
            reason=reason,
        )

    @classmethod
    def stall(
        cls,
        at_message: int | None = None,
        *,
        after_message: int | None = None,
        on_client_message: int | None = None,
    ) -> Fault:
        """Go silent: stop sending, stop processing input, stop answering pings.

        Incoming bytes are read and thrown away (so the fake notices when the client gives up
        and drops TCP), but nothing is answered: a client's heartbeat must time out. A stalled
        connection is aborted, not closed, when the server shuts down.
        """
        return cls("stall", *cls._trigger(at_message, after_message, on_client_message))

    @classmethod
    def delay(
        cls,
        seconds: float,
        at_message: int | None = None,
        *,
        after_message: int | None = None,
        on_client_message: int | None = None,
    ) -> Fault:
        """Sleep ``seconds`` at the trigger point (e.g. hold ``setupComplete`` back)."""
        return cls(
            "delay",
            *cls._trigger(at_message, after_message, on_client_message),
            seconds=seconds,
        )

    @classmethod
    def delay_pongs(cls, seconds: float) -> Fault:
        """Answer every client ping ``seconds`` late (``math.inf``: never), from the upgrade on.

        Everything else keeps flowing. Pongs that would follow a close frame are dropped.
        """
        if seconds < 0:
            raise ConfigurationError("seconds must be >= 0")
        return cls("delay_pongs", seconds=seconds)

    @classmethod
    def malformed_json(
        cls,
        at_message: int | None = None,
        *,
        after_message: int | None = None,
        on_client_message: int | None = None,
        payload: bytes | None = None,
    ) -> Fault:
        """Insert a binary frame that is not valid JSON (default: a truncated server message).

        The frame is inserted *before* message N (``at_message``) or after it; message N itself is
        still sent and the inserted frame is not counted.
        """
        return cls(
            "malformed_json",
            *cls._trigger(at_message, after_message, on_client_message),
            payload=payload,
        )

    @classmethod
    def unknown_message(
        cls,
        at_message: int | None = None,
        *,
        after_message: int | None = None,
        on_client_message: int | None = None,
        message: Mapping[str, Any] | None = None,
    ) -> Fault:
        """Insert a well-formed message with an unknown top-level key (forward compatibility).

        Default ``{"futureFeatureUpdate": {"detail": "unknown to this client", "level": 3}}``.
        Inserted like :meth:`malformed_json`, not counted.
        """
        return cls(
            "unknown_message",
            *cls._trigger(at_message, after_message, on_client_message),
            message=message,
        )

    @classmethod
    def oversized_frame(
        cls,
        size_bytes: int,
        at_message: int | None = None,
        *,
        after_message: int | None = None,
        on_client_message: int | None = None,
    ) -> Fault:
        """Insert one valid JSON frame of exactly ``size_bytes`` bytes.

        It is a text chunk ``{"serverContent": {"modelTurn": {"parts": [{"text": "xxx..."}]}}}``
        padded with ``x`` to the size (minimum 80 bytes). Inserted like :meth:`malformed_json`.
        """
        if size_bytes < 80:
            raise ConfigurationError("size_bytes must be at least 80")
        return cls(
            "oversized_frame",
            *cls._trigger(at_message, after_message, on_client_message),
            size_bytes=size_bytes,
        )

    @classmethod
    def go_away_after_handle(
        cls,
        time_left: float = 1.0,
        *,
        handle: int = 1,
        close_code: int | None = 1011,
        reason: str = REASON_DEADLINE,
    ) -> Fault:
        """Send ``{"goAway": {"timeLeft": "<time_left>s"}}`` right after a resumable handle.

        The ``goAway`` is written immediately after the ``handle``-th resumable
        ``sessionResumptionUpdate`` of the connection (default: the first), before anything else
        queued. ``time_left`` seconds after the ``goAway`` went out the server closes with
        ``close_code`` and ``reason`` (behind what is already queued), as the real service does
        about at the deadline: 1011 ``Deadline expired before operation could complete.``
        (default), 1008, or on Vertex 1000 ``The operation was cancelled.``. With
        ``close_code=None`` the connection stays open after the deadline (the service has also
        been seen to go quiet instead). To apply it to a connection already running, use
        ``FakeConnection.go_away_after_next_handle``.
        """
        if time_left < 0 or math.isnan(time_left):
            raise ConfigurationError("time_left must be >= 0")
        if handle < 1:
            raise ConfigurationError("handle numbers start at 1")
        return cls(
            "go_away_after_handle",
            code=1011 if close_code is None else close_code,
            reason=reason,
            seconds=time_left,
            after_handle=handle,
            closes=close_code is not None,
        )

    def fires_after_handle(self, n: int) -> bool:
        """True if this fault fires right after the ``n``-th resumable handle went out."""
        return self.after_handle == n

    @classmethod
    def reject_upgrade(
        cls,
        status: int,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Refuse the WebSocket upgrade with HTTP ``status`` (e.g. 401, 403, 429, 503).

        The default body is a small Google-style JSON error; 429 and 503 get ``Retry-After: 1``
        unless ``headers`` says otherwise.
        """
        if not 300 <= status <= 599:
            raise ConfigurationError("status must be an HTTP error status (300-599)")
        hdrs = dict(headers or {})
        if status in (429, 503) and not any(k.lower() == "retry-after" for k in hdrs):
            hdrs["Retry-After"] = "1"
        return cls(
            "reject_upgrade",
            status=status,
            body=http_error_body(status) if body is None else body,
            headers=tuple(hdrs.items()),
        )


def _frame_opcode(data: bytes | bytearray | memoryview) -> int | None:
    """Opcode of a final, extension-free frame starting ``data`` (the HTTP response has none)."""
    if len(data) < 2 or data[0] & 0xF0 != 0x80:
        return None
    return data[0] & 0x0F


class ControlledStream(trio.abc.Stream):
    """The server side's transport as trio-websocket sees it, with hooks for faults.

    trio-websocket answers pings inside its reader task, writing one whole frame per
    ``send_all``. Sitting under it we can hold pong frames back (``pong_delay``), or stop
    delivering any input at all (``stall()``), and abort the TCP connection abruptly.

    While corked (``cork()``), data frames are held and written together by ``flush()`` /
    ``uncork()`` in one ``send_all`` (so they reach the client in one TCP segment where they
    fit). Control frames are not held; a close frame writes what is held first.
    """

    def __init__(
        self,
        inner: trio.abc.Stream,
        transport: trio.SocketStream,
        nursery: trio.Nursery,
    ) -> None:
        self.inner = inner
        self.transport = transport
        self._nursery = nursery
        self._send_lock = trio.Lock()
        self.pong_delay = 0.0
        self.stalled = False
        self.aborted = False
        self.close_sent = False
        self.dead = trio.Event()
        self.bytes_discarded = 0
        self.pongs_delayed = 0
        self.pongs_dropped = 0
        self.corked = False
        self._held: list[bytes] = []

    def stall(self) -> None:
        """Stop delivering input and block every send from now on."""
        self.stalled = True

    def cork(self) -> None:
        """Hold data frames from now on until :meth:`flush` or :meth:`uncork`."""
        self.corked = True

    async def flush(self) -> None:
        """Write the held data frames in one ``send_all`` (stay corked)."""
        if not self._held:
            return
        data = b"".join(self._held)
        self._held.clear()
        if self.stalled or self.dead.is_set():
            return
        async with self._send_lock:
            await self.inner.send_all(data)

    async def uncork(self) -> None:
        """Write what is held and stop holding."""
        self.corked = False
        await self.flush()

    def abort(self) -> None:
        """Close the TCP socket at once, without any WebSocket or TLS goodbye."""
        self.aborted = True
        self.dead.set()
        self.transport.socket.close()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        opcode = _frame_opcode(data)
        if opcode == 0xA and (self.stalled or self.close_sent):
            # A stalled server answers no pings, and a pong after our close frame would make
            # wsproto raise in the reader (LOCAL_CLOSING): drop it instead of blocking the
            # reader, which must stay free to notice the client leaving.
            self.pongs_dropped += 1
            return
        if self.stalled:
            await self.dead.wait()
            raise trio.ClosedResourceError("stalled connection closed")
        if opcode == 0x8:
            self.close_sent = True
            await self.flush()
        elif self.corked and opcode not in (0x9, 0xA):
            self._held.append(bytes(data))
            return
        if opcode == 0xA and self.pong_delay > 0:
            if math.isinf(self.pong_delay):
                self.pongs_dropped += 1
            else:
                self.pongs_delayed += 1
                self._nursery.start_soon(self._send_later, bytes(data), self.pong_delay)
            return
        async with self._send_lock:
            await self.inner.send_all(data)

    async def _send_later(self, data: bytes, delay: float) -> None:
        await trio.sleep(delay)
        if self.close_sent or self.dead.is_set() or self.stalled:
            self.pongs_dropped += 1
            return
        async with self._send_lock:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        while True:
            if self.aborted:
                raise trio.ClosedResourceError("connection aborted")
            try:
                data = await self.inner.receive_some(max_bytes)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.dead.set()
                raise
            if not data:
                self.dead.set()
                return data
            if not self.stalled:
                return data
            self.bytes_discarded += len(data)

    async def aclose(self) -> None:
        self.dead.set()
        try:
            await self.inner.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await self.transport.aclose()
