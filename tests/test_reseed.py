"""History reseed: when the server refuses to resume (expired or unknown handle) and the app
opted in (``ReconnectPolicy(reseed=True)``), a fresh session is seeded with the conversation so
far; what the handle did not cover is replayed, not seeded. Judged from what the fake server
received and from a model that answers from its history."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from gemini_ws import (
    Client,
    ConnectionLostError,
    LiveConfig,
    ReconnectPolicy,
    SessionResumed,
)
from gemini_ws.testing import FakeModel, open_fake_server

from .conftest import TEST_KEY
from .test_resumption import next_reply

CONFIG = LiveConfig(response_modalities=["TEXT"], session_resumption={})
FAST = dict(initial_backoff=0.01, max_backoff=0.05, max_attempts=3)


def remembering(turn: Any) -> Any:
    """A model that answers with the user texts it has in its history (what it remembers)."""
    said = [
        part["text"]
        for content in turn.history
        if content.get("role") == "user"
        for part in content.get("parts") or ()
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    ]
    return FakeModel(chunk_count=1).reply(turn, "I remember: " + " | ".join(said))


def live(server: Any) -> Any:
    return [c for c in server.connections if c.setup is not None][-1]


_last_handle: dict[int, str] = {}


async def until_handle(s: Any) -> None:
    """Read on until the handle that follows the reply just read (a new one) has come."""
    old = _last_handle.get(id(s))
    while s.resume_handle is None or s.resume_handle == old:
        await s.receive()
    _last_handle[id(s)] = s.resume_handle


@pytest.mark.parametrize("model", ["gemini-3.1-flash-live-preview",
                                   "gemini-2.5-flash-native-audio-preview-12-2025"])
async def test_a_refused_resume_reseeds_and_the_model_remembers(model: str) -> None:
    events: list[SessionResumed] = []
    policy = ReconnectPolicy(reseed=True, **FAST)  # type: ignore[arg-type]
    async with open_fake_server(api_key=TEST_KEY, responder=remembering) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(model, config=CONFIG, reconnect=policy) as s:
                    await s.send_text("My name is Ada.")
                    first = await next_reply(s, events)
                    await until_handle(s)
                    await s.send_text("I live in Oslo.")
                    await next_reply(s, events)
                    await until_handle(s)
                    server.expire_handles()  # the handle is refused: 1007
                    live(server).abort()
                    await s.send_text("What do you remember?")
                    last = await next_reply(s, events)
        new = live(server)
    assert first == "I remember: My name is Ada."
    (event,) = events
    assert event.state_restored is False and event.reseeded_turns == 4
    assert event.reason == "connection_lost"
    # the fresh session: no handle, the conversation first, then the new question
    assert "handle" not in (new.setup.get("sessionResumption") or {})
    seed = new.received[1]["clientContent"]
    assert [t["role"] for t in seed["turns"]] == ["user", "model", "user", "model"]
    assert seed["turns"][0]["parts"] == [{"text": "My name is Ada."}]
    assert seed["turns"][1]["parts"] == [{"text": "I remember: My name is Ada."}]
    assert not seed.get("turnComplete")
    assert new.received_texts[-1] == "What do you remember?"
    if model.startswith("gemini-3"):
        assert new.setup["historyConfig"] == {"initialHistoryInClientContent": True}
    assert last == "I remember: My name is Ada. | I live in Oslo. | What do you remember?"


async def test_a_request_the_handle_did_not_cover_is_replayed_not_seeded() -> None:
    events: list[SessionResumed] = []
    policy = ReconnectPolicy(reseed=True, **FAST)  # type: ignore[arg-type]
    async with open_fake_server(
        api_key=TEST_KEY, responder=remembering, first_chunk_delay=0.3
    ) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(
                    "gemini-3.1-flash-live-preview", config=CONFIG, reconnect=policy
                ) as s:
                    await s.send_text("one")
                    await next_reply(s, events)
                    await until_handle(s)
                    await s.send_text("two")  # the model is still thinking when the line drops
                    old = live(server)
                    await old.wait_received(3)
                    server.expire_handles()
                    old.abort()
                    answer = await next_reply(s, events)
        new = live(server)
    (event,) = events
    assert not event.state_restored and event.replayed == 1 and event.interrupted_turn
    seed = new.received[1]["clientContent"]["turns"]
    assert [t["parts"][0]["text"] for t in seed] == ["one", "I remember: one"]
    assert new.received_texts[-1] == "two"  # replayed once, after the seed
    assert answer == "I remember: one | two"


async def test_without_reseed_a_refused_resume_ends_the_session() -> None:
    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15), pytest.raises(ConnectionLostError, match="resumed"):
                async with client.stream(
                    "gemini-3.1-flash-live-preview",
                    config=CONFIG,
                    reconnect=ReconnectPolicy(**FAST),  # type: ignore[arg-type]
                ) as s:
                    await s.send_text("hi")
                    await next_reply(s, [])
                    await until_handle(s)
                    server.expire_handles()
                    live(server).abort()
                    async for _ in s:
                        pass


async def test_the_history_kept_is_bounded() -> None:
    events: list[SessionResumed] = []
    policy = ReconnectPolicy(reseed=True, history_chars=60, **FAST)  # type: ignore[arg-type]
    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(
                    "gemini-3.1-flash-live-preview", config=CONFIG, reconnect=policy
                ) as s:
                    for i in range(5):
                        await s.send_text(f"message number {i}")
                        await next_reply(s, events)
                        await until_handle(s)
                    server.expire_handles()
                    live(server).abort()
                    await s.send_text("after")
                    await next_reply(s, events)
        new = live(server)
    seed = new.received[1]["clientContent"]["turns"]
    texts = [t["parts"][0]["text"] for t in seed]
    assert sum(map(len, texts)) <= 60
    assert texts[-1] == "You said: message number 4"  # the newest kept, the oldest dropped
    assert "message number 0" not in " ".join(texts)
