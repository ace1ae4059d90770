"""Every field of PROTOCOL.md section 9.2, typed in both directions.

Setup fields: a :class:`LiveConfig` encodes to an exact ``setup``, and that ``setup`` is what
google-genai 3.6.1 sends for the same ``LiveConnectConfig`` (its own converters, called
offline). Server fields: SDK-shaped frames (camelCase, int64 as strings, proto-JSON durations)
decode into typed values (the same values the SDK reads) and encode back.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

import gemini_ws
from gemini_ws import (
    AudioTranscriptionConfig,
    AudioTranscriptionConfigMode,
    AvatarConfig,
    ComputerUse,
    ComputerUseEnvironment,
    ConfigurationError,
    FunctionCall,
    FunctionResponse,
    FunctionResponseBlob,
    FunctionResponseFileData,
    FunctionResponsePart,
    HarmBlockMethod,
    HarmBlockThreshold,
    HarmCategory,
    InteractionStatus,
    LiveConfig,
    NullValue,
    PartialArg,
    PhishBlockThreshold,
    SafetyPolicy,
    SafetySetting,
    ServerContent,
    ServiceTier,
    Setup,
    SetupComplete,
    SpeechConfig,
    ToolCall,
    ToolResponse,
    TrafficType,
    Transcription,
    TurnCompleteReason,
    UsageMessage,
    VoiceConsentSignature,
    WordInfo,
    decode,
)
from gemini_ws._wire import decode_client, encode_server, structure_config

MODEL = "gemini-3.1-flash-live-preview"
PCM = b"\xfb\xff\x00\x01"  # bytes whose standard and URL-safe base64 differ ("+/8AAQ==")
IMAGE = b"\xff\xd8\xff\xfe"


def _seconds(value: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=value)


# --- google-genai, called offline ---------------------------------------------------------------

#: Free-form objects: their keys are data, not field names.
_FREE_FORM = {"labels", "headers", "args", "response", "parametersJsonSchema", "responseJsonSchema"}
#: bytes fields of the messages used here.
_BYTES = {"voiceSampleAudio", "consentAudio", "imageData", "data"}


def _camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def _one_spelling(value: Any, key: str | None = None) -> Any:
    """What google-genai sends, in the spelling gemini_ws writes: it sends the names below
    the converters' top level in snake_case, and bytes in URL-safe base64 (proto JSON reads
    both); here those become camelCase and standard base64."""
    if isinstance(value, dict):
        return {
            _camel(k): v if _camel(k) in _FREE_FORM else _one_spelling(v, _camel(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_one_spelling(item, key) for item in value]
    if key in _BYTES and isinstance(value, str):
        return base64.b64encode(base64.urlsafe_b64decode(value)).decode("ascii")
    return value


@pytest.fixture
def sdk() -> Iterator[Any]:
    """google.genai.types, or a skip."""
    pytest.importorskip("google.genai")
    from google.genai import types

    yield types


def _sdk_client(vertex: bool) -> Any:
    genai = pytest.importorskip("google.genai")
    try:
        if vertex:
            return genai.Client(vertexai=True, project="p", location="us-central1")
        return genai.Client(api_key="test-key-not-used")
    except Exception as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"a google-genai client cannot be built offline here: {exc!r}")


def _sdk_setup_raw(config: Any, *, vertex: bool = False, model: str | None = None) -> Any:
    """The ``setup`` google-genai sends for the ``LiveConnectConfig`` *config*, as JSON data
    (what ``AsyncLive.connect`` does before its first ``send``, without a socket)."""
    from google.genai import _common, types

    try:
        from google.genai import _live_converters as converters

        convert = (
            converters._LiveConnectParameters_to_vertex
            if vertex
            else converters._LiveConnectParameters_to_mldev
        )
    except (ImportError, AttributeError) as exc:  # pragma: no cover - another SDK version
        pytest.skip(f"google-genai's Live converters are not where 3.6.1 has them: {exc!r}")
    model = model or ("publishers/google/models/" + MODEL if vertex else "models/" + MODEL)
    client = _sdk_client(vertex)
    try:
        params = types.LiveConnectParameters(model=model, config=config)
        request = _common.convert_to_dict(
            convert(api_client=client._api_client, from_object=params.model_dump(exclude_none=True))
        )
    finally:
        client.close()
    del request["config"]
    request = _common.encode_unserializable_types(request)
    return json.loads(json.dumps(request))["setup"]


def _sdk_setup(config: Any, *, vertex: bool = False, model: str | None = None) -> Any:
    return _one_spelling(_sdk_setup_raw(config, vertex=vertex, model=model))


def _sdk_server_message(frame: str) -> Any:
    """google-genai's reading of a server frame (``AsyncSession._receive``, Gemini API)."""
    from google.genai import _live_converters as converters
    from google.genai import types

    response = converters._LiveServerMessage_from_mldev(json.loads(frame))
    return types.LiveServerMessage._from_response(response=response, kwargs={})


def _sdk_duration(text: str | None) -> datetime.timedelta | None:
    # google-genai types proto durations as their JSON text ("0.120s")
    return None if text is None else _seconds(float(text.removesuffix("s")))


def _setup_json(config: LiveConfig, model: str = MODEL) -> dict[str, Any]:
    return json.loads(gemini_ws.encode(config.to_setup(model)))["setup"]  # type: ignore[no-any-return]


