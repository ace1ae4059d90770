"""The wire codec: exact JSON for every message, golden samples from PROTOCOL.md, errors."""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
from typing import Any

import pytest

from gemini_ws._errors import ConfigurationError, ProtocolError
from gemini_ws._types import (
    ActivityEnd,
    ActivityHandling,
    ActivityStart,
    AudioTranscriptionConfig,
    AutomaticActivityDetection,
    Behavior,
    Blob,
    ClientContent,
    CodeExecution,
    CodeExecutionResult,
    Content,
    ContextUpdate,
    ContextWindowCompressionConfig,
    EndSensitivity,
    ExecutableCode,
    FileData,
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
    ModalityTokenCount,
    Part,
    PrebuiltVoiceConfig,
    ProactivityConfig,
    RealtimeInput,
    RealtimeInputConfig,
    Scheduling,
    ServerContent,
    SessionResumptionConfig,
    SessionResumptionUpdate,
    Setup,
    SetupComplete,
    SlidingWindow,
    SpeechConfig,
    StartSensitivity,
    ThinkingConfig,
    Tool,
    ToolCall,
    ToolCallCancellation,
    ToolResponse,
    Transcription,
    TurnCompleteReason,
    TurnCoverage,
    UnknownMessage,
    UrlContext,
    UrlContextMetadata,
    UrlMetadata,
    UsageMessage,
    UsageMetadata,
    VadSignalType,
    VoiceActivity,
    VoiceActivityDetectionSignal,
    VoiceActivityType,
    VoiceConfig,
    audio_chunk,
    text_turn,
)
from gemini_ws._wire import (
    b64decode,
    converter,
    decode,
    decode_all,
    decode_client,
    encode,
    encode_server,
    to_wire_dict,
)


def wire(msg: Any) -> Any:
    """encode() and parse the JSON back, checking it is compact."""
    text = encode(msg)
    assert isinstance(text, str)
    assert "\n" not in text and ": " not in text.replace('": "', "")  # compact separators
    return json.loads(text)


def frames(obj: dict[str, Any]) -> list[bytes | str]:
    """The same server message as compact text, pretty-printed binary (as the server sends)."""
    return [json.dumps(obj), json.dumps(obj, indent=2).encode("utf-8")]


PCM = bytes(range(256)) * 2  # contains bytes that differ in the two base64 alphabets
PCM_STD = base64.b64encode(PCM).decode()
PCM_URL = base64.urlsafe_b64encode(PCM).decode()
assert PCM_STD != PCM_URL


# --- client messages: exact wire JSON (round trip through decode_client too) -----------------

