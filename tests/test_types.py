"""The typed models: enums, helpers, LiveConfig and its dict conversion, model names."""

from __future__ import annotations

import datetime
import json

import attrs
import pytest
import trio

from gemini_ws._errors import ConfigurationError
from gemini_ws._types import (
    ActivityHandling,
    AudioTranscriptionConfig,
    AutomaticActivityDetection,
    Behavior,
    Blob,
    ClientContent,
    Content,
    ContextWindowCompressionConfig,
    EndSensitivity,
    FunctionCall,
    FunctionDeclaration,
    FunctionResponse,
    GenerationConfig,
    GoAway,
    GoogleSearch,
    HistoryConfig,
    LiveConfig,
    MediaResolution,
    Modality,
    Part,
    PrebuiltVoiceConfig,
    ProactivityConfig,
    RealtimeInput,
    RealtimeInputConfig,
    Scheduling,
    ServerContent,
    SessionResumptionConfig,
    Setup,
    SlidingWindow,
    SpeechConfig,
    StartSensitivity,
    ThinkingConfig,
    ThinkingLevel,
    Tool,
    ToolCall,
    ToolResponse,
    TurnCompleteReason,
    TurnCoverage,
    VoiceConfig,
    audio_chunk,
    normalize_model_name,
    text_turn,
    tool_response,
    video_frame,
)
from gemini_ws._wire import encode, structure_config

# --- enums ---------------------------------------------------------------------------------

ALL_ENUMS = [
    Modality,
    MediaResolution,
    StartSensitivity,
    EndSensitivity,
    ActivityHandling,
    TurnCoverage,
    Behavior,
    Scheduling,
    TurnCompleteReason,
    ThinkingLevel,
]


@pytest.mark.parametrize("cls", ALL_ENUMS)
def test_enum_keeps_unknown_values(cls: type) -> None:
    member = cls("SOMETHING_NEW_2027")
    assert isinstance(member, cls)
    assert isinstance(member, str)
    assert member == "SOMETHING_NEW_2027"
    assert member.value == "SOMETHING_NEW_2027"
    assert str(member) == "SOMETHING_NEW_2027"
    assert not member.is_known
    assert member not in list(cls)  # pseudo-members are not added to the enum
    assert json.loads(json.dumps({"v": member})) == {"v": "SOMETHING_NEW_2027"}


def test_enum_known_values_are_the_members() -> None:
    assert Modality("AUDIO") is Modality.AUDIO
    assert Modality.AUDIO == "AUDIO"
    assert Modality.AUDIO.is_known
    assert {m.value for m in Modality} >= {"TEXT", "AUDIO", "IMAGE", "VIDEO"}
    assert Scheduling("WHEN_IDLE") is Scheduling.WHEN_IDLE
    assert Behavior.NON_BLOCKING.value == "NON_BLOCKING"


def test_enum_rejects_non_strings() -> None:
    with pytest.raises(ValueError):
        Modality(3)


# --- models --------------------------------------------------------------------------------


def test_models_are_frozen_and_accept_lists() -> None:
    content = Content(parts=[Part(text="a"), Part(text="b")], role="user")
    assert content.parts == (Part(text="a"), Part(text="b"))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        content.role = "model"  # type: ignore[misc]
    assert ClientContent(turns=[content]).turns == (content,)
    assert ToolResponse(function_responses=[]).function_responses == ()
    assert hash(content) == hash(Content(parts=(Part(text="a"), Part(text="b")), role="user"))


def test_sequence_fields_refuse_strings_and_scalars() -> None:
    with pytest.raises(ConfigurationError):
        Content(parts="abc")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Content(parts=5)  # type: ignore[arg-type]


def test_defaults() -> None:
    sc = ServerContent()
    assert sc.model_turn is None
    assert sc.turn_complete is False
    assert sc.generation_complete is False
    assert sc.interrupted is False
    assert sc.waiting_for_input is False
    assert sc.usage_metadata is None
    assert FunctionCall(name="f").args == {}
    assert FunctionCall(name="f").id is None
    assert GoAway().time_left == datetime.timedelta(0)
    assert RealtimeInput().media_chunks == ()


