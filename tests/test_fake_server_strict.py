"""The strict fake (the default): what it refuses, with the service's close codes and reasons,
and that ``strict=False`` accepts the same input. Raw JSON over a plain trio-websocket client,
so nothing of the client library is involved."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from gemini_ws import ConfigurationError
from gemini_ws.testing import FakeLiveServer, open_fake_server
from tests.test_fake_server_helpers import (
    TIMEOUT,
    connect,
    expect_close,
    read_turn,
    recv,
    send,
    setup,
    turn_text,
)

M20 = "models/gemini-2.0-flash-live-001"
M25 = "models/gemini-2.5-flash-native-audio-preview-12-2025"
M31 = "models/gemini-3.1-flash-live-preview"
M38 = "models/gemini-3.8-live"
M38X = "models/gemini-3.8-live-extended-thinking"
INVALID = "Request contains an invalid argument."
DEADLINE = "Deadline expired before operation could complete."
TEXT = {"responseModalities": ["TEXT"]}
PCM = base64.b64encode(b"\x00\x10" * 1600).decode()  # 0.1 s of 16 kHz audio
AUDIO = {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": PCM}}}


def unknown(name: str, path: str) -> str:
    return f"Invalid JSON payload received. Unknown name \"{name}\" at '{path}': Cannot find field."


def cut(reason: str) -> str:
    """A close reason as the wire carries it: at most 123 UTF-8 bytes."""
    return reason.encode("utf-8")[:123].decode("utf-8", errors="ignore")


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


async def run(
    messages: list[dict[str, Any]], *, wait_close: bool = True, **server_options: Any
) -> tuple[list[dict[str, Any]], tuple[int, str | None] | None]:
    """Send ``messages`` (the first is the setup) on one connection; return what the server
    sent and how it closed (``None``: still open 0.5 s after the messages went out, or, with
    ``wait_close``, after the whole time allowed)."""
    got: list[dict[str, Any]] = []
    closed: tuple[int, str | None] | None = None
    async with open_fake_server(**server_options) as server:
        with trio.fail_after(TIMEOUT + 1):
            async with connect(server) as ws:
                for message in messages:
                    await send(ws, message)
                try:
                    with trio.move_on_after(TIMEOUT if wait_close else 0.5):
                        while True:
                            got.append(await recv(ws))
                except ConnectionClosed:
                    reason = await expect_close(ws)
                    closed = (reason.code, reason.reason)
    return got, closed


async def refused(messages: list[dict[str, Any]], **server_options: Any) -> tuple[int, str | None]:
    """How the server closed after ``messages``."""
    _got, closed = await run(messages, **server_options)
    assert closed is not None, "the server did not close"
    return closed


async def accepted(messages: list[dict[str, Any]], **server_options: Any) -> list[dict[str, Any]]:
    """What the server sent after ``messages``; it must not close."""
    got, closed = await run(messages, wait_close=False, **server_options)
    assert closed is None, f"the server closed: {closed}"
    assert got and got[0] == {"setupComplete": {}}
    return got


# ---------------------------------------------------------------------------------------------
# unknown fields at any depth


NESTED_UNKNOWN = [
    pytest.param({"proactivty": {}}, "proactivty", "setup", id="setup"),
    pytest.param(
        {"generationConfig": {"inputAudioTranscription": {}}},
        "inputAudioTranscription",
        "setup.generation_config",
        id="generation_config",
    ),
    pytest.param(
        {"realtimeInputConfig": {"automaticActivityDetection": {"silenceMs": 100}}},
        "silenceMs",
        "setup.realtime_input_config.automatic_activity_detection",
        id="automatic_activity_detection",
    ),
    pytest.param(
        {
            "generationConfig": {
                "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voice_nam": "Kore"}}}
            }
        },
        "voice_nam",
        "setup.generation_config.speech_config.voice_config.prebuilt_voice_config",
        id="typo-deep-snake",
    ),
    pytest.param(
        {"tools": [{"functionDeclaration": [{"name": "f"}]}]},
        "functionDeclaration",
        "setup.tools[0]",
        id="tools[0]",
    ),
    pytest.param(
        {"tools": [{"googleSearch": {}},
                   {"functionDeclarations": [{"name": "f", "parameter": {}}]}]},
        "parameter",
        "setup.tools[1].function_declarations[0]",
        id="tools[1].function_declarations[0]",
    ),
    pytest.param(
        {"tools": [{"codeExecution": {"language": "PYTHON"}}]},
        "language",
        "setup.tools[0].code_execution",
        id="empty-message",
    ),
    pytest.param(
        {"systemInstruction": {"parts": [{"text": "x", "txt": "y"}]}},
        "txt",
        "setup.system_instruction.parts[0]",
        id="system_instruction.parts[0]",
    ),
    pytest.param(
        {"contextWindowCompression": {"slidingWindow": {"target_token": 1}}},
        "target_token",
        "setup.context_window_compression.sliding_window",
        id="sliding_window",
    ),
    pytest.param(
        {"sessionResumption": {"transparent": True}},
        "transparent",
        "setup.session_resumption",
        id="transparent",
    ),
    pytest.param(
        {"explicitVadSignal": True}, "explicitVadSignal", "setup", id="vertex-only-field"
    ),
    pytest.param(
        {"generationConfig": {"thinkingConfig": {"thinkingLevell": "LOW"}}},
        "thinkingLevell",
        "setup.generation_config.thinking_config",
        id="thinking_config",
    ),
]


@pytest.mark.parametrize(("fields", "name", "path"), NESTED_UNKNOWN)
async def test_an_unknown_nested_setup_field_closes_1007(
    fields: dict[str, Any], name: str, path: str
) -> None:
    code, reason = await refused([{"setup": {"model": M20, **fields}}])
    assert (code, reason) == (1007, cut(unknown(name, path)))


@pytest.mark.parametrize(("fields", "name", "path"), NESTED_UNKNOWN)
async def test_lenient_mode_accepts_unknown_nested_fields(
    fields: dict[str, Any], name: str, path: str
) -> None:
    await accepted([{"setup": {"model": M20, **fields}}], strict=False)


async def test_a_long_path_is_cut_to_123_bytes() -> None:
    code, reason = await refused(
        [{"setup": {"model": M20, "realtime_input_config": {"automatic_activity_detection": {
            "silence_duration": 100}}}}]
    )
    full = unknown("silence_duration", "setup.realtime_input_config.automatic_activity_detection")
    assert len(full.encode()) > 123
    assert code == 1007 and reason == full.encode()[:123].decode()


async def test_several_unknown_names_each_get_a_line() -> None:
    code, reason = await refused(
        [{"setup": {"model": M20, "proactivty": {}, "generationConfig": {"temprature": 1}}}]
    )
    assert code == 1007
    assert reason == cut(
        unknown("proactivty", "setup") + "\n" + unknown("temprature", "setup.generation_config")
    )


async def test_a_key_in_neither_casing_is_unknown() -> None:
    # proto JSON takes the lowerCamelCase JSON name or the snake_case proto name, nothing else
    for key in ("VoiceName", "voicename", "voice_Name"):
        code, reason = await refused(
            [{"setup": {"model": M20, "generationConfig": {"speechConfig": {"voiceConfig": {
                "prebuiltVoiceConfig": {key: "Kore"}}}}}}]
        )
        assert code == 1007 and reason is not None
        assert reason.startswith(f'Invalid JSON payload received. Unknown name "{key}" at ')


RICH_SETUP: dict[str, Any] = {
    "model": M25,
    "generationConfig": {
        "responseModalities": ["AUDIO"],
        "temperature": 0.7,
        "topP": 0.95,
        "topK": 40,
        "maxOutputTokens": 1024,
        "candidateCount": 1,
        "presencePenalty": 0,
        "frequencyPenalty": 0,
        "seed": 42,
        "mediaResolution": "MEDIA_RESOLUTION_LOW",
        "speechConfig": {
            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}},
            "languageCode": "en-US",
        },
        "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": True},
        "enableAffectiveDialog": True,
        "translationConfig": {"targetLanguageCode": "en", "echoTargetLanguage": False},
    },
    "systemInstruction": {"role": "user", "parts": [{"text": "You are helpful."}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "turn_on",
                    "description": "Turn the lights on.",
                    "behavior": "NON_BLOCKING",
                    # free-form: never looked into, whatever the keys
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"room_name": {"type": "STRING", "x_custom": 1}},
                        "not_a_schema_key": True,
                    },
                    "response": {"type": "OBJECT", "whatever_key": {"deep_er": 1}},
                }
            ]
        },
        {
            "functionDeclarations": [
                {
                    "name": "json_style",
                    "parametersJsonSchema": {"type": "object", "$defs": {}, "odd_key": 1},
                    "responseJsonSchema": {"anything_goes": [1, {"a_b": 2}]},
                }
            ]
        },
        {"googleSearch": {}},
        {"codeExecution": {}},
        {"urlContext": {}},
    ],
    "realtimeInputConfig": {
        "automaticActivityDetection": {
            "disabled": False,
            "startOfSpeechSensitivity": "START_SENSITIVITY_LOW",
            "endOfSpeechSensitivity": "END_SENSITIVITY_LOW",
            "prefixPaddingMs": 20,
            "silenceDurationMs": 100,
        },
        "activityHandling": "START_OF_ACTIVITY_INTERRUPTS",
        "turnCoverage": "TURN_INCLUDES_ONLY_ACTIVITY",
    },
    "sessionResumption": {},
    "contextWindowCompression": {"triggerTokens": 25600, "slidingWindow": {"targetTokens": 12800}},
    "inputAudioTranscription": {},
    "outputAudioTranscription": {"languageCodes": ["en-US"]},
    "proactivity": {"proactiveAudio": True},
    "historyConfig": {"initialHistoryInClientContent": False},
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    "labels": {"team_name": "a", "anyKey": "b"},
}
FREE_FORM = {"parameters", "response", "parametersJsonSchema", "responseJsonSchema", "labels",
             "args"}


def snake(value: Any) -> Any:
    """``RICH_SETUP`` with every key in its snake_case proto name (free-form values as-is)."""
    if isinstance(value, list):
        return [snake(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        name = "".join("_" + c.lower() if c.isupper() else c for c in key)
        out[name] = item if key in FREE_FORM else snake(item)
    return out


def sdk_style(setup: dict[str, Any]) -> dict[str, Any]:
    """camelCase at the setup's level, snake_case inside, as the Python SDK sends."""
    return {key: snake(item) if isinstance(item, dict) else item for key, item in setup.items()}


