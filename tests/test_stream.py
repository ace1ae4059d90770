"""The client core against the fake Live server: turns, concurrency, pause/resume, cancel,
heartbeat, close codes and the one error hierarchy, as a user sees them."""

from __future__ import annotations

import base64
import gc
import socket
from typing import Any

import pytest
import trio

import gemini_ws
from gemini_ws import (
    Client,
    ConnectionLostError,
    GeminiWSError,
    HeartbeatTimeoutError,
    InvalidArgumentError,
    LiveConfig,
    PolicyViolationError,
    ProtocolError,
    RealtimeInput,
    ServerClosedError,
    ServerContent,
    ServerInternalError,
    SetupRejectedError,
    StreamClosedError,
    ToolCall,
)
from gemini_ws.testing import Fault, open_fake_server

from ._recording_server import open_recording_server
from .conftest import TEST_KEY, instrumented
from .test_resumption import wait_for_handle

MODEL = "gemini-3.1-flash-live-preview"
#: A model that takes clientContent mid-session (3.1 takes it as initial history only).
MODEL_25 = "gemini-2.5-flash-native-audio-preview-12-2025"
TEXT = LiveConfig(response_modalities=["TEXT"])


async def reply_text(s: gemini_ws.LiveStream) -> str:
    parts = []
    async for msg in s.turn():
        if isinstance(msg, ServerContent):
            parts.append(msg.text)
    return "".join(parts)


def open_sockets() -> int:
    import socket

    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, socket.socket) and o.fileno() != -1)


# --- turns -------------------------------------------------------------------------------


async def test_one_text_turn_streams_chunks_in_order(client: Client, fake_server: Any) -> None:
    with trio.fail_after(10):
        async with client.stream(MODEL, config=TEXT) as s:
            await s.send_text("Hello there")
            messages = [m async for m in s.turn()]
    contents = [m for m in messages if isinstance(m, ServerContent)]
    chunks = [m for m in contents if m.model_turn is not None]
    assert len(chunks) >= 2, "the fake model streams several chunks"
    assert "Hello there" in "".join(c.text for c in chunks)
    assert contents[-2].generation_complete and contents[-1].turn_complete
    assert contents[-1].usage_metadata is not None
    assert contents[-1].usage_metadata.total_token_count
    received = fake_server.connections[0].received
    assert received[0]["setup"]["model"] == f"models/{MODEL}"
    assert received[1]["realtimeInput"]["text"] == "Hello there"  # the form 3.1 takes text in


async def test_fifty_turns_on_one_stream(client: Client) -> None:
    with trio.fail_after(30):
        async with client.stream(MODEL, config=TEXT) as s:
            for i in range(50):
                await s.send_text(f"turn number {i}")
                assert f"turn number {i}" in await reply_text(s)
            stats = s.statistics()
    assert stats.turns_completed == 50
    assert len(stats.time_to_first_chunk) == 50
    assert stats.messages_sent == 50
    assert stats.time_to_setup_complete is not None


async def test_two_streams_in_parallel_in_one_client(client: Client, fake_server: Any) -> None:
    results: dict[str, list[str]] = {"a": [], "b": []}

    async def talk(name: str) -> None:
        async with client.stream(MODEL, config=TEXT) as s:
            for i in range(5):
                await s.send_text(f"{name}{i}")
                results[name].append(await reply_text(s))

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(talk, "a")
            nursery.start_soon(talk, "b")
    for name in ("a", "b"):
        assert all(f"{name}{i}" in r for i, r in enumerate(results[name]))
    assert len(fake_server.connections) == 2


async def test_iterating_the_stream_spans_turns(client: Client) -> None:
    with trio.fail_after(10):
        async with client.stream(MODEL, config=TEXT) as s:
            await s.send_text("one")
            await s.send_text("two")
            completes = 0
            text = ""
            async for msg in s:
                if isinstance(msg, ServerContent):
                    text += msg.text
                    completes += msg.turn_complete
                    if completes == 2:
                        break
    assert "two" in text


async def test_tool_call_round_trip(fake_server: Any) -> None:
    config = LiveConfig(
        response_modalities=["TEXT"],
        tools=[{"function_declarations": [{"name": "get_weather", "description": "weather"}]}],
    )
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            async with client.stream(MODEL, config=config) as s:
                await s.send_text('call get_weather({"city": "Oslo"})')
                calls: list[ToolCall] = []
                async for msg in s.turn():
                    if isinstance(msg, ToolCall):
                        calls.append(msg)
                        await s.send_tool_response(msg, {"get_weather": {"temp_c": 21}})
    (call,) = calls
    assert call.function_calls[0].name == "get_weather"
    sent = [m for m in fake_server.connections[0].received if "toolResponse" in m]
    response = sent[0]["toolResponse"]["functionResponses"][0]
    assert response["id"] == call.function_calls[0].id
    assert response["response"] == {"temp_c": 21}


