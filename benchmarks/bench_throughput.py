"""Chunk throughput and per-chunk delivery latency: gemini_ws against a raw trio-websocket
client doing the same work, on the same fake server (its own process), runs alternated.

``python benchmarks/bench_throughput.py [--quick] [--turns N] [--chunks N] [--rounds N]``

Each contender opens a session, then runs ``turns`` turns of ``chunks`` text chunks. Every chunk
carries the server's monotonic send stamp; latency is receipt minus stamp. Reported: medians over
rounds of chunks/s, and p50/p99 latency over all chunks, plus the ratio gemini_ws / raw.
Results go to benchmarks/results/throughput.json and .md. Nothing here asserts on speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
import trio_websocket

from gemini_ws import Client, LiveConfig, ServerContent

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MODEL = "gemini-3.1-flash-live-preview"
PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


class Server:
    """The fake server as a subprocess."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_server_proc.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        info: dict[str, str] = {}
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == "ready":
                break
            name, _, value = line.strip().partition(" ")
            info[name] = value
        self.url = info["url"]
        self.key = info["key"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def stamp_of(text: str) -> int:
    return int(text.split(" ", 1)[0])


async def run_gemini_ws(server: Server, turns: int, chunks: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    async with Client(api_key=server.key, base_url=server.url) as client:
        async with client.stream(MODEL, config=LiveConfig(response_modalities=["TEXT"])) as s:
            t0 = time.perf_counter()
            for _ in range(turns):
                await s.send_text(f"chunks {chunks}")
                async for msg in s.turn():
                    if isinstance(msg, ServerContent) and msg.model_turn is not None:
                        now = time.monotonic_ns()
                        for part in msg.model_turn.parts:
                            if part.text:
                                latencies.append((now - stamp_of(part.text)) / 1e6)
            elapsed = time.perf_counter() - t0
    return turns * chunks / elapsed, latencies


async def run_raw(server: Server, turns: int, chunks: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    async with trio_websocket.open_websocket_url(
        server.url + PATH,
        extra_headers=[(b"x-goog-api-key", server.key.encode())],
        max_message_size=64 * 1024 * 1024,
    ) as ws:
        await ws.send_message(json.dumps({"setup": {"model": f"models/{MODEL}",
                              "generationConfig": {"responseModalities": ["TEXT"]}}}))
        assert "setupComplete" in json.loads(await ws.get_message())
        t0 = time.perf_counter()
        for _ in range(turns):
            await ws.send_message(json.dumps({"clientContent": {"turns": [
                {"role": "user", "parts": [{"text": f"chunks {chunks}"}]}], "turnComplete": True}}))
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
                            latencies.append((now - stamp_of(part["text"])) / 1e6)
                if content.get("turnComplete"):
                    break
        elapsed = time.perf_counter() - t0
    return turns * chunks / elapsed, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a smoke run (small numbers)")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.turns, args.chunks, args.rounds = 2, 200, 2
    contenders: dict[str, Callable[[Server, int, int], Awaitable[tuple[float, list[float]]]]] = {
        "raw trio-websocket": run_raw,
        "gemini_ws": run_gemini_ws,
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    lats: dict[str, list[float]] = {name: [] for name in contenders}
    server = Server()
    try:
        names = list(contenders)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]  # alternate who goes first
            for name in order:
                rate, latencies = trio.run(contenders[name], server, args.turns, args.chunks)
                rates[name].append(rate)
                lats[name].extend(latencies)
    finally:
        server.close()
    rows: list[dict[str, Any]] = []
    for name in contenders:
        rows.append({
            "contender": name,
            "chunks_per_s_median": statistics.median(rates[name]),
            "latency_ms_p50": pct(lats[name], 0.50),
            "latency_ms_p99": pct(lats[name], 0.99),
            "rounds": len(rates[name]),
        })
    raw = rows[0]["chunks_per_s_median"]
    for row in rows:
        row["throughput_vs_raw"] = row["chunks_per_s_median"] / raw
    table = ["| contender | chunks/s (median) | vs raw | latency p50 (ms) | latency p99 (ms) |",
             "|---|---:|---:|---:|---:|"]
    for row in rows:
        table.append(
            f"| {row['contender']} | {row['chunks_per_s_median']:,.0f} | "
            f"{row['throughput_vs_raw']:.2f}x | {row['latency_ms_p50']:.2f} | "
            f"{row['latency_ms_p99']:.2f} |"
        )
    header = (f"{args.turns} turns x {args.chunks} chunks, {args.rounds} rounds, "
              f"fake server in its own process")
    print(header)
    print("\n".join(table))
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if args.quick else ""
    (RESULTS / f"throughput{suffix}.json").write_text(
        json.dumps({"setup": header, "results": rows}, indent=2) + "\n")
    (RESULTS / f"throughput{suffix}.md").write_text(header + "\n\n" + "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