CLIENT_CASES: list[tuple[Any, dict[str, Any]]] = [
    (
        ClientContent(
            turns=(Content(parts=(Part(text="Hello"),), role="user"),), turn_complete=True
        ),
        {
            "clientContent": {
                "turns": [{"parts": [{"text": "Hello"}], "role": "user"}],
                "turnComplete": True,
            }
        },
    ),
    (ClientContent(turn_complete=True), {"clientContent": {"turnComplete": True}}),
    (ClientContent(turn_complete=False), {"clientContent": {"turnComplete": False}}),
    (ClientContent(), {"clientContent": {}}),
    (
        ClientContent(
            turns=(
                Content(
                    role="user",
                    parts=(
                        Part(inline_data=Blob("image/png", b"\x89PNG")),
                        Part(
                            file_data=FileData(file_uri="gs://b/f.pdf", mime_type="application/pdf")
                        ),
                    ),
                ),
                Content(
                    role="model",
                    parts=(
                        Part(
                            function_call=FunctionCall(
                                name="f", args={"snake_key": [1, {"x_y": 2}]}, id="c1"
                            )
                        ),
                        Part(text="thought", thought=True, thought_signature=b"\x00sig"),
                        Part(executable_code=ExecutableCode(code="print(1)", language="PYTHON")),
                        Part(
                            code_execution_result=CodeExecutionResult(
                                outcome="OUTCOME_OK", output="1\n"
                            )
                        ),
                    ),
                ),
                Content(
                    role="user",
                    parts=(
                        Part(
                            function_response=FunctionResponse(
                                id="c1", name="f", response={"result_value": 1}
                            )
                        ),
                    ),
                ),
            )
        ),
        {
            "clientContent": {
                "turns": [
                    {
                        "role": "user",
                        "parts": [
                            {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}},
                            {
                                "fileData": {
                                    "fileUri": "gs://b/f.pdf",
                                    "mimeType": "application/pdf",
                                }
                            },
                        ],
                    },
                    {
                        "role": "model",
                        "parts": [
                            {
                                "functionCall": {
                                    "name": "f",
                                    "args": {"snake_key": [1, {"x_y": 2}]},
                                    "id": "c1",
                                }
                            },
                            {"text": "thought", "thought": True, "thoughtSignature": "AHNpZw=="},
                            {"executableCode": {"code": "print(1)", "language": "PYTHON"}},
                            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1\n"}},
                        ],
                    },
                    {
                        "role": "user",
                        "parts": [
                            {
                                "functionResponse": {
                                    "id": "c1",
                                    "name": "f",
                                    "response": {"result_value": 1},
                                }
                            },
                        ],
                    },
                ]
            }
        },
    ),
    # PROTOCOL.md 2.3, exactly what the JS SDK sends
    (
        RealtimeInput(audio=Blob("audio/pcm;rate=16000", b"\x00\x00\x00")),
        {"realtimeInput": {"audio": {"data": "AAAA", "mimeType": "audio/pcm;rate=16000"}}},
    ),
    (RealtimeInput(activity_start=ActivityStart()), {"realtimeInput": {"activityStart": {}}}),
    (RealtimeInput(activity_end=ActivityEnd()), {"realtimeInput": {"activityEnd": {}}}),
    (RealtimeInput(audio_stream_end=True), {"realtimeInput": {"audioStreamEnd": True}}),
    (RealtimeInput(text="typed text"), {"realtimeInput": {"text": "typed text"}}),
    (
        RealtimeInput(video=Blob("image/jpeg", b"\xff\xd8\xff")),
        {"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": "/9j/"}}},
    ),
    (
        RealtimeInput(media_chunks=(Blob("audio/pcm", b"\x00\x01"),)),
        {"realtimeInput": {"mediaChunks": [{"mimeType": "audio/pcm", "data": "AAE="}]}},
    ),
    (
        audio_chunk(PCM, 24000),
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=24000", "data": PCM_STD}}},
    ),
    # PROTOCOL.md 2.4
    (
        ToolResponse(
            function_responses=(
                FunctionResponse(
                    id="function-call-5831923424298605773",
                    name="get_current_weather",
                    response={"result": "ok"},
                    scheduling=Scheduling.WHEN_IDLE,
                ),
            )
        ),
        {
            "toolResponse": {
                "functionResponses": [
                    {
                        "id": "function-call-5831923424298605773",
                        "name": "get_current_weather",
                        "response": {"result": "ok"},
                        "scheduling": "WHEN_IDLE",
                    }
                ]
            }
        },
    ),
    (
        ToolResponse(
            function_responses=(
                FunctionResponse(id="a", name="n", response={}, will_continue=False),
            )
        ),
        {
            "toolResponse": {
                "functionResponses": [
                    {"id": "a", "name": "n", "response": {}, "willContinue": False}
                ]
            }
        },
    ),
    (
        ContextUpdate(
            system_instruction=Content(parts=(Part(text="New"),), role="user"),
            tools=(Tool(google_search=GoogleSearch()),),
        ),
        {
            "contextUpdate": {
                "systemInstruction": {"parts": [{"text": "New"}], "role": "user"},
                "tools": {"tools": [{"googleSearch": {}}]},
            }
        },
    ),
    (ContextUpdate(tools=()), {"contextUpdate": {"tools": {"tools": []}}}),
    (Setup(model="models/m"), {"setup": {"model": "models/m"}}),
    (
        Setup(
            model="models/m",
            session_resumption=SessionResumptionConfig(),
            input_audio_transcription=AudioTranscriptionConfig(),
            tools=(Tool(code_execution=CodeExecution(), url_context=UrlContext()),),
        ),
        {
            "setup": {
                "model": "models/m",
                "sessionResumption": {},
                "inputAudioTranscription": {},
                "tools": [{"codeExecution": {}, "urlContext": {}}],
            }
        },
    ),
]


@pytest.mark.parametrize(("msg", "expected"), CLIENT_CASES)
def test_client_message_exact_json(msg: Any, expected: dict[str, Any]) -> None:
    assert wire(msg) == expected
    assert to_wire_dict(msg) == expected


@pytest.mark.parametrize(("msg", "expected"), CLIENT_CASES)
def test_client_message_decodes_back(msg: Any, expected: dict[str, Any]) -> None:
    assert decode_client(json.dumps(expected)) == msg
    assert decode_client(encode(msg).encode()) == msg


SETUP_SAMPLE = {  # PROTOCOL.md 2.1, comments removed
    "setup": {
        "model": "models/gemini-2.5-flash-native-audio-preview-12-2025",
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
            "thinkingConfig": {
                "thinkingBudget": 0,
                "thinkingLevel": "low",
                "includeThoughts": True,
            },
            "enableAffectiveDialog": True,
        },
        "systemInstruction": {"parts": [{"text": "You are helpful."}], "role": "user"},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "turn_on",
                        "description": "…",
                        "parameters": {"type": "OBJECT", "properties": {"x": {"type": "STRING"}}},
                        "behavior": "NON_BLOCKING",
                    }
                ]
            },
            {"googleSearch": {}},
            {"codeExecution": {}},
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
        "sessionResumption": {"handle": "<previous newHandle>"},
        "contextWindowCompression": {
            "triggerTokens": 25600,
            "slidingWindow": {"targetTokens": 12800},
        },
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
        "proactivity": {"proactiveAudio": True},
        "historyConfig": {"initialHistoryInClientContent": True},
    }
}