async def test_audio_turn_delivers_pcm(fake_server: Any) -> None:
    config = LiveConfig(response_modalities=["AUDIO"], output_audio_transcription={})
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            async with client.stream(MODEL, config=config) as s:
                await s.send_text("speak")
                audio = b""
                transcript = ""
                async for msg in s.turn():
                    if isinstance(msg, ServerContent):
                        audio += msg.audio
                        if msg.output_transcription is not None:
                            transcript += msg.output_transcription.text or ""
    assert len(audio) > 0 and len(audio) % 2 == 0
    assert transcript


async def test_send_audio_and_realtime_inputs_reach_the_server(
    client: Client, fake_server: Any
) -> None:
    pcm = bytes(range(256)) * 10
    with trio.fail_after(10):
        async with client.stream(MODEL, config=TEXT) as s:
            await s.send_audio(pcm, 16000)
            await s.send_audio_stream_end()
            await reply_text(s)
            await s.send_video(b"\xff\xd8\xff\xe0fakejpeg")
            await s.send_realtime_text("typed")
            await reply_text(s)
    received = fake_server.connections[0].received
    audio = [m for m in received if "audio" in m.get("realtimeInput", {})]
    assert audio[0]["realtimeInput"]["audio"]["mimeType"] == "audio/pcm;rate=16000"
    assert any(m.get("realtimeInput", {}).get("audioStreamEnd") for m in received)
    assert any("video" in m.get("realtimeInput", {}) for m in received)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (1000, ServerClosedError),
        (1007, InvalidArgumentError),
        (1008, PolicyViolationError),
        (1011, ServerInternalError),
        (4000, ServerClosedError),
    ],
)
async def test_server_close_codes_map_to_error_types(
    fake_server: Any, code: int, error_type: type[ServerClosedError]
) -> None:
    reason = f"closing with {code} for the test"
    fake_server.inject(Fault.close(code, reason, at_message=3))
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            with pytest.raises(error_type) as info:
                async with client.stream(MODEL, config=TEXT) as s:
                    await s.send_text("hi")
                    async for _ in s:
                        pass
    assert info.value.code == code
    assert info.value.reason == reason
    assert TEST_KEY not in str(info.value)


async def test_messages_before_a_close_are_delivered_first(fake_server: Any) -> None:
    fake_server.inject(Fault.close(1011, "Internal error encountered.", at_message=4))
    got: list[Any] = []
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                await s.send_text("hello")
                with pytest.raises(ServerInternalError):
                    async for msg in s:
                        got.append(msg)
    # messages 2 and 3 were model chunks sent before the close
    assert len(got) == 2 and all(isinstance(m, ServerContent) for m in got)


async def test_abort_without_close_frame_is_connection_lost(fake_server: Any) -> None:
    fake_server.inject(Fault.abort(at_message=3))
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                await s.send_text("hello")
                with pytest.raises(ConnectionLostError):
                    async for _ in s:
                        pass
                # a send on the dead connection raises the same type a receive did
                with pytest.raises(ConnectionLostError):
                    await s.send_text("again")


async def test_rejected_setup_raises_setup_error_with_server_reason(fake_server: Any) -> None:
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            with pytest.raises(SetupRejectedError) as info:
                async with client.stream("no-such-model"):
                    pass
    assert info.value.code == 1008
    assert "not found" in info.value.reason
    assert "bidiGenerateContent" in info.value.reason


async def test_wrong_key_is_rejected_with_1007(fake_server: Any) -> None:
    with trio.fail_after(10):
        async with Client(api_key="AIzaWRONGKEY-000000000000000", base_url=fake_server.url) as c:
            with pytest.raises(SetupRejectedError) as info:
                async with c.stream(MODEL):
                    pass
    assert info.value.code == 1007
    assert "AIzaWRONGKEY" not in str(info.value)


async def test_malformed_frame_is_a_protocol_error_with_excerpt(fake_server: Any) -> None:
    fake_server.inject(Fault.malformed_json(at_message=3))
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                await s.send_text("hello")
                with pytest.raises(ProtocolError) as info:
                    async for _ in s:
                        pass
    assert info.value.excerpt


async def test_unknown_message_type_does_not_break_the_stream(fake_server: Any) -> None:
    fake_server.inject(Fault.unknown_message(at_message=3))
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                await s.send_text("hello")
                kinds = [type(m).__name__ async for m in s.turn()]
    assert "UnknownMessage" in kinds
    assert kinds[-1] == "ServerContent"


