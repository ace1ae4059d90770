"""Audio in, audio out: stream 16 kHz PCM to the model and save its 24 kHz reply as a WAV file.

The first session relies on the server's voice activity detection and ends the audio with
``audioStreamEnd``; the second turns detection off and marks the user's turn with
``activityStart`` / ``activityEnd``. Against the built-in fake Live server (no key needed),
whose model answers with a 440 Hz tone: ``python3 docs/examples/audio_to_wav.py``.
"""

from __future__ import annotations

import math
import struct
import tempfile
import wave
from pathlib import Path

import trio

from gemini_ws import Client, LiveConfig, LiveStream, ServerContent
from gemini_ws.testing import open_fake_server

MODEL = "gemini-3.1-flash-live-preview"
INPUT_RATE = 16_000  # the model's native input rate; other rates are resampled by the server
OUTPUT_RATE = 24_000  # the model always speaks 24 kHz, 16-bit, mono PCM
CHUNK_MS = 20  # 20-40 ms per realtime chunk keeps latency low


def sine_pcm(seconds: float, rate: int = INPUT_RATE, hz: float = 220.0) -> bytes:
    """A test signal: 16-bit little-endian mono PCM (stands in for a microphone)."""
    n = int(seconds * rate)
    return struct.pack(
        f"<{n}h", *(int(6000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n))
    )


async def send_microphone(s: LiveStream, pcm: bytes) -> None:
    step = INPUT_RATE * 2 * CHUNK_MS // 1000  # bytes per chunk: 2 bytes per sample
    for i in range(0, len(pcm), step):
        await s.send_audio(pcm[i : i + step], INPUT_RATE)
        # A live microphone paces itself; with a file, sleep CHUNK_MS between chunks.


async def collect_reply(s: LiveStream) -> tuple[bytes, str, str]:
    """The reply's PCM, its transcription, and the transcription of what we said."""
    audio, said, heard = bytearray(), "", ""
    async for msg in s.turn():
        if isinstance(msg, ServerContent):
            audio += msg.audio
            if msg.output_transcription is not None:
                said += msg.output_transcription.text or ""
            if msg.input_transcription is not None:
                heard += msg.input_transcription.text or ""
    return bytes(audio), said, heard


def write_wav(path: Path, pcm: bytes) -> float:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)  # 16-bit
        wav.setframerate(OUTPUT_RATE)
        wav.writeframes(pcm)
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


async def main() -> None:
    async with open_fake_server(chunk_count=4) as server:
        print(f"using the built-in fake Live server at {server.url} (no key needed)")
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            config = LiveConfig(
                response_modalities=["AUDIO"],
                input_audio_transcription={},
                output_audio_transcription={},
            )
            async with client.stream(MODEL, config=config) as s:
                await send_microphone(s, sine_pcm(1.0))
                await s.send_audio_stream_end()  # the microphone went quiet
                pcm, said, heard = await collect_reply(s)

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "reply.wav"
                seconds = write_wav(path, pcm)
                print(f"heard: {heard!r}")
                print(f"model (transcription): {said!r}")
                print(
                    f"wrote {path.name}: {len(pcm)} bytes of PCM, {seconds:.2f} s at "
                    f"{OUTPUT_RATE} Hz"
                )

            # Manual turn-taking: the application decides when the user speaks.
            manual = config.evolve(
                realtime_input_config={"automatic_activity_detection": {"disabled": True}}
            )
            async with client.stream(MODEL, config=manual) as s:
                await s.send_activity_start()
                await send_microphone(s, sine_pcm(0.5))
                await s.send_activity_end()
                pcm, said, heard = await collect_reply(s)
                seconds = len(pcm) / 2 / OUTPUT_RATE
                print(f"activity start/end: heard {heard!r}, reply {seconds:.2f} s")


if __name__ == "__main__":
    trio.run(main)
