"""The escape hatch both ways: fields this release does not model are kept on received
messages (``msg.extra``) and can be sent (``LiveConfig(extra=...)``, ``extra=`` on any message),
judged from what the fake server received and from SDK-shaped frames."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

import gemini_ws
from gemini_ws import (
    Client,
    ConfigurationError,
    FunctionResponse,
    LiveConfig,
    ServerContent,
    SessionResumed,
    SetupComplete,
    ToolCall,
    UsageMessage,
    decode,
)
from gemini_ws.testing import open_fake_server

from .conftest import TEST_KEY
from .test_resumption import wait_for_handle

MODEL = "gemini-3.1-flash-live-preview"


# --- received: kept, never dropped ------------------------------------------------------------


def test_fields_of_the_newer_service_are_kept_where_they_arrived() -> None:
    # shaped like the service's frames (camelCase, int64 as strings); the "someFuture*"
    # fields stand for what the service adds after this release (tests/test_fields_3x.py
    # checks the fields these once were, now typed)
    transcript = decode(
        json.dumps(
            {
                "serverContent": {
                    "inputTranscription": {
                        "text": "hallo",
                        "speakerLabel": "spk_1",
                        "someFutureField": "x",
                        "someFutureOffset": "0.640s",
                        "someFutureList": [{"word": "hallo", "startOffset": "0.12s"}],
                        "words": [{"word": "hallo", "someFutureConfidence": 0.9}],
                    }
                }
            }
        )
    )
    assert isinstance(transcript, ServerContent)
    heard = transcript.input_transcription
    assert heard is not None and heard.text == "hallo" and heard.speaker_label == "spk_1"
    assert heard.extra == {
        "someFutureField": "x",
        "someFutureOffset": "0.640s",
        "someFutureList": [{"word": "hallo", "startOffset": "0.12s"}],
    }
    assert heard.words[0].word == "hallo"  # typed, and a nested unknown is kept where it was
    assert heard.words[0].extra == {"someFutureConfidence": 0.9}
    call = decode(
        '{"toolCall": {"functionCalls": [{"id": "c1", "name": "f", "someFutureArgs": '
        '[{"jsonPath": "$.city", "stringValue": "Os"}], "willContinue": true}]}}'
    )
    assert isinstance(call, ToolCall)
    assert call.function_calls[0].will_continue is True  # typed
    assert call.function_calls[0].extra == {  # not typed: kept as it came
        "someFutureArgs": [{"jsonPath": "$.city", "stringValue": "Os"}]
    }
    usage = decode(
        '{"usageMetadata": {"totalTokenCount": "12", "someFutureType": "ON_DEMAND", '
        '"someFutureTier": "standard"}}'
    )
    assert isinstance(usage, UsageMessage)
    assert usage.usage_metadata.total_token_count == 12
    assert usage.usage_metadata.extra == {
        "someFutureType": "ON_DEMAND",
        "someFutureTier": "standard",
    }
    setup = decode('{"setupComplete": {"someFutureSignature": {"signature": "abc"}}}')
    assert isinstance(setup, SetupComplete)
    assert setup.extra == {"someFutureSignature": {"signature": "abc"}}


def test_a_message_without_unknown_fields_has_an_empty_extra_and_equal_messages_compare() -> None:
    msg = decode('{"serverContent": {"turnComplete": true}}')
    assert msg == ServerContent(turn_complete=True)
    assert msg.extra == {}
    with_extra = decode('{"serverContent": {"turnComplete": true, "new": 1}}')
    assert with_extra != msg  # what the server said differs
    assert with_extra == ServerContent(turn_complete=True, extra={"new": 1})
    hash(with_extra)  # still hashable: extra is not part of the hash


async def test_the_stream_delivers_unknown_fields_from_the_server() -> None:
    async def responder(turn: Any) -> Any:
        yield {"serverContent": {"modelTurn": {"parts": [{"text": "hi"}]}, "novel": {"a": 1}}}

    async with open_fake_server(api_key=TEST_KEY, responder=responder) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(
                    MODEL, config=LiveConfig(response_modalities=["TEXT"])
                ) as s:
                    await s.send_text("hello")
                    got = [m async for m in s.turn() if isinstance(m, ServerContent)]
    assert got[0].text == "hi" and got[0].extra == {"novel": {"a": 1}}


# --- sent: merged into the wire form ----------------------------------------------------------


# Fields the service knows (the strict fake refuses any other name, as the service does),
# sent through `extra` beside the typed ones; they are typed too now (tests/test_fields_3x.py)
EXTRA = {
    "inputAudioTranscription": {"languageCodes": ["de-DE"], "wordTimestamp": True},
    "generationConfig": {"translationConfig": {"targetLanguageCode": "en"}},
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
}


def test_live_config_extra_merges_into_the_setup() -> None:
    config = LiveConfig(response_modalities=["AUDIO"], input_audio_transcription={}, extra=EXTRA)
    wire = json.loads(gemini_ws.encode(config.to_setup(MODEL)))["setup"]
    assert wire["generationConfig"] == {
        "responseModalities": ["AUDIO"],
        "translationConfig": {"targetLanguageCode": "en"},
    }
    assert wire["inputAudioTranscription"] == {"languageCodes": ["de-DE"], "wordTimestamp": True}
    assert wire["safetySettings"][0]["threshold"] == "BLOCK_NONE"
    # a value of the same name that is not an object replaces the typed one
    override = LiveConfig(temperature=0.2, extra={"generationConfig": {"temperature": 0.9}})
    assert json.loads(gemini_ws.encode(override.to_setup(MODEL)))["setup"]["generationConfig"] == {
        "temperature": 0.9
    }


async def test_extra_setup_fields_reach_the_server_and_survive_a_handover() -> None:
    config = {"response_modalities": ["TEXT"], "session_resumption": {}, "extra": EXTRA}
    events: list[SessionResumed] = []
    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(15):
                async with client.stream(MODEL, config=config, reconnect=True) as s:
                    await s.send_text("one")
                    await s.receive_turn()
                    await wait_for_handle(s)
                    next(c for c in server.connections if c.setup is not None).go_away(1.0)
                    async for msg in s:
                        if isinstance(msg, SessionResumed):
                            events.append(msg)
                            break
                    await s.send_text("two")
                    await s.receive_turn()
        setups = [c.setup for c in server.connections if c.setup is not None]
    assert len(setups) == 2 and events
    for setup in setups:  # the first connection's and the resumed one's
        assert setup["inputAudioTranscription"] == EXTRA["inputAudioTranscription"]
        assert setup["generationConfig"]["translationConfig"] == {"targetLanguageCode": "en"}
        assert setup["generationConfig"]["responseModalities"] == ["TEXT"]
    assert "handle" in setups[1]["sessionResumption"]


async def test_extra_on_a_client_message_is_sent() -> None:
    # a field no server knows yet: the lenient fake takes it (the strict one closes 1007, as
    # the service would for a field it does not know)
    async with open_fake_server(api_key=TEST_KEY, strict=False) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(10):
                async with client.stream(
                    MODEL, config=LiveConfig(response_modalities=["TEXT"])
                ) as s:
                    await s.send_tool_response(
                        FunctionResponse(
                            id="call-1",
                            name="f",
                            response={"ok": True},
                            extra={"someFutureParts": [{"text": "a part"}]},
                        )
                    )
                    conn = next(c for c in server.connections if c.setup is not None)
                    await conn.wait_received(2)
    sent = conn.received[1]["toolResponse"]["functionResponses"][0]
    assert sent == {
        "id": "call-1",
        "name": "f",
        "response": {"ok": True},
        "someFutureParts": [{"text": "a part"}],
    }


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([("a", 1)], "extra must be a dict of wire fields"),
        ({1: "x"}, "field names must be non-empty str"),
        ({"": 1}, "field names must be non-empty str"),
    ],
)
def test_bad_extra_is_a_configuration_error(extra: Any, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        LiveConfig(extra=extra)


async def test_an_extra_value_that_is_not_json_fails_before_anything_is_sent() -> None:
    async with open_fake_server(api_key=TEST_KEY) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with pytest.raises(ConfigurationError, match="JSON"):
                async with client.stream(MODEL, config=LiveConfig(extra={"labels": {1j}})):
                    pass  # pragma: no cover
        assert all(c.setup is None for c in server.connections)


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"thinking_config": {"thinking_level": "HIHG"}}, "did you mean 'HIGH'?"),
        ({"media_resolution": "MEDIA_RESOLUTION_HIHG"}, "did you mean 'MEDIA_RESOLUTION_HIGH'?"),
        (
            {"realtime_input_config": {"activity_handling": "NO_INTERUPTION"}},
            "realtime_input_config.activity_handling: unknown ActivityHandling",
        ),
        (
            {"tools": [{"function_declarations": [{"name": "f", "behavior": "NONBLOCKING"}]}]},
            "did you mean 'NON_BLOCKING'?",
        ),
    ],
)
def test_an_unknown_enum_value_in_a_config_names_the_nearest(
    config: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        LiveConfig(**config)
    assert needle in str(info.value)
    assert "to send a value this release does not know, pass" in str(info.value)


def test_a_value_the_service_added_since_goes_through_as_an_enum_instance() -> None:
    config = LiveConfig(thinking_config={"thinking_level": gemini_ws.ThinkingLevel("ULTRA")})
    wire = json.loads(gemini_ws.encode(config.to_setup(MODEL)))["setup"]
    assert wire["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "ULTRA"}
    # a known name in another case is kept as written (the wire takes "low")
    low = LiveConfig(
        thinking_config={"thinking_level": "low"}, media_resolution="media_resolution_low"
    )
    wire = json.loads(gemini_ws.encode(low.to_setup(MODEL)))["setup"]["generationConfig"]
    assert wire["thinkingConfig"] == {"thinkingLevel": "low"}
    assert wire["mediaResolution"] == "media_resolution_low"
