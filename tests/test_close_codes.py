"""Against raw servers that write their frames byte by byte (no WebSocket library on the server
side to tidy them up): the server's close is reported as the server sent it (1014, a reason that
is not valid UTF-8), and a server that reads slowly does not make the heartbeat fail a healthy
connection."""

from __future__ import annotations

import base64
import functools
import hashlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from gemini_ws import (
    Client,
    GeminiWSError,
    LiveConfig,
    ProtocolError,
    ReconnectPolicy,
    ServerClosedError,
    SessionResumed,
)

from .conftest import TEST_KEY, known_gap

WSPROTO_1014 = "wsproto refuses close code 1014 as an unknown reserved code"

MODEL = "gemini-3.1-flash-live-preview"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    return bytes([0x80 | opcode, len(payload)]) + payload


async def read_frame(stream: trio.SocketStream, buffer: bytearray) -> tuple[int, bytes]:
    """One masked client frame (small frames only, as these tests send)."""
    while True:
        if len(buffer) >= 2:
            length = buffer[1] & 0x7F
            header = 2
            if length == 126:
                if len(buffer) < 4:
                    length = -1
                else:
                    length = struct.unpack("!H", buffer[2:4])[0]
                    header = 4
            if length >= 0 and len(buffer) >= header + 4 + length:
                mask = buffer[header : header + 4]
                data = bytes(
                    b ^ mask[i % 4]
                    for i, b in enumerate(buffer[header + 4 : header + 4 + length])
                )
                opcode = buffer[0] & 0x0F
                del buffer[: header + 4 + length]
                return opcode, data
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError
        buffer += chunk


async def accept_upgrade(stream: trio.SocketStream) -> bytearray:
    """Read the HTTP upgrade request and answer 101; returns what was read past it."""
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    await stream.send_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    return bytearray(rest)


@asynccontextmanager
async def raw_server(close_payload: bytes, *, after_handle: bool) -> AsyncIterator[list[int]]:
    """Upgrade, answer setup, optionally give a handle, then send a close frame with
    *close_payload* (code and reason bytes, exactly). Yields the list of accepted connections'
    numbers (a second one is a resume)."""
    accepted: list[int] = []

    async def handle(stream: trio.SocketStream) -> None:
        number = len(accepted)
        accepted.append(number)
        try:
            buffer = await accept_upgrade(stream)
            await read_frame(stream, buffer)  # setup
            await stream.send_all(frame(0x1, b'{"setupComplete":{}}'))
            if number == 0:
                if after_handle:
                    update = b'{"sessionResumptionUpdate":{"newHandle":"h1","resumable":true}}'
                    await stream.send_all(frame(0x1, update))
                await trio.sleep(0.05)
                await stream.send_all(frame(0x8, close_payload))
                while True:
                    opcode, _ = await read_frame(stream, buffer)
                    if opcode == 0x8:
                        break
            else:
                await trio.sleep_forever()
        except (EOFError, trio.BrokenResourceError):
            pass
        finally:
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        port = listeners[0].socket.getsockname()[1]
        accepted.append(-port)  # first item: the port, negated (popped by the caller)
        yield accepted
        nursery.cancel_scope.cancel()


async def error_after_close(payload: bytes) -> BaseException:
    """The error a stream without reconnect ends with when the server closes with *payload*."""
    async with raw_server(payload, after_handle=False) as accepted:
        port = -accepted.pop(0)
        async with Client(api_key=TEST_KEY, base_url=f"ws://127.0.0.1:{port}",
                          heartbeat_interval=None) as client:
            with trio.fail_after(5), pytest.raises(GeminiWSError) as info:
                async with client.stream(MODEL, config=LiveConfig()) as s:
                    async for _ in s:
                        pass
    return info.value


async def test_close_1014_is_the_servers_code_and_reason(request: pytest.FixtureRequest) -> None:
    known_gap(request, "trio-websocket", WSPROTO_1014)
    error = await error_after_close(struct.pack("!H", 1014) + b"bad gateway upstream")
    assert isinstance(error, ServerClosedError)
    assert (error.code, error.reason) == (1014, "bad gateway upstream")