async def test_oversized_frame_above_limit_is_message_too_large(fake_server: Any) -> None:
    fake_server.inject(Fault.oversized_frame(200_000, at_message=3))
    with trio.fail_after(10):
        async with Client(
            api_key=TEST_KEY, base_url=fake_server.url, max_message_size=100_000
        ) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                await s.send_text("hello")
                with pytest.raises(gemini_ws.MessageTooLargeError):
                    async for _ in s:
                        pass


async def test_frames_above_one_mib_are_accepted_by_default(fake_server: Any) -> None:
    fake_server.inject(Fault.oversized_frame(3 * 1024 * 1024, at_message=3))
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                await s.send_text("hello")
                first = await s.receive()
                second = await s.receive()
    assert isinstance(first, ServerContent)
    assert second is not None


async def test_errors_share_one_root() -> None:
    for name in gemini_ws.__all__ if hasattr(gemini_ws, "__all__") else dir(gemini_ws):
        obj = getattr(gemini_ws, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, GeminiWSError), name


# --- heartbeat and backpressure --------------------------------------------------------------


async def test_stalled_server_ends_in_heartbeat_timeout(fake_server: Any) -> None:
    fake_server.inject(Fault.stall(after_message=1))
    with trio.fail_after(10):
        async with Client(
            api_key=TEST_KEY,
            base_url=fake_server.url,
            heartbeat_interval=0.05,
            heartbeat_timeout=0.3,
        ) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                with pytest.raises(HeartbeatTimeoutError):
                    await s.receive()
                assert s.statistics().connection.pings_sent >= 1


async def test_a_dead_peer_is_found_while_audio_streams() -> None:
    """The server stops reading (and so answering pings; its TCP stays up) while the app
    streams audio at a microphone's pace. Every write still goes out at once (the socket
    buffers take it), which is no uplink holding up the pong: HeartbeatTimeoutError within
    about heartbeat_timeout. Judged by the independent recording server's ``stall``."""
    from gemini_ws.audio import Pacer

    async with open_recording_server() as server:
        async with Client(api_key=TEST_KEY, base_url=server.url, heartbeat_interval=0.2,
                          heartbeat_timeout=0.5) as client:
            with trio.fail_after(8):
                try:
                    async with client.stream(MODEL, config=LiveConfig(
                            response_modalities=["AUDIO"])) as s:
                        server.stall()
                        stalled_at = trio.current_time()
                        pacer = Pacer(chunk_ms=20)
                        with pytest.raises(HeartbeatTimeoutError):
                            while True:
                                await pacer.wait()
                                await s.send_audio(bytes(640))
                        found_after = trio.current_time() - stalled_at
                        assert s.statistics().connection.pings_sent >= 1
                except StreamClosedError as exc:
                    # a chunk whose write the abort cut off is reported, never lost silently
                    assert exc.unsent and all(isinstance(m, RealtimeInput) for m in exc.unsent)
    # a ping within 1.5 intervals, its pong missed 0.5 s later; generous for a loaded machine
    assert found_after < 3.0, found_after


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"),
                    reason="the kernel's half of the heartbeat needs TCP_USER_TIMEOUT (Linux)")
async def test_a_dead_peer_behind_full_buffers_is_found() -> None:
    """The server stops reading while the app uploads faster than its socket drains (a file,
    or audio after a network stall): every buffer fills, each write waits for the socket, and
    no ping can go out (the heartbeat is suspended, as on a slow uplink). The kernel still
    sees that the peer takes nothing (``TCP_USER_TIMEOUT`` is the heartbeat timeout): the
    blocked send ends with HeartbeatTimeoutError instead of waiting for good. Judged by the
    independent recording server's ``stall``, with a small receive buffer."""
    chunk = bytes(32_000)  # 1 s of 16 kHz audio per message
    async with open_recording_server(receive_buffer=64 * 1024) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url, heartbeat_interval=0.2,
                          heartbeat_timeout=0.5) as client:
            with trio.fail_after(10):
                try:
                    async with client.stream(MODEL, config=LiveConfig(
                            response_modalities=["AUDIO"])) as s:
                        server.stall()
                        stalled_at = trio.current_time()
                        sent = 0
                        dead = r"took none of the data sent for 0\.5 s"
                        with pytest.raises(HeartbeatTimeoutError, match=dead):
                            while True:
                                await s.send_audio(chunk)
                                sent += 1
                        found_after = trio.current_time() - stalled_at
                        # the buffers did fill (the heartbeat could not have found it)
                        assert s.statistics().connection.heartbeats_suspended >= 1
                        assert sent >= 2
                except StreamClosedError as exc:
                    # a chunk whose write the abort cut off is reported, never lost silently
                    assert exc.unsent and all(isinstance(m, RealtimeInput) for m in exc.unsent)
    # buffers full in well under a second, then 0.5 s without progress (and the kernel's
    # probe backoff); generous for a loaded machine
    assert found_after < 5.0, found_after


