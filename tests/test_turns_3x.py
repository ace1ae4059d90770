"""Gemini 3.x turn semantics: on thinking models one reply spans several turnCompletes framed
by interactionStatus IN_PROGRESS ... IDLE; ``s.turn()`` reads the whole reply, the session's
quiet moment (the handover) waits for IDLE. Judged against the fake's thinking model and an
independent scripted server."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from gemini_ws import Client, ConfigurationError, LiveConfig, ServerContent, SessionResumed
from gemini_ws.testing import open_fake_server, scripted

from .conftest import TEST_KEY
from .test_resumption import wait_for_handle

TEXT = LiveConfig(response_modalities=["TEXT"])
THINKING = "gemini-3.8-live"


def text_of(messages: list[Any]) -> str:
    return "".join(m.text for m in messages if isinstance(m, ServerContent))


@pytest.mark.parametrize("latency", [0.0, 0.05], ids=["0ms", "50ms"])
async def test_a_thinking_reply_over_two_turn_completes_is_one_turn(latency: float) -> None:
    async with open_fake_server(
        api_key=TEST_KEY, chunk_count=3, first_chunk_delay=latency, chunk_interval=latency
    ) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(THINKING, config=TEXT) as s:
                    await s.send_text("think first")
                    first = await s.receive_turn()
                    assert s.model_idle
                    await s.send_text("and again")
                    second = await s.receive_turn()
    for messages, said in ((first, "think first"), (second, "and again")):
        assert text_of(messages) == f"You said: {said}"
        contents = [m for m in messages if isinstance(m, ServerContent)]
        assert sum(m.turn_complete for m in contents) == 2  # both inside the one reply
        assert contents[0].interaction_status == "IN_PROGRESS"
        assert contents[-1].interaction_status == "IDLE"  # the turn ended at IDLE


async def test_until_turn_complete_keeps_the_pre_3x_rule() -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_count=3) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(THINKING, config=TEXT) as s:
                    await s.send_text("hello there")
                    part = await s.receive_turn(until="turn_complete")
                    assert not s.model_idle  # the model said it goes on
                    rest = await s.receive_turn()
                    assert s.model_idle
                    with pytest.raises(ConfigurationError, match="until"):
                        s.turn(until="idle")  # type: ignore[arg-type]
    assert isinstance(part[-1], ServerContent) and part[-1].turn_complete
    assert text_of(part) + text_of(rest) == "You said: hello there"
    assert text_of(part) != "You said: hello there"  # the first turnComplete came mid-reply


async def test_models_without_interaction_status_end_at_the_first_turn_complete() -> None:
    # scripted replies with no interactionStatus: each ends at its turnComplete
    responder = scripted(["one"], ["two"])
    async with open_fake_server(api_key=TEST_KEY, responder=responder) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream("gemini-3.1-flash-live-preview", config=TEXT) as s:
                    await s.send_text("a")
                    assert text_of(await s.receive_turn()) == "one"
                    await s.send_text("b")
                    assert text_of(await s.receive_turn()) == "two"


async def test_a_go_away_during_a_thinking_reply_hands_over_after_idle() -> None:
    events: list[SessionResumed] = []
    async with open_fake_server(api_key=TEST_KEY, chunk_count=4, chunk_interval=0.05) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                config = LiveConfig(response_modalities=["TEXT"], session_resumption={})
                async with client.stream(THINKING, config=config, reconnect=True) as s:
                    await s.send_text("warm up")
                    await s.receive_turn()
                    await wait_for_handle(s)
                    await s.send_text("a long thought")
                    got = [await s.receive()]  # IN_PROGRESS
                    while not (isinstance(got[-1], ServerContent) and got[-1].turn_complete):
                        got.append(await s.receive())
                    # the first turnComplete of the reply: not a quiet moment
                    next(c for c in server.connections if c.setup is not None).go_away(3.0)
                    got += await s.receive_turn()
                    async for msg in s:
                        if isinstance(msg, SessionResumed):
                            events.append(msg)
                            break
        conns = [c for c in server.connections if c.setup is not None]
    assert text_of(got) == "You said: a long thought"  # the reply was not cut by the handover
    (event,) = events
    assert not event.interrupted_turn and event.replayed == 0
    assert conns[0].received_texts == ["warm up", "a long thought"]
    assert conns[1].received_texts == []  # nothing replayed