@pytest.mark.parametrize(
    "setup_body",
    [RICH_SETUP, snake(RICH_SETUP), sdk_style(RICH_SETUP)],
    ids=["camelCase", "snake_case", "sdk-mixed"],
)
async def test_every_documented_setup_field_is_accepted_in_either_casing(
    setup_body: dict[str, Any],
) -> None:
    assert snake(RICH_SETUP)["generation_config"]["speech_config"]["voice_config"] == {
        "prebuilt_voice_config": {"voice_name": "Kore"}
    }
    end = {"realtime_input": {"audio_stream_end": True}}
    got = await accepted([{"setup": setup_body}, AUDIO, end])
    assert any(m.get("serverContent", {}).get("turnComplete") for m in got)


async def test_free_form_values_in_client_messages_are_not_checked() -> None:
    setup_body = {
        "model": M20,
        "generationConfig": TEXT,
        "tools": [{"functionDeclarations": [{"name": "f"}]}],
    }
    await accepted(
        [
            {"setup": setup_body},
            {"clientContent": {"turns": [{"role": "model", "parts": [
                {"functionCall": {"id": "c1", "name": "f", "args": {"odd_key": {"x_y": 1}}}}]}]}},
            {"toolResponse": {"functionResponses": [
                {"id": "c1", "name": "f", "response": {"result_value": {"nested_thing": 1}},
                 "scheduling": "WHEN_IDLE"}]}},
            {"clientContent": {"turns": [user("hi")], "turnComplete": True}},
        ]
    )


