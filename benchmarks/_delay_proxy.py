"""A TCP proxy on 127.0.0.1 that delays every byte by a fixed time in each direction.

``python benchmarks/_delay_proxy.py --target PORT [--delay-ms 25]`` prints ``port ...`` then
``ready`` and forwards until its stdin closes. With 25 ms each way, every round trip through it
takes 50 ms more (a simulated 50 ms RTT); bytes keep their order and nothing is throttled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def forward() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        await asyncio.sleep(max(0.0, due - loop.time()))
        with contextlib.suppress(OSError):
            writer.write_eof()

    task = asyncio.ensure_future(forward())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await task
    except (ConnectionError, OSError):
        task.cancel()


async def handle(target: int, delay: float, r1: asyncio.StreamReader,
                 w1: asyncio.StreamWriter) -> None:
    try:
        r2, w2 = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        w1.close()
        return
    for w in (w1, w2):
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # the TCP handshake with the client already happened (no delay there); make the upstream
    # connect count as the first round trip instead
    await asyncio.sleep(2 * delay)
    with contextlib.suppress(Exception, asyncio.CancelledError):  # cancelled: at shutdown
        await asyncio.gather(pipe(r1, w2, delay), pipe(r2, w1, delay))
    for w in (w1, w2):
        w.close()


async def main(args: argparse.Namespace) -> None:
    delay = args.delay_ms / 1000
    server = await asyncio.start_server(lambda r, w: handle(args.target, delay, r, w),
                                        "127.0.0.1", 0)
    print(f"port {server.sockets[0].getsockname()[1]}")
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=25.0)
    asyncio.run(main(parser.parse_args()))
