"""The seed-style one-shot API (``client.models.by_name(m).stream_generate_content(request)``):
a GenerateContentRequest's own settings become the session's setup, settings with no place in a
Live setup are refused clearly, and on Gemini 3.x the request goes in the forms those models
take. Judged from what the fake server received."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from gemini_ws import Client, ConfigurationError, ServerContent

MODEL_3X = "gemini-3.1-flash-live-preview"
MODEL_25 = "gemini-2.5-flash-native-audio-preview-12-2025"


async def ask(client: Client, model: str, request: Any, **kw: Any) -> str:
    with trio.fail_after(10):
        async with client.models.by_name(model).stream_generate_content(request, **kw) as chunks:
            return "".join([c.text async for c in chunks if isinstance(c, ServerContent)])


async def test_the_requests_generation_config_and_system_instruction_are_the_setup(
    client: Client, fake_server: Any
) -> None:
    text = await ask(
        client,
        MODEL_3X,
        {
            "contents": [{"role": "user", "parts": [{"text": "what is trio?"}]}],
            "generationConfig": {"responseModalities": ["TEXT"], "temperature": 0.3},
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}],
        },
    )
    assert text == "You said: what is trio?"  # a TEXT reply: the request's modality held
    conn = fake_server.connections[0]
    setup = conn.setup
    assert setup["generationConfig"] == {"responseModalities": ["TEXT"], "temperature": 0.3}
    assert setup["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert setup["safetySettings"][0]["threshold"] == "OFF"
    # 3.1 takes the question as realtime text
    assert conn.received[1:] == [{"realtimeInput": {"text": "what is trio?"}}]


async def test_a_conversation_so_far_goes_as_initial_history_on_3x(
    client: Client, fake_server: Any
) -> None:
    contents = [
        {"role": "user", "parts": [{"text": "My name is Ada."}]},
        {"role": "model", "parts": [{"text": "Hello Ada."}]},
        {"role": "user", "parts": [{"text": "What is my name?"}]},
    ]
    await ask(client, MODEL_3X, {"contents": contents, "generation_config": {
        "response_modalities": ["TEXT"]}})
    conn = fake_server.connections[0]
    assert conn.setup["historyConfig"] == {"initialHistoryInClientContent": True}
    history, question = conn.received[1:]
    assert history["clientContent"]["turns"] == contents[:2]
    assert not history["clientContent"].get("turnComplete")
    assert question == {"realtimeInput": {"text": "What is my name?"}}
    # the fake model saw the whole conversation
    assert [c["parts"][0]["text"] for c in conn.session.history][:3] == [
        "My name is Ada.",
        "Hello Ada.",
        "What is my name?",
    ]


async def test_older_models_get_one_client_content_turn(client: Client, fake_server: Any) -> None:
    text = await ask(
        client, MODEL_25, {"contents": ["hi"], "generationConfig": {"responseModalities": ["TEXT"]}}
    )
    assert text == "You said: hi"
    (message,) = fake_server.connections[0].received[1:]
    assert message["clientContent"]["turnComplete"] is True


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        ({"contents": ["x"], "toolConfig": {}}, "no tool config"),
        ({"contents": ["x"], "cachedContent": "c"}, "no field 'cachedContent'"),
        (
            {"contents": ["x"], "generationConfig": {"responseMimeType": "application/json"}},
            "generationConfig.responseMimeType has no place in a Live session",
        ),
        (
            {"contents": ["x"], "generationConfig": {"temperature": 1}, "config": {}},
            "gives its settings once",
        ),
        ({"contents": ["x"], "generationConfig": "TEXT"}, "generationConfig must be a dict"),
    ],
)
async def test_settings_without_a_place_in_a_live_setup_are_refused(
    client: Client, fake_server: Any, request_: Any, needle: str
) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        await ask(client, MODEL_3X, request_)
    assert all(c.setup is None for c in fake_server.connections)


async def test_config_and_request_settings_are_not_mixed(client: Client) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        await ask(
            client,
            MODEL_3X,
            {"contents": ["x"], "generationConfig": {"temperature": 1}},
            config={"response_modalities": ["TEXT"]},
        )
