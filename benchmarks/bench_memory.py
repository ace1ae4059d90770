"""Memory: RSS while one stream carries 1 GiB of audio (must stay flat), and RSS per idle open
stream with 1,000 streams open; gemini_ws and google-genai.

``python benchmarks/bench_memory.py [--quick] [--gib G] [--idle N] [--reps R]``

Server: benchmarks/_fast_server.py (TLS, 2 processes). Every measurement is a fresh client
process (``--worker``); RSS is read from /proc/self/statm.

1. Stream: the client asks for ``bulk BYTES`` (24 kHz PCM in 1920-byte, 40 ms chunks, as fast
   as the client takes them) and reads RSS every 2,000 chunks. Baseline = RSS after the first
   2 % of the bytes (imports, TLS, buffers warmed); growth = peak RSS - baseline.
2. Idle: RSS after one stream was opened and closed (warm imports), then after N streams are
   open and idle for 1 s; (after - before) / N, median over ``--reps`` alternated runs.

Results: benchmarks/results/memory.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from typing import Any

from _common import (
    MODEL,
    FastServer,
    WorkerFailed,
    add_worker_arguments,
    genai_client,
    markdown,
    median,
    rss_bytes,
    run_worker,
    worker_server,
    write_results,
)

MIB = 1024 * 1024
CHUNK = 1920


def _sampler(total: int) -> tuple[list[tuple[int, int]], Any]:
    samples: list[tuple[int, int]] = [(0, rss_bytes())]
    count = [0]

    def on_chunk(size: int) -> None:
        count[0] += 1
        if count[0] % 2000 == 0:
            samples.append((count[0] * size, rss_bytes()))

    return samples, on_chunk


def _stream_summary(samples: list[tuple[int, int]], total: int, seconds: float) -> dict[str, Any]:
    warm = next(rss for done, rss in samples if done >= total * 0.02)
    peak = max(rss for _, rss in samples)
    return {"rss_start_mib": samples[0][1] / MIB, "rss_baseline_mib": warm / MIB,
            "rss_peak_mib": peak / MIB, "rss_end_mib": samples[-1][1] / MIB,
            "growth_mib": (peak - warm) / MIB, "seconds": seconds,
            "mib_per_s": total / MIB / seconds,
            "samples": [(d // MIB, round(r / MIB, 1))
                        for d, r in samples[:: max(1, len(samples) // 50)]]}


async def stream_gemini_ws(server: FastServer, total: int) -> dict[str, Any]:
    from gemini_ws import Client, LiveConfig, ServerContent

    async with Client(api_key=server.key, base_url=server.url,
                      ssl_context=server.ssl_context()) as client:
        async with client.stream(MODEL, config=LiveConfig(response_modalities=["AUDIO"])) as s:
            samples, on_chunk = _sampler(total)
            t0 = time.perf_counter()
            await s.send_text(f"bulk {total}")
            received = 0
            async for msg in s.turn():
                if isinstance(msg, ServerContent):
                    pcm = msg.audio
                    if pcm:
                        received += len(pcm)
                        on_chunk(len(pcm))
            seconds = time.perf_counter() - t0
    assert received >= total - CHUNK, (received, total)
    return _stream_summary(samples, total, seconds)


async def stream_genai(server: FastServer, total: int) -> dict[str, Any]:
    from google.genai import types

    client = genai_client(server)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
    async with client.aio.live.connect(model=MODEL, config=config) as s:
        samples, on_chunk = _sampler(total)
        t0 = time.perf_counter()
        await s.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text=f"bulk {total}")]),
            turn_complete=True)
        received = 0
        async for msg in s.receive():
            content = msg.server_content
            if content is not None and content.model_turn is not None:
                for part in content.model_turn.parts or ():
                    if part.inline_data is not None and part.inline_data.data:
                        received += len(part.inline_data.data)
                        on_chunk(len(part.inline_data.data))
        seconds = time.perf_counter() - t0
    assert received >= total - CHUNK, (received, total)
    return _stream_summary(samples, total, seconds)


async def idle_gemini_ws(server: FastServer, n: int) -> dict[str, Any]:
    import trio

    from gemini_ws import Client, LiveConfig

    config = LiveConfig(response_modalities=["AUDIO"])
    async with Client(api_key=server.key, base_url=server.url,
                      ssl_context=server.ssl_context()) as client:
        async with client.stream(MODEL, config=config):
            pass
        before = rss_bytes()
        limit = trio.CapacityLimiter(50)
        opened = [0]
        all_open, done = trio.Event(), trio.Event()

        async def hold_one() -> None:  # each stream lives in a task of its own
            async with limit:
                cm = client.stream(MODEL, config=config)
                stream = await cm.__aenter__()
            try:
                opened[0] += 1
                if opened[0] == n:
                    all_open.set()
                await done.wait()
            finally:
                await cm.__aexit__(None, None, None)
            del stream

        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(hold_one)
            await all_open.wait()
            await trio.sleep(1.0)
            after = rss_bytes()
            done.set()
    return {"rss_before_mib": before / MIB, "rss_after_mib": after / MIB,
            "kib_per_stream": (after - before) / 1024 / n}


async def idle_genai(server: FastServer, n: int) -> dict[str, Any]:
    from google.genai import types

    client = genai_client(server)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
    async with client.aio.live.connect(model=MODEL, config=config):
        pass
    before = rss_bytes()
    async with contextlib.AsyncExitStack() as stack:
        limit = asyncio.Semaphore(50)

        async def open_one() -> None:
            async with limit:
                await stack.enter_async_context(client.aio.live.connect(model=MODEL,
                                                                         config=config))

        await asyncio.gather(*(open_one() for _ in range(n)))
        await asyncio.sleep(1.0)
        after = rss_bytes()
    return {"rss_before_mib": before / MIB, "rss_after_mib": after / MIB,
            "kib_per_stream": (after - before) / 1024 / n}


def worker_main(args: argparse.Namespace) -> None:
    server = worker_server(args)
    kind, name = args.worker.split(":")
    if name == "gemini_ws":
        import trio

        fn = stream_gemini_ws if kind == "stream" else idle_gemini_ws
        out = trio.run(fn, server, args.amount)
    else:
        fn2 = stream_genai if kind == "stream" else idle_genai
        out = asyncio.run(fn2(server, args.amount))
    print(json.dumps(out))


def run(server: FastServer, worker: str, amount: int) -> dict[str, Any]:
    try:
        out = run_worker(__file__, worker, server, "--amount", str(amount), timeout=1200)
    except WorkerFailed:
        raise SystemExit(f"{worker} failed") from None
    shown = {k: round(v, 2) for k, v in out.items() if isinstance(v, float)}
    print(f"  {worker}: {shown}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--gib", type=float, default=1.0, help="GiB carried by the stream")
    parser.add_argument("--genai-gib", type=float, default=1.0)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--amount", type=int)
    add_worker_arguments(parser, None)  # (--worker is "stream:NAME" or "idle:NAME")
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return
    if args.quick:
        args.gib, args.genai_gib, args.idle, args.reps = 1 / 32, 1 / 32, 50, 1
    names = ["gemini_ws", "google-genai"]
    server = FastServer(tls=True, procs=2)
    stream: dict[str, dict[str, Any]] = {}
    idle: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    try:
        print("one stream, bulk audio:")
        for name in names:
            gib = args.gib if name == "gemini_ws" else args.genai_gib
            total = int(gib * 1024 * MIB) // CHUNK * CHUNK
            stream[name] = run(server, f"stream:{name}", total)
            stream[name]["gib"] = gib
        print(f"{args.idle} idle streams:")
        for r in range(args.reps):
            for name in names if r % 2 == 0 else names[::-1]:
                idle[name].append(run(server, f"idle:{name}", args.idle))
    finally:
        server.close()
    rows = []
    for name in names:
        s = stream[name]
        per_stream = median([r["kib_per_stream"] for r in idle[name]])
        rows.append({"contender": name, "stream": s, "idle_runs": idle[name],
                     "idle_kib_per_stream_median": per_stream})
    table = markdown(
        ["contender", "audio carried", "RSS baseline (MiB)", "RSS peak (MiB)", "growth (MiB)",
         "MiB/s", f"RSS per idle stream ({args.idle} open)"],
        [[r["contender"], f"{r['stream']['gib']:g} GiB", f"{r['stream']['rss_baseline_mib']:.1f}",
          f"{r['stream']['rss_peak_mib']:.1f}", f"{r['stream']['growth_mib']:.1f}",
          f"{r['stream']['mib_per_s']:.1f}", f"{r['idle_kib_per_stream_median']:.0f} KiB"]
         for r in rows],
    )
    growth = stream["gemini_ws"]["growth_mib"]
    targets = f"gemini_ws RSS growth over the stream: {growth:.1f} MiB (target < 20 MiB)"
    header = (f"Memory: one stream carrying bulk 24 kHz audio in 1920-byte chunks (RSS sampled "
              f"every 2,000 chunks; baseline after 2 % of it); {args.idle} idle streams open, "
              f"median of {args.reps} alternated runs. TLS, _fast_server.py x 2, fresh client "
              f"process per measurement.")
    write_results("memory", args.quick, header, [table, targets], {"results": rows})


if __name__ == "__main__":
    main()
