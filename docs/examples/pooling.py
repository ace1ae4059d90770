"""Warm spares and connection limits: prewarm, warm and cold checkouts, FIFO waiters.

Against the built-in fake Live server (no key needed): ``python3 docs/examples/pooling.py``.
"""

from __future__ import annotations

import trio

from gemini_ws import Client, LiveConfig, ServerContent
from gemini_ws.testing import open_fake_server

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])


async def main() -> None:
    async with open_fake_server(chunk_count=3, chunk_interval=0.02) as server:
        print(f"using the built-in fake Live server at {server.url} (no key needed)")
        async with Client(
            api_key=server.api_key,
            base_url=server.url,
            pool_size=2,  # keep two warm spares
            max_connections=3,  # never more than three connections in all
        ) as client:
            print(f"spares ready: {await client.prewarm(2)}; {client.pool!r}")

            async with client.stream(MODEL, config=TEXT) as s:
                stats = s.statistics()
                print(
                    f"warm stream: was_spare={s.connection.was_spare}, setupComplete after "
                    f"{stats.time_to_setup_complete * 1000:.1f} ms"
                )

            order: list[int] = []

            async def user(i: int) -> None:
                async with client.stream(MODEL, config=TEXT) as s:
                    order.append(i)
                    await s.send_text(f"user {i}")
                    async for msg in s.turn():
                        if isinstance(msg, ServerContent) and msg.turn_complete:
                            break

            with trio.fail_after(10):
                async with trio.open_nursery() as nursery:
                    for i in range(6):
                        nursery.start_soon(user, i)
                        await trio.lowlevel.checkpoint()  # arrive in order
                    await trio.sleep(0.01)
                    print(f"while busy: {client.pool!r}")
            print(f"sessions opened in this order: {order}")

            stats = client.pool.statistics()
            print(
                f"warm checkouts: {stats.warm_checkouts}, cold: {stats.cold_checkouts}, "
                f"timeouts: {stats.timeouts}, waiting: {stats.waiting}"
            )
            print(f"spares after refill: {await client.prewarm(2)}")


if __name__ == "__main__":
    trio.run(main)
