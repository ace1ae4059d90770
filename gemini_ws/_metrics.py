"""Pushed metrics: a :class:`TurnMetrics` per model turn and a :class:`SessionMetrics` per
session, handed to the ``metrics=`` callback of :meth:`Client.stream <gemini_ws.Client.stream>`,
and the same observations as OpenTelemetry spans once :func:`gemini_ws.telemetry.instrument`
was called.

The :class:`StreamObserver` sees what the stream already sees, at the points where it sees it:
the sender's writes, the receiver's decoded messages (before they are queued for the
application), the setups, the handovers and the end. The runner holds ``None`` instead of an
observer when nobody asked for metrics or traces, so that costs one attribute test per message.

Turns are judged as :meth:`LiveStream.turn() <gemini_ws.LiveStream.turn>` judges them (its
``"done"`` rule): a turn starts at the write of the request that asks for a reply (a text turn,
``turnComplete``, ``audioStreamEnd``, ``activityEnd``), or at the first model output when no such
write came first (automatic activity detection on streamed audio); it ends at the
``turnComplete`` that finds the model idle (``interactionStatus`` not ``IN_PROGRESS``), or at the
``IDLE`` that follows it. A tool response continues the turn it answers.

Callbacks: a sync callback is called inline, from the task that observed the event (the
receiver for a turn, the task leaving the ``async with`` for the session), so it must be quick;
an async callback (anything whose call returns an awaitable) is awaited, in order, by one task in
the stream's nursery, fed through a bounded queue that never blocks the receiver (past
:data:`PENDING_LIMIT` waiting metrics, new ones are dropped with a warning). The
:class:`SessionMetrics` is awaited before the ``async with`` exits, for at most the stream's
``close_timeout``. An exception in a callback is logged (logger ``gemini_ws``) and the stream
goes on.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs
import trio

from ._types import (
    ClientContent,
    ClientMessage,
    FunctionCall,
    GoAway,
    ModalityTokenCount,
    RealtimeInput,
    ServerContent,
    ServerMessage,
    ToolCall,
    ToolCallCancellation,
    ToolResponse,
    UsageMetadata,
)
from ._validate import validated

if TYPE_CHECKING:
    from ._connection import LiveConnection
    from ._session import SessionResumed
    from .telemetry import SessionTracer

__all__ = [
    "PENDING_LIMIT",
    "MetricsCallback",
    "SessionMetrics",
    "StreamObserver",
    "TurnMetrics",
]

logger = logging.getLogger("gemini_ws")

#: Metrics waiting for an async callback, at most (more are dropped, with a warning).
PENDING_LIMIT = 256


@validated
@attrs.frozen
class TurnMetrics:
    """One model turn, delivered to the ``metrics=`` callback when it ends.

    Times are in seconds on trio's clock. Token counts come from the ``usageMetadata`` the
    server sent during the turn (the last one, if several came), 0 when it sent none; the
    ``*_by_modality`` mappings are its per-modality details (``{"TEXT": 12, "AUDIO": 50}``).
    """

    #: 1 for the session's first turn, then 2, 3...
    index: int
    #: when the turn started (the write of its request, else its first model output)
    started_at: float
    #: from the start of the request's write to the first model output (content, output
    #: transcription or tool call); None when the turn had no request write (the server's
    #: activity detection ended the user's turn) or no output
    time_to_first_chunk: float | None
    #: from the start to the end of the turn (its last ``turnComplete``, or the ``IDLE`` after
    #: it on Gemini 3.x thinking models)
    duration: float
    #: the server reported ``interrupted`` (the user spoke over the reply)
    interrupted: bool
    #: False for a turn cut short by the end of the stream (closed, cancelled or failed); a
    #: reply a handover interrupted goes on over the new connection, in the same turn
    completed: bool
    #: the function calls the model made in this turn, one per call id
    tool_calls: tuple[FunctionCall, ...]
    prompt_tokens: int
    response_tokens: int
    #: thinking tokens (Gemini thinking models)
    thoughts_tokens: int
    total_tokens: int
    prompt_tokens_by_modality: dict[str, int]
    response_tokens_by_modality: dict[str, int]
    #: the ``usageMetadata`` itself (None if the server sent none during the turn)
    usage: UsageMetadata | None


@validated
@attrs.frozen
class SessionMetrics:
    """One session, delivered to the ``metrics=`` callback when its ``async with`` ends (also
    when it ends with an error, or when the setup failed).

    Token totals add up every turn's usage (and usage reports outside any turn).
    """

    #: the model (``models/...``)
    model: str
    #: the turns reported (every :class:`TurnMetrics` this session delivered)
    turns: int
    prompt_tokens: int
    response_tokens: int
    thoughts_tokens: int
    total_tokens: int
    prompt_tokens_by_modality: dict[str, int]
    response_tokens_by_modality: dict[str, int]
    #: handovers to a new connection (goAway, resumed drops, reconfigure)
    handovers: int
    #: the time each handover left the session unable to send or receive
    handover_gaps: tuple[float, ...]
    #: whether the first connection was a warm spare from the pool (None if none was had)
    warm: bool | None
    #: from asking the pool for the first connection to having it (a cold connection's TCP,
    #: TLS and WebSocket upgrade; next to nothing for a warm spare)
    acquire_time: float | None
    #: the first connection's own opening time (for a warm spare, paid before the session)
    time_to_open: float | None
    #: from sending ``setup`` to ``setupComplete`` on the first connection
    setup_time: float | None
    #: from opening the stream to the end of its ``async with``
    duration: float
    #: the stream's final state, ``closed``, ``cancelled`` or ``failed``
    state: str
    #: the type of the exception the session ended with (the stream's error, or the one that
    #: left the ``async with``); None for a clean end
    error: type[BaseException] | None


#: What ``client.stream(..., metrics=...)`` takes: a function of one :class:`TurnMetrics` or
#: :class:`SessionMetrics`, plain or ``async def``.
MetricsCallback: TypeAlias = Callable[
    [TurnMetrics | SessionMetrics], Awaitable[None] | None
]


class MetricsSink:
    """Hands metrics to the user's callback (see the module docstring)."""

    def __init__(self, callback: MetricsCallback, nursery: trio.Nursery) -> None:
        self._callback = callback
        self._nursery = nursery
        self._send: trio.MemorySendChannel[Awaitable[Any]] | None = None
        self._done = trio.Event()
        self._scope: trio.CancelScope | None = None
        #: awaitables the task could not run (it was cancelled with the stream's nursery):
        #: awaited by :meth:`aclose` instead
        self._leftover: list[Awaitable[Any]] = []

    def deliver(self, item: TurnMetrics | SessionMetrics) -> None:
        """Call the callback; queue what it returns if that is awaitable. Never raises."""
        try:
            result: Any = self._callback(item)
        except Exception:
            logger.exception("the metrics callback failed on a %s", type(item).__name__)
            return
        if not inspect.isawaitable(result):
            return
        if self._done.is_set():  # the task is gone
            self._leftover.append(result)
            return
        if self._send is None:
            self._send, receive = trio.open_memory_channel[Awaitable[Any]](PENDING_LIMIT)
            self._nursery.start_soon(self._run, receive)
        try:
            self._send.send_nowait(result)
        except trio.WouldBlock:
            _discard(result)
            logger.warning(
                "the async metrics callback is %d metrics behind: a %s was dropped",
                PENDING_LIMIT,
                type(item).__name__,
            )
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._leftover.append(result)

    async def _run(self, receive: trio.MemoryReceiveChannel[Awaitable[Any]]) -> None:
        try:
            with trio.CancelScope() as self._scope:
                async for awaitable in receive:
                    await _await(awaitable)
        finally:
            while True:  # cancelled: what is still queued is left to aclose()
                try:
                    self._leftover.append(receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
            receive.close()
            self._done.set()

    async def aclose(self, bound: float) -> None:
        """Let the async callback finish what is queued, for at most *bound* seconds
        (shielded: this runs while the stream closes)."""
        if self._send is None and not self._leftover:
            return
        with trio.CancelScope(shield=True):
            with trio.move_on_after(bound) as waited:
                if self._send is not None:
                    self._send.close()
                    await self._done.wait()
                while self._leftover:
                    await _await(self._leftover.pop(0))
            if waited.cancelled_caught:
                logger.warning("the async metrics callback took longer than %s s: cancelled", bound)
                if self._scope is not None:
                    self._scope.cancel()
                if self._send is not None:
                    await self._done.wait()
                for awaitable in self._leftover:
                    _discard(awaitable)
                self._leftover.clear()


async def _await(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("the async metrics callback failed")


def _discard(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


def _starts_turn(message: ClientMessage) -> bool:
    """Whether writing *message* asks the model for a reply (a tool response does not: it
    continues the turn that called)."""
    if isinstance(message, ClientContent):
        return bool(message.turn_complete)
    if isinstance(message, RealtimeInput):
        return bool(message.text or message.audio_stream_end or message.activity_end)
    return False


def _by_modality(details: tuple[ModalityTokenCount, ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for detail in details:
        key = str(detail.modality) if detail.modality is not None else "MODALITY_UNSPECIFIED"
        counts[key] = counts.get(key, 0) + (detail.token_count or 0)
    return counts


class _Usage:
    """Token totals."""

    __slots__ = ("prompt", "prompt_by", "response", "response_by", "thoughts", "total")

    def __init__(self) -> None:
        self.prompt = self.response = self.thoughts = self.total = 0
        self.prompt_by: dict[str, int] = {}
        self.response_by: dict[str, int] = {}

    def add(self, usage: UsageMetadata) -> None:
        self.prompt += usage.prompt_token_count or 0
        self.response += usage.response_token_count or 0
        self.thoughts += usage.thoughts_token_count or 0
        self.total += usage.total_token_count or 0
        for mine, theirs in (
            (self.prompt_by, usage.prompt_tokens_details),
            (self.response_by, usage.response_tokens_details),
        ):
            for key, count in _by_modality(theirs).items():
                mine[key] = mine.get(key, 0) + count


class ToolCallRecord:
    """One function call: when it came, and (once known) how it ended."""

    __slots__ = ("call", "ended_at", "outcome", "started_at", "turn_span")

    def __init__(self, call: FunctionCall, started_at: float, turn_span: Any) -> None:
        self.call = call
        self.started_at = started_at
        self.turn_span = turn_span
        self.ended_at: float | None = None
        #: "answered", "cancelled" or "unanswered"
        self.outcome = "unanswered"


class _Turn:
    __slots__ = (
        "completed",
        "first_chunk_at",
        "index",
        "interrupted",
        "interrupted_at",
        "requested",
        "span",
        "started_at",
        "tool_calls",
        "usage",
    )

    def __init__(self, index: int, started_at: float, requested: bool) -> None:
        self.index = index
        self.started_at = started_at
        self.requested = requested
        self.first_chunk_at: float | None = None
        self.completed = False
        self.interrupted = False
        self.interrupted_at: float | None = None
        self.tool_calls: dict[str, FunctionCall] = {}
        self.usage: UsageMetadata | None = None
        self.span: Any = None


class StreamObserver:
    """Computes the metrics of one stream from what its runner sees, and feeds the sink and
    the tracer (either may be None)."""

    def __init__(
        self,
        model: str,
        now: float,
        *,
        sink: MetricsSink | None,
        tracer: SessionTracer | None,
    ) -> None:
        self.model = model
        self.sink = sink
        self.tracer = tracer
        self._opened_at = now
        self._turn: _Turn | None = None
        self._turns = 0
        #: a request written while a turn was running: the start of the next turn
        self._next_request: float | None = None
        self._idle = True
        self._usage = _Usage()
        self._gaps: list[float] = []
        self._calls: dict[str, ToolCallRecord] = {}
        self._warm: bool | None = None
        self._acquire_time: float | None = None
        self._time_to_open: float | None = None
        self._setup_time: float | None = None
        self._closed = False

    # --- the runner's hooks -------------------------------------------------------------
    def setup_done(
        self,
        conn: LiveConnection | None,
        asked_at: float,
        acquired_at: float,
        now: float,
        error: BaseException | None,
        *,
        first: bool,
    ) -> None:
        """A connection was asked of the pool at *asked_at*, had at *acquired_at* (None
        *conn*: the pool failed) and its setup ended at *now* (with *error*, or done)."""
        if first and error is None and conn is not None and self._warm is None:
            self._warm = conn.was_spare
            self._acquire_time = acquired_at - asked_at
            self._time_to_open = conn.statistics().time_to_open
            self._setup_time = now - acquired_at
        if self.tracer is not None:
            self.tracer.setup(conn, asked_at, acquired_at, now, error, first=first)

    def on_write(self, message: ClientMessage, now: float) -> None:
        """*message* is being written (stamped before the write)."""
        if isinstance(message, ToolResponse):
            for response in message.function_responses:
                record = self._calls.pop(response.id or "", None)
                if record is not None:
                    record.ended_at = now
                    record.outcome = "answered"
                    self._end_call(record)
            return
        if not _starts_turn(message):
            return
        if self._turn is None:
            self._start_turn(now, requested=True)
        elif self._next_request is None and (
            self._turn.first_chunk_at is not None or self._turn.completed
        ):
            self._next_request = now

    def on_message(self, message: ServerMessage) -> None:
        """The receiver decoded *message* (before the application gets it). Runs for every
        message: a chunk in the middle of a turn takes the shortest way through (the clock is
        read only where a time is kept)."""
        turn = self._turn
        if isinstance(message, ServerContent):
            status = message.interaction_status
            if status is not None:
                self._idle = str(status).upper() != "IN_PROGRESS"
            if (message.model_turn is not None or message.output_transcription is not None) and (
                turn is None or turn.first_chunk_at is None or turn.interrupted
            ):
                turn = self._output(trio.current_time())
            if turn is None:
                if message.usage_metadata is not None:
                    self._usage.add(message.usage_metadata)
                return
            if message.interrupted and not turn.interrupted:
                turn.interrupted = True
                turn.interrupted_at = now = trio.current_time()
                if self.tracer is not None:
                    self.tracer.interrupted(turn.span, now)
            if message.turn_complete:
                turn.completed = True
            if message.usage_metadata is not None:
                turn.usage = message.usage_metadata
            if turn.completed and (self._idle or message.waiting_for_input):
                self._finish(turn, trio.current_time(), completed=True)
            return
        now = trio.current_time()
        if isinstance(message, ToolCall):
            turn = self._output(now)
            for call in message.function_calls:
                key = call.id or ""
                if key and key in turn.tool_calls:
                    continue  # a continuation of a call whose arguments are streamed
                turn.tool_calls[key or f"#{len(turn.tool_calls)}"] = call
                if self.tracer is not None and key:
                    self._calls[key] = ToolCallRecord(call, now, turn.span)
        elif isinstance(message, ToolCallCancellation):
            for call_id in message.ids:
                record = self._calls.pop(call_id, None)
                if record is not None:
                    record.ended_at = now
                    record.outcome = "cancelled"
                    self._end_call(record)
        elif isinstance(message, GoAway) and self.tracer is not None:
            self.tracer.go_away(message, now)
        usage = message.usage_metadata
        if usage is not None:
            if turn is not None:
                turn.usage = usage
            else:
                self._usage.add(usage)

    def on_handover(self, event: SessionResumed, now: float) -> None:
        """The session moved to a new connection (*event* is being emitted)."""
        self._gaps.append(event.gap)
        self._idle = True  # no reply of the old connection goes on
        turn = self._turn
        if turn is not None and turn.completed:
            # its turnComplete came; the IDLE that would have ended it cannot come any more
            self._finish(turn, now, completed=True)
        if self.tracer is not None:
            self.tracer.handover(event, now)

    def on_error(self, error: BaseException, now: float) -> None:
        """The session failed with *error*."""
        if self.tracer is not None:
            self.tracer.error(error, now, self._turn.span if self._turn is not None else None)

    def close(self, state: str, error: BaseException | None, now: float) -> None:
        """The stream is over: report the turn in progress and the session. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._turn is not None:
            self._finish(self._turn, now, completed=False)
        for record in self._calls.values():
            record.ended_at = now
            self._end_call(record)
        self._calls.clear()
        usage = self._usage
        if self.sink is not None:
            self.sink.deliver(
                SessionMetrics(
                    model=self.model,
                    turns=self._turns,
                    prompt_tokens=usage.prompt,
                    response_tokens=usage.response,
                    thoughts_tokens=usage.thoughts,
                    total_tokens=usage.total,
                    prompt_tokens_by_modality=dict(usage.prompt_by),
                    response_tokens_by_modality=dict(usage.response_by),
                    handovers=len(self._gaps),
                    handover_gaps=tuple(self._gaps),
                    warm=self._warm,
                    acquire_time=self._acquire_time,
                    time_to_open=self._time_to_open,
                    setup_time=self._setup_time,
                    duration=now - self._opened_at,
                    state=state,
                    error=type(error) if error is not None else None,
                )
            )
        if self.tracer is not None:
            self.tracer.end(now, state, error, turns=self._turns, handovers=len(self._gaps))

    # --- turns ----------------------------------------------------------------------------
    def _start_turn(self, at: float, *, requested: bool) -> _Turn:
        turn = self._turn = _Turn(self._turns + 1, at, requested)
        if self.tracer is not None:
            turn.span = self.tracer.turn_started(turn.index, at)
        return turn

    def _output(self, now: float) -> _Turn:
        """Model output arrived: the turn it belongs to (started if none is running)."""
        turn = self._turn
        if turn is not None and turn.interrupted and not turn.completed:
            # output after an interruption that no turnComplete closed: a new reply
            self._finish(turn, turn.interrupted_at or now, completed=True)
            turn = self._turn  # (the request written meanwhile started the next one)
        if turn is None:
            turn = self._start_turn(now, requested=False)
        if turn.first_chunk_at is None:
            turn.first_chunk_at = now
        return turn

    def _finish(self, turn: _Turn, end: float, *, completed: bool) -> None:
        self._turn = None
        self._turns += 1
        usage = turn.usage
        if usage is not None:
            self._usage.add(usage)
        first = (
            turn.first_chunk_at - turn.started_at
            if turn.requested and turn.first_chunk_at is not None
            else None
        )
        if self.tracer is not None:
            self.tracer.turn_ended(
                turn.span,
                end,
                time_to_first_chunk=first,
                interrupted=turn.interrupted,
                completed=completed,
                usage=usage,
                tool_calls=len(turn.tool_calls),
            )
        if self.sink is not None:
            self.sink.deliver(
                TurnMetrics(
                    index=turn.index,
                    started_at=turn.started_at,
                    time_to_first_chunk=first,
                    duration=end - turn.started_at,
                    interrupted=turn.interrupted,
                    completed=completed,
                    tool_calls=tuple(turn.tool_calls.values()),
                    prompt_tokens=(usage.prompt_token_count or 0) if usage else 0,
                    response_tokens=(usage.response_token_count or 0) if usage else 0,
                    thoughts_tokens=(usage.thoughts_token_count or 0) if usage else 0,
                    total_tokens=(usage.total_token_count or 0) if usage else 0,
                    prompt_tokens_by_modality=(
                        _by_modality(usage.prompt_tokens_details) if usage else {}
                    ),
                    response_tokens_by_modality=(
                        _by_modality(usage.response_tokens_details) if usage else {}
                    ),
                    usage=usage,
                )
            )
        if self._next_request is not None:
            at, self._next_request = self._next_request, None
            self._start_turn(at, requested=True)

    def _end_call(self, record: ToolCallRecord) -> None:
        if self.tracer is not None:
            self.tracer.tool_call(record)
