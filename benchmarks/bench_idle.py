"""Idle cost: N sessions open and silent (set up, nothing sent or received) for S seconds; the
client's CPU per session, each contender with its default keep-alive (gemini_ws and
google-genai both ping every 20 s, so S defaults past two pings).

``python benchmarks/bench_idle.py [--quick] [--n N] [--seconds S] [--stagger G]
[--contenders A,B]``

Every run is a fresh client process; CPU (``time.process_time``: user + system, all threads) is
read from the moment all N sessions are set up to the end of the idle period. The sessions are
opened G seconds apart (0.1 by default), as an application's sessions start at different
moments; ``--stagger 0`` opens them all at once, which lines up every contender's ping timers
by accident. The bare trio floor sends no pings at all: it shows what an idle trio process
costs.

Results: benchmarks/results/idle.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
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

#: seconds between two sessions' opening (``--stagger``)
STAGGER = 0.1


async def trio_idle(server: FastServer, n: int, seconds: float, open_one: Any) -> float:
    """Open *n* sessions with ``open_one(stack)``, idle, and return CPU seconds per second."""
    import contextlib

    import trio

    ready = trio.Event()
    count = [0]
    done = trio.Event()

    async def session(i: int) -> None:
        await trio.sleep(i * STAGGER)
        async with contextlib.AsyncExitStack() as stack:
            await open_one(stack)
            count[0] += 1
            if count[0] == n:
                ready.set()
            await done.wait()

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(session, i)
        await ready.wait()
        c0, t0 = self_cpu(), time.perf_counter()
        await trio.sleep(seconds)
        cpu = (self_cpu() - c0) / (time.perf_counter() - t0)
        done.set()
    return cpu


async def worker_gemini_ws(server: FastServer, n: int, seconds: float,
                           transport: str | None = None) -> float:
    from gemini_ws import Client, LiveConfig

    async with Client(api_key=server.key, base_url=server.url, ssl_context=server.ssl_context(),
                      transport=transport, max_connections=n + 10) as client:
        config = LiveConfig(response_modalities=["AUDIO"])

        async def open_one(stack: Any) -> None:
            await stack.enter_async_context(client.stream(MODEL, config=config))

        return await trio_idle(server, n, seconds, open_one)


async def worker_raw(server: FastServer, n: int, seconds: float) -> float:
    import trio_websocket
    from _floors import SETUP_AUDIO

    async def open_one(stack: Any) -> None:
        ws = await stack.enter_async_context(trio_websocket.open_websocket_url(
            server.url + PATH, ssl_context=server.ssl_context(),
            extra_headers=[(b"x-goog-api-key", server.key.encode())]))
        await ws.send_message(SETUP_AUDIO.decode())
        await ws.get_message()

    return await trio_idle(server, n, seconds, open_one)


async def worker_bare_trio(server: FastServer, n: int, seconds: float) -> float:
    from _floors import SETUP_AUDIO, BareTrio

    async def open_one(stack: Any) -> None:
        ws = await BareTrio.connect(server, SETUP_AUDIO)
        stack.push_async_callback(ws.aclose)

    return await trio_idle(server, n, seconds, open_one)


async def asyncio_idle(n: int, seconds: float, open_one: Any, close_one: Any) -> float:
    async def opened(i: int) -> Any:
        await asyncio.sleep(i * STAGGER)
        return await open_one()

    conns = await asyncio.gather(*[opened(i) for i in range(n)])
    c0, t0 = self_cpu(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = (self_cpu() - c0) / (time.perf_counter() - t0)
    await asyncio.gather(*[close_one(c) for c in conns])
    return cpu


async def worker_genai(server: FastServer, n: int, seconds: float) -> float:
    from google.genai import types

    client = genai_client(server)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])

    async def open_one() -> Any:
        cm = client.aio.live.connect(model=MODEL, config=config)
        await cm.__aenter__()
        return cm

    async def close_one(cm: Any) -> None:
        await cm.__aexit__(None, None, None)

    return await asyncio_idle(n, seconds, open_one, close_one)


async def worker_websockets(server: FastServer, n: int, seconds: float) -> float:
    from _floors import SETUP_AUDIO, websockets_asyncio

    async def close_one(ws: Any) -> None:
        await ws.close()

    return await asyncio_idle(n, seconds, lambda: websockets_asyncio(server, SETUP_AUDIO),
                              close_one)


TRIO = {
    "gemini_ws": worker_gemini_ws,
    "gemini_ws (trio-websocket)": lambda s, n, t: worker_gemini_ws(s, n, t, "trio-websocket"),
    "raw trio-websocket": worker_raw,
    "bare trio (floor)": worker_bare_trio,
}
ASYNCIO = {
    "google-genai": worker_genai,
    "bare websockets-asyncio (floor)": worker_websockets,
}
NAMES = list(TRIO) + list(ASYNCIO)


def run(server: FastServer, name: str, n: int, seconds: float) -> float:
    try:
        out = run_worker(__file__, name, server, "--n", str(n), "--seconds", str(seconds),
                         "--stagger", str(STAGGER))
    except WorkerFailed:
        return float("nan")
    cpu = float(out["cpu"])
    print(f"  {name:>31} N={n} client CPU={cpu:.2%} of a core "
          f"({cpu / n * 1e6:.0f} us/s per session)", flush=True)
    return cpu


def main() -> None:
    global STAGGER
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--stagger", type=float, default=STAGGER,
                        help="seconds between two sessions' opening")
    parser.add_argument("--contenders", default=",".join(NAMES))
    add_worker_arguments(parser, NAMES)
    args = parser.parse_args()
    STAGGER = args.stagger
    if args.worker:
        cpu = run_contender(TRIO, ASYNCIO, args.worker, worker_server(args), args.n,
                            args.seconds)
        print(json.dumps({"cpu": cpu}))
        return
    if args.quick:
        args.n, args.seconds = 10, 2.0
    names = pick_contenders(parser, args.contenders, NAMES)
    server = FastServer(tls=True, procs=2)
    cpus: dict[str, list[float]] = {name: [] for name in names}
    try:
        for r in range(args.reps):
            for name in rotated(names, r):
                cpus[name].append(run(server, name, args.n, args.seconds))
    finally:
        server.close()
    rows = [{"contender": name, "cpu": median(cpus[name]),
             "us_per_s_per_session": median(cpus[name]) / args.n * 1e6, "all": cpus[name]}
            for name in names]
    by = {row["contender"]: row for row in rows}
    genai = by.get("google-genai", {}).get("us_per_s_per_session")
    table = markdown(
        ["contender", f"client CPU, {args.n} idle sessions", "per session (us CPU per s)",
         "vs google-genai"],
        [[row["contender"], f"{row['cpu']:.2%} of a core",
          f"{row['us_per_s_per_session']:.1f}",
          f"{genai / row['us_per_s_per_session']:.2f}x"
          if genai and row["us_per_s_per_session"] else "-"]
         for row in rows],
    )
    header = (f"Idle: {args.n} sessions opened {args.stagger:g} s apart, then all silent for "
              f"{args.seconds:g} s (each contender's default keep-alive); TLS; _fast_server.py "
              f"x 2 processes; client in its own process per run; {args.reps} rep(s), median.")
    target = "target: CPU per idle session <= google-genai's ('vs google-genai' >= 1x)"
    write_results("idle", args.quick, header, [table, target], {"results": rows})


if __name__ == "__main__":
    main()
