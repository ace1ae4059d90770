"""Odd client input never crashes the fake server: only that connection is refused (1007) or
the input is handled; the server records no internal error (FakeServerError on exit)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from gemini_ws.testing import open_fake_server

from .test_fake_server_helpers import MODEL, connect, send

TEXT_SETUP = {"setup": {"model": MODEL, "generationConfig": {"responseModalities": ["TEXT"]}}}

CASES: dict[str, list[Any]] = {
    "function declarations not a list": [
        {"setup": {"model": MODEL, "tools": [{"functionDeclarations": 5}]}}
    ],
    "context update with odd tools": [
        {"setup": {"model": MODEL}},
        {"contextUpdate": {"tools": {"tools": [{"function_declarations": True}]}}},
    ],
    "audio part with rate 0": [
        TEXT_SETUP,
        {"clientContent": {"turns": [{"role": "user", "parts": [
            {"inlineData": {"mimeType": "audio/pcm;rate=0", "data": "AAAA"}}]}],
            "turnComplete": True}},
    ],
    "audio rate with 5000 digits": [
        {"setup": {"model": MODEL}},
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=" + "1" * 5000, "data": "AAAA"}}},
    ],
    "audio rate 10**400": [
        TEXT_SETUP,
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=1" + "0" * 400, "data": "AAAA"}}},
        {"realtimeInput": {"audioStreamEnd": True}},
    ],
    "JSON nested 100,000 deep": ['{"setup":' + "[" * 100_000 + "]" * 100_000 + "}"],
    "tool call with 100,000 nested brackets": [
        {"setup": {"model": MODEL, "generationConfig": {"responseModalities": ["TEXT"]},
                   "tools": [{"functionDeclarations": [{"name": "f"}]}]}},
        {"realtimeInput": {"text": "call f(" + "[" * 100_000}},
    ],
}


@pytest.mark.parametrize("messages", list(CASES.values()), ids=list(CASES))
async def test_odd_input_is_refused_or_handled_never_a_crash(messages: list[Any]) -> None:
    async with open_fake_server(close_timeout=1) as server:  # raises FakeServerError on a bug
        with trio.move_on_after(3):
            async with connect(server, max_message_size=2**24) as ws:
                for message in messages:
                    if isinstance(message, str):
                        await ws.send_message(message)
                    else:
                        await send(ws, message)
                with trio.move_on_after(1):
                    try:
                        while True:
                            await ws.get_message()
                    except ConnectionClosed:
                        pass  # refused: fine
        assert not server.errors
        for conn in server.connections:
            assert conn.close_code in (None, 1000, 1001, 1007), conn.close_code


async def test_no_resumable_handle_while_interrupting_input_waits_for_its_answer() -> None:
    """A handle is a snapshot at a resumable point: after a barge-in, the interrupted turn's
    end is not one (the interrupting input is already in the history, unanswered)."""
    from .test_fake_server_helpers import recv

    # strict=False: transparent is Vertex only, the strict (Gemini API) fake refuses it
    async with open_fake_server(chunk_interval=0.2, chunk_count=5, strict=False) as server:
        with trio.fail_after(10):
            async with connect(server) as ws:
                await send(ws, {"setup": {
                    "model": MODEL, "generationConfig": {"responseModalities": ["TEXT"]},
                    "sessionResumption": {"transparent": True}}})
                await recv(ws)
                await send(ws, {"realtimeInput": {"text": "first"}})
                while "modelTurn" not in (await recv(ws)).get("serverContent", {}):
                    pass
                await send(ws, {"realtimeInput": {"text": "second"}})  # barge-in
                seen: list[str] = []
                completes = 0
                while completes < 2:
                    msg = await recv(ws)
                    content = msg.get("serverContent", {})
                    for part in content.get("modelTurn", {}).get("parts", []):
                        seen.append("text:" + part.get("text", ""))
                    update = msg.get("sessionResumptionUpdate", {})
                    if update.get("resumable"):
                        seen.append("handle")
                    completes += bool(content.get("turnComplete"))
                while "handle" not in seen:  # the handle after the answered turn
                    msg = await recv(ws)
                    if msg.get("sessionResumptionUpdate", {}).get("resumable"):
                        seen.append("handle")
    first_handle = seen.index("handle")
    answered = "".join(s[5:] for s in seen[:first_handle] if s.startswith("text:"))
    assert "second" in answered, seen
