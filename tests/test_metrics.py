"""Pushed metrics (``client.stream(..., metrics=callback)``): a TurnMetrics at the end of each
model turn, a SessionMetrics at the end of the block. Token counts are judged against the
``usageMetadata`` the fake server sent (``conn.sent``), timings against each other."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from gemini_ws import (
    Client,
    ConfigurationError,
    ConnectionLostError,
    LiveConfig,
    ReconnectPolicy,
    SessionMetrics,
    SessionResumed,
    SetupRejectedError,
    ToolCall,
    TurnMetrics,
)
from gemini_ws.testing import open_fake_server

from .conftest import TEST_KEY
from .test_resumption import live_connection

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])
TOOLS = LiveConfig(
    response_modalities=["TEXT"],
    tools=[{"function_declarations": [{"name": "get_time"}]}],
)
FAST = ReconnectPolicy(initial_backoff=0.01, max_backoff=0.05)


def usage_sent(server: Any) -> list[dict[str, Any]]:
    """Every usageMetadata the fake server sent, in order, across its connections."""
    return [
        message["usageMetadata"]
        for conn in server.connections
        for message in conn.sent
        if isinstance(message, dict) and "usageMetadata" in message
    ]


def by_modality(details: list[dict[str, Any]] | None) -> dict[str, int]:
    return {d["modality"]: d["tokenCount"] for d in details or ()}


def split(items: list[Any]) -> tuple[list[TurnMetrics], list[SessionMetrics]]:
    turns = [m for m in items if isinstance(m, TurnMetrics)]
    sessions = [m for m in items if isinstance(m, SessionMetrics)]
    assert len(turns) + len(sessions) == len(items)
    return turns, sessions


async def test_two_turns_a_tool_call_and_a_go_away_handover(fake_server: Any) -> None:
    got: list[Any] = []
    events: list[SessionResumed] = []
    async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
        with trio.fail_after(15):
            async with client.stream(MODEL, TOOLS, reconnect=FAST, metrics=got.append) as s:
                await s.send_text("call get_time")
                calls: list[ToolCall] = []
                async for msg in s.turn():
                    if isinstance(msg, ToolCall):
                        calls.append(msg)
                        await s.send_tool_response(msg, {"get_time": "noon"})
                # pushed at the turn's end, before the application read its turnComplete
                assert [type(m) for m in got] == [TurnMetrics]
                live_connection(fake_server).go_away(0.5)
                while not events:
                    msg = await s.receive()
                    if isinstance(msg, SessionResumed):
                        events.append(msg)
                await s.send_text("after the handover")
                await s.receive_turn()
                assert len(got) == 2
    (turn1, turn2), (session,) = split(got)
    assert got[-1] is session  # the session comes last, once
    usage = usage_sent(fake_server)
    assert len(usage) == 2
    assert len({c for c in fake_server.connections if c.setup is not None}) == 2

    assert (turn1.index, turn2.index) == (1, 2)
    for turn, sent in zip((turn1, turn2), usage, strict=True):
        assert turn.completed and not turn.interrupted
        assert turn.time_to_first_chunk is not None
        assert 0 < turn.time_to_first_chunk < turn.duration
        assert turn.prompt_tokens == sent["promptTokenCount"] > 0
        assert turn.response_tokens == sent["responseTokenCount"] > 0
        assert turn.total_tokens == sent["totalTokenCount"]
        assert turn.prompt_tokens_by_modality == by_modality(sent["promptTokensDetails"])
        assert turn.response_tokens_by_modality == by_modality(sent["responseTokensDetails"])
        assert turn.usage is not None and turn.usage.total_token_count == sent["totalTokenCount"]
    assert turn2.started_at > turn1.started_at + turn1.duration
    (call,) = calls[0].function_calls
    assert [(c.name, c.id) for c in turn1.tool_calls] == [("get_time", call.id)]
    assert turn2.tool_calls == ()

    (event,) = events
    assert session.model == f"models/{MODEL}"
    assert session.turns == 2
    assert session.prompt_tokens == sum(u["promptTokenCount"] for u in usage)
    assert session.response_tokens == sum(u["responseTokenCount"] for u in usage)
    assert session.total_tokens == sum(u["totalTokenCount"] for u in usage)
    assert session.prompt_tokens_by_modality == {"TEXT": session.prompt_tokens}
    assert session.handovers == 1 and session.handover_gaps == (event.gap,)
    assert event.gap > 0
    assert session.warm is False  # the fixture's client keeps no spares: a cold connection
    assert session.acquire_time is not None and session.acquire_time > 0
    assert session.time_to_open is not None and 0 < session.time_to_open <= session.acquire_time
    assert session.setup_time is not None and session.setup_time > 0
    assert session.duration > turn1.duration + turn2.duration + event.gap
    assert (session.state, session.error) == ("closed", None)


async def test_a_warm_spare_is_reported_as_such(fake_server: Any) -> None:
    got: list[Any] = []
    async with Client(api_key=TEST_KEY, base_url=fake_server.url, pool_size=1) as client:
        with trio.fail_after(10):
            await client.prewarm(1)
            async with client.stream(MODEL, TEXT, metrics=got.append) as s:
                await s.send_text("hi")
                await s.receive_turn()
    _, (session,) = split(got)
    assert session.warm is True
    assert session.acquire_time is not None and session.time_to_open is not None
    assert session.acquire_time < session.time_to_open  # the spare was opened beforehand


async def test_a_failing_callback_is_logged_and_the_stream_goes_on(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Any] = []

    def broken(item: Any) -> None:
        calls.append(item)
        raise ValueError("boom in the metrics callback")

    with trio.fail_after(10):
        async with client.stream(MODEL, TEXT, metrics=broken) as s:
            await s.send_text("one")
            first = await s.receive_turn()
            await s.send_text("two")
            second = await s.receive_turn()
    assert first and second
    assert [type(c) for c in calls] == [TurnMetrics, TurnMetrics, SessionMetrics]
    failures = [
        r
        for r in caplog.records
        if r.name == "gemini_ws" and "metrics callback failed" in r.message
    ]
    assert len(failures) == 3
    assert all(r.levelno == logging.ERROR and r.exc_info for r in failures)


async def test_an_async_callback_gets_everything_before_the_block_exits(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[Any] = []
    tasks: list[Any] = []

    async def collect(item: TurnMetrics | SessionMetrics) -> None:
        await trio.sleep(0.01)  # (a real await: the receiver does not wait for it)
        tasks.append(trio.lowlevel.current_task())
        got.append(item)
        if isinstance(item, TurnMetrics) and item.index == 1:
            raise RuntimeError("boom in the async metrics callback")

    with trio.fail_after(10):
        async with client.stream(MODEL, TEXT, metrics=collect) as s:
            await s.send_text("one")
            await s.receive_turn()
            await s.send_text("two")
            await s.receive_turn()
            app_task = trio.lowlevel.current_task()
    assert [type(m) for m in got] == [TurnMetrics, TurnMetrics, SessionMetrics]
    assert [m.index for m in got[:2]] == [1, 2]
    assert len(set(tasks)) == 1 and app_task not in tasks  # one task of the stream's, in order
    assert any("async metrics callback failed" in r.message for r in caplog.records)


async def test_a_cancelled_stream_still_awaits_the_session_metrics(client: Any) -> None:
    got: list[Any] = []

    async def collect(item: TurnMetrics | SessionMetrics) -> None:
        await trio.sleep(0)
        got.append(item)

    with trio.fail_after(10):
        with trio.move_on_after(0.5) as outer:
            async with client.stream(MODEL, TEXT, metrics=collect) as s:
                await s.send_text("hi")
                await s.receive_turn()
                await trio.sleep_forever()  # cancelled here, with the stream's tasks
    assert outer.cancelled_caught
    _, (session,) = split(got)
    assert session.error is trio.Cancelled and session.turns == 1


async def test_a_slow_async_callback_holds_the_exit_for_close_timeout_at_most(
    fake_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Any] = []

    async def stuck(item: Any) -> None:
        seen.append(item)
        await trio.sleep_forever()

    async with Client(api_key=TEST_KEY, base_url=fake_server.url, close_timeout=0.3) as client:
        with trio.fail_after(10):
            async with client.stream(MODEL, TEXT, metrics=stuck) as s:
                await s.send_text("hi")
                await s.receive_turn()
                left = trio.current_time()
            took = trio.current_time() - left
    assert [type(m) for m in seen] == [TurnMetrics]  # the session's waited behind it
    assert 0.25 < took < 2
    assert any("took longer than 0.3 s" in r.message for r in caplog.records)


async def test_a_barge_in_is_an_interrupted_turn_and_the_next_turn_starts_at_its_write() -> None:
    got: list[Any] = []
    async with open_fake_server(api_key=TEST_KEY, chunk_interval=0.2, chunk_count=5) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, TEXT, metrics=got.append) as s:
                    await s.send_text("first")
                    async for msg in s:
                        if getattr(msg, "model_turn", None) is not None:
                            break
                    written = trio.current_time()
                    await s.send_text("second")  # the model is mid-reply: it is interrupted
                    while len(got) < 2:
                        await s.receive()
    (first, second), _ = split(got)
    assert first.interrupted and first.completed
    assert not second.interrupted and second.completed
    assert second.started_at == pytest.approx(written, abs=0.05)
    assert second.time_to_first_chunk is not None
    assert 0 < second.time_to_first_chunk < second.duration
    usage = usage_sent(server)
    assert [t.total_tokens for t in (first, second)] == [u["totalTokenCount"] for u in usage]


async def test_a_thinking_reply_over_two_turn_completes_is_one_turn() -> None:
    got: list[Any] = []
    async with open_fake_server(api_key=TEST_KEY, chunk_count=3) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream("gemini-3.8-live", TEXT, metrics=got.append) as s:
                    await s.send_text("think first")
                    await s.receive_turn()
                    assert len(got) == 1  # ended at IDLE, not at the first turnComplete
                    await s.send_text("and again")
                    await s.receive_turn()
    turns, (session,) = split(got)
    assert [t.index for t in turns] == [1, 2] and session.turns == 2
    assert [t.total_tokens for t in turns] == [u["totalTokenCount"] for u in usage_sent(server)]


async def test_a_lost_connection_reports_the_cut_turn_and_the_error() -> None:
    got: list[Any] = []
    async with open_fake_server(api_key=TEST_KEY, chunk_interval=0.2, chunk_count=5) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10), pytest.raises(ConnectionLostError):
                async with client.stream(MODEL, TEXT, metrics=got.append) as s:
                    await s.send_text("first")
                    async for msg in s:
                        if getattr(msg, "model_turn", None) is not None:
                            live_connection(server).abort()
    (turn,), (session,) = split(got)
    assert not turn.completed and turn.time_to_first_chunk is not None
    assert turn.usage is None and turn.total_tokens == 0
    assert session.error is ConnectionLostError and session.state == "failed"
    assert session.turns == 1


async def test_an_error_leaving_the_block_is_how_the_session_ended(client: Any) -> None:
    got: list[Any] = []
    with trio.fail_after(10), pytest.raises(KeyError):
        async with client.stream(MODEL, TEXT, metrics=got.append) as s:
            await s.send_text("hi")
            await s.receive_turn()
            raise KeyError("the application's own")
    _, (session,) = split(got)
    assert session.error is KeyError and session.turns == 1


async def test_a_refused_setup_still_reports_the_session() -> None:
    got: list[Any] = []
    async with open_fake_server(api_key=TEST_KEY, models=["gemini-2.0-flash-live-001"]) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10), pytest.raises(SetupRejectedError):
                async with client.stream(MODEL, TEXT, metrics=got.append):
                    raise AssertionError("the setup should have been refused")
    (session,) = got
    assert isinstance(session, SessionMetrics)
    assert session.error is SetupRejectedError and session.turns == 0
    assert session.warm is None and session.setup_time is None  # no connection was set up


async def test_without_a_callback_nothing_is_observed(client: Any) -> None:
    with trio.fail_after(10):
        async with client.stream(MODEL, TEXT) as s:
            assert s._run.observer is None  # the zero-cost path: one None test per message


def test_the_callback_must_be_callable() -> None:
    from gemini_ws._runner import StreamOptions
    from gemini_ws._stream import LiveStream
    from gemini_ws._types import Setup

    with pytest.raises(ConfigurationError, match="metrics must be a function"):
        LiveStream(Setup(model="models/x"), StreamOptions(), pool=None, metrics=42)  # type: ignore[arg-type]
