"""LiveStream: one Live session on one connection, with a sender task and a receiver task.

::

    application task(s)                 stream tasks (in the client's nursery)       socket
    ───────────────────                 ──────────────────────────────────────       ──────
    s.send_*() ──encode──▶ outgoing ByteQueue ──▶ sender ──▶ LiveConnection.send ──▶  ws
    async for msg in s ◀── incoming ByteQueue ◀── receiver ◀── decode ◀── receive ◀── ws

Both queues are bounded in bytes. ``pause()`` closes the gates of the queues (items wait, in
order); the receiver keeps draining the socket into the incoming queue until its byte bound,
then TCP backpressure applies and the connection's heartbeat is suspended. ``resume()`` opens
the gates. ``cancel()`` stops both tasks, closes with 1000 (bounded, shielded) and reports the
outgoing messages that were never written.

The two tasks never raise: a failure is recorded once and handed to the application on its next
send or receive, as the same error either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import trio

from ._buffer import ByteQueue
from ._connection import ConnectionStatistics, LiveConnection
from ._errors import (
    ConfigurationError,
    GeminiWSError,
    ProtocolError,
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
    Part,
    RealtimeInput,
    ServerContent,
    ServerMessage,
    SessionResumptionUpdate,
    Setup,
    SetupComplete,
    ToolCall,
    ToolResponse,
    audio_chunk,
    text_turn,
    tool_response,
    video_frame,
)
from ._wire import decode, encode

__all__ = ["LiveStream", "StreamOptions", "StreamStatistics"]

Direction = Literal["both", "receive", "send"]


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
    connection: ConnectionStatistics

    @property
    def last_time_to_first_chunk(self) -> float | None:
        """Time to the first chunk of the newest turn, if any turn had one."""
        return self.time_to_first_chunk[-1] if self.time_to_first_chunk else None


@attrs.define
class _Outgoing:
    message: ClientMessage
    text: str


def _ends_user_turn(message: ClientMessage) -> bool:
    if isinstance(message, ClientContent):
        return bool(message.turn_complete)
    if isinstance(message, RealtimeInput):
        return bool(
            message.text or message.audio_stream_end or message.activity_end is not None
        )
    return isinstance(message, ToolResponse)


class _TurnIterator:
    """Iterates the messages of one model turn; ends after the message with turnComplete."""

    def __init__(self, stream: LiveStream) -> None:
        self._stream = stream
        self._done = False

    def __aiter__(self) -> _TurnIterator:
        return self

    async def __anext__(self) -> ServerMessage:
        if self._done:
            raise StopAsyncIteration
        message = await self._stream.receive()
        if isinstance(message, ServerContent) and message.turn_complete:
            self._done = True
        return message


class LiveStream:
    """One Live API session. Obtain it from ``async with client.stream(model) as s``.

    Send with the ``send_*`` methods (from any task), receive with ``async for msg in s``
    (every server message, across turns) or ``async for msg in s.turn()`` (until the end of
    the current model turn). ``pause()``, ``resume()`` and ``cancel()`` are flow control.
    """

    def __init__(self, connection: LiveConnection, setup: Setup, options: StreamOptions) -> None:
        self._conn = connection
        self.setup = setup
        self.options = options
        self._outgoing: ByteQueue[_Outgoing] = ByteQueue(options.send_buffer_bytes)
        self._incoming: ByteQueue[ServerMessage] = ByteQueue(options.receive_buffer_bytes)
        self._state = "setup"
        self._error: GeminiWSError | None = None
        self._cancelled = False
        self._in_flight: _Outgoing | None = None
        self._unsent: list[ClientMessage] = []
        self._tasks_scope: trio.CancelScope | None = None
        self._tasks_done = trio.Event()
        self._sender_done = trio.Event()
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
        """``setup``, ``open``, ``closing``, ``closed``, ``cancelled`` or ``failed``."""
        return self._state

    @property
    def resume_handle(self) -> str | None:
        """The newest resumable session handle the server gave (needs session resumption)."""
        return self._resume_handle

    @property
    def go_away(self) -> GoAway | None:
        """The ``goAway`` the server sent on this connection, if any."""
        return self._go_away

    @property
    def unsent(self) -> tuple[ClientMessage, ...]:
        """Outgoing messages that were queued but never written to the socket."""
        return tuple(self._unsent)

    @property
    def connection(self) -> LiveConnection:
        """The connection under this stream."""
        return self._conn

    # --- lifetime (driven by Client.stream) ---------------------------------------------------
    async def _handshake(self) -> None:
        """Send ``setup`` and wait for ``setupComplete`` (bounded by ``setup_timeout``)."""
        from ._errors import ServerClosedError, SetupRejectedError, SetupTimeoutError

        t0 = trio.current_time()
        try:
            with trio.fail_after(self.options.setup_timeout):
                await self._conn.send(encode(self.setup))
                frame = await self._conn.receive()
        except trio.TooSlowError:
            raise SetupTimeoutError(
                f"no setupComplete within {self.options.setup_timeout} s"
            ) from None
        except ServerClosedError as exc:
            raise SetupRejectedError(
                exc.code,
                exc.reason,
                message=f"the server rejected the setup for {self.setup.model} "
                f"(close code {exc.code})",
            ) from None
        message = decode(frame)
        if not isinstance(message, SetupComplete):
            raise ProtocolError(
                f"expected setupComplete as the first server message, got "
                f"{type(message).__name__}",
                frame,
            )
        self._setup_time = trio.current_time() - t0
        self._state = "open"

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The stream's own nursery: the sender and the receiver. Never raises but Cancelled."""
        try:
            with trio.CancelScope() as scope:
                self._tasks_scope = scope
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._sender)
                    nursery.start_soon(self._receiver)
                    task_status.started()
        finally:
            self._tasks_done.set()

    def _fail(self, error: GeminiWSError) -> None:
        """Record the first error; wake everybody; collect what was never sent."""
        if self._error is None and self._state in ("open", "setup"):
            self._error = error
            self._state = "failed"
        self._collect_unsent()
        self._outgoing.close(error)
        self._incoming.close(error)

    def _collect_unsent(self) -> None:
        # A message being written right now is accounted for by the sender itself.
        self._unsent.extend(item.message for item in self._outgoing.drain())

    async def _sender(self) -> None:
        try:
            while True:
                try:
                    item = await self._outgoing.get()
                except (trio.EndOfChannel, trio.ClosedResourceError, GeminiWSError):
                    return
                self._in_flight = item
                if self._turn_started_at is None and _ends_user_turn(item.message):
                    # stamped before the write: the reply may arrive before send() returns
                    self._turn_started_at = trio.current_time()
                try:
                    await self._conn.send(item.text)
                except GeminiWSError as exc:
                    self._unsent.append(item.message)
                    self._in_flight = None
                    self._fail(exc)
                    return
                self._in_flight = None
                self._sent += 1
                self._sent_bytes += len(item.text)
        finally:
            if self._in_flight is not None:  # cancelled while writing: not known to be sent
                self._unsent.append(self._in_flight.message)
                self._in_flight = None
            self._sender_done.set()

    async def _receiver(self) -> None:
        conn = self._conn
        incoming = self._incoming
        while True:
            try:
                frame = await conn.receive()
            except GeminiWSError as exc:
                self._fail(exc)
                return
            try:
                message = decode(frame)
            except ProtocolError as exc:
                exc.resume_handle = self._resume_handle
                self._fail(exc)
                await conn.abort()
                return
            self._observe(message)
            size = len(frame)
            try:
                incoming.put_nowait(message, size)
            except trio.WouldBlock:
                conn.set_backpressure(True)
                try:
                    await incoming.put(message, size)
                except (trio.ClosedResourceError, GeminiWSError):
                    return
                finally:
                    conn.set_backpressure(False)
            except (trio.ClosedResourceError, GeminiWSError):
                return
            self._received += 1
            self._received_bytes += size

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
        elif isinstance(message, SessionResumptionUpdate):
            if message.resumable and message.new_handle:
                self._resume_handle = message.new_handle
                self._conn.resume_handle = message.new_handle
        elif isinstance(message, GoAway):
            self._go_away = message

    async def _close(self, *, flush: bool) -> None:
        """End the stream: optionally flush queued messages, close with 1000, stop the tasks.

        Shielded and bounded by ``close_timeout`` (twice at most: flush, then close)."""
        with trio.CancelScope(shield=True):
            if self._state in ("open", "setup"):
                self._state = "closing"
            if flush and self._error is None and not self._cancelled:
                self._outgoing.resume()
                self._outgoing.close()
                with trio.move_on_after(self.options.close_timeout):
                    await self._sender_done.wait()
            self._collect_unsent()
            self._outgoing.close(StreamClosedError("the stream is closed"))
            await self._conn.aclose(1000)
            if self._tasks_scope is not None:
                self._tasks_scope.cancel()
                await self._tasks_done.wait()
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
            raise self._error

    # --- receiving -------------------------------------------------------------------------
    async def receive(self) -> ServerMessage:
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

    def __aiter__(self) -> AsyncIterator[ServerMessage]:
        return self

    async def __anext__(self) -> ServerMessage:
        return await self.receive()

    def turn(self) -> AsyncIterator[ServerMessage]:
        """Iterate the messages of the current model turn; ends after ``turnComplete``."""
        return _TurnIterator(self)

    async def receive_turn(self) -> list[ServerMessage]:
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
        items = [turns] if isinstance(turns, Content | str) else list(turns)
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
        if receive and not self._incoming.paused:
            self._incoming.pause()
            self._paused_since = trio.current_time()
        if send:
            self._outgoing.pause()

    async def resume(self, direction: Direction = "both") -> None:
        """Deliver and send everything held by ``pause()``, in order. Idempotent."""
        receive, send = self._directions(direction)
        await trio.lowlevel.checkpoint()
        if receive and self._incoming.paused:
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
        return self._incoming.paused or self._outgoing.paused

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
            paused_receive=self._incoming.paused,
            paused_send=self._outgoing.paused,
            time_paused=paused,
            time_to_setup_complete=self._setup_time,
            time_to_first_chunk=tuple(self._first_chunk),
            last_heartbeat_rtt=conn.last_heartbeat_rtt,
            turns_completed=self._turns_completed,
            resume_handle=self._resume_handle,
            connection=conn,
        )

