"""LiveStream: the public API of one Live session, over the
:class:`~gemini_ws._runner.SessionRunner` that runs it (its connections, tasks and queues) and
the :class:`~gemini_ws._session.Session` machine that decides every handover."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import trio

from . import telemetry
from ._connection import ConnectionStatistics, LiveConnection
from ._errors import (
    ConfigurationError,
    GeminiWSError,
    StreamClosedError,
)
from ._metrics import MetricsCallback, MetricsSink, StreamObserver
from ._models import check_setup_for_model, traits_of
from ._runner import Pool, SessionRunner, StreamEvent, StreamOptions
from ._session import (
    Outgoing,
    Phase,
    ReconnectPolicy,
    SessionResumed,
)
from ._tools import ToolRunner
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
    Scheduling,
    ServerContent,
    SessionResumptionConfig,
    Setup,
    ToolCall,
    ToolResponse,
    checked_audio,
    text_turn,
    tool_response,
    video_frame,
)
from ._validate import validated
from ._wire import encode, encode_audio, structure_config

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



class _TurnIterator:
    """Iterates the messages of one model turn: until the model is done (``until="done"``), or
    until the first turnComplete (``until="turn_complete"``)."""

    def __init__(self, stream: LiveStream, until: str) -> None:
        self._stream = stream
        self._wait_idle = until == "done"
        self._completed = False
        self._done = False

    def __aiter__(self) -> _TurnIterator:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._done:
            raise StopAsyncIteration
        message = await self._stream.receive()
        if isinstance(message, ServerContent):
            if message.turn_complete:
                self._completed = True
            # On Gemini 3.x thinking models one reply spans several turnCompletes, framed by
            # interactionStatus IN_PROGRESS ... IDLE: the reply ends at a turnComplete only
            # once the model is idle (or waits for input), else at the IDLE after it.
            if self._completed and (
                not self._wait_idle or self._stream.model_idle or message.waiting_for_input
            ):
                self._done = True
        return message


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
        metrics: MetricsCallback | None = None,
    ) -> None:
        self.options = options
        self._run = SessionRunner(setup, options, pool=pool, reconnect=reconnect)
        self._model_idle = True
        self._tools: ToolRunner | None = None
        if metrics is not None and not callable(metrics):
            raise ConfigurationError(
                f"metrics must be a function (sync or async), got {type(metrics).__name__}"
            )
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"<LiveStream {self.setup.model} {self.state}>"

    # --- properties --------------------------------------------------------------------------
    @property
    def setup(self) -> Setup:
        """The ``setup`` the session runs with now (without its resumption handle)."""
        return self._run.session.setup

    @property
    def model(self) -> str:
        """The model of this session (``models/...``)."""
        return self.setup.model

    @property
    def state(self) -> str:
        """``setup``, ``open``, ``resuming``, ``closing``, ``closed``, ``cancelled`` or
        ``failed``."""
        if self._run.cancelled:
            return "cancelled"
        phase = self._run.session.phase
        if phase in (Phase.DRAINING, Phase.QUIET):
            return "open"
        return str(phase.value)

    @property
    def resume_handle(self) -> str | None:
        """The newest resumable session handle the server gave (needs session resumption)."""
        return self._run.session.handle

    @property
    def go_away(self) -> GoAway | None:
        """The ``goAway`` the server sent on the current connection, if any."""
        return self._run.go_away

    @property
    def unsent(self) -> tuple[ClientMessage, ...]:
        """Outgoing messages that were never sent, or whose arrival nothing confirmed when the
        connection was lost (see :class:`StreamClosedError`)."""
        return tuple(self._run.unsent)

    @property
    def connection(self) -> LiveConnection:
        """The connection under this stream now (it changes on a handover)."""
        assert self._run.conn is not None
        return self._run.conn

    @property
    def handovers(self) -> tuple[SessionResumed, ...]:
        """Every handover this stream made, oldest first."""
        return tuple(self._run.session.handovers)

    @property
    def trace_context(self) -> Any:
        """The OpenTelemetry context whose current span is this session's span (None while
        tracing is off, see :doc:`observability`). The stream attaches nothing to your
        context; pass this one to put your own spans under the session's::

            with tracer.start_as_current_span("lookup", context=s.trace_context):
                ...
        """
        observer = self._run.observer
        tracer = None if observer is None else observer.tracer
        return None if tracer is None else tracer.context

    @property
    def _error(self) -> GeminiWSError | None:
        return self._run.session.error

    # --- driven by Client.stream ----------------------------------------------------------
    async def _open(self, nursery: trio.Nursery) -> None:
        # Metrics and traces are observed only when asked for (see gemini_ws._metrics): without
        # them the runner's observer stays None, one attribute test per message.
        now = trio.current_time()
        tracer = telemetry.session_tracer(self.model, now)
        if self._metrics is not None or tracer is not None:
            sink = MetricsSink(self._metrics, nursery) if self._metrics is not None else None
            self._run.observer = StreamObserver(self.model, now, sink=sink, tracer=tracer)
        await self._run.open(nursery)

    async def _close(self, *, flush: bool) -> None:
        # Client.stream closes with flush=False only while handling the exception that leaves
        # the block (a failed open, or the body's): that is how the session ended.
        leaving = sys.exception() if not flush else None
        await self._run.close(flush=flush)
        observer = self._run.observer
        if observer is None:
            return
        error: BaseException | None = leaving or self._run.session.error
        if error is None and self.unsent and self.state != "cancelled":
            error = StreamClosedError("the stream ended before every queued message was sent")
        observer.close(self.state, error, trio.current_time())
        if observer.sink is not None:
            await observer.sink.aclose(self.options.close_timeout)

    async def _client_closed(self) -> None:
        await self._run.client_closed()

    def _unseen_error(self) -> GeminiWSError | None:
        return self._run.unseen_error()

    async def reconfigure(self, config: LiveConfig | Mapping[str, Any]) -> SessionResumed:
        """Change the session's configuration (system instruction, tools, anything but the
        model) by resuming it on a new connection with a new ``setup``.

        Needs a stream opened with ``reconnect`` on. Waits for a quiet moment (no request
        waiting for its answer, the handle after the last turn), then hands over; returns the
        :class:`SessionResumed` event (also yielded in the message stream). Bound the wait with
        ``trio.fail_after`` if needed.
        """
        if self._run.policy is None:
            raise ConfigurationError(
                "reconfigure() needs session resumption: open the stream with reconnect=True"
            )
        if isinstance(config, Mapping):
            config = structure_config(config, LiveConfig, "config")
        if not isinstance(config, LiveConfig):
            raise ConfigurationError(
                f"config must be a LiveConfig or a dict, got {type(config).__name__}"
            )
        self._run.check_usable()
        transparent = (
            config.session_resumption.transparent
            if config.session_resumption is not None
            else None
        )
        setup = config.evolve(
            session_resumption=SessionResumptionConfig(transparent=transparent)
        ).to_setup(self.model)
        check_setup_for_model(setup)
        session = self._run.session
        # one handover at a time: let one already wanted or under way finish first
        while session.phase is not Phase.OPEN:
            self._run.check_usable()
            await self._run.changed.park()
        self._run.apply(session.reconfigure(setup, trio.current_time()))
        handover = session.pending_handover
        assert handover is not None
        while handover.result is None:
            if handover.failed is not None:
                raise handover.failed
            self._run.check_usable()
            if session.phase is Phase.OPEN and session.pending_handover is not handover:
                raise self._run.session.error or StreamClosedError("the reconfigure was abandoned")
            await self._run.changed.park()
        return handover.result

    # --- receiving -------------------------------------------------------------------------
    async def receive(self) -> StreamEvent:
        """The next server message, in order, waiting while none is there or while paused.

        Raises the error that ended the stream once every message received before it has
        been delivered; :class:`StreamClosedError` after ``cancel()`` or the end of the
        ``async with``.
        """
        if self._run.cancelled or self._run.session.phase is Phase.CLOSED:
            await trio.lowlevel.checkpoint()
            raise self._run.closed_error()
        try:
            message = await self._run.incoming.get()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise self._run.closed_error() from None
        except GeminiWSError:
            self._run.error_seen = True
            raise
        if isinstance(message, ServerContent):
            status = message.interaction_status
            if status is not None:
                self._model_idle = str(status).upper() != "IN_PROGRESS"
        elif isinstance(message, SessionResumed):
            self._model_idle = True  # a new connection: no reply of the old one goes on
        if self._tools is not None:
            self._tools.observe(message)
        return message

    def run_tools(
        self,
        functions: Mapping[str, Callable[..., Any]],
        *,
        scheduling: Scheduling | str | None = None,
    ) -> ToolRunner:
        """Answer the model's function calls with these Python functions from now on.

        Each :class:`ToolCall` this stream delivers starts one task per call in the stream's
        nursery: an ``async def`` function is awaited, a plain one runs in a worker thread,
        both called with the call's arguments as keyword arguments. Each call is answered
        with its id as soon as it is done. A function that raises (or a name with no
        function) is answered with ``{"error": "..."}``; ``toolCallCancellation`` cancels the
        calls it names and an interruption the calls of blocking functions, which are then not
        answered. A function may return a :class:`FunctionResponse` of its own (for
        ``scheduling`` or ``will_continue``). The ToolCall is still delivered to you.

        Args:
            functions: Function name (as declared in the setup's tools) -> function.
            scheduling: The ``scheduling`` of every response (for NON_BLOCKING functions:
                ``"INTERRUPT"``, ``"WHEN_IDLE"`` or ``"SILENT"``).

        Returns:
            The :class:`~gemini_ws.ToolRunner`, with ``statistics()`` and ``stop()``. A second
            call replaces the first runner (its running calls are cancelled).
        """
        nursery = self._run.nursery
        if nursery is None:
            raise ConfigurationError("run_tools() needs an open stream")
        self._run.check_usable()
        runner = ToolRunner(self, functions, scheduling=scheduling, nursery=nursery)
        if self._tools is not None:
            self._tools.stop()
        self._tools = runner
        return runner

    @property
    def model_idle(self) -> bool:
        """False while the model has reported ``interactionStatus`` ``IN_PROGRESS`` in a
        delivered message and no ``IDLE`` since (Gemini 3.x thinking models); True otherwise."""
        return self._model_idle

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self.receive()

    def turn(
        self, *, until: Literal["done", "turn_complete"] = "done"
    ) -> AsyncIterator[StreamEvent]:
        """Iterate the messages of the current model reply.

        Args:
            until: ``"done"`` (the default) ends after the ``turnComplete`` that finds the model
                idle: on Gemini 3.x thinking models, which report ``interactionStatus``
                ``IN_PROGRESS`` and send several ``turnComplete`` messages in one reply, that
                is the ``turnComplete`` after which the model is ``IDLE`` (or the ``IDLE``
                message itself, if it comes after); on other models it is the first
                ``turnComplete``. ``"turn_complete"`` ends after the first ``turnComplete``
                whatever the model reports (the pre-3.x rule).
        """
        if until not in ("done", "turn_complete"):
            raise ConfigurationError(f"until must be 'done' or 'turn_complete', got {until!r:.40}")
        return _TurnIterator(self, until)

    async def receive_turn(
        self, *, until: Literal["done", "turn_complete"] = "done"
    ) -> list[StreamEvent]:
        """Collect and return every message of the current model reply (see :meth:`turn`)."""
        return [message async for message in self.turn(until=until)]

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
        if (
            isinstance(message, ClientContent)
            and any(turn.role is None for turn in message.turns)
            and traits_of(self.model).text_as_realtime_input
        ):
            raise ConfigurationError(
                f"{self.model.rpartition('/')[2]} closes the session (1007) on a "
                f"clientContent turn without a role: give each Content role='user' or "
                f"role='model'"
            )
        self._run.check_usable()
        await self._submit(message, encode(message))

    async def _submit(
        self, message: ClientMessage | None, text: str, *, audio: tuple[bytes, int] | None = None
    ) -> None:
        try:
            await self._run.submit(Outgoing(message, text, audio=audio))
        except trio.ClosedResourceError:
            raise self._run.closed_error() from None
        except GeminiWSError:
            self._run.error_seen = True
            raise

    async def send_text(self, text: str, *, turn_complete: bool = True) -> None:
        """Send a user text turn, in the form this session's model takes text.

        Gemini 3.x Live models (gemini-3.1-flash-live, gemini-3.8-live) take text during a
        session as ``realtimeInput.text``, each text a complete user turn; older models take a
        ``clientContent`` turn with ``turnComplete`` (true by default). The choice comes from
        the model table (``gemini_ws._models``); :meth:`send_realtime_text` and
        :meth:`send_content` send one form or the other whatever the model.

        Args:
            text: The user's words.
            turn_complete: ``False`` adds the text to the user's turn without asking for a
                reply yet; only models that take text as ``clientContent`` can do that.

        Raises:
            ConfigurationError: *text* is not a str, or ``turn_complete=False`` on a model that
                takes text as realtime input.
        """
        if traits_of(self.model).text_as_realtime_input:
            if not turn_complete:
                raise ConfigurationError(
                    f"{self.model.rpartition('/')[2]} takes text as realtimeInput.text, each "
                    f"text a whole user turn: turn_complete=False is not possible; join the "
                    f"text yourself, or bracket it with send_activity_start()/"
                    f"send_activity_end() with automatic activity detection off"
                )
            await self.send_realtime_text(text)
            return
        await self.send(text_turn(text, turn_complete=turn_complete))

    async def send_realtime_text(self, text: str) -> None:
        """Send text as ``realtimeInput.text``, whatever the model (the form Gemini 3.x Live
        models take text in; :meth:`send_text` picks it for them)."""
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
        data = checked_audio(pcm, sample_rate)
        self._run.check_usable()
        text = encode_audio(data, sample_rate)
        await self._submit(None, text, audio=(data, sample_rate))

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
        if receive and not self._run.incoming.paused_by("user"):
            self._run.incoming.pause()
            self._run.paused_since = trio.current_time()
        if send:
            self._run.outgoing.pause()

    async def resume(self, direction: Direction = "both") -> None:
        """Deliver and send everything held by ``pause()``, in order. Idempotent."""
        receive, send = self._directions(direction)
        await trio.lowlevel.checkpoint()
        if receive and self._run.incoming.paused_by("user"):
            self._run.incoming.resume()
            self._run.note_resumed()
        if send:
            self._run.outgoing.resume()

    @property
    def paused(self) -> bool:
        """True while either direction is paused."""
        return self._run.incoming.paused_by("user") or self._run.outgoing.paused_by("user")

    async def cancel(self) -> tuple[ClientMessage, ...]:
        """End the stream now, from any state: close with 1000 (bounded, shielded), discard
        the connection, and return the outgoing messages that were never sent (also kept in
        :attr:`unsent`). Later sends and receives raise :class:`StreamClosedError`.
        Idempotent."""
        if not self._run.cancelled and not self._run.closing:
            self._run.cancelled = True
            self._run.collect_unsent()
            error = self._run.closed_error()
            self._run.outgoing.close(error)
            self._run.incoming.close(error)
            await self._run.close(flush=False)
        else:
            await trio.lowlevel.checkpoint()
        return tuple(self._run.unsent)

    # --- statistics ------------------------------------------------------------------------
    def statistics(self) -> StreamStatistics:
        """An immutable snapshot: messages and bytes each way, queues, timings."""
        assert self._run.conn is not None
        conn = self._run.conn.statistics()
        paused = self._run.paused_total
        if self._run.paused_since is not None:
            paused += trio.current_time() - self._run.paused_since
        session = self._run.session
        return StreamStatistics(
            state=self.state,
            messages_sent=self._run.sent,
            bytes_sent=self._run.sent_bytes,
            messages_received=self._run.received,
            bytes_received=self._run.received_bytes,
            queued_to_send=len(self._run.outgoing),
            queued_to_deliver=len(self._run.incoming),
            bytes_queued_to_deliver=self._run.incoming.nbytes,
            paused_receive=self._run.incoming.paused_by("user"),
            paused_send=self._run.outgoing.paused_by("user"),
            time_paused=paused,
            time_to_setup_complete=self._run.setup_time,
            time_to_first_chunk=tuple(self._run.first_chunk),
            last_heartbeat_rtt=conn.last_heartbeat_rtt,
            turns_completed=session.turns_completed,
            resume_handle=session.handle,
            handovers=len(session.handovers),
            handover_gaps=tuple(h.gap for h in session.handovers),
            replay_queued=len(session.replay_log),
            replay_dropped=session.replay_dropped,
            connection=conn,
        )
