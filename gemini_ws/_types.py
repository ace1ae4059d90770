"""Typed models of every Live API message (PROTOCOL.md sections 2 and 3).

The models are plain attrs classes with snake_case field names (the wire's lowerCamelCase
names converted: ``turnComplete`` -> ``turn_complete``). They hold data only: every rule about
the wire format (camelCase, base64, durations, dispatch on the top-level key) lives in
:mod:`gemini_ws._wire`.

Conventions:

- Messages and their parts are frozen, slotted attrs classes. Optional fields default to
  ``None``, list fields to an empty tuple (constructors also accept lists and other
  iterables). What the wire needs beyond names and types is said in field metadata
  (:data:`._codec.ALIASES`, ``WRAP``, ``NULL``, ``EXTRA``) and read by the codec's generated
  cattrs hooks; this module imports the codec, never :mod:`._wire`.
- Five models are dict classes on purpose: :class:`ServerContent`, :class:`Content`,
  :class:`Part`, :class:`Blob` and :class:`Transcription`, the ones the decoder's fast path
  builds for every streamed chunk. A frozen slotted class sets each field through
  ``object.__setattr__`` (1.5 to 2 times the cost of filling a dict class's instance dict:
  see the construction table of ``benchmarks/bench_decode.py``), and a chunk builds up to 40
  fields; the fast path fills their instance dict with checked values instead of calling
  ``__init__``.
- Enums are :class:`enum.StrEnum` subclasses that *tolerate values they do not know*: looking
  up an unknown value (``Modality("HOLOGRAM")``) returns a pseudo-member that keeps the value,
  compares equal to its string and encodes back unchanged. New server values never break
  decoding.
- Every server message has a ``usage_metadata`` field because the server may send
  ``usageMetadata`` beside any of them.
- :class:`LiveConfig` is the user-facing session configuration: every ``setup`` field except
  ``model``, with the ``generationConfig`` fields flattened (as in the official SDKs'
  ``LiveConnectConfig``). Its nested fields accept plain dicts (snake_case or camelCase keys).
"""

from __future__ import annotations

import datetime
import difflib
import enum
import inspect
import types
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias, TypeVar

import attrs

from ._codec import (
    ALIASES,
    CONFIG,
    EXTRA,
    NULL,
    WRAP,
    Invalid,
    snake,
    structure_config,
    unknown_field,
)
from ._errors import ConfigurationError
from ._validate import validated

__all__ = [
    "ActivityEnd",
    "ActivityHandling",
    "ActivityStart",
    "AudioTranscriptionConfig",
    "AudioTranscriptionConfigMode",
    "AutomaticActivityDetection",
    "AvatarConfig",
    "Behavior",
    "Blob",
    "ClientContent",
    "ClientMessage",
    "CodeExecution",
    "CodeExecutionResult",
    "ComputerUse",
    "ComputerUseEnvironment",
    "Content",
    "ContextUpdate",
    "ContextWindowCompressionConfig",
    "CustomizedAvatar",
    "EndSensitivity",
    "EnterpriseWebSearch",
    "ExecutableCode",
    "FileData",
    "FileSearch",
    "FunctionCall",
    "FunctionDeclaration",
    "FunctionResponse",
    "FunctionResponseBlob",
    "FunctionResponseFileData",
    "FunctionResponsePart",
    "GenerationConfig",
    "GoAway",
    "GoogleMaps",
    "GoogleSearch",
    "HarmBlockMethod",
    "HarmBlockThreshold",
    "HarmCategory",
    "HistoryConfig",
    "InteractionStatus",
    "LanguageAuto",
    "LanguageHints",
    "LiveConfig",
    "McpServer",
    "MediaResolution",
    "Modality",
    "ModalityTokenCount",
    "MultiSpeakerVoiceConfig",
    "NullValue",
    "Part",
    "PartialArg",
    "PhishBlockThreshold",
    "PrebuiltVoiceConfig",
    "ProactivityConfig",
    "RealtimeInput",
    "RealtimeInputConfig",
    "ReplicatedVoiceConfig",
    "SafetyPolicy",
    "SafetySetting",
    "Scheduling",
    "ServerContent",
    "ServerMessage",
    "ServiceTier",
    "SessionResumptionConfig",
    "SessionResumptionUpdate",
    "Setup",
    "SetupComplete",
    "SlidingWindow",
    "SpeakerVoiceConfig",
    "SpeechConfig",
    "StartSensitivity",
    "StreamableHttpTransport",
    "ThinkingConfig",
    "ThinkingLevel",
    "Tool",
    "ToolCall",
    "ToolCallCancellation",
    "ToolResponse",
    "TrafficType",
    "Transcription",
    "TranslationConfig",
    "TurnCompleteReason",
    "TurnCoverage",
    "UnknownMessage",
    "UrlContext",
    "UrlContextMetadata",
    "UrlMetadata",
    "UsageMessage",
    "UsageMetadata",
    "VadSignalType",
    "VoiceActivity",
    "VoiceActivityDetectionSignal",
    "VoiceActivityType",
    "VoiceConfig",
    "VoiceConsentSignature",
    "WordInfo",
    "audio_chunk",
    "normalize_model_name",
    "text_turn",
    "tool_response",
    "video_frame",
]

_T = TypeVar("_T")
_E = TypeVar("_E", bound="_TolerantEnum")


# --- enums ---------------------------------------------------------------------------------


class _TolerantEnum(enum.StrEnum):
    """A string enum whose lookup never fails for a string it does not know.

    ``Modality("NEW_THING")`` returns a pseudo-member (not cached, not listed by iteration)
    with ``.value == .name == "NEW_THING"``; it is an instance of the enum and of ``str`` and
    compares equal to its value, so it round-trips unchanged.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            member = str.__new__(cls, value)
            member._name_ = value
            member._value_ = value
            return member
        return None

    @property
    def is_known(self) -> bool:
        """Whether this is one of the values the enum declares (not a pseudo-member)."""
        return self._name_ in type(self).__members__


class Modality(_TolerantEnum):
    """A response or token-count modality."""

    MODALITY_UNSPECIFIED = "MODALITY_UNSPECIFIED"
    TEXT = "TEXT"
    AUDIO = "AUDIO"
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    DOCUMENT = "DOCUMENT"


class MediaResolution(_TolerantEnum):
    """Resolution of media (image / video) input."""

    MEDIA_RESOLUTION_UNSPECIFIED = "MEDIA_RESOLUTION_UNSPECIFIED"
    MEDIA_RESOLUTION_LOW = "MEDIA_RESOLUTION_LOW"
    MEDIA_RESOLUTION_MEDIUM = "MEDIA_RESOLUTION_MEDIUM"
    MEDIA_RESOLUTION_HIGH = "MEDIA_RESOLUTION_HIGH"


class StartSensitivity(_TolerantEnum):
    """How readily automatic activity detection detects the start of speech."""

    START_SENSITIVITY_UNSPECIFIED = "START_SENSITIVITY_UNSPECIFIED"
    START_SENSITIVITY_HIGH = "START_SENSITIVITY_HIGH"
    START_SENSITIVITY_LOW = "START_SENSITIVITY_LOW"


class EndSensitivity(_TolerantEnum):
    """How readily automatic activity detection detects the end of speech."""

    END_SENSITIVITY_UNSPECIFIED = "END_SENSITIVITY_UNSPECIFIED"
    END_SENSITIVITY_HIGH = "END_SENSITIVITY_HIGH"
    END_SENSITIVITY_LOW = "END_SENSITIVITY_LOW"


class ActivityHandling(_TolerantEnum):
    """What user activity does to the model's current output."""

    ACTIVITY_HANDLING_UNSPECIFIED = "ACTIVITY_HANDLING_UNSPECIFIED"
    START_OF_ACTIVITY_INTERRUPTS = "START_OF_ACTIVITY_INTERRUPTS"
    NO_INTERRUPTION = "NO_INTERRUPTION"


class TurnCoverage(_TolerantEnum):
    """Which input is included in the user's turn."""

    TURN_COVERAGE_UNSPECIFIED = "TURN_COVERAGE_UNSPECIFIED"
    TURN_INCLUDES_ONLY_ACTIVITY = "TURN_INCLUDES_ONLY_ACTIVITY"
    TURN_INCLUDES_ALL_INPUT = "TURN_INCLUDES_ALL_INPUT"
    TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO = "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO"


class Behavior(_TolerantEnum):
    """Whether a function blocks the conversation while it runs."""

    UNSPECIFIED = "UNSPECIFIED"
    BLOCKING = "BLOCKING"
    NON_BLOCKING = "NON_BLOCKING"