def sample_live_config() -> LiveConfig:
    return LiveConfig(
        response_modalities=["AUDIO"],
        temperature=0.7,
        top_p=0.95,
        top_k=40,
        max_output_tokens=1024,
        candidate_count=1,
        presence_penalty=0,
        frequency_penalty=0,
        seed=42,
        media_resolution="MEDIA_RESOLUTION_LOW",
        speech_config={
            "voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}},
            "language_code": "en-US",
        },
        thinking_config={"thinking_budget": 0, "thinking_level": "low", "include_thoughts": True},
        enable_affective_dialog=True,
        system_instruction="You are helpful.",
        tools=[
            Tool(
                function_declarations=(
                    FunctionDeclaration(
                        name="turn_on",
                        description="…",
                        parameters={"type": "OBJECT", "properties": {"x": {"type": "STRING"}}},
                        behavior=Behavior.NON_BLOCKING,
                    ),
                )
            ),
            {"google_search": {}},
            {"codeExecution": {}},
        ],
        realtime_input_config=RealtimeInputConfig(
            automatic_activity_detection=AutomaticActivityDetection(
                disabled=False,
                start_of_speech_sensitivity=StartSensitivity.START_SENSITIVITY_LOW,
                end_of_speech_sensitivity=EndSensitivity.END_SENSITIVITY_LOW,
                prefix_padding_ms=20,
                silence_duration_ms=100,
            ),
            activity_handling=ActivityHandling.START_OF_ACTIVITY_INTERRUPTS,
            turn_coverage=TurnCoverage.TURN_INCLUDES_ONLY_ACTIVITY,
        ),
        session_resumption={"handle": "<previous newHandle>"},
        context_window_compression={
            "trigger_tokens": 25600,
            "sliding_window": {"target_tokens": 12800},
        },
        input_audio_transcription={},
        output_audio_transcription={},
        proactivity={"proactive_audio": True},
        history_config={"initial_history_in_client_content": True},
    )


def test_golden_setup_sample_from_live_config() -> None:
    setup = sample_live_config().to_setup("gemini-2.5-flash-native-audio-preview-12-2025")
    assert wire(setup) == SETUP_SAMPLE


def test_golden_setup_sample_typed_values() -> None:
    setup = decode_client(json.dumps(SETUP_SAMPLE))
    assert setup == sample_live_config().to_setup("gemini-2.5-flash-native-audio-preview-12-2025")
    assert isinstance(setup, Setup)
    gen = setup.generation_config
    assert gen == GenerationConfig(
        response_modalities=(Modality.AUDIO,),
        temperature=0.7,
        top_p=0.95,
        top_k=40,
        max_output_tokens=1024,
        candidate_count=1,
        presence_penalty=0.0,
        frequency_penalty=0.0,
        seed=42,
        media_resolution=MediaResolution.MEDIA_RESOLUTION_LOW,
        speech_config=SpeechConfig(
            voice_config=VoiceConfig(prebuilt_voice_config=PrebuiltVoiceConfig("Kore")),
            language_code="en-US",
        ),
        thinking_config=ThinkingConfig(
            thinking_budget=0,
            thinking_level="low",  # type: ignore[arg-type]
            include_thoughts=True,
        ),
        enable_affective_dialog=True,
    )
    assert setup.context_window_compression == ContextWindowCompressionConfig(
        25600, SlidingWindow(12800)
    )
    assert setup.proactivity == ProactivityConfig(True)
    assert setup.history_config == HistoryConfig(True)


def test_python_sdk_client_frames_decode() -> None:
    """PROTOCOL.md 2.3: the Python SDK's snake_case keys and URL-safe base64."""
    audio = decode_client(
        '{"realtime_input": {"audio": {"data": "__79AAH__v0AAf_-_QAB",'
        ' "mime_type": "audio/pcm;rate=16000"}}}'
    )
    assert audio == RealtimeInput(
        audio=Blob("audio/pcm;rate=16000", base64.urlsafe_b64decode("__79AAH__v0AAf_-_QAB"))
    )
    video = decode_client(
        '{"realtime_input": {"video": {"data": "_9j_", "mime_type": "image/jpeg"}}}'
    )
    assert video == RealtimeInput(video=Blob("image/jpeg", b"\xff\xd8\xff"))
    assert decode_client('{"realtime_input": {"text": "typed text"}}') == RealtimeInput(
        text="typed text"
    )
    assert decode_client('{"realtime_input": {"activityStart": {}}}') == RealtimeInput(
        activity_start=ActivityStart()
    )
    assert decode_client('{"realtime_input": {"audioStreamEnd": true}}') == RealtimeInput(
        audio_stream_end=True
    )
    assert decode_client(
        '{"realtime_input": {"mediaChunks": [{"data": "AAE=", "mime_type": "audio/pcm"}]}}'
    ) == RealtimeInput(media_chunks=(Blob("audio/pcm", b"\x00\x01"),))
    tool = decode_client(
        '{"tool_response": {"functionResponses": [{"scheduling": "WHEN_IDLE", "id": "call-1",'
        ' "name": "turn_on", "response": {"result": "ok"}}]}}'
    )
    assert tool == ToolResponse(
        function_responses=(
            FunctionResponse(
                id="call-1",
                name="turn_on",
                response={"result": "ok"},
                scheduling=Scheduling.WHEN_IDLE,
            ),
        )
    )
    assert decode_client('{"client_content": {"turn_complete": true}}') == ClientContent(
        turn_complete=True
    )