async def test_a_slow_uplink_is_not_a_dead_peer() -> None:
    """The other side of the kernel's check: a peer that keeps taking bytes, however slowly,
    is alive. The server reads one 1 s audio message every 40 ms (about 1 MB/s) while the app
    uploads as fast as it can with a 0.5 s heartbeat timeout: writes wait for the socket the
    whole time (heartbeats suspended), nothing times out, and the server consumed every chunk
    in order (its own record)."""
    chunk = bytes(32_000)
    count = 60  # about 2.4 s at the server's pace
    async with open_recording_server(receive_buffer=64 * 1024, read_delay=0.04) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url, heartbeat_interval=0.2,
                          heartbeat_timeout=0.5) as client:
            with trio.fail_after(20):
                async with client.stream(MODEL, config=LiveConfig(
                        response_modalities=["AUDIO"])) as s:
                    for k in range(count):
                        await s.send_audio(k.to_bytes(2, "big") + chunk[2:])
                    await s.send_text("done")
                    async for _ in s.turn():
                        pass
                    assert s.statistics().connection.heartbeats_suspended >= 1
    (session,) = server.sessions.values()
    firsts = [
        base64.b64decode(c.message["realtimeInput"]["audio"]["data"])[:2]
        for c in session.consumed if "audio" in c.message.get("realtimeInput", {})
    ]
    assert [int.from_bytes(f, "big") for f in firsts] == list(range(count))


async def test_heartbeat_records_rtt(client: Client) -> None:
    async with Client(
        api_key=TEST_KEY, base_url=client.endpoint.url.split("/ws/")[0], heartbeat_interval=0.02
    ) as fast:
        with trio.fail_after(10):
            async with fast.stream(MODEL, config=TEXT) as s:
                while s.statistics().last_heartbeat_rtt is None:
                    await trio.sleep(0.01)
                assert s.statistics().last_heartbeat_rtt < 1.0


async def test_an_idle_heartbeat_wakes_once_per_ping(client: Client) -> None:
    """The heartbeat does not wait on each pong (that is a second wake-up per ping): it looks
    at it when the next ping is due; every ping is still answered and counted."""

    class HeartbeatSteps(trio.abc.Instrument):
        steps = 0

        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            if task.name.endswith("LiveConnection.heartbeat"):
                self.steps += 1

    async with Client(
        api_key=TEST_KEY, base_url=client.endpoint.url.split("/ws/")[0], heartbeat_interval=0.02
    ) as fast:
        with trio.fail_after(10):
            async with fast.stream(MODEL, config=TEXT) as s:
                counter = HeartbeatSteps()
                with instrumented(counter):
                    await trio.sleep(0.5)
                stats = s.statistics().connection
    assert stats.pings_sent >= 10, stats
    assert stats.pongs_received >= stats.pings_sent - 1, stats
    # one wake per ping, and one more on the trio-websocket transport (its ping starts a task
    # and checkpoints); waiting on each pong made it three
    assert counter.steps <= 2 * stats.pings_sent + 2, (counter.steps, stats.pings_sent)


async def test_idle_connections_opened_apart_ping_together(client: Client) -> None:
    """Pings go out on a grid shared by every connection with the same interval: two streams
    opened 30 ms apart wake for their pings in the same trip round the scheduler (one wake
    from idle for both), each still pinging once per interval."""

    class PingBatches(trio.abc.Instrument):
        batch = 0

        def __init__(self) -> None:
            self.seen: dict[trio.lowlevel.Task, set[int]] = {}

        def before_io_wait(self, timeout: float) -> None:
            self.batch += 1

        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            if task.name.endswith("LiveConnection.heartbeat"):
                self.seen.setdefault(task, set()).add(self.batch)

    async with Client(
        api_key=TEST_KEY, base_url=client.endpoint.url.split("/ws/")[0], heartbeat_interval=0.1
    ) as fast:
        with trio.fail_after(10):
            async with fast.stream(MODEL, config=TEXT) as a:
                await trio.sleep(0.03)
                async with fast.stream(MODEL, config=TEXT) as b:
                    batches = PingBatches()
                    with instrumented(batches):
                        await trio.sleep(0.65)
                    pings = [s.statistics().connection.pings_sent for s in (a, b)]
    first, second = batches.seen.values()
    assert len(batches.seen) == 2 and min(pings) >= 5, (batches.seen, pings)
    assert len(first & second) >= 4, f"pings of the two streams woke apart: {batches.seen}"


