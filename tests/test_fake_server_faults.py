"""The fake Live server: fault injection, garbage input and shutdown."""

from __future__ import annotations

import json
import math

import pytest
import trio
from trio_websocket import ConnectionClosed

from gemini_ws import ConfigurationError
from gemini_ws.testing import Fault, open_fake_server
from tests.test_fake_server_helpers import (
    TIMEOUT,
    connect,
    expect_close,
    raw_upgrade,
    read_turn,
    recv,
    say,
    send,
    setup,
    text_setup,
    turn_text,
)

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


async def test_abort_at_message() -> None:
    async with open_fake_server() as server:
        server.inject(Fault.abort(at_message=2))
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                await say(ws, "hi")
                closed = await expect_close(ws)
            assert closed.code == 1006
            connection = server.connections[0]
            await connection.wait_closed()
            assert (connection.close_code, connection.closed_by) == (1006, None)
            assert connection.messages_sent == 1
            assert connection.faults_fired == [Fault.abort(at_message=2)]
            # only the next connection was affected
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                await say(ws, "hi")
                assert turn_text(await read_turn(ws)) == "You said: hi"


async def test_abort_on_client_message() -> None:
    async with open_fake_server() as server:
        server.inject(Fault.abort(on_client_message=2))
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                await say(ws, "hi")
                assert (await expect_close(ws)).code == 1006
        assert len(server.connections[0].received_raw) == 2
        assert server.connections[0].turns == []


async def test_close_at_setup() -> None:
    async with open_fake_server() as server:
        server.inject(Fault.close(1011, "The service is currently unavailable.", at_message=1))
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await send(ws, {"setup": {"model": "models/gemini-2.0-flash-live-001"}})
                closed = await expect_close(ws)
        assert (closed.code, closed.reason) == (1011, "The service is currently unavailable.")
        await server.connections[0].wait_closed()
        assert server.connections[0].close_code == 1011


async def test_close_reason_is_cut_to_123_bytes() -> None:
    async with open_fake_server() as server:
        server.inject(Fault.close(1008, "ü" * 100, after_message=1))
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                closed = await expect_close(ws)
        assert closed.code == 1008
        assert closed.reason == "ü" * 61


async def test_stall_stops_pongs_and_output() -> None:
    async with open_fake_server(close_timeout=0.5) as server:
        server.inject(Fault.stall(after_message=1))
        with trio.fail_after(TIMEOUT):
            async with connect(server, close_timeout=0.1) as ws:
                await setup(ws, **text_setup())
                await say(ws, "hello?")
                with trio.move_on_after(0.3) as heartbeat:
                    await ws.ping(b"are you there")
                assert heartbeat.cancelled_caught, "a stalled server must not answer pings"
                with trio.move_on_after(0.1) as nothing:
                    await ws.get_message()
                assert nothing.cancelled_caught
                connection = server.connections[0]
                assert connection.stalled
            # the client gave up and dropped TCP: the fake notices
            await connection.wait_closed()
        assert connection.turns == []


async def test_delay_pongs() -> None:
    async with open_fake_server() as server:
        server.inject(Fault.delay_pongs(0.2))
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                start = trio.current_time()
                await ws.ping(b"1")
                assert trio.current_time() - start >= 0.2
                # messages are not held back meanwhile
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(ws.ping, b"2")
                    await say(ws, "fast")
                    start = trio.current_time()
                    assert turn_text(await read_turn(ws)) == "You said: fast"
                    assert trio.current_time() - start < 0.15


async def test_pongs_dropped_for_good() -> None:
    async with open_fake_server(chunk_count=1) as server:
        server.inject(Fault.delay_pongs(math.inf))
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                with trio.move_on_after(0.2) as unanswered:
                    await ws.ping(b"1")
                assert unanswered.cancelled_caught
                await say(ws, "still talking")
                assert turn_text(await read_turn(ws)) == "You said: still talking"


async def test_malformed_and_unknown_frames_are_inserted() -> None:
    async with open_fake_server(chunk_count=1) as server:
        server.inject(Fault.malformed_json(at_message=2), Fault.unknown_message(after_message=1))
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                assert await recv(ws) == {
                    "futureFeatureUpdate": {"detail": "unknown to this client", "level": 3}
                }
                await say(ws, "hi")
                raw = await ws.get_message()
                assert isinstance(raw, bytes)
                with pytest.raises(json.JSONDecodeError):
                    json.loads(raw)
                # the real message 2 still follows
                assert turn_text(await read_turn(ws)) == "You said: hi"
        assert server.connections[0].messages_sent == 4


async def test_oversized_frame() -> None:
    size = 2 * 2**20
    async with open_fake_server() as server:
        server.inject(Fault.oversized_frame(size, after_message=1), connections=2)
        with trio.fail_after(TIMEOUT):
            async with connect(server, max_message_size=4 * 2**20) as ws:
                await setup(ws)
                raw = await ws.get_message()
                assert isinstance(raw, bytes) and len(raw) == size
                assert set(json.loads(raw)["serverContent"]["modelTurn"]["parts"][0]) == {"text"}
            # a client with the usual 1 MiB limit closes with 1009
            async with connect(server) as ws:
                await setup(ws)
                with pytest.raises(ConnectionClosed) as info:
                    await ws.get_message()
                assert info.value.reason is not None and info.value.reason.code == 1009