def test_decode_client_refuses_non_messages() -> None:
    for bad in [
        "{}",
        '{"setup": {"model": "m"}, "clientContent": {}}',
        '{"serverContent": {}}',
        "[]",
        '{"setup": {}}',
        '{"setup": {"model": 5}}',
    ]:
        with pytest.raises(ProtocolError):
            decode_client(bad)


def test_encode_refuses_bad_messages() -> None:
    with pytest.raises(ConfigurationError, match="id"):
        encode(ToolResponse(function_responses=(FunctionResponse(id=None, name="f"),)))
    with pytest.raises(ConfigurationError, match="id"):
        encode(ToolResponse(function_responses=(FunctionResponse(id="", name="f"),)))
    with pytest.raises(ConfigurationError, match="not a client message"):
        encode(ServerContent())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not a client message"):
        encode({"setup": {}})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="text"):
        encode(RealtimeInput(text=5))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"turns\[0\].parts\[0\].inline_data.data"):
        encode(ClientContent(turns=(Content(parts=(Part(inline_data=Blob("a", "x")),)),)))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="JSON"):
        encode(
            ToolResponse(
                function_responses=(FunctionResponse(id="1", name="f", response={"x": object()}),)
            )
        )
    with pytest.raises(ConfigurationError):
        encode(Setup(model="m", generation_config=GenerationConfig(temperature=float("nan"))))


def test_encode_durations_and_server_messages() -> None:
    assert json.loads(encode_server(GoAway(time_left=datetime.timedelta(seconds=10)))) == {
        "goAway": {"timeLeft": "10s"}
    }
    assert json.loads(encode_server(GoAway(time_left=datetime.timedelta(seconds=9.5)))) == {
        "goAway": {"timeLeft": "9.5s"}
    }
    assert json.loads(encode_server(GoAway(time_left=datetime.timedelta(microseconds=1)))) == {
        "goAway": {"timeLeft": "0.000001s"}
    }
    with pytest.raises(ConfigurationError):
        encode_server(Setup(model="m"))  # type: ignore[arg-type]


def test_cattrs_converter_speaks_the_wire() -> None:
    assert converter.unstructure(Part(inline_data=Blob("a/b", b"\x00"))) == {
        "inlineData": {"mimeType": "a/b", "data": "AA=="}
    }
    assert converter.structure({"inlineData": {"mimeType": "a/b", "data": "AA"}}, Part) == Part(
        inline_data=Blob("a/b", b"\x00")
    )
    assert converter.structure("TEXT", Modality) is Modality.TEXT
    with pytest.raises(ProtocolError):
        converter.structure({"text": 5}, Part)


# --- server messages: golden samples and every type -----------------------------------------

USAGE_SAMPLE = {  # PROTOCOL.md 3.7, a real recording
    "serverContent": {"turnComplete": True},
    "usageMetadata": {
        "promptTokenCount": 515,
        "responseTokenCount": 38,
        "totalTokenCount": 553,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 515}],
        "responseTokensDetails": [{"modality": "TEXT", "tokenCount": 38}],
    },
}
USAGE_VALUE = UsageMetadata(
    prompt_token_count=515,
    response_token_count=38,
    total_token_count=553,
    prompt_tokens_details=(ModalityTokenCount(Modality.TEXT, 515),),
    response_tokens_details=(ModalityTokenCount(Modality.TEXT, 38),),
)