def test_server_content_text_and_audio() -> None:
    sc = ServerContent(
        model_turn=Content(
            parts=(
                Part(text="thinking...", thought=True),
                Part(text="Hello "),
                Part(inline_data=Blob("audio/pcm;rate=24000", b"\x01\x02")),
                Part(inline_data=Blob("image/png", b"PNG")),
                Part(text="world"),
                Part(inline_data=Blob("audio/pcm", b"\x03\x04")),
            )
        )
    )
    assert sc.text == "Hello world"  # thought parts excluded
    assert sc.thought_text == "thinking..."
    assert sc.audio == b"\x01\x02\x03\x04"  # only audio/* inline data
    assert ServerContent().text == ""
    assert ServerContent().audio == b""
    assert ServerContent(model_turn=Content()).text == ""


def test_speech_config_shortcut() -> None:
    assert SpeechConfig.voice("Kore", "en-US") == SpeechConfig(
        voice_config=VoiceConfig(prebuilt_voice_config=PrebuiltVoiceConfig(voice_name="Kore")),
        language_code="en-US",
    )


# --- model names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gemini-3.1-flash-live-preview", "models/gemini-3.1-flash-live-preview"),
        ("models/gemini-2.0-flash-live-001", "models/gemini-2.0-flash-live-001"),
        ("tunedModels/my-model-123", "tunedModels/my-model-123"),
        (
            "projects/p/locations/us-central1/publishers/google/models/gemini-live-2.5-flash",
            "projects/p/locations/us-central1/publishers/google/models/gemini-live-2.5-flash",
        ),
        ("publishers/google/models/x", "publishers/google/models/x"),
    ],
)
def test_normalize_model_name(name: str, expected: str) -> None:
    assert normalize_model_name(name) == expected


@pytest.mark.parametrize(
    "name", ["", "   ", "models/models/gemini-2.0", "models/", "gemini 2", "a/", None, 5]
)
def test_normalize_model_name_refuses(name: object) -> None:
    with pytest.raises(ConfigurationError):
        normalize_model_name(name)  # type: ignore[arg-type]


# --- helpers -------------------------------------------------------------------------------


def test_text_turn() -> None:
    msg = text_turn("Hello")
    assert msg == ClientContent(
        turns=(Content(parts=(Part(text="Hello"),), role="user"),), turn_complete=True
    )
    assert text_turn("x", role="model", turn_complete=False).turn_complete is False
    assert text_turn("x", role="model", turn_complete=False).turns[0].role == "model"
    with pytest.raises(ConfigurationError):
        text_turn(b"bytes")  # type: ignore[arg-type]


def test_audio_chunk() -> None:
    msg = audio_chunk(b"\x00\x01\x02\x03")
    assert msg == RealtimeInput(audio=Blob("audio/pcm;rate=16000", b"\x00\x01\x02\x03"))
    assert audio_chunk(bytearray(2), sample_rate=24000).audio == Blob(
        "audio/pcm;rate=24000", b"\x00\x00"
    )
    assert audio_chunk(memoryview(b"ab")).audio.data == b"ab"  # type: ignore[union-attr]
    assert audio_chunk(b"").audio.data == b""  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("pcm", "rate"),
    [
        (b"\x00", 16000),
        ("text", 16000),
        (None, 16000),
        (b"\x00\x00", 0),
        (b"\x00\x00", -8000),
        (b"\x00\x00", 16000.0),
        (b"\x00\x00", True),
        (b"\x00\x00", "16000"),
    ],
)
def test_audio_chunk_refuses(pcm: object, rate: object) -> None:
    with pytest.raises(ConfigurationError):
        audio_chunk(pcm, sample_rate=rate)  # type: ignore[arg-type]


def test_video_frame() -> None:
    assert video_frame(b"\xff\xd8").video == Blob("image/jpeg", b"\xff\xd8")
    assert video_frame(b"PNG", "image/png").video == Blob("image/png", b"PNG")
    with pytest.raises(ConfigurationError):
        video_frame(b"x", "image/gif")
    with pytest.raises(ConfigurationError):
        video_frame("not bytes")  # type: ignore[arg-type]


