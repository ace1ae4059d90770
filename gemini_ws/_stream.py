"""LiveStream: the public API of one Live session, and the only code that performs the
:class:`~gemini_ws._session.Session`'s actions.

::

    application task(s)                 the stream's nursery (opened by client.stream())     socket
    ───────────────────                 ────────────────────────────────────────────────     ──────
    s.send_*() ──encode──▶ outgoing ByteQueue ──gate──▶ sender ──▶ LiveConnection.send ──▶  ws
    async for msg in s ◀── incoming ByteQueue ◀── receiver (reads the socket, decodes) ◀──  ws
                                                  supervisor (stops, dials, replays)
                                                  heartbeat, goAway timer

Per connection, one receiver task reads the socket (pongs and close frames keep flowing), decodes
each message, tells the Session, then queues the message for the application; one sender task
writes what the application queued, telling the Session when each write starts and ends. Both
queues are bounded in bytes. ``pause()`` closes the application's gates; the Session closes the
handover gate (``HoldSends``) in the phases that hold sends. The supervisor performs the actions
that need I/O (stop a connection, dial the next one with the resuming setup) one at a time.

The tasks never raise: a failure is recorded once and handed to the application on its next
send or receive (the same error either way), or on leaving the ``async with`` if it never
looked.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs
import trio

from ._buffer import ByteQueue
from ._connection import ConnectionStatistics, LiveConnection
from ._errors import (
    ConfigurationError,
    ConnectionLostError,
    GeminiWSError,
    PoolTimeoutError,
    ProtocolError,
    ServerClosedError,
    SetupRejectedError,
    SetupTimeoutError,
    StreamClosedError,
)
from ._session import (
    WRITABLE,
    Action,
    Dial,
    Emit,
    Fail,
    HoldSends,
    Outgoing,
    Phase,
    ReconnectPolicy,
    ReleaseSends,
    Replay,
    Session,
    SessionResumed,
    SetTimer,
    StopConnection,
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
from ._validate import validated
from ._wire import decode, encode, structure_config

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


@validated
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


#: What a stream yields: every server message, plus :class:`SessionResumed` events.
StreamEvent = ServerMessage | SessionResumed


@validated
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


class Pool(Protocol):
    """What a stream needs of the connection pool."""

    async def checkout(self) -> LiveConnection: ...

    async def checkout_replacement(self, old: LiveConnection) -> LiveConnection: ...

    def release(self, conn: LiveConnection) -> None: ...

    def note_dead_spare(self) -> None: ...


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


def _starts_turn_timer(message: ClientMessage) -> bool:
    if isinstance(message, ClientContent):
        return bool(message.turn_complete)
    if isinstance(message, RealtimeInput):
        return bool(message.text or message.audio_stream_end or message.activity_end)
    return isinstance(message, ToolResponse)


def _stale_spare(exc: BaseException) -> bool:
    """Whether a setup failure means the connection was already dead (not a refusal)."""
    if isinstance(exc, ConnectionLostError):
        return True
    return isinstance(exc, SetupRejectedError) and exc.code not in (1007, 1008)


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
        setup: Setup,
        options: StreamOptions,
        *,
        pool: Pool,
        reconnect: ReconnectPolicy | None = None,
    ) -> None:
        self.options = options
        self._pool = pool
        self._policy = reconnect
        self._session = Session(setup, reconnect)
        self._conn: LiveConnection | None = None
        #: the connection that holds the session's pool slot (a failed dial keeps it)
        self._slot: LiveConnection | None = None
        self._outgoing: ByteQueue[Outgoing] = ByteQueue(options.send_buffer_bytes)
        self._incoming: ByteQueue[StreamEvent] = ByteQueue(options.receive_buffer_bytes)
        self._nursery: trio.Nursery | None = None
        self._io_send, self._io_receive = trio.open_memory_channel[Action](float("inf"))
        self._served: dict[int, trio.Event] = {}
        self._sender_scopes: dict[int, trio.CancelScope] = {}
        self._retiring: set[LiveConnection] = set()
        #: the wait of a delivery blocked on a full receive buffer (in the receiver task)
        self._delivery_scope: trio.CancelScope | None = None
        #: tasks waiting for the stream's state to change (flush, reconfigure) park here;
        #: waking nobody costs next to nothing, which matters once per message
        self._changed = trio.lowlevel.ParkingLot()
        self._cancelled = False
        self._closing = False
        self._error_seen = False
        self._unsent: list[ClientMessage] = []
        self._unsure: set[int] = set()  # ids of items whose write did not complete
        # statistics
        self._sent = 0
        self._sent_bytes = 0
        self._received = 0
        self._received_bytes = 0
        self._setup_time: float | None = None
        self._turn_started_at: float | None = None
        self._first_chunk: list[float] = []
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._go_away: GoAway | None = None

    def __repr__(self) -> str:
        return f"<LiveStream {self.setup.model} {self.state}>"

    # --- properties --------------------------------------------------------------------------
    @property
    def setup(self) -> Setup:
        """The ``setup`` the session runs with now (without its resumption handle)."""
        return self._session.setup

    @property
    def model(self) -> str:
        """The model of this session (``models/...``)."""
        return self.setup.model

    @property
    def state(self) -> str:
        """``setup``, ``open``, ``resuming``, ``closing``, ``closed``, ``cancelled`` or
        ``failed``."""
        if self._cancelled:
            return "cancelled"
        phase = self._session.phase
        if phase in (Phase.DRAINING, Phase.QUIET):
            return "open"
        return str(phase.value)

    @property
    def resume_handle(self) -> str | None:
        """The newest resumable session handle the server gave (needs session resumption)."""
        return self._session.handle

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
        assert self._conn is not None
        return self._conn

    @property
    def handovers(self) -> tuple[SessionResumed, ...]:
        """Every handover this stream made, oldest first."""
        return tuple(self._session.handovers)

    @property
    def _error(self) -> GeminiWSError | None:
        return self._session.error

    # --- opening (driven by Client.stream) ----------------------------------------------------
    async def _open(self, nursery: trio.Nursery) -> None:
        """Take a connection, run the setup handshake, start the stream's tasks in *nursery*
        (under a cancel scope of their own: stopping them never touches the caller's body)."""
        self._nursery = await nursery.start(self._host)
        stale_spares = 0
        while True:
            conn = await self._pool.checkout()
            t0 = trio.current_time()
            try:
                early = await self._setup_connection(conn, self._session.setup)
            except BaseException as exc:
                with trio.CancelScope(shield=True):
                    await conn.aclose(1000)
                    self._pool.release(conn)
                # A spare the server dropped while it sat idle, unnoticed until now: no user
                # work was lost, so it is replaced without the caller seeing an error.
                if conn.was_spare and _stale_spare(exc) and stale_spares < 3:
                    stale_spares += 1
                    self._pool.note_dead_spare()
                    continue
                raise
            break
        self._setup_time = trio.current_time() - t0
        self._conn = self._slot = conn
        self._session.setup_complete()
        self._push_early(early)
        self._nursery.start_soon(self._supervise)
        await self._nursery.start(self._serve, conn, self._session.generation)

    async def _host(self, *, task_status: trio.TaskStatus[trio.Nursery]) -> None:
        """Hold the nursery of the stream's tasks until :meth:`_close` cancels it."""
        async with trio.open_nursery() as tasks:
            task_status.started(tasks)
            await trio.sleep_forever()

    def _push_early(self, early: list[tuple[StreamEvent, int]]) -> None:
        for event, size in early:
            self._incoming.push_back(event, size)
            self._count_delivered(event, size)

    async def _setup_connection(
        self, conn: LiveConnection, setup: Setup
    ) -> list[tuple[StreamEvent, int]]:
        """Send *setup* on *conn* and wait for ``setupComplete`` (bounded), with the heartbeat
        running (a server that stalls is found out within ``heartbeat_timeout``). Returns what
        the server sent before it that is worth delivering (unknown types, usage reports)."""
        failure: BaseException | None = None
        early: list[tuple[StreamEvent, int]] = []
        async with trio.open_nursery() as heartbeat:
            heartbeat.start_soon(conn.heartbeat)
            try:
                early = await self._handshake(conn, setup)
            except BaseException as exc:  # raised below, not wrapped in the nursery's group
                failure = exc
            finally:
                heartbeat.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return early

    async def _handshake(
        self, conn: LiveConnection, setup: Setup
    ) -> list[tuple[StreamEvent, int]]:
        early: list[tuple[StreamEvent, int]] = []
        handle = self._session.handle
        conn.attach_reader(True)  # the handshake reads it now
        try:
            with trio.fail_after(self.options.setup_timeout):
                await conn.send(encode(setup))
                frame = await conn.receive()
                message = decode(frame)
                while isinstance(message, UnknownMessage | UsageMessage):
                    early.append((message, len(frame)))
                    frame = await conn.receive()
                    message = decode(frame)
        except trio.TooSlowError:
            raise SetupTimeoutError(
                f"no setupComplete within {self.options.setup_timeout} s", resume_handle=handle
            ) from None
        except ServerClosedError as exc:
            raise SetupRejectedError(
                exc.code,
                exc.reason,
                message=f"the server rejected the setup for {setup.model} "
                f"(close code {exc.code})",
                resume_handle=handle,
            ) from None
        finally:
            conn.attach_reader(False)
        if not isinstance(message, SetupComplete):
            raise ProtocolError(
                f"expected setupComplete as the first server message, got "
                f"{type(message).__name__}",
                frame,
            )
        conn.resume_handle = handle
        return early

    # --- performing the session's actions -----------------------------------------------------
    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, HoldSends):
                self._outgoing.pause("handover")
            elif isinstance(action, ReleaseSends):
                self._outgoing.resume("handover")
            elif isinstance(action, Replay):
                for item in reversed(action.items):
                    self._outgoing.push_front(item, item.size)
            elif isinstance(action, Emit):
                self._incoming.push_back(action.event, 0)
            elif isinstance(action, Fail):
                self._on_fail(action.error)
            elif isinstance(action, SetTimer):
                assert self._nursery is not None
                self._nursery.start_soon(self._timer, action.at)
            else:  # StopConnection, Dial: I/O, done by the supervisor in order
                self._io_send.send_nowait(action)
        self._note_change()

    def _note_change(self) -> None:
        if self._changed:
            self._changed.unpark_all()

    def _on_fail(self, error: GeminiWSError) -> None:
        """The session is over with *error*: wake everybody, report what never went out."""
        if error.resume_handle is None and self._session.handle is not None:
            error.resume_handle = self._session.handle  # the caller can still resume by hand
        self._collect_unsent()
        self._outgoing.close(error)
        self._incoming.close(error)
        conn = self._conn
        if conn is not None and self._nursery is not None:
            self._nursery.start_soon(self._retire, conn)

    def _collect_unsent(self) -> None:
        written_unsure = [
            item for item in self._session.replay_log if id(item) in self._unsure
        ]
        self._unsent.extend(item.message for item in written_unsure)
        self._unsure.clear()
        self._unsent.extend(item.message for item in self._outgoing.drain())

    async def _timer(self, at: float) -> None:
        await trio.sleep_until(at)
        self._apply(self._session.deadline(trio.current_time()))

    async def _retire(self, conn: LiveConnection) -> bool:
        """Close *conn* (bounded, shielded); what its receiver still reads is delivered."""
        self._retiring.add(conn)
        if self._delivery_scope is not None:
            self._delivery_scope.cancel()
        try:
            return await conn.aclose(1000)
        finally:
            self._retiring.discard(conn)

    async def _supervise(self) -> None:
        """Perform the I/O actions one at a time: stop the connection, dial the next."""
        async for action in self._io_receive:
            if isinstance(action, StopConnection):
                old = self._conn
                assert old is not None
                scope = self._sender_scopes.get(self._session.generation)
                if scope is not None:
                    scope.cancel()
                if action.wait:
                    await self._retire(old)
                else:
                    assert self._nursery is not None
                    self._nursery.start_soon(self._retire, old)
            elif isinstance(action, Dial):
                await self._dial(action)

    async def _dial(self, action: Dial) -> None:
        await trio.sleep(action.delay)
        old = self._conn
        assert old is not None
        new: LiveConnection | None = None
        try:
            assert self._slot is not None
            new = await self._pool.checkout_replacement(self._slot)
            self._slot = new  # the slot moved with it, and stays if its setup fails
            early = await self._setup_connection(new, action.setup)
        except BaseException as exc:
            if new is not None:
                await new.aclose(1000)  # shielded: also when cancelled
            if not isinstance(exc, GeminiWSError):
                raise
            if isinstance(exc, PoolTimeoutError):  # never retried as a dial failure
                self._apply(self._session.fail(exc))
            else:
                self._apply(self._session.dial_failed(exc, trio.current_time()))
            return
        # everything the old connection read is delivered before the SessionResumed event
        served = self._served.get(self._session.generation)
        try:
            if served is not None:
                with trio.move_on_after(self.options.close_timeout):
                    await served.wait()
                if not served.is_set():
                    await self._retire(old)
                    await served.wait()
        except BaseException:
            await new.aclose(1000)  # not in use yet: nobody else would close it
            raise
        self._conn = new
        self._go_away = None
        self._apply(self._session.dial_succeeded(trio.current_time(), warm=new.was_spare))
        self._push_early(early)
        assert self._nursery is not None
        self._nursery.start_soon(self._serve, new, self._session.generation)

    # --- the tasks of one connection ------------------------------------------------------
    async def _serve(
        self,
        conn: LiveConnection,
        generation: int,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the receiver, sender and heartbeat of *conn* until it ends (started once the
        sender waits for messages)."""
        done = self._served[generation] = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._sender, conn, generation)
                nursery.start_soon(conn.heartbeat)
                task_status.started()
                await self._receiver(conn, generation)
                nursery.cancel_scope.cancel()
        finally:
            done.set()
            self._note_change()

    async def _receiver(self, conn: LiveConnection, generation: int) -> None:
        conn.attach_reader(True)
        try:
            while True:
                try:
                    frame = await conn.receive()
                except GeminiWSError as exc:
                    if conn not in self._retiring and not isinstance(exc, StreamClosedError):
                        self._apply(
                            self._session.connection_lost(exc, generation, trio.current_time())
                        )
                    return
                try:
                    message = decode(frame)
                except ProtocolError as exc:
                    exc.resume_handle = self._session.handle
                    self._apply(self._session.fail(exc))
                    await conn.abort()
                    return
                self._observe(message)
                self._apply(self._session.server_message(message, generation, trio.current_time()))
                if not await self._deliver(conn, message, len(frame)):
                    return
        finally:
            conn.attach_reader(False)

    async def _deliver(self, conn: LiveConnection, event: StreamEvent, size: int) -> bool:
        """Queue *event* for the application (waiting while the buffer is full, unless the
        connection is being retired). False once the stream has stopped delivering."""
        incoming = self._incoming
        if incoming.closed:
            return False
        try:
            incoming.put_nowait(event, size)
        except trio.WouldBlock:
            pass
        else:
            self._count_delivered(event, size)
            return True
        if conn not in self._retiring:
            conn.set_backpressure(True)
            try:
                with trio.CancelScope() as scope:
                    self._delivery_scope = scope
                    await incoming.put(event, size)
                    self._count_delivered(event, size)
                    return True
            except (trio.ClosedResourceError, GeminiWSError):
                return False
            finally:
                self._delivery_scope = None
                conn.set_backpressure(False)
        if incoming.closed:
            return False
        incoming.push_back(event, size)  # retiring: nothing it read may be lost or wait
        self._count_delivered(event, size)
        return True

    def _count_delivered(self, event: StreamEvent, size: int) -> None:
        if isinstance(event, SessionResumed):
            return
        self._received += 1
        self._received_bytes += size

    def _observe(self, message: ServerMessage) -> None:
        """What the stream itself keeps: goAway, turn timing, the handle on the connection."""
        if isinstance(message, ServerContent):
            if self._turn_started_at is not None and (
                message.model_turn is not None or message.output_transcription is not None
            ):
                self._first_chunk.append(trio.current_time() - self._turn_started_at)
                self._turn_started_at = None
            if message.turn_complete:
                self._turn_started_at = None
        elif isinstance(message, GoAway):
            self._go_away = message

    async def _sender(
        self,
        conn: LiveConnection,
        generation: int,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        session = self._session
        with trio.CancelScope() as scope:
            self._sender_scopes[generation] = scope
            task_status.started()
            try:
                while True:
                    try:
                        item = await self._outgoing.get()
                    except (trio.EndOfChannel, trio.ClosedResourceError, GeminiWSError):
                        return
                    if generation != session.generation or session.phase not in WRITABLE:
                        self._outgoing.push_front(item, item.size)
                        return
                    self._apply(session.write_started(item, generation))
                    if self._turn_started_at is None and _starts_turn_timer(item.message):
                        # stamped before the write: the reply may arrive before send() returns
                        self._turn_started_at = trio.current_time()
                    try:
                        await conn.send(item.text)
                    except BaseException as exc:
                        self._write_failed(item, generation)
                        if isinstance(exc, GeminiWSError):
                            # the receiver may be blocked delivering (the app is slow) and
                            # not see the end for a while: the sender reports it too
                            if conn not in self._retiring and not isinstance(
                                exc, StreamClosedError
                            ):
                                self._apply(
                                    session.connection_lost(
                                        exc, generation, trio.current_time()
                                    )
                                )
                            return
                        raise
                    self._sent += 1
                    self._sent_bytes += item.size
                    self._unsure.discard(id(item))  # (a replayed message went out this time)
                    self._apply(session.write_done(item, generation))
                    conn.resume_handle = session.handle
            finally:
                self._sender_scopes.pop(generation, None)
                self._note_change()

    def _write_failed(self, item: Outgoing, generation: int) -> None:
        self._apply(self._session.write_failed(item, generation))
        if self._policy is None:
            self._unsent.append(item.message)
        else:
            self._unsure.add(id(item))

    # --- closing -------------------------------------------------------------------------
    async def _wait_flushed(self) -> None:
        """Until everything queued was written on a connection in CLOSING (or the end)."""
        session = self._session
        while True:
            if session.phase in (Phase.CLOSED, Phase.FAILED):
                return
            if (
                session.phase is Phase.CLOSING
                and len(self._outgoing) == 0
                and session.in_flight is None
            ):
                return
            await self._changed.park()

    async def _close(self, *, flush: bool) -> None:
        """End the stream: optionally flush queued messages (across a resumable drop), close
        with 1000, stop the tasks. Shielded and bounded."""
        if self._closing:
            return
        self._closing = True
        session = self._session
        policy = self._policy
        attempts = 1 + (policy.max_attempts if policy is not None else 0)
        with trio.CancelScope(shield=True):
            confirmed = False  # the server answered our close: it read everything written
            if flush and session.phase not in (Phase.FAILED, Phase.CLOSED):
                self._apply(session.close_requested())
                self._outgoing.resume("user")  # leaving the block flushes, paused or not
                self._outgoing.close()
                with trio.move_on_after(self.options.close_timeout * (attempts + 1)):
                    for _ in range(attempts):
                        await self._wait_flushed()
                        conn = self._conn
                        if session.phase is not Phase.CLOSING or conn is None:
                            break
                        answered = await self._retire(conn)
                        if answered or policy is None or not session.replay_log:
                            confirmed = answered or not session.replay_log
                            break
                        # the close was not answered: what was written since the newest handle
                        # may not have arrived, so the session resumes and flushes it again
                        self._apply(
                            session.connection_lost(
                                ConnectionLostError("the connection was lost while closing"),
                                session.generation,
                                trio.current_time(),
                            )
                        )
            if (
                flush
                and not confirmed
                and not self._cancelled
                and session.phase in (Phase.RESUMING, Phase.CLOSING)
                and session.replay_log
            ):
                # could not confirm delivery: report what the model may not have consumed
                self._unsure.update(id(item) for item in session.replay_log)
            self._collect_unsent()
            error = session.error or self._closed_error()
            self._outgoing.close(error)
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
            conn = self._conn
            if conn is not None:
                await self._retire(conn)
            if self._slot is not None:
                self._pool.release(self._slot)
            self._apply(session.closed())
            self._incoming.close(self._closed_error())
            self._note_resumed()

    async def _client_closed(self) -> None:
        """The Client is closing while this stream is open."""
        self._apply(
            self._session.fail(
                StreamClosedError(
                    "the Client was closed while the stream was open",
                    resume_handle=self._session.handle,
                )
            )
        )
        await self._close(flush=False)

    def _closed_error(self) -> GeminiWSError:
        if self._session.error is not None:
            return self._session.error
        handle = self._session.handle
        if self._cancelled:
            return StreamClosedError(
                "the stream was cancelled", unsent=self._unsent, resume_handle=handle
            )
        return StreamClosedError("the stream is closed", resume_handle=handle)

    def _check_usable(self) -> None:
        if self._cancelled or self._closing:
            raise self._closed_error()
        if self._session.error is not None:
            self._error_seen = True
            raise self._session.error

    def _unseen_error(self) -> GeminiWSError | None:
        """The error that ended the stream, if the application has not been shown it."""
        return None if self._error_seen else self._session.error

    async def reconfigure(self, config: LiveConfig | Mapping[str, Any]) -> SessionResumed:
        """Change the session's configuration (system instruction, tools, anything but the
        model) by resuming it on a new connection with a new ``setup``.

        Needs a stream opened with ``reconnect`` on. Waits for a quiet moment (no request
        waiting for its answer, the handle after the last turn), then hands over; returns the
        :class:`SessionResumed` event (also yielded in the message stream). Bound the wait with
        ``trio.fail_after`` if needed.
        """
        if self._policy is None:
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
        session = self._session
        # one handover at a time: let one already wanted or under way finish first
        while session.phase is not Phase.OPEN:
            self._check_usable()
            await self._changed.park()
        self._apply(session.reconfigure(setup, trio.current_time()))
        handover = session.pending_handover
        assert handover is not None
        while handover.result is None:
            if handover.failed is not None:
                raise handover.failed
            self._check_usable()
            if session.phase is Phase.OPEN and session.pending_handover is not handover:
                raise self._session.error or StreamClosedError("the reconfigure was abandoned")
            await self._changed.park()
        return handover.result

    # --- receiving -------------------------------------------------------------------------
    async def receive(self) -> StreamEvent:
        """The next server message, in order, waiting while none is there or while paused.

        Raises the error that ended the stream once every message received before it has
        been delivered; :class:`StreamClosedError` after ``cancel()`` or the end of the
        ``async with``.
        """
        if self._cancelled or self._session.phase is Phase.CLOSED:
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
            await self._outgoing.put(Outgoing(message, text), len(text))
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
        self,
        turns: Content | str | Mapping[str, Any] | Sequence[Content | str | Mapping[str, Any]],
        *,
        turn_complete: bool = True,
    ) -> None:
        """Send ``clientContent`` with one or more turns. A str is a user text turn; a dict is
        a content in the google-genai style (``{"role": "user", "parts": [{"text": ...}]}``,
        snake_case or camelCase), checked like a :class:`Content`."""
        if isinstance(turns, Content | str | Mapping):
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
            elif isinstance(item, Mapping):
                contents.append(structure_config(item, Content, "content"))
            else:
                raise ConfigurationError(
                    f"turns must be Content, str or a dict, got {type(item).__name__}"
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
        if not self._cancelled and not self._closing:
            self._cancelled = True
            self._collect_unsent()
            error = self._closed_error()
            self._outgoing.close(error)
            self._incoming.close(error)
            await self._close(flush=False)
        else:
            await trio.lowlevel.checkpoint()
        return tuple(self._unsent)

    # --- statistics ------------------------------------------------------------------------
    def statistics(self) -> StreamStatistics:
        """An immutable snapshot: messages and bytes each way, queues, timings."""
        assert self._conn is not None
        conn = self._conn.statistics()
        paused = self._paused_total
        if self._paused_since is not None:
            paused += trio.current_time() - self._paused_since
        session = self._session
        return StreamStatistics(
            state=self.state,
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
            turns_completed=session.turns_completed,
            resume_handle=session.handle,
            handovers=len(session.handovers),
            handover_gaps=tuple(h.gap for h in session.handovers),
            replay_queued=len(session.replay_log),
            replay_dropped=session.replay_dropped,
            connection=conn,
        )
