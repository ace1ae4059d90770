"""Send side: one session uploads realtime audio as fast as it can (20 ms chunks of 16 kHz PCM,
640 bytes each), then one text turn; the server reads in order, so its reply means every chunk
was read. Client CPU per chunk and chunks per second, per contender.

``python benchmarks/bench_upload.py [--quick] [--chunks N] [--rounds R] [--contenders A,B]``

Every run is a fresh client process; CPU (``time.process_time``, all threads) is read around
the upload and the closing turn (the set-up is not counted).

Results: benchmarks/results/upload.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from typing import Any

from _common import (
    MODEL,
    PATH,
    FastServer,
    genai_client,
    markdown,
    median,
    self_cpu,
    write_results,
)

PCM = bytes(640)  # 20 ms of 16 kHz 16-bit mono


class _Endpoint(FastServer):
    def __init__(self, port: int, key: str, ca: str) -> None:  # no process of our own
        self.port, self.key, self.ca, self.tls, self.pids = port, key, ca, True, []
        self.url = f"wss://127.0.0.1:{port}"


def _measure(c0: float, t0: float, chunks: int) -> dict[str, float]:
    wall = time.perf_counter() - t0
    return {"cpu_us_per_chunk": (self_cpu() - c0) / chunks * 1e6, "chunks_per_s": chunks / wall}


async def worker_gemini_ws(server: FastServer, chunks: int,
                           transport: str | None = None) -> dict[str, float]:
    from gemini_ws import Client, LiveConfig

    async with Client(api_key=server.key, base_url=server.url, ssl_context=server.ssl_context(),
                      transport=transport) as client:
        async with client.stream(MODEL, config=LiveConfig(response_modalities=["TEXT"])) as s:
            c0, t0 = self_cpu(), time.perf_counter()
            for _ in range(chunks):
                await s.send_audio(PCM)
            await s.send_text("done")
            await s.receive_turn()
            return _measure(c0, t0, chunks)


async def worker_raw(server: FastServer, chunks: int) -> dict[str, float]:
    import trio_websocket
    from _floors import SETUP_TEXT, audio_message, user_turn

    async with trio_websocket.open_websocket_url(
        server.url + PATH, ssl_context=server.ssl_context(),
        extra_headers=[(b"x-goog-api-key", server.key.encode())],
    ) as ws:
        await ws.send_message(SETUP_TEXT.decode())
        await ws.get_message()
        c0, t0 = self_cpu(), time.perf_counter()
        for _ in range(chunks):
            await ws.send_message(audio_message(PCM).decode())
        await ws.send_message(user_turn("done").decode())
        while "turnComplete" not in str(await ws.get_message()):
            pass
        return _measure(c0, t0, chunks)


async def worker_bare_trio(server: FastServer, chunks: int) -> dict[str, float]:
    from _floors import SETUP_TEXT, BareTrio, audio_message, user_turn

    ws = await BareTrio.connect(server, SETUP_TEXT)
    c0, t0 = self_cpu(), time.perf_counter()
    for _ in range(chunks):
        await ws.send(audio_message(PCM))
    await ws.send(user_turn("done"))
    while b"turnComplete" not in await ws.receive():
        pass
    out = _measure(c0, t0, chunks)
    await ws.aclose()
    return out


async def worker_genai(server: FastServer, chunks: int) -> dict[str, float]:
    from google.genai import types

    client = genai_client(server)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT])
    blob = types.Blob(data=PCM, mime_type="audio/pcm;rate=16000")
    async with client.aio.live.connect(model=MODEL, config=config) as s:
        c0, t0 = self_cpu(), time.perf_counter()
        for _ in range(chunks):
            await s.send_realtime_input(audio=blob)
        await s.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="done")]),
            turn_complete=True)
        async for _ in s.receive():
            pass
        return _measure(c0, t0, chunks)


async def worker_websockets(server: FastServer, chunks: int) -> dict[str, float]:
    from _floors import SETUP_TEXT, audio_message, user_turn, websockets_asyncio

    ws = await websockets_asyncio(server, SETUP_TEXT)
    c0, t0 = self_cpu(), time.perf_counter()
    for _ in range(chunks):
        await ws.send(audio_message(PCM).decode())
    await ws.send(user_turn("done").decode())
    while "turnComplete" not in str(await ws.recv()):
        pass
    out = _measure(c0, t0, chunks)
    await ws.close()
    return out


TRIO: dict[str, Any] = {
    "gemini_ws": worker_gemini_ws,
    "gemini_ws (trio-websocket)": lambda s, c: worker_gemini_ws(s, c, "trio-websocket"),
    "raw trio-websocket": worker_raw,
    "bare trio (floor)": worker_bare_trio,
}
ASYNCIO: dict[str, Any] = {
    "google-genai": worker_genai,
    "bare websockets-asyncio (floor)": worker_websockets,
}
NAMES = list(TRIO) + list(ASYNCIO)


def run(server: FastServer, name: str, chunks: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--chunks", str(chunks),
         "--port", str(server.port), "--key", server.key, "--ca", str(server.ca)],
        capture_output=True, text=True, timeout=600,
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return {"cpu_us_per_chunk": float("nan"), "chunks_per_s": float("nan")}
    out: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {name:>31} {out['cpu_us_per_chunk']:6.1f} us CPU/chunk "
          f"{out['chunks_per_s']:9,.0f} chunks/s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--chunks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--contenders", default=",".join(NAMES))
    parser.add_argument("--worker", choices=NAMES)
    parser.add_argument("--port", type=int)
    parser.add_argument("--key")
    parser.add_argument("--ca")
    args = parser.parse_args()
    if args.worker:
        import trio

        server = _Endpoint(args.port, args.key, args.ca)
        if args.worker in TRIO:
            out = trio.run(TRIO[args.worker], server, args.chunks)
        else:
            out = asyncio.run(ASYNCIO[args.worker](server, args.chunks))
        print(json.dumps(out))
        return
    if args.quick:
        args.chunks, args.rounds = 1000, 1
    names = [name.strip() for name in args.contenders.split(",") if name.strip()]
    if set(names) - set(NAMES):
        parser.error(f"unknown contenders; choose from {NAMES}")
    server = FastServer(tls=True)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    try:
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                runs[name].append(run(server, name, args.chunks))
    finally:
        server.close()
    rows = [{"contender": name,
             "cpu_us_per_chunk": median([x["cpu_us_per_chunk"] for x in runs[name]]),
             "chunks_per_s": median([x["chunks_per_s"] for x in runs[name]]),
             "runs": runs[name]} for name in names]
    by = {row["contender"]: row for row in rows}
    refs = [ref for ref in ("google-genai", "bare trio (floor)",
                            "bare websockets-asyncio (floor)") if ref in by]
    table = markdown(
        ["contender", "client CPU per chunk (us)", *[f"vs {ref}" for ref in refs],
         "chunks/s", "audio seconds sent per second"],
        [[row["contender"], f"{row['cpu_us_per_chunk']:.1f}",
          *[f"{by[ref]['cpu_us_per_chunk'] / row['cpu_us_per_chunk']:.2f}x" for ref in refs],
          f"{row['chunks_per_s']:,.0f}", f"{row['chunks_per_s'] * 0.02:,.0f}"]
         for row in rows],
    )
    header = (f"Upload: {args.chunks} audio chunks (640 B, 20 ms of 16 kHz PCM) as fast as the "
              f"socket takes them, then a text turn whose reply proves all were read; TLS; "
              f"_fast_server.py; client in its own process per run; {args.rounds} rounds "
              f"(contenders rotated), medians. 'vs X': X's CPU per chunk / this one's.")
    write_results("upload", args.quick, header, [table], {"results": rows})


if __name__ == "__main__":
    main()