@pytest.mark.parametrize(
    ("message", "name", "path"),
    [
        pytest.param(
            {"clientContent": {"turns": [{"role": "user", "parts": [{"txt": "hi"}]}]}},
            "txt",
            "client_content.turns[0].parts[0]",
            id="client_content.turns[0].parts[0]",
        ),
        pytest.param(
            {"client_content": {"turns": [user("a"), {"role": "user", "text": "b"}]}},
            "text",
            "client_content.turns[1]",
            id="client_content.turns[1]",
        ),
        pytest.param(
            {"clientContent": {"turns": [user("a")], "turn_completed": True}},
            "turn_completed",
            "client_content",
            id="client_content",
        ),
        pytest.param(
            {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": PCM,
                                         "rate": 16000}}},
            "rate",
            "realtime_input.audio",
            id="realtime_input.audio",
        ),
        pytest.param(
            {"realtime_input": {"media_chunks": [{"mime_type": "audio/pcm", "data": PCM,
                                                  "sample_rate": 1}]}},
            "sample_rate",
            "realtime_input.media_chunks[0]",
            id="realtime_input.media_chunks[0]",
        ),
        pytest.param(
            {"toolResponse": {"functionResponses": [{"id": "x", "name": "f", "response": {},
                                                     "schedule": "SILENT"}]}},
            "schedule",
            "tool_response.function_responses[0]",
            id="tool_response.function_responses[0]",
        ),
        pytest.param(
            {"toolResponse": {"functionResponses": [{"id": "x", "name": "f",
                                                     "parts": [{"text": "no text here"}]}]}},
            "text",
            "tool_response.function_responses[0].parts[0]",
            id="function_response.parts[0]",
        ),
        pytest.param(
            {"contextUpdate": {"tools": {"tools": [{"googleSerch": {}}]}}},
            "googleSerch",
            "context_update.tools.tools[0]",
            id="context_update.tools.tools[0]",
        ),
    ],
)
async def test_unknown_fields_in_later_messages_close_1007(
    message: dict[str, Any], name: str, path: str
) -> None:
    first = {"setup": {"model": M20, "generationConfig": TEXT}}
    code, reason = await refused([first, message])
    assert (code, reason) == (1007, cut(unknown(name, path)))
    await accepted([first, message], strict=False)