async def test_slow_consumer_keeps_answering_server_pings() -> None:
    """The app reads nothing for a while; the reader keeps draining, so the server's pings
    are answered and nothing is lost."""
    async with open_fake_server(api_key=TEST_KEY, chunk_count=200, ping_interval=0.02) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT) as s:
                    await s.send_text("a long answer please " + "x" * 400)
                    await trio.sleep(0.5)  # a slow application
                    assert s.statistics().queued_to_deliver > 0
                    chunks = [m async for m in s.turn()]
        assert len(server.connections[0].pong_rtts) >= 5
    assert sum(1 for m in chunks if isinstance(m, ServerContent) and m.model_turn) == 200


async def test_backpressure_suspends_heartbeat_instead_of_failing() -> None:
    """With a tiny receive buffer the reader stops (TCP backpressure); pongs cannot be read,
    and the heartbeat must not declare the connection dead."""
    async with open_fake_server(api_key=TEST_KEY, chunk_count=400) as server:
        async with Client(
            api_key=TEST_KEY,
            base_url=server.url,
            receive_buffer_bytes=2048,
            heartbeat_interval=0.05,
            heartbeat_timeout=0.1,
        ) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=TEXT) as s:
                    await s.send_text("x" * 2000)
                    await trio.sleep(1.0)  # far longer than the heartbeat timeout
                    chunks = [m async for m in s.turn()]
                    stats = s.statistics()
    assert sum(1 for m in chunks if isinstance(m, ServerContent) and m.model_turn) == 400
    assert stats.connection.heartbeats_suspended >= 1


# --- pause / resume ----------------------------------------------------------------------------


async def test_pause_longer_than_heartbeat_then_resume_loses_nothing(fake_server: Any) -> None:
    async with Client(
        api_key=TEST_KEY, base_url=fake_server.url, heartbeat_interval=0.05, heartbeat_timeout=0.2
    ) as client:
        with trio.fail_after(15):
            async with client.stream(MODEL, config=TEXT) as s:
                await s.send_text("first")
                await s.pause()
                await s.pause()  # idempotent
                await s.send_text("second")  # queued, held
                await trio.sleep(0.5)
                stats = s.statistics()
                assert stats.paused_receive and stats.paused_send
                assert stats.queued_to_send == 1
                # the first reply arrived but was held back
                assert stats.queued_to_deliver > 0
                with trio.move_on_after(0.1) as scope:
                    await s.receive()
                assert scope.cancelled_caught, "nothing is delivered while paused"
                await s.resume()
                await s.resume()  # idempotent
                first = await reply_text(s)
                second = await reply_text(s)
                assert s.statistics().time_paused >= 0.5
    assert "first" in first and "second" in second
    assert fake_server.connections[0].received_texts == ["first", "second"]


async def test_pause_one_direction_only(client: Client, fake_server: Any) -> None:
    with trio.fail_after(10):
        async with client.stream(MODEL, config=TEXT) as s:
            await s.pause("send")
            await s.send_text("held")
            await trio.sleep(0.2)
            assert len(fake_server.connections[0].received) == 1  # only setup
            await s.resume("send")
            assert "held" in await reply_text(s)
            with pytest.raises(gemini_ws.ConfigurationError):
                await s.pause("sideways")  # type: ignore[arg-type]


async def test_send_blocks_when_paused_and_send_buffer_full(fake_server: Any) -> None:
    async with Client(api_key=TEST_KEY, base_url=fake_server.url, send_buffer_bytes=1000) as c:
        with trio.fail_after(10):
            async with c.stream(MODEL, config=TEXT) as s:
                await s.pause("send")
                await s.send_text("a" * 600)
                with trio.move_on_after(0.2) as scope:
                    await s.send_text("b" * 600)
                assert scope.cancelled_caught, "send waits once the bounded queue is full"
                await s.resume("send")
                assert "a" * 600 in await reply_text(s)


# --- cancel ----------------------------------------------------------------------------------


async def test_an_unsent_audio_chunk_comes_back_as_its_message(client: Client) -> None:
    """send_audio hands the session only the chunk's text and PCM; what cancel() reports as
    unsent is still the RealtimeInput audio_chunk() makes, byte for byte."""
    pcm = bytes(range(256)) * 4
    with trio.fail_after(10):
        async with client.stream(MODEL, config=TEXT) as s:
            await s.pause("send")
            await s.send_audio(pcm, 24000)
            unsent = await s.cancel()
    assert list(unsent) == [gemini_ws.audio_chunk(pcm, 24000)]
    assert unsent[0].audio is not None and unsent[0].audio.data == pcm


