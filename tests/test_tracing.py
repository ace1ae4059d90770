"""OpenTelemetry traces (``gemini_ws.telemetry.instrument()``): the span tree of a session with
two turns, a tool call and a goAway handover, its attributes and events; errors as status ERROR;
nothing at all while tracing is off. Spans are read from opentelemetry-sdk's in-memory exporter;
the token counts are judged against the ``usageMetadata`` the fake server sent."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from gemini_ws import (
    Client,
    ConfigurationError,
    ConnectionLostError,
    SessionResumed,
    SetupRejectedError,
    ToolCall,
    telemetry,
)
from gemini_ws.testing import open_fake_server

from .conftest import TEST_KEY
from .test_metrics import FAST, MODEL, TEXT, TOOLS, usage_sent
from .test_resumption import live_connection

try:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode
except ImportError:
    pytest.skip(
        "the tracing tests need opentelemetry-sdk: pip install opentelemetry-sdk "
        "(it is in the test extra)",
        allow_module_level=True,
    )


@pytest.fixture
def provider() -> TracerProvider:
    return TracerProvider()


@pytest.fixture
def exporter(provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.instrument(provider)
    try:
        yield exporter
    finally:
        telemetry.uninstrument()


class Tree:
    """The finished spans, by parent."""

    def __init__(self, spans: tuple[ReadableSpan, ...]) -> None:
        self.spans = sorted(spans, key=lambda s: s.start_time or 0)
        self.by_id = {s.context.span_id: s for s in self.spans}

    def roots(self) -> list[ReadableSpan]:
        return [s for s in self.spans if s.parent is None or s.parent.span_id not in self.by_id]

    def children(self, span: ReadableSpan, name: str | None = None) -> list[ReadableSpan]:
        return [
            s
            for s in self.spans
            if s.parent is not None
            and s.parent.span_id == span.context.span_id
            and (name is None or s.name == name)
        ]

    def shape(self, span: ReadableSpan) -> Any:
        """(name, [children's shapes]) in start order."""
        return (span.name, [self.shape(child) for child in self.children(span)])


def seconds(span: ReadableSpan) -> float:
    assert span.start_time is not None and span.end_time is not None
    return (span.end_time - span.start_time) / 1e9


async def test_the_span_tree_of_a_session_with_a_tool_call_and_a_handover(
    fake_server: Any, exporter: InMemorySpanExporter
) -> None:
    events: list[SessionResumed] = []
    calls: list[ToolCall] = []
    async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
        with trio.fail_after(15):
            async with client.stream(MODEL, TOOLS, reconnect=FAST) as s:
                await s.send_text("call get_time")
                async for msg in s.turn():
                    if isinstance(msg, ToolCall):
                        calls.append(msg)
                        await s.send_tool_response(msg, {"get_time": "noon"})
                live_connection(fake_server).go_away(0.5)
                while not events:
                    msg = await s.receive()
                    if isinstance(msg, SessionResumed):
                        events.append(msg)
                await s.send_text("after the handover")
                await s.receive_turn()
    tree = Tree(exporter.get_finished_spans())
    (session,) = tree.roots()
    assert tree.shape(session) == (
        "gemini_ws.session",
        [
            ("gemini_ws.setup", []),
            ("gemini_ws.turn", [("gemini_ws.tool_call", [])]),
            ("gemini_ws.handover", [("gemini_ws.setup", [])]),
            ("gemini_ws.turn", []),
        ],
    )
    attributes = dict(session.attributes or {})
    assert attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.operation.name"] == "generate_content"
    assert attributes["server.address"] == "127.0.0.1"
    assert (attributes["gemini_ws.turns"], attributes["gemini_ws.handovers"]) == (2, 1)
    assert session.status.status_code is StatusCode.UNSET
    (go_away,) = [e for e in session.events if e.name == "gemini_ws.go_away"]
    assert dict(go_away.attributes or {})["gemini_ws.go_away.time_left"] == pytest.approx(0.5)

    turns = tree.children(session, "gemini_ws.turn")
    for turn, sent in zip(turns, usage_sent(fake_server), strict=True):
        turn_attributes = dict(turn.attributes or {})
        assert turn_attributes["gen_ai.usage.input_tokens"] == sent["promptTokenCount"] > 0
        assert turn_attributes["gen_ai.usage.output_tokens"] == sent["responseTokenCount"] > 0
        assert 0 < turn_attributes["gemini_ws.time_to_first_chunk"] < seconds(turn)
        assert turn_attributes["gen_ai.request.model"] == MODEL
        assert turn.status.status_code is StatusCode.UNSET
    (tool,) = tree.children(turns[0], "gemini_ws.tool_call")
    (call,) = calls[0].function_calls
    tool_attributes = dict(tool.attributes or {})
    assert tool_attributes["gen_ai.tool.name"] == "get_time"
    assert tool_attributes["gen_ai.tool.call.id"] == call.id
    assert tool_attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_attributes["gemini_ws.tool_call.outcome"] == "answered"
    assert 0 < seconds(tool) < seconds(turns[0])

    (event,) = events
    (handover,) = tree.children(session, "gemini_ws.handover")
    handover_attributes = dict(handover.attributes or {})
    assert handover_attributes["gemini_ws.handover.reason"] == "go_away"
    assert handover_attributes["gemini_ws.handover.gap"] == pytest.approx(event.gap)
    assert handover_attributes["gemini_ws.handover.warm"] is False
    assert seconds(handover) == pytest.approx(event.gap, abs=1e-6)
    first_setup = tree.children(session, "gemini_ws.setup")[0]
    assert dict(first_setup.attributes or {})["gemini_ws.warm"] is False
    (dial,) = tree.children(handover, "gemini_ws.setup")
    assert handover.start_time <= dial.start_time <= dial.end_time <= handover.end_time  # type: ignore[operator]


async def test_an_interruption_is_an_event_of_its_turn(exporter: InMemorySpanExporter) -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_interval=0.2, chunk_count=5) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, TEXT) as s:
                    await s.send_text("first")
                    async for msg in s:
                        if getattr(msg, "model_turn", None) is not None:
                            break
                    await s.send_text("second")
                    await s.receive_turn()
                    await s.receive_turn()
    tree = Tree(exporter.get_finished_spans())
    (session,) = tree.roots()
    first, second = tree.children(session, "gemini_ws.turn")
    assert [e.name for e in first.events] == ["gemini_ws.interrupted"]
    assert dict(first.attributes or {})["gemini_ws.interrupted"] is True
    assert not second.events


