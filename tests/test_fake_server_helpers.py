"""Helpers for the fake-server tests: a plain trio-websocket client speaking raw JSON.

(No tests here; the other ``test_fake_server*`` modules import it.)
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import (
    CloseReason,
    ConnectionClosed,
    WebSocketConnection,
    open_websocket_url,
)

from gemini_ws.testing import FakeLiveServer

MODEL = "models/gemini-2.0-flash-live-001"
TIMEOUT = 5.0


@asynccontextmanager
async def connect(
    server: FakeLiveServer,
    *,
    url: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    api_key: str | None = "",
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = 2**20,
) -> AsyncIterator[WebSocketConnection]:
    """Open a raw WebSocket to the fake; by default with ``x-goog-api-key: server.api_key``."""
    hdrs = list(headers or [])
    if api_key == "":
        api_key = server.api_key
    if api_key is not None:
        hdrs.append(("x-goog-api-key", api_key))
    if ssl_context is None and server.tls:
        ssl_context = server.client_ssl_context()
    async with open_websocket_url(
        url or server.endpoint(),
        extra_headers=hdrs,
        ssl_context=ssl_context,
        max_message_size=max_message_size,
        disconnect_timeout=2,
    ) as ws:
        yield ws


async def send(ws: WebSocketConnection, message: dict[str, Any]) -> None:
    await ws.send_message(json.dumps(message))


async def recv(ws: WebSocketConnection) -> dict[str, Any]:
    raw = await ws.get_message()
    assert isinstance(raw, bytes), "the server sends binary frames"
    message = json.loads(raw.decode("utf-8"))
    assert isinstance(message, dict)
    return message


async def setup(ws: WebSocketConnection, **fields: Any) -> None:
    body = {"model": MODEL, **fields}
    await send(ws, {"setup": body})
    assert await recv(ws) == {"setupComplete": {}}


def text_setup(**fields: Any) -> dict[str, Any]:
    config = dict(fields.pop("generationConfig", {}))
    config["responseModalities"] = ["TEXT"]
    return {"generationConfig": config, **fields}


async def say(ws: WebSocketConnection, text: str) -> None:
    await send(
        ws,
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": text}]}],
                "turnComplete": True,
            }
        },
    )


def is_turn_complete(message: dict[str, Any]) -> bool:
    return bool(message.get("serverContent", {}).get("turnComplete"))


async def read_turn(ws: WebSocketConnection) -> list[dict[str, Any]]:
    """Messages up to and including the next ``turnComplete``."""
    messages = []
    while True:
        message = await recv(ws)
        messages.append(message)
        if is_turn_complete(message):
            return messages


def turn_text(messages: list[dict[str, Any]]) -> str:
    return "".join(
        part.get("text", "")
        for m in messages
        for part in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    )


async def expect_close(ws: WebSocketConnection) -> CloseReason:
    """Read until the server closes; returns the close reason (1006 for an abort)."""
    while True:
        try:
            await ws.get_message()
        except ConnectionClosed as exc:
            assert exc.reason is not None
            return exc.reason


async def setup_close(
    server: FakeLiveServer, setup_message: Any, **connect_args: Any
) -> CloseReason:
    """Connect, send ``setup_message`` as the first message, return how the server closed."""
    with trio.fail_after(TIMEOUT):
        async with connect(server, **connect_args) as ws:
            if isinstance(setup_message, str | bytes):
                await ws.send_message(setup_message)
            else:
                await send(ws, setup_message)
            return await expect_close(ws)
