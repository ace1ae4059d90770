"""Realtime audio at scale: N concurrent sessions, each uploading 16 kHz PCM in 20 ms chunks and
receiving 24 kHz PCM in 20 ms chunks at real-time pace (``--period-ms``); gemini_ws against
google-genai, raw trio-websocket and the two floors.

``python benchmarks/bench_realtime.py [--quick] [--seconds S] [--start N] [--max N]
[--cpu-n N] [--reps R] [--server-procs P] [--period-ms MS] [--contenders A,B]``

Server: benchmarks/_fast_server.py with TLS and ``--server-procs`` accepting processes. Each
session sends the text ``audio S P`` (the server then sends P ms chunks on a drift-free clock,
the first 8 bytes of each chunk's PCM being its send stamp) and uploads 640-byte chunks every
20 ms on its own clock (``gemini_ws (audio.Pacer)``: paced by a ``gemini_ws.audio.Pacer``, the
clock ``send_paced`` runs on, whose ticks all sessions share and only one of them sleeps for).
Sessions start staggered over one period.

Every run is a fresh client process (``--worker``), so its CPU time (``os.times``: user + system,
all threads) covers that contender only, measured from the moment all N sessions are set up to
the end of streaming.

1. Ladder: N rises (x1.5) from ``--start``; at each N the contenders still in the race run once
   each (alternating who goes first); a contender drops out when p99 delivery latency passes
   50 ms or chunks go missing. ``max N`` is the last N it passed.
2. CPU per session: ``--reps`` alternated runs of both at ``--cpu-n`` sessions; median client CPU
   (share of one core) / N. ``sessions per core`` = 1 / that: what one core could carry if the
   client's CPU were the only limit. The ratios ("vs X") are taken within each rep (contenders
   run seconds apart see the same machine) and their median reported. On this 2-core box the
   server processes and the client share the cores, so ``max N`` is the more conservative,
   machine-bound figure.

Results: benchmarks/results/realtime.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import time
from typing import Any

import orjson
import pybase64
from _common import (
    MODEL,
    PATH,
    FastServer,
    WorkerFailed,
    add_worker_arguments,
    genai_client,
    markdown,
    median,
    pcm_stamp,
    pct,
    pick_contenders,
    rotated,
    run_contender,
    run_worker,
    self_cpu,
    worker_server,
    write_results,
)

PERIOD = 0.020  # --period-ms
UPLOAD = bytes(640)  # PERIOD of 16 kHz 16-bit mono silence


def set_period(ms: float) -> None:
    global PERIOD, UPLOAD
    PERIOD = ms / 1000
    UPLOAD = bytes(round(ms * 32))


def audio_request(seconds: float) -> str:
    return f"audio {seconds:g} {PERIOD * 1000:g}"
LIMIT_MS = 50.0


# -- workers (one process per run) ----------------------------------------------------------------


async def _trio_sessions(n: int, seconds: float, session: Any) -> dict[str, Any]:
    """Run ``session(i, lats, arrived, ready)`` for i < n at once: each calls ``arrived()``
    once set up, waits for *ready* (all set up), then streams, appending delivery latencies to
    *lats*. Client CPU is read from *ready* to the end."""
    import trio

    lats: list[float] = []
    counter = [0]
    ready = trio.Event()

    def arrived() -> None:
        counter[0] += 1
        if counter[0] == n:
            ready.set()

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(session, i, lats, arrived, ready)
        await ready.wait()
        c0, t0 = self_cpu(), time.perf_counter()
    wall = time.perf_counter() - t0
    return {"lats": lats, "cpu": (self_cpu() - c0) / wall, "wall": wall}


async def _asyncio_sessions(n: int, session: Any) -> dict[str, Any]:
    """:func:`_trio_sessions` on asyncio."""
    lats: list[float] = []
    counter = [0]
    ready = asyncio.Event()

    def arrived() -> None:
        counter[0] += 1
        if counter[0] == n:
            ready.set()

    tasks = [asyncio.ensure_future(session(i, lats, arrived, ready)) for i in range(n)]
    await ready.wait()
    c0, t0 = self_cpu(), time.perf_counter()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    return {"lats": lats, "cpu": (self_cpu() - c0) / wall, "wall": wall}


async def worker_gemini_ws(server: FastServer, n: int, seconds: float,
                           transport: str | None = None, paced: bool = False) -> dict[str, Any]:
    """*paced*: wait for each chunk's time with a ``gemini_ws.audio.Pacer`` (its ticks are
    shared by every session) instead of ``trio.sleep_until``, as the other contenders do."""
    import trio

    from gemini_ws import Client, LiveConfig, ServerContent
    from gemini_ws.audio import Pacer

    async def session(client: Client, i: int, lats: list[float], arrived: Any,
                      ready: Any) -> None:
        async with client.stream(MODEL, config=LiveConfig(response_modalities=["AUDIO"])) as s:
            arrived()
            await ready.wait()
            await trio.sleep(i * PERIOD / n)
            await s.send_text(audio_request(seconds))

            async def upload() -> None:
                count = int(seconds / PERIOD)
                if paced:
                    pacer = Pacer(chunk_ms=round(PERIOD * 1000))
                    for _ in range(count):
                        await pacer.wait()
                        await s.send_audio(UPLOAD)
                    return
                start = trio.current_time()
                for k in range(count):
                    await trio.sleep_until(start + k * PERIOD)
                    await s.send_audio(UPLOAD)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(upload)
                async for msg in s.turn():
                    if isinstance(msg, ServerContent):
                        pcm = msg.audio
                        if pcm:
                            lats.append((time.monotonic_ns() - pcm_stamp(pcm)) / 1e6)

    async with Client(api_key=server.key, base_url=server.url,
                      ssl_context=server.ssl_context(), transport=transport) as client:
        return await _trio_sessions(n, seconds, functools.partial(session, client))


async def worker_genai(server: FastServer, n: int, seconds: float) -> dict[str, Any]:
    from google.genai import types

    client = genai_client(server)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
    blob = types.Blob(data=UPLOAD, mime_type="audio/pcm;rate=16000")

    async def session(i: int, lats: list[float], arrived: Any, ready: Any) -> None:
        async with client.aio.live.connect(model=MODEL, config=config) as s:
            arrived()
            await ready.wait()
            await asyncio.sleep(i * PERIOD / n)
            await s.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text=audio_request(seconds))]),
                turn_complete=True,
            )

            async def upload() -> None:
                loop = asyncio.get_running_loop()
                start = loop.time()
                for k in range(int(seconds / PERIOD)):
                    await asyncio.sleep(max(0.0, start + k * PERIOD - loop.time()))
                    await s.send_realtime_input(audio=blob)

            up = asyncio.ensure_future(upload())
            async for msg in s.receive():
                content = msg.server_content
                if content is not None and content.model_turn is not None:
                    for part in content.model_turn.parts or ():
                        if part.inline_data is not None and part.inline_data.data:
                            lats.append(
                                (time.monotonic_ns() - pcm_stamp(part.inline_data.data)) / 1e6)
            await up

    return await _asyncio_sessions(n, session)


def _audio_stamp(payload: bytes) -> int | None:
    """The send stamp of an audio chunk message (None for other messages)."""
    message = orjson.loads(payload)
    content = message.get("serverContent")
    if content is None:
        return None
    turn = content.get("modelTurn")
    if turn is None:
        return -1 if content.get("turnComplete") else None
    for part in turn.get("parts", ()):
        data = part.get("inlineData", {}).get("data")
        if data:
            return pcm_stamp(pybase64.b64decode(data))
    return None


async def worker_bare_trio(server: FastServer, n: int, seconds: float) -> dict[str, Any]:
    import trio
    from _floors import SETUP_AUDIO, BareTrio, audio_message, user_turn

    async def session(i: int, lats: list[float], arrived: Any, ready: Any) -> None:
        ws = await BareTrio.connect(server, SETUP_AUDIO)
        arrived()
        await ready.wait()
        await trio.sleep(i * PERIOD / n)
        await ws.send(user_turn(audio_request(seconds)))

        async def upload() -> None:
            start = trio.current_time()
            for k in range(int(seconds / PERIOD)):
                await trio.sleep_until(start + k * PERIOD)
                await ws.send(audio_message(UPLOAD))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(upload)
            while True:
                stamp = _audio_stamp(await ws.receive())
                if stamp == -1:
                    break
                if stamp is not None:
                    lats.append((time.monotonic_ns() - stamp) / 1e6)
        await ws.aclose()

    return await _trio_sessions(n, seconds, session)


async def worker_raw_trio_websocket(server: FastServer, n: int,
                                    seconds: float) -> dict[str, Any]:
    import trio
    import trio_websocket
    from _floors import SETUP_AUDIO, audio_message, user_turn

    async def session(i: int, lats: list[float], arrived: Any, ready: Any) -> None:
        async with trio_websocket.open_websocket_url(
            server.url + PATH, ssl_context=server.ssl_context(),
            extra_headers=[(b"x-goog-api-key", server.key.encode())],
            max_message_size=64 * 1024 * 1024,
        ) as ws:
            await ws.send_message(SETUP_AUDIO.decode())
            assert "setupComplete" in str(await ws.get_message())
            arrived()
            await ready.wait()
            await trio.sleep(i * PERIOD / n)
            await ws.send_message(user_turn(audio_request(seconds)).decode())

            async def upload() -> None:
                start = trio.current_time()
                for k in range(int(seconds / PERIOD)):
                    await trio.sleep_until(start + k * PERIOD)
                    await ws.send_message(audio_message(UPLOAD).decode())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(upload)
                while True:
                    message = await ws.get_message()
                    stamp = _audio_stamp(message.encode() if isinstance(message, str)
                                         else message)
                    if stamp == -1:
                        break
                    if stamp is not None:
                        lats.append((time.monotonic_ns() - stamp) / 1e6)

    return await _trio_sessions(n, seconds, session)


async def worker_websockets_asyncio(server: FastServer, n: int,
                                    seconds: float) -> dict[str, Any]:
    from _floors import SETUP_AUDIO, audio_message, user_turn, websockets_asyncio

    async def session(i: int, lats: list[float], arrived: Any, ready: Any) -> None:
        ws = await websockets_asyncio(server, SETUP_AUDIO)
        arrived()
        await ready.wait()
        await asyncio.sleep(i * PERIOD / n)
        await ws.send(user_turn(audio_request(seconds)).decode())

        async def upload() -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for k in range(int(seconds / PERIOD)):
                await asyncio.sleep(max(0.0, start + k * PERIOD - loop.time()))
                await ws.send(audio_message(UPLOAD).decode())

        up = asyncio.ensure_future(upload())
        async for message in ws:
            stamp = _audio_stamp(message if isinstance(message, bytes) else message.encode())
            if stamp == -1:
                break
            if stamp is not None:
                lats.append((time.monotonic_ns() - stamp) / 1e6)
        await up
        await ws.close()

    return await _asyncio_sessions(n, session)


TRIO_WORKERS: dict[str, Any] = {
    "gemini_ws": worker_gemini_ws,
    "gemini_ws (trio-websocket)": functools.partial(worker_gemini_ws,
                                                    transport="trio-websocket"),
    "gemini_ws (audio.Pacer)": functools.partial(worker_gemini_ws, paced=True),
    "raw trio-websocket": worker_raw_trio_websocket,
    "bare trio (floor)": worker_bare_trio,
}
ASYNCIO_WORKERS: dict[str, Any] = {
    "google-genai": worker_genai,
    "bare websockets-asyncio (floor)": worker_websockets_asyncio,
}
NAMES = list(TRIO_WORKERS) + list(ASYNCIO_WORKERS)


def worker_main(args: argparse.Namespace) -> None:
    set_period(args.period_ms)
    out = run_contender(TRIO_WORKERS, ASYNCIO_WORKERS, args.worker, worker_server(args), args.n,
                        args.seconds)
    lats = out.pop("lats")
    expected = args.n * round(args.seconds / PERIOD)
    out.update(received=len(lats), expected=expected, p50=pct(lats, 0.5), p99=pct(lats, 0.99),
               max=max(lats) if lats else float("nan"))
    print(json.dumps(out))


# -- driver ---------------------------------------------------------------------------------------


def run(server: FastServer, name: str, n: int, seconds: float,
        quiet: bool = False) -> dict[str, Any]:
    s0 = server.cpu_seconds()
    t0 = time.perf_counter()
    try:
        out = run_worker(__file__, name, server, "--n", str(n), "--seconds", str(seconds),
                         "--period-ms", f"{PERIOD * 1000:g}", timeout=300)
    except WorkerFailed as exc:
        return {"n": n, "ok": False, "error": [str(exc)], "p99": float("inf"),
                "cpu": float("nan")}
    out["server_cpu"] = (server.cpu_seconds() - s0) / (time.perf_counter() - t0)
    out["n"] = n
    out["ok"] = out["p99"] <= LIMIT_MS and out["received"] >= 0.99 * out["expected"]
    if quiet:
        return out
    print(f"  {name:>31} N={n:<5} p50={out['p50']:7.2f} ms p99={out['p99']:8.2f} ms "
          f"client CPU={out['cpu']:.0%} server CPU={out['server_cpu']:.0%} "
          f"chunks={out['received']}/{out['expected']} {'ok' if out['ok'] else 'FAIL'}",
          flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--start", type=int, default=50)
    parser.add_argument("--max", type=int, default=2000)
    # below saturation: at N=100 both clients ran near 100 % of a core, which caps the
    # per-session figure at about 1/N and forces the ratio towards 1
    parser.add_argument("--cpu-n", type=int, default=20)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--server-procs", type=int, default=2)
    parser.add_argument("--period-ms", type=float, default=20.0,
                        help="audio chunk length, both ways")
    parser.add_argument("--contenders", default=",".join(NAMES),
                        help="comma-separated, from: " + ", ".join(NAMES))
    parser.add_argument("--n", type=int)
    add_worker_arguments(parser, NAMES)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return
    set_period(args.period_ms)
    if args.quick:
        args.seconds, args.start, args.max, args.cpu_n, args.reps = 1.0, 5, 8, 5, 1
    names = pick_contenders(parser, args.contenders, NAMES)
    server = FastServer(tls=True, procs=args.server_procs)
    ladder: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    cpu_runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    try:
        for name in names:  # warm-up: imports, TLS session set-up, code paths
            run(server, name, 2, 0.5, quiet=True)
        print(f"CPU per session at N={args.cpu_n}:")
        for r in range(args.reps):
            for name in rotated(names, r):
                cpu_runs[name].append(run(server, name, args.cpu_n, args.seconds))
        print("ladder:")
        alive = list(names)
        n, step = args.start, 0
        while alive and n <= args.max:
            for name in rotated(alive, step):
                ladder[name].append(run(server, name, n, args.seconds))
            alive = [name for name in alive if ladder[name][-1]["ok"]]
            n, step = int(n * 1.5), step + 1
    finally:
        server.close()
    rows = []
    for name in names:
        per_session = median([r["cpu"] for r in cpu_runs[name]]) / args.cpu_n
        passed = [r["n"] for r in ladder[name] if r["ok"]]
        failed = [r["n"] for r in ladder[name] if not r["ok"]]
        rows.append({
            "contender": name,
            "cpu_per_session": per_session,
            "cpu_per_session_all": [r["cpu"] / args.cpu_n for r in cpu_runs[name]],
            "sessions_per_core_cpu": 1 / per_session if per_session else float("nan"),
            "p99_ms_at_cpu_n": median([r["p99"] for r in cpu_runs[name]]),
            "max_n": max(passed) if passed else 0,
            "first_failing_n": min(failed) if failed else None,
            "ladder": ladder[name],
            "cpu_runs": cpu_runs[name],
        })
    by = {r["contender"]: r for r in rows}

    def ratio(a: str, b: str) -> float:
        """Sessions per core, *a* over *b*: *b*'s CPU over *a*'s within each rep, median over
        the reps (contenders of one rep ran seconds apart, on the same machine; the machine
        drifts between reps)."""
        if a not in by or b not in by:
            return float("nan")
        return median([theirs["cpu"] / ours["cpu"]
                       for ours, theirs in zip(cpu_runs[a], cpu_runs[b], strict=True)])

    def ratio_of_medians(a: str, b: str) -> float:
        if a not in by or b not in by:
            return float("nan")
        return by[a]["sessions_per_core_cpu"] / by[b]["sessions_per_core_cpu"]

    references = [name for name in ("google-genai", "bare trio (floor)",
                                    "bare websockets-asyncio (floor)") if name in by]
    table = markdown(
        ["contender", f"client CPU per session (N={args.cpu_n})", "sessions per core (CPU)",
         *[f"vs {ref}" for ref in references],
         f"p99 ms at N={args.cpu_n}", "max N, p99 <= 50 ms", "first N past it"],
        [[r["contender"], f"{r['cpu_per_session']:.2%} of a core",
          f"{r['sessions_per_core_cpu']:.0f}",
          *[f"{ratio(r['contender'], ref):.2f}x" for ref in references],
          f"{r['p99_ms_at_cpu_n']:.1f}", str(r["max_n"]),
          str(r["first_failing_n"] or f"> {args.max}")]
         for r in rows],
    )
    ladder_table = markdown(
        ["contender", "N", "p50 ms", "p99 ms", "client CPU", "server CPU", "chunks", "ok"],
        [[name, str(r["n"]), f"{r.get('p50', float('nan')):.1f}", f"{r['p99']:.1f}",
          f"{r['cpu']:.0%}", f"{r.get('server_cpu', float('nan')):.0%}",
          f"{r.get('received', 0)}/{r.get('expected', 0)}", "yes" if r["ok"] else "no"]
         for name in names for r in ladder[name]],
    )
    ours = [name for name in ("gemini_ws", "gemini_ws (audio.Pacer)") if name in by]
    ratios = {f"{name} vs {ref}": ratio(name, ref) for name in ours for ref in references}
    medians_ratios = {f"{name} vs {ref}": ratio_of_medians(name, ref)
                      for name in ours for ref in references}
    targets = "; ".join(f"sessions per core, {k} = {v:.2f}x" for k, v in ratios.items())
    targets += (" (targets: >= 1.5x google-genai, towards the bare trio floor). Ratios of the "
                "medians instead: " + "; ".join(f"{k} = {v:.2f}x"
                                                 for k, v in medians_ratios.items()))
    period_ms = PERIOD * 1000
    header = (f"Realtime audio: each session uploads {len(UPLOAD)} B / {period_ms:g} ms (16 kHz) "
              f"and receives {round(PERIOD * 24000) * 2} B / {period_ms:g} ms (24 kHz) for "
              f"{args.seconds:g} s; TLS; server: _fast_server.py x {args.server_procs} "
              f"processes; client in its own process per run; {args.reps} reps at "
              f"N={args.cpu_n} (contenders rotated; 'vs X': X's CPU over this one's within "
              f"each rep, median over the reps), ladder x1.5 from {args.start}.")
    write_results("realtime", args.quick, header, [table, ladder_table, targets],
                  {"results": rows, "ratios": ratios, "ratios_of_medians": medians_ratios})

if __name__ == "__main__":
    main()