SERVER_CASES: list[tuple[dict[str, Any], Any]] = [
    ({"setupComplete": {}}, SetupComplete()),
    ({"setupComplete": {"sessionId": "f162d11d-1"}}, SetupComplete(session_id="f162d11d-1")),
    (USAGE_SAMPLE, ServerContent(turn_complete=True, usage_metadata=USAGE_VALUE)),
    ({"serverContent": {"generationComplete": True}}, ServerContent(generation_complete=True)),
    ({"serverContent": {"interrupted": True}}, ServerContent(interrupted=True)),
    (
        {"serverContent": {"outputTranscription": {}}},
        ServerContent(output_transcription=Transcription()),
    ),
    (
        {"serverContent": {"inputTranscription": {"text": "hi", "finished": True}}},
        ServerContent(input_transcription=Transcription(text="hi", finished=True)),
    ),
    (  # Gemini 3.1 style: several parts and a transcript in one event
        {
            "serverContent": {
                "modelTurn": {
                    "role": "model",
                    "parts": [
                        {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": PCM_STD}},
                        {"text": "Hel"},
                        {"text": "secret plan", "thought": True},
                        {"text": "lo"},
                    ],
                },
                "outputTranscription": {"text": "Hello"},
                "turnComplete": True,
                "turnCompleteReason": "NEED_MORE_INPUT",
                "waitingForInput": True,
                "groundingMetadata": {"webSearchQueries": ["q"], "search_entry_point": {"a_b": 1}},
                "urlContextMetadata": {
                    "urlMetadata": [
                        {
                            "retrievedUrl": "https://x",
                            "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_SUCCESS",
                        }
                    ]
                },
            }
        },
        ServerContent(
            model_turn=Content(
                role="model",
                parts=(
                    Part(inline_data=Blob("audio/pcm;rate=24000", PCM)),
                    Part(text="Hel"),
                    Part(text="secret plan", thought=True),
                    Part(text="lo"),
                ),
            ),
            output_transcription=Transcription(text="Hello"),
            turn_complete=True,
            turn_complete_reason=TurnCompleteReason.NEED_MORE_INPUT,
            waiting_for_input=True,
            grounding_metadata={"webSearchQueries": ["q"], "search_entry_point": {"a_b": 1}},
            url_context_metadata=UrlContextMetadata(
                url_metadata=(UrlMetadata("https://x", "URL_RETRIEVAL_STATUS_SUCCESS"),)
            ),
        ),
    ),
    (  # PROTOCOL.md 3.2: code execution parts
        {
            "serverContent": {
                "modelTurn": {
                    "parts": [
                        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}},
                    ]
                }
            }
        },
        ServerContent(
            model_turn=Content(
                parts=(
                    Part(executable_code=ExecutableCode(code="print(1)", language="PYTHON")),
                    Part(
                        code_execution_result=CodeExecutionResult(outcome="OUTCOME_OK", output="1")
                    ),
                )
            )
        ),
    ),
    (  # PROTOCOL.md 3.3
        {
            "toolCall": {
                "functionCalls": [
                    {
                        "name": "get_current_weather",
                        "args": {"location": "Redmond, WA"},
                        "id": "function-call-5831923424298605773",
                    }
                ]
            }
        },
        ToolCall(
            function_calls=(
                FunctionCall(
                    name="get_current_weather",
                    args={"location": "Redmond, WA"},
                    id="function-call-5831923424298605773",
                ),
            )
        ),
    ),
    (
        {"toolCallCancellation": {"ids": ["function-call-1", "function-call-2"]}},
        ToolCallCancellation(ids=("function-call-1", "function-call-2")),
    ),
    ({"goAway": {"timeLeft": "10s"}}, GoAway(time_left=datetime.timedelta(seconds=10))),
    ({"goAway": {"timeLeft": "9.5s"}}, GoAway(time_left=datetime.timedelta(seconds=9.5))),
    ({"goAway": {"timeLeft": "50s"}}, GoAway(time_left=datetime.timedelta(seconds=50))),
    (  # PROTOCOL.md 3.6: int64 as a JSON string
        {
            "sessionResumptionUpdate": {
                "newHandle": "<opaque>",
                "resumable": True,
                "lastConsumedClientMessageIndex": "123",
            }
        },
        SessionResumptionUpdate(
            new_handle="<opaque>", resumable=True, last_consumed_client_message_index=123
        ),
    ),
    (
        {
            "sessionResumptionUpdate": {
                "newHandle": "h1",
                "resumable": True,
                "lastConsumedClientMessageIndex": 7,
            }
        },
        SessionResumptionUpdate(
            new_handle="h1", resumable=True, last_consumed_client_message_index=7
        ),
    ),
    ({"sessionResumptionUpdate": {}}, SessionResumptionUpdate()),
    (
        {"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_SOS"}},
        VoiceActivityDetectionSignal(vad_signal_type=VadSignalType.VAD_SIGNAL_TYPE_SOS),
    ),
    (
        {"voiceActivity": {"voiceActivityType": "ACTIVITY_END", "audioOffset": "1.25s"}},
        VoiceActivity(
            voice_activity_type=VoiceActivityType.ACTIVITY_END,
            audio_offset=datetime.timedelta(seconds=1.25),
        ),
    ),
    ({"usageMetadata": {"totalTokenCount": 3}}, UsageMessage(UsageMetadata(total_token_count=3))),
    ({"brandNewMessage": {"x": 1}}, UnknownMessage(raw={"brandNewMessage": {"x": 1}})),
]


@pytest.mark.parametrize(("obj", "expected"), SERVER_CASES)
def test_server_message_decodes(obj: dict[str, Any], expected: Any) -> None:
    for frame in frames(obj):
        assert decode(frame) == expected
        assert decode_all(frame) == [expected]