# --- setup: the Gemini API fields -----------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"city_name": {"type": "string"}}}

CONFIG = LiveConfig(
    response_modalities=["AUDIO"],
    translation_config={"target_language_code": "en", "echo_target_language": False},
    speech_config={
        "voice_config": {
            "replicated_voice_config": {
                "mime_type": "audio/wav",
                "voice_sample_audio": PCM,
                "consent_audio": PCM,
                "voice_consent_signature": {"signature": "sig-1"},
            }
        }
    },
    tools=[
        {"google_maps": {"enable_widget": True}},
        {
            "file_search": {
                "file_search_store_names": ["fileSearchStores/a"],
                "top_k": 3,
                "metadata_filter": 'author="x"',
            }
        },
        {
            "mcp_servers": [
                {
                    "name": "weather",
                    "streamable_http_transport": {
                        "url": "https://mcp.example/mcp",
                        "headers": {"X-Api-Key": "k", "user_agent": "a"},
                        "timeout": "30s",
                        "sse_read_timeout": datetime.timedelta(seconds=2.5),
                        "terminate_on_close": True,
                    },
                }
            ]
        },
        {
            "computer_use": {
                "environment": "ENVIRONMENT_BROWSER",
                "excluded_predefined_functions": ["drag_and_drop"],
                "enable_prompt_injection_detection": True,
                "disabled_safety_policies": ["FINANCIAL_TRANSACTIONS"],
            }
        },
        # last: google-genai merges all function declarations into one tool, at the end
        {"function_declarations": [{"name": "get_weather", "response_json_schema": SCHEMA}]},
    ],
    realtime_input_config={"interim_transcript_timestamp_enabled": True},
    input_audio_transcription={
        "language_codes": ["de-DE", "en-US"],
        "language_auto": {},
        "language_hints": {"language_codes": ["de-DE"]},
        "custom_vocabulary": ["Kubernetes"],
        "adaptation_phrases": ["gemini_ws"],
        "word_timestamp": True,
        "diarization": True,
        "mode": "VERBATIM",
    },
    output_audio_transcription={"mode": "SMART", "source_text": "Dear Sir,"},
    proactivity={"proactive_audio": True, "proactive_video": True},
    avatar_config={
        "avatar_name": "kai",
        "customized_avatar": {"image_mime_type": "image/jpeg", "image_data": IMAGE},
        "audio_bitrate_bps": 64000,
        "video_bitrate_bps": 1_000_000,
    },
    safety_settings=[
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
        SafetySetting(HarmCategory.HARM_CATEGORY_HATE_SPEECH, HarmBlockThreshold.BLOCK_ONLY_HIGH),
    ],
    labels={"safety_identifier": "user_session_123"},
)

EXPECTED = {
    "model": f"models/{MODEL}",
    "generationConfig": {
        "responseModalities": ["AUDIO"],
        "speechConfig": {
            "voiceConfig": {
                "replicatedVoiceConfig": {
                    "mimeType": "audio/wav",
                    "voiceSampleAudio": "+/8AAQ==",
                    "consentAudio": "+/8AAQ==",
                    "voiceConsentSignature": {"signature": "sig-1"},
                }
            }
        },
        "translationConfig": {"targetLanguageCode": "en", "echoTargetLanguage": False},
    },
    "tools": [
        {"googleMaps": {"enableWidget": True}},
        {
            "fileSearch": {
                "fileSearchStoreNames": ["fileSearchStores/a"],
                "topK": 3,
                "metadataFilter": 'author="x"',
            }
        },
        {
            "mcpServers": [
                {
                    "name": "weather",
                    "streamableHttpTransport": {
                        "url": "https://mcp.example/mcp",
                        "headers": {"X-Api-Key": "k", "user_agent": "a"},
                        "timeout": "30s",
                        "sseReadTimeout": "2.5s",
                        "terminateOnClose": True,
                    },
                }
            ]
        },
        {
            "computerUse": {
                "environment": "ENVIRONMENT_BROWSER",
                "excludedPredefinedFunctions": ["drag_and_drop"],
                "enablePromptInjectionDetection": True,
                "disabledSafetyPolicies": ["FINANCIAL_TRANSACTIONS"],
            }
        },
        {"functionDeclarations": [{"name": "get_weather", "responseJsonSchema": SCHEMA}]},
    ],
    "realtimeInputConfig": {"interimTranscriptTimestampEnabled": True},
    "inputAudioTranscription": {
        "languageCodes": ["de-DE", "en-US"],
        "languageAuto": {},
        "languageHints": {"languageCodes": ["de-DE"]},
        "customVocabulary": ["Kubernetes"],
        "adaptationPhrases": ["gemini_ws"],
        "wordTimestamp": True,
        "diarization": True,
        "mode": "VERBATIM",
    },
    "outputAudioTranscription": {"mode": "SMART", "sourceText": "Dear Sir,"},
    "proactivity": {"proactiveAudio": True, "proactiveVideo": True},
    "avatarConfig": {
        "avatarName": "kai",
        "customizedAvatar": {"imageMimeType": "image/jpeg", "imageData": "/9j//g=="},
        "audioBitrateBps": 64000,
        "videoBitrateBps": 1000000,
    },
    "safetySettings": [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"},
    ],
    "labels": {"safety_identifier": "user_session_123"},
}


