"""The floors: the least a Python client can do for the same work, to say how far from the
machine's limit the contenders are.

- **bare trio**: trio's own ``SSLStream`` over ``trio.open_tcp_stream``, the WebSocket framing
  written inline (a client frame with an all-zero mask key, so masking costs nothing: legal
  RFC 6455, and a lower bound no real client goes under), ``orjson`` and ``pybase64``. No
  session, no queues, no error handling: what trio itself costs.
- **bare websockets-asyncio**: websockets' own asyncio client (``websockets.asyncio.client``),
  ``orjson`` and ``pybase64``: what asyncio and a well-kept WebSocket library cost.

Neither is a usable client (no setup checks, no close handshake worth the name, no resumption);
both speak to benchmarks/_fast_server.py only.
"""

from __future__ import annotations

import base64
import os
import struct
from typing import Any

import orjson
import trio
from _common import MODEL, PATH, FastServer

SETUP_AUDIO = orjson.dumps(
    {"setup": {"model": f"models/{MODEL}",
               "generationConfig": {"responseModalities": ["AUDIO"]}}})
SETUP_TEXT = orjson.dumps(
    {"setup": {"model": f"models/{MODEL}",
               "generationConfig": {"responseModalities": ["TEXT"]}}})


def user_turn(text: str) -> bytes:
    return orjson.dumps({"clientContent": {
        "turns": [{"role": "user", "parts": [{"text": text}]}], "turnComplete": True}})


def audio_message(pcm: bytes) -> bytes:
    return orjson.dumps({"realtimeInput": {"audio": {
        "data": base64.b64encode(pcm).decode(), "mimeType": "audio/pcm;rate=16000"}}})


class BareTrio:
    """One WebSocket over trio's SSLStream, framed by hand."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = bytearray()

    @classmethod
    async def connect(cls, server: FastServer, setup: bytes) -> BareTrio:
        tcp = await trio.open_tcp_stream("127.0.0.1", server.port)
        ctx = server.ssl_context()
        assert ctx is not None
        stream = trio.SSLStream(tcp, ctx, server_hostname="127.0.0.1")
        key = base64.b64encode(os.urandom(16))
        await stream.send_all(
            b"GET " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nx-goog-api-key: " + server.key.encode()
            + b"\r\n\r\n")
        self = cls(stream)
        while b"\r\n\r\n" not in self.buf:
            data = await stream.receive_some(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            self.buf += data
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))
        self.buf = bytearray(rest)
        await self.send(setup)
        assert b"setupComplete" in await self.receive()
        return self

    async def send(self, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            head = bytes((0x81, 0x80 | n))
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0xFE, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0xFF, n)
        await self.stream.send_all(head + b"\0\0\0\0" + payload)

    async def receive(self) -> bytes:
        """The payload of the next unfragmented data frame (the server sends no others)."""
        buf = self.buf
        while True:
            if len(buf) >= 2:
                n = buf[1] & 0x7F
                start = 2
                if n == 126 and len(buf) >= 4:
                    (n,) = struct.unpack_from("!H", buf, 2)
                    start = 4
                elif n == 127 and len(buf) >= 10:
                    (n,) = struct.unpack_from("!Q", buf, 2)
                    start = 10
                if n < 126 or start > 2:
                    end = start + n
                    if len(buf) >= end:
                        payload = bytes(buf[start:end])
                        del buf[:end]
                        return payload
            data = await self.stream.receive_some(65536)
            if not data:
                raise ConnectionError("closed")
            buf += data

    async def aclose(self) -> None:
        with trio.move_on_after(1):
            await self.stream.send_all(b"\x88\x82\0\0\0\0\x03\xe8")
            await self.stream.aclose()


async def websockets_asyncio(server: FastServer, setup: bytes) -> Any:
    """A websockets asyncio connection with the setup done (close it with ``await ws.close()``)."""
    from websockets.asyncio.client import connect

    ws = await connect(
        server.url + PATH, ssl=server.ssl_context(), compression=None, max_size=None,
        additional_headers={"x-goog-api-key": server.key},
    )
    await ws.send(setup.decode())
    assert "setupComplete" in str(await ws.recv())
    return ws
