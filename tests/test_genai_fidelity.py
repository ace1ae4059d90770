"""Fidelity of the fake Live server against the official SDK (google-genai's asyncio Live client).

The SDK runs on asyncio in a worker thread while the trio test serves the fake over TLS, the
way PROTOCOL.md §1.3 recipe (a) points it at a local server, with no monkeypatching.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
import trio

from gemini_ws.testing import open_fake_server

genai = pytest.importorskip("google.genai")
types = pytest.importorskip("google.genai.types")

MODEL = "gemini-2.0-flash-live-001"
WEATHER = {
    "name": "get_weather",
    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
}


async def _sdk_conversation(port: int, ca_pem: bytes, api_key: str) -> dict[str, Any]:
    """Drive the official client through a text turn, a tool call and a resumption."""
    result: dict[str, Any] = {}
    context = ssl.create_default_context(cadata=ca_pem.decode())
    client = genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(
            base_url=f"https://127.0.0.1:{port}", async_client_args={"ssl": context}
        ),
    )
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.TEXT],
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(**WEATHER)])],
        session_resumption=types.SessionResumptionConfig(),
    )
    try:
        async with client.aio.live.connect(model=MODEL, config=config) as session:
            # 1. a text turn; receive() ends at turnComplete
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="hello")]),
                turn_complete=True,
            )
            texts: list[str] = []
            updates: list[Any] = []
            async for message in session.receive():
                if message.session_resumption_update is not None:
                    updates.append(message.session_resumption_update)
                if message.text:
                    texts.append(message.text)
                if message.server_content and message.server_content.turn_complete:
                    result["usage"] = message.usage_metadata
            result["text"] = "".join(texts)

            # 2. a tool call answered with a tool response, in the same receive() loop
            await session.send_client_content(
                turns=types.Content(
                    role="user", parts=[types.Part(text='call get_weather({"city": "Oslo"})')]
                ),
                turn_complete=True,
            )
            texts = []
            async for message in session.receive():
                if message.session_resumption_update is not None:
                    updates.append(message.session_resumption_update)
                if message.tool_call is not None:
                    calls = message.tool_call.function_calls
                    result["tool_call"] = [(c.id, c.name, c.args) for c in calls]
                    await session.send_tool_response(
                        function_responses=[
                            types.FunctionResponse(
                                id=c.id, name=c.name, response={"forecast": "snow"}
                            )
                            for c in calls
                        ]
                    )
                if message.text:
                    texts.append(message.text)
            result["tool_text"] = "".join(texts)
            # the handle comes right after the turn: the next receive() starts with it
            async for message in session.receive():
                if message.session_resumption_update is not None:
                    updates.append(message.session_resumption_update)
                    break
            result["updates"] = [(u.new_handle, u.resumable) for u in updates]

        # 3. resume the conversation on a new connection with the latest handle
        handle = updates[-1].new_handle
        resume = types.LiveConnectConfig(
            response_modalities=[types.Modality.TEXT],
            session_resumption=types.SessionResumptionConfig(handle=handle),
        )
        async with client.aio.live.connect(model=MODEL, config=resume) as session:
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="again")]),
                turn_complete=True,
            )
            texts = []
            async for message in session.receive():
                if message.text:
                    texts.append(message.text)
            result["resumed_text"] = "".join(texts)
    finally:
        await client.aio.aclose()
        client.close()
    return result


def _run_sdk(port: int, ca_pem: bytes, api_key: str) -> dict[str, Any]:
    async def bounded() -> dict[str, Any]:
        return await asyncio.wait_for(_sdk_conversation(port, ca_pem, api_key), timeout=20)

    return asyncio.run(bounded())


async def test_official_sdk_against_the_fake() -> None:
    async with open_fake_server(tls=True, chunk_count=2) as server:
        assert server.ca_pem is not None
        with trio.fail_after(30):
            result = await trio.to_thread.run_sync(
                _run_sdk, server.port, server.ca_pem, server.api_key
            )
        first, resumed = server.connections
    assert result["text"] == "You said: hello"
    assert result["usage"].total_token_count > 0
    ((call_id, name, args),) = result["tool_call"]
    assert name == "get_weather" and args == {"city": "Oslo"}
    assert call_id.startswith("function-call-")
    assert result["tool_text"] == 'Tool results: get_weather={"forecast":"snow"}'
    assert [resumable for _handle, resumable in result["updates"]] == [False, True, False, True]
    assert result["resumed_text"] == "You said: again"

    # what the official client put on the wire, as the fake recorded it
    assert first.path == "/ws/google.ai.generativelanguage.v1.GenerativeService.BidiGenerateContent"
    assert first.credentials == [("x-goog-api-key", server.api_key)]
    assert first.setup is not None
    assert first.setup["model"] == f"models/{MODEL}"
    assert first.setup["generationConfig"]["responseModalities"] == ["TEXT"]
    assert first.setup["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    raw_kinds = [type(raw) for raw in first.received_raw]
    assert set(raw_kinds) == {str}  # the SDK sends text frames
    assert resumed.resumed_from == result["updates"][-1][0]
    assert [c["parts"][0].get("text") for c in resumed.turns[0].history][:2] == [
        "hello",
        "You said: hello",
    ]