class Scheduling(_TolerantEnum):
    """When the model should act on a (non-blocking) function's response."""

    SCHEDULING_UNSPECIFIED = "SCHEDULING_UNSPECIFIED"
    SILENT = "SILENT"
    WHEN_IDLE = "WHEN_IDLE"
    INTERRUPT = "INTERRUPT"


class TurnCompleteReason(_TolerantEnum):
    """Why the model's turn ended (``serverContent.turnCompleteReason``)."""

    TURN_COMPLETE_REASON_UNSPECIFIED = "TURN_COMPLETE_REASON_UNSPECIFIED"
    MALFORMED_FUNCTION_CALL = "MALFORMED_FUNCTION_CALL"
    RESPONSE_REJECTED = "RESPONSE_REJECTED"
    NEED_MORE_INPUT = "NEED_MORE_INPUT"
    PROHIBITED_INPUT_CONTENT = "PROHIBITED_INPUT_CONTENT"
    IMAGE_PROHIBITED_INPUT_CONTENT = "IMAGE_PROHIBITED_INPUT_CONTENT"
    INPUT_TEXT_CONTAIN_PROMINENT_PERSON_PROHIBITED = (
        "INPUT_TEXT_CONTAIN_PROMINENT_PERSON_PROHIBITED"
    )
    INPUT_IMAGE_CELEBRITY = "INPUT_IMAGE_CELEBRITY"
    INPUT_IMAGE_PHOTO_REALISTIC_CHILD_PROHIBITED = "INPUT_IMAGE_PHOTO_REALISTIC_CHILD_PROHIBITED"
    INPUT_TEXT_NCII_PROHIBITED = "INPUT_TEXT_NCII_PROHIBITED"
    INPUT_OTHER = "INPUT_OTHER"
    INPUT_IP_PROHIBITED = "INPUT_IP_PROHIBITED"
    BLOCKLIST = "BLOCKLIST"
    UNSAFE_PROMPT_FOR_IMAGE_GENERATION = "UNSAFE_PROMPT_FOR_IMAGE_GENERATION"
    GENERATED_IMAGE_SAFETY = "GENERATED_IMAGE_SAFETY"
    GENERATED_CONTENT_SAFETY = "GENERATED_CONTENT_SAFETY"
    GENERATED_AUDIO_SAFETY = "GENERATED_AUDIO_SAFETY"
    GENERATED_VIDEO_SAFETY = "GENERATED_VIDEO_SAFETY"
    GENERATED_CONTENT_PROHIBITED = "GENERATED_CONTENT_PROHIBITED"
    GENERATED_CONTENT_BLOCKLIST = "GENERATED_CONTENT_BLOCKLIST"
    GENERATED_IMAGE_PROHIBITED = "GENERATED_IMAGE_PROHIBITED"
    GENERATED_IMAGE_CELEBRITY = "GENERATED_IMAGE_CELEBRITY"
    GENERATED_IMAGE_PROMINENT_PEOPLE_DETECTED_BY_REWRITER = (
        "GENERATED_IMAGE_PROMINENT_PEOPLE_DETECTED_BY_REWRITER"
    )
    GENERATED_IMAGE_IDENTIFIABLE_PEOPLE = "GENERATED_IMAGE_IDENTIFIABLE_PEOPLE"
    GENERATED_IMAGE_MINORS = "GENERATED_IMAGE_MINORS"
    OUTPUT_IMAGE_IP_PROHIBITED = "OUTPUT_IMAGE_IP_PROHIBITED"
    GENERATED_OTHER = "GENERATED_OTHER"
    MAX_REGENERATION_REACHED = "MAX_REGENERATION_REACHED"


class InteractionStatus(_TolerantEnum):
    """Whether the model is still working on its reply (``serverContent.interactionStatus``,
    Gemini 3.x thinking models): a ``turnComplete`` while ``IN_PROGRESS`` is not the end."""

    INTERACTION_STATUS_UNSPECIFIED = "INTERACTION_STATUS_UNSPECIFIED"
    IN_PROGRESS = "IN_PROGRESS"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    IDLE = "IDLE"


class ThinkingLevel(_TolerantEnum):
    """How much the model thinks (Gemini 3 models). The wire also accepts lower case."""

    THINKING_LEVEL_UNSPECIFIED = "THINKING_LEVEL_UNSPECIFIED"
    MINIMAL = "MINIMAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    XHIGH = "XHIGH"


class VadSignalType(_TolerantEnum):
    """Type of a ``voiceActivityDetectionSignal`` (allowlisted feature)."""

    VAD_SIGNAL_TYPE_UNSPECIFIED = "VAD_SIGNAL_TYPE_UNSPECIFIED"
    VAD_SIGNAL_TYPE_SOS = "VAD_SIGNAL_TYPE_SOS"
    VAD_SIGNAL_TYPE_EOS = "VAD_SIGNAL_TYPE_EOS"


class VoiceActivityType(_TolerantEnum):
    """Type of a ``voiceActivity`` message."""

    TYPE_UNSPECIFIED = "TYPE_UNSPECIFIED"
    ACTIVITY_START = "ACTIVITY_START"
    ACTIVITY_END = "ACTIVITY_END"


class AudioTranscriptionConfigMode(_TolerantEnum):
    """How audio is transcribed (``AudioTranscriptionConfig.mode``). ``SMART`` removes
    disfluencies and formats the text; it does not take timestamps or diarization."""

    MODE_UNSPECIFIED = "MODE_UNSPECIFIED"
    VERBATIM = "VERBATIM"
    SMART = "SMART"


class HarmCategory(_TolerantEnum):
    """The harm category of a :class:`SafetySetting`."""

    HARM_CATEGORY_UNSPECIFIED = "HARM_CATEGORY_UNSPECIFIED"
    HARM_CATEGORY_HARASSMENT = "HARM_CATEGORY_HARASSMENT"
    HARM_CATEGORY_HATE_SPEECH = "HARM_CATEGORY_HATE_SPEECH"
    HARM_CATEGORY_SEXUALLY_EXPLICIT = "HARM_CATEGORY_SEXUALLY_EXPLICIT"
    HARM_CATEGORY_DANGEROUS_CONTENT = "HARM_CATEGORY_DANGEROUS_CONTENT"
    HARM_CATEGORY_CIVIC_INTEGRITY = "HARM_CATEGORY_CIVIC_INTEGRITY"
    HARM_CATEGORY_JAILBREAK = "HARM_CATEGORY_JAILBREAK"
    HARM_CATEGORY_IMAGE_HATE = "HARM_CATEGORY_IMAGE_HATE"
    HARM_CATEGORY_IMAGE_DANGEROUS_CONTENT = "HARM_CATEGORY_IMAGE_DANGEROUS_CONTENT"
    HARM_CATEGORY_IMAGE_HARASSMENT = "HARM_CATEGORY_IMAGE_HARASSMENT"
    HARM_CATEGORY_IMAGE_SEXUALLY_EXPLICIT = "HARM_CATEGORY_IMAGE_SEXUALLY_EXPLICIT"


class HarmBlockThreshold(_TolerantEnum):
    """From which probability (or severity) of harm a :class:`SafetySetting` blocks."""

    HARM_BLOCK_THRESHOLD_UNSPECIFIED = "HARM_BLOCK_THRESHOLD_UNSPECIFIED"
    BLOCK_LOW_AND_ABOVE = "BLOCK_LOW_AND_ABOVE"
    BLOCK_MEDIUM_AND_ABOVE = "BLOCK_MEDIUM_AND_ABOVE"
    BLOCK_ONLY_HIGH = "BLOCK_ONLY_HIGH"
    BLOCK_NONE = "BLOCK_NONE"
    OFF = "OFF"


class HarmBlockMethod(_TolerantEnum):
    """Whether a :class:`SafetySetting` threshold applies to probability or severity
    (Vertex AI only)."""

    HARM_BLOCK_METHOD_UNSPECIFIED = "HARM_BLOCK_METHOD_UNSPECIFIED"
    SEVERITY = "SEVERITY"
    PROBABILITY = "PROBABILITY"


class PhishBlockThreshold(_TolerantEnum):
    """From which confidence :class:`EnterpriseWebSearch` blocks phishing sites."""

    PHISH_BLOCK_THRESHOLD_UNSPECIFIED = "PHISH_BLOCK_THRESHOLD_UNSPECIFIED"
    BLOCK_LOW_AND_ABOVE = "BLOCK_LOW_AND_ABOVE"
    BLOCK_MEDIUM_AND_ABOVE = "BLOCK_MEDIUM_AND_ABOVE"
    BLOCK_HIGH_AND_ABOVE = "BLOCK_HIGH_AND_ABOVE"
    BLOCK_HIGHER_AND_ABOVE = "BLOCK_HIGHER_AND_ABOVE"
    BLOCK_VERY_HIGH_AND_ABOVE = "BLOCK_VERY_HIGH_AND_ABOVE"
    BLOCK_ONLY_EXTREMELY_HIGH = "BLOCK_ONLY_EXTREMELY_HIGH"


