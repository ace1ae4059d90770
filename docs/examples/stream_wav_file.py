"""Stream a WAV file to the model at the pace of a microphone and save its spoken reply; then
talk over a reply that is playing (barge-in).

The recipe is ``read_wav`` -> ``to_input`` (16 kHz mono) -> ``send_paced`` ->
``send_audio_stream_end``, with the reply written by a ``WavWriter``. Against the built-in fake
Live server (no key needed), with a generated file or your own:
``python3 docs/examples/stream_wav_file.py [QUESTION.wav]``.
"""

from __future__ import annotations

import math
import struct
import sys
import tempfile
import wave
from pathlib import Path

import trio

from gemini_ws import Client, LiveConfig, LiveStream
from gemini_ws.audio import Pcm, PlaybackBuffer, WavWriter, read_wav, send_paced
from gemini_ws.testing import open_fake_server

MODEL = "gemini-3.1-flash-live-preview"
CONFIG = LiveConfig(response_modalities=["AUDIO"])


def make_question(path: Path) -> None:
    """A stand-in recording: 1 s of 48 kHz 16-bit stereo, as a phone or a DAW would save it."""
    rate = 48_000
    frames = b"".join(
        struct.pack("<hh", int(6000 * math.sin(2 * math.pi * 220 * i / rate)), 0)
        for i in range(rate)
    )
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)


def progress(sent_bytes: int, seconds: float) -> None:
    if round(seconds * 1000) % 500 == 0:  # every half second of audio
        print(f"  sent {seconds:.2f} s ({sent_bytes} bytes)")


async def ask(client: Client, question: Path, reply: Path) -> None:
    pcm = read_wav(question)  # any PCM WAV: 8-32 bit, any rate, any number of channels
    print(f"read {question.name}: {pcm.duration:.2f} s at {pcm.sample_rate} Hz")
    pcm = pcm.to_input()  # mono 16 kHz, what the model takes
    async with client.stream(MODEL, config=CONFIG) as s:
        print(f"sending {pcm.duration:.2f} s at {pcm.sample_rate} Hz in real time")
        started = trio.current_time()
        seconds = await send_paced(s, pcm, on_chunk=progress)
        # With automatic activity detection the server only answers once it knows the speech
        # is over: the file's end has to be said.
        await s.send_audio_stream_end()
        print(f"sent {seconds:.2f} s of audio in {trio.current_time() - started:.1f} s")
        with WavWriter(reply) as wav:  # 24 kHz, written as it arrives
            async for message in s.turn():
                wav.feed(message)
    print(f"wrote {reply.name}: {wav.duration:.2f} s at {wav.sample_rate} Hz")


async def talk_over(s: LiveStream, after: float) -> None:
    """The user starts speaking *after* seconds into the reply (a 300 Hz tone stands in)."""
    await trio.sleep(after)
    rate, n = 16_000, 3200  # 0.2 s
    speech = struct.pack(
        f"<{n}h", *(int(5000 * math.sin(i * 2 * math.pi * 300 / rate)) for i in range(n))
    )
    await send_paced(s, Pcm(speech, rate))


async def barge_in(client: Client) -> None:
    speaker: list[bytes] = []  # stands in for a sound device
    buffer = PlaybackBuffer()
    async with client.stream(MODEL, config=CONFIG) as s:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(buffer.play, speaker.append)  # 20 ms chunks, in real time
            await s.send_text("Tell me a long story, please")
            started = False
            async for message in s.turn():
                buffer.feed(message)  # `interrupted` drops what is still queued
                if buffer.queued_bytes and not started:
                    started = True
                    nursery.start_soon(talk_over, s, 0.3)
            nursery.cancel_scope.cancel()
    stats = buffer.statistics()
    played = sum(map(len, speaker)) / 2 / buffer.sample_rate
    print(
        f"barge-in: interrupted {stats.interruptions} time(s); played {played:.1f} s, "
        f"dropped {stats.dropped_bytes > 0}, queued now {stats.queued_seconds:.2f} s"
    )


async def main() -> None:
    async with open_fake_server(chunk_count=5, chunk_interval=0.25) as server:
        print(f"using the built-in fake Live server at {server.url} (no key needed)")
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            with tempfile.TemporaryDirectory() as tmp:
                if len(sys.argv) > 1:
                    question = Path(sys.argv[1])
                else:
                    question = Path(tmp) / "question.wav"
                    make_question(question)
                await ask(client, question, Path(tmp) / "reply.wav")
            await barge_in(client)


if __name__ == "__main__":
    trio.run(main)