async def test_delay_holds_a_message_back() -> None:
    async with open_fake_server() as server:
        server.inject(Fault.delay(0.2, at_message=1))
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                start = trio.current_time()
                await setup(ws)
                assert trio.current_time() - start >= 0.2


@pytest.mark.parametrize("status", [401, 403, 429, 503])
async def test_reject_upgrade(status: int) -> None:
    async with open_fake_server() as server:
        server.inject(Fault.reject_upgrade(status), connections=2)
        with trio.fail_after(TIMEOUT):
            for _ in range(2):
                got, headers, body = await raw_upgrade(server, PATH)
                assert got == status
                assert json.loads(body)["error"]["code"] == status
                assert ("retry-after" in headers) == (status in (429, 503))
            got, _headers, _body = await raw_upgrade(server, PATH)
            assert got == 101
        assert [c.rejected_status for c in server.connections] == [status, status, None]


async def test_faults_for_every_connection() -> None:
    async with open_fake_server(faults=[Fault.close(1011, at_message=1)]) as server:
        server.inject(Fault.reject_upgrade(503), connections=None)
        with trio.fail_after(TIMEOUT):
            for _ in range(3):
                assert (await raw_upgrade(server, PATH))[0] == 503
        assert all(len(c.faults) == 2 for c in server.connections)


def test_fault_arguments_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        Fault.abort(at_message=1, after_message=1)
    with pytest.raises(ConfigurationError):
        Fault.abort(at_message=0)
    with pytest.raises(ConfigurationError):
        Fault.reject_upgrade(101)
    with pytest.raises(ConfigurationError):
        Fault.oversized_frame(10)
    with pytest.raises(ConfigurationError):
        Fault.delay_pongs(-1)
    assert Fault.stall().at_message == 1


# ---------------------------------------------------------------------------------------------
# garbage never crashes the server


async def test_garbage_input_only_ends_its_own_connection() -> None:
    async with open_fake_server(
        max_message_size=10_000, chunk_count=20, chunk_interval=0.02
    ) as server:
        with trio.fail_after(TIMEOUT):
            # a connection held open meanwhile keeps working
            async with connect(server) as survivor:
                await setup(survivor, **text_setup())

                # not HTTP at all
                stream = await trio.open_tcp_stream("127.0.0.1", server.port)
                async with stream:
                    await stream.send_all(b"\x00\xff garbage \r\n\r\n")
                    while await stream.receive_some():
                        pass
                # connect and hang up at once
                stream = await trio.open_tcp_stream("127.0.0.1", server.port)
                await stream.aclose()
                # a plain HTTP request, no upgrade
                stream = await trio.open_tcp_stream("127.0.0.1", server.port)
                async with stream:
                    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    response = b""
                    while chunk := await stream.receive_some():
                        response += chunk
                    assert response.startswith(b"HTTP/1.1 4")

                # junk WebSocket frames after a good upgrade
                stream = await trio.open_tcp_stream("127.0.0.1", server.port)
                async with stream:
                    request = (
                        f"GET {PATH}?key=test-key HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n"
                    )
                    await stream.send_all(request.encode())
                    await stream.receive_some()
                    await stream.send_all(b"\xff" * 64)
                    while await stream.receive_some():
                        pass

                # a message over the server's limit: 1009
                async with connect(server) as ws:
                    await setup(ws)
                    await ws.send_message("x" * 20_000)
                    assert (await expect_close(ws)).code == 1009

                # abrupt disconnect in the middle of a turn
                stream_holder = []
                async with connect(server) as ws:
                    await setup(ws, **text_setup())
                    await say(ws, "a long reply please")
                    await recv(ws)
                    stream_holder.append(ws)
                    # drop TCP under the WebSocket (no close frame)
                    ws._stream.socket.close()  # type: ignore[attr-defined]
                dropped = server.connections[-1]
                await dropped.wait_closed()
                assert dropped.close_code == 1006

                await say(survivor, "still fine?")
                assert turn_text(await read_turn(survivor)) == "You said: still fine?"
            async with connect(server) as ws:
                await setup(ws)
        assert server.errors == []


# ---------------------------------------------------------------------------------------------
# shutdown


async def test_shutdown_closes_connections_promptly() -> None:
    results: dict[str, int] = {}

    async def hold(server_ready: trio.Event, name: str, stall: bool, server: object) -> None:
        async with connect(server) as ws:  # type: ignore[arg-type]
            await setup(ws)
            server_ready.set()
            results[name] = (await expect_close(ws)).code

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            async with open_fake_server(close_timeout=3) as server:
                ready = trio.Event()
                nursery.start_soon(hold, ready, "idle", False, server)
                await ready.wait()
                server.inject(Fault.stall(after_message=1))
                ready = trio.Event()
                nursery.start_soon(hold, ready, "stalled", True, server)
                await ready.wait()
                await server.connections[1].wait_sent(1)
                start = trio.current_time()
            elapsed = trio.current_time() - start
    assert elapsed < 1.0  # the stalled connection is aborted, not waited for
    assert results == {"idle": 1001, "stalled": 1006}
    assert [c.close_code for c in server.connections] == [1001, 1006]