CALL = ToolCall(
    function_calls=(
        FunctionCall(name="get_weather", args={"location": "Redmond"}, id="function-call-1"),
        FunctionCall(name="turn_on", args={}, id="function-call-2"),
    )
)


def test_tool_response_by_id_and_name() -> None:
    resp = tool_response(CALL, {"function-call-1": {"temp_c": 12}, "turn_on": True})
    assert resp == ToolResponse(
        function_responses=(
            FunctionResponse(id="function-call-1", name="get_weather", response={"temp_c": 12}),
            FunctionResponse(id="function-call-2", name="turn_on", response={"result": True}),
        )
    )
    assert CALL.respond({"function-call-1": 1, "function-call-2": 2}) == tool_response(
        CALL, {"get_weather": 1, "turn_on": 2}
    )


def test_tool_response_callable_and_scheduling() -> None:
    resp = CALL.respond(lambda fc: f"ran {fc.name}", scheduling="WHEN_IDLE")
    assert [r.response for r in resp.function_responses] == [
        {"result": "ran get_weather"},
        {"result": "ran turn_on"},
    ]
    assert all(r.scheduling is Scheduling.WHEN_IDLE for r in resp.function_responses)
    assert [r.id for r in resp.function_responses] == ["function-call-1", "function-call-2"]


async def test_arespond_awaits_async_functions_and_respond_refuses_them() -> None:
    async def run(fc: FunctionCall) -> str:
        await trio.sleep(0)
        return f"ran {fc.name}"

    resp = await CALL.arespond(run, scheduling="SILENT")
    assert [r.response for r in resp.function_responses] == [
        {"result": "ran get_weather"},
        {"result": "ran turn_on"},
    ]
    assert all(r.scheduling is Scheduling.SILENT for r in resp.function_responses)
    # a plain function and a mapping work through arespond too
    assert await CALL.arespond(lambda fc: 1) == CALL.respond(lambda fc: 1)
    assert await CALL.arespond({"get_weather": 1, "turn_on": 2}) == CALL.respond(
        {"get_weather": 1, "turn_on": 2}
    )
    # respond() with an async function: a clear error, and no "never awaited" warning
    # (the suite turns warnings into errors)
    with pytest.raises(ConfigurationError, match="arespond"):
        CALL.respond(run)
    with pytest.raises(ConfigurationError, match="no id"):
        await ToolCall(function_calls=(FunctionCall(name="f"),)).arespond(run)


def test_tool_response_refusals() -> None:
    with pytest.raises(ConfigurationError, match="no id"):
        tool_response(ToolCall(function_calls=(FunctionCall(name="f"),)), {"f": 1})
    with pytest.raises(ConfigurationError, match="no result"):
        tool_response(CALL, {"get_weather": 1})
    with pytest.raises(ConfigurationError, match="unknown"):
        tool_response(CALL, {"get_weather": 1, "turn_on": 2, "typo": 3})
    with pytest.raises(ConfigurationError):
        tool_response("not a call", {})  # type: ignore[arg-type]


# --- LiveConfig ----------------------------------------------------------------------------


