"""The fake Live server reproduces, on request, each hazard that broke the client.

Driven by a bare trio-websocket client on raw JSON (not ``gemini_ws.Client``), checking what
the server sent and what it recorded:

1. ``audioStreamEnd`` with no audio pending starts no model turn.
2. Zero-latency replies: ``TCP_NODELAY`` on every accepted socket, and ``instant_replies``.
3. ``goAway`` right after a handle with a short ``timeLeft``, then a close at the deadline.
4. A drop (abort or close 1011) while the client flushes its last messages.
5. A pool at its limit during a handover: resume refused while the old connection is open,
   and ``max_connections``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from gemini_ws import ConfigurationError
from gemini_ws.testing import FakeLiveServer, Fault, open_fake_server, split_text
from tests.test_fake_server_helpers import (
    MODEL,
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
DEADLINE = "Deadline expired before operation could complete."
QUOTA = "Resource has been exhausted (e.g. check quota)."
NOT_RESUMABLE = {"sessionResumptionUpdate": {"newHandle": "", "resumable": False}}


def audio(data: str = "AAAAAAAA") -> dict[str, Any]:
    return {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": data}}}


AUDIO_STREAM_END = {"realtimeInput": {"audioStreamEnd": True}}


async def read_handle(ws: WebSocketConnection) -> str:
    message = await recv(ws)
    update = message["sessionResumptionUpdate"]
    assert update["resumable"] is True and update["newHandle"]
    return str(update["newHandle"])


async def all_closed(server: FakeLiveServer) -> None:
    """Wait until the server finished every connection (its records are final then)."""
    for connection in server.connections:
        await connection.wait_closed()


async def send_all_until_closed(ws: WebSocketConnection, messages: list[dict[str, Any]]) -> int:
    """Send ``messages`` back to back (an exit flush); return how many sends succeeded."""
    sent = 0
    for message in messages:
        try:
            await send(ws, message)
        except ConnectionClosed:
            break
        sent += 1
    return sent


class RecordingStream(trio.abc.Stream):
    """A client transport that records every chunk ``receive_some`` returned.

    With ``hold`` set, sends are kept back until :meth:`release` writes them in one go (a
    client flushing several messages at once).
    """

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.reads: list[bytes] = []
        self.hold = False
        self._held: list[bytes] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.hold:
            self._held.append(bytes(data))
            return
        await self.inner.send_all(data)

    async def release(self) -> None:
        self.hold = False
        data, self._held = b"".join(self._held), []
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        self.reads.append(bytes(data))
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def connect_recording(
    server: FakeLiveServer,
) -> AsyncIterator[tuple[WebSocketConnection, RecordingStream]]:
    tcp = await trio.open_tcp_stream("127.0.0.1", server.port)
    stream = RecordingStream(tcp)
    try:
        async with trio.open_nursery() as nursery:
            # trio-websocket's hints name only SocketStream / SSLStream; any Stream works
            ws = await wrap_client_stream(
                nursery,
                stream,  # type: ignore[arg-type]
                f"127.0.0.1:{server.port}",
                PATH,
                extra_headers=[(b"x-goog-api-key", server.api_key.encode())],
            )
            try:
                yield ws, stream
            finally:
                with trio.move_on_after(2):
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


# ---------------------------------------------------------------------------------------------
# 1. audioStreamEnd with no audio pending


async def test_audio_stream_end_without_audio_starts_no_turn() -> None:
    async with open_fake_server(chunk_count=1) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup(sessionResumption={}))
                await send(ws, AUDIO_STREAM_END)
                await send(ws, {"realtime_input": {"audio_stream_end": True}})  # snake_case too
                await say(ws, "hi")
                # a turn for the audioStreamEnd would have sent its non-resumable update and a
                # "You said: " reply first: the next turn on the wire is the one for "hi"
                assert await recv(ws) == NOT_RESUMABLE
                messages = await read_turn(ws)
                assert turn_text(messages) == "You said: hi"
                await read_handle(ws)
            connection = server.connections[0]
            await connection.wait_closed()
        assert [t.text for t in connection.turns] == ["hi"]
        assert connection.turns[0].index == 0 and connection.turns[0].audio == b""
        assert connection.received[1:3] == [AUDIO_STREAM_END, AUDIO_STREAM_END]
        assert connection.sent[0] == {"setupComplete": {}}
        assert connection.sent[1] == NOT_RESUMABLE
        assert connection.messages_sent == 1 + len(messages) + 2


async def test_audio_stream_end_after_an_audio_turn_starts_no_second_turn() -> None:
    async with open_fake_server(chunk_count=1) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                await send(ws, audio())  # 6 bytes of PCM
                await send(ws, AUDIO_STREAM_END)  # ends that user turn
                assert turn_text(await read_turn(ws)) == "You said: [audio 0.00s]"
                await send(ws, AUDIO_STREAM_END)  # nothing pending now
                await say(ws, "next")
                assert turn_text(await read_turn(ws)) == "You said: next"
        connection = server.connections[0]
        assert [t.said for t in connection.turns] == ["[audio 0.00s]", "next"]
        assert connection.audio_bytes_received == 6


# ---------------------------------------------------------------------------------------------
# 2. zero-latency replies


async def test_every_accepted_socket_has_tcp_nodelay() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
            assert (await raw_upgrade(server, "/not/the/live/path"))[0] == 404
        assert [c.tcp_nodelay for c in server.connections] == [True, True]


async def turn_latency(ws: WebSocketConnection, text: str) -> float:
    """Seconds from sending a user turn to receiving its resumable handle."""
    start = trio.current_time()
    await say(ws, text)
    assert await recv(ws) == NOT_RESUMABLE
    assert len(await read_turn(ws)) == 8 + 2
    await read_handle(ws)
    return trio.current_time() - start


async def test_a_reply_of_small_frames_is_not_held_back_by_nagle() -> None:
    # Without TCP_NODELAY the frames after the first wait for the client's delayed ACK, at
    # least 40 ms on Linux, in every turn. The same reply from an instant_replies server goes
    # out in one write, which Nagle never holds: it is the baseline, measured in turns
    # interleaved with the ones under test so that machine load hits both alike.
    options: dict[str, Any] = {"chunk_count": 8}
    async with (
        open_fake_server(**options) as server,
        open_fake_server(instant_replies=True, **options) as baseline_server,
    ):
        with trio.fail_after(TIMEOUT * 2):
            async with connect(server) as ws, connect(baseline_server) as base:
                await setup(ws, **text_setup(sessionResumption={}))
                await setup(base, **text_setup(sessionResumption={}))
                paced: list[float] = []
                baseline: list[float] = []
                for i in range(16):
                    text = f"turn number {i} with a reply long enough for eight chunks"
                    paced.append(await turn_latency(ws, text))
                    baseline.append(await turn_latency(base, text))
    assert server.connections[0].tcp_nodelay
    if min(baseline[1:]) >= 0.015:
        pytest.skip(f"machine too loaded to see a 40 ms stall (baseline {min(baseline):.3f} s)")
    assert min(paced[1:]) < min(baseline[1:]) + 0.025, (paced, baseline)


async def test_instant_replies_write_the_whole_turn_in_one_read() -> None:
    async with open_fake_server(chunk_count=5, instant_replies=True) as server:
        with trio.fail_after(TIMEOUT):
            async with connect_recording(server) as (ws, stream):
                await setup(ws, **text_setup(sessionResumption={}))
                before = len(stream.reads)
                await say(ws, "hello there")
                assert await recv(ws) == NOT_RESUMABLE
                messages = await read_turn(ws)
                handle = await read_handle(ws)
                reads = [r for r in stream.reads[before:] if r]
        assert turn_text(messages) == "You said: hello there"
        assert len(messages) == 5 + 2
        # first update, every chunk, turnComplete and the handle came in one receive_some
        assert len(reads) == 1, [len(r) for r in reads]
        assert b'"turnComplete"' in reads[0] and handle.encode() in reads[0]
        connection = server.connections[0]
        assert connection.sent[1:] == [NOT_RESUMABLE, *messages, connection.sent[-1]]
        assert connection.sent[-1]["sessionResumptionUpdate"]["newHandle"] == handle


async def test_instant_replies_let_a_tool_call_out_at_once() -> None:
    tools = [{"functionDeclarations": [{"name": "get_time"}]}]
    async with open_fake_server(instant_replies=True) as server:
        with trio.fail_after(TIMEOUT):
            async with connect_recording(server) as (ws, stream):
                await setup(ws, **text_setup(tools=tools))
                await say(ws, "please call get_time")
                call = (await recv(ws))["toolCall"]["functionCalls"][0]
                assert call["name"] == "get_time"
                before = len(stream.reads)
                await send(
                    ws,
                    {
                        "toolResponse": {
                            "functionResponses": [{"id": call["id"], "response": {"t": 1}}]
                        }
                    },
                )
                messages = await read_turn(ws)
                reads = [r for r in stream.reads[before:] if r]
        assert turn_text(messages) == 'Tool results: get_time={"t":1}'
        assert len(reads) == 1


async def test_instant_replies_flush_what_was_sent_before_an_abort() -> None:
    async with open_fake_server(chunk_count=5, instant_replies=True) as server:
        server.inject(Fault.abort(at_message=5))  # inside the burst: after 3 chunks
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                await say(ws, "hello there")
                got = []
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        got.append(await recv(ws))
        assert info.value.reason is not None and info.value.reason.code == 1006
        connection = server.connections[0]
        assert connection.messages_sent == 4
        assert got == connection.sent[1:4]
        assert turn_text(got) == "".join(split_text("You said: hello there", 5)[:3])


def test_instant_replies_refuse_pacing() -> None:
    with pytest.raises(ConfigurationError, match="instant_replies"):
        FakeLiveServer(instant_replies=True, first_chunk_delay=0.1)
    with pytest.raises(ConfigurationError, match="instant_replies"):
        FakeLiveServer(instant_replies=True, chunk_interval=0.1)


# ---------------------------------------------------------------------------------------------
# 3. goAway right after a handle, then a close at the deadline


@pytest.mark.parametrize(
    ("close_code", "reason"),
    [(1011, DEADLINE), (1008, DEADLINE), (1000, "The operation was cancelled.")],
)
async def test_go_away_right_after_handle_then_close_at_deadline(
    close_code: int, reason: str
) -> None:
    fault = Fault.go_away_after_handle(0.3, close_code=close_code, reason=reason)
    async with open_fake_server(chunk_count=1) as server:
        server.inject(fault)
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup(sessionResumption={}))
                await say(ws, "hi")
                await recv(ws)
                await read_turn(ws)
                handle = await read_handle(ws)
                assert await recv(ws) == {"goAway": {"timeLeft": "0.3s"}}
                start = trio.current_time()
                closed = await expect_close(ws)
                elapsed = trio.current_time() - start
            connection = server.connections[0]
            await connection.wait_closed()
        assert (closed.code, closed.reason) == (close_code, reason)
        assert 0.25 <= elapsed < 1.5
        assert connection.sent[-2:] == [
            {"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}},
            {"goAway": {"timeLeft": "0.3s"}},
        ]
        assert connection.faults_fired == [fault]
        assert (connection.close_code, connection.close_reason, connection.closed_by) == (
            close_code,
            reason,
            "server",
        )


async def test_go_away_after_the_nth_handle_and_only_on_the_next_connection() -> None:
    async with open_fake_server(chunk_count=1) as server:
        server.inject(Fault.go_away_after_handle(0.05, handle=2))
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup(sessionResumption={}))
                await say(ws, "one")
                await recv(ws)
                await read_turn(ws)
                await read_handle(ws)
                await say(ws, "two")  # no goAway after handle 1: the next message is turn 2
                assert await recv(ws) == NOT_RESUMABLE
                await read_turn(ws)
                await read_handle(ws)
                assert await recv(ws) == {"goAway": {"timeLeft": "0.05s"}}
                assert (await expect_close(ws)).code == 1011
            async with connect(server) as ws:
                await setup(ws, **text_setup(sessionResumption={}))
                for text in ("one", "two"):
                    await say(ws, text)
                    await recv(ws)
                    await read_turn(ws)
                    await read_handle(ws)
                await say(ws, "three")
                assert await recv(ws) == NOT_RESUMABLE
        assert [len(c.faults_fired) for c in server.connections] == [1, 0]
        assert not any("goAway" in m for m in server.connections[1].sent)


async def test_go_away_after_next_handle_on_a_running_connection() -> None:
    async with open_fake_server(chunk_count=1) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup(sessionResumption={}))
                await say(ws, "one")
                await recv(ws)
                await read_turn(ws)
                await read_handle(ws)
                connection = server.connections[0]
                connection.go_away_after_next_handle(0.05, close_code=None)
                await say(ws, "two")
                await recv(ws)
                await read_turn(ws)
                handle = await read_handle(ws)
                assert await recv(ws) == {"goAway": {"timeLeft": "0.05s"}}
                await trio.sleep(0.2)  # past the deadline: close_code=None keeps it open
                assert connection.is_open
                await say(ws, "three")
                assert await recv(ws) == NOT_RESUMABLE
                assert turn_text(await read_turn(ws)) == "You said: three"
            await connection.wait_closed()
        assert connection.handles[1] == handle
        assert [m for m in connection.sent if "goAway" in m] == [{"goAway": {"timeLeft": "0.05s"}}]
        assert connection.closed_by == "client"


def test_go_away_after_handle_arguments_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        Fault.go_away_after_handle(-1)
    with pytest.raises(ConfigurationError):
        Fault.go_away_after_handle(1, handle=0)
    fault = Fault.go_away_after_handle(2, close_code=None)
    assert (fault.after_handle, fault.seconds, fault.closes, fault.at_message) == (
        1,
        2,
        False,
        None,
    )


# ---------------------------------------------------------------------------------------------
# 4. a drop during the client's exit flush


EXIT_FLUSH = [audio("AAAA"), audio("AAAA"), audio("AAAA"), AUDIO_STREAM_END]


@pytest.mark.parametrize("one_write", [False, True], ids=["message_by_message", "one_write"])
@pytest.mark.parametrize("n", [1, 2, 4])
async def test_abort_on_the_nth_client_message_after_setup(n: int, one_write: bool) -> None:
    fault = Fault.abort(on_client_message=n + 1)  # setup is client message 1
    async with open_fake_server() as server:
        server.inject(fault)
        with trio.fail_after(TIMEOUT):
            async with connect_recording(server) as (ws, stream):
                await setup(ws, **text_setup())
                stream.hold = one_write
                await send_all_until_closed(ws, EXIT_FLUSH)
                if one_write:
                    await stream.release()
                closed = await expect_close(ws)
            connection = server.connections[0]
            await connection.wait_closed()
        assert closed.code == 1006  # no close frame
        assert (connection.close_code, connection.closed_by) == (1006, None)
        assert connection.faults_fired == [fault]
        # the n-th message after setup was read, nothing after it, and it was not processed
        assert len(connection.received_raw) == n + 1
        assert json.loads(connection.received_raw[-1]) == EXIT_FLUSH[n - 1]
        assert connection.received == [connection.received[0], *EXIT_FLUSH[: n - 1]]
        assert connection.turns == []
        assert connection.sent == [{"setupComplete": {}}]


@pytest.mark.parametrize("n", [1, 4])
async def test_close_1011_on_the_nth_client_message_after_setup(n: int) -> None:
    fault = Fault.close(1011, "Internal error encountered.", on_client_message=n + 1)
    async with open_fake_server() as server:
        server.inject(fault)
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                await send_all_until_closed(ws, EXIT_FLUSH)
                closed = await expect_close(ws)
            connection = server.connections[0]
            await connection.wait_closed()
        assert (closed.code, closed.reason) == (1011, "Internal error encountered.")
        assert (connection.close_code, connection.closed_by) == (1011, "server")
        assert json.loads(connection.received_raw[n]) == EXIT_FLUSH[n - 1]
        # later messages may still arrive during the close handshake; none is processed
        assert connection.received == [connection.received[0], *EXIT_FLUSH[: n - 1]]
        assert connection.turns == []


# ---------------------------------------------------------------------------------------------
# 5. a pool at its limit during a handover


async def test_resume_refused_while_the_previous_connection_is_open() -> None:
    async with open_fake_server(chunk_count=1) as server:
        assert server.refuse_resume_while_old_open  # on by default
        server.inject(Fault.go_away_after_handle(0.5))
        with trio.fail_after(TIMEOUT):
            async with connect(server) as old:
                await setup(old, **text_setup(sessionResumption={}))
                await say(old, "remember me")
                await recv(old)
                await read_turn(old)
                handle = await read_handle(old)
                resume = {"setup": {"model": MODEL, "sessionResumption": {"handle": handle}}}
                assert await recv(old) == {"goAway": {"timeLeft": "0.5s"}}
                # handover before the old connection is closed: refused
                async with connect(server) as early:
                    await send(early, resume)
                    closed = await expect_close(early)
                assert (closed.code, closed.reason) == (1011, "Internal error encountered.")
                assert server.connections[0].is_open
            # the client closed the old connection: now the same handle resumes
            await server.connections[0].wait_closed()
            async with connect(server) as new:
                await send(new, resume)
                assert await recv(new) == {"setupComplete": {}}
                await send(
                    new,
                    {
                        "clientContent": {
                            "turns": [{"parts": [{"text": "who?"}]}],
                            "turnComplete": True,
                        }
                    },
                )
                await read_turn(new)
            await all_closed(server)
        first, refused, resumed = server.connections
        assert (refused.close_code, refused.closed_by) == (1011, "server")
        assert refused.session is None and refused.resumed_from is None
        assert resumed.resumed_from == handle and resumed.session is first.session
        assert first.session is not None and first.session.connections == [first, resumed]
        assert [c["parts"][0]["text"] for c in resumed.turns[0].history][:2] == [
            "remember me",
            "You said: remember me",
        ]


async def test_max_connections_refuses_the_next_setup_with_1011() -> None:
    async with open_fake_server(max_connections=2) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as a:
                await setup(a)
                async with connect(server) as spare:  # a warm spare: no setup, still counts
                    await server.wait_for_connections(2)
                    async with connect(server) as over:
                        await send(over, {"setup": {"model": MODEL}})
                        closed = await expect_close(over)
                    assert (closed.code, closed.reason) == (1011, QUOTA)
                    await setup(spare)  # the two under the limit are fine
            # both closed: there is room again
            async with connect(server) as again:
                await setup(again)
            await all_closed(server)
        assert [c.over_limit for c in server.connections] == [False, False, True, False]
        over_conn = server.connections[2]
        assert (over_conn.close_code, over_conn.closed_by) == (1011, "server")
        assert over_conn.session is None and over_conn.accepted


async def test_max_connections_close_right_after_the_upgrade() -> None:
    async with open_fake_server(max_connections=1, max_connections_refusal="close") as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as a:
                await setup(a)
                async with connect(server) as over:
                    closed = await expect_close(over)  # without sending anything
                await say(a, "still fine")
                await read_turn(a)
        assert (closed.code, closed.reason) == (1011, QUOTA)
        assert server.connections[1].received_raw == []
        assert server.connections[1].over_limit


async def test_max_connections_http_429() -> None:
    async with open_fake_server(max_connections=1, max_connections_refusal="http_429") as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as a:
                await setup(a)
                status, headers, body = await raw_upgrade(server, PATH + "?key=test-key")
            # the refused upgrade did not count: with a closed, there is room
            await server.connections[0].wait_closed()
            assert (await raw_upgrade(server, PATH + "?key=test-key"))[0] == 101
        assert status == 429 and headers["retry-after"] == "1"
        assert json.loads(body)["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert [(c.over_limit, c.rejected_status) for c in server.connections] == [
            (False, None),
            (True, 429),
            (False, None),
        ]


async def test_a_handover_connection_over_the_limit_is_refused() -> None:
    # At its limit (one connection), a client that opens the handover connection before
    # closing the old one gets the quota close, not the resume refusal.
    async with open_fake_server(chunk_count=1, max_connections=1) as server:
        server.inject(Fault.go_away_after_handle(1.0))
        with trio.fail_after(TIMEOUT):
            async with connect(server) as old:
                await setup(old, **text_setup(sessionResumption={}))
                await say(old, "hi")
                await recv(old)
                await read_turn(old)
                handle = await read_handle(old)
                assert "goAway" in await recv(old)
                async with connect(server) as new:
                    await send(
                        new, {"setup": {"model": MODEL, "sessionResumption": {"handle": handle}}}
                    )
                    closed = await expect_close(new)
            assert (closed.code, closed.reason) == (1011, QUOTA)
            await server.connections[0].wait_closed()
            async with connect(server) as new:
                await setup(new, sessionResumption={"handle": handle})
        assert server.connections[2].resumed_from == handle


def test_max_connections_arguments_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        FakeLiveServer(max_connections=-1)
    with pytest.raises(ConfigurationError):
        FakeLiveServer(max_connections_refusal="http_503")  # type: ignore[arg-type]