async def test_cancel_mid_turn_reports_unsent_and_closes(client: Client, fake_server: Any) -> None:
    with trio.fail_after(10):
        async with client.stream(MODEL, config=TEXT) as s:
            await s.send_text("hello")
            await s.receive()
            await s.pause("send")
            await s.send_text("never sent")
            unsent = await s.cancel()
            assert await s.cancel() == unsent  # idempotent
            assert s.state == "cancelled"
            with pytest.raises(StreamClosedError) as info:
                await s.send_text("after cancel")
            with pytest.raises(StreamClosedError):
                await s.receive()
    assert len(unsent) == 1
    assert unsent[0] == gemini_ws.RealtimeInput(text="never sent")  # 3.1 takes realtime text
    assert info.value.unsent == unsent
    conn = fake_server.connections[0]
    with trio.fail_after(5):
        await conn.closed.wait()
    assert conn.close_code == 1000


@pytest.mark.parametrize("state", ["idle", "mid_turn", "paused", "after_server_closed"])
async def test_cancel_in_every_open_state_leaves_nothing(fake_server: Any, state: str) -> None:
    if state == "after_server_closed":
        fake_server.inject(Fault.close(1011, "bye", at_message=2))
    before = open_sockets()
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                if state != "idle":
                    await s.send_text("hello")
                if state == "mid_turn":
                    await s.receive()
                if state == "paused":
                    await s.pause()
                if state == "after_server_closed":
                    with pytest.raises(ServerInternalError):
                        await s.receive()
                with trio.fail_after(2):
                    await s.cancel()
                assert s.connection.state == "closed"
            stats = s.statistics()
            assert stats.state == "cancelled"
    assert open_sockets() <= before


async def test_outer_cancellation_while_connecting_leaves_nothing(silent_port: int) -> None:
    """A server that accepts TCP but never answers the upgrade; the caller gives up."""
    before = open_sockets()
    async with Client(api_key=TEST_KEY, base_url=f"ws://127.0.0.1:{silent_port}") as client:
        with trio.move_on_after(0.3) as scope:
            async with client.stream(MODEL, config=TEXT):
                raise AssertionError("the stream must not open")
        assert scope.cancelled_caught
    # the silent server still holds its side of the accepted connection (until teardown)
    assert open_sockets() <= before + 1


async def test_outer_cancellation_awaiting_setup_complete_leaves_nothing() -> None:
    async with open_fake_server(api_key=TEST_KEY) as server:
        server.inject(Fault.delay(5.0, at_message=1))
        before = open_sockets()
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.move_on_after(0.3) as scope:
                async with client.stream(MODEL, config=TEXT):
                    raise AssertionError("the stream must not open")
            assert scope.cancelled_caught
        assert open_sockets() <= before
        conn = server.connections[0]
        with trio.fail_after(5):
            await conn.closed.wait()


async def test_user_exception_in_body_is_not_wrapped(client: Client) -> None:
    class Boom(Exception):
        pass

    with trio.fail_after(10), pytest.raises(Boom):
        async with client.stream(MODEL, config=TEXT) as s:
            await s.send_text("hello")
            raise Boom


async def test_normal_exit_flushes_queued_messages(client: Client, fake_server: Any) -> None:
    with trio.fail_after(10):
        async with client.stream(MODEL, config=TEXT) as s:
            for i in range(20):
                await s.send_realtime_text(f"r{i}")
    texts = [m["realtimeInput"]["text"] for m in fake_server.connections[0].received[1:]]
    assert texts == [f"r{i}" for i in range(20)]


async def test_bad_input_gets_configuration_errors(client: Client) -> None:
    with trio.fail_after(10):
        async with client.stream(MODEL, config=TEXT) as s:
            with pytest.raises(gemini_ws.ConfigurationError):
                await s.send_audio(b"\x00\x01\x02", 16000)  # odd length
            with pytest.raises(gemini_ws.ConfigurationError):
                await s.send_text(42)  # type: ignore[arg-type]
            with pytest.raises(gemini_ws.ConfigurationError):
                await s.send("not a message")  # type: ignore[arg-type]
            with pytest.raises(gemini_ws.ConfigurationError):
                await s.send_video(b"data", "video/mp4")
            with pytest.raises(gemini_ws.ConfigurationError):
                await s.send_tool_response(gemini_ws.FunctionResponse(id="", name="f", response={}))
            # the stream is still fine after bad input
            await s.send_text("still works")
            assert "still works" in await reply_text(s)


