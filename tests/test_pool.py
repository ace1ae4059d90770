"""The connection pool: warm spares, limits with FIFO waiters, lazy expiry, dead spares, and
cancellation at every stage of a checkout leaving the counts right."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from gemini_ws import Client, ConfigurationError, LiveConfig, PoolTimeoutError, ServerContent
from gemini_ws.testing import Fault, open_fake_server

from .conftest import TEST_KEY

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])


async def one_turn(client: Client, text: str = "hi") -> str:
    async with client.stream(MODEL, config=TEXT) as s:
        await s.send_text(text)
        return "".join([m.text async for m in s.turn() if isinstance(m, ServerContent)])


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.005)


async def test_prewarm_then_warm_checkout_and_refill(fake_server: Any) -> None:
    async with Client(api_key=TEST_KEY, base_url=fake_server.url, pool_size=2) as client:
        assert await client.prewarm(2) == 2
        stats = client.pool.statistics()
        assert (stats.idle, stats.active) == (2, 0)
        assert repr(client.pool) == (
            "<ConnectionPool: 0 active, 2 idle, 0 connecting, 0 waiting>"
        )
        with trio.fail_after(10):
            async with client.stream(MODEL, config=TEXT) as s:
                assert s.connection.was_spare
                assert client.pool.statistics().active == 1
                await wait_for(lambda: client.pool.statistics().idle == 2)  # refilled
                await s.send_text("warm")
                assert "warm" in "".join(
                    [m.text async for m in s.turn() if isinstance(m, ServerContent)]
                )
        stats = client.pool.statistics()
        assert stats.warm_checkouts == 1 and stats.cold_checkouts == 0
        assert stats.active == 0
    # spares had their upgrade done but never sent setup
    spares = [c for c in fake_server.connections if c.setup is None]
    assert len(spares) == 2


async def test_pool_size_zero_opens_on_demand(client: Client) -> None:
    with trio.fail_after(10):
        assert "hello" in await one_turn(client, "hello")
    stats = client.pool.statistics()
    assert (stats.cold_checkouts, stats.warm_checkouts, stats.idle) == (1, 0, 0)


async def test_dead_spare_is_discarded_and_replaced_unseen(fake_server: Any) -> None:
    async with Client(api_key=TEST_KEY, base_url=fake_server.url, pool_size=1) as client:
        await client.prewarm(1)
        fake_server.connections[0].abort()
        (conn, _) = client.pool._idle[0]
        await wait_for(lambda: not conn.is_open)
        with trio.fail_after(10):
            assert "still" in await one_turn(client, "still works")
        stats = client.pool.statistics()
    assert stats.discarded_dead == 1 and stats.cold_checkouts == 1


async def test_idle_spares_expire_lazily(fake_server: Any) -> None:
    async with Client(
        api_key=TEST_KEY, base_url=fake_server.url, pool_size=1, idle_timeout=0.1
    ) as client:
        await client.prewarm(1)
        await trio.sleep(0.2)
        assert client.pool.statistics().expired == 0, "no reaper task: expiry is lazy"
        with trio.fail_after(10):
            await one_turn(client)
        stats = client.pool.statistics()
    assert stats.expired == 1 and stats.cold_checkouts == 1


async def test_fifty_streams_with_ten_connections_fifo_and_no_deadlock() -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2, chunk_interval=0.005) as server:
        async with Client(
            api_key=TEST_KEY, base_url=server.url, max_connections=10, pool_size=2
        ) as client:
            peak = 0
            order: list[int] = []

            async def user(i: int) -> None:
                nonlocal peak
                async with client.stream(MODEL, config=TEXT) as s:
                    order.append(i)
                    stats = client.pool.statistics()
                    peak = max(peak, stats.active + stats.idle + stats.connecting)
                    await s.send_text(f"user {i}")
                    text = "".join(
                        [m.text async for m in s.turn() if isinstance(m, ServerContent)]
                    )
                    assert text == f"You said: user {i}"

            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    for i in range(50):
                        nursery.start_soon(user, i)
                        await trio.sleep(0)  # start in order
            stats = client.pool.statistics()
    assert sorted(order) == list(range(50))
    assert peak <= 10
    assert stats.waiting == 0 and stats.active == 0
    # FIFO: the first ten went first, and nobody who arrived later overtook a waiter by much
    assert set(order[:10]) == set(range(10))


async def test_waiters_are_served_first_in_first_out(fake_server: Any) -> None:
    async with Client(api_key=TEST_KEY, base_url=fake_server.url, max_connections=1) as client:
        served: list[str] = []
        release_first = trio.Event()

        async def holder() -> None:
            async with client.stream(MODEL, config=TEXT):
                served.append("holder")
                await release_first.wait()

        async def waiter(name: str) -> None:
            async with client.stream(MODEL, config=TEXT):
                served.append(name)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(holder)
                await wait_for(lambda: served == ["holder"])
                for name in ("a", "b", "c"):
                    nursery.start_soon(waiter, name)
                    count = "abc".index(name) + 1
                    await wait_for(lambda c=count: client.pool.statistics().waiting == c)
                assert "3 waiting" in repr(client.pool)
                release_first.set()
    assert served == ["holder", "a", "b", "c"]


async def test_pool_timeout_is_raised(fake_server: Any) -> None:
    async with Client(
        api_key=TEST_KEY, base_url=fake_server.url, max_connections=1, pool_timeout=0.2
    ) as client:
        with trio.fail_after(10):
            async with client.stream(MODEL, config=TEXT):
                with pytest.raises(PoolTimeoutError, match=r"0\.2 s"):
                    async with client.stream(MODEL, config=TEXT):
                        pass
        stats = client.pool.statistics()
    assert stats.timeouts == 1 and stats.waiting == 0 and stats.active == 0


async def test_cancel_while_waiting_for_a_slot_leaves_counts_right(fake_server: Any) -> None:
    async with Client(api_key=TEST_KEY, base_url=fake_server.url, max_connections=1) as client:
        with trio.fail_after(10):
            async with client.stream(MODEL, config=TEXT):
                with trio.move_on_after(0.1):
                    async with client.stream(MODEL, config=TEXT):
                        raise AssertionError("no slot should be free")
                assert client.pool.statistics().waiting == 0
            assert "ok" in await one_turn(client, "ok")
        stats = client.pool.statistics()
    assert (stats.active, stats.idle, stats.connecting, stats.waiting) == (0, 0, 0, 0)


async def test_cancel_while_connecting_gives_the_slot_back(silent_port: int) -> None:
    async with Client(
        api_key=TEST_KEY, base_url=f"ws://127.0.0.1:{silent_port}", max_connections=1
    ) as client:
        for _ in range(3):  # would deadlock on the second round if the slot leaked
            with trio.move_on_after(0.1):
                async with client.stream(MODEL, config=TEXT):
                    raise AssertionError("the silent server never upgrades")
            stats = client.pool.statistics()
            assert (stats.active, stats.connecting, stats.waiting) == (0, 0, 0)


async def test_cancel_during_setup_releases_the_connection() -> None:
    async with open_fake_server(api_key=TEST_KEY) as server:
        server.inject(Fault.delay(5.0, at_message=1))
        async with Client(api_key=TEST_KEY, base_url=server.url, max_connections=1) as client:
            with trio.move_on_after(0.2):
                async with client.stream(MODEL, config=TEXT):
                    raise AssertionError("setupComplete is held back")
            assert client.pool.statistics().active == 0
            with trio.fail_after(10):
                assert "again" in await one_turn(client, "again")


async def test_failing_spares_are_counted_not_raised(fake_server: Any) -> None:
    fake_server.inject(Fault.reject_upgrade(503), connections=2)
    async with Client(api_key=TEST_KEY, base_url=fake_server.url, pool_size=2) as client:
        await client.prewarm(2)
        stats = client.pool.statistics()
        assert stats.spare_failures == 2 and stats.idle == 0
        with trio.fail_after(10):
            assert "fine" in await one_turn(client, "fine")


def test_bad_pool_options_are_configuration_errors() -> None:
    for kwargs in (
        {"pool_size": -1},
        {"max_connections": 0},
        {"pool_size": 3, "max_connections": 2},
        {"idle_timeout": 0},
        {"pool_timeout": -1},
    ):
        with pytest.raises(ConfigurationError):
            Client(api_key=TEST_KEY, base_url="ws://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


async def test_a_waiting_checkout_ends_promptly_when_the_client_closes(fake_server: Any) -> None:
    outcome: list[BaseException] = []

    async def waiter(client: Client) -> None:
        try:
            async with client.stream(MODEL, config=TEXT):
                pass
        except ConfigurationError as exc:
            outcome.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as outer:
            async with Client(
                api_key=TEST_KEY, base_url=fake_server.url, max_connections=1
            ) as client:
                async with client.stream(MODEL, config=TEXT):
                    outer.start_soon(waiter, client)
                    await wait_for(lambda: client.pool.statistics().waiting == 1)
                    await client.pool.aclose()
                    await wait_for(lambda: bool(outcome), timeout=1.0)  # not at pool_timeout
    (error,) = outcome
    assert "closed" in str(error)
