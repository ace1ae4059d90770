"""Cancellation: ``s.cancel()``, an outer cancel scope, and unsent messages that are reported.

Four short sessions against the built-in fake Live server (no key needed):

1. ``await s.cancel()`` in the middle of a reply, with a message still queued;
2. a ``trio.move_on_after`` deadline around a stream;
3. leaving the block with an exception: nothing is flushed, ``s.unsent`` says what stayed;
4. leaving the block normally after a failure nobody noticed: ``StreamClosedError`` with
   ``.unsent``.

Run it with ``python3 docs/examples/cancel.py``.
"""

from __future__ import annotations

import trio

from gemini_ws import (
    Client,
    ClientContent,
    ClientMessage,
    LiveConfig,
    RealtimeInput,
    ServerContent,
    StreamClosedError,
)
from gemini_ws.testing import Fault, open_fake_server

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])


def texts(messages: tuple[ClientMessage, ...]) -> list[str]:
    """The user texts of queued messages (``send_text`` sends ``realtimeInput.text`` to 3.x
    models, a ``clientContent`` turn to older ones)."""
    out: list[str] = []
    for m in messages:
        if isinstance(m, RealtimeInput) and m.text is not None:
            out.append(m.text)
        elif isinstance(m, ClientContent):
            out.extend(part.text or "" for turn in m.turns for part in turn.parts)
    return out


class ChangedMyMind(Exception):
    pass


async def main() -> None:
    async with open_fake_server(chunk_count=4, chunk_interval=0.05) as server:
        print(f"using the built-in fake Live server at {server.url} (no key needed)")
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            # 1. cancel() mid-reply, with a follow-up held back by pause("send")
            async with client.stream(MODEL, config=TEXT) as s:
                await s.send_text("tell me a long story")
                first = await s.receive()
                assert isinstance(first, ServerContent)
                print(f"model: {first.text}... (first chunk only)")
                await s.pause("send")
                await s.send_text("and another one")  # queued, never written
                unsent = await s.cancel()
                print(f"cancel(): state={s.state}, unsent={texts(unsent)}")
                try:
                    await s.send_text("still there?")
                except StreamClosedError as exc:
                    print(f"send after cancel: StreamClosedError, unsent={texts(exc.unsent)}")
            await server.connections[-1].wait_closed()
            print(f"the server saw close code {server.connections[-1].close_code}")

            # 2. an outer deadline: the stream is closed and the scope absorbs the cancel
            with trio.move_on_after(0.1) as scope:
                async with client.stream(MODEL, config=TEXT) as s:
                    await s.send_text("this reply takes longer than 0.1 s")
                    async for _ in s:
                        pass
            print(f"move_on_after: cancelled_caught={scope.cancelled_caught}, state={s.state}")

            # 3. an exception leaves the block: queued messages are not flushed
            try:
                async with client.stream(MODEL, config=TEXT) as s:
                    await s.pause("send")
                    await s.send_text("draft that should not go out")
                    raise ChangedMyMind
            except ChangedMyMind:
                print(f"exception exit: state={s.state}, unsent={texts(s.unsent)}")

        # 4. the server fails while sends are held, and the block ends without looking
        server.inject(Fault.close(1011, "Internal error encountered.", after_message=1))
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            try:
                async with client.stream(MODEL, config=TEXT) as s:
                    await s.pause("send")
                    await s.send_text("held 1")
                    await s.send_text("held 2")
                    await server.connections[-1].wait_closed()
                    await trio.sleep(0.05)
            except StreamClosedError as exc:
                cause = type(exc.__cause__).__name__
                print(
                    f"unnoticed failure: StreamClosedError (cause {cause}), "
                    f"unsent={texts(exc.unsent)}"
                )


if __name__ == "__main__":
    trio.run(main)