@pytest.mark.parametrize(("obj", "expected"), SERVER_CASES)
def test_server_message_encodes_back(obj: dict[str, Any], expected: Any) -> None:
    assert decode(encode_server(expected)) == expected
    # the samples re-encode exactly, except that int64 fields are written as numbers
    canonical = json.loads(json.dumps(obj).replace('"123"', "123"))
    assert json.loads(encode_server(expected)) == canonical


def test_golden_text_and_audio_of_a_gemini_31_event() -> None:
    msg = decode(json.dumps(SERVER_CASES[7][0], indent=2).encode())
    assert isinstance(msg, ServerContent)
    assert msg.text == "Hello"  # thought parts are excluded
    assert msg.thought_text == "secret plan"
    assert msg.audio == PCM
    assert msg.output_transcription == Transcription(text="Hello")


def test_vertex_usage_names_map_to_response() -> None:
    msg = decode(
        json.dumps(
            {
                "usageMetadata": {
                    "promptTokenCount": 10,
                    "candidatesTokenCount": 4,
                    "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 4}],
                }
            }
        )
    )
    assert msg == UsageMessage(
        UsageMetadata(
            prompt_token_count=10,
            response_token_count=4,
            response_tokens_details=(ModalityTokenCount(Modality.AUDIO, 4),),
        )
    )


def test_all_usage_fields() -> None:
    details = [{"modality": m, "tokenCount": i} for i, m in enumerate(["TEXT", "AUDIO"])]
    msg = decode(
        json.dumps(
            {
                "usageMetadata": {
                    "promptTokenCount": 1,
                    "cachedContentTokenCount": 2,
                    "responseTokenCount": 3,
                    "toolUsePromptTokenCount": 4,
                    "thoughtsTokenCount": 5,
                    "totalTokenCount": 15,
                    "promptTokensDetails": details,
                    "cacheTokensDetails": details,
                    "responseTokensDetails": details,
                    "toolUsePromptTokensDetails": details,
                }
            }
        )
    )
    d = (ModalityTokenCount(Modality.TEXT, 0), ModalityTokenCount(Modality.AUDIO, 1))
    assert msg == UsageMessage(UsageMetadata(1, 2, 3, 4, 5, 15, d, d, d, d))


def test_usage_metadata_beside_every_message_kind() -> None:
    usage = {"totalTokenCount": 9}
    for obj, _expected in SERVER_CASES:
        if len(obj) != 1 or "usageMetadata" in obj or "brandNewMessage" in obj:
            continue
        msg = decode(json.dumps({**obj, "usageMetadata": usage}))
        assert msg.usage_metadata == UsageMetadata(total_token_count=9)
        # usageMetadata first in the frame works the same
        assert decode(json.dumps({"usageMetadata": usage, **obj})) == msg


def test_unknown_fields_are_kept_in_extra_and_snake_case_is_tolerated() -> None:
    obj = {
        "serverContent": {
            "model_turn": {"parts": [{"text": "a", "newField": {"x": 1}}], "futureThing": 1},
            "turn_complete": True,
            "interactionStatus": "IDLE",
            "brandNewFlag": [1, 2, 3],
        },
        "futureTopLevel": {"z": 1},
    }
    msg = decode(json.dumps(obj))
    assert msg == ServerContent(
        model_turn=Content(
            parts=(Part(text="a", extra={"newField": {"x": 1}}),), extra={"futureThing": 1}
        ),
        turn_complete=True,
        interaction_status="IDLE",
        extra={"brandNewFlag": [1, 2, 3]},
    )
    assert isinstance(msg, ServerContent) and msg.model_turn is not None
    assert msg.model_turn.parts[0].extra == {"newField": {"x": 1}}
    # what was kept goes back out as it came (a fake server re-encoding a message)
    assert json.loads(encode_server(msg))["serverContent"]["brandNewFlag"] == [1, 2, 3]
    assert Part(text="a").extra == {}  # nothing unknown: empty
    assert decode('{"setup_complete": {}}') == SetupComplete()
    assert decode('{"go_away": {"time_left": "1s"}}') == GoAway(datetime.timedelta(seconds=1))


def test_null_means_unset() -> None:
    assert decode('{"serverContent": {"modelTurn": null, "turnComplete": null}}') == ServerContent()
    assert decode('{"serverContent": null}') == UnknownMessage(raw={"serverContent": None})


def test_unknown_enum_values_are_kept() -> None:
    msg = decode('{"serverContent": {"turnCompleteReason": "SOMETHING_NEW"}}')
    assert isinstance(msg, ServerContent)
    assert msg.turn_complete_reason == "SOMETHING_NEW"
    assert isinstance(msg.turn_complete_reason, TurnCompleteReason)
    assert not msg.turn_complete_reason.is_known
    usage = decode('{"usageMetadata": {"promptTokensDetails": [{"modality": "SMELL"}]}}')
    assert usage.usage_metadata.prompt_tokens_details[0].modality == "SMELL"  # type: ignore[union-attr]
    assert json.loads(encode_server(msg)) == {
        "serverContent": {"turnCompleteReason": "SOMETHING_NEW"}
    }