def test_the_setup_fields_encode_exactly() -> None:
    text = gemini_ws.encode(CONFIG.to_setup(MODEL))
    assert text == json.dumps({"setup": EXPECTED}, separators=(",", ":"))
    setup = CONFIG.to_setup(MODEL)
    # typed all the way down: nothing went through `extra`
    assert setup.extra == {} and CONFIG.extra == {}
    assert isinstance(setup.avatar_config, AvatarConfig)
    assert setup.avatar_config.customized_avatar is not None
    assert setup.avatar_config.customized_avatar.image_data == IMAGE
    assert setup.safety_settings[0].category is HarmCategory.HARM_CATEGORY_HARASSMENT
    assert setup.generation_config is not None
    assert setup.generation_config.translation_config == CONFIG.translation_config
    transcription = setup.input_audio_transcription
    assert isinstance(transcription, AudioTranscriptionConfig)
    assert transcription.language_codes == ("de-DE", "en-US")
    assert transcription.mode is AudioTranscriptionConfigMode.VERBATIM
    (transport,) = next(t for t in setup.tools if t.mcp_servers).mcp_servers
    assert transport.streamable_http_transport is not None
    assert transport.streamable_http_transport.timeout == _seconds(30)
    computer = next(t for t in setup.tools if t.computer_use).computer_use
    assert computer == ComputerUse(
        environment=ComputerUseEnvironment.ENVIRONMENT_BROWSER,
        excluded_predefined_functions=("drag_and_drop",),
        enable_prompt_injection_detection=True,
        disabled_safety_policies=(SafetyPolicy.FINANCIAL_TRANSACTIONS,),
    )
    # and the frame reads back as the same message (what a fake server sees)
    assert decode_client(text) == setup


def _sdk_config(types: Any) -> Any:
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        translation_config=types.TranslationConfig(
            target_language_code="en", echo_target_language=False
        ),
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(
                replicated_voice_config=types.ReplicatedVoiceConfig(
                    mime_type="audio/wav",
                    voice_sample_audio=PCM,
                    consent_audio=PCM,
                    voice_consent_signature=types.VoiceConsentSignature(signature="sig-1"),
                )
            )
        ),
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(name="get_weather", response_json_schema=SCHEMA)
                ]
            ),  # (sent last, see CONFIG)
            types.Tool(google_maps=types.GoogleMaps(enable_widget=True)),
            types.Tool(
                file_search=types.FileSearch(
                    file_search_store_names=["fileSearchStores/a"],
                    top_k=3,
                    metadata_filter='author="x"',
                )
            ),
            types.Tool(
                mcp_servers=[
                    types.McpServer(
                        name="weather",
                        streamable_http_transport=types.StreamableHttpTransport(
                            url="https://mcp.example/mcp",
                            headers={"X-Api-Key": "k", "user_agent": "a"},
                            timeout="30s",
                            sse_read_timeout="2.5s",
                            terminate_on_close=True,
                        ),
                    )
                ]
            ),
            types.Tool(
                computer_use=types.ComputerUse(
                    environment=types.Environment.ENVIRONMENT_BROWSER,
                    excluded_predefined_functions=["drag_and_drop"],
                    enable_prompt_injection_detection=True,
                    disabled_safety_policies=[types.SafetyPolicy.FINANCIAL_TRANSACTIONS],
                )
            ),
        ],
        realtime_input_config=types.RealtimeInputConfig(interim_transcript_timestamp_enabled=True),
        input_audio_transcription=types.AudioTranscriptionConfig(
            language_codes=["de-DE", "en-US"],
            language_auto=types.LanguageAuto(),
            language_hints=types.LanguageHints(language_codes=["de-DE"]),
            custom_vocabulary=["Kubernetes"],
            adaptation_phrases=["gemini_ws"],
            word_timestamp=True,
            diarization=True,
            mode=types.AudioTranscriptionConfigMode.VERBATIM,
        ),
        output_audio_transcription=types.AudioTranscriptionConfig(
            mode=types.AudioTranscriptionConfigMode.SMART, source_text="Dear Sir,"
        ),
        proactivity=types.ProactivityConfig(proactive_audio=True, proactive_video=True),
        avatar_config=types.AvatarConfig(
            avatar_name="kai",
            customized_avatar=types.CustomizedAvatar(
                image_mime_type="image/jpeg", image_data=IMAGE
            ),
            audio_bitrate_bps=64000,
            video_bitrate_bps=1_000_000,
        ),
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                threshold=types.HarmBlockThreshold.BLOCK_NONE,
            ),
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HATE_SPEECH,
                threshold=types.HarmBlockThreshold.BLOCK_ONLY_HIGH,
            ),
        ],
        labels={"safety_identifier": "user_session_123"},
    )


def test_the_setup_is_what_google_genai_sends(sdk: Any) -> None:
    assert _sdk_setup(_sdk_config(sdk)) == EXPECTED == _setup_json(CONFIG)


def test_what_google_genai_sends_reads_as_the_same_setup(sdk: Any) -> None:
    # its own spelling (nested snake_case names, URL-safe base64), read as a fake server would
    raw = _sdk_setup_raw(_sdk_config(sdk))
    assert raw["inputAudioTranscription"]["word_timestamp"] is True  # (what it really sends)
    assert raw["avatarConfig"]["customized_avatar"]["image_data"] == "_9j__g=="  # URL-safe
    assert decode_client(json.dumps({"setup": raw})) == CONFIG.to_setup(MODEL)


