"""The fake server's automatic activity detection, as the service's: speech then silence ends
the user's turn without ``audioStreamEnd``; silence alone is not speech and interrupts nothing.
Judged from what the fake model consumed (``connection.turns``), with and without model
latency."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio

from gemini_ws import Client, ConfigurationError, LiveConfig, ServerContent
from gemini_ws.audio import Pcm, send_paced
from gemini_ws.testing import open_fake_server

MODEL = "gemini-3.1-flash-live-preview"
RATE = 16000
CHUNK = 640  # 20 ms


def tone(seconds: float, amplitude: int = 6000) -> bytes:
    out = bytearray()
    for i in range(int(seconds * RATE)):
        out += int(amplitude * math.sin(2 * math.pi * 300 * i / RATE)).to_bytes(
            2, "little", signed=True
        )
    return bytes(out)


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(seconds * RATE)


latencies = pytest.mark.parametrize("latency", [0.0, 0.05], ids=["0ms", "50ms"])


async def microphone(s: Any, stop: trio.Event) -> None:
    """An app's microphone after the user spoke: quiet audio, 20 ms at a time, until told to
    stop (it never sends audioStreamEnd)."""
    while not stop.is_set():
        await s.send_audio(silence(0.02), RATE)
        await trio.sleep(0.005)


@latencies
async def test_speech_then_silence_gets_a_reply_without_audio_stream_end(latency: float) -> None:
    config = LiveConfig(response_modalities=["TEXT"], input_audio_transcription={})
    async with open_fake_server(first_chunk_delay=latency, chunk_count=3) as server:
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, config=config) as s:
                    await send_paced(s, Pcm(tone(0.6), RATE), speed=math.inf)
                    stop = trio.Event()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(microphone, s, stop)
                        messages = [m async for m in s.turn()]
                        stop.set()
        (conn,) = [c for c in server.connections if c.setup is not None]
    (turn,) = conn.turns
    # the turn holds the speech and the 0.5 s of silence that ended it, nothing more
    assert turn.audio == tone(0.6) + silence(0.5)
    text = "".join(m.text for m in messages if isinstance(m, ServerContent))
    assert text == "You said: [audio 1.10s]"
    # the quiet audio streamed while the model answered interrupted nothing
    assert not any(isinstance(m, ServerContent) and m.interrupted for m in messages)
    assert not any(
        "audioStreamEnd" in m.get("realtimeInput", {}) for m in conn.received
    )


async def test_the_setup_sets_how_much_silence_ends_the_turn() -> None:
    config = LiveConfig(
        response_modalities=["TEXT"],
        realtime_input_config={"automatic_activity_detection": {"silence_duration_ms": 1000}},
    )
    async with open_fake_server() as server:
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, config=config) as s:
                    pcm = tone(0.4) + silence(0.8) + tone(0.2) + silence(1.2)
                    await send_paced(s, Pcm(pcm, RATE), speed=math.inf)
                    await s.receive_turn()
        (conn,) = [c for c in server.connections if c.setup is not None]
    # 0.8 s of silence is a pause inside the turn; 1 s of it ends the turn
    (turn,) = conn.turns
    assert turn.audio == tone(0.4) + silence(0.8) + tone(0.2) + silence(1.0)


async def test_silence_alone_is_not_speech_until_audio_stream_end() -> None:
    async with open_fake_server() as server:
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(
                    MODEL, config=LiveConfig(response_modalities=["TEXT"])
                ) as s:
                    await send_paced(s, Pcm(silence(2.0), RATE), speed=math.inf)
                    conn = next(c for c in server.connections if c.setup is not None)
                    await conn.wait_received(1 + 2.0 * RATE * 2 // CHUNK)
                    assert conn.turns == []  # two seconds of silence: no user turn yet
                    await s.send_audio_stream_end()  # the mic is muted: flush what is cached
                    await s.receive_turn()
    (turn,) = conn.turns
    assert turn.audio == silence(2.0)


async def test_silence_detection_is_off_with_automatic_detection_disabled() -> None:
    config = LiveConfig(
        response_modalities=["TEXT"],
        realtime_input_config={"automatic_activity_detection": {"disabled": True}},
    )
    async with open_fake_server() as server:
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, config=config) as s:
                    await s.send_activity_start()
                    await send_paced(s, Pcm(tone(0.3) + silence(1.0), RATE), speed=math.inf)
                    conn = next(c for c in server.connections if c.setup is not None)
                    await conn.wait_received(2 + 1.3 * RATE * 2 // CHUNK)
                    assert conn.turns == []  # the app, not the silence, ends this turn
                    await s.send_activity_end()
                    await s.receive_turn()
    (turn,) = conn.turns
    assert turn.audio == tone(0.3) + silence(1.0)


async def test_speech_interrupts_the_model_and_silence_does_not() -> None:
    config = LiveConfig(response_modalities=["TEXT"])
    async with open_fake_server(chunk_count=5, chunk_interval=0.1) as server:
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(MODEL, config=config) as s:
                    await s.send_text("a long answer please")
                    first = await s.receive()
                    assert isinstance(first, ServerContent) and first.text
                    await s.send_audio(silence(0.1), RATE)
                    await trio.sleep(0.15)
                    await s.send_audio(tone(0.1), RATE)
                    rest = [m async for m in s.turn()]
    assert any(isinstance(m, ServerContent) and m.interrupted for m in rest)
    # the silence did not cut the reply short: at least one more chunk came before the speech
    chunks = [m for m in rest if isinstance(m, ServerContent) and m.text]
    assert chunks, rest


async def test_the_server_sets_the_default_silence() -> None:
    async with open_fake_server(silence_duration=0.2) as server:
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(
                    MODEL, config=LiveConfig(response_modalities=["TEXT"])
                ) as s:
                    await send_paced(s, Pcm(tone(0.3) + silence(0.6), RATE), speed=math.inf)
                    await s.receive_turn()
        (conn,) = [c for c in server.connections if c.setup is not None]
    assert conn.turns[0].audio == tone(0.3) + silence(0.2)
    with pytest.raises(ConfigurationError, match="silence_duration"):
        async with open_fake_server(silence_duration=0):
            pass  # pragma: no cover