async def test_one_shot_stream_generate_content(client: Client) -> None:
    model = client.models.by_name(MODEL)
    with trio.fail_after(10):
        async with model.stream_generate_content(
            {"contents": ["what is trio?"], "config": {"response_modalities": ["TEXT"]}}
        ) as chunks:
            text = "".join([c.text async for c in chunks if isinstance(c, ServerContent)])
    assert "what is trio?" in text


async def test_client_body_exception_is_not_wrapped_in_a_group(fake_server: Any) -> None:
    class Boom(Exception):
        pass

    with trio.fail_after(10), pytest.raises(Boom):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                await s.send_text("hi")
                raise Boom


async def test_stream_error_escapes_both_context_managers_unwrapped(fake_server: Any) -> None:
    fake_server.inject(Fault.close(1011, "Internal error encountered.", at_message=3))
    with trio.fail_after(10), pytest.raises(ServerInternalError):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                await s.send_text("hi")
                async for _ in s:
                    pass


async def test_exit_after_unnoticed_failure_reports_unsent_messages(fake_server: Any) -> None:
    """The server dies while sends are held; the app leaves the block without looking: the
    queued messages are reported, not dropped silently."""
    # (the close waits a moment, so that it comes while the sends are held whichever transport
    # reads it: trio-websocket's own reader would see it before the app's first send)
    fake_server.inject(Fault.delay(0.2, after_message=1))
    fake_server.inject(Fault.close(1011, "Internal error encountered.", after_message=1))
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            with pytest.raises(StreamClosedError) as info:
                async with client.stream(MODEL, config=TEXT) as s:
                    await s.pause("send")
                    await s.send_text("held 1")
                    await s.send_text("held 2")
                    await fake_server.connections[0].wait_closed()
                    await trio.sleep(0.05)
    assert [m.text for m in info.value.unsent] == ["held 1", "held 2"]
    assert isinstance(info.value.__cause__, ServerInternalError)


async def test_manual_resumption_with_the_newest_handle(client: Client, fake_server: Any) -> None:
    config = LiveConfig(response_modalities=["TEXT"], session_resumption={})
    with trio.fail_after(10):
        async with client.stream(MODEL, config=config) as s:
            await s.send_text("remember me")
            await reply_text(s)
            # the handle arrives after turnComplete
            await wait_for_handle(s)
            handle = s.resume_handle
        async with client.stream(MODEL, config=config, resume_handle=handle) as s2:
            await s2.send_text("again")
            assert "again" in await reply_text(s2)
    first, second = fake_server.connections
    assert second.setup["sessionResumption"]["handle"] == handle
    assert second.session is first.session  # the same conversation continues


async def test_an_error_the_app_never_saw_is_raised_on_leaving(fake_server: Any) -> None:
    """The server rejects input while the app only sends and leaves: no silent end."""
    fake_server.inject(Fault.close(1007, "Request contains an invalid argument.", after_message=1))
    with trio.fail_after(10):
        async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
            with pytest.raises(InvalidArgumentError):
                async with client.stream(MODEL, config=TEXT) as s:
                    await fake_server.connections[0].wait_closed()
                    await trio.sleep(0.05)
            # once the app has seen the error, leaving does not raise it again
            fake_server.inject(Fault.close(1011, "bye", after_message=1))
            async with client.stream(MODEL, config=TEXT) as s:
                with pytest.raises(ServerInternalError):
                    await s.receive()


async def test_leaving_with_a_full_receive_buffer_is_prompt() -> None:
    """The reader waits on a full receive buffer when the app leaves: the close handshake
    must not wait out close_timeout."""
    async with open_fake_server(api_key=TEST_KEY, chunk_count=40) as server:
        async with Client(
            api_key=TEST_KEY, base_url=server.url, receive_buffer_bytes=1500, close_timeout=3
        ) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                await s.pause("receive")
                await s.send_text("hello there general kenobi")
                with trio.fail_after(5):
                    while s._run._delivery_scope is None:  # the reader is blocked on the buffer
                        await trio.sleep(0.005)
                t0 = trio.current_time()
            assert trio.current_time() - t0 < 1.0, "the close handshake waited for close_timeout"
        assert server.connections[0].close_code == 1000


async def test_client_keeps_the_cause_of_the_body_exception(fake_server: Any) -> None:
    with pytest.raises(ValueError) as info:
        async with Client(api_key=TEST_KEY, base_url=fake_server.url):
            raise ValueError("boom") from KeyError("cause")
    assert isinstance(info.value.__cause__, KeyError)


