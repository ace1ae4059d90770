"""The runner of one Live session: the only code that performs the
:class:`~gemini_ws._session.Session`'s actions. :class:`~gemini_ws._stream.LiveStream` is the
public API over it.

::

    application task(s)                 the stream's nursery (opened by client.stream())     socket
    ───────────────────                 ────────────────────────────────────────────────     ──────
    s.send_*() ──encode──▶ outgoing ByteQueue ──gate──▶ sender ──▶ LiveConnection.send ──▶  ws
               └──(nothing queued: written from the caller's task)──────▶ LiveConnection.send
    async for msg in s ◀── incoming ByteQueue ◀── receiver (reads the socket, decodes) ◀──  ws
                                                  supervisor (stops, dials, replays)
                                                  heartbeat, goAway timer

Per connection, one receiver task reads the socket (pongs and close frames keep flowing), decodes
each message, tells the Session, then queues the message for the application; one sender task
writes what the application queued, telling the Session when each write starts and ends (a send
with nothing queued is written from the caller's task instead: see
:meth:`SessionRunner.submit`). Both queues are bounded in bytes. ``pause()`` closes the
application's gates; the Session closes the handover gate (``HoldSends``) in the phases that
hold sends. The supervisor performs the actions
that need I/O (stop a connection, dial the next one with the resuming setup) one at a time.

The tasks never raise: a failure is recorded once and handed to the application on its next
send or receive (the same error either way), or on leaving the ``async with`` if it never
looked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import attrs
import trio

from ._buffer import YIELD_EVERY, ByteQueue
from ._connection import LiveConnection
from ._errors import (
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
    ClientContent,
    ClientMessage,
    GoAway,
    RealtimeInput,
    ServerContent,
    ServerMessage,
    Setup,
    SetupComplete,
    ToolResponse,
    UnknownMessage,
    UsageMessage,
)
from ._validate import validated
from ._wire import decode, encode

if TYPE_CHECKING:
    from ._metrics import StreamObserver

__all__ = ["Pool", "SessionRunner", "StreamEvent", "StreamOptions"]

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





class Pool(Protocol):
    """What a stream needs of the connection pool."""

    async def checkout(self) -> LiveConnection: ...

    async def checkout_replacement(self, old: LiveConnection) -> LiveConnection: ...

    def release(self, conn: LiveConnection) -> None: ...

    def note_dead_spare(self) -> None: ...



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

class SessionRunner:
    """Runs one session (see the module docstring): its connections, its tasks, its queues.
    Attributes without an underscore are read by :class:`~gemini_ws._stream.LiveStream`."""

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
        self.policy = reconnect
        self.session = Session(setup, reconnect)
        self.conn: LiveConnection | None = None
        #: the connection that holds the session's pool slot (a failed dial keeps it)
        self._slot: LiveConnection | None = None
        self.outgoing: ByteQueue[Outgoing] = ByteQueue(options.send_buffer_bytes)
        self.incoming: ByteQueue[StreamEvent] = ByteQueue(options.receive_buffer_bytes)
        self.nursery: trio.Nursery | None = None
        self._io_send, self._io_receive = trio.open_memory_channel[Action](float("inf"))
        self._served: dict[int, trio.Event] = {}
        self._sender_scopes: dict[int, trio.CancelScope] = {}
        #: the generation of the connection a caller's task is writing on (see submit)
        self._inline: int | None = None
        self._send_streak = 0  # sends from callers' tasks since one last yielded
        self._retiring: set[LiveConnection] = set()
        #: the wait of a delivery blocked on a full receive buffer (in the receiver task)
        self._delivery_scope: trio.CancelScope | None = None
        #: tasks waiting for the stream's state to change (flush, reconfigure) park here;
        #: waking nobody costs next to nothing, which matters once per message
        self.changed = trio.lowlevel.ParkingLot()
        self.cancelled = False
        self.closing = False
        self.error_seen = False
        self.unsent: list[ClientMessage] = []
        self._unsure: set[int] = set()  # ids of items whose write did not complete
        # statistics
        self.sent = 0
        self.sent_bytes = 0
        self.received = 0
        self.received_bytes = 0
        self.setup_time: float | None = None
        self._turn_started_at: float | None = None
        self.first_chunk: list[float] = []
        self.paused_since: float | None = None
        self.paused_total = 0.0
        self.go_away: GoAway | None = None
        #: metrics and traces (None when nobody asked for either: then nothing is observed)
        self.observer: StreamObserver | None = None

    # --- opening (driven by Client.stream) ----------------------------------------------------
    async def open(self, nursery: trio.Nursery) -> None:
        """Take a connection, run the setup handshake, start the stream's tasks in *nursery*
        (under a cancel scope of their own: stopping them never touches the caller's body)."""
        self.nursery = await nursery.start(self._host)
        stale_spares = 0
        observer = self.observer
        while True:
            asked = trio.current_time()
            conn = await self._pool.checkout()
            t0 = trio.current_time()
            try:
                early = await self._setup_connection(conn, self.session.setup)
            except BaseException as exc:
                if observer is not None:
                    observer.setup_done(conn, asked, t0, trio.current_time(), exc, first=True)
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
        self.setup_time = trio.current_time() - t0
        if observer is not None:
            observer.setup_done(conn, asked, t0, t0 + self.setup_time, None, first=True)
        self.conn = self._slot = conn
        self.session.setup_complete()
        self._push_early(early)
        self.nursery.start_soon(self._supervise)
        await self.nursery.start(self._serve, conn, self.session.generation)

    async def _host(self, *, task_status: trio.TaskStatus[trio.Nursery]) -> None:
        """Hold the nursery of the stream's tasks until :meth:`_close` cancels it."""
        async with trio.open_nursery() as tasks:
            task_status.started(tasks)
            await trio.sleep_forever()

    def _push_early(self, early: list[tuple[StreamEvent, int]]) -> None:
        for event, size in early:
            self.incoming.push_back(event, size)
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
        handle = self.session.handle
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
    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, HoldSends):
                self.outgoing.pause("handover")
            elif isinstance(action, ReleaseSends):
                self.outgoing.resume("handover")
            elif isinstance(action, Replay):
                for item in reversed(action.items):
                    self.outgoing.push_front(item, item.size)
            elif isinstance(action, Emit):
                self.incoming.push_back(action.event, 0)
                if self.observer is not None:
                    self.observer.on_handover(action.event, trio.current_time())
            elif isinstance(action, Fail):
                # what may not have reached the model is reported unsent with the error
                self._unsure.update(id(item) for item in action.unconfirmed)
                self._on_fail(action.error)
            elif isinstance(action, SetTimer):
                assert self.nursery is not None
                self.nursery.start_soon(self._timer, action.at)
            else:  # StopConnection, Dial: I/O, done by the supervisor in order
                self._io_send.send_nowait(action)
        self._note_change()

    def _note_change(self) -> None:
        if self.changed:
            self.changed.unpark_all()

    def _on_fail(self, error: GeminiWSError) -> None:
        """The session is over with *error*: wake everybody, report what never went out."""
        if error.resume_handle is None and self.session.handle is not None:
            error.resume_handle = self.session.handle  # the caller can still resume by hand
        if self.observer is not None:
            self.observer.on_error(error, trio.current_time())
        self.collect_unsent()
        self.outgoing.close(error)
        self.incoming.close(error)
        conn = self.conn
        if conn is not None and self.nursery is not None:
            self.nursery.start_soon(self._retire, conn)

    def collect_unsent(self) -> None:
        written_unsure = [
            item for item in self.session.replay_log if id(item) in self._unsure
        ]
        self.unsent.extend(item.message for item in written_unsure)
        self._unsure.clear()
        self.unsent.extend(item.message for item in self.outgoing.drain())

    async def _timer(self, at: float) -> None:
        await trio.sleep_until(at)
        self.apply(self.session.deadline(trio.current_time()))

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
                old = self.conn
                assert old is not None
                scope = self._sender_scopes.get(self.session.generation)
                if scope is not None:
                    scope.cancel()
                if self._inline == self.session.generation:
                    # a write from a caller's task is stuck (the socket is full, or another
                    # write holds it): part of its frame may be out, so the connection cannot
                    # be closed cleanly; aborting it ends the write, and the message is kept
                    # for replay (see submit)
                    self._retiring.add(old)
                    await old.abort()
                if action.wait:
                    await self._retire(old)
                else:
                    assert self.nursery is not None
                    self.nursery.start_soon(self._retire, old)
            elif isinstance(action, Dial):
                await self._dial(action)

    async def _dial(self, action: Dial) -> None:
        await trio.sleep(action.delay)
        old = self.conn
        assert old is not None
        new: LiveConnection | None = None
        asked = acquired = trio.current_time()
        try:
            assert self._slot is not None
            new = await self._pool.checkout_replacement(self._slot)
            acquired = trio.current_time()
            self._slot = new  # the slot moved with it, and stays if its setup fails
            early = await self._setup_connection(new, action.setup)
        except BaseException as exc:
            if self.observer is not None:
                self.observer.setup_done(
                    new, asked, acquired, trio.current_time(), exc, first=False
                )
            if new is not None:
                await new.aclose(1000)  # shielded: also when cancelled
            if not isinstance(exc, GeminiWSError):
                raise
            if self.session.phase is not Phase.RESUMING:
                return  # the stream was closed or cancelled while this dial ran
            if isinstance(exc, PoolTimeoutError):  # never retried as a dial failure
                self.apply(self.session.fail(exc))
            else:
                self.apply(self.session.dial_failed(exc, trio.current_time()))
            return
        if self.observer is not None:
            self.observer.setup_done(new, asked, acquired, trio.current_time(), None, first=False)
        # everything the old connection read is delivered before the SessionResumed event
        served = self._served.get(self.session.generation)
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
        if self.session.phase is not Phase.RESUMING:
            await new.aclose(1000)  # closed or cancelled meanwhile: never put to use
            return
        self.conn = new
        self.go_away = None
        self.apply(self.session.dial_succeeded(trio.current_time(), warm=new.was_spare))
        self._push_early(early)
        assert self.nursery is not None
        self.nursery.start_soon(self._serve, new, self.session.generation)

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
        # One socket read can hold hundreds of messages: the receiver yields after every
        # YIELD_EVERY it delivered, as the application's receive() does after as many taken,
        # so a consumer that keeps up keeps the queue short (both sides get the same turns).
        streak = 0
        try:
            while True:
                streak += 1
                if streak > YIELD_EVERY:
                    streak = 0
                    await trio.lowlevel.checkpoint()
                try:
                    frame = await conn.receive()
                except GeminiWSError as exc:
                    if conn not in self._retiring and not isinstance(exc, StreamClosedError):
                        self.apply(
                            self.session.connection_lost(exc, generation, trio.current_time())
                        )
                    return
                try:
                    message = decode(frame)
                except ProtocolError as exc:
                    exc.resume_handle = self.session.handle
                    self.apply(self.session.fail(exc))
                    await conn.abort()
                    return
                self._observe(message)
                self.apply(self.session.server_message(message, generation, trio.current_time()))
                incoming = self.incoming
                if incoming.closed:
                    return  # the stream has stopped delivering
                size = len(frame)
                try:
                    incoming.put_nowait(message, size)  # the common case: there is room
                except trio.WouldBlock:
                    if not await self._deliver_when_full(conn, message, size):
                        return
                else:
                    self.received += 1
                    self.received_bytes += size
        finally:
            conn.attach_reader(False)

    async def _deliver_when_full(
        self, conn: LiveConnection, event: StreamEvent, size: int
    ) -> bool:
        """Queue *event* for the application when its buffer is full: wait for room, unless
        the connection is being retired (then past the bound). False once the stream has
        stopped delivering."""
        incoming = self.incoming
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
        self.received += 1
        self.received_bytes += size

    def _observe(self, message: ServerMessage) -> None:
        """What the stream itself keeps: goAway, turn timing, the handle on the connection;
        and what the observer makes metrics and spans of."""
        if self.observer is not None:
            self.observer.on_message(message)
        if isinstance(message, ServerContent):
            if self._turn_started_at is not None and (
                message.model_turn is not None or message.output_transcription is not None
            ):
                self.first_chunk.append(trio.current_time() - self._turn_started_at)
                self._turn_started_at = None
            if message.turn_complete:
                self._turn_started_at = None
        elif isinstance(message, GoAway):
            self.go_away = message

    async def _sender(
        self,
        conn: LiveConnection,
        generation: int,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        session = self.session
        with trio.CancelScope() as scope:
            self._sender_scopes[generation] = scope
            task_status.started()
            try:
                while True:
                    try:
                        item = await self.outgoing.get()
                    except (trio.EndOfChannel, trio.ClosedResourceError, GeminiWSError):
                        return
                    while self._inline is not None:  # a caller is writing: after it
                        await self.changed.park()
                    if generation != session.generation or session.phase not in WRITABLE:
                        self.outgoing.push_front(item, item.size)
                        return
                    if not await self._write(conn, generation, item):
                        return
            finally:
                self._sender_scopes.pop(generation, None)
                self._note_change()

    # --- writing from the caller's task ----------------------------------------------------
    async def submit(self, item: Outgoing) -> None:
        """Send *item*: written at once from the calling task when nothing is queued or being
        written (no task switch to the sender), else queued for the sender, in order.

        A write the socket takes at once does not yield to other tasks, at most
        :data:`~gemini_ws._buffer.YIELD_EVERY` sends in a row (a yield is a trip round trio's
        run loop, once per message otherwise); cancellation is checked on every send.

        A cancel of the caller before any byte of *item* was written withdraws it, exactly as a
        cancelled ``put`` would; one that came while part of it was on the wire aborts the
        connection, and *item* is then replayed after the resume (``reconnect`` on) or reported
        unsent, as a torn write of the sender's is. A handover that must stop the connection
        while such a write is stuck aborts the connection (the supervisor does): the write
        ends, *item* is kept for replay, and the send returns normally."""
        if self._send_streak >= YIELD_EVERY:
            self._send_streak = 0
            await trio.lowlevel.checkpoint()
        session = self.session
        conn = self.conn
        generation = session.generation
        if (
            self._inline is not None
            or len(self.outgoing)
            or self.outgoing.paused
            or self.outgoing.closed
            or session.phase not in WRITABLE
            or session.in_flight is not None
            or conn is None
            or generation not in self._sender_scopes
        ):
            self._send_streak = 0
            await self.outgoing.put(item, item.size)
            return
        self._send_streak += 1
        self._inline = generation
        try:
            await self._write(conn, generation, item, inline=True)
        finally:
            self._inline = None
            self._note_change()

    async def _write(
        self,
        conn: LiveConnection,
        generation: int,
        item: Outgoing,
        *,
        inline: bool = False,
    ) -> bool:
        """Write *item* on *conn*, telling the session; False once the connection is over.
        *inline*: written from the caller's task (see :meth:`submit`)."""
        session = self.session
        if session.withdrawn_calls:
            # a response to a call the resumed session never made (SessionResumed
            # .withdrawn_calls) is not sent: the model calls again if it needs the tool
            kept = session.without_withdrawn(item)
            if kept is None:
                logger.debug("a tool response to a withdrawn call was not sent")
                await trio.lowlevel.checkpoint()
                return True
            item = kept
        if self.observer is not None and item.seq == 0 and not item.seed:
            # (a replayed message is not a new request; seq is set by its first write)
            self.observer.on_write(item.message, trio.current_time())
        self.apply(session.write_started(item, generation))
        if (
            self._turn_started_at is None
            and item.audio is None  # (an audio chunk starts no turn)
            and _starts_turn_timer(item.message)
        ):
            # stamped before the write: the reply may arrive before send() returns
            self._turn_started_at = trio.current_time()
        try:
            await conn.send(item.text)
        except BaseException as exc:
            if inline and isinstance(exc, trio.Cancelled) and conn.state == "open":
                # the caller was cancelled before any byte went out: never sent
                self.apply(session.write_withdrawn(item, generation))
                raise
            self._write_failed(item, generation)
            if isinstance(exc, GeminiWSError):
                # the receiver may be blocked delivering (the app is slow) and not see the
                # end for a while: the writer reports it too
                if conn not in self._retiring and not isinstance(exc, StreamClosedError):
                    self.apply(session.connection_lost(exc, generation, trio.current_time()))
                return False
            raise
        self.sent += 1
        self.sent_bytes += item.size
        self._unsure.discard(id(item))  # (a replayed message went out this time)
        self.apply(session.write_done(item, generation))
        conn.resume_handle = session.handle
        return True

    def _write_failed(self, item: Outgoing, generation: int) -> None:
        self.apply(self.session.write_failed(item, generation))
        if self.policy is None:
            self.unsent.append(item.message)
        else:
            self._unsure.add(id(item))

    # --- closing -------------------------------------------------------------------------
    async def _wait_flushed(self) -> None:
        """Until everything queued was written on a connection in CLOSING (or the end)."""
        session = self.session
        while True:
            if session.phase in (Phase.CLOSED, Phase.FAILED):
                return
            if (
                session.phase is Phase.CLOSING
                and len(self.outgoing) == 0
                and session.in_flight is None
            ):
                return
            await self.changed.park()

    async def close(self, *, flush: bool) -> None:
        """End the stream: optionally flush queued messages (across a resumable drop), close
        with 1000, stop the tasks. Shielded and bounded."""
        if self.closing:
            return
        self.closing = True
        session = self.session
        policy = self.policy
        attempts = 1 + (policy.max_attempts if policy is not None else 0)
        with trio.CancelScope(shield=True):
            confirmed = False  # the server answered our close: it read everything written
            if flush and session.phase not in (Phase.FAILED, Phase.CLOSED):
                self.apply(session.close_requested())
                self.outgoing.resume("user")  # leaving the block flushes, paused or not
                self.outgoing.close()
                with trio.move_on_after(self.options.close_timeout * (attempts + 1)):
                    for _ in range(attempts):
                        await self._wait_flushed()
                        conn = self.conn
                        if session.phase is not Phase.CLOSING or conn is None:
                            break
                        answered = await self._retire(conn)
                        if answered or policy is None or not session.replay_log:
                            confirmed = answered or not session.replay_log
                            break
                        # the close was not answered: what was written since the newest handle
                        # may not have arrived, so the session resumes and flushes it again
                        self.apply(
                            session.connection_lost(
                                ConnectionLostError("the connection was lost while closing"),
                                session.generation,
                                trio.current_time(),
                            )
                        )
            if (
                flush
                and not confirmed
                and not self.cancelled
                and session.phase in (Phase.RESUMING, Phase.CLOSING)
                and session.replay_log
            ):
                # could not confirm delivery: report what the model may not have consumed
                self._unsure.update(id(item) for item in session.unconfirmed())
            self.collect_unsent()
            error = session.error or self.closed_error()
            self.outgoing.close(error)
            if self.nursery is not None:
                self.nursery.cancel_scope.cancel()
            conn = self.conn
            if conn is not None:
                await self._retire(conn)
            if self._slot is not None:
                self._pool.release(self._slot)
            self.apply(session.closed())
            self.incoming.close(self.closed_error())
            self.note_resumed()

    async def client_closed(self) -> None:
        """The Client is closing while this stream is open."""
        self.apply(
            self.session.fail(
                StreamClosedError(
                    "the Client was closed while the stream was open",
                    resume_handle=self.session.handle,
                )
            )
        )
        await self.close(flush=False)

    def closed_error(self) -> GeminiWSError:
        if self.session.error is not None:
            return self.session.error
        handle = self.session.handle
        if self.cancelled:
            return StreamClosedError(
                "the stream was cancelled", unsent=self.unsent, resume_handle=handle
            )
        return StreamClosedError("the stream is closed", resume_handle=handle)

    def check_usable(self) -> None:
        if self.cancelled or self.closing:
            raise self.closed_error()
        if self.session.error is not None:
            self.error_seen = True
            raise self.session.error

    def unseen_error(self) -> GeminiWSError | None:
        """The error that ended the stream, if the application has not been shown it."""
        return None if self.error_seen else self.session.error

    def note_resumed(self) -> None:
        """Count the time the receive side was paused, up to now."""
        if self.paused_since is not None:
            self.paused_total += trio.current_time() - self.paused_since
            self.paused_since = None
