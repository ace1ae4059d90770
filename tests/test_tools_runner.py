"""The tool runner (``s.run_tools``): sync and async functions run concurrently in the stream's
nursery, each call answered with its id; failures are error responses; cancellations and
interruptions cancel; nothing outlives the stream. Judged from what the fake server received."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import trio

from gemini_ws import (
    Client,
    ConfigurationError,
    FunctionResponse,
    LiveConfig,
    ServerContent,
    ToolCall,
)
from gemini_ws.testing import open_fake_server

from .conftest import TEST_KEY

MODEL = "gemini-3.1-flash-live-preview"


def declare(*names: str, behavior: str | None = None) -> LiveConfig:
    declarations: list[dict[str, Any]] = [{"name": n} for n in names]
    if behavior is not None:
        for d in declarations:
            d["behavior"] = behavior
    return LiveConfig(
        response_modalities=["TEXT"], tools=[{"function_declarations": declarations}]
    )


def responses_received(server: Any) -> list[dict[str, Any]]:
    return [
        response
        for conn in server.connections
        for message in conn.received
        if "toolResponse" in message
        for response in message["toolResponse"]["functionResponses"]
    ]


def reply_text(messages: list[Any]) -> str:
    return "".join(m.text for m in messages if isinstance(m, ServerContent))


@pytest.mark.parametrize("latency", [0.0, 0.05], ids=["0ms", "50ms"])
async def test_sync_and_async_tools_run_at_once_and_answer_with_their_ids(latency: float) -> None:
    threads: list[str] = []

    def slow_sync(seconds: float) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        time.sleep(seconds)
        return {"slept": seconds}

    async def slow_async(seconds: float) -> str:
        await trio.sleep(seconds)
        return "done"

    async with open_fake_server(api_key=TEST_KEY, first_chunk_delay=latency) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                config = declare("slow_sync", "slow_async")
                async with client.stream(MODEL, config=config) as s:
                    runner = s.run_tools({"slow_sync": slow_sync, "slow_async": slow_async})
                    await s.send_text(
                        'call slow_sync({"seconds": 0.3}) and call slow_async({"seconds": 0.3})'
                    )
                    start = trio.current_time()
                    messages = await s.receive_turn()
                    took = trio.current_time() - start
                    stats = runner.statistics()
    calls = next(m for m in messages if isinstance(m, ToolCall)).function_calls
    assert reply_text(messages) == (
        'Tool results: slow_sync={"slept":0.3}; slow_async={"result":"done"}'
    )
    assert took < 0.55 + 2 * latency, "the two calls ran one after the other"
    assert threads and threads[0] != threading.main_thread().name  # a sync tool runs in a thread
    answered = responses_received(server)
    assert sorted(r["id"] for r in answered) == sorted(c.id for c in calls)  # one answer each
    assert {r["id"]: r["name"] for r in answered} == {c.id: c.name for c in calls}
    assert (stats.started, stats.answered, stats.failed, stats.running) == (2, 2, 0, ())


async def test_a_failing_tool_is_an_error_response_and_the_stream_goes_on() -> None:
    def get_weather(city: str) -> dict[str, Any]:
        raise ValueError(f"no weather for {city}")

    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, config=declare("get_weather", "nope")) as s:
                    runner = s.run_tools({"get_weather": get_weather})
                    await s.send_text('call get_weather({"city": "Oslo"}) then call nope')
                    first = reply_text(await s.receive_turn())
                    await s.send_text("still there?")
                    second = reply_text(await s.receive_turn())
    assert first == (
        'Tool results: get_weather={"error":"ValueError: no weather for Oslo"}; '
        'nope={"error":"no function \'nope\' (known: get_weather)"}'
    )
    assert second == "You said: still there?"
    assert runner.statistics().failed == 2


async def test_wrong_arguments_are_an_error_response() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, config=declare("add")) as s:
                    s.run_tools({"add": add})
                    await s.send_text('call add({"a": 1, "c": 2})')
                    text = reply_text(await s.receive_turn())
    assert text.startswith('Tool results: add={"error":"TypeError: ')
    assert "unexpected keyword argument 'c'" in text


async def test_a_cancellation_cancels_the_running_tool_and_it_is_not_answered() -> None:
    cancelled = trio.Event()
    started = trio.Event()

    async def slow() -> str:
        started.set()
        try:
            await trio.sleep(30)
        finally:
            cancelled.set()
        return "never"

    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, config=declare("slow")) as s:
                    runner = s.run_tools({"slow": slow})
                    await s.send_text("call slow")
                    seen: list[Any] = []
                    async for message in s:  # the ToolCall starts the tool
                        seen.append(message)
                        if isinstance(message, ToolCall):
                            break
                    await started.wait()
                    # the user speaks over it: the fake cancels the call and interrupts
                    await s.send_realtime_text("never mind")
                    seen += await s.receive_turn()
                    await cancelled.wait()
                    seen += await s.receive_turn()
                    stats = runner.statistics()
    assert any(type(m).__name__ == "ToolCallCancellation" for m in seen)
    assert responses_received(server) == []
    assert (stats.started, stats.cancelled, stats.answered) == (1, 1, 0)
    assert reply_text(seen) == "You said: never mind"  # the model answered the new turn


def interrupting(calls: list[dict[str, Any]]) -> Any:
    """A responder that asks for calls, then is interrupted without cancelling them."""

    async def responder(turn: Any) -> Any:
        for call in calls:
            turn._register_calls([call])
        yield {"toolCall": {"functionCalls": calls}}
        await trio.sleep(0.2)
        yield {"serverContent": {"interrupted": True}}
        yield {"serverContent": {"turnComplete": True}}

    return responder


@pytest.mark.parametrize(("behavior", "cancelled"), [("BLOCKING", True), ("NON_BLOCKING", False)])
async def test_an_interruption_cancels_blocking_calls_only(behavior: str, cancelled: bool) -> None:
    done = trio.Event()

    async def tool() -> str:
        await trio.sleep(0.4)
        done.set()
        return "ok"

    calls = [{"id": "call-1", "name": "tool", "args": {}}]
    async with open_fake_server(api_key=TEST_KEY, responder=interrupting(calls)) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, config=declare("tool", behavior=behavior)) as s:
                    runner = s.run_tools({"tool": tool})
                    await s.send_text("go")
                    await s.receive_turn()
                    with trio.move_on_after(0.6):
                        await done.wait()
                    await trio.sleep(0.1)
                    stats = runner.statistics()
    assert done.is_set() is not cancelled
    assert stats.cancelled == (1 if cancelled else 0)
    assert [r["id"] for r in responses_received(server)] == ([] if cancelled else ["call-1"])


async def test_a_tool_may_return_its_own_function_response() -> None:
    def notify() -> FunctionResponse:
        return FunctionResponse(
            id=None, name="", response={"sent": True}, scheduling="SILENT", will_continue=False
        )

    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, config=declare("notify")) as s:
                    s.run_tools({"notify": notify}, scheduling="WHEN_IDLE")
                    await s.send_text("call notify")
                    messages = await s.receive_turn()
    call = next(m for m in messages if isinstance(m, ToolCall)).function_calls[0]
    (sent,) = responses_received(server)
    assert sent == {
        "id": call.id,
        "name": "notify",
        "response": {"sent": True},
        "scheduling": "SILENT",
        "willContinue": False,
    }


async def test_the_scheduling_of_the_runner_goes_on_every_response() -> None:
    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, config=declare("ping")) as s:
                    s.run_tools({"ping": lambda: "pong"}, scheduling="WHEN_IDLE")
                    await s.send_text("call ping")
                    await s.receive_turn()
    (sent,) = responses_received(server)
    assert sent["scheduling"] == "WHEN_IDLE" and sent["response"] == {"result": "pong"}


async def test_leaving_the_stream_cancels_running_tools_at_once() -> None:
    finished = trio.Event()

    async def forever() -> None:
        try:
            await trio.sleep_forever()
        finally:
            finished.set()

    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(5):
                async with client.stream(MODEL, config=declare("forever")) as s:
                    s.run_tools({"forever": forever})
                    await s.send_text("call forever")
                    async for message in s:
                        if isinstance(message, ToolCall):
                            break
                    await trio.sleep(0.05)
                assert finished.is_set()  # cancelled with the stream's nursery


async def test_tools_run_while_audio_keeps_streaming_on_a_non_blocking_model() -> None:
    # gemini-3.8-live: function calls are NON_BLOCKING by default; the app keeps talking
    async def lookup(q: str) -> dict[str, Any]:
        await trio.sleep(0.2)
        return {"answer": q.upper()}

    async def microphone(s: Any, stop: trio.Event) -> None:
        while not stop.is_set():
            await s.send_audio(b"\x00\x00" * 320, 16000)
            await trio.sleep(0.02)

    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream("gemini-3.8-live", config=declare("lookup")) as s:
                    s.run_tools({"lookup": lookup})
                    stop = trio.Event()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(microphone, s, stop)
                        await s.send_text('call lookup({"q": "tide"})')
                        text = reply_text(await s.receive_turn())
                        stop.set()
        conn = next(c for c in server.connections if c.setup is not None)
    assert text == 'Tool results: lookup={"answer":"TIDE"}'
    kinds = [next(iter(m)) for m in conn.received]
    answer = kinds.index("toolResponse")
    text_at = next(i for i, m in enumerate(conn.received) if m.get("realtimeInput", {}).get("text"))
    audio_between = sum(
        1 for m in conn.received[text_at:answer] if "audio" in m.get("realtimeInput", {})
    )
    assert audio_between >= 5, "the audio stopped while the tool ran"


def test_bad_tool_tables_are_configuration_errors() -> None:
    from gemini_ws._tools import ToolRunner

    for functions, needle in (
        ([("f", print)], "dict of function name"),
        ({"": print}, "non-empty str"),
        ({"f": 3}, "not callable"),
    ):
        with pytest.raises(ConfigurationError, match=needle):
            ToolRunner(None, functions, nursery=None)  # type: ignore[arg-type]


async def test_run_tools_needs_an_open_stream() -> None:
    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            async with client.stream(MODEL, config=declare("f")) as s:
                pass
            with pytest.raises(Exception) as info:
                s.run_tools({"f": print})
    assert "closed" in str(info.value) or "open" in str(info.value)


def test_json_path_steps_build_the_arguments() -> None:
    from gemini_ws import PartialArg
    from gemini_ws._tools import _apply_partial

    args: dict[str, Any] = {}
    for p in (
        PartialArg(json_path="$.city", string_value="Os", will_continue=True),
        PartialArg(json_path="$.city", string_value="lo"),
        PartialArg(json_path="$.days", number_value=3.0),
        PartialArg(json_path="$.ratio", number_value=0.5),
        PartialArg(json_path="$.opts.metric", bool_value=True),
        PartialArg(json_path="$.stops[1]", string_value="b"),
        PartialArg(json_path="$['odd key']", null_value="NULL_VALUE"),
    ):
        _apply_partial(args, p)
    assert args == {
        "city": "Oslo",
        "days": 3,
        "ratio": 0.5,
        "opts": {"metric": True},
        "stops": [None, "b"],
        "odd key": None,
    }
    assert json.dumps(args)


def streaming_call() -> Any:
    """A responder whose function call arrives in three parts, its arguments streamed."""

    async def responder(turn: Any) -> Any:
        turn._register_calls([{"id": "c1", "name": "book"}])
        parts = [
            {"id": "c1", "name": "book", "willContinue": True,
             "partialArgs": [{"jsonPath": "$.city", "stringValue": "Ber", "willContinue": True}]},
            {"id": "c1", "willContinue": True,
             "partialArgs": [{"jsonPath": "$.city", "stringValue": "gen"},
                             {"jsonPath": "$.nights", "numberValue": 2}]},
            {"id": "c1", "partialArgs": [{"jsonPath": "$.late", "boolValue": True}]},
        ]
        for part in parts:
            yield {"toolCall": {"functionCalls": [part]}}
            await trio.sleep(0.02)
        while turn.pending_calls:
            await trio.sleep(0.01)
        yield "booked"

    return responder


async def test_streamed_arguments_are_assembled_and_the_function_runs_once() -> None:
    seen: list[dict[str, Any]] = []

    def book(**kwargs: Any) -> str:
        seen.append(kwargs)
        return "ok"

    async with open_fake_server(api_key=TEST_KEY, responder=streaming_call()) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, config=declare("book")) as s:
                    s.run_tools({"book": book})
                    await s.send_text("book it")
                    text = reply_text(await s.receive_turn())
    assert seen == [{"city": "Bergen", "nights": 2, "late": True}]
    assert text == "booked"
    (sent,) = responses_received(server)
    assert sent == {"id": "c1", "name": "book", "response": {"result": "ok"}}
