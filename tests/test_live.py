"""Against the real Gemini Live API: opt-in (``--run-live`` and GEMINI_API_KEY), skipped
otherwise with the reason in the test summary. Nothing else in the suite leaves 127.0.0.1."""

from __future__ import annotations

import math
import os

import pytest
import trio

from gemini_ws import Client, LiveConfig, ServerContent, audio

pytestmark = pytest.mark.live

MODEL = os.environ.get("GEMINI_WS_LIVE_MODEL", "gemini-3.1-flash-live-preview")
SPEAK = LiveConfig(
    response_modalities=["AUDIO"],
    input_audio_transcription={},
    output_audio_transcription={},
    system_instruction="Answer in one short sentence.",
)


async def test_a_text_turn_gets_a_spoken_reply_with_its_transcription() -> None:
    with trio.fail_after(60):
        async with Client() as client, client.stream(MODEL, config=SPEAK) as s:
            await s.send_text("Say the word 'ready'.")
            words, pcm = [], bytearray()
            async for msg in s.turn():
                if isinstance(msg, ServerContent):
                    pcm += msg.audio
                    if msg.output_transcription and msg.output_transcription.text:
                        words.append(msg.output_transcription.text)
    assert pcm, "no audio in the reply"
    assert "".join(words).strip(), "no transcription of the reply"


async def test_streamed_audio_then_audio_stream_end_gets_a_reply() -> None:
    tone = bytearray()
    for i in range(audio.INPUT_RATE):  # one second of a quiet 300 Hz tone
        tone += int(3000 * math.sin(2 * math.pi * 300 * i / audio.INPUT_RATE)).to_bytes(
            2, "little", signed=True
        )
    pcm = audio.Pcm(bytes(tone), audio.INPUT_RATE)
    with trio.fail_after(60):
        async with Client() as client, client.stream(MODEL, config=SPEAK) as s:
            await audio.send_paced(s, pcm, speed=4)
            await s.send_audio_stream_end()
            got = bytearray()
            async for msg in s.turn():
                if isinstance(msg, ServerContent):
                    got += msg.audio
    assert len(got) % 2 == 0
