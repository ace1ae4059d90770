"""The fake Live server in its own process, for benchmarks.

``python benchmarks/_server_proc.py [--tls] [--rtt SECONDS]`` prints ``url ...``, ``key ...``,
(``ca ...`` with --tls) then ``ready``, and serves until its stdin closes.

Its responder answers a user text ``"chunks N"`` with N text chunks, each carrying the server's
``time.monotonic_ns()`` at the moment it was handed to the socket writer, so clients can measure
per-chunk delivery latency (CLOCK_MONOTONIC is shared by processes on one machine). Any other
text gets the default fake model's reply.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import AsyncIterator

import trio

from gemini_ws.testing import FakeModel, UserTurn, open_fake_server

KEY = "bench-key"


async def stamped(turn: UserTurn) -> AsyncIterator[str]:
    words = turn.text.split()
    if len(words) == 2 and words[0] == "chunks":
        for i in range(int(words[1])):
            yield f"{time.monotonic_ns()} {i:06d} "
        return
    async for item in FakeModel(chunk_count=5)(turn):
        yield item


async def main(args: argparse.Namespace) -> None:
    async with open_fake_server(
        api_key=KEY,
        tls=args.tls,
        responder=stamped,
        default_modality="TEXT",
        connection_lifetime=args.lifetime,
        goaway_time_left=10.0,
        refuse_resume_while_old_open=not args.allow_overlap,
    ) as server:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"url {server.url}")
            print(f"key {server.api_key}")
            if server.ca_pem is not None:
                path = f"{tmp}/ca.pem"
                with open(path, "wb") as f:
                    f.write(server.ca_pem)
                print(f"ca {path}")
            print("ready", flush=True)
            await trio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--lifetime", type=float, default=None,
                        help="send goAway this many seconds into each connection")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="accept a resume while the session's old connection is open")
    trio.run(main, parser.parse_args())
