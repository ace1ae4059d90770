"""Shared pieces of the benchmarks: the server subprocess, the three contenders' connect code,
CPU and RSS readings, percentiles and the results writer. Nothing here asserts on speed."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import ssl
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MODEL = "gemini-3.1-flash-live-preview"
PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def spawn(cmd: list[str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start a server script that prints ``name value`` lines, then ``ready``; returns the
    process and those values. The script serves until its stdin closes."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    info: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "ready":
            break
        name, _, value = line.strip().partition(" ")
        info[name] = value
    return proc, info


class FastServer:
    """benchmarks/_fast_server.py as a subprocess (``--procs`` accepting processes)."""

    def __init__(self, *, tls: bool = True, procs: int = 1) -> None:
        cmd = [sys.executable, str(HERE / "_fast_server.py"), "--procs", str(procs)]
        self.proc: subprocess.Popen[str] | None
        if tls:
            cmd.append("--tls")
        self.proc, info = spawn(cmd)
        self.port = int(info["port"])
        self.key = info["key"]
        self.ca = info.get("ca")
        self.pids = [int(p) for p in info["pids"].split()]
        self.tls = tls
        scheme = "wss" if tls else "ws"
        self.url = f"{scheme}://127.0.0.1:{self.port}"

    @classmethod
    def attach(cls, port: int, key: str, ca: str | None) -> FastServer:
        """The server a driver started, as its worker processes see it (from the options
        :func:`run_worker` passes): a worker neither owns nor stops it."""
        self = cls.__new__(cls)
        self.proc = None
        self.port, self.key, self.ca, self.tls, self.pids = port, key, ca, True, []
        self.url = f"wss://127.0.0.1:{port}"
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.ca is None:
            return None
        return ssl.create_default_context(cafile=self.ca)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the serving processes."""
        return sum(proc_cpu(pid) for pid in self.pids)

    def close(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(20)


# -- drivers and their worker processes (a fresh process per run: its CPU is one contender's) --


class WorkerFailed(Exception):
    """A worker process exited with an error (its stderr was printed); the message is the
    last line of it."""


def micro_arguments(name: str, description: str,
                    argv: list[str] | None) -> tuple[argparse.Namespace, int]:
    """The options of an in-process micro-benchmark (bench_decode, bench_tracing): ``--quick``,
    ``--rounds`` and ``--output`` (default ``results/NAME.json``, ``NAME-quick.json`` with
    ``--quick``). Returns the parsed options and the number of rounds (5 quick, else 21)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="few short rounds (smoke run)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"default: benchmarks/results/{name}.json ({name}-quick.json with --quick)",
    )
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = HERE / "results" / (f"{name}-quick.json" if args.quick else f"{name}.json")
    return args, args.rounds or (5 if args.quick else 21)


def add_worker_arguments(parser: argparse.ArgumentParser, names: list[str] | None) -> None:
    """The options :func:`run_worker` passes to a worker process."""
    parser.add_argument("--worker", choices=names)
    parser.add_argument("--port", type=int)
    parser.add_argument("--key")
    parser.add_argument("--ca")


def worker_server(args: argparse.Namespace) -> FastServer:
    """In a worker process: the driver's server, from the options it was given."""
    return FastServer.attach(args.port, args.key, args.ca)


def run_worker(script: str, worker: str, server: FastServer, *options: str,
               timeout: float = 600) -> dict[str, Any]:
    """Run *script* as the worker process of *worker* against *server*, with *options*; the
    JSON object it printed last. Raises :class:`WorkerFailed` when it failed."""
    proc = subprocess.run(
        [sys.executable, script, "--worker", worker, *options,
         "--port", str(server.port), "--key", server.key, "--ca", str(server.ca)],
        capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise WorkerFailed((proc.stderr.strip().splitlines() or [""])[-1])
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def run_contender(trio_workers: dict[str, Any], asyncio_workers: dict[str, Any], name: str,
                  *args: Any) -> Any:
    """Run contender *name*'s worker function under its own event loop."""
    if name in trio_workers:
        import trio

        return trio.run(trio_workers[name], *args)
    return asyncio.run(asyncio_workers[name](*args))


def pick_contenders(parser: argparse.ArgumentParser, spec: str, names: list[str]) -> list[str]:
    """The contenders a comma-separated ``--contenders`` option names (all known ones)."""
    picked = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = sorted(set(picked) - set(names))
    if unknown:
        parser.error(f"unknown contenders {unknown}; choose from {names}")
    return picked


def rotated(names: list[str], r: int) -> list[str]:
    """*names* in round *r*'s order: who goes first rotates from round to round."""
    k = r % len(names)
    return names[k:] + names[:k]


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def self_cpu() -> float:
    """CPU seconds (user + system, all threads) of this process, at nanosecond resolution
    (``os.times`` counts 10 ms ticks: too coarse for a few thousand chunks)."""
    return time.process_time()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def text_stamp(text: str) -> int:
    return int(text.split(" ", 1)[0])


def pcm_stamp(pcm: bytes) -> int:
    return int(struct.unpack_from("<Q", pcm)[0])


def b64_stamp(data: str) -> int:
    return pcm_stamp(base64.b64decode(data[:12]))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def genai_client(server: FastServer) -> Any:
    """A google-genai client pointed at the server (wss; PROTOCOL.md 1.3 recipe a)."""
    from google import genai
    from google.genai import types

    return genai.Client(
        api_key=server.key,
        http_options=types.HttpOptions(
            base_url=f"https://127.0.0.1:{server.port}",
            async_client_args={"ssl": server.ssl_context()},
        ),
    )


def machine() -> dict[str, Any]:
    import google.genai
    import trio
    import trio_websocket

    import gemini_ws

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "gemini_ws": getattr(gemini_ws, "__version__", "?"),
        "google-genai": google.genai.__version__,
        "trio": trio.__version__,
        "trio-websocket": trio_websocket.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def write_results(name: str, quick: bool, header: str, tables: list[str],
                  data: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if quick else ""
    data = {"setup": header, "machine": machine(), **data}
    (RESULTS / f"{name}{suffix}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}{suffix}.md").write_text(header + "\n\n" + "\n\n".join(tables) + "\n")
    print(header)
    print("\n\n".join(tables))


def markdown(columns: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or ("---" + "|---:" * (len(columns) - 1))
    lines = ["| " + " | ".join(columns) + " |", "|" + align + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