@pytest.mark.parametrize("data", [PCM_STD, PCM_URL, PCM_STD.rstrip("="), PCM_URL.rstrip("=")])
def test_base64_alphabets_and_padding(data: str) -> None:
    obj = {
        "serverContent": {
            "modelTurn": {
                "parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}}]
            }
        }
    }
    msg = decode(json.dumps(obj))
    assert isinstance(msg, ServerContent)
    assert msg.audio == PCM


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("", b""),
        ("AA", b"\x00"),
        ("AA==", b"\x00"),
        ("AAA", b"\x00\x00"),
        ("-_-_", b"\xfb\xff\xbf"),
        ("+/+/", b"\xfb\xff\xbf"),
    ],
)
def test_b64decode(text: str, raw: bytes) -> None:
    assert b64decode(text) == raw


@pytest.mark.parametrize("text", ["A", "AAAAA", "!!!!", "AA AA", "AA\nAA", "é", "AA=A", "A==="])
def test_b64decode_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        b64decode(text)


def test_several_message_keys_in_one_frame() -> None:
    frame = json.dumps(
        {
            "usageMetadata": {"totalTokenCount": 5},
            "toolCall": {"functionCalls": [{"name": "f", "id": "1"}]},
            "unknownThing": {},
            "serverContent": {"turnComplete": True},
        }
    )
    usage = UsageMetadata(total_token_count=5)
    call = ToolCall(function_calls=(FunctionCall(name="f", id="1"),))
    assert decode(frame) == ToolCall(function_calls=call.function_calls, usage_metadata=usage)
    assert decode_all(frame) == [
        ToolCall(function_calls=call.function_calls, usage_metadata=usage),
        ServerContent(turn_complete=True),
    ]


def test_empty_object_is_an_unknown_message() -> None:
    assert decode("{}") == UnknownMessage(raw={})
    assert decode_all(b"{}") == [UnknownMessage(raw={})]


def test_text_binary_and_bytes_like_frames() -> None:
    obj = {"serverContent": {"modelTurn": {"parts": [{"text": "héllo ✓"}]}}}
    expected = ServerContent(model_turn=Content(parts=(Part(text="héllo ✓"),)))
    text = json.dumps(obj, ensure_ascii=False)
    assert decode(text) == expected
    assert decode(text.encode("utf-8")) == expected
    assert decode(bytearray(text.encode("utf-8"))) == expected  # type: ignore[arg-type]
    assert decode(memoryview(text.encode("utf-8"))) == expected  # type: ignore[arg-type]
    assert decode(json.dumps(obj, indent=2)) == expected


# --- errors --------------------------------------------------------------------------------

BAD_FRAMES: list[tuple[Any, str]] = [
    (b"\xff\xfe{}", "JSON"),
    (b'{"serverContent": {"modelTurn": {"parts": [{"text": "\xc3"}]}}}', "JSON"),
    ("not json", "JSON"),
    ("", "JSON"),
    ('{"a": 1', "JSON"),
    ("[1, 2]", "array"),
    ('"string"', "string"),
    ("null", "null"),
    ("42", "number"),
    ("true", "boolean"),
    ('{"serverContent": {"turnComplete": "yes"}}', "serverContent.turnComplete"),
    ('{"serverContent": {"turnComplete": 1}}', "serverContent.turnComplete"),
    ('{"serverContent": {"modelTurn": {"parts": 5}}}', "serverContent.modelTurn.parts"),
    ('{"serverContent": {"modelTurn": {"parts": [{"text": 5}]}}}', "parts[0].text"),
    ('{"serverContent": {"modelTurn": {"parts": [{}, {"text": "a"}, "x"]}}}', "parts[2]"),
    (
        '{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": "a",'
        ' "data": "!!!"}}]}}}',
        "parts[0].inlineData.data",
    ),
    ('{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "AA=="}}]}}}', "mimeType"),
    (
        '{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": "a",'
        ' "data": 5}}]}}}',
        "data",
    ),
    ('{"serverContent": []}', "serverContent"),
    ('{"serverContent": "x"}', "serverContent"),
    ('{"setupComplete": true}', "setupComplete"),
    ('{"goAway": {"timeLeft": "soon"}}', "goAway.timeLeft"),
    ('{"goAway": {"timeLeft": "1e999s"}}', "goAway.timeLeft"),
    ('{"goAway": {"timeLeft": 5}}', None),  # a bare number of seconds is accepted
    (
        '{"sessionResumptionUpdate": {"lastConsumedClientMessageIndex": "12a"}}',
        "lastConsumedClientMessageIndex",
    ),
    (
        '{"sessionResumptionUpdate": {"lastConsumedClientMessageIndex": "' + "9" * 5000 + '"}}',
        "lastConsumedClientMessageIndex",
    ),
    (
        '{"sessionResumptionUpdate": {"lastConsumedClientMessageIndex": true}}',
        "lastConsumedClientMessageIndex",
    ),
    ('{"sessionResumptionUpdate": {"resumable": "true"}}', "resumable"),
    ('{"toolCall": {"functionCalls": [{"name": 5, "args": {}}]}}', "name"),
    ('{"toolCall": {"functionCalls": [{"name": "f", "args": [1]}]}}', "args"),
    ('{"toolCall": {"functionCalls": {"name": "f"}}}', "functionCalls"),
    ('{"toolCallCancellation": {"ids": [1]}}', "ids[0]"),
    ('{"usageMetadata": {"totalTokenCount": "many"}}', "usageMetadata.totalTokenCount"),
    ('{"usageMetadata": 5, "serverContent": {}}', "usageMetadata"),
    ('{"serverContent": {"turnCompleteReason": {"a": 1}}}', "turnCompleteReason"),
    ('{"serverContent": {"groundingMetadata": "x"}}', "groundingMetadata"),
    ("[" * 100_000 + "]" * 100_000, "JSON"),
    ('{"serverContent": {"groundingMetadata": ' + "[" * 5000 + "]" * 5000 + "}}", None),
]