class ComputerUseEnvironment(_TolerantEnum):
    """The environment the :class:`ComputerUse` tool operates (the SDK's ``Environment``)."""

    ENVIRONMENT_UNSPECIFIED = "ENVIRONMENT_UNSPECIFIED"
    ENVIRONMENT_BROWSER = "ENVIRONMENT_BROWSER"
    ENVIRONMENT_MOBILE = "ENVIRONMENT_MOBILE"
    ENVIRONMENT_DESKTOP = "ENVIRONMENT_DESKTOP"


class SafetyPolicy(_TolerantEnum):
    """A safety policy of the :class:`ComputerUse` tool that can be disabled."""

    SAFETY_POLICY_UNSPECIFIED = "SAFETY_POLICY_UNSPECIFIED"
    FINANCIAL_TRANSACTIONS = "FINANCIAL_TRANSACTIONS"
    SENSITIVE_DATA_MODIFICATION = "SENSITIVE_DATA_MODIFICATION"
    COMMUNICATION_TOOL = "COMMUNICATION_TOOL"
    ACCOUNT_CREATION = "ACCOUNT_CREATION"
    DATA_MODIFICATION = "DATA_MODIFICATION"
    USER_CONSENT_MANAGEMENT = "USER_CONSENT_MANAGEMENT"
    LEGAL_TERMS_AND_AGREEMENTS = "LEGAL_TERMS_AND_AGREEMENTS"


class TrafficType(_TolerantEnum):
    """How a request was billed (``usageMetadata.trafficType``)."""

    TRAFFIC_TYPE_UNSPECIFIED = "TRAFFIC_TYPE_UNSPECIFIED"
    ON_DEMAND = "ON_DEMAND"
    ON_DEMAND_PRIORITY = "ON_DEMAND_PRIORITY"
    ON_DEMAND_FLEX = "ON_DEMAND_FLEX"
    ON_DEMAND_OFFPEAK = "ON_DEMAND_OFFPEAK"
    PROVISIONED_THROUGHPUT = "PROVISIONED_THROUGHPUT"


class ServiceTier(_TolerantEnum):
    """The service tier that served a request (``usageMetadata.serviceTier``; lower case on
    the wire)."""

    UNSPECIFIED = "unspecified"
    FLEX = "flex"
    STANDARD = "standard"
    PRIORITY = "priority"


class NullValue(_TolerantEnum):
    """``google.protobuf.NullValue``: the JSON ``null`` of a streamed :class:`PartialArg`
    (proto JSON sends it as ``null``; the SDKs send the name ``"NULL_VALUE"``)."""

    NULL_VALUE = "NULL_VALUE"


# --- small converters used by constructors ---------------------------------------------------


def _to_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    """Accept any iterable (list, generator...) for a sequence field; keep tuples as they are."""
    if type(value) is tuple:
        return value
    if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"expected a list or tuple, got {type(value).__name__}: {value!r:.80}"
        )
    return tuple(value)


def _to_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    """Accept any mapping for a free-form JSON object field (keys are kept untouched)."""
    if type(value) is dict:
        return value
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"expected a dict, got {type(value).__name__}: {value!r:.80}")
    return dict(value)


# --- fields this release does not model ----------------------------------------------------

#: The ``extra`` of a message that has none (shared, read-only).
NO_EXTRA: Mapping[str, Any] = types.MappingProxyType({})


def _extra(value: Any) -> Mapping[str, Any]:
    if value is None:
        return NO_EXTRA
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"extra must be a dict of wire fields (camelCase names, JSON values), got "
            f"{type(value).__name__}"
        )
    for key in value:
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"extra: field names must be non-empty str, got {key!r:.40}")
    return dict(value) if value else NO_EXTRA


@attrs.frozen
class _WireModel:
    """The base of every wire model: ``extra`` holds the fields this release does not model."""

    #: Wire fields that have no typed field here, by their wire (camelCase) names, with their
    #: JSON values. On a received message: what the server sent that this release does not
    #: know (kept, never dropped). On one you build: fields to send beside the typed ones,
    #: merged into the message's JSON when it is encoded (an object merges into the typed
    #: field's object of the same name; anything else replaces it). Empty when there are none.
    extra: Mapping[str, Any] = attrs.field(
        default=NO_EXTRA,
        converter=_extra,
        kw_only=True,
        repr=False,
        hash=False,
        metadata={EXTRA: True},
    )


# --- parts ---------------------------------------------------------------------------------


@validated
@attrs.frozen(slots=False)  # built per streamed chunk (module docstring)
class Blob(_WireModel):
    """Inline binary data with its MIME type (``inlineData``, realtime ``audio`` / ``video``).

    ``data`` holds the raw bytes; the wire carries them as base64.
    """

    mime_type: str
    data: bytes


@validated
@attrs.frozen
class FileData(_WireModel):
    """A reference to a file by URI (``fileData``)."""

    file_uri: str
    mime_type: str | None = None


@validated
@attrs.frozen
class PartialArg(_WireModel):
    """One streamed piece of a function call's arguments (``functionCall.partialArgs``).

    ``json_path`` (RFC 9535, e.g. ``"$.city"``) names the argument; at most one of the value
    fields is set (``null_value`` for a JSON ``null``). ``will_continue`` means more pieces of
    the same path follow (a string arrives in several).
    """

    json_path: str
    string_value: str | None = None
    number_value: float | None = None
    bool_value: bool | None = None
    null_value: NullValue | None = attrs.field(
        default=None, metadata={NULL: NullValue.NULL_VALUE}
    )
    will_continue: bool | None = None


@validated
@attrs.frozen
class FunctionCall(_WireModel):
    """A function call requested by the model.

    ``args`` is a free-form JSON object; its keys are never renamed. When the arguments are
    streamed, they come as ``partial_args`` over several calls with ``will_continue=True``
    (``willContinue``/``partialArgs``: Vertex AI; the Gemini API documents neither).
    """

    #: the declared function's name ("" on a continuation part of streamed arguments, which
    #: may come without one)
    name: str = ""
    args: dict[str, Any] = attrs.field(factory=dict, converter=_to_dict)
    id: str | None = None
    will_continue: bool | None = None
    partial_args: tuple[PartialArg, ...] = attrs.field(default=(), converter=_to_tuple)


@validated
@attrs.frozen
class FunctionResponseBlob(_WireModel):
    """Inline data in a :class:`FunctionResponsePart` (raw bytes; base64 on the wire)."""

    mime_type: str
    data: bytes
    display_name: str | None = None


@validated
@attrs.frozen
class FunctionResponseFileData(_WireModel):
    """A file referenced by URI in a :class:`FunctionResponsePart`."""

    file_uri: str
    mime_type: str | None = None
    display_name: str | None = None


@validated
@attrs.frozen
class FunctionResponsePart(_WireModel):
    """Media returned with a function's result (``parts`` of :class:`FunctionResponse`): one of
    inline data or a file reference."""

    inline_data: FunctionResponseBlob | None = None
    file_data: FunctionResponseFileData | None = None


@validated
@attrs.frozen
class FunctionResponse(_WireModel):
    """The result of a function call, sent back in a :class:`ToolResponse`.

    ``id`` must be the ``id`` of the :class:`FunctionCall` it answers (the Gemini API
    requires it). ``response`` is a free-form JSON object; its keys are never renamed.
    ``scheduling`` only matters for ``NON_BLOCKING`` functions. ``parts`` carries media
    (images, audio, files) beside the JSON result.
    """

    id: str | None
    name: str
    response: dict[str, Any] = attrs.field(factory=dict, converter=_to_dict)
    scheduling: Scheduling | None = None
    will_continue: bool | None = None
    parts: tuple[FunctionResponsePart, ...] = attrs.field(default=(), converter=_to_tuple)


@validated
@attrs.frozen
class ExecutableCode(_WireModel):
    """Code the model generated for the code execution tool."""

    code: str | None = None
    language: str | None = None


@validated
@attrs.frozen
class CodeExecutionResult(_WireModel):
    """The result of running :class:`ExecutableCode`."""

    outcome: str | None = None
    output: str | None = None


@validated
@attrs.frozen(slots=False)  # built per streamed chunk (module docstring)
class Part(_WireModel):
    """One part of a :class:`Content`: text, inline data, a function call or response, ...

    Normally exactly one of the data fields is set. ``thought`` marks a thinking part.
    """

    text: str | None = None
    inline_data: Blob | None = None
    thought: bool | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    executable_code: ExecutableCode | None = None
    code_execution_result: CodeExecutionResult | None = None
    file_data: FileData | None = None
    thought_signature: bytes | None = None


