"""Fidelity of the fake Live server against the official SDK (google-genai's asyncio Live client).

The SDK runs on asyncio in a worker thread while the trio test serves the fake over TLS, the
way PROTOCOL.md §1.3 recipe (a) points it at a local server, with no monkeypatching.
"""

from __future__ import annotations

import asyncio
import json
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


AUDIO_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"


async def _sdk_audio_conversation(port: int, ca_pem: bytes, api_key: str) -> dict[str, Any]:
    """A setup with most fields the SDK knows (sent as it sends them: nested snake_case), then an
    audio turn and a realtime text turn; the strict fake must take all of it."""
    result: dict[str, Any] = {}
    context = ssl.create_default_context(cadata=ca_pem.decode())
    client = genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(
            base_url=f"https://127.0.0.1:{port}", async_client_args={"ssl": context}
        ),
    )
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        temperature=0.7,
        top_p=0.95,
        top_k=40,
        max_output_tokens=1024,
        seed=7,
        media_resolution=types.MediaResolution.MEDIA_RESOLUTION_LOW,
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore")
            ),
            language_code="en-US",
        ),
        thinking_config=types.ThinkingConfig(thinking_budget=0, include_thoughts=False),
        enable_affective_dialog=True,
        system_instruction="Be brief.",
        tools=[
            types.Tool(function_declarations=[types.FunctionDeclaration(**WEATHER)]),
            types.Tool(google_search=types.GoogleSearch()),
            types.Tool(code_execution=types.ToolCodeExecution()),
        ],
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(
                disabled=False,
                start_of_speech_sensitivity=types.StartSensitivity.START_SENSITIVITY_LOW,
                end_of_speech_sensitivity=types.EndSensitivity.END_SENSITIVITY_LOW,
                prefix_padding_ms=20,
                silence_duration_ms=100,
            ),
            activity_handling=types.ActivityHandling.START_OF_ACTIVITY_INTERRUPTS,
            turn_coverage=types.TurnCoverage.TURN_INCLUDES_ONLY_ACTIVITY,
        ),
        context_window_compression=types.ContextWindowCompressionConfig(
            trigger_tokens=25600, sliding_window=types.SlidingWindow(target_tokens=12800)
        ),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        proactivity=types.ProactivityConfig(proactive_audio=True),
        session_resumption=types.SessionResumptionConfig(),
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                threshold=types.HarmBlockThreshold.BLOCK_NONE,
            )
        ],
    )
    pcm = (b"\x00\x10" * 1600) * 3  # 0.3 s of loud 16 kHz audio
    try:
        async with client.aio.live.connect(model=AUDIO_MODEL, config=config) as session:
            await session.send_realtime_input(
                audio=types.Blob(data=pcm, mime_type="audio/pcm;rate=16000")
            )
            await session.send_realtime_input(audio_stream_end=True)
            audio = 0
            transcripts: list[str] = []
            async for message in session.receive():
                content = message.server_content
                if message.data:
                    audio += len(message.data)
                if content and content.input_transcription and content.input_transcription.text:
                    transcripts.append(content.input_transcription.text)
            result["audio_bytes"] = audio
            result["input_transcription"] = "".join(transcripts)
            await session.send_realtime_input(text="and in text")
            audio = 0
            async for message in session.receive():
                if message.data:
                    audio += len(message.data)
            result["text_turn_audio_bytes"] = audio
    finally:
        await client.aio.aclose()
        client.close()
    return result


async def test_official_sdk_rich_setup_and_audio_against_the_strict_fake() -> None:
    def run() -> dict[str, Any]:
        async def bounded() -> dict[str, Any]:
            return await asyncio.wait_for(
                _sdk_audio_conversation(server.port, ca_pem, server.api_key), timeout=20
            )

        return asyncio.run(bounded())

    async with open_fake_server(tls=True, chunk_count=2) as server:
        assert server.strict  # the default
        ca_pem = server.ca_pem
        assert ca_pem is not None
        with trio.fail_after(30):
            result = await trio.to_thread.run_sync(run)
        (conn,) = server.connections
    assert conn.close_code != 1007, conn.close_reason
    assert result["audio_bytes"] > 0 and result["text_turn_audio_bytes"] > 0
    assert result["input_transcription"] == "[audio 0.30s]"
    setup = conn.setup
    assert setup is not None
    # what makes this a check of the strict schema: the SDK's nested snake_case reached it
    raw_setup = json.loads(conn.received_raw[0])["setup"]
    assert "automatic_activity_detection" in raw_setup["realtimeInputConfig"]
    assert setup["generationConfig"]["speechConfig"]["voiceConfig"] == {
        "prebuiltVoiceConfig": {"voiceName": "Kore"}
    }
    assert sorted(key for tool in setup["tools"] for key in tool) == [
        "codeExecution",
        "functionDeclarations",
        "googleSearch",
    ]
