"""Receiving as a consumer sees it, on each transport, judged against a small burst server of
this module's own (raw trio-websocket, TCP_NODELAY), which records every message it sent.

Every message the server sent is delivered once and in order, also when receive() timeouts cut
waits short hundreds of times at random moments; server messages keep being read while the
application does other things (resumption handles, goAway); a pause taken while a consumer
reads holds messages back and loses none; a close code comes after every message before it.
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio_websocket

from gemini_ws import Client, LiveConfig, ServerClosedError, ServerContent

from .conftest import TEST_KEY

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])


class BurstServer:
    """A Live-like server that, per client text, sends what the text asks for:

    * ``burst N GAP_MS``: N text chunks ``c0`` ... (GAP_MS apart, 0: back to back), then
      turnComplete;
    * ``jitter N SEED``: the same with random gaps of 0 to 2 ms;
    * ``handle H``: a resumable sessionResumptionUpdate with handle H;
    * ``goaway``: goAway (the connection stays open);
    * ``close CODE``: a close frame with CODE.

    ``sent`` lists the chunk texts in the order they were written."""

    def __init__(self) -> None:
        self.url = ""
        self.sent: list[str] = []
        self.written = trio.Event()  # set after every command's messages went out

    async def handle(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            setup = json.loads(await ws.get_message())
            assert "setup" in setup
            await ws.send_message(json.dumps({"setupComplete": {}}))
            while True:
                message = json.loads(await ws.get_message())
                text = _text_of(message)
                if text is not None:
                    await self._perform(ws, text.split())
                    self.written.set()
                    self.written = trio.Event()
        except trio_websocket.ConnectionClosed:
            pass

    async def _perform(self, ws: trio_websocket.WebSocketConnection, words: list[str]) -> None:
        if words[0] in ("burst", "jitter"):
            n = int(words[1])
            rng = random.Random(int(words[2])) if words[0] == "jitter" else None
            gap = 0.0 if rng else float(words[2]) / 1000
            for k in range(n):
                chunk = f"c{k}"
                await ws.send_message(json.dumps(
                    {"serverContent": {"modelTurn": {"parts": [{"text": chunk}]}}}))
                self.sent.append(chunk)
                delay = rng.uniform(0, 0.002) if rng else gap
                if delay:
                    await trio.sleep(delay)
            await ws.send_message(json.dumps({"serverContent": {"turnComplete": True}}))
        elif words[0] == "handle":
            await ws.send_message(json.dumps(
                {"sessionResumptionUpdate": {"newHandle": words[1], "resumable": True}}))
        elif words[0] == "goaway":
            await ws.send_message(json.dumps({"goAway": {"timeLeft": "30s"}}))
        elif words[0] == "close":
            await ws.aclose(int(words[1]), "closing as asked")


def _text_of(message: dict[str, Any]) -> str | None:
    realtime = message.get("realtimeInput")
    if isinstance(realtime, dict) and isinstance(realtime.get("text"), str):
        return str(realtime["text"])
    content = message.get("clientContent")
    if isinstance(content, dict):
        return " ".join(p["text"] for t in content.get("turns", []) for p in t.get("parts", []))
    return None


@asynccontextmanager
async def burst_server() -> AsyncIterator[BurstServer]:
    server = BurstServer()

    async def handler(stream: trio.SocketStream) -> None:
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # 0 ms means 0 ms
        async with trio.open_nursery() as nursery:
            request = await trio_websocket.wrap_server_stream(nursery, stream)
            await server.handle(request)
            nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        server.url = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        nursery.start_soon(trio.serve_listeners, handler, listeners)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


async def tight_turn(s: Any) -> list[str]:
    """A consumer that handles each message at once and comes straight back."""
    texts = []
    async for msg in s.turn():
        if isinstance(msg, ServerContent) and msg.text:
            texts.append(msg.text)
    return texts


@asynccontextmanager
async def streaming() -> AsyncIterator[tuple[BurstServer, Any]]:
    async with burst_server() as server:
        async with Client(api_key=TEST_KEY, base_url=server.url, heartbeat_interval=None) as c:
            async with c.stream(MODEL, config=TEXT) as s:
                yield server, s


# --- nothing lost, nothing late ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_receive_timeouts_that_cut_reads_short_lose_nothing(seed: int) -> None:
    rng = random.Random(seed)
    texts: list[str] = []
    timeouts = 0
    with trio.fail_after(30):
        async with streaming() as (server, s):
            await s.send_text(f"jitter 300 {seed}")
            while True:
                with trio.move_on_after(rng.uniform(0, 0.002)) as scope:
                    msg = await s.receive()
                if scope.cancelled_caught:
                    timeouts += 1
                    continue
                if isinstance(msg, ServerContent):
                    if msg.text:
                        texts.append(msg.text)
                    if msg.turn_complete:
                        break
    assert timeouts > 10  # reads were cut short, many times
    assert texts == server.sent == [f"c{k}" for k in range(300)]


async def test_server_messages_are_read_while_the_application_does_other_work() -> None:
    with trio.fail_after(20):
        async with streaming() as (server, s):
            await s.send_text("burst 20 0")
            await tight_turn(s)
            written = server.written
            await s.send_text("handle h-1")
            await written.wait()
            written = server.written
            await s.send_text("goaway")
            await written.wait()
            # nobody is in receive(): the stream's own state still follows the server
            with trio.fail_after(2):
                while s.go_away is None or s.resume_handle != "h-1":
                    await trio.sleep(0.005)
            assert s.statistics().queued_to_deliver == 2


async def test_pause_while_the_consumer_reads_holds_and_then_delivers_everything() -> None:
    texts: list[str] = []
    with trio.fail_after(20):
        async with streaming() as (server, s):

            async def consume() -> None:
                texts.extend(await tight_turn(s))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume)
                await s.send_text("burst 100 2")
                while s.statistics().messages_received < 20:
                    await trio.sleep(0.002)
                await s.pause("receive")
                held = s.statistics().messages_received
                await trio.sleep(0.1)
                stats = s.statistics()
                # paused, the receiver goes on reading into the buffer
                assert stats.messages_received > held
                assert stats.queued_to_deliver > 0
                await s.resume("receive")
    assert texts == server.sent == [f"c{k}" for k in range(100)]


async def test_a_close_code_while_the_consumer_reads_is_reported_after_every_message() -> None:
    with trio.fail_after(20):
        async with streaming() as (server, s):
            await s.send_text("burst 50 0")
            await s.send_text("close 1011")
            texts = await tight_turn(s)
            with pytest.raises(ServerClosedError) as info:
                await s.receive()
    assert texts == server.sent
    assert info.value.code == 1011