def test_live_config_from_plain_dicts() -> None:
    cfg = LiveConfig(
        response_modalities=["AUDIO"],
        output_audio_transcription={},
        input_audio_transcription=AudioTranscriptionConfig(),
        speech_config={"voiceConfig": {"prebuilt_voice_config": {"voiceName": "Kore"}}},
        thinking_config={"thinking_budget": 0, "thinkingLevel": "low"},
        realtime_input_config={
            "automatic_activity_detection": {
                "disabled": True,
                "startOfSpeechSensitivity": "START_SENSITIVITY_LOW",
            },
            "turn_coverage": TurnCoverage.TURN_INCLUDES_ALL_INPUT,
        },
        session_resumption={},
        context_window_compression={"trigger_tokens": 100, "slidingWindow": {"targetTokens": 50}},
        proactivity={"proactive_audio": True},
        history_config={"initial_history_in_client_content": True},
        tools=[{"function_declarations": [{"name": "f", "parameters": {"type_x": 1}}]}],
        system_instruction="Be brief.",
    )
    assert cfg.response_modalities == (Modality.AUDIO,)
    assert cfg.output_audio_transcription == AudioTranscriptionConfig()
    assert cfg.speech_config == SpeechConfig.voice("Kore")
    assert cfg.thinking_config == ThinkingConfig(
        thinking_budget=0, thinking_level=ThinkingLevel("low")
    )
    assert cfg.realtime_input_config == RealtimeInputConfig(
        automatic_activity_detection=AutomaticActivityDetection(
            disabled=True, start_of_speech_sensitivity=StartSensitivity.START_SENSITIVITY_LOW
        ),
        turn_coverage=TurnCoverage.TURN_INCLUDES_ALL_INPUT,
    )
    assert cfg.session_resumption == SessionResumptionConfig()
    assert cfg.context_window_compression == ContextWindowCompressionConfig(
        trigger_tokens=100, sliding_window=SlidingWindow(target_tokens=50)
    )
    assert cfg.proactivity == ProactivityConfig(proactive_audio=True)
    assert cfg.history_config == HistoryConfig(initial_history_in_client_content=True)
    assert cfg.tools == (
        Tool(function_declarations=(FunctionDeclaration(name="f", parameters={"type_x": 1}),)),
    )
    assert cfg.system_instruction == Content(parts=(Part(text="Be brief."),), role="user")


def test_live_config_to_setup() -> None:
    cfg = LiveConfig(response_modalities=["TEXT"], temperature=1, seed=7)
    setup = cfg.to_setup("gemini-3.1-flash-live-preview")
    assert setup == Setup(
        model="models/gemini-3.1-flash-live-preview",
        generation_config=GenerationConfig(
            response_modalities=(Modality.TEXT,), temperature=1.0, seed=7
        ),
    )
    assert isinstance(setup.generation_config.temperature, float)  # type: ignore[union-attr]
    assert LiveConfig().to_setup("m") == Setup(model="models/m")
    with pytest.raises(ConfigurationError):
        LiveConfig().to_setup("models/models/m")


