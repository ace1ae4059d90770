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
import json
import time
from typing import Any

from _common import (
    MODEL,
    PATH,
    FastServer,
    WorkerFailed,
    add_worker_arguments,
    genai_client,
    markdown,
    median,
    pick_contenders,
    rotated,
    run_contender,
    run_worker,
    self_cpu,
    worker_server,
    write_results,
)

PCM = bytes(640)  # 20 ms of 16 kHz 16-bit mono


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
    try:
        out = run_worker(__file__, name, server, "--chunks", str(chunks))
    except WorkerFailed:
        return {"cpu_us_per_chunk": float("nan"), "chunks_per_s": float("nan")}
    print(f"  {name:>31} {out['cpu_us_per_chunk']:6.1f} us CPU/chunk "
          f"{out['chunks_per_s']:9,.0f} chunks/s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--chunks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--contenders", default=",".join(NAMES))
    add_worker_arguments(parser, NAMES)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_contender(TRIO, ASYNCIO, args.worker, worker_server(args),
                                       args.chunks)))
        return
    if args.quick:
        args.chunks, args.rounds = 1000, 1
    names = pick_contenders(parser, args.contenders, NAMES)
    server = FastServer(tls=True)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    try:
        for r in range(args.rounds):
            for name in rotated(names, r):
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
