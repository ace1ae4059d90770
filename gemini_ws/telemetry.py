"""OpenTelemetry traces of Live sessions (the optional extra ``gemini-ws[otel]``).

Tracing is off until :func:`instrument` is called, and each stream decides when it opens:
streams opened after ``instrument()`` are traced, until :func:`uninstrument`. While it is off
(or opentelemetry is not installed) nothing of OpenTelemetry is imported and a stream costs
nothing more; while it is on, the spans are made from the observations the stream makes anyway
(see :mod:`gemini_ws._metrics`), so a received chunk costs a few attribute tests and a span is
started or ended only per session, turn, setup, handover or tool call.

The span tree of one session::

    gemini_ws.session             gen_ai.provider.name, gen_ai.request.model, gen_ai.operation.name
    ├── gemini_ws.setup           connect (or a warm spare) + setup -> setupComplete
    ├── gemini_ws.turn            gen_ai.usage.input_tokens / output_tokens, time to first chunk
    │   └── gemini_ws.tool_call   gen_ai.tool.name, gen_ai.tool.call.id (call -> response)
    └── gemini_ws.handover        reason, gap, warm
        └── gemini_ws.setup       each dial of the handover

Events: ``gemini_ws.go_away`` on the session span, ``gemini_ws.interrupted`` on a turn's, and
``exception`` (with status ERROR) wherever an error ended something.

Spans are given explicit start and end times taken from trio's clock (mapped to wall-clock
time once per session), and parented explicitly: nothing is attached to the context, so the
stream's tasks never touch the application's current span. The session span's parent is the
span current where ``client.stream()`` was called.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import trio

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from ._connection import LiveConnection
    from ._metrics import ToolCallRecord
    from ._session import SessionResumed
    from ._types import GoAway, UsageMetadata

__all__ = ["instrument", "is_instrumented", "uninstrument"]

_tracer: Tracer | None = None

# OpenTelemetry GenAI semantic conventions (attribute registry, gen_ai.*; development status):
# https://opentelemetry.io/docs/specs/semconv/registry/attributes/gen-ai/ . ``gen_ai.system``
# was replaced by ``gen_ai.provider.name``, whose well-known values include "gcp.gemini" (the
# Gemini API, AI Studio) and "gcp.vertex_ai" (Vertex AI); "generate_content" is the
# ``gen_ai.operation.name`` for "multimodal content generation operation such as Gemini
# Generate Content"; ``execute_tool`` spans carry ``gen_ai.tool.name`` and
# ``gen_ai.tool.call.id``.
PROVIDER_GEMINI = "gcp.gemini"
PROVIDER_VERTEX = "gcp.vertex_ai"
OPERATION = "generate_content"


def instrument(tracer_provider: TracerProvider | None = None) -> None:
    """Trace every stream opened from now on.

    Args:
        tracer_provider: The provider to take the tracer from; by default the global one
            (``opentelemetry.trace.set_tracer_provider``), looked up when spans are made, so
            it may be set after this call.

    Raises:
        ConfigurationError: opentelemetry-api is not installed (``pip install
            'gemini-ws[otel]'``).
    """
    global _tracer
    try:
        from opentelemetry import trace
    except ImportError:
        raise ConfigurationError(
            "tracing needs opentelemetry-api: pip install 'gemini-ws[otel]'"
        ) from None
    _tracer = trace.get_tracer("gemini_ws", _version(), tracer_provider=tracer_provider)


def uninstrument() -> None:
    """Stop tracing streams opened from now on (open ones finish their spans)."""
    global _tracer
    _tracer = None


def is_instrumented() -> bool:
    """Whether streams opened now are traced."""
    return _tracer is not None


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gemini-ws")
    except PackageNotFoundError:
        return None


def session_tracer(model: str, now: float) -> SessionTracer | None:
    """The tracer of a stream opening now, or None when tracing is off."""
    tracer = _tracer
    if tracer is None:
        return None
    return SessionTracer(tracer, model, now)


class SessionTracer:
    """The spans of one session (driven by :class:`gemini_ws._metrics.StreamObserver`)."""

    def __init__(self, tracer: Tracer, model: str, now: float) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer
        # trio's clock -> wall-clock nanoseconds, fixed for the session
        self._offset = time.time_ns() - int(trio.current_time() * 1e9)
        self._model = model.rpartition("/")[2]
        self._common: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": PROVIDER_GEMINI,
            "gen_ai.request.model": self._model,
        }
        self._span = tracer.start_span(
            "gemini_ws.session",
            kind=trace.SpanKind.CLIENT,
            attributes=self._common,
            start_time=self._ns(now),
        )
        self._context = trace.set_span_in_context(self._span)
        self._dials: list[tuple[Any, ...]] = []
        self._failed = False

    @property
    def context(self) -> Any:
        """An OpenTelemetry context whose current span is the session's."""
        return self._context

    def _ns(self, t: float) -> int:
        return self._offset + int(t * 1e9)

    def _fail(self, span: Span, error: BaseException, at: float) -> None:
        span.record_exception(error, timestamp=self._ns(at))
        span.set_status(self._trace.StatusCode.ERROR, f"{type(error).__name__}: {error}")
        span.set_attribute("error.type", type(error).__qualname__)

    # --- setups ------------------------------------------------------------------------
    def setup(
        self,
        conn: LiveConnection | None,
        asked_at: float,
        acquired_at: float,
        now: float,
        error: BaseException | None,
        *,
        first: bool,
    ) -> None:
        if conn is not None and first:
            host = conn.endpoint.host
            if host.endswith("aiplatform.googleapis.com"):
                self._common["gen_ai.provider.name"] = PROVIDER_VERTEX
                self._span.set_attribute("gen_ai.provider.name", PROVIDER_VERTEX)
            self._span.set_attribute("server.address", host)
            self._span.set_attribute("server.port", conn.endpoint.port)
        record = (conn, asked_at, acquired_at, now, error)
        if first:
            self._setup_span(record, self._context)
        else:
            self._dials.append(record)  # under the handover span, once it is known

    def _setup_span(self, record: tuple[Any, ...], context: Any) -> None:
        conn, asked_at, acquired_at, now, error = record
        attributes: dict[str, Any] = {
            "gemini_ws.acquire_time": acquired_at - asked_at,
            "gemini_ws.setup_time": now - acquired_at,
        }
        if conn is not None:
            attributes["gemini_ws.warm"] = bool(conn.was_spare)
        span = self._tracer.start_span(
            "gemini_ws.setup",
            context=context,
            attributes=attributes,
            start_time=self._ns(asked_at),
        )
        if error is not None:
            self._fail(span, error, now)
        span.end(end_time=self._ns(now))

    # --- turns -------------------------------------------------------------------------
    def turn_started(self, index: int, at: float) -> Span:
        return self._tracer.start_span(
            "gemini_ws.turn",
            context=self._context,
            attributes={**self._common, "gemini_ws.turn.index": index},
            start_time=self._ns(at),
        )

    def interrupted(self, span: Span | None, at: float) -> None:
        if span is not None:
            span.add_event("gemini_ws.interrupted", timestamp=self._ns(at))

    def turn_ended(
        self,
        span: Span | None,
        end: float,
        *,
        time_to_first_chunk: float | None,
        interrupted: bool,
        completed: bool,
        usage: UsageMetadata | None,
        tool_calls: int,
    ) -> None:
        if span is None:
            return
        attributes: dict[str, Any] = {
            "gemini_ws.interrupted": interrupted,
            "gemini_ws.completed": completed,
            "gemini_ws.tool_calls": tool_calls,
        }
        if time_to_first_chunk is not None:
            attributes["gemini_ws.time_to_first_chunk"] = time_to_first_chunk
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.prompt_token_count or 0
            attributes["gen_ai.usage.output_tokens"] = usage.response_token_count or 0
            if usage.thoughts_token_count:
                attributes["gemini_ws.usage.thoughts_tokens"] = usage.thoughts_token_count
            if usage.total_token_count is not None:
                attributes["gemini_ws.usage.total_tokens"] = usage.total_token_count
        span.set_attributes(attributes)
        span.end(end_time=self._ns(end))

    def tool_call(self, record: ToolCallRecord) -> None:
        parent = record.turn_span
        context = self._trace.set_span_in_context(parent) if parent is not None else self._context
        call = record.call
        span = self._tracer.start_span(
            "gemini_ws.tool_call",
            context=context,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.provider.name": self._common["gen_ai.provider.name"],
                "gen_ai.tool.name": call.name,
                "gen_ai.tool.call.id": call.id or "",
                "gen_ai.tool.type": "function",
                "gemini_ws.tool_call.outcome": record.outcome,
            },
            start_time=self._ns(record.started_at),
        )
        end = record.ended_at if record.ended_at is not None else record.started_at
        span.end(end_time=self._ns(end))

    # --- the session -------------------------------------------------------------------
    def go_away(self, message: GoAway, at: float) -> None:
        self._span.add_event(
            "gemini_ws.go_away",
            {"gemini_ws.go_away.time_left": message.time_left.total_seconds()},
            timestamp=self._ns(at),
        )

    def handover(self, event: SessionResumed, now: float) -> None:
        span = self._tracer.start_span(
            "gemini_ws.handover",
            context=self._context,
            attributes={
                "gemini_ws.handover.reason": event.reason,
                "gemini_ws.handover.gap": event.gap,
                "gemini_ws.handover.warm": event.warm,
                "gemini_ws.handover.attempts": event.attempts,
                "gemini_ws.handover.replayed": event.replayed,
                "gemini_ws.handover.interrupted_turn": event.interrupted_turn,
                "gemini_ws.handover.answered_again": event.answered_again,
                "gemini_ws.handover.state_restored": event.state_restored,
            },
            start_time=self._ns(now - event.gap),
        )
        if event.error is not None:  # what caused it (the session went on)
            span.record_exception(event.error, timestamp=self._ns(now - event.gap))
        context = self._trace.set_span_in_context(span)
        for record in self._dials:
            self._setup_span(record, context)
        self._dials.clear()
        span.end(end_time=self._ns(now))

    def error(self, error: BaseException, now: float, turn_span: Span | None) -> None:
        if self._failed:
            return
        self._failed = True
        self._fail(self._span, error, now)
        if turn_span is not None:
            self._fail(turn_span, error, now)

    def end(
        self,
        now: float,
        state: str,
        error: BaseException | None,
        *,
        turns: int,
        handovers: int,
    ) -> None:
        for record in self._dials:  # dials of a handover that never completed
            self._setup_span(record, self._context)
        self._dials.clear()
        self._span.set_attributes(
            {"gemini_ws.state": state, "gemini_ws.turns": turns, "gemini_ws.handovers": handovers}
        )
        if error is not None and not self._failed:
            if isinstance(error, Exception):
                self._failed = True
                self._fail(self._span, error, now)
            else:  # cancelled, KeyboardInterrupt...: not an error of the session
                self._span.set_attribute("gemini_ws.ended_by", type(error).__qualname__)
        self._span.end(end_time=self._ns(now))
