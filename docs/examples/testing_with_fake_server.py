"""Testing your own code against the fake Live server: a scripted model, assertions on what the
server received, an injected fault, and TLS with the throwaway CA.

The ``test_*`` functions are ordinary pytest-trio tests (``trio_mode = true``); this file also
runs them itself: ``python3 docs/examples/testing_with_fake_server.py``.
"""

from __future__ import annotations

import ssl

import trio

from gemini_ws import Client, LiveConfig, LiveStream, ServerContent, ServerInternalError
from gemini_ws.testing import Fault, open_fake_server, scripted

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])


# --- the application code under test -------------------------------------------------------


async def ask(s: LiveStream, question: str) -> str:
    """Send a question and return the whole answer."""
    await s.send_text(question)
    return "".join([m.text async for m in s.turn() if isinstance(m, ServerContent)])


# --- the tests ---------------------------------------------------------------------------------


async def test_scripted_answers_and_what_the_server_received() -> None:
    # Turn 1 gets a reply streamed like the default model's; turn 2 exactly these chunks.
    responder = scripted("Paris.", ["It is ", "the capital ", "of France."])
    async with open_fake_server(responder=responder) as server:
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                assert await ask(s, "Capital of France?") == "Paris."
                assert await ask(s, "Tell me more") == "It is the capital of France."
        received = server.connections[0].received  # camelCase dicts, setup first
    assert received[0]["setup"]["model"] == f"models/{MODEL}"
    # the user texts, whether they went as clientContent or (on 3.x models) realtimeInput.text
    questions = server.connections[0].received_texts
    assert questions == ["Capital of France?", "Tell me more"]
    print(f"scripted responder: ok, the server received {questions}")


async def test_server_error_mid_reply() -> None:
    async with open_fake_server(chunk_count=3) as server:
        # server message 1 is setupComplete; close as message 3 (the 2nd chunk) is due
        server.inject(Fault.close(1011, "Internal error encountered.", at_message=3))
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                try:
                    await ask(s, "hello")
                except ServerInternalError as exc:
                    error = exc
                else:
                    raise AssertionError("the fault did not fire")
    assert (error.code, error.reason) == (1011, "Internal error encountered.")
    print(f"fault injection: ok, {type(error).__name__} code={error.code}")


async def test_over_tls() -> None:
    async with open_fake_server(tls=True) as server:
        assert server.url.startswith("wss://") and server.ca_pem is not None
        context = ssl.create_default_context(cadata=server.ca_pem.decode("ascii"))
        async with Client(
            api_key=server.api_key, base_url=server.url, ssl_context=context
        ) as client:
            async with client.stream(MODEL, config=TEXT) as s:
                answer = await ask(s, "secure hello")
    assert answer == "You said: secure hello"
    print(f"TLS with the throwaway CA: ok, {answer!r}")


async def main() -> None:
    print("running the tests against the built-in fake Live server (no key needed)")
    with trio.fail_after(20):
        await test_scripted_answers_and_what_the_server_received()
        await test_server_error_mid_reply()
        await test_over_tls()
    print("all tests passed")


if __name__ == "__main__":
    trio.run(main)