# ---------------------------------------------------------------------------------------------
# transparent resumption is Vertex only


async def test_transparent_is_refused_strict_and_honoured_lenient() -> None:
    body = {"model": M20, "generationConfig": TEXT, "sessionResumption": {"transparent": True}}
    code, reason = await refused([{"setup": body}])
    assert (code, reason) == (1007, unknown("transparent", "setup.session_resumption"))
    got = await accepted(
        [{"setup": body}, {"clientContent": {"turns": [user("hi")], "turnComplete": True}}],
        strict=False,
    )
    updates = [m["sessionResumptionUpdate"] for m in got if "sessionResumptionUpdate" in m]
    assert updates[-1]["resumable"] is True
    assert updates[-1]["lastConsumedClientMessageIndex"] == "1"


async def test_strict_resumption_sends_no_last_consumed_index() -> None:
    body = {"model": M20, "generationConfig": TEXT, "sessionResumption": {}}
    got = await accepted(
        [{"setup": body}, {"clientContent": {"turns": [user("hi")], "turnComplete": True}}]
    )
    updates = [m["sessionResumptionUpdate"] for m in got if "sessionResumptionUpdate" in m]
    assert updates[-1]["resumable"] is True
    assert all("lastConsumedClientMessageIndex" not in u for u in updates)


# ---------------------------------------------------------------------------------------------
# per-model rules


@pytest.mark.parametrize(
    ("model", "thinking", "reason"),
    [
        (M38, {"thinkingLevel": "LOW"}, "Thinking level is not supported for this model"),
        (M38, {"includeThoughts": True}, "Thinking level is not supported for this model"),
        (M38X, {"thinkingLevel": "MINIMAL"}, INVALID),
        (M38X, {"thinkingLevel": "XHIGH"}, INVALID),
    ],
)
async def test_thinking_settings_the_model_refuses_close_1007(
    model: str, thinking: dict[str, Any], reason: str
) -> None:
    body = {"model": model, "generationConfig": {**TEXT, "thinkingConfig": thinking}}
    assert await refused([{"setup": body}]) == (1007, reason)
    await accepted([{"setup": body}], strict=False)