@validated
@attrs.frozen(slots=False)  # built per streamed chunk (module docstring)
class Content(_WireModel):
    """A turn: a role (``"user"`` or ``"model"``) and its parts."""

    parts: tuple[Part, ...] = attrs.field(default=(), converter=_to_tuple)
    role: str | None = None


# --- tools ---------------------------------------------------------------------------------


@validated
@attrs.frozen
class FunctionDeclaration(_WireModel):
    """A function the model may call.

    ``parameters`` (OpenAPI-style schema), ``parameters_json_schema``, ``response`` and
    ``response_json_schema`` (a JSON Schema of the result) are free-form JSON objects whose
    keys are sent untouched.
    """

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    behavior: Behavior | None = None
    parameters_json_schema: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    response_json_schema: dict[str, Any] | None = None


@validated
@attrs.frozen
class GoogleSearch(_WireModel):
    """The Google Search tool (``{"googleSearch": {}}``)."""


@validated
@attrs.frozen
class CodeExecution(_WireModel):
    """The code execution tool (``{"codeExecution": {}}``)."""


@validated
@attrs.frozen
class UrlContext(_WireModel):
    """The URL context tool (``{"urlContext": {}}``)."""


@validated
@attrs.frozen
class GoogleMaps(_WireModel):
    """The Google Maps grounding tool (``{"googleMaps": {}}``).

    ``auth_config`` and ``grounding_types`` (Vertex AI only) are free-form JSON objects in
    their wire form (camelCase keys, sent untouched).
    """

    enable_widget: bool | None = None
    auth_config: dict[str, Any] | None = None
    grounding_types: dict[str, Any] | None = None


@validated
@attrs.frozen
class FileSearch(_WireModel):
    """The file search tool over File Search stores (Gemini API only)."""

    file_search_store_names: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)
    top_k: int | None = None
    metadata_filter: str | None = None


@validated
@attrs.frozen
class EnterpriseWebSearch(_WireModel):
    """Web search for enterprise compliance (Vertex AI only)."""

    exclude_domains: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)
    blocking_confidence: PhishBlockThreshold | None = None


@validated
@attrs.frozen
class StreamableHttpTransport(_WireModel):
    """How to reach an MCP server over streamable HTTP. ``headers`` are sent as given;
    ``timeout`` and ``sse_read_timeout`` are durations (``"30s"`` on the wire)."""

    url: str | None = None
    headers: dict[str, str] | None = None
    timeout: datetime.timedelta | None = None
    sse_read_timeout: datetime.timedelta | None = None
    terminate_on_close: bool | None = None


@validated
@attrs.frozen
class McpServer(_WireModel):
    """A remote MCP server whose tools the model may call (Gemini API only)."""

    name: str | None = None
    streamable_http_transport: StreamableHttpTransport | None = None


@validated
@attrs.frozen
class ComputerUse(_WireModel):
    """The computer use tool: the model operates a browser, desktop or phone."""

    environment: ComputerUseEnvironment | None = None
    excluded_predefined_functions: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)
    enable_prompt_injection_detection: bool | None = None
    disabled_safety_policies: tuple[SafetyPolicy, ...] = attrs.field(
        default=(), converter=_to_tuple
    )


@validated
@attrs.frozen
class Tool(_WireModel):
    """One entry of ``setup.tools``: function declarations and/or a built-in tool.

    ``retrieval`` (Vertex AI: Vertex AI Search, RAG Engine or an external API) is a free-form
    JSON object in its wire form (camelCase keys, sent untouched), e.g.
    ``{"vertexAiSearch": {"datastore": "projects/..."}}``.
    """

    function_declarations: tuple[FunctionDeclaration, ...] = attrs.field(
        default=(), converter=_to_tuple
    )
    google_search: GoogleSearch | None = None
    code_execution: CodeExecution | None = None
    url_context: UrlContext | None = None
    google_maps: GoogleMaps | None = None
    file_search: FileSearch | None = None
    enterprise_web_search: EnterpriseWebSearch | None = None
    mcp_servers: tuple[McpServer, ...] = attrs.field(default=(), converter=_to_tuple)
    computer_use: ComputerUse | None = None
    retrieval: dict[str, Any] | None = None


# --- setup configuration -------------------------------------------------------------------


@validated
@attrs.frozen
class PrebuiltVoiceConfig(_WireModel):
    """Selects one of the prebuilt voices by name (e.g. ``"Kore"``)."""

    voice_name: str | None = None


@validated
@attrs.frozen
class VoiceConsentSignature(_WireModel):
    """A signature of a voice consent the server verified (``setupComplete`` carries it);
    pass it in :class:`ReplicatedVoiceConfig` instead of the consent audio next time."""

    signature: str | None = None


@validated
@attrs.frozen
class ReplicatedVoiceConfig(_WireModel):
    """A clone of a user's voice for speech output.

    ``voice_sample_audio`` and ``consent_audio`` are raw bytes (16-bit little-endian 24 kHz
    WAV; ``mime_type`` ``"audio/wav"``), base64 on the wire. ``consent_audio`` and
    ``voice_consent_signature`` are Gemini API only.
    """

    mime_type: str | None = None
    voice_sample_audio: bytes | None = None
    consent_audio: bytes | None = None
    voice_consent_signature: VoiceConsentSignature | None = None


@validated
@attrs.frozen
class VoiceConfig(_WireModel):
    """Voice selection for speech output: a prebuilt voice or a replicated one."""

    prebuilt_voice_config: PrebuiltVoiceConfig | None = None
    replicated_voice_config: ReplicatedVoiceConfig | None = None


@validated
@attrs.frozen
class SpeakerVoiceConfig(_WireModel):
    """The voice of one named speaker of a :class:`MultiSpeakerVoiceConfig`."""

    speaker: str | None = None
    voice_config: VoiceConfig | None = None


@validated
@attrs.frozen
class MultiSpeakerVoiceConfig(_WireModel):
    """A voice per speaker. google-genai refuses it for Live sessions
    (``multi_speaker_voice_config is not supported in the live API``)."""

    speaker_voice_configs: tuple[SpeakerVoiceConfig, ...] = attrs.field(
        default=(), converter=_to_tuple
    )


@validated
@attrs.frozen
class SpeechConfig(_WireModel):
    """Speech output configuration (``generationConfig.speechConfig``)."""

    voice_config: VoiceConfig | None = None
    language_code: str | None = None
    multi_speaker_voice_config: MultiSpeakerVoiceConfig | None = None

    @classmethod
    def voice(cls, voice_name: str, language_code: str | None = None) -> SpeechConfig:
        """Shortcut for ``SpeechConfig(voice_config=VoiceConfig(PrebuiltVoiceConfig(name)))``."""
        return cls(
            voice_config=VoiceConfig(prebuilt_voice_config=PrebuiltVoiceConfig(voice_name)),
            language_code=language_code,
        )


@validated
@attrs.frozen
class ThinkingConfig(_WireModel):
    """Thinking configuration (``generationConfig.thinkingConfig``)."""

    thinking_budget: int | None = None
    thinking_level: ThinkingLevel | None = None
    include_thoughts: bool | None = None


@validated
@attrs.frozen
class TranslationConfig(_WireModel):
    """Speech translation (``generationConfig.translationConfig``): the model speaks
    ``target_language_code`` (BCP-47, e.g. ``"en"``); ``echo_target_language`` makes it
    repeat speech already in that language."""

    target_language_code: str | None = None
    echo_target_language: bool | None = None


@validated
@attrs.frozen
class LanguageAuto(_WireModel):
    """Deprecated: automatic language detection (now the default without language codes)."""


@validated
@attrs.frozen
class LanguageHints(_WireModel):
    """Deprecated: use ``language_codes`` of :class:`AudioTranscriptionConfig`."""

    language_codes: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)


@validated
@attrs.frozen
class AudioTranscriptionConfig(_WireModel):
    """Transcription of input or output audio; ``{}`` on the wire just enables it.

    ``language_codes`` are BCP-47 hints (automatic detection without them);
    ``custom_vocabulary`` biases recognition towards its phrases; ``word_timestamp`` asks for
    ``words`` of the :class:`Transcription`, ``diarization`` for its ``speaker_label``.
    ``mode`` ``SMART`` cleans the text up (no timestamps nor diarization then) and may edit
    ``source_text`` by voice. ``language_auto``, ``language_hints`` and ``adaptation_phrases``
    are deprecated.
    """

    language_codes: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)
    language_auto: LanguageAuto | None = None
    language_hints: LanguageHints | None = None
    custom_vocabulary: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)
    adaptation_phrases: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)
    word_timestamp: bool | None = None
    diarization: bool | None = None
    mode: AudioTranscriptionConfigMode | None = None
    source_text: str | None = None