def test_live_config_evolve() -> None:
    cfg = LiveConfig(response_modalities=["AUDIO"])
    new = cfg.evolve(session_resumption={"handle": "h1"})
    assert new.session_resumption == SessionResumptionConfig(handle="h1")
    assert new.response_modalities == (Modality.AUDIO,)
    assert cfg.session_resumption is None
    assert attrs.evolve(cfg, temperature=0.5).temperature == 0.5
    with pytest.raises(ConfigurationError):
        cfg.evolve(no_such_field=1)
    with pytest.raises(ConfigurationError):
        cfg.evolve(session_resumption={"handel": "h1"})


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"top_k": 1.5}, "top_k"),
        ({"seed": "7"}, "seed"),
        ({"enable_affective_dialog": "yes"}, "enable_affective_dialog"),
        ({"media_resolution": 3}, "media_resolution"),
        ({"response_modalities": [1]}, "response_modalities"),
        ({"response_modalities": {"AUDIO": 1}}, "response_modalities"),
        ({"response_modalities": ["TXT"]}, "unknown modality 'TXT' (known: TEXT, AUDIO"),
        ({"response_modalities": ["TXT"]}, "did you mean 'TEXT'?"),
        ({"speech_config": "Kore"}, "speech_config"),
        ({"speech_config": {"voice_nme": "Kore"}}, "voice_nme"),
        (
            {"speech_config": {"voice_config": {"prebuilt_voice_config": {"voice_name": 5}}}},
            "speech_config.voice_config.prebuilt_voice_config.voice_name",
        ),
        (
            {"realtime_input_config": {"automatic_activity_detection": {"disabled": "no"}}},
            "disabled",
        ),
        ({"context_window_compression": {"trigger_tokens": "many"}}, "trigger_tokens"),
        ({"tools": "google_search"}, "tools"),
        ({"tools": [{"google_search": []}]}, "google_search"),
        ({"tools": [{"function_declarations": [{"description": "no name"}]}]}, "name"),
        ({"system_instruction": 42}, "system_instruction"),
        ({"output_audio_transcription": {"bogus": 1}}, "bogus"),
    ],
)
def test_live_config_bad_values(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        LiveConfig(**kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)
    assert type(info.value.__cause__) is not KeyError


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ({"response_modalites": ["TEXT"]}, "did you mean 'response_modalities'?"),
        ({"responseModalites": ["TEXT"]}, "did you mean 'response_modalities'?"),
        ({"speech_config": {"voice_confg": {}}}, "did you mean 'voice_config'?"),
        ({"no_such_thing": 1}, "(known: response_modalities, "),
    ],
)
def test_config_dict_typos_name_the_nearest_field(value: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        structure_config(value, LiveConfig, "config")
    assert needle in str(info.value)


def test_config_dicts_take_camel_case_keys_at_every_level() -> None:
    cfg = structure_config(
        {
            "responseModalities": ["TEXT"],
            "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}},
        },
        LiveConfig,
    )
    assert cfg == LiveConfig(response_modalities=["TEXT"], speech_config={"voice_config": {
        "prebuilt_voice_config": {"voice_name": "Kore"}}})


def test_structure_config_accepts_typed_objects_inside_dicts() -> None:
    voice = VoiceConfig(prebuilt_voice_config=PrebuiltVoiceConfig("Puck"))
    assert structure_config({"voice_config": voice}, SpeechConfig) == SpeechConfig(
        voice_config=voice
    )
    tools = structure_config(
        {"function_declarations": (FunctionDeclaration(name="a"), {"name": "b"})}, Tool
    )
    assert tools.function_declarations == (FunctionDeclaration("a"), FunctionDeclaration("b"))
    assert structure_config({"googleSearch": {}}, Tool) == Tool(google_search=GoogleSearch())


def test_config_errors_never_show_the_api_key() -> None:
    key = "AIzaSyA-secretsecretsecretsecret12345"
    with pytest.raises(ConfigurationError) as info:
        LiveConfig(speech_config={"language_code": 5, key: 1})
    assert key not in str(info.value)
    assert key not in repr(info.value)


def test_live_config_encodes_like_the_sdk() -> None:
    wire = json.loads(
        encode(
            LiveConfig(
                response_modalities=["AUDIO"],
                output_audio_transcription={},
                system_instruction="You are helpful.",
            ).to_setup("gemini-2.5-flash-native-audio-preview-12-2025")
        )
    )
    assert wire == {
        "setup": {
            "model": "models/gemini-2.5-flash-native-audio-preview-12-2025",
            "generationConfig": {"responseModalities": ["AUDIO"]},
            "systemInstruction": {"parts": [{"text": "You are helpful."}], "role": "user"},
            "outputAudioTranscription": {},
        }
    }


# --- the models' shape: slots, and a codec they do not depend on ---------------------------

#: The models the decoder's fast path builds per streamed chunk (dict classes on purpose).
STREAMING_MODELS = {"ServerContent", "Content", "Part", "Blob", "Transcription"}


def test_models_are_slotted_except_the_streaming_ones() -> None:
    import attrs

    import gemini_ws._types as t

    models = [
        obj
        for name in t.__all__
        if isinstance(obj := getattr(t, name), type) and attrs.has(obj)
    ]
    assert len(models) > 60
    dict_classes = {m.__name__ for m in models if "__slots__" not in m.__dict__}
    assert dict_classes == STREAMING_MODELS
    setup = t.Setup(model="models/m")
    assert not hasattr(setup, "__dict__")  # no instance dict anywhere up the classes
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setup.model = "other"  # type: ignore[misc]
    part = t.Part(text="x")
    assert part.extra == {} and "extra" not in part.__dict__  # the base's slot holds it


def test_the_models_do_not_import_the_wire_codec() -> None:
    """``_types`` builds on ``_codec`` (generic cattrs hooks), ``_wire`` on both: no cycle."""
    import ast
    import pathlib

    import gemini_ws

    root = pathlib.Path(gemini_ws.__file__).parent

    def imported(module: str) -> set[str]:
        tree = ast.parse((root / f"{module}.py").read_text())
        out = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                out.add(node.module or "")
                out.update(alias.name for alias in node.names if node.module is None)
        return out

    assert "_wire" not in imported("_types")
    assert imported("_codec") <= {"_errors"}
    assert {"_types", "_codec"} <= imported("_wire")
