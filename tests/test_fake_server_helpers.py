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
    wrap_client_stream,
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
    close_timeout: float = 2.0,
) -> AsyncIterator[WebSocketConnection]:
    """Open a raw WebSocket to the fake; by default with ``x-goog-api-key: server.api_key``.

    We own the TCP stream and close it ourselves: trio-websocket's client leaves its socket
    open when the server closes first.
    """
    hdrs = list(headers or [])
    if api_key == "":
        api_key = server.api_key
    if api_key is not None:
        hdrs.append(("x-goog-api-key", api_key))
    target = url or server.endpoint()
    resource = "/" + target.split("://", 1)[1].split("/", 1)[1]
    stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    if server.tls:
        tls = trio.SSLStream(
            stream, ssl_context or server.client_ssl_context(), server_hostname="127.0.0.1"
        )
        try:
            await tls.do_handshake()  # else trio-websocket reports a TLS failure as a timeout
        except BaseException:
            await tls.aclose()
            raise
        stream = tls
    try:
        async with trio.open_nursery() as nursery:
            try:
                ws = await wrap_client_stream(
                    nursery,
                    stream,
                    f"127.0.0.1:{server.port}",
                    resource,
                    extra_headers=[(k.encode(), v.encode()) for k, v in hdrs],
                    max_message_size=max_message_size,
                )
                try:
                    yield ws
                finally:
                    with trio.move_on_after(close_timeout):
                        await ws.aclose()
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            exc = group.exceptions[0]
            context = exc.__context__
            try:
                raise exc
            finally:
                exc.__context__ = context
                del exc, context
        raise
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


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


async def raw_upgrade(
    server: FakeLiveServer,
    path: str,
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send a WebSocket upgrade by hand; return the HTTP status, headers and body.

    (trio-websocket's client leaks its socket when the upgrade is rejected, so rejection tests
    use this instead.)
    """
    hdrs = [
        ("Host", f"127.0.0.1:{server.port}"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
        *(headers or []),
    ]
    request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs) + "\r\n"
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        await stream.send_all(request.encode())
        data = b""
        while True:
            chunk = await stream.receive_some()
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and b"101 Switching Protocols" in head:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return status, parsed, body


async def read_cli_fields(process: trio.Process) -> tuple[list[str], dict[str, str]]:
    """What ``python -m gemini_ws.testing`` printed up to its ``ready`` line: the lines, and
    the ``name: value`` ones as a dict (the last one of a repeated name)."""
    assert process.stdout is not None
    output = b""
    while b"ready\n" not in output:
        chunk = await process.stdout.receive_some()
        assert chunk, output
        output += chunk
    lines = output.decode().splitlines()
    return lines, dict(line.split(": ", 1) for line in lines if ": " in line)