@pytest.mark.parametrize(
    ("model", "thinking"),
    [
        (M38, None),
        (M38X, {"thinkingLevel": "LOW"}),
        (M38X, {"thinking_level": "medium"}),
        (M38X, {"thinkingLevel": "HIGH", "includeThoughts": True}),
        (M38X, {"thinkingBudget": 1024}),
        (M31, {"thinkingLevel": "MINIMAL"}),
        (M25, {"thinkingBudget": 0}),
    ],
)
async def test_thinking_settings_the_model_takes_are_accepted(
    model: str, thinking: dict[str, Any] | None
) -> None:
    config: dict[str, Any] = dict(TEXT)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    await accepted([{"setup": {"model": model, "generationConfig": config}}])


HISTORY = {"initialHistoryInClientContent": True}


@pytest.mark.parametrize("model", [M31, M38])
@pytest.mark.parametrize(
    "messages",
    [
        pytest.param(
            [{"clientContent": {"turns": [{"parts": [{"text": "hi"}]}], "turnComplete": True}}],
            id="turn-without-role",
        ),
        pytest.param(
            [{"clientContent": {"turns": [user("hi")], "turnComplete": True}}],
            id="no-history-config",
        ),
        pytest.param(
            [{"realtimeInput": {"text": "hi"}}, {"clientContent": {"turns": [user("late")]}}],
            id="after-realtime-input",
        ),
    ],
)
async def test_client_content_on_3x_models_closes_1007(
    model: str, messages: list[dict[str, Any]]
) -> None:
    first = {"setup": {"model": model, "generationConfig": TEXT}}
    assert await refused([first, *messages]) == (1007, INVALID)
    await accepted([first, *messages], strict=False)


async def test_a_turn_without_role_closes_even_as_initial_history() -> None:
    first = {"setup": {"model": M31, "generationConfig": TEXT, "historyConfig": HISTORY}}
    message = {"clientContent": {"turns": [{"parts": [{"text": "hi"}]}]}}
    assert await refused([first, message]) == (1007, INVALID)


async def test_initial_history_on_3x_seeds_the_session_without_a_model_call() -> None:
    first = {"setup": {"model": M31, "generationConfig": TEXT, "historyConfig": HISTORY}}
    history = [
        {"clientContent": {"turns": [user("My name is Ada.")]}},
        {"clientContent": {"turns": [{"role": "model", "parts": [{"text": "Hello Ada."}]}],
                           "turnComplete": True}},
    ]
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await send(ws, first)
                assert await recv(ws) == {"setupComplete": {}}
                for message in history:
                    await send(ws, message)
                with trio.move_on_after(0.3) as quiet:
                    await recv(ws)  # the history starts no model turn
                assert quiet.cancelled_caught
                await send(ws, {"realtimeInput": {"text": "What is my name?"}})
                assert "What is my name?" in turn_text(await read_turn(ws))
                # the history is over: clientContent is refused from now on
                await send(ws, {"clientContent": {"turns": [user("more")], "turnComplete": True}})
                closed = await expect_close(ws)
        conn = server.connections[0]
    assert (closed.code, closed.reason) == (1007, INVALID)
    assert [c["parts"][0]["text"] for c in conn.session.history][:3] == [
        "My name is Ada.",
        "Hello Ada.",
        "What is my name?",
    ]


async def test_initial_history_is_closed_by_its_turn_complete() -> None:
    first = {"setup": {"model": M38, "generationConfig": TEXT, "historyConfig": HISTORY}}
    end = {"clientContent": {"turns": [user("a")], "turnComplete": True}}
    assert await refused([first, end, {"clientContent": {"turns": [user("b")]}}]) == (
        1007,
        INVALID,
    )


async def test_older_models_take_client_content_at_any_time_and_without_role() -> None:
    got = await accepted(
        [
            {"setup": {"model": M25, "generationConfig": TEXT}},
            {"realtimeInput": {"text": "one"}},
            {"clientContent": {"turns": [{"parts": [{"text": "two"}]}], "turnComplete": True}},
        ]
    )
    assert sum(1 for m in got if m.get("serverContent", {}).get("turnComplete")) == 2


