"""A light Live-protocol stand-in for benchmarks: pre-encoded frames, stamped, in its own process.

``python benchmarks/_fast_server.py [--tls] [--procs N] [--delay-ms MS]`` prints ``port ...``,
``key ...``, (``ca PATH`` with --tls) then ``ready``, and serves until its stdin closes.

Why not :mod:`gemini_ws.testing`? The faithful fake server (trio-websocket, ``json.dumps(indent=2)``
per message, history and bookkeeping per message) tops out at ~13-15k text chunks/s on one core,
which is what ``bench_throughput`` used to measure for both trio clients. This stand-in only does
what the benchmarks need, as cheaply as Python allows (asyncio, a hand-rolled RFC 6455 framer,
frames built once from a template with only the stamp patched in), so that the *clients* are what
is measured. ``--procs N`` forks N accepting processes on one listening socket (the kernel spreads
connections) for the many-session runs.

Frames are what the real service sends: pretty-printed JSON in binary WebSocket frames. It
accepts any path and any key, answers the first message (``setup``) with ``setupComplete``, and
reads user text from ``clientContent``/``client_content`` turns or ``realtimeInput.text``:

- ``chunks N``: N text chunks as fast as the socket takes them, then generationComplete and
  turnComplete. Each chunk's text starts with the server's ``time.monotonic_ns()`` taken just
  before the frame is handed to the transport (CLOCK_MONOTONIC is shared on one machine).
- ``paced N US``: the same, one chunk every US microseconds (unloaded delivery latency).
- ``audio SECONDS [MS]``: 24 kHz 16-bit PCM in MS ms chunks (default 40 ms: 1920 bytes) at
  real-time pace (deadlines on the clock, no drift), for SECONDS, then turnComplete. The first
  8 bytes of each chunk's PCM are the send stamp (little-endian u64), so base64 chars 0-11
  carry it.
- ``bulk BYTES``: BYTES of such audio chunks as fast as the socket takes them, then turnComplete.
- anything else: one text chunk ``ok`` and turnComplete.

Client audio (``realtimeInput``) is read, unmasked and dropped. Pings get pongs; a close frame
gets a close frame back.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import os
import socket
import ssl
import struct
import sys
import tempfile
import time

KEY = "bench-key"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
AUDIO_CHUNK = 1920  # 40 ms of 24 kHz 16-bit mono
AUDIO_PERIOD = 0.040
HIGH_WATER = 256 * 1024


def _pretty(obj: object) -> bytes:
    return json.dumps(obj, indent=2).encode()


def _header(length: int, opcode: int = 2) -> bytes:
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 127, length)


def frame(payload: bytes, opcode: int = 2) -> bytes:
    return _header(len(payload), opcode) + payload


# Text chunk template: the stamp is a 19-digit number (monotonic_ns zero-padded), so every frame
# has the same length and one pre-built header.
_TEXT_PRE, _TEXT_POST = _pretty(
    {"serverContent": {"modelTurn": {"parts": [{"text": "@@@"}]}}}
).split(b"@@@")
_TEXT_LEN = len(_TEXT_PRE) + 19 + 8 + len(_TEXT_POST)
_TEXT_HEAD = _header(_TEXT_LEN)


def _audio_template(size: int) -> tuple[bytes, bytes, bytes]:
    """Header, JSON before the stamp, JSON after it, for audio chunks of *size* PCM bytes."""
    tone = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 24000)))
        for i in range(size // 2)
    )
    tail = base64.b64encode(tone[9:]).decode()  # size - 9 bytes: a multiple of 3
    pre, post = _pretty(
        {"serverContent": {"modelTurn": {"parts": [{"inlineData": {
            "mimeType": "audio/pcm;rate=24000", "data": "@@@" + tail}}]}}}
    ).split(b"@@@")
    return _header(len(pre) + 12 + len(post)), pre, post


_AUDIO_TEMPLATES: dict[int, tuple[bytes, bytes, bytes]] = {}


_END = frame(_pretty({"serverContent": {"generationComplete": True}})) + frame(
    _pretty({"serverContent": {"turnComplete": True}, "usageMetadata": {
        "promptTokenCount": 10, "responseTokenCount": 10, "totalTokenCount": 20}})
)
_SETUP_COMPLETE = frame(_pretty({"setupComplete": {}}))
_OK = frame(_pretty({"serverContent": {"modelTurn": {"parts": [{"text": "ok"}]}}}))


def text_frame(i: int) -> bytes:
    return b"%s%s%019d %06d %s" % (_TEXT_HEAD, _TEXT_PRE, time.monotonic_ns(), i, _TEXT_POST)


def audio_frame(size: int = AUDIO_CHUNK) -> bytes:
    template = _AUDIO_TEMPLATES.get(size)
    if template is None:
        template = _AUDIO_TEMPLATES[size] = _audio_template(size)
    head, pre, post = template
    stamp = base64.b64encode(struct.pack("<Q", time.monotonic_ns()) + b"\0")
    return b"".join((head, pre, stamp, post))


def user_text(message: dict) -> str | None:
    for key in ("clientContent", "client_content"):
        content = message.get(key)
        if isinstance(content, dict):
            texts = [p.get("text", "") for t in content.get("turns") or ()
                     for p in t.get("parts") or () if isinstance(p, dict)]
            return " ".join(t for t in texts if t)
    for key in ("realtimeInput", "realtime_input"):
        content = message.get(key)
        if isinstance(content, dict) and isinstance(content.get("text"), str):
            return content["text"]
    return None


def unmask(mask: bytes, data: bytes) -> bytes:
    n = len(data)
    if not n:
        return data
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 delay: float) -> None:
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        self.delay = delay
        self.turn: asyncio.Task[None] | None = None

    async def drain(self) -> None:
        if self.transport.get_write_buffer_size() > HIGH_WATER:
            await self.writer.drain()

    async def handshake(self) -> bool:
        request = await self.reader.readuntil(b"\r\n\r\n")
        key = b""
        for line in request.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        if not key:
            self.writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            return False
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        return True

    async def read_message(self) -> tuple[int, bytes] | None:
        parts: list[bytes] = []
        first_opcode = 0
        while True:
            head = await self.reader.readexactly(2)
            fin, opcode = head[0] & 0x80, head[0] & 0x0F
            length = head[1] & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            mask = await self.reader.readexactly(4) if head[1] & 0x80 else b""
            data = await self.reader.readexactly(length)
            if mask:
                data = unmask(mask, data)
            if opcode == 9:
                self.writer.write(frame(data, 10))
                continue
            if opcode == 10:
                continue
            if opcode == 8:
                return (8, data)
            if opcode:
                first_opcode = opcode
            parts.append(data)
            if fin:
                return (first_opcode, b"".join(parts))

    async def run(self) -> None:
        if not await self.handshake():
            return
        setup = True
        while True:
            message = await self.read_message()
            if message is None or message[0] == 8:
                payload = message[1][:2] if message is not None else b""
                self.writer.write(frame(payload or struct.pack("!H", 1000), 8))
                return
            data = message[1]
            if setup:
                setup = False
                await self.send(_SETUP_COMPLETE)
                continue
            if len(data) > 4096 or b'"text"' not in data:
                continue  # audio, video, tool responses: dropped
            text = user_text(json.loads(data))
            if text is None:
                continue
            if self.turn is not None:
                self.turn.cancel()
            self.turn = asyncio.ensure_future(self.respond(text))

    async def send(self, data: bytes) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.writer.write(data)
        await self.drain()

    async def respond(self, text: str) -> None:
        words = text.split()
        command = words[0] if words else ""
        write = self.writer.write
        if command == "chunks":
            for i in range(int(words[1])):
                write(text_frame(i))
                if self.transport.get_write_buffer_size() > HIGH_WATER:
                    await self.writer.drain()
        elif command == "paced":
            interval = int(words[2]) / 1e6
            start = time.monotonic()
            for i in range(int(words[1])):
                wait = start + i * interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                write(text_frame(i))
                await self.drain()
        elif command == "audio":
            period = float(words[2]) / 1000 if len(words) > 2 else AUDIO_PERIOD
            size = round(period * 24000) * 2 // 6 * 6  # a multiple of 3 after the stamp
            count = round(float(words[1]) / period)
            start = time.monotonic()
            for i in range(count):
                wait = start + i * period - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                write(audio_frame(size))
                await self.drain()
        elif command == "bulk":
            for _ in range(int(words[1]) // AUDIO_CHUNK):
                write(audio_frame())
                if self.transport.get_write_buffer_size() > HIGH_WATER:
                    await self.writer.drain()
        else:
            await self.send(_OK)
        write(_END)
        await self.drain()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 delay: float) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:  # asyncio only sets it itself when the socket's proto is IPPROTO_TCP
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = Conn(reader, writer, delay)
    try:
        await conn.run()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        if conn.turn is not None:
            conn.turn.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve(sock: socket.socket, ctx: ssl.SSLContext | None, delay: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, delay), sock=sock, ssl=ctx, backlog=4096, limit=1 << 20)
    async with server:
        await server.serve_forever()


def child(sock: socket.socket, ctx: ssl.SSLContext | None, delay: float) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sock, ctx, delay))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="delay before setupComplete (unused by the connect bench)")
    args = parser.parse_args()
    ctx = None
    ca_path = None
    tmp = tempfile.mkdtemp()
    if args.tls:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        ca_path = os.path.join(tmp, "ca.pem")
        ca.cert_pem.write_to_path(ca_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    sock.setblocking(False)
    pids = []
    for _ in range(args.procs):
        pid = os.fork()
        if pid == 0:
            sys.stdin.close()
            try:
                child(sock, ctx, args.delay_ms / 1000)
            finally:
                os._exit(0)
        pids.append(pid)
    print(f"port {sock.getsockname()[1]}")
    print(f"key {KEY}")
    if ca_path:
        print(f"ca {ca_path}")
    print(f"pids {' '.join(map(str, pids))}")
    print("ready", flush=True)
    sys.stdin.read()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
    for pid in pids:
        os.waitpid(pid, 0)
    if ca_path:
        os.unlink(ca_path)
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