def test_the_generation_config_fields(sdk: Any) -> None:
    config = LiveConfig(
        audio_transcription_config={"language_codes": ["fr-FR"], "word_timestamp": True},
        translation_config={"targetLanguageCode": "es"},  # camelCase keys too
    )
    generation = {
        "translationConfig": {"targetLanguageCode": "es"},
        "audioTranscriptionConfig": {"languageCodes": ["fr-FR"], "wordTimestamp": True},
    }
    assert _setup_json(config) == {"model": f"models/{MODEL}", "generationConfig": generation}
    # google-genai's LiveConnectConfig has no flat audio_transcription_config: it takes the
    # (deprecated) nested generation_config
    sdk_config = sdk.LiveConnectConfig(
        generation_config=sdk.GenerationConfig(
            translation_config=sdk.TranslationConfig(target_language_code="es"),
            audio_transcription_config=sdk.AudioTranscriptionConfig(
                language_codes=["fr-FR"], word_timestamp=True
            ),
        )
    )
    assert _sdk_setup(sdk_config)["generationConfig"] == generation


def test_the_vertex_only_setup_fields_are_what_google_genai_sends_to_vertex(sdk: Any) -> None:
    config = LiveConfig(
        response_modalities=["AUDIO"],
        explicit_vad_signal=True,
        safety_settings=[
            {
                "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                "threshold": "BLOCK_LOW_AND_ABOVE",
                "method": "SEVERITY",
            }
        ],
        tools=[
            {"retrieval": {"vertexAiSearch": {"datastore": "projects/p/dataStores/d"}}},
            {
                "enterprise_web_search": {
                    "exclude_domains": ["example.com"],
                    "blocking_confidence": "BLOCK_ONLY_EXTREMELY_HIGH",
                }
            },
        ],
    )
    model = f"projects/p/locations/us-central1/publishers/google/models/{MODEL}"
    ours = _setup_json(config, model)
    assert ours == {
        "model": model,
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "tools": [
            {"retrieval": {"vertexAiSearch": {"datastore": "projects/p/dataStores/d"}}},
            {
                "enterpriseWebSearch": {
                    "excludeDomains": ["example.com"],
                    "blockingConfidence": "BLOCK_ONLY_EXTREMELY_HIGH",
                }
            },
        ],
        "explicitVadSignal": True,
        "safetySettings": [
            {
                "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                "threshold": "BLOCK_LOW_AND_ABOVE",
                "method": "SEVERITY",
            }
        ],
    }
    sdk_config = sdk.LiveConnectConfig(
        response_modalities=[sdk.Modality.AUDIO],
        explicit_vad_signal=True,
        safety_settings=[
            sdk.SafetySetting(
                category=sdk.HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT,
                threshold=sdk.HarmBlockThreshold.BLOCK_LOW_AND_ABOVE,
                method=sdk.HarmBlockMethod.SEVERITY,
            )
        ],
        tools=[
            sdk.Tool(
                retrieval=sdk.Retrieval(
                    vertex_ai_search=sdk.VertexAISearch(datastore="projects/p/dataStores/d")
                )
            ),
            sdk.Tool(
                enterprise_web_search=sdk.EnterpriseWebSearch(
                    exclude_domains=["example.com"],
                    blocking_confidence=sdk.PhishBlockThreshold.BLOCK_ONLY_EXTREMELY_HIGH,
                )
            ),
        ],
    )
    assert _sdk_setup(sdk_config, vertex=True, model=model) == ours
    # google-genai refuses each of them for the Gemini API (gemini_ws sends what it is given)
    for field, value in [
        ("explicit_vad_signal", True),
        ("safety_settings", [sdk.SafetySetting(method=sdk.HarmBlockMethod.SEVERITY)]),
        ("tools", [sdk.Tool(retrieval=sdk.Retrieval())]),
        ("tools", [sdk.Tool(enterprise_web_search=sdk.EnterpriseWebSearch())]),
    ]:
        with pytest.raises(ValueError, match="only supported in Gemini Enterprise Agent Platform"):
            _sdk_setup(sdk.LiveConnectConfig(**{field: value}))