async def test_close_1014_is_resumed(request: pytest.FixtureRequest) -> None:
    known_gap(request, "trio-websocket", WSPROTO_1014)
    payload = struct.pack("!H", 1014) + b"bad gateway"
    async with raw_server(payload, after_handle=True) as accepted:
        port = -accepted.pop(0)
        async with Client(api_key=TEST_KEY, base_url=f"ws://127.0.0.1:{port}",
                          heartbeat_interval=None) as client:
            with trio.fail_after(5):
                policy = ReconnectPolicy(initial_backoff=0.01)
                async with client.stream(MODEL, config=LiveConfig(), reconnect=policy) as s:
                    async for message in s:
                        if isinstance(message, SessionResumed):
                            break
                    await s.cancel()
    assert isinstance(message, SessionResumed)
    assert message.reason == "connection_lost" and message.handle == "h1"
    assert isinstance(message.error, ServerClosedError) and message.error.code == 1014
    assert len(accepted) == 2


async def test_a_close_reason_that_is_not_utf8_is_not_blamed_on_the_argument(
    request: pytest.FixtureRequest,
) -> None:
    known_gap(
        request, "trio-websocket", "trio-websocket passes wsproto's own 1007 on as the server's"
    )
    error = await error_after_close(struct.pack("!H", 1011) + b"\xff\xfe broken")
    # not InvalidArgumentError(1007): the server did not say its argument was invalid, it sent
    # a close frame the protocol forbids, and the message says so
    assert isinstance(error, ProtocolError) and not isinstance(error, ServerClosedError)
    assert "1007" in str(error) and "protocol" in str(error)


# --- the heartbeat when the uplink is the bottleneck -----------------------------------------


async def test_heartbeat_forgives_a_slow_uplink() -> None:
    """A server that reads at ~160 KB/s while the app uploads audio as fast as it can: the ping
    waits behind the audio (megabytes of it), and its pong comes late for that reason only.
    That is not a dead connection, and the stream must not be failed with HeartbeatTimeoutError.

    (The kernel's half of the heartbeat, ``TCP_USER_TIMEOUT`` = ``heartbeat_timeout``, needs
    the peer's window to reopen within the timeout: on loopback, whose segments are 64 KB, a
    reader must free 64 KB per timeout, here every 0.4 s against 1.5 s. A real slow uplink
    keeps its acknowledgements coming whatever the reader does.)"""
    pongs: list[bytes] = []

    async def handle(stream: trio.SocketStream) -> None:
        slow = SlowStream(stream)
        try:
            buffer = await accept_upgrade(stream)
            await read_frame(stream, buffer)  # setup, at full speed
            await stream.send_all(frame(0x1, b'{"setupComplete":{}}'))
            while True:
                opcode, data = await read_frame(slow, buffer)  # type: ignore[arg-type]
                if opcode == 0x9:
                    pongs.append(data)
                    await stream.send_all(frame(0xA, data))
                elif opcode == 0x8:
                    await stream.send_all(frame(0x8, data[:2]))
                    return
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        port = listeners[0].socket.getsockname()[1]
        async with Client(api_key=TEST_KEY, base_url=f"ws://127.0.0.1:{port}",
                          heartbeat_interval=0.2, heartbeat_timeout=1.5,
                          close_timeout=0.5) as client:
            with trio.fail_after(20):
                async with client.stream(MODEL, config=LiveConfig()) as s:
                    with trio.move_on_after(4):
                        while True:
                            await s.send_audio(b"\x00\x01" * 8192)
                    stats = s.statistics().connection
                    assert s.state == "open", s.state
                    await s.cancel()
        nursery.cancel_scope.cancel()
    # the uplink really was the bottleneck: heartbeats were held back while a write waited
    assert stats.heartbeats_suspended >= 1 and stats.bytes_sent > 200_000, stats


class SlowStream:
    """Reads at most 8 KiB every 50 ms (about 160 KB/s): a server whose reading is slow."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream

    async def receive_some(self, max_bytes: int) -> bytes:
        await trio.sleep(0.05)
        return await self.stream.receive_some(8192)
