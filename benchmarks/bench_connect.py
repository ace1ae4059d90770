"""Connect: time to setupComplete and to the first chunk, cold, under a simulated 50 ms round
trip; gemini_ws, raw trio-websocket and google-genai, runs alternated.

``python benchmarks/bench_connect.py [--quick] [--reps R] [--delay-ms MS]``

The client connects through benchmarks/_delay_proxy.py (25 ms each way, plus one round trip for
the TCP handshake, which the proxy's own accept would otherwise hide) to
benchmarks/_fast_server.py over TLS. Each run is cold: a new client, TCP connection, TLS
handshake (no session reuse) and WebSocket upgrade. Timed from just before the connect call to
``setupComplete`` (the stream/session is usable), and to the first text chunk of a reply asked
for at once (one more round trip). The pool with warm spares does not exist yet, so warm
figures are pending that issue.

Results: benchmarks/results/connect.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import trio
import trio_websocket
from _common import HERE, MODEL, PATH, FastServer, genai_client, markdown, median, write_results

from gemini_ws import Client, LiveConfig, ServerContent

Times = tuple[float, float]


class Proxied(FastServer):
    """The fast server behind the delay proxy; ``port``/``url`` point at the proxy."""

    def __init__(self, delay_ms: float) -> None:
        super().__init__(tls=True)
        self.proxy = subprocess.Popen(
            [sys.executable, str(HERE / "_delay_proxy.py"), "--target", str(self.port),
             "--delay-ms", str(delay_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proxy.stdout is not None
        port = int(self.proxy.stdout.readline().split()[1])
        assert self.proxy.stdout.readline().strip() == "ready"
        self.port = port
        self.url = f"wss://127.0.0.1:{port}"

    def close(self) -> None:
        assert self.proxy.stdin is not None
        self.proxy.stdin.close()
        self.proxy.wait(10)
        super().close()


async def run_gemini_ws(server: FastServer) -> Times:
    async with Client(api_key=server.key, base_url=server.url,
                      ssl_context=server.ssl_context()) as client:
        t0 = time.perf_counter()
        async with client.stream(MODEL, config=LiveConfig(response_modalities=["TEXT"])) as s:
            t_setup = time.perf_counter() - t0
            await s.send_text("chunks 1")
            async for msg in s.turn():
                if isinstance(msg, ServerContent) and msg.text:
                    t_first = time.perf_counter() - t0
                    break
    return t_setup, t_first


async def run_raw(server: FastServer) -> Times:
    ctx = server.ssl_context()
    t0 = time.perf_counter()
    async with trio_websocket.open_websocket_url(
        server.url + PATH, ssl_context=ctx,
        extra_headers=[(b"x-goog-api-key", server.key.encode())],
    ) as ws:
        await ws.send_message(json.dumps({"setup": {"model": f"models/{MODEL}",
                              "generationConfig": {"responseModalities": ["TEXT"]}}}))
        assert "setupComplete" in json.loads(await ws.get_message())
        t_setup = time.perf_counter() - t0
        await ws.send_message(json.dumps({"clientContent": {"turns": [
            {"role": "user", "parts": [{"text": "chunks 1"}]}], "turnComplete": True}}))
        while True:
            msg = json.loads(await ws.get_message())
            if "modelTurn" in msg.get("serverContent", {}):
                t_first = time.perf_counter() - t0
                break
    return t_setup, t_first


async def run_genai(server: FastServer) -> Times:
    from google.genai import types

    client = genai_client(server)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT])
    t0 = time.perf_counter()
    async with client.aio.live.connect(model=MODEL, config=config) as s:
        t_setup = time.perf_counter() - t0
        await s.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="chunks 1")]),
            turn_complete=True)
        async for msg in s.receive():
            if msg.server_content is not None and msg.server_content.model_turn is not None:
                t_first = time.perf_counter() - t0
                break
    return t_setup, t_first


def run(name: str, server: FastServer) -> Times:
    if name == "google-genai":
        return asyncio.run(run_genai(server))
    return trio.run(run_gemini_ws if name == "gemini_ws" else run_raw, server)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--delay-ms", type=float, default=25.0, help="each way")
    args = parser.parse_args()
    if args.quick:
        args.reps = 2
    names = ["gemini_ws", "raw trio-websocket", "google-genai"]
    setup: dict[str, list[float]] = {n: [] for n in names}
    first: dict[str, list[float]] = {n: [] for n in names}
    server = Proxied(args.delay_ms)
    try:
        for name in names:
            run(name, server)  # warm-up (imports)
        for r in range(args.reps):
            for name in names[r % 3:] + names[:r % 3]:
                a, b = run(name, server)
                setup[name].append(a * 1000)
                first[name].append(b * 1000)
    finally:
        server.close()
    rtt = 2 * args.delay_ms
    rows: list[dict[str, Any]] = [
        {"contender": n, "setup_ms_median": median(setup[n]), "first_chunk_ms_median":
         median(first[n]), "setup_ms_all": setup[n], "first_chunk_ms_all": first[n]}
        for n in names]
    table = markdown(
        ["contender", "to setupComplete, cold (ms)", "in RTTs", "to first chunk, cold (ms)",
         "in RTTs", "warm (pool)"],
        [[r["contender"], f"{r['setup_ms_median']:.1f}", f"{r['setup_ms_median'] / rtt:.2f}",
          f"{r['first_chunk_ms_median']:.1f}", f"{r['first_chunk_ms_median'] / rtt:.2f}",
          "pending the pool issue"] for r in rows],
    )
    header = (f"Connect, cold: simulated {rtt:g} ms RTT (_delay_proxy.py, {args.delay_ms:g} ms "
              f"each way, TCP handshake counted as one RTT), TLS 1.3 to _fast_server.py; median of "
              f"{args.reps} runs per contender, rotated. Ideal: TCP 1 + TLS 1 + upgrade 1 + "
              f"setup 1 = 4 RTTs to setupComplete, 5 to the first chunk.")
    write_results("connect", args.quick, header, [table], {"rtt_ms": rtt, "results": rows})


if __name__ == "__main__":
    main()