def test_multi_speaker_voices_have_the_sdk_shape(sdk: Any) -> None:
    config = LiveConfig(
        speech_config={
            "multi_speaker_voice_config": {
                "speaker_voice_configs": [
                    {
                        "speaker": "Joe",
                        "voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}},
                    },
                    {
                        "speaker": "Jane",
                        "voice_config": {"prebuiltVoiceConfig": {"voiceName": "Puck"}},
                    },
                ]
            }
        }
    )
    speech = {
        "multiSpeakerVoiceConfig": {
            "speakerVoiceConfigs": [
                {"speaker": "Joe", "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}},
                {"speaker": "Jane", "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}},
            ]
        }
    }
    assert _setup_json(config)["generationConfig"] == {"speechConfig": speech}
    sdk_speech = sdk.SpeechConfig(
        multi_speaker_voice_config=sdk.MultiSpeakerVoiceConfig(
            speaker_voice_configs=[
                sdk.SpeakerVoiceConfig(
                    speaker=name,
                    voice_config=sdk.VoiceConfig(
                        prebuilt_voice_config=sdk.PrebuiltVoiceConfig(voice_name=voice)
                    ),
                )
                for name, voice in [("Joe", "Kore"), ("Jane", "Puck")]
            ]
        )
    )
    # google-genai refuses it for Live sessions, so compare with its model's JSON form
    with pytest.raises(ValueError, match="multi_speaker_voice_config is not supported"):
        _sdk_setup(sdk.LiveConnectConfig(speech_config=sdk_speech))
    assert sdk_speech.model_dump(mode="json", by_alias=True, exclude_none=True) == speech


def test_function_response_parts_are_what_google_genai_sends(sdk: Any) -> None:
    response = FunctionResponse(
        id="call-1",
        name="take_photo",
        response={"ok": True, "some_key": 1},
        parts=[
            FunctionResponsePart(
                inline_data=FunctionResponseBlob("image/jpeg", IMAGE, display_name="photo.jpg")
            ),
            FunctionResponsePart(
                file_data=FunctionResponseFileData("gs://bucket/f.pdf", "application/pdf")
            ),
        ],
    )
    text = gemini_ws.encode(ToolResponse(function_responses=[response]))
    expected = {
        "functionResponses": [
            {
                "id": "call-1",
                "name": "take_photo",
                "response": {"ok": True, "some_key": 1},
                "parts": [
                    {
                        "inlineData": {
                            "mimeType": "image/jpeg",
                            "data": "/9j//g==",
                            "displayName": "photo.jpg",
                        }
                    },
                    {"fileData": {"fileUri": "gs://bucket/f.pdf", "mimeType": "application/pdf"}},
                ],
            }
        ]
    }
    assert json.loads(text) == {"toolResponse": expected}
    assert decode_client(text) == ToolResponse(function_responses=(response,))
    # what AsyncSession.send_tool_response sends (live.py), without a socket
    from google.genai import _common
    from google.genai import _transformers as transformers

    sdk_response = sdk.FunctionResponse(
        id="call-1",
        name="take_photo",
        response={"ok": True, "some_key": 1},
        parts=[
            sdk.FunctionResponsePart(
                inline_data=sdk.FunctionResponseBlob(
                    mime_type="image/jpeg", data=IMAGE, display_name="photo.jpg"
                )
            ),
            sdk.FunctionResponsePart(
                file_data=sdk.FunctionResponseFileData(
                    file_uri="gs://bucket/f.pdf", mime_type="application/pdf"
                )
            ),
        ],
    )
    sent = _common.convert_to_dict(transformers.t_tool_response(sdk_response), convert_keys=True)
    sent = json.loads(json.dumps(_common.encode_unserializable_types(sent)))
    assert _one_spelling(sent) == expected


def test_typed_fields_and_extra_still_merge() -> None:
    config = LiveConfig(
        input_audio_transcription={"language_codes": ["de-DE"]},
        extra={"inputAudioTranscription": {"someFutureOption": True}},
    )
    assert _setup_json(config)["inputAudioTranscription"] == {
        "languageCodes": ["de-DE"],
        "someFutureOption": True,
    }


def test_setup_fields_accept_camel_case_dicts_at_every_level() -> None:
    config = structure_config(
        {
            "explicitVadSignal": True,
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}],
            "avatarConfig": {"avatarName": "kai", "customizedAvatar": {"imageData": "/9j//g"}},
            "labels": {"team": "voice"},
            "proactivity": {"proactiveVideo": True},
        },
        LiveConfig,
    )
    assert config.explicit_vad_signal is True
    assert config.safety_settings == (
        SafetySetting(HarmCategory.HARM_CATEGORY_HARASSMENT, HarmBlockThreshold.OFF),
    )
    assert config.avatar_config is not None and config.avatar_config.customized_avatar is not None
    assert config.avatar_config.customized_avatar.image_data == IMAGE  # unpadded base64 too
    assert config.labels == {"team": "voice"}
    assert config.proactivity is not None and config.proactivity.proactive_video is True
    assert config.evolve(labels=None).to_setup(MODEL).labels is None