@validated
@attrs.frozen
class GenerationConfig(_WireModel):
    """``setup.generationConfig`` (users normally set these fields on :class:`LiveConfig`)."""

    response_modalities: tuple[Modality, ...] = attrs.field(default=(), converter=_to_tuple)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_output_tokens: int | None = None
    candidate_count: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    media_resolution: MediaResolution | None = None
    speech_config: SpeechConfig | None = None
    thinking_config: ThinkingConfig | None = None
    enable_affective_dialog: bool | None = None
    translation_config: TranslationConfig | None = None
    audio_transcription_config: AudioTranscriptionConfig | None = None


@validated
@attrs.frozen
class AutomaticActivityDetection(_WireModel):
    """Server-side voice activity detection settings."""

    disabled: bool | None = None
    start_of_speech_sensitivity: StartSensitivity | None = None
    end_of_speech_sensitivity: EndSensitivity | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None


@validated
@attrs.frozen
class RealtimeInputConfig(_WireModel):
    """``setup.realtimeInputConfig``: how realtime input is turned into turns."""

    automatic_activity_detection: AutomaticActivityDetection | None = None
    activity_handling: ActivityHandling | None = None
    turn_coverage: TurnCoverage | None = None
    interim_transcript_timestamp_enabled: bool | None = None


@validated
@attrs.frozen
class SessionResumptionConfig(_WireModel):
    """``setup.sessionResumption``. Empty (``{}``) enables resumption updates on a new
    session; ``handle`` resumes a previous one; ``transparent`` asks for
    ``lastConsumedClientMessageIndex`` in updates."""

    handle: str | None = None
    transparent: bool | None = None


@validated
@attrs.frozen
class SlidingWindow(_WireModel):
    """The sliding-window compression mechanism."""

    target_tokens: int | None = None


@validated
@attrs.frozen
class ContextWindowCompressionConfig(_WireModel):
    """``setup.contextWindowCompression``: lets a session run past the context limit."""

    trigger_tokens: int | None = None
    sliding_window: SlidingWindow | None = None


@validated
@attrs.frozen
class ProactivityConfig(_WireModel):
    """``setup.proactivity``: lets the model decide not to answer (proactive audio), and
    with ``proactive_video`` (needs ``proactive_audio``) answer images unprompted (which can
    cost much more)."""

    proactive_audio: bool | None = None
    proactive_video: bool | None = None


@validated
@attrs.frozen
class HistoryConfig(_WireModel):
    """``setup.historyConfig``: on Gemini 3.1, allows seeding history with clientContent."""

    initial_history_in_client_content: bool | None = None


@validated
@attrs.frozen
class CustomizedAvatar(_WireModel):
    """An avatar made from a reference image (raw bytes, base64 on the wire; 9:16 portrait,
    at least 704x1280)."""

    image_mime_type: str | None = None
    image_data: bytes | None = None


@validated
@attrs.frozen
class AvatarConfig(_WireModel):
    """``setup.avatarConfig``: the avatar of the session (a prebuilt one by name or a
    customized one) and the bitrates of its compressed audio and video."""

    avatar_name: str | None = None
    customized_avatar: CustomizedAvatar | None = None
    audio_bitrate_bps: int | None = None
    video_bitrate_bps: int | None = None


@validated
@attrs.frozen
class SafetySetting(_WireModel):
    """One entry of ``setup.safetySettings``: block ``category`` from ``threshold`` on.
    ``method`` is Vertex AI only."""

    category: HarmCategory | None = None
    threshold: HarmBlockThreshold | None = None
    method: HarmBlockMethod | None = None


# --- client messages -----------------------------------------------------------------------


@validated
@attrs.frozen
class Setup(_WireModel):
    """The first client message of a session (``setup``)."""

    model: str
    generation_config: GenerationConfig | None = None
    system_instruction: Content | None = None
    tools: tuple[Tool, ...] = attrs.field(default=(), converter=_to_tuple)
    realtime_input_config: RealtimeInputConfig | None = None
    session_resumption: SessionResumptionConfig | None = None
    context_window_compression: ContextWindowCompressionConfig | None = None
    input_audio_transcription: AudioTranscriptionConfig | None = None
    output_audio_transcription: AudioTranscriptionConfig | None = None
    proactivity: ProactivityConfig | None = None
    history_config: HistoryConfig | None = None
    explicit_vad_signal: bool | None = None
    avatar_config: AvatarConfig | None = None
    safety_settings: tuple[SafetySetting, ...] = attrs.field(default=(), converter=_to_tuple)
    labels: dict[str, str] | None = None


@validated
@attrs.frozen
class ClientContent(_WireModel):
    """Turns appended to the conversation history (``clientContent``).

    With ``turn_complete=True`` the model starts generating.
    """

    turns: tuple[Content, ...] = attrs.field(default=(), converter=_to_tuple)
    turn_complete: bool | None = None


@validated
@attrs.frozen
class ActivityStart(_WireModel):
    """Marks the start of user activity (only when automatic VAD is disabled)."""


@validated
@attrs.frozen
class ActivityEnd(_WireModel):
    """Marks the end of user activity (only when automatic VAD is disabled)."""


@validated
@attrs.frozen
class RealtimeInput(_WireModel):
    """Realtime input (``realtimeInput``): one of audio, video, text or an activity signal.

    ``media_chunks`` is deprecated on the wire; prefer ``audio`` / ``video``.
    """

    audio: Blob | None = None
    video: Blob | None = None
    text: str | None = None
    activity_start: ActivityStart | None = None
    activity_end: ActivityEnd | None = None
    audio_stream_end: bool | None = None
    media_chunks: tuple[Blob, ...] = attrs.field(default=(), converter=_to_tuple)


@validated
@attrs.frozen
class ToolResponse(_WireModel):
    """Answers to the model's function calls (``toolResponse``)."""

    function_responses: tuple[FunctionResponse, ...] = attrs.field(default=(), converter=_to_tuple)


@validated
@attrs.frozen
class ContextUpdate(_WireModel):
    """Updates the system instruction and/or tools mid-session (``contextUpdate``; newer,
    SDK-only message, Gemini API support unconfirmed).

    ``tools=None`` leaves the tools alone; ``tools=()`` clears them (sent as
    ``{"tools": {"tools": []}}``).
    """

    system_instruction: Content | None = None
    tools: tuple[Tool, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(_to_tuple), metadata={WRAP: "tools"}
    )


#: Any message a client sends.
ClientMessage: TypeAlias = Setup | ClientContent | RealtimeInput | ToolResponse | ContextUpdate


# --- server messages -----------------------------------------------------------------------


@validated
@attrs.frozen
class ModalityTokenCount(_WireModel):
    """A token count for one modality."""

    modality: Modality | None = None
    token_count: int | None = None


@validated
@attrs.frozen
class UsageMetadata(_WireModel):
    """Token usage (``usageMetadata``). Vertex's ``candidates*`` fields map onto
    ``response_*``. proto3 JSON omits zero counts, so ``None`` usually means 0."""

    prompt_token_count: int | None = None
    cached_content_token_count: int | None = None
    response_token_count: int | None = attrs.field(
        default=None, metadata={ALIASES: ("candidatesTokenCount", "candidates_token_count")}
    )
    tool_use_prompt_token_count: int | None = None
    thoughts_token_count: int | None = None
    total_token_count: int | None = None
    prompt_tokens_details: tuple[ModalityTokenCount, ...] = attrs.field(
        default=(), converter=_to_tuple
    )
    cache_tokens_details: tuple[ModalityTokenCount, ...] = attrs.field(
        default=(), converter=_to_tuple
    )
    response_tokens_details: tuple[ModalityTokenCount, ...] = attrs.field(
        default=(),
        converter=_to_tuple,
        metadata={ALIASES: ("candidatesTokensDetails", "candidates_tokens_details")},
    )
    tool_use_prompt_tokens_details: tuple[ModalityTokenCount, ...] = attrs.field(
        default=(), converter=_to_tuple
    )
    traffic_type: TrafficType | None = None
    service_tier: ServiceTier | None = None


@validated
@attrs.frozen
class SetupComplete(_WireModel):
    """The server accepted ``setup`` (``setupComplete``). Vertex adds ``session_id``;
    ``voice_consent_signature`` comes when the setup's replicated voice carried consent
    audio (pass it instead of the audio next time)."""

    session_id: str | None = None
    voice_consent_signature: VoiceConsentSignature | None = None
    usage_metadata: UsageMetadata | None = None


