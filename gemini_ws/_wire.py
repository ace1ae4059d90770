"""The wire codec: the one converter between the typed models of :mod:`._types` and JSON.

Rules (PROTOCOL.md sections 2 to 4):

- Field names are snake_case in Python and lowerCamelCase on the wire. When reading, both
  spellings are accepted (the server sends camelCase; the Python SDK and cookbook send
  snake_case), and unknown fields are ignored (forward compatibility). JSON ``null`` means
  "not set".
- When writing, unset fields (``None``, an empty tuple, or a field equal to a ``False``
  default) are omitted, but meaningful empty objects are kept: ``{"activityStart": {}}``,
  ``{"inputAudioTranscription": {}}``, ``{"googleSearch": {}}``, ``{"sessionResumption": {}}``.
- ``bytes`` travel as standard base64 with padding; reading accepts the standard and the
  URL-safe alphabets, with or without padding.
- Durations (``goAway.timeLeft``, transcription offsets) are proto-JSON strings such as
  ``"9.5s"``; int64 fields may arrive as JSON strings (``"123"``) or numbers; enums are their
  string values and unknown enum values are kept (see ``_types._TolerantEnum``); a
  ``NullValue`` field (``partialArgs[].nullValue``) is ``null`` (see ``_NULL_MEANS``).
- Free-form JSON objects (function ``args``, function ``response``, schema ``parameters``,
  ``groundingMetadata``, ``retrieval``) pass through with their keys untouched, as do the
  keys of string maps (``labels``, MCP ``headers``), whose values must be strings.

Implementation: :mod:`._codec` holds the cattrs converters, whose hooks are generated per attrs
class by :func:`cattrs.gen.make_dict_structure_fn` / ``make_dict_unstructure_fn`` (renames,
omitted defaults, detailed validation turned into paths); this module adds the top-level keys,
JSON, errors of our hierarchy and one hand-written fast path. The fast path
(:func:`_fast_server_content`) builds the messages that come at streaming rate (text and audio
chunks, transcriptions, the turn flags) in a fraction of the hooks' time; it exists because
``benchmarks/bench_decode.py`` shows the hooks at more than 1.5x a bare ``orjson.loads`` for
those messages, and a property test holds its output equal to the hooks'. :data:`converter`
is a :class:`cattrs.Converter` over the same hooks that raises our errors, for cattrs-style
use. JSON is parsed and written with orjson when it is installed (it is about twice as fast
as :mod:`json` here), else with :mod:`json`.

Errors: a frame that is not a valid server message raises
:class:`~gemini_ws._errors.ProtocolError` with the path of the bad field and a short, redacted
excerpt of the frame; a bad user value raises :class:`~gemini_ws._errors.ConfigurationError`.
Nothing else escapes :func:`decode`, :func:`encode` or :func:`structure_config`.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any, Final

import attrs
import cattrs

from . import _types as t
from ._codec import (
    USING_PYBASE64,
    WIRE,
    Invalid,
    b64decode,
    b64decode_strict,
    b64encode,
    describe,
    duration_to,
    snake,
    structure_config,
)
from ._errors import ConfigurationError, ProtocolError

try:  # pragma: no cover - exercised by whichever is installed
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

__all__ = [
    "USING_ORJSON",
    "USING_PYBASE64",
    "b64decode",
    "converter",
    "decode",
    "decode_all",
    "decode_client",
    "encode",
    "encode_server",
    "structure_config",
    "to_wire_dict",
]

#: Whether orjson is used for JSON (else the standard library).
USING_ORJSON: Final = _orjson is not None

_new_object = object.__new__


# --- JSON ----------------------------------------------------------------------------------

if _orjson is not None:
    _loads: Callable[[Any], Any] = _orjson.loads

    def _dumps(obj: Any) -> str:
        return _orjson.dumps(obj).decode("utf-8")

else:  # pragma: no cover

    def _loads(frame: Any) -> Any:
        if isinstance(frame, bytes | bytearray | memoryview):
            frame = bytes(frame).decode("utf-8")
        elif not isinstance(frame, str):
            raise TypeError(f"a frame must be str or bytes, not {type(frame).__name__}")
        return json.loads(frame)

    _json_encoder = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode

    def _dumps(obj: Any) -> str:
        return _json_encoder(obj)


# --- the models' codec (generated cattrs hooks, see ._codec) --------------------------------

_structure = WIRE.converter.get_structure_hook
_unstructure = WIRE.converter.get_unstructure_hook


# --- top-level keys ------------------------------------------------------------------------

_CLIENT_KEYS: dict[type, str] = {
    t.Setup: "setup",
    t.ClientContent: "clientContent",
    t.RealtimeInput: "realtimeInput",
    t.ToolResponse: "toolResponse",
    t.ContextUpdate: "contextUpdate",
}

_SERVER_KEY_OF: dict[type, str] = {
    t.SetupComplete: "setupComplete",
    t.ServerContent: "serverContent",
    t.ToolCall: "toolCall",
    t.ToolCallCancellation: "toolCallCancellation",
    t.GoAway: "goAway",
    t.SessionResumptionUpdate: "sessionResumptionUpdate",
    t.VoiceActivityDetectionSignal: "voiceActivityDetectionSignal",
    t.VoiceActivity: "voiceActivity",
}


def _with_snake(keys: dict[type, str]) -> dict[str, type]:
    out: dict[str, type] = {}
    for cls, key in keys.items():
        out[key] = cls
        out[snake(key)] = cls
    return out


_SERVER_CLASSES = _with_snake(_SERVER_KEY_OF)
_CLIENT_CLASSES = _with_snake(_CLIENT_KEYS)

def _message_decoder(cls: type) -> Callable[[Any, Any], Any]:
    """``fn(value, usage)``: the message *cls* from its JSON object, with *usage* (the
    ``usageMetadata`` object beside it, as sent) read into its ``usage_metadata``."""
    structure = _structure(cls)

    def decode_message(value: Any, usage: Any) -> Any:
        if usage is not None:
            if type(value) is not dict:
                raise Invalid(f"expected an object, got {describe(value)}")
            value = {**value, "usageMetadata": usage}
        return structure(value, cls)

    return decode_message


#: message class -> fn(value, usage) building it, made on first use (generating every
#: model's hooks at import would add tens of milliseconds to ``import gemini_ws``).
_DECODERS: dict[type, Callable[[Any, Any], Any]] = {}


def _decoder(key: str, classes: dict[str, type]) -> Callable[[Any, Any], Any] | None:
    """The decoder of the message *key* names among *classes* (None: not one of them)."""
    cls = classes.get(key)
    if cls is None:
        return None
    fn = _DECODERS.get(cls)
    if fn is None:
        fn = _DECODERS[cls] = _message_decoder(cls)
    return fn


def _structure_usage(raw: Any, _: Any = None) -> t.UsageMetadata:
    fast = _fast_usage(raw)
    if fast is not None:
        return fast
    return _structure(t.UsageMetadata)(raw, t.UsageMetadata)  # type: ignore[no-any-return]


#: ``usageMetadata`` counts (JSON integers) and token details (lists of modality counts), by
#: every spelling the hooks read (Vertex's ``candidates*`` included; of two spellings of one
#: field, the later one counts, as in the hooks).
_USAGE_COUNTS = {
    "promptTokenCount": "prompt_token_count",
    "cachedContentTokenCount": "cached_content_token_count",
    "responseTokenCount": "response_token_count",
    "candidatesTokenCount": "response_token_count",
    "toolUsePromptTokenCount": "tool_use_prompt_token_count",
    "thoughtsTokenCount": "thoughts_token_count",
    "totalTokenCount": "total_token_count",
}
_USAGE_DETAILS = {
    "promptTokensDetails": "prompt_tokens_details",
    "cacheTokensDetails": "cache_tokens_details",
    "responseTokensDetails": "response_tokens_details",
    "candidatesTokensDetails": "response_tokens_details",
    "toolUsePromptTokensDetails": "tool_use_prompt_tokens_details",
}
_MODALITIES: dict[Any, t.Modality] = {m.value: m for m in t.Modality}


def _unchecked_init(cls: type) -> Callable[..., Any]:
    """*cls*'s attrs ``__init__`` without the ``validated`` wrapper (whose only work is to
    explain a bad argument: the caller passes checked values)."""
    init = vars(cls)["__init__"]
    return getattr(init, "__wrapped__", init)  # type: ignore[no-any-return]


_usage_init = _unchecked_init(t.UsageMetadata)
_count_init = _unchecked_init(t.ModalityTokenCount)


def _two_fields(value: Any, first: str, first_type: type, second: str,
                second_type: type) -> tuple[Any, Any] | None:
    """The values of *first* and *second* in the JSON object *value* (None where absent), when
    it has no other key and each is of its exact type; else None (for the hooks)."""
    if type(value) is not dict:
        return None
    a = value.get(first)
    b = value.get(second)
    if len(value) != (a is not None) + (b is not None):
        return None
    if (a is not None and type(a) is not first_type) or (
        b is not None and type(b) is not second_type
    ):
        return None
    return a, b


def _fast_count(item: Any) -> t.ModalityTokenCount | None:
    fields = _two_fields(item, "modality", str, "tokenCount", int)
    if fields is None:
        return None
    modality, count = fields
    if modality is not None:
        modality = _MODALITIES.get(modality)  # (a value this release does not know: hooks)
        if modality is None:
            return None
    made = object.__new__(t.ModalityTokenCount)
    _count_init(made, modality, count)
    return made


def _fast_usage(raw: Any) -> t.UsageMetadata | None:
    """A ``usageMetadata`` of counts and modality details, as every turn's end carries it,
    built without the generated hooks (the same object: the property tests hold them
    equal); None for anything else (the hooks read it, or report the error)."""
    if type(raw) is not dict:
        return None
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        name = _USAGE_COUNTS.get(key)
        if name is not None:
            if type(value) is not int:
                return None
            fields[name] = value
            continue
        name = _USAGE_DETAILS.get(key)
        if name is None or type(value) is not list:
            return None
        details = []
        for item in value:
            count = _fast_count(item)
            if count is None:
                return None
            details.append(count)
        fields[name] = tuple(details)
    made = object.__new__(t.UsageMetadata)
    _usage_init(made, **fields)
    return made


# --- public API ----------------------------------------------------------------------------


def _load_object(frame: bytes | str) -> dict[str, Any]:
    try:
        obj = _loads(frame)
    except (ValueError, TypeError, RecursionError) as exc:
        # orjson's JSONDecodeError is a ValueError; json raises RecursionError when too deep
        raise ProtocolError(f"frame is not valid UTF-8 JSON ({exc})", _safe_frame(frame)) from None
    if type(obj) is not dict:
        raise ProtocolError(
            f"frame is not a JSON object but a {_json_type(obj)}", _safe_frame(frame)
        )
    return obj


def _safe_frame(frame: Any) -> bytes | str:
    if isinstance(frame, bytes | bytearray | memoryview | str):
        return frame  # type: ignore[return-value]
    return repr(frame)


def _json_type(obj: Any) -> str:
    if isinstance(obj, list):
        return "JSON array"
    if isinstance(obj, str):
        return "JSON string"
    if obj is None:
        return "JSON null"
    if isinstance(obj, bool):
        return "JSON boolean"
    return "JSON number"


def _raw_usage(obj: dict[str, Any]) -> Any:
    """The ``usageMetadata`` object beside the message key, as sent (None if none)."""
    raw = obj.get("usageMetadata")
    if raw is None:
        raw = obj.get("usage_metadata")
    return raw


def _usage_message(raw: Any) -> t.UsageMessage:
    try:
        usage = _structure_usage(raw, None)
    except Invalid as exc:
        exc.path.append("usageMetadata")
        raise
    return t.UsageMessage(usage_metadata=usage)


def _invalid_frame(exc: Invalid, frame: Any) -> ProtocolError:
    return ProtocolError(
        f"invalid server message: {exc.where()}: {exc.message}", _safe_frame(frame)
    )


def _instance_maker(cls: type, *names: str) -> Callable[..., Any]:
    """``make(value, ...)``: *cls* with the fields *names* set to the values given (in that
    order) and the others at their defaults, built from checked values as cattrs's generated
    code would through ``__init__``, without it: straight into the instance dict (the ``extra``
    slot of the base holds "none"). With no *names*, ``make(fields)`` takes a dict of them.
    For the dict classes of the streaming path only (see _types)."""
    fields = attrs.fields(cls)
    assert "__slots__" not in cls.__dict__, f"{cls.__name__} is slotted"
    assert all(type(a.default) is not attrs.Factory for a in fields), cls
    assert set(names) <= {a.name for a in fields}, names
    defaults = {a.name: a.default for a in fields if a.name != "extra"}
    set_extra = getattr(cls, "extra").__set__  # noqa: B009 (the base's slot descriptor)
    no_extra = t.NO_EXTRA
    new = _new_object

    if len(names) == 1:
        (name,) = names

        def make_one(value: Any) -> Any:
            obj: Any = new(cls)
            dct = obj.__dict__
            dct.update(defaults)
            dct[name] = value
            set_extra(obj, no_extra)
            return obj

        return make_one
    if len(names) == 2:
        first, second = names

        def make_two(value: Any, other: Any) -> Any:
            obj: Any = new(cls)
            dct = obj.__dict__
            dct.update(defaults)
            dct[first] = value
            dct[second] = other
            set_extra(obj, no_extra)
            return obj

        return make_two
    assert not names, "one or two names"

    def make(values: dict[str, Any]) -> Any:
        obj: Any = new(cls)
        dct = obj.__dict__
        dct.update(defaults)
        dct.update(values)
        set_extra(obj, no_extra)
        return obj

    return make


_make_blob = _instance_maker(t.Blob, "mime_type", "data")
_make_text_part = _instance_maker(t.Part, "text")
_make_data_part = _instance_maker(t.Part, "inline_data")
_make_content = _instance_maker(t.Content, "parts", "role")
_make_transcription = _instance_maker(t.Transcription, "text", "finished")
_make_server_content = _instance_maker(t.ServerContent)

#: The ``serverContent`` keys the fast path reads: its flags (JSON booleans) ...
_FAST_FLAGS = {
    "turnComplete": "turn_complete",
    "generationComplete": "generation_complete",
    "interrupted": "interrupted",
    "waitingForInput": "waiting_for_input",
}
#: ... and its transcriptions (of text and ``finished`` only).
_FAST_TRANSCRIPTIONS = {
    "outputTranscription": "output_transcription",
    "inputTranscription": "input_transcription",
}


def _fast_turn(turn: Any) -> t.Content | None:
    """A ``modelTurn`` of plain text or inline-data parts (and an optional role), or None."""
    if type(turn) is not dict:
        return None
    parts = turn.get("parts")
    role = turn.get("role")
    if type(parts) is not list or len(turn) != (1 if role is None else 2):
        return None
    if role is not None and type(role) is not str:
        return None
    built = []
    for part in parts:
        if type(part) is not dict or len(part) != 1:
            return None
        text = part.get("text")
        if type(text) is str:
            built.append(_make_text_part(text))
            continue
        blob = part.get("inlineData")
        if type(blob) is not dict or len(blob) != 2:
            return None
        mime = blob.get("mimeType")
        data = blob.get("data")
        if type(mime) is not str or type(data) is not str:
            return None
        try:
            raw = b64decode_strict(data)
        except ValueError:
            return None  # (URL-safe or unpadded base64: the hooks take those)
        built.append(_make_data_part(_make_blob(mime, raw)))
    return _make_content(tuple(built), role)  # type: ignore[no-any-return]


def _fast_transcription(value: Any) -> t.Transcription | None:
    fields = _two_fields(value, "text", str, "finished", bool)
    if fields is None:
        return None
    return _make_transcription(*fields)  # type: ignore[no-any-return]


def _fast_server_content(value: Any, usage: Any = None) -> t.ServerContent | None:
    """A ``serverContent`` of the shapes that come at streaming rate: a ``modelTurn`` of plain
    text or inline-data parts, transcriptions of text, the turn flags; nearly every message of
    a reply. Built directly, the same objects the cattrs hooks build (a test holds them equal),
    in a fraction of their time (``benchmarks/bench_decode.py``); None for anything else, which
    the hooks handle (errors too). *usage*: the ``usageMetadata`` object beside it, as sent
    (structured by the hooks; None back if it is not valid, for the hooks' error)."""
    if type(value) is not dict or not value:
        return None
    fields: dict[str, Any] = {}
    for key, item in value.items():
        if key == "modelTurn":
            turn = _fast_turn(item)
            if turn is None:
                return None
            fields["model_turn"] = turn
            continue
        name = _FAST_FLAGS.get(key)
        if name is not None:
            if type(item) is not bool:
                return None
            fields[name] = item
            continue
        name = _FAST_TRANSCRIPTIONS.get(key)
        if name is None:
            return None
        transcription = _fast_transcription(item)
        if transcription is None:
            return None
        fields[name] = transcription
    if usage is not None:
        try:
            fields["usage_metadata"] = _structure_usage(usage)
        except Invalid:
            return None
    return _make_server_content(fields)  # type: ignore[no-any-return]


def decode(frame: bytes | str) -> t.ServerMessage:
    """Decode one server frame (text or binary, UTF-8 JSON) into a typed message.

    - ``usageMetadata`` beside a message key is attached to that message's
      ``usage_metadata``; alone it gives a :class:`~._types.UsageMessage`.
    - A frame with no known top-level key (including the empty object ``{}``, which carries
      nothing) gives an :class:`~._types.UnknownMessage` holding the whole object.
    - A frame with several message keys (not expected per the spec) gives the message of the
      first one in frame order; ``gemini_ws._wire.decode_all`` (private) gives them all.

    Raises :class:`~gemini_ws._errors.ProtocolError` (with a redacted excerpt of the frame)
    for anything that is not a valid server message.
    """
    obj = _load_object(frame)
    size = len(obj)
    if size == 1:
        fast = _fast_server_content(obj.get("serverContent"))
        if fast is not None:
            return fast
    elif size == 2 and "usageMetadata" in obj:
        # the end of a turn: its flags, and the usage beside them (read by the hooks)
        fast = _fast_server_content(obj.get("serverContent"), obj["usageMetadata"])
        if fast is not None:
            return fast
    return _decode_object(obj, frame)


def _decode_object(obj: dict[str, Any], frame: bytes | str) -> t.ServerMessage:
    """:func:`decode` of a parsed frame through the generated hooks alone (no fast path)."""
    try:
        usage = _raw_usage(obj) if len(obj) != 1 else None
        for key, value in obj.items():
            fn = _decoder(key, _SERVER_CLASSES)
            if fn is not None and value is not None:
                try:
                    return fn(value, usage)  # type: ignore[no-any-return]
                except Invalid as exc:
                    exc.path.append(key)
                    raise
        if usage is None:
            usage = _raw_usage(obj)
        if usage is not None:
            return _usage_message(usage)
        return t.UnknownMessage(raw=obj)
    except Invalid as exc:
        raise _invalid_frame(exc, frame) from None
    except RecursionError:
        raise ProtocolError("server message nested too deeply", _safe_frame(frame)) from None
    except Exception as exc:  # a safety net: never let a bare error out of the codec
        raise ProtocolError(
            f"cannot decode server message ({exc!r:.100})", _safe_frame(frame)
        ) from exc


def decode_all(frame: bytes | str) -> list[t.ServerMessage]:
    """Decode a frame into one message per known top-level key, in frame order.

    The spec says a frame carries exactly one message key (plus ``usageMetadata``); this is
    for the unexpected case of several, so that no data is lost. ``usageMetadata`` is
    attached to the *first* message only (so that summing usage never counts it twice).
    Unknown top-level keys beside known ones are ignored; a frame with no known key gives
    ``[UsageMessage]`` or ``[UnknownMessage]`` as in :func:`decode`.
    """
    obj = _load_object(frame)
    out: list[t.ServerMessage] = []
    try:
        usage = _raw_usage(obj)
        for key, value in obj.items():
            fn = _decoder(key, _SERVER_CLASSES)
            if fn is not None and value is not None:
                try:
                    out.append(fn(value, usage if not out else None))
                except Invalid as exc:
                    exc.path.append(key)
                    raise
        if not out:
            if usage is not None:
                out.append(_usage_message(usage))
            else:
                out.append(t.UnknownMessage(raw=obj))
        return out
    except Invalid as exc:
        raise _invalid_frame(exc, frame) from None
    except RecursionError:
        raise ProtocolError("server message nested too deeply", _safe_frame(frame)) from None
    except Exception as exc:  # a safety net: never let a bare error out of the codec
        raise ProtocolError(
            f"cannot decode server message ({exc!r:.100})", _safe_frame(frame)
        ) from exc


def decode_client(frame: bytes | str) -> t.ClientMessage:
    """Decode a client frame (for fake servers and tests): camelCase or snake_case keys at
    every level, standard or URL-safe base64. Raises ProtocolError when the frame is not
    exactly one known client message."""
    obj = _load_object(frame)
    keys = [k for k in obj if k in _CLIENT_CLASSES]
    if len(keys) != 1:
        raise ProtocolError(
            "a client message must have exactly one of setup, clientContent, realtimeInput, "
            f"toolResponse, contextUpdate; got keys {sorted(obj)!r:.200}",
            _safe_frame(frame),
        )
    key = keys[0]
    try:
        value = obj[key]
        if value is None:
            value = {}
        decode_message = _decoder(key, _CLIENT_CLASSES)
        assert decode_message is not None
        return decode_message(value, None)  # type: ignore[no-any-return]
    except Invalid as exc:
        exc.path.append(key)
        raise ProtocolError(
            f"invalid client message: {exc.where()}: {exc.message}", _safe_frame(frame)
        ) from None
    except RecursionError:
        raise ProtocolError("client message nested too deeply", _safe_frame(frame)) from None
    except Exception as exc:  # a safety net: never let a bare error out of the codec
        raise ProtocolError(
            f"cannot decode client message ({exc!r:.100})", _safe_frame(frame)
        ) from exc


def to_wire_dict(msg: t.ClientMessage | t.ServerMessage) -> dict[str, Any]:
    """The JSON-ready dict of a client or server message, with its top-level key."""
    cls = type(msg)
    try:
        if cls in _CLIENT_KEYS:
            key = _CLIENT_KEYS[cls]
            if cls is t.ToolResponse:
                _check_tool_response(msg)  # type: ignore[arg-type]
            return {key: _unstructure(cls)(msg)}
        if cls is t.UnknownMessage:
            return dict(msg.raw)  # type: ignore[union-attr]
        if isinstance(msg, t.UsageMessage):
            return {"usageMetadata": _unstructure(t.UsageMetadata)(msg.usage_metadata)}
        if cls in _SERVER_KEY_OF:
            inner = _unstructure(cls)(msg)
            out = {_SERVER_KEY_OF[cls]: inner}
            usage = inner.pop("usageMetadata", None)  # goes beside the message key
            if usage is not None:
                out["usageMetadata"] = usage
            return out
    except Invalid as exc:
        raise ConfigurationError(
            f"cannot encode {cls.__name__}: {exc.where(cls.__name__)}: {exc.message}"
        ) from None
    raise ConfigurationError(f"not a Live API message: {describe(msg)}")


def _check_tool_response(msg: t.ToolResponse) -> None:
    for i, fr in enumerate(msg.function_responses):
        if isinstance(fr, t.FunctionResponse) and not fr.id:
            raise ConfigurationError(
                f"ToolResponse.function_responses[{i}] ({fr.name!r}) has no id; the Gemini API "
                "requires the id of the function call it answers"
            )


def encode(msg: t.ClientMessage) -> str:
    """Encode a client message as compact camelCase JSON (a text frame).

    Raises :class:`~gemini_ws._errors.ConfigurationError` for a value that cannot be sent
    (wrong type, a tool response without id, non-JSON data inside a free-form dict).
    """
    if type(msg) not in _CLIENT_KEYS:
        raise ConfigurationError(f"not a client message: {describe(msg)}")
    return _dump(to_wire_dict(msg))


def encode_audio(pcm: bytes | bytearray | memoryview, sample_rate: int) -> str:
    """``encode(audio_chunk(pcm, sample_rate))`` for checked input, from a template: the same
    text (a test holds them equal), without the walk over the message (the hot path of a voice
    app, once every 20-40 ms per stream)."""
    return _AUDIO_TEMPLATE % (sample_rate, b64encode(pcm))


_AUDIO_TEMPLATE = '{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=%d","data":"%s"}}}'


def encode_server(msg: t.ServerMessage) -> str:
    """Encode a server message as the server would (camelCase JSON); for fake servers."""
    if type(msg) in _CLIENT_KEYS:
        raise ConfigurationError(f"not a server message: {describe(msg)}")
    return _dump(to_wire_dict(msg))


def _dump(obj: dict[str, Any]) -> str:
    try:
        return _dumps(obj)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise ConfigurationError(f"message is not JSON-serialisable: {exc}") from None


# --- the cattrs converter ------------------------------------------------------------------

#: A :class:`cattrs.Converter` with the wire rules registered: ``converter.structure(d, T)``
#: reads a wire dict (raising ProtocolError), ``converter.unstructure(obj)`` gives the wire
#: dict (camelCase, unset fields omitted, raising ConfigurationError).
converter = cattrs.Converter()


def _cattrs_structure_factory(cls: Any) -> Callable[[Any, Any], Any]:
    fn = _structure(cls)

    def hook(obj: Any, _: Any) -> Any:
        try:
            return fn(obj, cls)
        except Invalid as exc:
            raise ProtocolError(f"invalid {cls.__name__}: {exc.where()}: {exc.message}") from None

    return hook


def _cattrs_unstructure_factory(cls: Any) -> Callable[[Any], Any]:
    fn = _unstructure(cls)

    def hook(obj: Any) -> Any:
        try:
            return fn(obj)
        except Invalid as exc:
            raise ConfigurationError(
                f"cannot encode {cls.__name__}: {exc.where()}: {exc.message}"
            ) from None

    return hook


def _is_model(tp: Any) -> bool:
    return attrs.has(tp) or (isinstance(tp, type) and issubclass(tp, t._TolerantEnum))


converter.register_structure_hook_factory(_is_model, _cattrs_structure_factory)
converter.register_unstructure_hook_factory(_is_model, _cattrs_unstructure_factory)
converter.register_structure_hook(bytes, _cattrs_structure_factory(bytes))
converter.register_unstructure_hook(bytes, _cattrs_unstructure_factory(bytes))
converter.register_structure_hook(datetime.timedelta, _cattrs_structure_factory(datetime.timedelta))
converter.register_unstructure_hook(datetime.timedelta, duration_to)
