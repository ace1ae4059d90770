"""LiveStream: one Live session, with a sender task and a receiver task per connection.

::

    application task(s)               stream tasks (in the client's nursery)          socket
    ───────────────────               ──────────────────────────────────────          ──────
    s.send_*() ──encode──▶ outgoing ByteQueue ──▶ sender ──▶ LiveConnection.send ──▶  ws
    async for msg in s ◀── incoming ByteQueue ◀── decode ◀── trio-websocket's reader ◀── ws
                                                  (receiver: start-up, then waits for the end)

Both queues are bounded in bytes. trio-websocket's reader task hands each complete message
straight to the stream (decode, observe, queue), so a message costs no extra task switch; the
receiver task delivers what a handover carried over, then waits for the connection's end.
``pause()`` closes the gates of the queues (items wait, in order); the reader keeps draining
the socket into the incoming queue until its byte bound, then TCP backpressure applies and the
connection's heartbeat is suspended. ``resume()`` opens the gates. ``cancel()`` stops the tasks,
closes with 1000 (bounded, shielded) and reports the outgoing messages that were never written.

The tasks never raise: a failure is recorded once and handed to the application on its next
send or receive (the same error either way), or on leaving the ``async with`` if it never
looked.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import trio

from ._buffer import ByteQueue
from ._connection import ConnectionStatistics, LiveConnection
from ._errors import (
    ConfigurationError,
    ConnectionLostError,
    GeminiWSError,
    ProtocolError,
    ServerClosedError,
    SetupRejectedError,
    SetupTimeoutError,
    StreamClosedError,
)
from ._types import (
    ActivityEnd,
    ActivityStart,
    ClientContent,
    ClientMessage,
    Content,
    ContextUpdate,
    FunctionResponse,
    GoAway,
    LiveConfig,
    Part,
    RealtimeInput,
    ServerContent,
    ServerMessage,
    SessionResumptionConfig,
    SessionResumptionUpdate,
    Setup,
    SetupComplete,
    ToolCall,
    ToolResponse,
    UnknownMessage,
    UsageMessage,
    audio_chunk,
    text_turn,
    tool_response,
    video_frame,
)
from ._wire import decode, encode

__all__ = [
    "LiveStream",
    "ReconnectPolicy",
    "SessionResumed",
    "StreamEvent",
    "StreamOptions",
    "StreamStatistics",
]

Direction = Literal["both", "receive", "send"]

logger = logging.getLogger("gemini_ws")


@attrs.frozen
class StreamOptions:
    """Buffering and timing of a stream (bytes and seconds)."""

    #: Received messages waiting for the application, bounded in bytes (a generous default:
    #: minutes of 24 kHz audio, or tens of thousands of text chunks).
    receive_buffer_bytes: int = 32 * 1024 * 1024
    #: Outgoing messages waiting for the socket, bounded in bytes.
    send_buffer_bytes: int = 8 * 1024 * 1024
    setup_timeout: float = 30.0
    close_timeout: float = 3.0


@attrs.frozen
class ReconnectPolicy:
    """How a stream with ``reconnect`` on survives goAway and dropped connections.

    On ``goAway`` the stream waits (at most until ``time_left`` minus ``go_away_margin``) for the
    model's turn to end and a fresh resumption handle, holds new sends, then moves the session
    to a new connection (a warm spare when the pool has one). On a resumable drop it re-dials up
    to ``max_attempts`` times with exponential backoff from ``initial_backoff`` to
    ``max_backoff``, each delay jittered by up to ``jitter`` of itself.
    """

    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    initial_backoff: float = attrs.field(default=0.25, validator=attrs.validators.ge(0))
    max_backoff: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    go_away_margin: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    #: Finish the old connection's close handshake before sending the resuming ``setup``
    #: (the real service has been reported to refuse a resume while the old connection is
    #: open). ``False`` overlaps the two, saving one round trip of handover gap, for servers
    #: known to allow it.
    close_old_first: bool = True
    #: Outgoing messages kept for replay after the newest handle, bounded in bytes.
    replay_buffer_bytes: int = attrs.field(
        default=8 * 1024 * 1024, validator=attrs.validators.gt(0)
    )

    def backoff(self, attempt: int) -> float:
        """The jittered delay before re-dial number *attempt* (1-based)."""
        base = min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt - 1))
        return float(base * (1 + self.jitter * random.random()))


@attrs.frozen
class SessionResumed:
    """Yielded by a stream with ``reconnect`` on when its session moved to a new connection.

    ``reason`` is ``"go_away"``, ``"connection_lost"`` or ``"reconfigure"``; ``gap`` is the time
    in seconds during which nothing could be sent or received; ``replayed`` counts the client
    messages sent again because the handle predates them; ``interrupted_turn`` is True when a
    model turn was cut off by a drop (its partial reply will be generated again); ``error`` is
    the error that caused a ``connection_lost`` handover.
    """

    reason: str
    handle: str
    attempts: int
    gap: float
    replayed: int
    interrupted_turn: bool
    warm: bool
    error: GeminiWSError | None = None
    #: messages that should have been replayed but had been dropped because the replay log
    #: passed ``ReconnectPolicy.replay_buffer_bytes`` (0 unless the log overflowed)
    replay_dropped: int = 0


#: What a stream yields: every server message, plus :class:`SessionResumed` events.
StreamEvent = ServerMessage | SessionResumed


@attrs.frozen
class StreamStatistics:
    """A snapshot of a stream, readable at any time."""

    state: str
    messages_sent: int
    bytes_sent: int
    messages_received: int
    bytes_received: int
    queued_to_send: int
    queued_to_deliver: int
    bytes_queued_to_deliver: int
    paused_receive: bool
    paused_send: bool
    time_paused: float
    time_to_setup_complete: float | None
    time_to_first_chunk: tuple[float, ...]
    last_heartbeat_rtt: float | None
    turns_completed: int
    resume_handle: str | None
    handovers: int
    handover_gaps: tuple[float, ...]
    replay_queued: int
    #: sent messages dropped from the replay log because it passed its byte bound
    replay_dropped: int
    connection: ConnectionStatistics

    @property
    def last_time_to_first_chunk(self) -> float | None:
        """Time to the first chunk of the newest turn, if any turn had one."""
        return self.time_to_first_chunk[-1] if self.time_to_first_chunk else None


@attrs.define
class _Outgoing:
    message: ClientMessage
    text: str
    #: position of the message on its connection (setup is 0), for transparent resumption
    index: int = 0
    #: position in the whole stream
    seq: int = 0


@attrs.define(eq=False)
class _Handover:
    reason: str
    error: GeminiWSError | None = None
    setup: Setup | None = None
    #: set with the resulting event once this handover completed (reconfigure waits on it)
    result: SessionResumed | None = None


def _ends_user_turn(message: ClientMessage) -> bool:
    if isinstance(message, ClientContent):
        return bool(message.turn_complete)
    if isinstance(message, RealtimeInput):
        return bool(
            message.text or message.audio_stream_end or message.activity_end is not None
        )
    return isinstance(message, ToolResponse)


def _starts_model_turn(message: ClientMessage) -> bool:
    """Whether *message* asks the model for a new turn (a tool response continues one)."""
    return not isinstance(message, ToolResponse) and _ends_user_turn(message)


def _resumable(error: GeminiWSError, after_go_away: bool) -> bool:
    """Whether a session may be resumed after *error* (a drop, not a refusal)."""
    if isinstance(error, ConnectionLostError):
        return True
    if isinstance(error, ServerClosedError) and not isinstance(error, SetupRejectedError):
        if error.code in (1000, 1001, 1011, 1012, 1013, 1014):
            return True
        return after_go_away and error.code == 1008
    return False


class _TurnIterator:
    """Iterates the messages of one model turn; ends after the message with turnComplete."""

    def __init__(self, stream: LiveStream) -> None:
        self._stream = stream
        self._done = False

    def __aiter__(self) -> _TurnIterator:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._done:
            raise StopAsyncIteration
        message = await self._stream.receive()
        if isinstance(message, ServerContent) and message.turn_complete:
            self._done = True
        return message


Checkout = Callable[[], Awaitable[LiveConnection]]
Release = Callable[[LiveConnection], None]


class LiveStream:
    """One Live API session. Obtain it from ``async with client.stream(model) as s``.

    Send with the ``send_*`` methods (from any task), receive with ``async for msg in s``
    (every server message, across turns) or ``async for msg in s.turn()`` (until the end of
    the current model turn). ``pause()``, ``resume()`` and ``cancel()`` are flow control.
    With ``reconnect`` on, goAway and resumable drops are handed over to a new connection and
    announced by a :class:`SessionResumed` event in the message stream.
    """

    def __init__(
        self,
        connection: LiveConnection,
        setup: Setup,
        options: StreamOptions,
        *,
        reconnect: ReconnectPolicy | None = None,
        checkout: Checkout | None = None,
        release: Release | None = None,
    ) -> None:
        self._conn = connection
        self.setup = setup
        self.options = options
        self._policy = reconnect
        self._checkout = checkout
        self._release = release
        self._outgoing: ByteQueue[_Outgoing] = ByteQueue(options.send_buffer_bytes)
        self._incoming: ByteQueue[StreamEvent] = ByteQueue(options.receive_buffer_bytes)
        self._state = "setup"
        self._error: GeminiWSError | None = None
        self._error_seen = False
        self._cancelled = False
        self._in_flight: _Outgoing | None = None
        self._write_idle = trio.Event()
        self._write_idle.set()
        self._unsent: list[ClientMessage] = []
        self._tasks_scope: trio.CancelScope | None = None
        self._conn_scope: trio.CancelScope | None = None
        self._conn_nursery: trio.Nursery | None = None
        self._tasks_done = trio.Event()
        self._sender_done = trio.Event()
        self._handover: _Handover | None = None
        # delivery carried across a handover: a message being delivered when the old
        # connection's tasks stopped, then the SessionResumed event
        self._preface: list[tuple[StreamEvent, int]] = []
        # the wait of a delivery blocked on a full receive buffer (in the reader task)
        self._delivery_scope: trio.CancelScope | None = None
        # resumption bookkeeping
        self._replay: deque[_Outgoing] = deque()
        self._replay_bytes = 0
        self._replay_dropped = 0
        self._seq = 0
        self._conn_index = 0
        self._open_turns: deque[int] = deque()  # seq of each turn-ending message not answered
        self._covered_seq = 0
        self._handle_fresh = False
        self._quiet_wanted = False
        self._handle_due = False  # a turn completed and its handle has not arrived yet
        self._changed = trio.Event()
        self._handovers: list[SessionResumed] = []
        # statistics
        self._sent = 0
        self._sent_bytes = 0
        self._received = 0
        self._received_bytes = 0
        self._setup_time: float | None = None
        self._turn_started_at: float | None = None
        self._first_chunk: list[float] = []
        self._turns_completed = 0
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._resume_handle: str | None = setup.session_resumption.handle if (
            setup.session_resumption is not None
        ) else None
        self._go_away: GoAway | None = None

    def __repr__(self) -> str:
        return f"<LiveStream {self.setup.model} {self._state}>"

    # --- properties --------------------------------------------------------------------------
    @property
    def model(self) -> str:
        """The model of this session (``models/...``)."""
        return self.setup.model

    @property
    def state(self) -> str:
        """``setup``, ``open``, ``resuming``, ``closing``, ``closed``, ``cancelled`` or
        ``failed``."""
        return self._state

    @property
    def resume_handle(self) -> str | None:
        """The newest resumable session handle the server gave (needs session resumption)."""
        return self._resume_handle

    @property
    def go_away(self) -> GoAway | None:
        """The ``goAway`` the server sent on the current connection, if any."""
        return self._go_away

    @property
    def unsent(self) -> tuple[ClientMessage, ...]:
        """Outgoing messages that were queued but never written to the socket."""
        return tuple(self._unsent)

    @property
    def connection(self) -> LiveConnection:
        """The connection under this stream now (it changes on a handover)."""
        return self._conn

    @property
    def handovers(self) -> tuple[SessionResumed, ...]:
        """Every handover this stream made, oldest first."""
        return tuple(self._handovers)

    # --- lifetime (driven by Client.stream) ---------------------------------------------------
    async def _handshake(self) -> None:
        """Send ``setup`` and wait for ``setupComplete`` on the current connection."""
        t0 = trio.current_time()
        early = await self._setup_connection(self._conn, self.setup)
        self._preface.extend(early)
        self._setup_time = trio.current_time() - t0
        self._state = "open"

    async def _setup_connection(
        self, conn: LiveConnection, setup: Setup
    ) -> list[tuple[StreamEvent, int]]:
        """Send *setup* on *conn* and wait for ``setupComplete`` (bounded). Returns what the
        server sent before ``setupComplete`` that is worth delivering (unknown message types,
        usage reports), for the caller to queue after anything that belongs before it."""
        early: list[tuple[StreamEvent, int]] = []
        try:
            with trio.fail_after(self.options.setup_timeout):
                await conn.send(encode(setup))
                frame = await conn.receive()
                message = decode(frame)
                # New server message types never break a client: anything unknown (or a bare
                # usage report) before setupComplete is kept and delivered after it.
                while isinstance(message, UnknownMessage | UsageMessage):
                    early.append((message, len(frame)))
                    frame = await conn.receive()
                    message = decode(frame)
        except trio.TooSlowError:
            raise SetupTimeoutError(
                f"no setupComplete within {self.options.setup_timeout} s",
                resume_handle=self._resume_handle,
            ) from None
        except ServerClosedError as exc:
            raise SetupRejectedError(
                exc.code,
                exc.reason,
                message=f"the server rejected the setup for {setup.model} "
                f"(close code {exc.code})",
                resume_handle=self._resume_handle,
            ) from None
        if not isinstance(message, SetupComplete):
            raise ProtocolError(
                f"expected setupComplete as the first server message, got "
                f"{type(message).__name__}",
                frame,
            )
        self._conn_index = 0
        self._go_away = None
        return early

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The stream's supervisor: serve the current connection with a sender and a receiver;
        hand the session over when asked to. Never raises but Cancelled."""
        try:
            with trio.CancelScope() as scope:
                self._tasks_scope = scope
                task_status.started()
                while True:
                    handover = await self._serve(self._conn)
                    if handover is None:
                        break
                    try:
                        await self._hand_over(handover)
                    except GeminiWSError as exc:
                        self._fail(exc)
                        break
        finally:
            if self._state in ("open", "setup", "resuming"):
                # stopped from outside (the Client closed while the stream was open): nobody
                # waiting on the stream may hang
                self._fail(
                    StreamClosedError(
                        "the Client was closed while the stream was open",
                        resume_handle=self._resume_handle,
                    )
                )
            self._tasks_done.set()
            self._note_change()

    async def _serve(self, conn: LiveConnection) -> _Handover | None:
        """Run the sender and the receiver on *conn* until the stream ends or a handover is
        requested (returned)."""
        self._handover = None
        self._sender_done = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                self._conn_scope = nursery.cancel_scope
                self._conn_nursery = nursery
                nursery.start_soon(self._sender, conn)
                nursery.start_soon(self._receiver, conn)
                self._note_change()  # serving: a closer or reconfigure() may go on
        finally:
            self._conn_nursery = None
        return self._handover

    def _request_handover(self, handover: _Handover) -> None:
        if self._handover is None:
            self._handover = handover
        if self._conn_scope is not None:
            self._conn_scope.cancel()
        if self._delivery_scope is not None:
            self._delivery_scope.cancel()

    def _fail(self, error: GeminiWSError) -> None:
        """Record the first error; wake everybody; collect what was never sent."""
        self._note_change()
        if self._error is None and self._state in ("open", "setup", "resuming"):
            self._error = error
            self._state = "failed"
        self._collect_unsent()
        self._outgoing.close(error)
        self._incoming.close(error)
        if self._conn_scope is not None:
            self._conn_scope.cancel()
        if self._delivery_scope is not None:
            self._delivery_scope.cancel()

    def _collect_unsent(self) -> None:
        # A message being written right now is accounted for by the sender itself.
        self._unsent.extend(item.message for item in self._outgoing.drain())

    def _over(self) -> bool:
        """True once the stream has failed, been cancelled or started closing."""
        return self._error is not None or self._cancelled or self._state in (
            "closing",
            "closed",
            "cancelled",
            "failed",
        )

    def _note_change(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _sender(self, conn: LiveConnection) -> None:
        try:
            while True:
                try:
                    item = await self._outgoing.get()
                except (trio.EndOfChannel, trio.ClosedResourceError, GeminiWSError):
                    return
                self._in_flight = item
                self._write_idle = trio.Event()
                if self._turn_started_at is None and _ends_user_turn(item.message):
                    # stamped before the write: the reply may arrive before send() returns
                    self._turn_started_at = trio.current_time()
                try:
                    await conn.send(item.text)
                except GeminiWSError as exc:
                    self._in_flight = None
                    self._write_idle.set()
                    if self._policy is not None and _resumable(exc, self._go_away is not None):
                        # not known to have arrived: it goes first on the next connection
                        self._outgoing.push_front(item, len(item.text))
                        self._request_handover(_Handover("connection_lost", exc))
                    else:
                        self._unsent.append(item.message)
                        self._fail(exc)
                    return
                self._in_flight = None
                self._write_idle.set()
                self._sent += 1
                self._sent_bytes += len(item.text)
                self._conn_index += 1
                if self._policy is not None:
                    self._seq += 1
                    item.index = self._conn_index
                    item.seq = self._seq
                    self._keep_for_replay(item)
                    if _starts_model_turn(item.message):
                        self._open_turns.append(self._seq)
                        self._handle_fresh = False
                    self._note_change()
        finally:
            self._sender_done.set()
            if self._in_flight is not None:  # cancelled while writing: not known to be sent
                if self._policy is not None and self._handover is not None:
                    self._outgoing.push_front(self._in_flight, len(self._in_flight.text))
                else:
                    self._unsent.append(self._in_flight.message)
                self._in_flight = None
                self._write_idle.set()

    def _keep_for_replay(self, item: _Outgoing) -> None:
        policy = self._policy
        assert policy is not None
        self._replay.append(item)
        self._replay_bytes += len(item.text)
        while self._replay_bytes > policy.replay_buffer_bytes and len(self._replay) > 1:
            old = self._replay.popleft()
            self._replay_bytes -= len(old.text)
            self._replay_dropped += 1

    def _forget_covered(self, last_consumed_index: int | None) -> None:
        """A new handle covers part of what we sent: drop it from the replay log."""
        while self._replay:
            item = self._replay[0]
            if last_consumed_index is not None:
                covered = item.index <= last_consumed_index
            else:
                covered = item.seq <= self._covered_seq
            if not covered:
                break
            self._replay.popleft()
            self._replay_bytes -= len(item.text)

    async def _deliver(self, conn: LiveConnection, event: StreamEvent, size: int) -> bool:
        """Queue *event* for the application. False when the stream is closing or a handover
        interrupted the wait (the event is then kept, first in line, for the next
        connection)."""
        incoming = self._incoming
        try:
            incoming.put_nowait(event, size)
        except trio.WouldBlock:
            pass
        except (trio.ClosedResourceError, GeminiWSError):
            return False
        else:
            self._count_delivered(event, size)
            return True
        conn.set_backpressure(True)
        delivered = False
        try:
            with trio.CancelScope() as scope:
                self._delivery_scope = scope
                if self._handover is not None:
                    scope.cancel()
                await incoming.put(event, size)
                delivered = True
        except (trio.ClosedResourceError, GeminiWSError):
            return False
        finally:
            self._delivery_scope = None
            conn.set_backpressure(False)
            if not delivered and not incoming.closed:
                # interrupted (a handover, from this scope or an outer one): keep it first in
                # line for the next connection's receiver
                self._preface.insert(0, (event, size))
        if delivered:
            self._count_delivered(event, size)
        return delivered

    def _count_delivered(self, event: StreamEvent, size: int) -> None:
        if not isinstance(event, SessionResumed):
            self._received += 1
            self._received_bytes += size

    def _park_frame(self, frame: str | bytes) -> None:
        """Keep a frame that arrived while the session is moving, for delivery before the
        SessionResumed event (observed now: it may carry a newer handle)."""
        try:
            message = decode(frame)
        except ProtocolError:
            return
        self._observe(message)
        self._preface.append((message, len(frame)))

    async def _handle_frame(self, conn: LiveConnection, frame: str | bytes) -> bool:
        """Decode, observe and deliver one frame from *conn*; False once delivery stops."""
        if self._handover is not None or conn is not self._conn:
            self._park_frame(frame)  # the session is moving
            return False
        try:
            message = decode(frame)
        except ProtocolError as exc:
            exc.resume_handle = self._resume_handle
            self._fail(exc)
            await conn.abort()
            return False
        self._observe(message)
        return await self._deliver(conn, message, len(frame))

    async def _receiver(self, conn: LiveConnection) -> None:
        """Deliver what a handover carried over, then whatever *conn* queued before it was
        tapped; then let trio-websocket's reader hand frames straight to :meth:`_handle_frame`
        (no task switch per message) and wait here for the end of the connection."""
        try:
            while self._preface:
                event, size = self._preface.pop(0)
                if not await self._deliver(conn, event, size):
                    return
            while (frame := conn.receive_nowait()) is not None:
                if not await self._handle_frame(conn, frame):
                    return

            async def sink(frame: str | bytes) -> None:
                # runs in trio-websocket's reader task: it must not raise into it
                try:
                    await self._handle_frame(conn, frame)
                except Exception as exc:
                    logger.exception("gemini_ws: internal error while handling a frame")
                    self._fail(GeminiWSError(f"internal error while handling a frame: {exc!r}"))

            conn.set_sink(sink)
            while True:
                try:
                    frame = await conn.receive()  # only the end of the connection, normally
                except GeminiWSError as exc:
                    if (
                        self._policy is not None
                        and self._resume_handle is not None
                        and _resumable(exc, self._go_away is not None)
                    ):
                        self._request_handover(_Handover("connection_lost", exc))
                    else:
                        self._fail(exc)
                    return
                if not await self._handle_frame(conn, frame):
                    return
        finally:
            conn.set_sink(None)

    def _observe(self, message: ServerMessage) -> None:
        """Track what the stream itself needs: handles, goAway, turn timing."""
        if isinstance(message, ServerContent):
            if self._turn_started_at is not None and (
                message.model_turn is not None or message.output_transcription is not None
            ):
                self._first_chunk.append(trio.current_time() - self._turn_started_at)
                self._turn_started_at = None
            if message.turn_complete:
                self._turns_completed += 1
                self._turn_started_at = None
                if self._open_turns:
                    self._covered_seq = max(self._covered_seq, self._open_turns.popleft())
                else:
                    # a turn the server started itself (voice activity detection on streamed
                    # audio): it consumed what we had sent
                    self._covered_seq = self._seq
                self._handle_due = True
                if self._quiet_wanted and not self._open_turns:
                    self._outgoing.pause("handover")  # before the app can start a new turn
                self._note_change()
        elif isinstance(message, SessionResumptionUpdate):
            if message.resumable and message.new_handle:
                self._resume_handle = message.new_handle
                self._conn.resume_handle = message.new_handle
                self._handle_due = False
                if self._policy is not None:
                    self._forget_covered(message.last_consumed_client_message_index)
                    self._handle_fresh = not self._open_turns
                    self._note_change()
        elif isinstance(message, GoAway):
            self._go_away = message
            if (
                self._policy is not None
                and self._conn_nursery is not None
                and self._checkout is not None
            ):
                self._conn_nursery.start_soon(self._watch_go_away, message)

    async def _watch_go_away(self, go_away: GoAway) -> None:
        """Hand over at the first quiet moment before the connection's time is up."""
        policy = self._policy
        assert policy is not None
        time_left = go_away.time_left.total_seconds()
        margin = min(policy.go_away_margin, time_left / 2)
        await self._hand_over_when_quiet(
            _Handover("go_away"), trio.current_time() + max(0.0, time_left - margin)
        )

    async def _hand_over_when_quiet(self, handover: _Handover, deadline: float) -> bool:
        """Hand over at the first quiet moment before *deadline*: no model turn in progress
        and a handle taken after the last one. Returns False when there is nothing to resume.

        While a turn is in progress sends flow (a tool response may be what ends it); from the
        moment a turn completes, new sends are held (the receiver closes the gate as it sees
        ``turnComplete``), so the next handle covers everything sent. Past the deadline the
        handover goes ahead with the newest handle, and what came after it is replayed."""
        self._quiet_wanted = True
        requested = False
        try:
            with trio.move_on_at(deadline):
                while True:
                    if self._over():
                        return False
                    if self._open_turns:
                        self._outgoing.resume("handover")
                        await self._changed.wait()
                        continue
                    self._outgoing.pause("handover")
                    await self._write_idle.wait()
                    if self._open_turns:
                        continue  # the message being written started a turn
                    if self._handle_fresh:
                        break
                    if not self._handle_due:
                        break  # no finished turn is waiting for its handle
                    await self._changed.wait()
            if self._resume_handle is None or self._over():
                return False  # nothing to resume: a goAway stays a plain message
            self._outgoing.pause("handover")
            await self._write_idle.wait()
            self._request_handover(handover)
            requested = True
            return True
        finally:
            self._quiet_wanted = False
            if not requested:
                self._outgoing.resume("handover")
            self._note_change()

    async def reconfigure(self, config: LiveConfig | Mapping[str, Any]) -> SessionResumed:
        """Change the session's configuration (system instruction, tools, anything but the
        model) by resuming it on a new connection with a new ``setup``.

        Needs a stream opened with ``reconnect`` on. Waits for the current model turn to end,
        then hands over; returns the :class:`SessionResumed` event (also yielded in the
        message stream). Bound the wait with ``trio.fail_after`` if needed.
        """
        if self._policy is None or self._checkout is None:
            raise ConfigurationError(
                "reconfigure() needs session resumption: open the stream with reconnect=True"
            )
        if isinstance(config, Mapping):
            try:
                config = LiveConfig(**dict(config))
            except TypeError as exc:
                raise ConfigurationError(f"invalid LiveConfig: {exc}") from None
        if not isinstance(config, LiveConfig):
            raise ConfigurationError(
                f"config must be a LiveConfig or a dict, got {type(config).__name__}"
            )
        self._check_usable()
        transparent = (
            config.session_resumption.transparent
            if config.session_resumption is not None
            else None
        )
        setup = config.evolve(
            session_resumption=SessionResumptionConfig(transparent=transparent)
        ).to_setup(self.model)
        handover = _Handover("reconfigure", setup=setup)
        while True:
            # one handover at a time: let one already under way finish first
            while self._handover is not None or self._state == "resuming":
                if self._over():
                    self._check_usable()
                    raise self._closed_error()
                await self._changed.wait()
            if not await self._hand_over_when_quiet(handover, math.inf):
                self._check_usable()  # the stream ended meanwhile: its own error
                raise ConfigurationError(
                    "reconfigure() needs a resumption handle, and the server has not sent one "
                    "yet (it sends them after model turns)"
                )
            if self._handover is handover:
                break
        while handover.result is None:
            if self._over():
                self._check_usable()
                raise self._closed_error()
            await self._changed.wait()
        return handover.result

    async def _hand_over(self, handover: _Handover) -> None:
        """Move the session to a new connection with the newest handle (see ReconnectPolicy)."""
        policy = self._policy
        old = self._conn
        # frames the old connection received but nobody took yet go first, in order (and are
        # observed first: one may carry a newer handle)
        while (frame := old.receive_nowait()) is not None:
            self._park_frame(frame)
        handle = self._resume_handle
        error = handover.error
        if policy is None or self._checkout is None or handle is None:
            raise error or ConnectionLostError("the session cannot be resumed")
        self._outgoing.pause("handover")
        self._state = "resuming"
        started = trio.current_time()
        interrupted = bool(self._open_turns)
        base = handover.setup or self.setup
        transparent = (
            base.session_resumption.transparent if base.session_resumption is not None else None
        )
        setup = attrs.evolve(
            base,
            session_resumption=SessionResumptionConfig(handle=handle, transparent=transparent),
        )
        attempt = 0
        warm = False
        while True:
            attempt += 1
            new: LiveConnection | None = None
            try:
                if policy.close_old_first:
                    # The service refuses a resume while the session's old connection is open;
                    # retiring it first also gives its pool slot to the replacement.
                    await self._retire(old)
                    new = await self._checkout()
                    warm = new.was_spare
                    early = await self._setup_connection(new, setup)
                else:
                    new = await self._checkout()
                    warm = new.was_spare
                    failure: GeminiWSError | None = None
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._retire, old)
                        try:
                            early = await self._setup_connection(new, setup)
                        except GeminiWSError as exc:
                            failure = exc  # raised below, not wrapped in the nursery's group
                    if failure is not None:
                        raise failure
                break
            except BaseException as exc:
                if new is not None:
                    await self._retire(new)
                if not isinstance(exc, GeminiWSError):
                    raise
                refused = isinstance(exc, SetupRejectedError) and exc.code in (1007, 1008)
                if refused or attempt >= policy.max_attempts:
                    raise ConnectionLostError(
                        f"the session could not be resumed after {attempt} attempt(s): {exc}",
                        resume_handle=handle,
                    ) from exc
                await trio.sleep(policy.backoff(attempt))
        self._conn = new
        new.resume_handle = handle
        self.setup = attrs.evolve(base, session_resumption=setup.session_resumption)
        # Messages sent after the handle was taken go again, first, in order.
        replay = list(self._replay)
        self._replay.clear()
        self._replay_bytes = 0
        for item in reversed(replay):
            self._outgoing.push_front(item, len(item.text))
        self._open_turns.clear()
        self._handle_fresh = False
        self._go_away = None
        gap = trio.current_time() - started
        event = SessionResumed(
            reason=handover.reason,
            handle=handle,
            attempts=attempt,
            gap=gap,
            replayed=len(replay),
            interrupted_turn=interrupted,
            warm=warm,
            error=error,
            replay_dropped=self._replay_dropped,
        )
        self._replay_dropped = 0
        self._handovers.append(event)
        self._preface.append((event, 0))
        self._preface.extend(early)  # sent by the new connection: after the event
        handover.result = event
        if self._state == "resuming":
            self._state = "open"
        self._note_change()
        self._outgoing.resume("handover")

    async def _retire(self, conn: LiveConnection) -> None:
        """Close *conn* (bounded, shielded) and give its slot back to the pool."""
        await conn.aclose(1000)
        if self._release is not None:
            self._release(conn)

    async def _close(self, *, flush: bool) -> None:
        """End the stream: optionally flush queued messages, close with 1000, stop the tasks.

        Shielded and bounded by ``close_timeout`` (twice at most: flush, then close)."""
        with trio.CancelScope(shield=True):
            if self._state in ("open", "setup", "resuming"):
                self._state = "closing"
            if flush and self._error is None and not self._cancelled:
                with trio.move_on_after(self.options.close_timeout):
                    # a handover under way first: what was queued meanwhile goes out on the
                    # new connection
                    while (
                        self._handover is not None or self._quiet_wanted
                    ) and not self._tasks_done.is_set():
                        await self._changed.wait()
                    self._outgoing.resume()
                    self._outgoing.close()
                    await self._sender_done.wait()
            self._collect_unsent()
            self._outgoing.close(StreamClosedError("the stream is closed"))
            if self._tasks_scope is not None:
                self._tasks_scope.cancel()
                await self._tasks_done.wait()
            self._note_change()
            # free trio-websocket's reader if it waits on a full buffer, so that it can read
            # the server's close frame
            self._incoming.close(self._closed_error())
            await self._retire(self._conn)
            await self._conn.wait_closed()
            self._incoming.close(self._closed_error())
            if self._state == "closing":
                self._state = "closed"
            self._note_resumed()

    def _closed_error(self) -> GeminiWSError:
        if self._error is not None:
            return self._error
        if self._cancelled:
            return StreamClosedError(
                "the stream was cancelled", unsent=self._unsent, resume_handle=self._resume_handle
            )
        return StreamClosedError("the stream is closed", resume_handle=self._resume_handle)

    def _check_usable(self) -> None:
        if self._cancelled or self._state in ("closing", "closed"):
            raise self._closed_error()
        if self._error is not None:
            self._error_seen = True
            raise self._error

    def _unseen_error(self) -> GeminiWSError | None:
        """The error that ended the stream, if the application has not been shown it."""
        return None if self._error_seen else self._error

    # --- receiving -------------------------------------------------------------------------
    async def receive(self) -> StreamEvent:
        """The next server message, in order, waiting while none is there or while paused.

        Raises the error that ended the stream once every message received before it has
        been delivered; :class:`StreamClosedError` after ``cancel()`` or the end of the
        ``async with``.
        """
        if self._cancelled or self._state == "closed":
            await trio.lowlevel.checkpoint()
            raise self._closed_error()
        try:
            return await self._incoming.get()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise self._closed_error() from None
        except GeminiWSError:
            self._error_seen = True
            raise

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self.receive()

    def turn(self) -> AsyncIterator[StreamEvent]:
        """Iterate the messages of the current model turn; ends after ``turnComplete``."""
        return _TurnIterator(self)

    async def receive_turn(self) -> list[StreamEvent]:
        """Collect and return every message of the current model turn."""
        return [message async for message in self.turn()]

    # --- sending ---------------------------------------------------------------------------
    async def send(self, message: ClientMessage) -> None:
        """Queue any client message for sending, in order (waits while the send buffer is
        full). Raises the stream's error if the connection has ended."""
        if isinstance(message, Setup):
            raise ConfigurationError(
                "setup is sent once by client.stream(); it cannot be sent again on an open "
                "stream (resume with a new config instead)"
            )
        if not isinstance(message, ClientContent | RealtimeInput | ToolResponse | ContextUpdate):
            raise ConfigurationError(
                f"expected a client message (ClientContent, RealtimeInput, ToolResponse, "
                f"ContextUpdate), got {type(message).__name__}"
            )
        self._check_usable()
        text = encode(message)
        try:
            await self._outgoing.put(_Outgoing(message, text), len(text))
        except trio.ClosedResourceError:
            raise self._closed_error() from None
        except GeminiWSError:
            self._error_seen = True
            raise

    async def send_text(self, text: str, *, turn_complete: bool = True) -> None:
        """Send a user text turn as ``clientContent`` (``turnComplete`` true by default)."""
        await self.send(text_turn(text, turn_complete=turn_complete))

    async def send_realtime_text(self, text: str) -> None:
        """Send text as ``realtimeInput.text`` (the way Gemini 3.1 Live models take text)."""
        if not isinstance(text, str):
            raise ConfigurationError(f"text must be a str, got {type(text).__name__}")
        await self.send(RealtimeInput(text=text))

    async def send_content(
        self, turns: Content | str | Sequence[Content | str], *, turn_complete: bool = True
    ) -> None:
        """Send ``clientContent`` with one or more turns (a str is a user text turn)."""
        if isinstance(turns, Content | str):
            items: list[Any] = [turns]
        else:
            try:
                items = list(turns)
            except TypeError:
                raise ConfigurationError(
                    f"turns must be Content, str or a sequence of them, got "
                    f"{type(turns).__name__}"
                ) from None
        contents: list[Content] = []
        for item in items:
            if isinstance(item, str):
                contents.append(Content(parts=(Part(text=item),), role="user"))
            elif isinstance(item, Content):
                contents.append(item)
            else:
                raise ConfigurationError(
                    f"turns must be Content or str, got {type(item).__name__}"
                )
        await self.send(ClientContent(turns=tuple(contents), turn_complete=turn_complete))

    async def send_audio(self, pcm: bytes, sample_rate: int = 16000) -> None:
        """Send a chunk of 16-bit little-endian mono PCM audio (``realtimeInput.audio``)."""
        await self.send(audio_chunk(pcm, sample_rate))

    async def send_realtime(self, message: RealtimeInput) -> None:
        """Send a ``realtimeInput`` message as built by the caller."""
        if not isinstance(message, RealtimeInput):
            raise ConfigurationError(
                f"expected a RealtimeInput, got {type(message).__name__}"
            )
        await self.send(message)

    async def send_video(self, frame: bytes, mime_type: str = "image/jpeg") -> None:
        """Send one JPEG or PNG video frame (``realtimeInput.video``; about 1 fps at most)."""
        await self.send(video_frame(frame, mime_type))

    async def send_activity_start(self) -> None:
        """Mark the start of user activity (only with automatic activity detection off)."""
        await self.send(RealtimeInput(activity_start=ActivityStart()))

    async def send_activity_end(self) -> None:
        """Mark the end of user activity (only with automatic activity detection off)."""
        await self.send(RealtimeInput(activity_end=ActivityEnd()))

    async def send_audio_stream_end(self) -> None:
        """Tell the server the audio stream paused (flushes cached audio; automatic VAD)."""
        await self.send(RealtimeInput(audio_stream_end=True))

    async def send_tool_response(
        self,
        response: ToolResponse
        | FunctionResponse
        | Iterable[FunctionResponse]
        | ToolCall,
        results: Mapping[str, Any] | None = None,
    ) -> None:
        """Answer tool calls: a :class:`ToolResponse`, one or more :class:`FunctionResponse`,
        or a :class:`ToolCall` plus ``results`` (call id or function name -> result)."""
        if isinstance(response, ToolCall):
            if results is None:
                raise ConfigurationError("send_tool_response(tool_call, results) needs results")
            message = tool_response(response, results)
        elif isinstance(response, ToolResponse):
            message = response
        elif isinstance(response, FunctionResponse):
            message = ToolResponse(function_responses=(response,))
        else:
            try:
                items = tuple(response)
            except TypeError:
                raise ConfigurationError(
                    f"expected a ToolResponse, FunctionResponse(s) or ToolCall, got "
                    f"{type(response).__name__}"
                ) from None
            if not all(isinstance(r, FunctionResponse) for r in items):
                raise ConfigurationError("every item must be a FunctionResponse")
            message = ToolResponse(function_responses=items)
        for fr in message.function_responses:
            if not fr.id:
                raise ConfigurationError(
                    f"function response {fr.name!r} has no id; the Gemini API matches "
                    "responses to calls by id"
                )
        await self.send(message)

    # --- flow control ----------------------------------------------------------------------
    @staticmethod
    def _directions(direction: Direction) -> tuple[bool, bool]:
        if direction not in ("both", "receive", "send"):
            raise ConfigurationError(
                f"direction must be 'both', 'receive' or 'send', got {direction!r:.40}"
            )
        return direction in ("both", "receive"), direction in ("both", "send")

    async def pause(self, direction: Direction = "both") -> None:
        """Hold messages back: received ones are not delivered, queued outgoing ones are not
        sent (``send`` waits once the send buffer is full). Nothing is lost or reordered.
        Idempotent; ``direction`` may be ``"receive"`` or ``"send"`` to pause one side."""
        receive, send = self._directions(direction)
        await trio.lowlevel.checkpoint()
        if receive and not self._incoming.paused_by("user"):
            self._incoming.pause()
            self._paused_since = trio.current_time()
        if send:
            self._outgoing.pause()

    async def resume(self, direction: Direction = "both") -> None:
        """Deliver and send everything held by ``pause()``, in order. Idempotent."""
        receive, send = self._directions(direction)
        await trio.lowlevel.checkpoint()
        if receive and self._incoming.paused_by("user"):
            self._incoming.resume()
            self._note_resumed()
        if send:
            self._outgoing.resume()

    def _note_resumed(self) -> None:
        if self._paused_since is not None:
            self._paused_total += trio.current_time() - self._paused_since
            self._paused_since = None

    @property
    def paused(self) -> bool:
        """True while either direction is paused."""
        return self._incoming.paused_by("user") or self._outgoing.paused_by("user")

    async def cancel(self) -> tuple[ClientMessage, ...]:
        """End the stream now, from any state: close with 1000 (bounded, shielded), discard
        the connection, and return the outgoing messages that were never sent (also kept in
        :attr:`unsent`). Later sends and receives raise :class:`StreamClosedError`.
        Idempotent."""
        if not self._cancelled and self._state not in ("closed",):
            self._cancelled = True
            self._state = "cancelled"
            self._collect_unsent()
            error = self._closed_error()
            self._outgoing.close(error)
            self._incoming.close(error)
            await self._close(flush=False)
            self._state = "cancelled"
        else:
            await trio.lowlevel.checkpoint()
        return tuple(self._unsent)

    # --- statistics ------------------------------------------------------------------------
    def statistics(self) -> StreamStatistics:
        """An immutable snapshot: messages and bytes each way, queues, timings."""
        conn = self._conn.statistics()
        paused = self._paused_total
        if self._paused_since is not None:
            paused += trio.current_time() - self._paused_since
        return StreamStatistics(
            state=self._state,
            messages_sent=self._sent,
            bytes_sent=self._sent_bytes,
            messages_received=self._received,
            bytes_received=self._received_bytes,
            queued_to_send=len(self._outgoing),
            queued_to_deliver=len(self._incoming),
            bytes_queued_to_deliver=self._incoming.nbytes,
            paused_receive=self._incoming.paused_by("user"),
            paused_send=self._outgoing.paused_by("user"),
            time_paused=paused,
            time_to_setup_complete=self._setup_time,
            time_to_first_chunk=tuple(self._first_chunk),
            last_heartbeat_rtt=conn.last_heartbeat_rtt,
            turns_completed=self._turns_completed,
            resume_handle=self._resume_handle,
            handovers=len(self._handovers),
            handover_gaps=tuple(h.gap for h in self._handovers),
            replay_queued=len(self._replay),
            replay_dropped=self._replay_dropped,
            connection=conn,
        )

