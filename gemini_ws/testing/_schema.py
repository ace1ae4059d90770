"""The fields the Gemini API's Live endpoint accepts in client messages, for the strict fake.

The service parses each client message as proto JSON, and a field its proto does not have
closes the connection 1007 with the parser's reason (PROTOCOL.md 9.4)::

    Invalid JSON payload received. Unknown name "proactivty" at 'setup': Cannot find field.
    Invalid JSON payload received. Unknown name "X" at 'setup.generation_config': Cannot find field.
    Invalid JSON payload received. Unknown name "X" at 'setup.tools[0]': Cannot find field.

The path names the object that holds the unknown key: proto (snake_case) field names joined
with dots, ``[i]`` after an element of a repeated field, rooted at the message kind
(``setup``, ``client_content``, ``realtime_input``, ``tool_response``, ``context_update``).
Several unknown names give one such line each, joined with ``\\n`` (the close reason is then cut
to 123 bytes like every other). The name is quoted as it was sent.

:data:`MESSAGES` is our own description of those protos on the Gemini Developer API path, written
from google-genai's Gemini-API converters (``_live_converters.py``: ``_LiveClientSetup_to_mldev``,
``_LiveConnectConfig_to_mldev``, ``_Tool_to_mldev``, ``_Part_to_mldev``,
``_SessionResumptionConfig_to_mldev``, ...) and the field lists of its ``types.py``: a field the
converters carry, or a pass-through object's field, is accepted; a field the Gemini-API converter
refuses as "only supported in ... Agent Platform mode" is not (``sessionResumption.transparent``,
``explicitVadSignal``, the ``retrieval`` / ``enterpriseWebSearch`` / ``parallelAiSearch`` /
``exaAiSearch`` tools, ``googleSearch.blockingConfidence`` / ``excludeDomains``,
``googleMaps.groundingTypes``, ``safetySettings[].method``, ``functionCall.partialArgs`` /
``willContinue``, ``generationConfig.routingConfig`` / ``modelSelectionConfig`` /
``audioTimestamp``). It does not import the SDK.

A key is accepted in its lowerCamelCase JSON name or its snake_case proto name (proto JSON takes
both; the Python SDK sends a mixture). Only objects are checked: a value that is not an object
(or, for a repeated field, not a list of objects) is left to the server's other checks. Values
of free-form fields (``None`` in the schema: function ``parameters`` / ``parametersJsonSchema`` /
``response`` / ``responseJsonSchema``, ``responseSchema``, function-call ``args``,
function-response ``response``, ``labels``, ``partMetadata``, and leaves the fake does not model
in depth such as ``videoMetadata``) are never looked into.

:data:`VERTEX_MESSAGES` is the same description for the Vertex AI path
(``/ws/google.cloud.aiplatform.{v1beta1|v1}.LlmBidiService/BidiGenerateContent``), written from
the SDK's ``_to_vertex`` converters: it admits what they carry that the Gemini API refuses
(``explicitVadSignal``, ``sessionResumption.transparent``, the ``retrieval`` /
``enterpriseWebSearch`` / ``parallelAiSearch`` / ``exaAiSearch`` tools (free-form here),
``googleSearch.blockingConfidence`` / ``excludeDomains``, ``googleMaps.groundingTypes``,
``googleMaps.authConfig``'s Vertex fields, ``safetySettings[].method``,
``functionCall.partialArgs`` / ``willContinue``, ``generationConfig.routingConfig`` /
``modelConfig`` (the SDK's ``model_selection_config``) / ``audioTimestamp``) and refuses what a
``_to_vertex`` converter refuses as "only supported in Gemini Developer API mode"
(``generationConfig.enableEnhancedCivicAnswers``, the ``fileSearch`` tool, ``mcpServers[].name``
/ ``streamableHttpTransport``, ``replicatedVoiceConfig.consentAudio`` /
``voiceConsentSignature``, ``Part.toolCall`` / ``toolResponse`` / ``partMetadata``,
``functionResponse.willContinue``, ``FunctionResponsePart.mediaProcessing``). Where the SDK's own
Vertex converters disagree (``labels``: refused by ``_LiveClientSetup_to_vertex``, sent by
``_LiveConnectConfig_to_vertex``; ``realtimeInput.audioStreamEnd``: refused by
``_LiveClientRealtimeInput_to_vertex``, sent by ``send_realtime_input``) the field is accepted.
A field a converter silently drops is kept: that is no evidence the service refuses it. Which
fields the Vertex service really refuses is unconfirmed beyond the SDK's word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._json import camel_case

__all__ = [
    "MESSAGES",
    "ROOTS",
    "VERTEX_MESSAGES",
    "proto_name",
    "unknown_field_reason",
    "unknown_fields",
]

#: A field's sub-schema: ``None`` for a scalar, enum or free-form value; ``"Name"`` for a
#: message of :data:`MESSAGES`; ``"Name[]"`` for a repeated field of such messages.
FieldSpec = str | None

#: Message name -> {lowerCamelCase field name: sub-schema}.
MESSAGES: dict[str, dict[str, FieldSpec]] = {
    # -- the five client messages (BidiGenerateContentClientMessage's oneof) -------------------
    "Setup": {
        "model": None,
        "generationConfig": "GenerationConfig",
        "systemInstruction": "Content",
        "tools": "Tool[]",
        "realtimeInputConfig": "RealtimeInputConfig",
        "sessionResumption": "SessionResumptionConfig",
        "contextWindowCompression": "ContextWindowCompressionConfig",
        "inputAudioTranscription": "AudioTranscriptionConfig",
        "outputAudioTranscription": "AudioTranscriptionConfig",
        "proactivity": "ProactivityConfig",
        "historyConfig": "HistoryConfig",
        "avatarConfig": "AvatarConfig",
        "safetySettings": "SafetySetting[]",
        "labels": None,  # map<string, string>
    },
    "ClientContent": {"turns": "Content[]", "turnComplete": None},
    "RealtimeInput": {
        "mediaChunks": "Blob[]",
        "audio": "Blob",
        "video": "Blob",
        "text": None,
        "activityStart": "Empty",
        "activityEnd": "Empty",
        "audioStreamEnd": None,
    },
    "ToolResponse": {"functionResponses": "FunctionResponse[]"},
    "ContextUpdate": {"systemInstruction": "Content", "tools": "ContextUpdateTools"},
    "ContextUpdateTools": {"tools": "Tool[]"},
    "Empty": {},
    # -- generation ------------------------------------------------------------------------------
    "GenerationConfig": {
        "responseModalities": None,
        "temperature": None,
        "topP": None,
        "topK": None,
        "candidateCount": None,
        "maxOutputTokens": None,
        "stopSequences": None,
        "presencePenalty": None,
        "frequencyPenalty": None,
        "seed": None,
        "responseLogprobs": None,
        "logprobs": None,
        "responseMimeType": None,
        "responseSchema": None,  # Schema: free-form here
        "responseJsonSchema": None,
        "responseFormat": None,
        "mediaResolution": None,
        "speechConfig": "SpeechConfig",
        "thinkingConfig": "ThinkingConfig",
        "imageConfig": None,
        "enableEnhancedCivicAnswers": None,
        "enableAffectiveDialog": None,
        "translationConfig": "TranslationConfig",
        "audioTranscriptionConfig": "AudioTranscriptionConfig",
    },
    "SpeechConfig": {
        "voiceConfig": "VoiceConfig",
        "languageCode": None,
        "multiSpeakerVoiceConfig": "MultiSpeakerVoiceConfig",
    },
    "VoiceConfig": {
        "prebuiltVoiceConfig": "PrebuiltVoiceConfig",
        "replicatedVoiceConfig": "ReplicatedVoiceConfig",
        "voice": None,
    },
    "PrebuiltVoiceConfig": {"voiceName": None},
    "ReplicatedVoiceConfig": {
        "mimeType": None,
        "voiceSampleAudio": None,
        "consentAudio": None,
        "voiceConsentSignature": None,
    },
    "MultiSpeakerVoiceConfig": {"speakerVoiceConfigs": "SpeakerVoiceConfig[]"},
    "SpeakerVoiceConfig": {"speaker": None, "voiceConfig": "VoiceConfig"},
    "ThinkingConfig": {"includeThoughts": None, "thinkingBudget": None, "thinkingLevel": None},
    "TranslationConfig": {"targetLanguageCode": None, "echoTargetLanguage": None},
    # -- setup-level configs ---------------------------------------------------------------------
    "RealtimeInputConfig": {
        "automaticActivityDetection": "AutomaticActivityDetection",
        "activityHandling": None,
        "turnCoverage": None,
        "interimTranscriptTimestampEnabled": None,
    },
    "AutomaticActivityDetection": {
        "disabled": None,
        "startOfSpeechSensitivity": None,
        "endOfSpeechSensitivity": None,
        "prefixPaddingMs": None,
        "silenceDurationMs": None,
    },
    "SessionResumptionConfig": {"handle": None},  # no "transparent" on the Gemini API
    "ContextWindowCompressionConfig": {"triggerTokens": None, "slidingWindow": "SlidingWindow"},
    "SlidingWindow": {"targetTokens": None},
    "AudioTranscriptionConfig": {
        "languageCodes": None,
        "languageAuto": "Empty",
        "languageHints": "LanguageHints",
        "customVocabulary": None,
        "adaptationPhrases": None,
        "wordTimestamp": None,
        "diarization": None,
        "mode": None,
        "sourceText": None,
    },
    "LanguageHints": {"languageCodes": None},
    "ProactivityConfig": {"proactiveAudio": None, "proactiveVideo": None},
    "HistoryConfig": {"initialHistoryInClientContent": None},
    "AvatarConfig": {
        "avatarName": None,
        "customizedAvatar": "CustomizedAvatar",
        "audioBitrateBps": None,
        "videoBitrateBps": None,
    },
    "CustomizedAvatar": {"imageMimeType": None, "imageData": None},
    "SafetySetting": {"category": None, "threshold": None},
    # -- content ---------------------------------------------------------------------------------
    "Content": {"parts": "Part[]", "role": None},
    "Part": {
        "text": None,
        "inlineData": "Blob",
        "fileData": "FileData",
        "functionCall": "FunctionCall",
        "functionResponse": "FunctionResponse",
        "executableCode": "ExecutableCode",
        "codeExecutionResult": "CodeExecutionResult",
        "thought": None,
        "thoughtSignature": None,
        "mediaResolution": None,
        "videoMetadata": None,
        "toolCall": None,
        "toolResponse": None,
        "partMetadata": None,
        "audioTranscription": None,
        "mediaProcessing": None,
        "speechMetadata": None,
        "documentMetadata": None,
        "spreadsheetMetadata": None,
        "audioMetadata": None,
    },
    "Blob": {"mimeType": None, "data": None, "displayName": None},
    "FileData": {"fileUri": None, "mimeType": None, "displayName": None},
    "FunctionCall": {"id": None, "name": None, "args": None},
    "FunctionResponse": {
        "id": None,
        "name": None,
        "response": None,
        "scheduling": None,
        "willContinue": None,
        "parts": "FunctionResponsePart[]",
    },
    "FunctionResponsePart": {
        "inlineData": "Blob",
        "fileData": "FileData",
        "mediaProcessing": None,
        "mediaResolution": None,
        "videoMetadata": None,
        "documentMetadata": None,
        "spreadsheetMetadata": None,
        "audioMetadata": None,
    },
    "ExecutableCode": {"code": None, "language": None, "id": None},
    "CodeExecutionResult": {"outcome": None, "output": None, "id": None},
    # -- tools -----------------------------------------------------------------------------------
    "Tool": {
        "functionDeclarations": "FunctionDeclaration[]",
        "googleSearch": "GoogleSearch",
        "googleSearchRetrieval": "GoogleSearchRetrieval",
        "codeExecution": "Empty",
        "urlContext": "Empty",
        "googleMaps": "GoogleMaps",
        "fileSearch": "FileSearch",
        "computerUse": "ComputerUse",
        "mcpServers": "McpServer[]",
    },
    "FunctionDeclaration": {
        "name": None,
        "description": None,
        "behavior": None,
        "parameters": None,
        "parametersJsonSchema": None,
        "response": None,
        "responseJsonSchema": None,
    },
    "GoogleSearch": {"searchTypes": None, "timeRangeFilter": "Interval"},
    "Interval": {"startTime": None, "endTime": None},
    "GoogleSearchRetrieval": {"dynamicRetrievalConfig": "DynamicRetrievalConfig"},
    "DynamicRetrievalConfig": {"mode": None, "dynamicThreshold": None},
    "GoogleMaps": {"authConfig": "AuthConfig", "enableWidget": None},
    "AuthConfig": {"apiKey": None},
    "FileSearch": {"fileSearchStoreNames": None, "topK": None, "metadataFilter": None},
    "ComputerUse": {
        "environment": None,
        "excludedPredefinedFunctions": None,
        "enablePromptInjectionDetection": None,
        "disabledSafetyPolicies": None,
    },
    "McpServer": {"name": None, "streamableHttpTransport": "StreamableHttpTransport"},
    "StreamableHttpTransport": {
        "url": None,
        "headers": None,  # map<string, string>
        "timeout": None,
        "sseReadTimeout": None,
        "terminateOnClose": None,
    },
}

def _vertex_messages() -> dict[str, dict[str, FieldSpec]]:
    """:data:`MESSAGES` as the Vertex AI path has them (see the module docstring)."""
    messages = {name: dict(fields) for name, fields in MESSAGES.items()}

    def add(name: str, *fields: str) -> None:
        messages[name].update(dict.fromkeys(fields))

    def drop(name: str, *fields: str) -> None:
        for field in fields:
            del messages[name][field]

    add("Setup", "explicitVadSignal")
    add("SessionResumptionConfig", "transparent")
    add("GenerationConfig", "routingConfig", "modelConfig", "audioTimestamp")
    drop("GenerationConfig", "enableEnhancedCivicAnswers")
    drop("ReplicatedVoiceConfig", "consentAudio", "voiceConsentSignature")
    add("SafetySetting", "method")
    add("Tool", "retrieval", "enterpriseWebSearch", "parallelAiSearch", "exaAiSearch")
    drop("Tool", "fileSearch")
    messages["McpServer"] = {}  # _McpServer_to_vertex refuses both of its fields
    add("GoogleSearch", "blockingConfidence", "excludeDomains")
    add("GoogleMaps", "groundingTypes")
    add(
        "AuthConfig",
        "apiKeyConfig",
        "authType",
        "googleServiceAccountConfig",
        "httpBasicAuthConfig",
        "oauthConfig",
        "oidcConfig",
    )
    drop("Part", "toolCall", "toolResponse", "partMetadata")
    add("FunctionCall", "partialArgs", "willContinue")
    drop("FunctionResponse", "willContinue")
    drop("FunctionResponsePart", "mediaProcessing")
    return messages


#: Message name -> {lowerCamelCase field name: sub-schema}, on the Vertex AI path.
VERTEX_MESSAGES: dict[str, dict[str, FieldSpec]] = _vertex_messages()

#: Top-level message key (camelCase) -> (message name, proto name rooting the path).
ROOTS: dict[str, tuple[str, str]] = {
    "setup": ("Setup", "setup"),
    "clientContent": ("ClientContent", "client_content"),
    "realtimeInput": ("RealtimeInput", "realtime_input"),
    "toolResponse": ("ToolResponse", "tool_response"),
    "contextUpdate": ("ContextUpdate", "context_update"),
}

_UPPER = re.compile(r"[A-Z]")


def proto_name(field: str) -> str:
    """``generationConfig`` -> ``generation_config`` (the proto field name)."""
    return _UPPER.sub(lambda m: "_" + m.group(0).lower(), field)


def _lookup(fields: Mapping[str, FieldSpec], key: str) -> tuple[str, FieldSpec] | None:
    """The camelCase field a sent key names (its JSON or its proto name), or None."""
    if key in fields:
        return key, fields[key]
    camel = camel_case(key)
    if camel in fields and proto_name(camel) == key:
        return camel, fields[camel]
    return None


def unknown_fields(
    value: Any,
    message: str,
    path: str,
    messages: Mapping[str, Mapping[str, FieldSpec]] = MESSAGES,
) -> list[tuple[str, str]]:
    """``(name as sent, path of the object holding it)`` for every unknown key under *value*,
    an object of type *message* found at *path*, depth first in document order (*messages*:
    :data:`MESSAGES` or :data:`VERTEX_MESSAGES`)."""
    found: list[tuple[str, str]] = []
    if not isinstance(value, Mapping):
        return found
    fields = messages[message]
    for key, item in value.items():
        hit = _lookup(fields, key) if isinstance(key, str) else None
        if hit is None:
            found.append((str(key), path))
            continue
        field, spec = hit
        if spec is None:
            continue
        here = f"{path}.{proto_name(field)}"
        if spec.endswith("[]"):
            if isinstance(item, list):
                for index, element in enumerate(item):
                    found.extend(
                        unknown_fields(element, spec[:-2], f"{here}[{index}]", messages)
                    )
        else:
            found.extend(unknown_fields(item, spec, here, messages))
    return found


def unknown_field_reason(message: Mapping[str, Any], *, vertex: bool = False) -> str | None:
    """The service's close reason for unknown fields inside a client *message* (a raw parsed
    frame whose one top-level key is known), or None if every field is known. *vertex*: check
    against the Vertex AI path's fields (:data:`VERTEX_MESSAGES`)."""
    messages = VERTEX_MESSAGES if vertex else MESSAGES
    found: list[tuple[str, str]] = []
    for key, body in message.items():
        root = ROOTS.get(camel_case(key)) if isinstance(key, str) else None
        if root is not None:
            found.extend(unknown_fields(body, *root, messages))
    if not found:
        return None
    return "\n".join(
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{path}': Cannot find field."
        for name, path in found
    )
