"""Client CPU per received chunk, chunk throughput and per-chunk delivery latency: gemini_ws (each
transport), a raw trio-websocket client doing the same work, google-genai's Live client
(asyncio), and two floors (benchmarks/_floors.py: a bare trio client, a bare websockets-asyncio
client), on one server in its own process, over TLS (google-genai forces wss), contenders
rotated each round, every run in a fresh client process.

``python benchmarks/bench_throughput.py [--quick] [--turns N] [--chunks N] [--rounds N]
[--server fast|faithful] [--contenders A,B]``

Per round and contender, in a client process of its own (``--worker``): a short warm-up session
(imports, generated hooks), then one session runs ``turns`` turns of ``chunks`` text chunks sent
as fast as the socket takes them (throughput: chunks/s; latency under load), then one turn of
``paced`` chunks, one every ``interval`` microseconds (unloaded delivery latency). Every chunk
carries the server's monotonic send stamp; latency is receipt minus stamp. Client and server
CPU are read around the full-speed session, to show which side is the bottleneck.

A process of its own per run, as an application has: in one process shared by all contenders,
each would pay the garbage collector's full passes over the others' objects (google-genai's
models alone hold some 70,000), and whether such a pass falls into a run depends on the runs
before it. Measured in one shared process: a single full pass cost gemini_ws 55 ms, 2.7 us per
chunk of a 20,000-chunk run.

The "vs X" ratios are taken within each round (X's CPU per chunk over this one's, both measured
seconds apart) and the median over the rounds is reported: on a machine whose speed drifts by
a quarter from one round to the next (shared cores), a ratio of two medians taken over
different moments moves with the drift, while contenders measured side by side see the same
machine. Many rounds (8 by default) spread every contender over the whole run. The ratios of
the medians are kept in the JSON results too.

The default server is benchmarks/_fast_server.py (pre-encoded frames; see its docstring for why).
``--server faithful`` runs benchmarks/_server_proc.py (gemini_ws.testing's fake) instead, for
comparison: it saturates its core at ~13-15k chunks/s, below what the clients can take.

Results: benchmarks/results/throughput.json and .md (``-quick`` with --quick).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import trio
from _common import (
    HERE,
    MODEL,
    PATH,
    FastServer,
    add_worker_arguments,
    genai_client,
    markdown,
    median,
    pct,
    pick_contenders,
    proc_cpu,
    rotated,
    run_worker,
    self_cpu,
    spawn,
    text_stamp,
    worker_server,
    write_results,
)

# (each contender imports its client itself: a worker process loads its own only)

Turns = list[str]  # the user texts of a run: one per turn
Result = tuple[list[float], list[float]]  # per-turn seconds, per-chunk latencies (ms)


class FaithfulServer(FastServer):
    """benchmarks/_server_proc.py (the gemini_ws.testing fake) with TLS, same interface."""

    def __init__(self) -> None:
        self.proc, info = spawn([sys.executable, str(HERE / "_server_proc.py"), "--tls"])
        self.url = info["url"]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.key = info["key"]
        self.ca = info.get("ca")
        self.pids = [self.proc.pid]
        self.tls = True


async def run_gemini_ws(server: FastServer, turns: Turns, transport: str | None = None) -> Result:
    from gemini_ws import Client, LiveConfig, ServerContent

    times: list[float] = []
    lats: list[float] = []
    async with Client(api_key=server.key, base_url=server.url,
                      ssl_context=server.ssl_context(), transport=transport) as client:
        async with client.stream(MODEL, config=LiveConfig(response_modalities=["TEXT"])) as s:
            for text in turns:
                t0 = time.perf_counter()
                await s.send_text(text)
                async for msg in s.turn():
                    if isinstance(msg, ServerContent) and msg.model_turn is not None:
                        now = time.monotonic_ns()
                        for part in msg.model_turn.parts:
                            if part.text:
                                lats.append((now - text_stamp(part.text)) / 1e6)
                times.append(time.perf_counter() - t0)
    return times, lats


async def run_raw(server: FastServer, turns: Turns) -> Result:
    import trio_websocket

    times: list[float] = []
    lats: list[float] = []
    async with trio_websocket.open_websocket_url(
        server.url + PATH,
        ssl_context=server.ssl_context(),
        extra_headers=[(b"x-goog-api-key", server.key.encode())],
        max_message_size=64 * 1024 * 1024,
    ) as ws:
        await ws.send_message(json.dumps({"setup": {"model": f"models/{MODEL}",
                              "generationConfig": {"responseModalities": ["TEXT"]}}}))
        assert "setupComplete" in json.loads(await ws.get_message())
        for text in turns:
            t0 = time.perf_counter()
            await ws.send_message(json.dumps({"clientContent": {"turns": [
                {"role": "user", "parts": [{"text": text}]}], "turnComplete": True}}))
            while True:
                msg = json.loads(await ws.get_message())
                content = msg.get("serverContent")
                if content is None:
                    continue
                turn = content.get("modelTurn")
                if turn is not None:
                    now = time.monotonic_ns()
                    for part in turn.get("parts", ()):
                        if "text" in part:
                            lats.append((now - text_stamp(part["text"])) / 1e6)
                if content.get("turnComplete"):
                    break
            times.append(time.perf_counter() - t0)
    return times, lats


async def run_genai(server: FastServer, turns: Turns) -> Result:
    from google.genai import types

    times: list[float] = []
    lats: list[float] = []
    client = genai_client(server)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT])
    async with client.aio.live.connect(model=MODEL, config=config) as session:
        for text in turns:
            t0 = time.perf_counter()
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text=text)]),
                turn_complete=True,
            )
            async for msg in session.receive():
                content = msg.server_content
                if content is not None and content.model_turn is not None:
                    now = time.monotonic_ns()
                    for part in content.model_turn.parts or ():
                        if part.text:
                            lats.append((now - text_stamp(part.text)) / 1e6)
            times.append(time.perf_counter() - t0)
    return times, lats


def _text_chunks(payload: bytes | str, lats: list[float]) -> bool:
    """Record the latency of each text chunk in one message; True at turnComplete."""
    msg = orjson.loads(payload)
    content = msg.get("serverContent")
    if content is None:
        return False
    turn = content.get("modelTurn")
    if turn is not None:
        now = time.monotonic_ns()
        for part in turn.get("parts", ()):
            if "text" in part:
                lats.append((now - text_stamp(part["text"])) / 1e6)
    return bool(content.get("turnComplete"))


async def run_bare_trio(server: FastServer, turns: Turns) -> Result:
    from _floors import SETUP_TEXT, BareTrio, user_turn

    times: list[float] = []
    lats: list[float] = []
    ws = await BareTrio.connect(server, SETUP_TEXT)
    for text in turns:
        t0 = time.perf_counter()
        await ws.send(user_turn(text))
        while not _text_chunks(await ws.receive(), lats):
            pass
        times.append(time.perf_counter() - t0)
    await ws.aclose()
    return times, lats


async def run_websockets_asyncio(server: FastServer, turns: Turns) -> Result:
    from _floors import SETUP_TEXT, user_turn, websockets_asyncio

    times: list[float] = []
    lats: list[float] = []
    ws = await websockets_asyncio(server, SETUP_TEXT)
    for text in turns:
        t0 = time.perf_counter()
        await ws.send(user_turn(text).decode())
        while not _text_chunks(await ws.recv(), lats):
            pass
        times.append(time.perf_counter() - t0)
    await ws.close()
    return times, lats


CONTENDERS: dict[str, tuple[str, Callable[..., Any]]] = {
    "raw trio-websocket": ("trio", run_raw),
    "gemini_ws": ("trio", run_gemini_ws),
    "gemini_ws (trio-websocket)": (
        "trio", functools.partial(run_gemini_ws, transport="trio-websocket")
    ),
    "google-genai": ("asyncio", run_genai),
    "bare trio (floor)": ("trio", run_bare_trio),
    "bare websockets-asyncio (floor)": ("asyncio", run_websockets_asyncio),
}
REFERENCES = ("google-genai", "raw trio-websocket", "bare trio (floor)",
              "bare websockets-asyncio (floor)")


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One run of contender ``args.worker``, in this (fresh) process."""
    server = worker_server(args)
    pids = [int(pid) for pid in args.server_pids.split()]
    loop, fn = CONTENDERS[args.worker]

    def go(turns: Turns) -> Result:
        if loop == "trio":
            return trio.run(fn, server, turns)  # type: ignore[no-any-return]
        return asyncio.run(fn(server, turns))  # type: ignore[no-any-return]

    go(["chunks 50"])  # warm-up: imports, generated hooks, code paths
    c0, s0, w0 = self_cpu(), sum(proc_cpu(pid) for pid in pids), time.perf_counter()
    times, loaded = go([f"chunks {args.chunks}"] * args.turns)
    wall = time.perf_counter() - w0
    cpu = self_cpu() - c0
    chunks = args.turns * args.chunks
    out: dict[str, Any] = {
        "chunks_per_s": chunks / sum(times),
        "us_per_chunk": cpu / chunks * 1e6,
        "client_cpu": cpu / wall,
        "server_cpu": (sum(proc_cpu(pid) for pid in pids) - s0) / wall,
        "loaded": loaded,
        "unloaded": [],
    }
    if args.server == "fast":
        _, out["unloaded"] = go([f"paced {args.paced} {args.interval}"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a smoke run (small numbers)")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--paced", type=int, default=1000, help="chunks in the latency turn")
    parser.add_argument("--interval", type=int, default=1000, help="microseconds between them")
    parser.add_argument("--server", choices=["fast", "faithful"], default="fast")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--server-pids", default="", help=argparse.SUPPRESS)
    add_worker_arguments(parser, list(CONTENDERS))
    args = parser.parse_args()
    if args.quick:
        args.turns, args.chunks, args.rounds, args.paced = 2, 200, 1, 100
    if args.worker:
        print(json.dumps(worker(args)))
        return
    names = pick_contenders(parser, args.contenders, list(CONTENDERS))
    rates: dict[str, list[float]] = {n: [] for n in names}
    loaded: dict[str, list[float]] = {n: [] for n in names}
    unloaded: dict[str, list[float]] = {n: [] for n in names}
    ccpu: dict[str, list[float]] = {n: [] for n in names}
    us_per_chunk: dict[str, list[float]] = {n: [] for n in names}
    scpu: dict[str, list[float]] = {n: [] for n in names}
    server = FaithfulServer() if args.server == "faithful" else FastServer(tls=True)
    options = ["--turns", str(args.turns), "--chunks", str(args.chunks),
               "--paced", str(args.paced), "--interval", str(args.interval),
               "--server", args.server, "--server-pids", " ".join(map(str, server.pids))]
    try:
        for r in range(args.rounds):
            for name in rotated(names, r):
                out = run_worker(__file__, name, server, *options)
                rates[name].append(out["chunks_per_s"])
                us_per_chunk[name].append(out["us_per_chunk"])
                loaded[name].extend(out["loaded"])
                unloaded[name].extend(out["unloaded"])
                ccpu[name].append(out["client_cpu"])
                scpu[name].append(out["server_cpu"])
                print(f"  round {r + 1}: {name:>31} {out['us_per_chunk']:6.1f} us CPU/chunk "
                      f"{out['chunks_per_s']:9,.0f} chunks/s", flush=True)
    finally:
        server.close()
    rows: list[dict[str, Any]] = []
    for name in names:
        rows.append({
            "contender": name,
            "chunks_per_s_median": median(rates[name]),
            "chunks_per_s_all": rates[name],
            "cpu_us_per_chunk_median": median(us_per_chunk[name]),
            "cpu_us_per_chunk_all": us_per_chunk[name],
            "latency_loaded_ms_p50": pct(loaded[name], 0.50),
            "latency_loaded_ms_p99": pct(loaded[name], 0.99),
            "latency_unloaded_ms_p50": pct(unloaded[name], 0.50),
            "latency_unloaded_ms_p99": pct(unloaded[name], 0.99),
            "client_cpu_util_median": median(ccpu[name]),
            "server_cpu_util_median": median(scpu[name]),
        })
    by = {row["contender"]: row for row in rows}
    refs = [ref for ref in REFERENCES if ref in by]

    def cpu_ratio(name: str, ref: str) -> float:
        """How many times less client CPU per chunk *name* spends than *ref*: the median of
        the ratios within each round."""
        return median([theirs / ours for ours, theirs in
                       zip(us_per_chunk[name], us_per_chunk[ref], strict=True)])

    def ratio_of_medians(name: str, ref: str) -> float:
        return by[ref]["cpu_us_per_chunk_median"] / by[name]["cpu_us_per_chunk_median"]

    ratios = {f"gemini_ws vs {ref} (CPU per chunk)": cpu_ratio("gemini_ws", ref)
              for ref in refs}
    medians_ratios = {f"gemini_ws vs {ref} (CPU per chunk, ratio of medians)":
                      ratio_of_medians("gemini_ws", ref) for ref in refs}
    ratios["gemini_ws vs google-genai (chunks/s)"] = (
        by["gemini_ws"]["chunks_per_s_median"] / by["google-genai"]["chunks_per_s_median"])
    table = markdown(
        ["contender", "client CPU per chunk (us)", *[f"vs {ref}" for ref in refs],
         "chunks/s (median)", "p50 ms (paced)", "p99 ms (paced)",
         "p50 ms (full speed)", "p99 ms (full speed)", "client CPU", "server CPU"],
        [[row["contender"], f"{row['cpu_us_per_chunk_median']:.1f}",
          *[f"{cpu_ratio(row['contender'], ref):.2f}x" for ref in refs],
          f"{row['chunks_per_s_median']:,.0f}",
          f"{row['latency_unloaded_ms_p50']:.2f}", f"{row['latency_unloaded_ms_p99']:.2f}",
          f"{row['latency_loaded_ms_p50']:.1f}", f"{row['latency_loaded_ms_p99']:.1f}",
          f"{row['client_cpu_util_median']:.0%}", f"{row['server_cpu_util_median']:.0%}"]
         for row in rows],
    )
    script = "_fast_server.py" if args.server == "fast" else "_server_proc.py (faithful fake)"
    header = (
        f"Throughput: {args.turns} turns x {args.chunks} text chunks per run, {args.rounds} "
        f"rounds (contenders rotated), medians. Paced latency: {args.paced} chunks, one per "
        f"{args.interval} us. Server: {script}, "
        f"own process, TLS (each frame its own TLS record, as a streaming server writes them). "
        f"Client CPU per chunk: process CPU time (user + system) of the full-speed run / "
        f"chunks; 'vs X': X's CPU per chunk / this one's, within each round, median over the "
        f"rounds. CPU columns: share of one core."
    )
    targets = "; ".join(f"{k} = {v:.2f}x" for k, v in ratios.items())
    targets += " (targets: >= 5x google-genai and >= 3x raw trio-websocket per chunk)"
    spread = "; ".join(
        f"{name}: {min(us_per_chunk[name]):.1f} to {max(us_per_chunk[name]):.1f} us"
        for name in names)
    targets += (f". Per-chunk CPU over the rounds: {spread}. Ratios of the medians instead: "
                + "; ".join(f"{k.split(' (')[0]} = {v:.2f}x" for k, v in medians_ratios.items()))
    name = "throughput" if args.server == "fast" else "throughput-faithful-server"
    write_results(name, args.quick, header, [table, targets],
                  {"results": rows, "ratios": ratios, "ratios_of_medians": medians_ratios})


if __name__ == "__main__":
    main()
