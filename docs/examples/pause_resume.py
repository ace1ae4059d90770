"""Pause and resume: a held reply, a held send, and a receive buffer that fills up.

The application stops reading for longer than the heartbeat timeout. Received messages wait in
the stream's byte-bounded buffer; once it is full the reader stops, TCP backpressure applies and
the heartbeat is suspended instead of declaring the connection dead. After ``resume()``
everything arrives, in order. Runs against the built-in fake Live server (no key needed):
``python3 docs/examples/pause_resume.py``.
"""

from __future__ import annotations

import trio

from gemini_ws import Client, LiveConfig, LiveStream, ServerContent
from gemini_ws.testing import open_fake_server

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])


async def reply(s: LiveStream) -> tuple[str, int]:
    """The text of the current model turn and how many chunks it came in."""
    text, chunks = "", 0
    async for msg in s.turn():
        if isinstance(msg, ServerContent) and msg.model_turn is not None:
            text += msg.text
            chunks += 1
    return text, chunks


async def main() -> None:
    # 60 chunks per reply, so the first reply is larger than the 4 KiB receive buffer below.
    async with open_fake_server(chunk_count=60) as server:
        print(f"using the built-in fake Live server at {server.url} (no key needed)")
        async with Client(
            api_key=server.api_key,
            base_url=server.url,
            receive_buffer_bytes=4096,  # tiny on purpose (the default is 32 MiB)
            heartbeat_interval=0.05,  # ping every 50 ms...
            heartbeat_timeout=0.2,  # ...and expect a pong within 200 ms
        ) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                await s.send_text("first question, with a rather long answer please")
                await s.pause()  # both directions
                await s.send_text("second question")  # queued, not written while paused
                await trio.sleep(0.6)  # three heartbeat timeouts without reading

                stats = s.statistics()
                print(
                    f"paused: receive={stats.paused_receive} send={stats.paused_send}; "
                    f"held for delivery: {stats.queued_to_deliver} messages "
                    f"({stats.bytes_queued_to_deliver} bytes); "
                    f"held for sending: {stats.queued_to_send}"
                )
                await s.resume()
                first, n_first = await reply(s)
                second, n_second = await reply(s)
                print(f"model: {first} ({n_first} chunks)")
                print(f"model: {second} ({n_second} chunks)")

                stats = s.statistics()
                print(
                    f"time paused: {stats.time_paused:.1f} s; "
                    f"heartbeats suspended: {stats.connection.heartbeats_suspended}; "
                    f"pings/pongs: {stats.connection.pings_sent}/"
                    f"{stats.connection.pongs_received}; state: {stats.state}"
                )
        sent = server.connections[0].received_texts
        print(f"the server received, in order: {sent}")


if __name__ == "__main__":
    trio.run(main)