async def test_messages_before_setup_complete_are_counted(fake_server: Any) -> None:
    fake_server.inject(Fault.unknown_message(at_message=1))
    async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
        with trio.fail_after(10):
            async with client.stream(MODEL, config=TEXT) as s:
                first = await s.receive()
                assert type(first).__name__ == "UnknownMessage"
                assert s.statistics().messages_received == 1


async def test_stream_in_another_task_ends_when_the_client_closes(fake_server: Any) -> None:
    outcome: list[BaseException] = []

    async def worker(client: Client, task_status: Any) -> None:
        async with client.stream(MODEL, config=TEXT) as s:
            task_status.started()
            try:
                await s.receive()  # nothing is coming
            except GeminiWSError as exc:
                outcome.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as outer:
            async with Client(api_key=TEST_KEY, base_url=fake_server.url) as client:
                await outer.start(worker, client)
                await trio.sleep(0.1)
    (error,) = outcome
    assert isinstance(error, StreamClosedError) and "Client was closed" in str(error)


async def test_receive_turn_collects_one_turn(client: Client) -> None:
    with trio.fail_after(10):
        async with client.stream(MODEL, config=TEXT) as s:
            await s.send_text("collect me")
            messages = await s.receive_turn()
    contents = [m for m in messages if isinstance(m, ServerContent)]
    assert contents[-1].turn_complete
    assert "collect me" in "".join(m.text for m in contents)


async def test_send_content_takes_a_google_genai_style_dict(
    client: Client, fake_server: Any
) -> None:
    with trio.fail_after(10):
        async with client.stream(MODEL_25, config=TEXT) as s:
            await s.send_content({"role": "user", "parts": [{"text": "dict turn"}]})
            assert "dict turn" in await reply_text(s)
            await s.send_content([{"role": "user", "parts": [{"text": "in a list"}]}])
            assert "in a list" in await reply_text(s)
            with pytest.raises(gemini_ws.ConfigurationError, match=r"parts|prts"):
                await s.send_content({"role": "user", "prts": [{"text": "typo"}]})
    sent = fake_server.connections[0].received[1]["clientContent"]["turns"]
    assert sent == [{"role": "user", "parts": [{"text": "dict turn"}]}]


async def test_a_send_cancelled_before_it_went_out_is_withdrawn(
    client: Client, fake_server: Any
) -> None:
    """A send is written from the caller's task when nothing is queued; cancelled before its
    first byte, it is as if never called: the server never gets it, it is not reported unsent
    or replayed after a handover, and the stream goes on."""
    from .test_fault_matrix import texts_of

    config = LiveConfig(response_modalities=["TEXT"], session_resumption={})
    with trio.fail_after(10):
        async with client.stream(MODEL, config=config, reconnect=True) as s:
            with trio.CancelScope() as scope:
                scope.cancel()
                await s.send_text("withdrawn")
            await s.send_text("second")
            assert "second" in await reply_text(s)
            await wait_for_handle(s)
            fake_server.connections[-1].go_away(0.5)
            while not s.handovers:
                await s.receive()
            await s.send_text("third")
            assert "third" in await reply_text(s)
            assert s.unsent == ()
        async with client.stream(MODEL, config=TEXT) as s:  # no resumption: nothing hides it
            with trio.CancelScope() as scope:
                scope.cancel()
                await s.send_text("withdrawn too")
            await s.send_text("fourth")
            assert "fourth" in await reply_text(s)
            assert s.unsent == ()
    received = [t for conn in fake_server.connections for t in texts_of(conn.received)]
    assert received == ["second", "third", "fourth"]


async def test_sends_the_socket_takes_at_once_still_let_other_tasks_run(
    client: Client, fake_server: Any
) -> None:
    """A send written at once from the caller's task does not yield on every call (a trip
    round the scheduler per message), but at least every YIELD_EVERY sends: an app that sends
    in a tight loop cannot starve the stream's own tasks (or its own) for long."""
    from gemini_ws._buffer import YIELD_EVERY

    from .test_buffer import Steps

    total = 20 * YIELD_EVERY
    sent = 0
    with trio.fail_after(20):
        async with client.stream(MODEL, config=TEXT) as s:
            steps = Steps(trio.lowlevel.current_task(), lambda: sent)
            with instrumented(steps):
                for _ in range(total):
                    await s.send_audio(b"\x00\x01" * 160)
                    sent += 1
            await s.send_text("done")
            assert "done" in await reply_text(s)
    runs = [b - a for a, b in zip(steps.seen, steps.seen[1:], strict=False)]
    assert runs and max(runs) <= YIELD_EVERY, runs
    received = fake_server.connections[0].received
    assert sum("audio" in m.get("realtimeInput", {}) for m in received) == total