@validated
@attrs.frozen
class WordInfo(_WireModel):
    """One recognised word of a :class:`Transcription`, with its offsets from the start of
    the audio."""

    word: str | None = None
    start_offset: datetime.timedelta | None = None
    end_offset: datetime.timedelta | None = None


@validated
@attrs.frozen(slots=False)  # built per streamed chunk (module docstring)
class Transcription(_WireModel):
    """A piece of transcript of input or output audio.

    ``speaker_label`` (e.g. ``"spk_1"``) comes with diarization, ``words`` with word
    timestamps (see :class:`AudioTranscriptionConfig`); ``start_offset`` and ``end_offset``
    place the piece in the audio (from its start).
    """

    text: str | None = None
    finished: bool | None = None
    language_code: str | None = None
    speaker_label: str | None = None
    words: tuple[WordInfo, ...] = attrs.field(default=(), converter=_to_tuple)
    start_offset: datetime.timedelta | None = None
    end_offset: datetime.timedelta | None = None


@validated
@attrs.frozen
class UrlMetadata(_WireModel):
    """The retrieval status of one URL of the URL context tool."""

    retrieved_url: str | None = None
    url_retrieval_status: str | None = None


@validated
@attrs.frozen
class UrlContextMetadata(_WireModel):
    """Metadata of the URL context tool."""

    url_metadata: tuple[UrlMetadata, ...] = attrs.field(default=(), converter=_to_tuple)


@validated
@attrs.frozen(slots=False)  # built per streamed chunk (module docstring)
class ServerContent(_WireModel):
    """Model output and turn state (``serverContent``).

    The boolean flags default to ``False`` when absent. :attr:`text` and :attr:`audio` join
    the text and audio parts of ``model_turn``.
    """

    model_turn: Content | None = None
    turn_complete: bool = False
    generation_complete: bool = False
    interrupted: bool = False
    input_transcription: Transcription | None = None
    output_transcription: Transcription | None = None
    grounding_metadata: dict[str, Any] | None = None
    url_context_metadata: UrlContextMetadata | None = None
    turn_complete_reason: TurnCompleteReason | None = None
    waiting_for_input: bool = False
    interim_input_transcription: Transcription | None = None
    interaction_status: InteractionStatus | None = None
    usage_metadata: UsageMetadata | None = None

    @property
    def text(self) -> str:
        """The text parts of ``model_turn`` joined, *excluding* thought parts ("" if none).

        Thoughts are available from :attr:`thought_text`.
        """
        turn = self.model_turn
        if turn is None:
            return ""
        return "".join(p.text for p in turn.parts if p.text is not None and not p.thought)

    @property
    def thought_text(self) -> str:
        """The text of the thought parts (``thought: true``) of ``model_turn`` joined."""
        turn = self.model_turn
        if turn is None:
            return ""
        return "".join(p.text for p in turn.parts if p.text is not None and p.thought)

    @property
    def audio(self) -> bytes:
        """The inline audio (``audio/*`` mime type, PCM) of ``model_turn`` joined (b"" if none)."""
        turn = self.model_turn
        if turn is None:
            return b""
        return b"".join(
            p.inline_data.data
            for p in turn.parts
            if p.inline_data is not None and p.inline_data.mime_type.startswith("audio/")
        )


@validated
@attrs.frozen
class ToolCall(_WireModel):
    """The model asks the client to run functions (``toolCall``)."""

    function_calls: tuple[FunctionCall, ...] = attrs.field(default=(), converter=_to_tuple)
    usage_metadata: UsageMetadata | None = None

    def respond(
        self,
        results: Mapping[str, Any] | Callable[[FunctionCall], Any],
        *,
        scheduling: Scheduling | str | None = None,
    ) -> ToolResponse:
        """Build the :class:`ToolResponse` answering every call; see :func:`tool_response`.
        For an ``async def`` function use :meth:`arespond`."""
        return tool_response(self, results, scheduling=scheduling)

    async def arespond(
        self,
        results: Mapping[str, Any] | Callable[[FunctionCall], Awaitable[Any] | Any],
        *,
        scheduling: Scheduling | str | None = None,
    ) -> ToolResponse:
        """:meth:`respond` for functions that may be ``async def``: each call's result is
        awaited when it is awaitable (the calls run one after the other, in order). Start
        tasks of your own inside the function to run calls at once."""
        if isinstance(results, Mapping) or not callable(results):
            return tool_response(self, results, scheduling=scheduling)
        values: dict[str, Any] = {}
        for fc in self.function_calls:
            if not fc.id:
                break  # tool_response names the problem
            value = results(fc)
            if inspect.isawaitable(value):
                value = await value
            values[fc.id] = value
        return tool_response(self, values, scheduling=scheduling)


@validated
@attrs.frozen
class ToolCallCancellation(_WireModel):
    """The server cancels earlier tool calls (``toolCallCancellation``)."""

    ids: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)
    usage_metadata: UsageMetadata | None = None


@validated
@attrs.frozen
class GoAway(_WireModel):
    """The server will close the connection soon (``goAway``); resume on a new one.

    A ``goAway`` without ``timeLeft`` decodes as ``time_left=timedelta(0)``.
    """

    time_left: datetime.timedelta = datetime.timedelta(0)
    usage_metadata: UsageMetadata | None = None


@validated
@attrs.frozen
class SessionResumptionUpdate(_WireModel):
    """A new session resumption handle (``sessionResumptionUpdate``).

    ``new_handle`` is empty / None and ``resumable`` False where the session cannot be
    resumed. ``last_consumed_client_message_index`` comes with transparent resumption.
    """

    new_handle: str | None = None
    resumable: bool = False
    last_consumed_client_message_index: int | None = None
    usage_metadata: UsageMetadata | None = None


@validated
@attrs.frozen
class VoiceActivityDetectionSignal(_WireModel):
    """A voice activity detection signal (allowlisted feature)."""

    vad_signal_type: VadSignalType | None = None
    usage_metadata: UsageMetadata | None = None


@validated
@attrs.frozen
class VoiceActivity(_WireModel):
    """Voice activity start / end reported by the server (newer SDKs only)."""

    voice_activity_type: VoiceActivityType | None = None
    audio_offset: datetime.timedelta | None = None
    usage_metadata: UsageMetadata | None = None


@validated
@attrs.frozen
class UsageMessage(_WireModel):
    """A frame that carries only ``usageMetadata``."""

    usage_metadata: UsageMetadata


@validated
@attrs.frozen
class UnknownMessage(_WireModel):
    """A frame with no top-level key this library knows (forward compatibility).

    ``raw`` is the whole decoded JSON object.
    """

    raw: dict[str, Any]
    usage_metadata: UsageMetadata | None = None


#: Any message the server sends.
ServerMessage: TypeAlias = (
    SetupComplete
    | ServerContent
    | ToolCall
    | ToolCallCancellation
    | GoAway
    | SessionResumptionUpdate
    | VoiceActivityDetectionSignal
    | VoiceActivity
    | UsageMessage
    | UnknownMessage
)


# --- user-facing configuration -------------------------------------------------------------

_PREFIXES = ("models/", "tunedModels/", "projects/", "publishers/")


def normalize_model_name(name: str) -> str:
    """Return the wire form of a model name, as both official SDKs do.

    A bare id gets ``models/``; names starting with ``models/``, ``tunedModels/``,
    ``projects/`` (Vertex) or ``publishers/`` are kept. Raises :class:`ConfigurationError`
    for an empty name, whitespace, or a doubled ``models/models/`` prefix.
    """
    if not isinstance(name, str):
        raise ConfigurationError(f"model name must be a str, got {type(name).__name__}")
    if not name or not name.strip():
        raise ConfigurationError("model name must not be empty")
    if any(c.isspace() for c in name):
        raise ConfigurationError(f"model name must not contain whitespace: {name!r}")
    if name.startswith("models/models/"):
        raise ConfigurationError(
            f"model name {name!r} has a doubled 'models/' prefix; pass {name[7:]!r}"
        )
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            if len(name) == len(prefix):
                raise ConfigurationError(f"model name {name!r} has no model id")
            return name
    if name.startswith("/") or name.endswith("/"):
        raise ConfigurationError(f"invalid model name {name!r}")
    return "models/" + name


def _structure_config(value: Any, cls: type[_T], what: str) -> _T:
    """Turn a dict (snake_case or camelCase keys) into ``cls`` via the wire converter."""
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return structure_config(value, cls, what=what)
    raise ConfigurationError(
        f"{what}: expected {cls.__name__} or a dict, got {type(value).__name__}: {value!r:.80}"
    )


def _optional_config(value: Any, cls: type[_T], what: str) -> _T | None:
    if value is None:
        return None
    return _structure_config(value, cls, what)