MANUAL = {"automaticActivityDetection": {"disabled": True}}
BRACKET = [
    {"realtimeInput": {"activityStart": {}}},
    {"realtimeInput": {"text": "typed"}},
    {"realtimeInput": {"activityEnd": {}}},
]


async def test_activity_end_in_a_text_only_session_closes_1007() -> None:
    first = {"setup": {"model": M25, "generationConfig": TEXT, "realtimeInputConfig": MANUAL}}
    assert await refused([first, *BRACKET]) == (1007, INVALID)
    got = await accepted([first, *BRACKET], strict=False)
    assert any(m.get("serverContent", {}).get("turnComplete") for m in got)


@pytest.mark.parametrize("modality", ["TEXT", "AUDIO"])
async def test_activity_end_is_fine_with_audio_or_in_an_audio_session(modality: str) -> None:
    first = {"setup": {"model": M25, "generationConfig": {"responseModalities": [modality]},
                       "realtimeInputConfig": MANUAL}}
    messages = BRACKET if modality == "AUDIO" else [BRACKET[0], AUDIO, BRACKET[2]]
    got = await accepted([first, *messages])
    assert any(m.get("serverContent", {}).get("turnComplete") for m in got)


# ---------------------------------------------------------------------------------------------
# goAway: production defaults and how a connection ends after it


def test_go_away_defaults_are_the_services() -> None:
    server = FakeLiveServer()
    assert server.strict is True
    assert server.goaway_time_left == 50.0
    assert server.goaway_end == "close_1011"
    assert server.connection_lifetime is None
    assert server.pong_delay == 0.0
    assert server.session_limit is None and server.context_limit_tokens is None
    assert FakeLiveServer(strict=False).strict is False
    with pytest.raises(ConfigurationError, match="goaway_end"):
        FakeLiveServer(goaway_end="close_1001")  # type: ignore[arg-type]


async def test_go_away_announces_fifty_seconds_by_default() -> None:
    async with open_fake_server(connection_lifetime=0.05) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                assert await recv(ws) == {"goAway": {"timeLeft": "50s"}}
                with trio.move_on_after(0.3) as still_open:
                    await ws.get_message()
                assert still_open.cancelled_caught


@pytest.mark.parametrize(
    ("end", "code", "reason"),
    [
        ("close_1011", 1011, DEADLINE),
        ("close_1008", 1008, DEADLINE),
        ("close_1000", 1000, "The operation was cancelled."),
    ],
)
async def test_each_goaway_end_closes_as_the_service_does(end: str, code: int, reason: str) -> None:
    async with open_fake_server(
        connection_lifetime=0.05, goaway_time_left=0.2, goaway_end=end  # type: ignore[arg-type]
    ) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                assert await recv(ws) == {"goAway": {"timeLeft": "0.2s"}}
                started = trio.current_time()
                closed = await expect_close(ws)
                assert trio.current_time() - started >= 0.15
    assert (closed.code, closed.reason) == (code, reason)


async def test_goaway_end_silent_keeps_the_connection_open_and_says_nothing() -> None:
    async with open_fake_server(
        connection_lifetime=0.05, goaway_time_left=0.1, goaway_end="silent"
    ) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, generationConfig=TEXT)
                assert await recv(ws) == {"goAway": {"timeLeft": "0.1s"}}
                conn = server.connections[0]
                while not conn.silent:
                    await trio.sleep(0.01)
                await send(ws, {"clientContent": {"turns": [user("hi")], "turnComplete": True}})
                with trio.move_on_after(0.4) as quiet:
                    await ws.get_message()
                assert quiet.cancelled_caught  # no reply, no close
                await ws.ping(b"still-there")  # pongs still come
                assert conn.is_open and conn.turns == []


async def test_conn_go_away_takes_an_end_and_defaults_to_the_servers_time_left() -> None:
    async with open_fake_server(goaway_time_left=0.1) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                server.connections[0].go_away(end="close_1000")
                assert await recv(ws) == {"goAway": {"timeLeft": "0.1s"}}
                closed = await expect_close(ws)
    assert (closed.code, closed.reason) == (1000, "The operation was cancelled.")


