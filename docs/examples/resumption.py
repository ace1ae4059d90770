"""Session resumption: a goAway handover, a dropped connection, reconfigure(), manual resume.

Against the built-in fake Live server (no key needed): ``python3 docs/examples/resumption.py``.
The fake's ``FakeConnection.go_away()`` plays the service's ten-minute warning, and a
``Fault.abort`` drops a connection without a close frame.
"""

from __future__ import annotations

import trio

from gemini_ws import (
    Client,
    GoAway,
    LiveConfig,
    LiveStream,
    ReconnectPolicy,
    ServerContent,
    SessionResumed,
)
from gemini_ws.testing import FakeConnection, FakeLiveServer, Fault, open_fake_server

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])
# Short backoffs so the example is quick; the defaults are 0.25 s doubling up to 5 s.
POLICY = ReconnectPolicy(initial_backoff=0.05, max_backoff=0.5)


def describe(event: SessionResumed) -> str:
    return (
        f"SessionResumed(reason={event.reason!r}, attempts={event.attempts}, "
        f"warm={event.warm}, replayed={event.replayed}, "
        f"interrupted_turn={event.interrupted_turn}, gap={event.gap * 1000:.0f} ms)"
    )


async def next_reply(s: LiveStream) -> str:
    """The text of the next model turn, printing the goAway and handover events on the way."""
    text = ""
    async for msg in s:
        if isinstance(msg, GoAway):
            print(f"  goAway: {msg.time_left.total_seconds():.0f} s left")
        elif isinstance(msg, SessionResumed):
            print(f"  in the stream: {describe(msg)}")
        elif isinstance(msg, ServerContent):
            text += msg.text
            if msg.turn_complete:
                return text
    raise RuntimeError("the stream ended")


def session_connection(server: FakeLiveServer) -> FakeConnection:
    """The fake-server connection carrying a session now (warm spares have no setup yet)."""
    return [c for c in server.connections if c.setup is not None][-1]


async def go_away_and_reconfigure(server: FakeLiveServer) -> None:
    print("1. goAway handover onto a warm spare, then reconfigure()")
    async with Client(api_key=server.api_key, base_url=server.url, pool_size=1) as client:
        await client.prewarm(1)
        async with client.stream(MODEL, config=TEXT, reconnect=True) as s:
            await s.send_text("my name is Ada")
            print(f"  model: {await next_reply(s)}")
            old = session_connection(server)
            old.go_away(2.0)  # the fake says goAway, and closes 2 s later
            await s.send_text("are you still there?")  # goes out on the new connection
            print(f"  model: {await next_reply(s)}")
            while not s.handovers:  # the handover may come only after that reply
                msg = await s.receive()
                if isinstance(msg, SessionResumed):
                    print(f"  in the stream: {describe(msg)}")
            new = session_connection(server)
            print(
                f"  same conversation on a new connection: {new is not old}, "
                f"{new.session is old.session}"
            )

            event = await s.reconfigure(
                LiveConfig(response_modalities=["TEXT"], system_instruction="Be brief.")
            )
            print(f"  reconfigure() returned: {describe(event)}")
            await s.send_text("what is my name?")
            print(f"  model: {await next_reply(s)}")
            print(f"  handovers: {s.statistics().handovers}")


async def drop_and_redial(server: FakeLiveServer) -> None:
    print("2. a connection dropped mid-turn is re-dialled and the turn replayed")
    # client messages are counted from 1 (the setup): drop as the second turn arrives
    server.inject(Fault.abort(on_client_message=3))
    async with Client(api_key=server.api_key, base_url=server.url) as client:
        async with client.stream(MODEL, config=TEXT, reconnect=POLICY) as s:
            await s.send_text("first")
            print(f"  model: {await next_reply(s)}")
            # a session resumes from its newest handle, which follows the turnComplete: wait
            # for it, or a drop in between would find nothing to resume from
            while s.resume_handle is None:
                await s.receive()
            await s.send_text("second")
            print(f"  model: {await next_reply(s)}")


async def manual_resume(server: FakeLiveServer) -> None:
    print("3. manual resumption with resume_handle")
    config = LiveConfig(response_modalities=["TEXT"], session_resumption={})
    async with Client(api_key=server.api_key, base_url=server.url) as client:
        async with client.stream(MODEL, config=config) as s:
            await s.send_text("remember the number 42")
            await next_reply(s)
            while s.resume_handle is None:  # the handle follows turnComplete
                await s.receive()
            handle = s.resume_handle
        first = session_connection(server)
        async with client.stream(MODEL, config=config, resume_handle=handle) as s:
            await s.send_text("which number?")
            print(f"  model: {await next_reply(s)}")
        second = session_connection(server)
        print(f"  resumed the same conversation: {second.session is first.session}")


async def main() -> None:
    async with open_fake_server(chunk_count=3) as server:
        print(f"using the built-in fake Live server at {server.url} (no key needed)")
        with trio.fail_after(20):
            await go_away_and_reconfigure(server)
            await drop_and_redial(server)
            await manual_resume(server)


if __name__ == "__main__":
    trio.run(main)