async def test_a_lost_connection_sets_status_error(exporter: InMemorySpanExporter) -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_interval=0.2, chunk_count=5) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10), pytest.raises(ConnectionLostError):
                async with client.stream(MODEL, TEXT) as s:
                    await s.send_text("first")
                    async for msg in s:
                        if getattr(msg, "model_turn", None) is not None:
                            live_connection(server).abort()
    tree = Tree(exporter.get_finished_spans())
    (session,) = tree.roots()
    (turn,) = tree.children(session, "gemini_ws.turn")
    for span in (session, turn):
        assert span.status.status_code is StatusCode.ERROR
        assert "ConnectionLostError" in (span.status.description or "")
        assert [e.name for e in span.events if e.name == "exception"] == ["exception"]
        assert dict(span.attributes or {})["error.type"] == "ConnectionLostError"
    assert dict(turn.attributes or {})["gemini_ws.completed"] is False
    assert dict(session.attributes or {})["gemini_ws.state"] == "failed"


async def test_a_refused_setup_is_an_error_of_the_setup_and_the_session(
    exporter: InMemorySpanExporter,
) -> None:
    async with open_fake_server(api_key=TEST_KEY, models=["gemini-2.0-flash-live-001"]) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10), pytest.raises(SetupRejectedError):
                async with client.stream(MODEL, TEXT):
                    raise AssertionError("the setup should have been refused")
    tree = Tree(exporter.get_finished_spans())
    (session,) = tree.roots()
    (setup,) = tree.children(session)
    assert setup.name == "gemini_ws.setup"
    for span in (session, setup):
        assert span.status.status_code is StatusCode.ERROR
        assert dict(span.attributes or {})["error.type"] == "SetupRejectedError"


async def test_the_session_span_is_a_child_of_the_current_span(
    client: Any, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app = provider.get_tracer("the-app")
    with app.start_as_current_span("handle-call") as outer, trio.fail_after(10):
        async with client.stream(MODEL, TEXT) as s:
            await s.send_text("hi")
            await s.receive_turn()
    tree = Tree(exporter.get_finished_spans())
    (root,) = tree.roots()
    assert root.name == "handle-call"
    (session,) = tree.children(root)
    assert session.name == "gemini_ws.session"
    assert session.context.trace_id == outer.get_span_context().trace_id
    assert trace.get_current_span() is not outer  # nothing was left attached


async def test_your_spans_go_under_the_session_span_with_its_trace_context(
    client: Any, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """``s.trace_context`` puts the app's own spans under the session's, on request only:
    a span started without it inside the block is not the session's child."""
    app = provider.get_tracer("the-app")
    with trio.fail_after(10):
        async with client.stream(MODEL, TEXT) as s:
            with app.start_as_current_span("lookup", context=s.trace_context):
                await s.send_text("hi")
                await s.receive_turn()
            with app.start_as_current_span("unrelated"):
                pass
    tree = Tree(exporter.get_finished_spans())
    by_name = {span.name: span for span in tree.spans}
    session = by_name["gemini_ws.session"]
    assert [c.name for c in tree.children(session, "lookup")] == ["lookup"]
    assert by_name["unrelated"].parent is None


async def test_nothing_is_traced_unless_instrumented(client: Any) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.instrument(provider)
    telemetry.uninstrument()
    assert not telemetry.is_instrumented()
    with trio.fail_after(10):
        async with client.stream(MODEL, TEXT) as s:
            assert s._run.observer is None
            assert s.trace_context is None
            await s.send_text("hi")
            await s.receive_turn()
    assert exporter.get_finished_spans() == ()


def test_instrument_without_opentelemetry_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import now raises ImportError
    with pytest.raises(ConfigurationError, match=r"gemini-ws\[otel\]"):
        telemetry.instrument()
    assert not telemetry.is_instrumented()