# --- setup: bad values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (
            {"input_audio_transcription": {"langauge_codes": ["de-DE"]}},
            "LiveConfig.input_audio_transcription: unknown field 'langauge_codes' for "
            "AudioTranscriptionConfig; did you mean 'language_codes'?",
        ),
        ({"input_audio_transcription": {"mode": "SMRT"}}, "did you mean 'SMART'?"),
        (
            {"output_audio_transcription": {"language_hints": {"language_code": ["x"]}}},
            "output_audio_transcription.language_hints: unknown field 'language_code' for "
            "LanguageHints; did you mean 'language_codes'?",
        ),
        (
            {"input_audio_transcription": {"language_codes": "de-DE"}},
            "input_audio_transcription.language_codes: expected a list",
        ),
        ({"proactivity": {"proactive_vidio": True}}, "did you mean 'proactive_video'?"),
        (
            {"realtime_input_config": {"interim_transcript_timestamps_enabled": True}},
            "did you mean 'interim_transcript_timestamp_enabled'?",
        ),
        (
            {"translation_config": {"target_langauge_code": "en"}},
            "LiveConfig.translation_config: unknown field 'target_langauge_code' for "
            "TranslationConfig; did you mean 'target_language_code'?",
        ),
        (
            {"audio_transcription_config": {"diarisation": True}},
            "audio_transcription_config: unknown field 'diarisation' for AudioTranscriptionConfig"
            "; did you mean 'diarization'?",
        ),
        (
            {"avatar_config": {"customized_avatar": {"image_dta": b""}}},
            "LiveConfig.avatar_config.customized_avatar: unknown field 'image_dta' for "
            "CustomizedAvatar; did you mean 'image_data'?",
        ),
        ({"avatar_config": {"audio_bitrate_bps": "fast"}}, "avatar_config.audio_bitrate_bps"),
        (
            {"safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "treshold": "OFF"}]},
            "LiveConfig.safety_settings[0]: unknown field 'treshold' for SafetySetting; did you "
            "mean 'threshold'?",
        ),
        (
            {"safety_settings": [{}, {"threshold": "BLOCK_NOEN"}]},
            "LiveConfig.safety_settings[1].threshold: unknown HarmBlockThreshold 'BLOCK_NOEN'",
        ),
        ({"safety_settings": "BLOCK_NONE"}, "safety_settings: expected a list of SafetySetting"),
        (
            {"speech_config": {"multi_speaker_voice_config": {"speaker_voice_config": []}}},
            "did you mean 'speaker_voice_configs'?",
        ),
        (
            {"speech_config": {"voice_config": {"replicated_voice_config": {"voice_sample": b""}}}},
            "speech_config.voice_config.replicated_voice_config: unknown field 'voice_sample' "
            "for ReplicatedVoiceConfig; did you mean 'voice_sample_audio'?",
        ),
        (
            {
                "speech_config": {
                    "voice_config": {"replicated_voice_config": {"consent_audio": "!"}}
                }
            },
            "replicated_voice_config.consent_audio: invalid base64",
        ),
        ({"tools": [{"google_map": {}}]}, "did you mean 'google_maps'?"),
        (
            {"tools": [{"file_search": {"file_search_store_name": ["x"]}}]},
            "tools.file_search: unknown field 'file_search_store_name' for FileSearch; did you "
            "mean 'file_search_store_names'?",
        ),
        (
            {"tools": [{"mcp_servers": [{"streamable_http_transport": {"heders": {}}}]}]},
            "tools.mcp_servers[0].streamable_http_transport: unknown field 'heders' for "
            "StreamableHttpTransport; did you mean 'headers'?",
        ),
        (
            {"tools": [{"mcp_servers": [{"streamable_http_transport": {"headers": {"a": 1}}}]}]},
            "streamable_http_transport.headers: expected a string for 'a'",
        ),
        (
            {"tools": [{"mcp_servers": [{"streamable_http_transport": {"timeout": "soon"}}]}]},
            "streamable_http_transport.timeout: expected a duration",
        ),
        (
            {"tools": [{"computer_use": {"environment": "ENVIRONMENT_BROWSR"}}]},
            "did you mean 'ENVIRONMENT_BROWSER'?",
        ),
        (
            {"tools": [{"computer_use": {"disabled_safety_policies": ["ACCOUNT_CREATON"]}}]},
            "tools.computer_use.disabled_safety_policies[0]: unknown SafetyPolicy",
        ),
        (
            {"tools": [{"enterprise_web_search": {"exclude_domain": ["a.com"]}}]},
            "did you mean 'exclude_domains'?",
        ),
        (
            {"tools": [{"enterprise_web_search": {"blocking_confidence": "BLOCK_NONE"}}]},
            "unknown PhishBlockThreshold 'BLOCK_NONE'",
        ),
        ({"tools": [{"retrieval": ["x"]}]}, "tools.retrieval: expected a dict"),
        (
            {"tools": [{"function_declarations": [{"name": "f", "response_json_shema": {}}]}]},
            "did you mean 'response_json_schema'?",
        ),
        ({"explicit_vad_signal": "yes"}, "LiveConfig.explicit_vad_signal: expected true or false"),
        ({"labels": {"team": 7}}, "LiveConfig.labels: keys and values must be str"),
        ({"labels": ["team"]}, "LiveConfig.labels: expected a dict of str to str"),
    ],
)
def test_a_bad_value_in_a_new_field_names_the_field(config: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        LiveConfig(**config)
    assert needle in str(info.value)
    # the dict form (Client.stream(config={...})) says the same
    with pytest.raises(ConfigurationError) as info:
        structure_config(config, LiveConfig, "config")
    assert needle.removeprefix("LiveConfig.") in str(info.value)


def test_a_message_built_by_hand_with_bad_labels_is_refused_when_encoded() -> None:
    setup = Setup(model=f"models/{MODEL}", labels={"team": 7})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match=r"Setup\.labels: expected str keys and values"):
        gemini_ws.encode(setup)


# --- server: transcriptions -----------------------------------------------------------------------

TRANSCRIPT_FRAME = json.dumps(
    {
        "serverContent": {
            "inputTranscription": {
                "text": "hallo welt",
                "languageCode": "de-DE",
                "speakerLabel": "spk_1",
                "startOffset": "0.120s",
                "endOffset": "1.5s",
                "words": [
                    {"word": "hallo", "startOffset": "0.120s", "endOffset": "0.640s"},
                    {"word": "welt", "startOffset": "0.7s", "endOffset": "1.5s"},
                ],
            },
            "interimInputTranscription": {"text": "hal", "startOffset": "0s"},
            "outputTranscription": {"text": "hi", "speakerLabel": "model"},
        }
    }
)


