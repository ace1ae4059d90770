"""Warm spares: time to first chunk cold versus with a warm spare, and the goAway handover gap
with and without a spare, under a simulated 50 ms round trip.

``python benchmarks/bench_pool.py [--quick] [--reps R] [--delay-ms MS]``

* Time to first chunk: from ``client.stream(...)`` to the first text chunk of a reply asked for
  at once, through benchmarks/_delay_proxy.py (25 ms each way) to benchmarks/_fast_server.py
  over TLS. Cold: ``pool_size=0``. Warm: ``pool_size=1`` after ``prewarm(1)``. Runs alternated.
* Handover gap: the gemini_ws.testing fake server (its own process, TLS, behind the same proxy)
  sends goAway one second into each connection; the stream (``reconnect=True``) hands over at
  the next quiet moment and reports ``SessionResumed.gap``: the time in which nothing could be
  sent or received. With a spare: ``pool_size=1``; without: ``pool_size=0``.

Targets (issue): warm time to first chunk at most a third of cold; handover gap at most one
round trip with a spare. Results: benchmarks/results/pool.json and .md.
"""

from __future__ import annotations

import argparse
import ssl
import subprocess
import sys
import time
from typing import Any

import trio
from _common import HERE, MODEL, FastServer, markdown, median, spawn, write_results

from gemini_ws import Client, LiveConfig, ReconnectPolicy, ServerContent, SessionResumed

TEXT = LiveConfig(response_modalities=["TEXT"])


class Proxy:
    """benchmarks/_delay_proxy.py in front of *target_port*."""

    def __init__(self, target_port: int, delay_ms: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_delay_proxy.py"), "--target", str(target_port),
             "--delay-ms", str(delay_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline().split()[1])
        assert self.proc.stdout.readline().strip() == "ready"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


class FakeServer:
    """benchmarks/_server_proc.py (the gemini_ws.testing fake) with goAway after 1 s."""

    def __init__(self, allow_overlap: bool = False) -> None:
        extra = ["--allow-overlap"] if allow_overlap else []
        self.proc, info = spawn(
            [sys.executable, str(HERE / "_server_proc.py"), "--tls", "--lifetime", "1.0", *extra])
        self.port = int(info["url"].rsplit(":", 1)[1])
        self.key = info["key"]
        self.ca = info["ca"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


async def time_to_first_chunk(url: str, key: str, ctx: ssl.SSLContext, warm: bool) -> float:
    async with Client(api_key=key, base_url=url, ssl_context=ctx,
                      pool_size=1 if warm else 0) as client:
        if warm:
            assert await client.prewarm(1) == 1
        t0 = time.perf_counter()
        async with client.stream(MODEL, config=TEXT) as s:
            await s.send_text("chunks 1")
            async for msg in s.turn():
                if isinstance(msg, ServerContent) and msg.text:
                    return time.perf_counter() - t0
    raise AssertionError("no chunk")


async def handover_gap(url: str, key: str, ctx: ssl.SSLContext, warm: bool,
                       overlap: bool = False) -> float:
    policy = ReconnectPolicy(close_old_first=not overlap)
    async with Client(api_key=key, base_url=url, ssl_context=ctx,
                      pool_size=1 if warm else 0) as client:
        if warm:
            await client.prewarm(1)
        async with client.stream(MODEL, config=TEXT, reconnect=policy) as s:
            await s.send_text("hello")  # a turn, so that the server gives a handle
            with trio.fail_after(20):
                async for msg in s:
                    if isinstance(msg, SessionResumed):
                        assert msg.warm == warm
                        return msg.gap
    raise AssertionError("no handover")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--delay-ms", type=float, default=25.0, help="each way")
    args = parser.parse_args()
    if args.quick:
        args.reps = 2
    rtt_ms = 2 * args.delay_ms
    ttfc: dict[bool, list[float]] = {False: [], True: []}
    gap: dict[bool, list[float]] = {False: [], True: []}
    overlapped: list[float] = []
    fast = FastServer(tls=True)
    fake = FakeServer()
    lenient = FakeServer(allow_overlap=True)
    proxies = [Proxy(fast.port, args.delay_ms), Proxy(fake.port, args.delay_ms),
               Proxy(lenient.port, args.delay_ms)]
    try:
        fast_ctx = fast.ssl_context()
        assert fast_ctx is not None
        fake_ctx = ssl.create_default_context(cafile=fake.ca)
        lenient_ctx = ssl.create_default_context(cafile=lenient.ca)
        fast_url = f"wss://127.0.0.1:{proxies[0].port}"
        fake_url = f"wss://127.0.0.1:{proxies[1].port}"
        lenient_url = f"wss://127.0.0.1:{proxies[2].port}"
        for r in range(args.reps):
            for warm in ((False, True) if r % 2 == 0 else (True, False)):
                ttfc[warm].append(
                    trio.run(time_to_first_chunk, fast_url, fast.key, fast_ctx, warm) * 1000)
                gap[warm].append(trio.run(handover_gap, fake_url, fake.key, fake_ctx, warm) * 1000)
            overlapped.append(
                trio.run(handover_gap, lenient_url, lenient.key, lenient_ctx, True, True) * 1000)
    finally:
        for proxy in proxies:
            proxy.close()
        fast.close()
        fake.close()
        lenient.close()
    rows: list[dict[str, Any]] = []
    for warm in (False, True):
        rows.append({
            "pool": "warm spare" if warm else "cold",
            "ttfc_ms_median": median(ttfc[warm]),
            "gap_ms_median": median(gap[warm]),
            "ttfc_ms_all": ttfc[warm],
            "gap_ms_all": gap[warm],
        })
    table = markdown(
        ["connection", "time to first chunk (ms)", "in RTTs", "handover gap (ms)", "in RTTs"],
        [[r["pool"], f"{r['ttfc_ms_median']:.1f}", f"{r['ttfc_ms_median'] / rtt_ms:.2f}",
          f"{r['gap_ms_median']:.1f}", f"{r['gap_ms_median'] / rtt_ms:.2f}"] for r in rows],
    )
    overlap_ms = median(overlapped)
    table += (
        f"\n\nHandover gap with a warm spare and `ReconnectPolicy(close_old_first=False)` (the "
        f"old connection's close overlapped with the resuming setup; the server must allow a "
        f"resume while the old connection is open): {overlap_ms:.1f} ms = "
        f"{overlap_ms / rtt_ms:.2f} RTT."
    )
    ratio = rows[1]["ttfc_ms_median"] / rows[0]["ttfc_ms_median"]
    summary = (
        f"warm / cold time to first chunk = {ratio:.2f} (target <= 0.33); handover gap with a "
        f"spare = {rows[1]['gap_ms_median'] / rtt_ms:.2f} RTT with the safe default, "
        f"{overlap_ms / rtt_ms:.2f} RTT overlapped (target <= 1)"
    )
    header = (f"Simulated RTT {rtt_ms:.0f} ms (benchmarks/_delay_proxy.py), TLS, medians of "
              f"{args.reps} alternated runs.")
    write_results("pool", args.quick, header, [table, summary],
                  {"rtt_ms": rtt_ms, "rows": rows, "overlapped_gap_ms_all": overlapped})


if __name__ == "__main__":
    main()
