"""Session resumption: goAway handover, re-dial after a drop, manual resume, reconfigure."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from gemini_ws import (
    Client,
    ConnectionLostError,
    GoAway,
    LiveConfig,
    RealtimeInput,
    ReconnectPolicy,
    ServerContent,
    ServerInternalError,
    SessionResumed,
    StreamClosedError,
    ToolCall,
)
from gemini_ws.testing import Fault, open_fake_server

from .conftest import TEST_KEY
from .test_fault_matrix import texts_of

MODEL = "gemini-3.1-flash-live-preview"
#: A model that takes clientContent mid-session (3.1 takes it as initial history only).
MODEL_25 = "gemini-2.5-flash-native-audio-preview-12-2025"
TEXT = LiveConfig(response_modalities=["TEXT"])
FAST = ReconnectPolicy(initial_backoff=0.01, max_backoff=0.05)


def live_connection(server: Any) -> Any:
    """The fake-server connection that carries a session right now."""
    sessions = [c for c in server.connections if c.setup is not None]
    return ([c for c in sessions if not c.closed.is_set()] or sessions)[-1]


async def wait_for_handle(s: Any) -> None:
    """Read on until the server has given a resumption handle (it follows turnComplete)."""
    while s.resume_handle is None:
        await s.receive()


async def until_consumed_index(s: Any, index: int) -> None:
    """Read on until a sessionResumptionUpdate reports *index* as the last consumed."""
    while True:
        msg = await s.receive()
        if getattr(msg, "last_consumed_client_message_index", None) == index:
            return


async def next_reply(s: Any, events: list[SessionResumed]) -> str:
    """The text of the next model turn; SessionResumed events seen on the way are kept."""
    text = ""
    async for msg in s:
        if isinstance(msg, SessionResumed):
            events.append(msg)
        elif isinstance(msg, ServerContent):
            text += msg.text
            if msg.turn_complete:
                return text
    raise AssertionError("the stream ended")


async def test_twenty_turns_across_five_go_aways_lose_and_duplicate_nothing() -> None:
    events: list[SessionResumed] = []
    replies: list[str] = []
    async with open_fake_server(api_key=TEST_KEY, chunk_count=4) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url, pool_size=1) as client:
            with trio.fail_after(30):
                async with client.stream(MODEL, config=TEXT, reconnect=FAST) as s:
                    for i in range(20):
                        await s.send_text(f"turn {i}")
                        replies.append(await next_reply(s, events))
                        if i % 4 == 3:
                            live_connection(server).go_away(2.0)
                    while len(events) < 5:
                        msg = await s.receive()
                        if isinstance(msg, SessionResumed):
                            events.append(msg)
                    stats = s.statistics()
        sessions = {c.session for c in server.connections if c.setup is not None}
    assert replies == [f"You said: turn {i}" for i in range(20)]
    assert [e.reason for e in events] == ["go_away"] * 5
    assert all(e.replayed == 0 and not e.interrupted_turn for e in events)
    assert sum(e.warm for e in events) >= 1, "a warm spare served at least one handover"
    assert stats.handovers == 5
    assert len(sessions) == 1, "one conversation, carried over six connections"


async def test_sends_during_a_handover_go_out_on_the_new_connection() -> None:
    events: list[SessionResumed] = []
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL_25, config=TEXT, reconnect=FAST) as s:
                    await s.send_text("before")
                    assert await next_reply(s, events) == "You said: before"
                    old = live_connection(server)
                    old.go_away(2.0)
                    goaway = await s.receive()
                    while not isinstance(goaway, GoAway):
                        goaway = await s.receive()
                    # queued at once; they must arrive, once each, after the handover
                    await s.send_content("queued 0", turn_complete=False)
                    await s.send_content("queued 1", turn_complete=False)
                    await s.send_text("queued 2")
                    reply = await next_reply(s, events)
    assert reply == "You said: queued 0 queued 1 queued 2"
    assert len(events) == 1
    new = [c for c in server.connections if c.setup is not None][-1]
    assert new.received_texts == ["queued 0", "queued 1", "queued 2"]
    assert len(old.received_texts) == 1


async def test_drop_mid_turn_is_handed_over_and_the_turn_replayed() -> None:
    events: list[SessionResumed] = []
    async with open_fake_server(api_key=TEST_KEY, chunk_count=3) as server:
        # setup is client message 1, the first turn 2, the second turn 3: drop on it
        server.inject(Fault.abort(on_client_message=3))
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT, reconnect=FAST) as s:
                    await s.send_text("first")
                    assert await next_reply(s, events) == "You said: first"
                    # (the handle follows turnComplete: a drop before it leaves nothing to
                    # resume from, and the app may send before it comes)
                    await wait_for_handle(s)
                    await s.send_text("second")
                    assert await next_reply(s, events) == "You said: second"
                    await s.send_text("third")
                    assert await next_reply(s, events) == "You said: third"
    (event,) = events
    assert event.reason == "connection_lost"
    assert isinstance(event.error, ConnectionLostError)
    assert event.replayed == 1 and event.interrupted_turn
    history = [c.session for c in server.connections if c.setup is not None]
    assert history[0] is history[1]


async def test_drop_with_failing_redials_raises_connection_lost_with_handle() -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        server.inject(Fault.abort(on_client_message=3))
        policy = ReconnectPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15), pytest.raises(StreamClosedError) as leaving:
                async with client.stream(MODEL, config=TEXT, reconnect=policy) as s:
                    await s.send_text("first")
                    await next_reply(s, [])
                    await wait_for_handle(s)
                    handle = s.resume_handle
                    server.inject(Fault.reject_upgrade(503), connections=None)
                    await s.send_text("second")
                    with pytest.raises(ConnectionLostError) as info:
                        await next_reply(s, [])
    # "second" was written after the handle, and nothing shows it arrived: it is reported
    assert leaving.value.unsent == (RealtimeInput(text="second"),)
    assert leaving.value.__cause__ is info.value
    assert info.value.resume_handle == handle
    assert "3 attempt" in str(info.value)
    assert sum(1 for c in server.connections if c.rejected_status == 503) == 3


async def test_refused_handle_is_not_retried() -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        server.inject(Fault.abort(on_client_message=3))
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15), pytest.raises(StreamClosedError) as leaving:
                async with client.stream(MODEL, config=TEXT, reconnect=FAST) as s:
                    await s.send_text("first")
                    await next_reply(s, [])
                    await wait_for_handle(s)
                    server.expire_handles()
                    await s.send_text("second")
                    with pytest.raises(ConnectionLostError, match="1 attempt"):
                        await next_reply(s, [])
    assert leaving.value.unsent == (RealtimeInput(text="second"),)


async def test_without_reconnect_go_away_is_a_message_and_the_error_carries_the_handle() -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                config = LiveConfig(response_modalities=["TEXT"], session_resumption={})
                async with client.stream(MODEL, config=config) as s:
                    await s.send_text("hello")
                    await next_reply(s, [])
                    await wait_for_handle(s)
                    live_connection(server).go_away(0.2)
                    got_go_away = False
                    with pytest.raises(ServerInternalError) as info:
                        async for msg in s:
                            got_go_away |= isinstance(msg, GoAway)
                    assert got_go_away and s.go_away is not None
                    assert s.go_away.time_left.total_seconds() == pytest.approx(0.2)
    assert info.value.resume_handle == s.resume_handle


async def test_reconfigure_changes_the_system_instruction_keeping_history() -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT, reconnect=FAST) as s:
                    await s.send_text("hello")
                    await next_reply(s, [])
                    event = await s.reconfigure(
                        LiveConfig(response_modalities=["TEXT"], system_instruction="Be brief.")
                    )
                    await s.send_text("again")
                    events: list[SessionResumed] = []
                    assert await next_reply(s, events) == "You said: again"
    assert event.reason == "reconfigure" and events == [event]
    first, second = [c for c in server.connections if c.setup is not None]
    assert second.setup["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert second.setup["sessionResumption"]["handle"]
    assert first.session is second.session


async def test_reconfigure_needs_reconnect(client: Client) -> None:
    from gemini_ws import ConfigurationError

    async with client.stream(MODEL, config=TEXT) as s:
        with pytest.raises(ConfigurationError, match="reconnect=True"):
            await s.reconfigure(TEXT)


async def test_go_away_after_a_tool_call_turn_replays_nothing() -> None:
    """A tool response continues the model's turn; it must not look like a new turn that
    the next handle would not cover."""
    config = LiveConfig(
        response_modalities=["TEXT"],
        tools=[{"function_declarations": [{"name": "get_time"}]}],
    )
    events: list[SessionResumed] = []
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=config, reconnect=FAST) as s:
                    await s.send_text("call get_time")
                    async for msg in s.turn():
                        if isinstance(msg, ToolCall):
                            await s.send_tool_response(msg, {"get_time": "noon"})
                    live_connection(server).go_away(2.0)
                    await s.send_text("after")
                    assert await next_reply(s, events) == "You said: after"
                    while not events:
                        msg = await s.receive()
                        if isinstance(msg, SessionResumed):
                            events.append(msg)
    (event,) = events
    assert event.replayed == 0 and not event.interrupted_turn


async def test_overlapped_close_where_the_server_allows_it() -> None:
    policy = ReconnectPolicy(initial_backoff=0.01, close_old_first=False)
    events: list[SessionResumed] = []
    async with open_fake_server(
        api_key=TEST_KEY, chunk_count=2, refuse_resume_while_old_open=False
    ) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url, pool_size=1) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT, reconnect=policy) as s:
                    await s.send_text("one")
                    await next_reply(s, events)
                    live_connection(server).go_away(2.0)
                    while not events:
                        msg = await s.receive()
                        if isinstance(msg, SessionResumed):
                            events.append(msg)
                    await s.send_text("two")
                    assert await next_reply(s, events) == "You said: two"
    assert events[0].attempts == 1 and events[0].warm


async def test_transparent_resumption_replays_only_what_the_server_did_not_consume() -> None:
    """With transparent mode the server says which client messages its handle covers
    (lastConsumedClientMessageIndex, counting setup as 0); only later ones go again after a
    drop, even when that is past the last completed turn."""
    config = LiveConfig(response_modalities=["TEXT"], session_resumption={"transparent": True})
    events: list[SessionResumed] = []
    # strict=False: transparent is Vertex only (the strict fake is the Gemini API, which refuses
    # it), and 3.1 takes clientContent ("partial") only as initial history there
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2, strict=False) as server:
        # client messages: setup 1, "first" 2, "partial" 3, "second" 4 -> drop on "second"
        server.inject(Fault.abort(on_client_message=4))
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=config, reconnect=FAST) as s:
                    await s.send_text("first")
                    assert await next_reply(s, events) == "You said: first"
                    await wait_for_handle(s)
                    first = live_connection(server)
                    await s.send_content("partial", turn_complete=False)
                    await first.wait_received(3)
                    # the server reports that its state includes "partial" (index 2)
                    await first.send({"sessionResumptionUpdate": {
                        "newHandle": s.resume_handle, "resumable": True,
                        "lastConsumedClientMessageIndex": "2"}})
                    await until_consumed_index(s, 2)
                    await s.send_text("second")
                    await next_reply(s, events)
    (event,) = events
    second = live_connection(server)
    replayed = second.received_texts
    assert replayed == ["second"], "partial was consumed: it must not be sent twice"
    assert event.replayed == 1
    assert second.setup["sessionResumption"]["transparent"] is True


# --- regressions found in review ----------------------------------------------------------


async def test_overlapped_handover_refused_is_retried_not_a_crash() -> None:
    """close_old_first=False against a server that refuses a resume while the old connection
    is open: the refusal (1011) is retried like any failed attempt; no ExceptionGroup."""
    policy = ReconnectPolicy(initial_backoff=0.01, max_backoff=0.02, close_old_first=False)
    events: list[SessionResumed] = []
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT, reconnect=policy) as s:
                    await s.send_text("hi")
                    await wait_for_handle(s)
                    live_connection(server).go_away(5.0)
                    while not events:
                        msg = await s.receive()
                        if isinstance(msg, SessionResumed):
                            events.append(msg)
                    await s.send_text("after")
                    assert await next_reply(s, events) == "You said: after"
    assert events[0].attempts >= 1


async def test_handover_at_max_connections_reuses_the_old_slot() -> None:
    policy = ReconnectPolicy(max_attempts=2, initial_backoff=0.01)
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        async with Client(
            api_key=TEST_KEY, base_url=server.url, max_connections=1, pool_timeout=1.0
        ) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT, reconnect=policy) as s:
                    await s.send_text("hi")
                    await wait_for_handle(s)
                    live_connection(server).go_away(5.0)
                    events: list[SessionResumed] = []
                    await s.send_text("after")
                    assert await next_reply(s, events) == "You said: after"
                    while not events:
                        msg = await s.receive()
                        if isinstance(msg, SessionResumed):
                            events.append(msg)
            assert client.pool.statistics().timeouts == 0
    assert events[0].attempts == 1


async def test_reconfigure_during_a_go_away_handover_still_applies_the_new_config() -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        server_delay = Fault.delay(0.3, at_message=1)  # slow setupComplete: a long handover
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT, reconnect=FAST) as s:
                    await s.send_text("hi")
                    await wait_for_handle(s)
                    server.inject(server_delay)
                    live_connection(server).go_away(5.0)
                    while s.state != "resuming":
                        await trio.sleep(0.001)
                    event = await s.reconfigure(
                        LiveConfig(response_modalities=["TEXT"], system_instruction="New.")
                    )
    assert event.reason == "reconfigure"
    assert [h.reason for h in s.handovers] == ["go_away", "reconfigure"]
    last = [c for c in server.connections if c.setup is not None][-1]
    assert last.setup["systemInstruction"]["parts"][0]["text"] == "New."


async def test_leaving_during_a_handover_flushes_on_the_new_connection() -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT, reconnect=FAST) as s:
                    await s.send_text("hi")
                    await wait_for_handle(s)
                    server.inject(Fault.delay(0.2, at_message=1))
                    live_connection(server).go_away(5.0)
                    while s.state != "resuming":
                        await trio.sleep(0.001)
                    await s.send_realtime_text("sent during the handover")
    assert s.state == "closed" and not s.unsent
    last = live_connection(server)
    assert any(m.get("realtimeInput", {}).get("text") == "sent during the handover"
               for m in last.received)


async def test_messages_held_when_a_handover_interrupts_delivery_are_not_lost() -> None:
    """Receive buffer full (app paused) when the connection drops: every message the server
    sent arrives, in order, then SessionResumed."""
    async with open_fake_server(api_key=TEST_KEY, chunk_count=30) as server:
        async with Client(
            api_key=TEST_KEY, base_url=server.url, receive_buffer_bytes=1024
        ) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT, reconnect=FAST) as s:
                    await s.send_text("first")
                    first_text = await next_reply(s, [])
                    await wait_for_handle(s)
                    await s.pause("receive")
                    old = live_connection(server)
                    start = len(old.sent)
                    await s.send_text("x" * 60)
                    await old.wait_sent(start + 10)  # part of the reply is out
                    sent_before = len(old.sent)
                    old.abort()
                    await trio.sleep(0.2)
                    await s.resume("receive")
                    got: list[Any] = []
                    while not any(isinstance(m, SessionResumed) for m in got):
                        got.append(await s.receive())
    assert first_text == "You said: first"
    chunks = [m.text for m in got if isinstance(m, ServerContent) and m.model_turn is not None]
    expected = [
        m["serverContent"]["modelTurn"]["parts"][0]["text"]
        for m in old.sent[start:sent_before]
        if "modelTurn" in m.get("serverContent", {})
    ]
    assert expected and chunks == expected, "every chunk sent before the drop, in order"


async def test_two_drops_while_the_app_is_paused_lose_no_event() -> None:
    """The new connection's receiver is still delivering what the first handover carried over
    (the app is paused, the buffer full) when the second drop comes: nothing is lost."""

    async def until(predicate: Any) -> None:
        with trio.fail_after(5):
            while not predicate():
                await trio.sleep(0.005)

    async with open_fake_server(api_key=TEST_KEY, chunk_count=40) as server:
        async with Client(
            api_key=TEST_KEY, base_url=server.url, receive_buffer_bytes=1500
        ) as client:
            async with client.stream(MODEL, config=TEXT, reconnect=FAST) as s:
                await s.send_text("first")
                await wait_for_handle(s)
                await s.pause("receive")
                await s.send_text("hello there general kenobi")
                await until(lambda: s._run._delivery_scope is not None)  # buffer full
                for n in (1, 2):
                    live = live_connection(server)
                    live.abort()
                    i = 0
                    while len(s.handovers) < n:
                        await s.send_realtime_text(f"poke {n}.{i}")
                        i += 1
                        await trio.sleep(0.01)
                    await until(lambda: s.state == "open")
                    if n == 1:
                        # the new receiver is blocked delivering the carried-over messages
                        await until(lambda: s._run._delivery_scope is not None)
                await s.resume("receive")
                seen: list[Any] = []
                with trio.move_on_after(2):
                    async for msg in s:
                        seen.append(msg)
    assert sum(isinstance(m, SessionResumed) for m in seen) == 2


async def test_reconfigure_waiting_for_a_turn_ends_when_the_stream_is_cancelled() -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_count=50, chunk_interval=0.2) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            async with client.stream(MODEL, config=TEXT, reconnect=FAST) as s:
                await s.send_text("hi")
                await next_reply(s, [])
                await wait_for_handle(s)
                await s.send_text("a long answer please")  # 50 chunks, 0.2 s apart
                await s.receive()
                outcome: list[BaseException] = []

                async def reconfigure() -> None:
                    try:
                        await s.reconfigure(LiveConfig(response_modalities=["TEXT"]))
                    except Exception as exc:
                        outcome.append(exc)

                with trio.fail_after(5):
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(reconfigure)
                        await trio.sleep(0.3)  # reconfigure waits for the turn to end
                        await s.cancel()
    (error,) = outcome
    assert isinstance(error, StreamClosedError)


async def test_leaving_while_a_go_away_waits_for_its_handle_flushes_the_queue() -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2, chunk_interval=0.3) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT, reconnect=FAST) as s:
                    await s.send_text("first")
                    await next_reply(s, [])
                    await wait_for_handle(s)
                    await s.send_text("second")
                    await s.receive()  # mid-turn
                    live_connection(server).go_away(30.0, close_code=None)
                    async for _ in s.turn():
                        pass  # turnComplete: the handover gate closes, the handle is due
                    await s.send_text("third")
    assert not s.unsent
    texts = [text for c in server.connections for text in c.received_texts]
    assert texts.count("third") == 1


async def test_go_away_right_after_a_handle_with_little_time_left_hands_over() -> None:
    """goAway(timeLeft 0.5 s) right after a handle, the server closing 1011 at the deadline,
    while the app sends turns back to back: the session moves, nothing answered twice."""
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        server.inject(Fault.go_away_after_handle(0.5, handle=2))
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT, reconnect=FAST) as s:
                    events: list[SessionResumed] = []
                    replies = []
                    for i in range(6):
                        await s.send_text(f"turn {i}")
                        replies.append(await next_reply(s, events))
    assert replies == [f"You said: turn {i}" for i in range(6)]
    assert [e.reason for e in events] == ["go_away"] and events[0].replayed == 0
    received = [t for c in server.connections for t in texts_of(c.received)]
    assert sorted(received) == sorted(f"turn {i}" for i in range(6))