def test_transcription_fields_decode_typed() -> None:
    msg = decode(TRANSCRIPT_FRAME)
    assert isinstance(msg, ServerContent) and msg.extra == {}
    heard = msg.input_transcription
    assert heard == Transcription(
        text="hallo welt",
        language_code="de-DE",
        speaker_label="spk_1",
        start_offset=_seconds(0.12),
        end_offset=_seconds(1.5),
        words=(
            WordInfo(word="hallo", start_offset=_seconds(0.12), end_offset=_seconds(0.64)),
            WordInfo(word="welt", start_offset=_seconds(0.7), end_offset=_seconds(1.5)),
        ),
    )
    assert heard.extra == {} and all(w.extra == {} for w in heard.words)
    assert msg.interim_input_transcription == Transcription(text="hal", start_offset=_seconds(0))
    assert msg.output_transcription == Transcription(text="hi", speaker_label="model")
    # encoded back as the server sends it (durations in their shortest form)
    again = json.loads(encode_server(msg))["serverContent"]["inputTranscription"]
    assert again["startOffset"] == "0.12s" and again["words"][1]["endOffset"] == "1.5s"
    assert decode(encode_server(msg)) == msg


def test_transcription_fields_are_what_google_genai_reads(sdk: Any) -> None:
    ours = decode(TRANSCRIPT_FRAME)
    theirs = _sdk_server_message(TRANSCRIPT_FRAME).server_content
    assert isinstance(ours, ServerContent) and ours.input_transcription is not None
    for mine, sdks in [
        (ours.input_transcription, theirs.input_transcription),
        (ours.interim_input_transcription, theirs.interim_input_transcription),
        (ours.output_transcription, theirs.output_transcription),
    ]:
        assert mine is not None
        assert (mine.text, mine.language_code, mine.speaker_label) == (
            sdks.text,
            sdks.language_code,
            sdks.speaker_label,
        )
        assert mine.start_offset == _sdk_duration(sdks.start_offset)
        assert mine.end_offset == _sdk_duration(sdks.end_offset)
        assert [(w.word, w.start_offset, w.end_offset) for w in mine.words] == [
            (w.word, _sdk_duration(w.start_offset), _sdk_duration(w.end_offset))
            for w in sdks.words or ()
        ]


# --- server: streamed function arguments ----------------------------------------------------------

PARTIAL_FRAME = json.dumps(
    {
        "toolCall": {
            "functionCalls": [
                {
                    "id": "call-7",
                    "name": "book",
                    "willContinue": True,
                    "partialArgs": [
                        {"jsonPath": "$.city", "stringValue": "Os", "willContinue": True},
                        {"jsonPath": "$.nights", "numberValue": 3},
                        {"jsonPath": "$.price", "numberValue": "2.5"},  # proto JSON allows
                        {"jsonPath": "$.late", "boolValue": False},
                        {"jsonPath": "$.note", "nullValue": None},  # proto JSON's null
                        {"jsonPath": "$.memo", "nullValue": "NULL_VALUE"},  # the SDKs' form
                    ],
                }
            ]
        },
        "usageMetadata": {"totalTokenCount": "42"},
    }
)


def test_partial_args_decode_typed() -> None:
    msg = decode(PARTIAL_FRAME)
    assert isinstance(msg, ToolCall)
    (call,) = msg.function_calls
    assert call == FunctionCall(
        name="book",
        id="call-7",
        will_continue=True,
        partial_args=(
            PartialArg("$.city", string_value="Os", will_continue=True),
            PartialArg("$.nights", number_value=3.0),
            PartialArg("$.price", number_value=2.5),
            PartialArg("$.late", bool_value=False),
            PartialArg("$.note", null_value=NullValue.NULL_VALUE),
            PartialArg("$.memo", null_value=NullValue.NULL_VALUE),
        ),
    )
    assert call.extra == {} and all(p.extra == {} for p in call.partial_args)
    assert msg.usage_metadata is not None and msg.usage_metadata.total_token_count == 42
    assert decode(encode_server(msg)) == msg
    infinite = decode(
        '{"toolCall": {"functionCalls": [{"name": "f", "partialArgs": '
        '[{"jsonPath": "$.x", "numberValue": "-Infinity"}]}]}}'
    )
    assert isinstance(infinite, ToolCall)
    assert infinite.function_calls[0].partial_args[0].number_value == float("-inf")
    # a piece without its json_path is not a partial argument
    with pytest.raises(gemini_ws.ProtocolError, match=r"partialArgs\[0\]: missing required"):
        decode('{"toolCall": {"functionCalls": [{"name": "f", "partialArgs": [{}]}]}}')


def test_partial_args_are_what_google_genai_reads(sdk: Any) -> None:
    (call,) = _sdk_server_message(PARTIAL_FRAME).tool_call.function_calls
    msg = decode(PARTIAL_FRAME)
    assert isinstance(msg, ToolCall)
    (ours,) = msg.function_calls
    assert (ours.id, ours.name, ours.will_continue) == (call.id, call.name, call.will_continue)
    for mine, sdks in zip(ours.partial_args, call.partial_args, strict=True):
        assert (mine.json_path, mine.string_value, mine.bool_value, mine.will_continue) == (
            sdks.json_path,
            sdks.string_value,
            sdks.bool_value,
            sdks.will_continue,
        )
        assert mine.number_value == sdks.number_value
    # google-genai reads proto JSON's null as "not set": the null argument is lost there
    assert call.partial_args[4].null_value is None
    assert call.partial_args[5].null_value == "NULL_VALUE"


