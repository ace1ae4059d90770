"""A first Live session, end to end, against the built-in fake Live server (no key needed).

Run it with ``python3 docs/examples/quickstart.py``. With GEMINI_API_KEY set and ``--live`` it
talks to the real Gemini Live API instead.
"""

from __future__ import annotations

import os
import sys

import trio

from gemini_ws import Client, LiveConfig, ServerContent, ToolCall
from gemini_ws.testing import open_fake_server

MODEL = "gemini-3.1-flash-live-preview"

# Live models speak: ask for audio, and for the transcription of it to print the words.
CONFIG = LiveConfig(
    response_modalities=["AUDIO"],
    output_audio_transcription={},
    system_instruction="You are a concise assistant.",
    tools=[{"function_declarations": [{"name": "get_time", "description": "The local time."}]}],
)


def words(msg: ServerContent) -> str:
    """The words of a spoken reply's message (its output transcription)."""
    said = msg.output_transcription
    return (said.text or "") if said is not None else ""


async def converse(client: Client) -> None:
    async with client.stream(MODEL, config=CONFIG) as s:
        setup = s.statistics().time_to_setup_complete or 0.0
        print(f"connected; setupComplete after {setup * 1000:.1f} ms")

        await s.send_text("Hello! What can you do?")
        print("model: ", end="", flush=True)
        async for msg in s.turn():
            if isinstance(msg, ServerContent):
                print(words(msg), end="", flush=True)  # msg.audio: its 24 kHz PCM
        print()

        # A tool call, answered by a local function.
        await s.send_text("call get_time")
        print("model: ", end="", flush=True)
        async for msg in s.turn():
            if isinstance(msg, ToolCall):
                names = ", ".join(c.name for c in msg.function_calls)
                print(f"[tool call: {names}] ", end="", flush=True)
                await s.send_tool_response(msg, {"get_time": {"time": "12:00"}})
            elif isinstance(msg, ServerContent):
                print(words(msg), end="", flush=True)
        print()

        # Pause: replies are held (nothing lost), then delivered in order on resume.
        await s.pause()
        await s.send_text("This waits while paused.")
        await trio.sleep(0.2)
        await s.resume()
        reply = "".join([words(m) async for m in s.turn() if isinstance(m, ServerContent)])
        print(f"model (after resume): {reply}")

        stats = s.statistics()
        ttfc = ", ".join(f"{t * 1000:.1f}" for t in stats.time_to_first_chunk)
        print(
            f"turns: {stats.turns_completed}, messages sent/received: "
            f"{stats.messages_sent}/{stats.messages_received}, "
            f"time to first chunk (ms): {ttfc}"
        )


async def main() -> None:
    if "--live" in sys.argv:
        async with Client() as client:  # GEMINI_API_KEY / GOOGLE_API_KEY
            await converse(client)
        return
    async with open_fake_server(chunk_interval=0.01) as server:
        print(f"using the built-in fake Live server at {server.url} (no key needed)")
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            await converse(client)


if __name__ == "__main__":
    if "--live" in sys.argv and not (
        os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
    ):
        sys.exit("--live needs GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment")
    trio.run(main)