@pytest.mark.parametrize(("frame", "needle"), BAD_FRAMES)
def test_bad_frames_raise_protocol_error(frame: Any, needle: str | None) -> None:
    if needle is None:  # deep or odd but valid input: must not crash either way
        with contextlib.suppress(ProtocolError):
            decode(frame)
        return
    with pytest.raises(ProtocolError) as info:
        decode(frame)
    assert needle in str(info.value)
    err = info.value
    assert err.excerpt or not frame  # the frame is quoted
    assert len(err.excerpt) < 300
    with pytest.raises(ProtocolError):
        decode_all(frame)


def test_protocol_error_never_shows_the_api_key() -> None:
    key = "AIzaSyA-secretsecretsecretsecret12345"
    for frame in (
        json.dumps({"serverContent": {"turnComplete": key}}),
        json.dumps({"serverContent": {"modelTurn": {"parts": [{"text": 1, "k": key}]}}}),
        ("{" + key).encode(),
    ):
        with pytest.raises(ProtocolError) as info:
            decode(frame)
        assert key not in str(info.value)
        assert key not in repr(info.value)
        assert key not in info.value.excerpt


def test_protocol_error_excerpt_is_short_for_huge_frames() -> None:
    frame = json.dumps({"serverContent": {"turnComplete": "x" * 1_000_000}})
    with pytest.raises(ProtocolError) as info:
        decode(frame)
    assert len(str(info.value)) < 1000


def test_non_frame_arguments() -> None:
    for bad in (None, 5, ["{}"]):
        with pytest.raises(ProtocolError):
            decode(bad)  # type: ignore[arg-type]


def test_helpers_encode_as_expected() -> None:
    assert wire(text_turn("Hello")) == {
        "clientContent": {
            "turns": [{"parts": [{"text": "Hello"}], "role": "user"}],
            "turnComplete": True,
        }
    }
    call = decode(json.dumps(SERVER_CASES[9][0]))
    assert isinstance(call, ToolCall)
    assert wire(call.respond({"get_current_weather": {"temp": 12}})) == {
        "toolResponse": {
            "functionResponses": [
                {
                    "id": "function-call-5831923424298605773",
                    "name": "get_current_weather",
                    "response": {"temp": 12},
                }
            ]
        }
    }


def test_function_declaration_schema_keys_untouched() -> None:
    params = {
        "type": "OBJECT",
        "properties": {"snake_case_prop": {"type": "STRING"}},
        "required": ["snake_case_prop"],
        "additional_properties": False,
    }
    msg = Setup(
        model="models/m",
        tools=(
            Tool(
                function_declarations=(
                    FunctionDeclaration(
                        name="do_it",
                        parameters=params,
                        behavior=Behavior.BLOCKING,
                        parameters_json_schema={"$defs": {"a_b": {}}},
                    ),
                )
            ),
        ),
    )
    body = wire(msg)["setup"]["tools"][0]["functionDeclarations"][0]
    assert body == {
        "name": "do_it",
        "parameters": params,
        "behavior": "BLOCKING",
        "parametersJsonSchema": {"$defs": {"a_b": {}}},
    }


@pytest.mark.parametrize(
    "response",
    [{"x": float("nan")}, {"x": [float("inf")]}, {"x": {1: "non-str key"}}, {"x": object()}],
    ids=["nan", "inf in a list", "int key", "object"],
)
def test_free_form_maps_refuse_what_json_cannot_carry(response: dict[str, Any]) -> None:
    """The same with or without orjson (which would write NaN as null)."""
    message = ToolResponse(
        function_responses=[FunctionResponse(id="1", name="f", response=response)]
    )
    with pytest.raises(ConfigurationError, match="response"):
        encode(message)