# --- server: setupComplete and usage --------------------------------------------------------------


def test_voice_consent_signature_decodes_typed(sdk: Any) -> None:
    frame = '{"setupComplete": {"sessionId": "s-1", "voiceConsentSignature": {"signature": "sig"}}}'
    msg = decode(frame)
    assert msg == SetupComplete(
        session_id="s-1", voice_consent_signature=VoiceConsentSignature(signature="sig")
    )
    assert msg.extra == {}
    assert decode(encode_server(msg)) == msg
    theirs = _sdk_server_message(frame).setup_complete
    assert theirs.voice_consent_signature.signature == "sig"
    # and it goes back in the next setup, as the docs say
    config = LiveConfig(
        speech_config={
            "voice_config": {
                "replicated_voice_config": {"voice_consent_signature": msg.voice_consent_signature}
            }
        }
    )
    assert isinstance(config.speech_config, SpeechConfig)
    assert _setup_json(config)["generationConfig"]["speechConfig"] == {
        "voiceConfig": {"replicatedVoiceConfig": {"voiceConsentSignature": {"signature": "sig"}}}
    }


def test_traffic_type_and_service_tier_decode_typed(sdk: Any) -> None:
    frame = (
        '{"usageMetadata": {"totalTokenCount": "12", "trafficType": "ON_DEMAND_FLEX", '
        '"serviceTier": "flex"}}'
    )
    msg = decode(frame)
    assert isinstance(msg, UsageMessage)
    usage = msg.usage_metadata
    assert usage.total_token_count == 12
    assert usage.traffic_type is TrafficType.ON_DEMAND_FLEX
    assert usage.service_tier is ServiceTier.FLEX
    assert usage.extra == {}
    assert decode(encode_server(msg)) == msg
    theirs = _sdk_server_message(frame).usage_metadata
    assert (usage.traffic_type, usage.service_tier) == (theirs.traffic_type, theirs.service_tier)
    # beside a message, and with values this release does not know (kept)
    beside = decode(
        '{"serverContent": {"turnComplete": true}, "usageMetadata": '
        '{"trafficType": "ON_DEMAND_SPOT", "serviceTier": "batch"}}'
    )
    assert isinstance(beside, ServerContent) and beside.usage_metadata is not None
    assert beside.usage_metadata.traffic_type == "ON_DEMAND_SPOT"
    assert not beside.usage_metadata.traffic_type.is_known
    assert beside.usage_metadata.service_tier == ServiceTier("batch")
    assert json.loads(encode_server(beside))["usageMetadata"] == {
        "trafficType": "ON_DEMAND_SPOT",
        "serviceTier": "batch",
    }


# --- server: the serverContent fields of the Gemini 3.x models ----------------------------------


def test_server_content_fields_of_the_3x_models(sdk: Any) -> None:
    frame = json.dumps(
        {
            "serverContent": {
                "turnComplete": True,
                "turnCompleteReason": "GENERATED_AUDIO_SAFETY",
                "waitingForInput": True,
                "interactionStatus": "REQUIRES_ACTION",
            }
        }
    )
    msg = decode(frame)
    assert msg == ServerContent(
        turn_complete=True,
        turn_complete_reason=TurnCompleteReason.GENERATED_AUDIO_SAFETY,
        waiting_for_input=True,
        interaction_status=InteractionStatus.REQUIRES_ACTION,
    )
    assert isinstance(msg, ServerContent) and msg.extra == {}
    assert msg.turn_complete_reason is not None and msg.turn_complete_reason.is_known
    assert decode(encode_server(msg)) == msg
    theirs = _sdk_server_message(frame).server_content
    assert msg.turn_complete_reason == theirs.turn_complete_reason
    assert msg.interaction_status == theirs.interaction_status
    assert msg.waiting_for_input is theirs.waiting_for_input
    # every value google-genai 3.6.1 knows is known here
    assert {m.value for m in sdk.TurnCompleteReason} <= {m.value for m in TurnCompleteReason}
    assert {m.value for m in sdk.InteractionStatus} == {m.value for m in InteractionStatus}
    # a status this release does not know is kept, and still compares as a string
    later = decode('{"serverContent": {"interactionStatus": "PAUSED"}}')
    assert isinstance(later, ServerContent)
    assert later.interaction_status == "PAUSED" and not later.interaction_status.is_known


def test_every_sdk_enum_value_of_the_new_fields_is_known(sdk: Any) -> None:
    pairs = [
        (sdk.AudioTranscriptionConfigMode, AudioTranscriptionConfigMode),
        (sdk.HarmCategory, HarmCategory),
        (sdk.HarmBlockThreshold, HarmBlockThreshold),
        (sdk.HarmBlockMethod, HarmBlockMethod),
        (sdk.PhishBlockThreshold, PhishBlockThreshold),
        (sdk.Environment, ComputerUseEnvironment),
        (sdk.SafetyPolicy, SafetyPolicy),
        (sdk.TrafficType, TrafficType),
        (sdk.ServiceTier, ServiceTier),
    ]
    for theirs, ours in pairs:
        assert {m.value for m in theirs} == {m.value for m in ours}, ours.__name__