def _float_field(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{what}: expected a number, got {value!r:.80}")
    return float(value)


def _int_field(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{what}: expected an integer, got {value!r:.80}")
    return int(value)


def _bool_field(value: Any, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ConfigurationError(f"{what}: expected true or false, got {value!r:.80}")


def _enum_field(value: Any, cls: type[_E], what: str) -> _E | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{what}: expected a {cls.__name__} or a string, got {value!r:.80}"
        )
    # the same check as for a dict's value: a known name in any case, or an error naming the
    # nearest one
    return structure_config(value, cls, what=what)


def _modalities(value: Any) -> tuple[Modality, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"response_modalities: expected a list of modalities, got {value!r:.80}"
        )
    out = []
    for item in value:
        if not isinstance(item, str):
            raise ConfigurationError(
                f"response_modalities: expected modality names such as 'AUDIO', got {item!r:.80}"
            )
        modality = Modality(item.upper())
        if not modality.is_known:
            # (a value the service may add later goes through LiveConfig's escape hatch; a
            # typo here would only come back as the server's 1007, without the field's name)
            names = [m.value for m in Modality if m is not Modality.MODALITY_UNSPECIFIED]
            close = difflib.get_close_matches(item.upper(), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"response_modalities: unknown modality {item!r:.40} (known: "
                f"{', '.join(names)}){hint}"
            )
        out.append(modality)
    return tuple(out)


def _system_instruction(value: Any) -> Content | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Content(parts=(Part(text=value),), role="user")
    return _structure_config(value, Content, "system_instruction")


def _tools(value: Any) -> tuple[Tool, ...]:
    if value is None:
        return ()
    if isinstance(value, Tool | Mapping):
        value = (value,)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigurationError(f"tools: expected a list of Tool or dicts, got {value!r:.80}")
    return tuple(_structure_config(t, Tool, "tools") for t in value)


def _safety_settings(value: Any) -> tuple[SafetySetting, ...]:
    if value is None:
        return ()
    if isinstance(value, SafetySetting | Mapping):
        value = (value,)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"safety_settings: expected a list of SafetySetting or dicts, got {value!r:.80}"
        )
    return tuple(
        _structure_config(s, SafetySetting, f"safety_settings[{i}]") for i, s in enumerate(value)
    )


def _labels(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"labels: expected a dict of str to str, got {value!r:.80}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ConfigurationError(
                f"labels: keys and values must be str, got {key!r:.40}: {item!r:.40}"
            )
    return dict(value)


# Named converters (the mypy attrs plugin accepts only named functions).


def _c_temperature(value: Any) -> float | None:
    return _float_field(value, "temperature")


def _c_top_p(value: Any) -> float | None:
    return _float_field(value, "top_p")


def _c_top_k(value: Any) -> int | None:
    return _int_field(value, "top_k")


def _c_max_output_tokens(value: Any) -> int | None:
    return _int_field(value, "max_output_tokens")


def _c_candidate_count(value: Any) -> int | None:
    return _int_field(value, "candidate_count")


def _c_presence_penalty(value: Any) -> float | None:
    return _float_field(value, "presence_penalty")


def _c_frequency_penalty(value: Any) -> float | None:
    return _float_field(value, "frequency_penalty")


def _c_seed(value: Any) -> int | None:
    return _int_field(value, "seed")


def _c_media_resolution(value: Any) -> MediaResolution | None:
    return _enum_field(value, MediaResolution, "media_resolution")


def _c_speech_config(value: Any) -> SpeechConfig | None:
    return _optional_config(value, SpeechConfig, "speech_config")


def _c_thinking_config(value: Any) -> ThinkingConfig | None:
    return _optional_config(value, ThinkingConfig, "thinking_config")


def _c_enable_affective_dialog(value: Any) -> bool | None:
    return _bool_field(value, "enable_affective_dialog")


def _c_realtime_input_config(value: Any) -> RealtimeInputConfig | None:
    return _optional_config(value, RealtimeInputConfig, "realtime_input_config")


def _c_session_resumption(value: Any) -> SessionResumptionConfig | None:
    return _optional_config(value, SessionResumptionConfig, "session_resumption")


def _c_context_window_compression(value: Any) -> ContextWindowCompressionConfig | None:
    return _optional_config(value, ContextWindowCompressionConfig, "context_window_compression")


def _c_input_audio_transcription(value: Any) -> AudioTranscriptionConfig | None:
    return _optional_config(value, AudioTranscriptionConfig, "input_audio_transcription")


def _c_output_audio_transcription(value: Any) -> AudioTranscriptionConfig | None:
    return _optional_config(value, AudioTranscriptionConfig, "output_audio_transcription")


def _c_proactivity(value: Any) -> ProactivityConfig | None:
    return _optional_config(value, ProactivityConfig, "proactivity")


def _c_history_config(value: Any) -> HistoryConfig | None:
    return _optional_config(value, HistoryConfig, "history_config")


def _c_translation_config(value: Any) -> TranslationConfig | None:
    return _optional_config(value, TranslationConfig, "translation_config")


def _c_audio_transcription_config(value: Any) -> AudioTranscriptionConfig | None:
    return _optional_config(value, AudioTranscriptionConfig, "audio_transcription_config")


def _c_explicit_vad_signal(value: Any) -> bool | None:
    return _bool_field(value, "explicit_vad_signal")


def _c_avatar_config(value: Any) -> AvatarConfig | None:
    return _optional_config(value, AvatarConfig, "avatar_config")


@validated
@attrs.frozen(kw_only=True)
class LiveConfig(_WireModel):
    """Session configuration: every ``setup`` field except ``model``.

    The ``generationConfig`` fields are flattened (``response_modalities``, ``temperature``,
    ... ``enable_affective_dialog``, ``translation_config``, ``audio_transcription_config``),
    as in the official SDKs. Nested fields accept the typed object or a plain dict with
    snake_case or camelCase keys::

        LiveConfig(
            response_modalities=["AUDIO"],
            input_audio_transcription={"language_codes": ["de-DE"], "diarization": True},
            speech_config={"voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}},
            translation_config={"target_language_code": "en"},
            safety_settings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            labels={"safety_identifier": "user_session_123"},
        )

    ``system_instruction`` may be a string (sent as a user ``Content`` with one text part).
    ``explicit_vad_signal`` is Vertex AI only (google-genai refuses it for the Gemini API);
    ``labels`` are Cloud labels (lower-case keys and values of at most 63 characters).

    ``extra`` sends ``setup`` fields this release does not model yet, in their wire form
    (camelCase names, JSON values), merged into the ``setup`` object: an object merges into
    the typed field's object of the same name, so nested fields go where the service expects
    them (``newOption`` and ``newSetting`` stand for fields the service adds later)::

        LiveConfig(
            response_modalities=["AUDIO"],
            input_audio_transcription={},
            extra={
                "inputAudioTranscription": {"newOption": True},
                "generationConfig": {"newSetting": {"level": 2}},
            },
        )

    Bad values raise :class:`~gemini_ws.ConfigurationError`. Use ``attrs.evolve(config, ...)``
    or :meth:`evolve` to derive a changed copy, and :meth:`to_setup` to build the message.
    """

    response_modalities: tuple[Modality, ...] = attrs.field(default=(), converter=_modalities)
    temperature: float | None = attrs.field(default=None, converter=_c_temperature)
    top_p: float | None = attrs.field(default=None, converter=_c_top_p)
    top_k: int | None = attrs.field(default=None, converter=_c_top_k)
    max_output_tokens: int | None = attrs.field(default=None, converter=_c_max_output_tokens)
    candidate_count: int | None = attrs.field(default=None, converter=_c_candidate_count)
    presence_penalty: float | None = attrs.field(default=None, converter=_c_presence_penalty)
    frequency_penalty: float | None = attrs.field(default=None, converter=_c_frequency_penalty)
    seed: int | None = attrs.field(default=None, converter=_c_seed)
    media_resolution: MediaResolution | None = attrs.field(
        default=None, converter=_c_media_resolution
    )
    speech_config: SpeechConfig | None = attrs.field(default=None, converter=_c_speech_config)
    thinking_config: ThinkingConfig | None = attrs.field(default=None, converter=_c_thinking_config)
    enable_affective_dialog: bool | None = attrs.field(
        default=None, converter=_c_enable_affective_dialog
    )
    translation_config: TranslationConfig | None = attrs.field(
        default=None, converter=_c_translation_config
    )
    audio_transcription_config: AudioTranscriptionConfig | None = attrs.field(
        default=None, converter=_c_audio_transcription_config
    )
    system_instruction: Content | None = attrs.field(default=None, converter=_system_instruction)
    tools: tuple[Tool, ...] = attrs.field(default=(), converter=_tools)
    realtime_input_config: RealtimeInputConfig | None = attrs.field(
        default=None, converter=_c_realtime_input_config
    )
    session_resumption: SessionResumptionConfig | None = attrs.field(
        default=None, converter=_c_session_resumption
    )
    context_window_compression: ContextWindowCompressionConfig | None = attrs.field(
        default=None, converter=_c_context_window_compression
    )
    input_audio_transcription: AudioTranscriptionConfig | None = attrs.field(
        default=None, converter=_c_input_audio_transcription
    )
    output_audio_transcription: AudioTranscriptionConfig | None = attrs.field(
        default=None, converter=_c_output_audio_transcription
    )
    proactivity: ProactivityConfig | None = attrs.field(default=None, converter=_c_proactivity)
    history_config: HistoryConfig | None = attrs.field(default=None, converter=_c_history_config)
    explicit_vad_signal: bool | None = attrs.field(default=None, converter=_c_explicit_vad_signal)
    avatar_config: AvatarConfig | None = attrs.field(default=None, converter=_c_avatar_config)
    safety_settings: tuple[SafetySetting, ...] = attrs.field(default=(), converter=_safety_settings)
    labels: dict[str, str] | None = attrs.field(default=None, converter=_labels)

    def evolve(self, **changes: Any) -> LiveConfig:
        """Return a copy with ``changes`` applied (values are converted as in the constructor)."""
        try:
            return attrs.evolve(self, **changes)
        except TypeError as exc:
            raise ConfigurationError(f"LiveConfig.evolve: {exc}") from None

    def generation_config(self) -> GenerationConfig | None:
        """The ``generationConfig`` these flattened fields make, or None if none is set."""
        gen = GenerationConfig(
            response_modalities=self.response_modalities,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_output_tokens=self.max_output_tokens,
            candidate_count=self.candidate_count,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            seed=self.seed,
            media_resolution=self.media_resolution,
            speech_config=self.speech_config,
            thinking_config=self.thinking_config,
            enable_affective_dialog=self.enable_affective_dialog,
            translation_config=self.translation_config,
            audio_transcription_config=self.audio_transcription_config,
        )
        return None if gen == GenerationConfig() else gen

    def to_setup(self, model: str) -> Setup:
        """Build the ``setup`` message for ``model`` (normalised with
        :func:`normalize_model_name`)."""
        return Setup(
            model=normalize_model_name(model),
            generation_config=self.generation_config(),
            system_instruction=self.system_instruction,
            tools=self.tools,
            realtime_input_config=self.realtime_input_config,
            session_resumption=self.session_resumption,
            context_window_compression=self.context_window_compression,
            input_audio_transcription=self.input_audio_transcription,
            output_audio_transcription=self.output_audio_transcription,
            proactivity=self.proactivity,
            history_config=self.history_config,
            explicit_vad_signal=self.explicit_vad_signal,
            avatar_config=self.avatar_config,
            safety_settings=self.safety_settings,
            labels=self.labels,
            extra=self.extra,
        )


_LIVE_CONFIG_FIELDS = frozenset(a.name for a in attrs.fields(LiveConfig))
_LIVE_CONFIG_KNOWN = [a.name for a in attrs.fields(LiveConfig) if a.name != "extra"] + ["extra"]


def _live_config_from(value: Any, _: Any = None) -> LiveConfig:
    """A user's dict for :class:`LiveConfig` (snake_case or camelCase keys): its own
    converters check each value, so the dict's values go to the constructor as they are."""
    if isinstance(value, LiveConfig):
        return value
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a LiveConfig or a dict, got {type(value).__name__}")
    kw = {}
    for key, item in value.items():
        name = snake(key) if isinstance(key, str) else key
        if name not in _LIVE_CONFIG_FIELDS:
            raise Invalid(unknown_field(key, "LiveConfig", _LIVE_CONFIG_KNOWN))
        kw[name] = item
    try:
        return LiveConfig(**kw)
    except ConfigurationError as exc:
        raise Invalid(exc.message) from None


CONFIG.converter.register_structure_hook_func(lambda tp: tp is LiveConfig, _live_config_from)


# --- helpers -------------------------------------------------------------------------------


def text_turn(text: str, *, role: str = "user", turn_complete: bool = True) -> ClientContent:
    """A ``clientContent`` message with one text turn (by default completing the turn)."""
    if not isinstance(text, str):
        raise ConfigurationError(f"text must be a str, got {type(text).__name__}")
    if not isinstance(role, str) or not role:
        raise ConfigurationError(f"role must be a non-empty str, got {role!r:.80}")
    return ClientContent(
        turns=(Content(parts=(Part(text=text),), role=role),),
        turn_complete=bool(turn_complete),
    )


def _as_bytes(data: Any, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise ConfigurationError(f"{what} must be bytes, got {type(data).__name__}")


def audio_chunk(pcm: bytes, sample_rate: int = 16000) -> RealtimeInput:
    """A ``realtimeInput.audio`` message carrying 16-bit little-endian mono PCM.

    The mime type is ``audio/pcm;rate=<sample_rate>``. Raises :class:`ConfigurationError` for
    data that is not bytes, has an odd length, or a sample rate that is not a positive int.
    """
    data = checked_audio(pcm, sample_rate)
    return RealtimeInput(audio=Blob(mime_type=f"audio/pcm;rate={sample_rate}", data=data))


def checked_audio(pcm: Any, sample_rate: Any) -> bytes:
    """The checks of :func:`audio_chunk`: the PCM as bytes, or ConfigurationError."""
    data = _as_bytes(pcm, "pcm")
    if len(data) % 2:
        raise ConfigurationError(f"16-bit PCM must have an even number of bytes, got {len(data)}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ConfigurationError(f"sample_rate must be a positive int, got {sample_rate!r:.40}")
    return data


_IMAGE_TYPES = ("image/jpeg", "image/png")


def video_frame(data: bytes, mime_type: str = "image/jpeg") -> RealtimeInput:
    """A ``realtimeInput.video`` message carrying one JPEG or PNG frame (at most ~1 fps)."""
    raw = _as_bytes(data, "data")
    if mime_type not in _IMAGE_TYPES:
        raise ConfigurationError(
            f"video frames must be image/jpeg or image/png, got {mime_type!r:.80}"
        )
    return RealtimeInput(video=Blob(mime_type=mime_type, data=raw))


def tool_response(
    call: ToolCall,
    results: Mapping[str, Any] | Callable[[FunctionCall], Any],
    *,
    scheduling: Scheduling | str | None = None,
) -> ToolResponse:
    """Answer every function call of ``call``.

    ``results`` maps a call id (or, failing that, a function name) to the result, or is a
    callable taking the :class:`FunctionCall` and returning its result. A result that is not
    a dict is wrapped as ``{"result": value}``. Each :class:`FunctionResponse` carries the
    call's id and name. Raises :class:`ConfigurationError` when a call has no id (the Gemini
    API requires one), when a call has no result, or when ``results`` has keys that match no
    call.
    """
    if not isinstance(call, ToolCall):
        raise ConfigurationError(f"expected a ToolCall, got {type(call).__name__}")
    if not (isinstance(results, Mapping) or callable(results)):
        raise ConfigurationError(
            f"results must be a mapping (call id or function name -> result) or a callable, "
            f"got {type(results).__name__}"
        )
    sched = None if scheduling is None else Scheduling(scheduling)
    responses = []
    used: set[str] = set()
    for fc in call.function_calls:
        if not fc.id:
            raise ConfigurationError(
                f"function call {fc.name!r} has no id; a FunctionResponse must carry the id "
                "of the call it answers"
            )
        if callable(results) and not isinstance(results, Mapping):
            value = results(fc)
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()  # (never awaited: no RuntimeWarning about it)
                raise ConfigurationError(
                    f"the function for {fc.name!r} returned an awaitable; respond() takes a "
                    "plain function: use `await call.arespond(fn)` for an async one"
                )
        elif fc.id in results:
            value = results[fc.id]
            used.add(fc.id)
        elif fc.name in results:
            value = results[fc.name]
            used.add(fc.name)
        else:
            raise ConfigurationError(f"no result for function call {fc.name!r} (id {fc.id!r})")
        response = dict(value) if isinstance(value, Mapping) else {"result": value}
        responses.append(
            FunctionResponse(id=fc.id, name=fc.name, response=response, scheduling=sched)
        )
    if isinstance(results, Mapping):
        extra = set(results) - used
        if extra:
            raise ConfigurationError(
                f"results for unknown call ids or names: {', '.join(sorted(map(str, extra)))}"
            )
    return ToolResponse(function_responses=tuple(responses))