async def test_goaway_close_code_still_overrides_the_end() -> None:
    async with open_fake_server(
        connection_lifetime=0.05, goaway_time_left=0.1, goaway_end="silent", goaway_close_code=1008
    ) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                assert "goAway" in await recv(ws)
                closed = await expect_close(ws)
    assert (closed.code, closed.reason) == (1008, DEADLINE)


# ---------------------------------------------------------------------------------------------
# pongs, measured from the client


@pytest.mark.parametrize(("delay", "low", "high"), [(0.0, 0.0, 0.25), (0.4, 0.4, 1.5)])
async def test_pong_delay_as_the_client_sees_it(delay: float, low: float, high: float) -> None:
    async with open_fake_server(pong_delay=delay) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                for payload in (b"one", b"two"):
                    started = trio.current_time()
                    await ws.ping(payload)
                    rtt = trio.current_time() - started
                    assert low <= rtt < high, rtt
        assert server.connections[0].tcp_nodelay is True


# ---------------------------------------------------------------------------------------------
# session and context limits


async def test_session_limit_closes_1007() -> None:
    async with open_fake_server(session_limit=0.3) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                started = trio.current_time()
                closed = await expect_close(ws)
                elapsed = trio.current_time() - started
    assert (closed.code, closed.reason) == (1007, INVALID)
    assert 0.25 <= elapsed < 2.0
    assert server.connections[0].limit_exceeded == "session"


async def test_session_limit_counts_across_a_resumption() -> None:
    body = {"model": M20, "generationConfig": TEXT, "sessionResumption": {}}
    async with open_fake_server(session_limit=0.8) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await send(ws, {"setup": body})
                assert await recv(ws) == {"setupComplete": {}}
                started = trio.current_time()
                await send(ws, {"clientContent": {"turns": [user("hi")], "turnComplete": True}})
                handle = None
                while handle is None:
                    update = (await recv(ws)).get("sessionResumptionUpdate", {})
                    handle = update.get("newHandle") or None
            await server.connections[0].wait_closed()
            async with connect(server) as ws:
                resumed = {**body, "sessionResumption": {"handle": handle}}
                await send(ws, {"setup": resumed})
                assert await recv(ws) == {"setupComplete": {}}
                closed = await expect_close(ws)
                elapsed = trio.current_time() - started
    assert (closed.code, closed.reason) == (1007, INVALID)
    assert 0.7 <= elapsed < 2.5
    assert server.connections[1].limit_exceeded == "session"


async def test_no_session_limit_with_context_window_compression() -> None:
    await accepted(
        [{"setup": {"model": M20, "contextWindowCompression": {"slidingWindow": {}}}}],
        session_limit=0.05,
    )


async def test_context_limit_closes_1007_when_the_prompt_outgrows_it() -> None:
    first = {"setup": {"model": M20, "generationConfig": TEXT}}
    short = {"clientContent": {"turns": [user("hi")], "turnComplete": True}}
    long = {"clientContent": {"turns": [user("x" * 200)], "turnComplete": True}}  # 50+ tokens
    async with open_fake_server(context_limit_tokens=40) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await send(ws, first)
                assert await recv(ws) == {"setupComplete": {}}
                await send(ws, short)
                assert turn_text(await read_turn(ws)) == "You said: hi"
                await send(ws, long)
                closed = await expect_close(ws)
    assert (closed.code, closed.reason) == (1007, INVALID)
    assert server.connections[0].limit_exceeded == "context"
    compressed = {"setup": {**first["setup"], "contextWindowCompression": {"triggerTokens": 10}}}
    got = await accepted([compressed, long], context_limit_tokens=40)
    assert any(m.get("serverContent", {}).get("turnComplete") for m in got)


# ---------------------------------------------------------------------------------------------
# the quota close stays as it was


async def test_quota_refusal_is_a_1011_after_the_upgrade() -> None:
    async with open_fake_server(max_connections=0) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await send(ws, {"setup": {"model": M20}})
                closed = await expect_close(ws)
    assert (closed.code, closed.reason) == (1011, "Resource has been exhausted (e.g. check quota).")


def test_the_standalone_server_takes_lenient() -> None:
    from gemini_ws.testing.__main__ import _parser

    assert _parser().parse_args(["--lenient"]).lenient is True
    assert _parser().parse_args([]).lenient is False
