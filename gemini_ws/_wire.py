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

Implementation: the per-class (de)serialisation functions are generated once per attrs class
by the hook factories below and registered in one :class:`cattrs.Converter` (:data:`converter`)
for cattrs-style use. The hot paths (:func:`decode`, :func:`encode`) call the generated
functions directly: they are table driven (one dict lookup per key actually present, so a
sparse ``serverContent`` costs what it carries) and check JSON types strictly without cattrs's
dispatch or ExceptionGroups. JSON is parsed and written with orjson when it is installed
(it is about twice as fast as :mod:`json` here), else with :mod:`json`.

Errors: a frame that is not a valid server message raises
:class:`~gemini_ws._errors.ProtocolError` with the path of the bad field and a short, redacted
excerpt of the frame; a bad user value raises :class:`~gemini_ws._errors.ConfigurationError`.
Nothing else escapes :func:`decode`, :func:`encode` or :func:`structure_config`.
"""

from __future__ import annotations

import binascii
import datetime
import difflib
import enum
import json
import math
import re
import reprlib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import attrs
import cattrs

from . import _types as t
from ._errors import ConfigurationError, ProtocolError

try:  # pragma: no cover - exercised by whichever is installed
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

try:  # pragma: no cover - exercised by whichever is installed
    import pybase64 as _pybase64
except ImportError:  # pragma: no cover
    _pybase64 = None  # type: ignore[assignment]

__all__ = [
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

_T = TypeVar("_T")

#: Whether orjson is used for JSON (else the standard library).
USING_ORJSON: Final = _orjson is not None
#: Whether pybase64 (SIMD base64, ~10x faster than binascii) is used.
USING_PYBASE64: Final = _pybase64 is not None


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


# --- errors --------------------------------------------------------------------------------


class _Invalid(Exception):
    """Internal: a value does not fit its field. ``path`` is filled innermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str | int] = []

    def where(self, root: str = "") -> str:
        out = root
        for part in reversed(self.path):
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out = f"{out}.{part}" if out else part
        return out or "<message>"


_short_repr = reprlib.Repr()
_short_repr.maxstring = _short_repr.maxother = 60
_short_repr.maxlevel = 2


def _describe(value: Any) -> str:
    """A short description of a bad value for an error message (bounded cost and size)."""
    text = _short_repr.repr(value)
    if len(text) > 80:
        text = text[:80] + "..."
    return f"{type(value).__name__} {text}"


# --- names ---------------------------------------------------------------------------------

_CAMEL_RE = re.compile(r"_([a-z0-9])")


def _camel(name: str) -> str:
    return _CAMEL_RE.sub(lambda m: m.group(1).upper(), name)


_SNAKE_RE = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    """``responseModalities`` -> ``response_modalities`` (snake_case names are kept)."""
    return _SNAKE_RE.sub("_", name).lower()


#: Extra wire spellings read into a field: {class: {wire key: field name}}.
_ALIASES: dict[type, dict[str, str]] = {
    t.UsageMetadata: {
        "candidatesTokenCount": "response_token_count",
        "candidates_token_count": "response_token_count",
        "candidatesTokensDetails": "response_tokens_details",
        "candidates_tokens_details": "response_tokens_details",
    },
}

# --- scalar handlers -----------------------------------------------------------------------

_INT_RE = re.compile(r"-?[0-9]+")
_URLSAFE_TO_STD = str.maketrans("-_", "+/")
_a2b = binascii.a2b_base64
_new_object = object.__new__

if _pybase64 is not None:
    _pyb64decode = _pybase64.b64decode
    _pyb64encode = _pybase64.b64encode

    def _b64decode_strict(v: str) -> bytes:
        return _pyb64decode(v, validate=True)

    def _b64encode(v: bytes | bytearray | memoryview) -> str:
        return _pyb64encode(v).decode("ascii")

else:  # pragma: no cover

    def _b64decode_strict(v: str) -> bytes:
        return _a2b(v, strict_mode=True)

    def _b64encode(v: bytes | bytearray | memoryview) -> str:
        return binascii.b2a_base64(v, newline=False).decode("ascii")


def _int_from(v: Any) -> int:
    # Fast path (exact int) is inlined by the callers; this handles proto-JSON strings.
    if type(v) is str and len(v) < 40 and _INT_RE.fullmatch(v):
        return int(v)
    if type(v) is float and v.is_integer():
        return int(v)
    if type(v) is int:
        return v
    raise _Invalid(f"expected an integer, got {_describe(v)}")


def _float_from(v: Any) -> float:
    if type(v) is int:
        return float(v)
    if type(v) is str:
        if v in ("NaN", "Infinity", "-Infinity"):
            return float(v.replace("inity", ""))
        try:
            return float(v)
        except ValueError:
            pass
    if type(v) is float:
        return v
    raise _Invalid(f"expected a number, got {_describe(v)}")


def _str_from(v: Any) -> str:
    if type(v) is str:
        return v
    raise _Invalid(f"expected a string, got {_describe(v)}")


def _bool_from(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise _Invalid(f"expected true or false, got {_describe(v)}")


def b64decode(v: str) -> bytes:
    """Decode base64 in the standard or URL-safe alphabet, with or without padding.

    Raises ValueError for anything else (whitespace included).
    """
    try:
        return _b64decode_strict(v)
    except ValueError:  # binascii.Error is a ValueError
        pass
    s = v.translate(_URLSAFE_TO_STD).rstrip("=")
    if len(s) % 4 == 1:
        raise ValueError("invalid base64 length")
    s += "=" * (-len(s) % 4)
    try:
        return _a2b(s, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64: {exc}") from None


def _bytes_from(v: Any) -> bytes:
    if type(v) is str:
        try:
            return b64decode(v)
        except ValueError:
            raise _Invalid(f"invalid base64 data {_describe(v)}") from None
    raise _Invalid(f"expected base64 data (a string), got {_describe(v)}")


def _bytes_from_config(v: Any) -> bytes:
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v)
    return _bytes_from(v)


def _duration_from(v: Any) -> datetime.timedelta:
    if isinstance(v, datetime.timedelta):
        return v
    try:
        if type(v) is str and v.endswith("s"):
            seconds = float(v[:-1])
        elif type(v) in (int, float):
            seconds = float(v)
        else:
            raise _Invalid(f"expected a duration such as '9.5s', got {_describe(v)}")
        if not math.isfinite(seconds):
            raise ValueError
        return datetime.timedelta(seconds=seconds)
    except (ValueError, OverflowError):
        raise _Invalid(f"invalid duration {_describe(v)}") from None


def _enum_from(cls: type[enum.Enum]) -> Callable[[Any], Any]:
    lookup = cls._value2member_map_.get

    def structure(v: Any) -> Any:
        if type(v) is str:
            member = lookup(v)
            return cls(v) if member is None else member
        if isinstance(v, str):  # an enum member (config) or str subclass
            return cls(str.__str__(v))
        if type(v) is int:  # proto-JSON also allows enum numbers: keep them as text
            return cls(str(v))
        raise _Invalid(f"expected a {cls.__name__} name, got {_describe(v)}")

    return structure


def _enum_from_config(cls: type[enum.Enum]) -> Callable[[Any], Any]:
    """A user's value for an enum field: one of its names, in any case. The server's values
    are kept whatever they are (``_enum_from``), but a value of ours that the enum does not
    know is far more often a typo than a value the service added since this release: it is
    refused with the nearest name. An enum instance goes through as it is, so
    ``ThinkingLevel("ULTRA")`` sends a value the service added since."""
    names = {member.value.upper(): member for member in cls}

    def structure(v: Any) -> Any:
        if isinstance(v, cls):
            return v  # a member, or a value built on purpose: MediaResolution("NEW")
        if not isinstance(v, str):
            raise _Invalid(f"expected a {cls.__name__} name, got {_describe(v)}")
        text = str.__str__(v)
        if text.upper() in names:
            # kept as written: the wire takes some names in lower case too ("low")
            member = cls._value2member_map_.get(text)
            return member if member is not None else cls(text)
        known = [name for name in names if not name.endswith("_UNSPECIFIED")]
        close = difflib.get_close_matches(text.upper(), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _Invalid(
            f"unknown {cls.__name__} {text!r:.60} (known: {', '.join(known)}){hint}; to "
            f"send a value this release does not know, pass {cls.__name__}({text!r:.60})"
        )

    return structure


def _freeform_from(v: Any) -> Any:
    if type(v) is dict:
        return v
    raise _Invalid(f"expected a JSON object, got {_describe(v)}")


def _freeform_from_config(v: Any) -> Any:
    if type(v) is dict:
        return v
    if isinstance(v, Mapping):
        return dict(v)
    raise _Invalid(f"expected a dict, got {_describe(v)}")


def _str_map_from(v: Any) -> Any:
    """A ``map<string, string>`` (``labels``, HTTP ``headers``): keys kept as they are."""
    if type(v) is not dict:
        raise _Invalid(f"expected a JSON object of strings, got {_describe(v)}")
    for key, item in v.items():
        if type(item) is not str:
            raise _Invalid(f"expected a string for {key!r:.40}, got {_describe(item)}")
    return v


def _str_map_from_config(v: Any) -> Any:
    if isinstance(v, Mapping) and type(v) is not dict:
        v = dict(v)
    return _str_map_from(v)


def _any(v: Any) -> Any:
    return v


# --- structure (JSON -> models) ------------------------------------------------------------


def _strip_optional(tp: Any) -> Any:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _field_defaults(cls: type) -> dict[str, Any]:
    """The default of every attrs field of *cls* that has one."""
    return {a.name: a.default for a in attrs.fields(cls) if a.default is not attrs.NOTHING}


def _buildable_without_init(cls: type) -> bool:
    """Whether a decoder may build *cls* by filling its instance dict (its defaults, then
    the checked values) instead of calling ``__init__``: no slots, no factory defaults, every
    field set through ``__init__``."""
    return "__slots__" not in cls.__dict__ and all(
        a.init and type(a.default) is not attrs.Factory for a in attrs.fields(cls)
    )


class _Structurer:
    """Builds and caches the structure function of each type, for one mode.

    ``config=False``: server (or client) frames: JSON types checked exactly, unknown keys
    ignored. ``config=True``: user-supplied dicts: unknown keys are errors, lists or tuples,
    any mapping, bytes objects and typed instances are accepted.
    """

    def __init__(self, *, config: bool) -> None:
        self.config = config
        self._cache: dict[Any, Callable[[Any], Any]] = {}
        self._message_cache: dict[type, Callable[..., Any]] = {}

    # Each handler is ``fn(value) -> structured`` and raises _Invalid. For a few exact JSON
    # types the field table stores the type so the generated loop can skip the call.
    def exact_type(self, tp: Any) -> type | None:
        tp = _strip_optional(tp)
        if tp in (str, bool, int, float):
            return tp  # type: ignore[no-any-return]
        return None

    def handler(self, tp: Any) -> Callable[[Any], Any]:
        tp = _strip_optional(tp)
        try:
            return self._cache[tp]
        except KeyError:
            pass
        except TypeError:  # unhashable annotation
            return self._make(tp)
        fn = self._make(tp)
        self._cache[tp] = fn
        return fn

    def _make(self, tp: Any) -> Callable[[Any], Any]:
        config = self.config
        if tp is str:
            return _str_from
        if tp is bool:
            return _bool_from
        if tp is int:
            return _int_from
        if tp is float:
            return _float_from
        if tp is bytes:
            return _bytes_from_config if config else _bytes_from
        if tp is datetime.timedelta:
            return _duration_from
        if tp is Any:
            return _any
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum_from_config(tp) if config else _enum_from(tp)
        origin = typing.get_origin(tp)
        if origin is dict:
            if typing.get_args(tp) == (str, str):
                return _str_map_from_config if config else _str_map_from
            return _freeform_from_config if config else _freeform_from
        if origin is tuple:
            args = typing.get_args(tp)
            if len(args) == 2 and args[1] is Ellipsis:
                return self._sequence(args[0])
        if attrs.has(tp):
            return self._attrs(tp)
        raise TypeError(f"no wire handler for {tp!r}")  # a bug in _types, not in a frame

    def _sequence(self, elem_tp: Any) -> Callable[[Any], Any]:
        exact = self.exact_type(elem_tp)
        h = self.handler(elem_tp)
        config = self.config

        def structure(v: Any) -> tuple[Any, ...]:
            if type(v) is not list and not (config and type(v) is tuple):
                raise _Invalid(f"expected a list, got {_describe(v)}")
            if exact is not None:
                for x in v:
                    if type(x) is not exact:
                        break
                else:
                    return tuple(v)
            try:
                return tuple([h(x) for x in v])
            except _Invalid as exc:
                for i, x in enumerate(v):  # find where, for the message
                    try:
                        h(x)
                    except _Invalid:
                        exc.path.append(i)
                        break
                raise

        return structure

    def message(self, cls: type) -> Callable[..., Any]:
        """``fn(obj, usage_metadata=None)`` building ``cls`` from a JSON object."""
        return self._attrs(cls)

    def _attrs(self, cls: type) -> Callable[..., Any]:
        cached = self._message_cache.get(cls)
        if cached is not None:
            return cached
        config = self.config
        # table: wire key -> (field name, exact JSON type or None, handler)
        table: dict[str, tuple[str, type | None, Callable[[Any], Any]]] = {}
        get = table.get
        required: list[str] = []
        optional_nodefault: list[str] = []
        known: list[str] = []

        def structure(d: Any, usage: Any = None) -> Any:
            if type(d) is not dict:
                if config and isinstance(d, cls):
                    return d
                if config and isinstance(d, Mapping):
                    d = dict(d)
                else:
                    raise _Invalid(f"expected an object, got {_describe(d)}")
            kw: dict[str, Any] = {}
            extra: dict[str, Any] | None = None
            for k, v in d.items():
                spec = get(k)
                if spec is None:
                    if config:
                        raise _Invalid(_unknown_field(k, cls.__name__, known))
                    if keeps_extra:
                        # a field this release does not model: kept as sent, never dropped
                        if extra is None:
                            extra = kw["extra"] = {}
                        extra[k] = v
                    continue
                if v is None:
                    if nulls is not None and spec[0] in nulls:
                        kw[spec[0]] = nulls[spec[0]]  # a NullValue field: null is its value
                    continue
                name, exact, h = spec
                if type(v) is exact:
                    kw[name] = v
                    continue
                try:
                    kw[name] = h(v)
                except _Invalid as exc:
                    exc.path.append(k)
                    raise
            if usage is not None:
                kw["usage_metadata"] = usage
            if required:
                for name in required:
                    if name not in kw:
                        raise _Invalid(f"missing required field {_camel(name)!r}")
            if optional_nodefault:
                for name in optional_nodefault:
                    if name not in kw:
                        kw[name] = None
            if fast:
                # Validated values only: fill the instance dict without __init__ (see _types).
                obj: Any = _new_object(cls)
                dct = obj.__dict__
                dct.update(defaults)
                dct.update(kw)
                return obj
            try:
                return cls(**kw)
            except ConfigurationError as exc:
                raise _Invalid(exc.message) from None
            except (TypeError, ValueError) as exc:
                raise _Invalid(f"invalid {cls.__name__}: {exc}") from None

        # Registered before the field handlers are resolved, so recursive types work.
        self._message_cache[cls] = structure
        hints = typing.get_type_hints(cls)
        wrapped = _WRAPPED.get(cls, {})
        fields = attrs.fields(cls)
        defaults = _field_defaults(cls)
        fast = not config and _buildable_without_init(cls)
        keeps_extra = issubclass(cls, t._WireModel)
        nulls = None if config else _NULL_MEANS.get(cls)
        for a in fields:
            if not a.init:
                continue
            if a.name == "extra" and keeps_extra:
                if config:  # a user's dict may give it: {"extra": {...}} (the converter checks)
                    table["extra"] = ("extra", None, _any)
                continue  # on the wire, "extra" is what no other field takes
            tp = hints[a.name]
            exact = None
            if cls is t.LiveConfig:
                h: Callable[[Any], Any] = _any  # its own converters do the work
            elif a.name in wrapped:
                h = self._unwrap(wrapped[a.name], tp)
            else:
                exact = self.exact_type(tp)
                h = self.handler(tp)
            table[_camel(a.name)] = table[a.name] = (a.name, exact, h)
            known.append(a.name)
            if a.default is attrs.NOTHING:
                if _strip_optional(tp) is not tp:
                    optional_nodefault.append(a.name)
                else:
                    required.append(a.name)
        if config and "extra" in table:
            known.append("extra")  # listed last: the escape hatch, not a field to reach for
        for key, name in _ALIASES.get(cls, {}).items():
            table[key] = table[name]
        return structure

    def _unwrap(self, key: str, tp: Any) -> Callable[[Any], Any]:
        inner = self._sequence(typing.get_args(_strip_optional(tp))[0])

        def structure(v: Any) -> Any:
            if type(v) is not dict and not (self.config and isinstance(v, Mapping)):
                raise _Invalid(f"expected an object with {key!r}, got {_describe(v)}")
            items = v.get(key)
            return () if items is None else inner(items)

        return structure


#: Fields sent wrapped in an object: {class: {field: wrapper key}}.
_WRAPPED: dict[type, dict[str, str]] = {t.ContextUpdate: {"tools": "tools"}}

#: Fields of type ``google.protobuf.NullValue``, whose value proto JSON writes as ``null``
#: (elsewhere ``null`` means "not set"): {class: {field: the value a null gives}}. Read
#: from frames only; a user's ``None`` stays "not set", and the name ``"NULL_VALUE"`` (what
#: the SDKs send) is read as the enum's value.
_NULL_MEANS: dict[type, dict[str, Any]] = {t.PartialArg: {"null_value": t.NullValue.NULL_VALUE}}

_WIRE = _Structurer(config=False)
_CONFIG = _Structurer(config=True)


# --- unstructure (models -> JSON-ready dicts) ----------------------------------------------


def _bad(message: str) -> ConfigurationError:
    return ConfigurationError(message)


def _str_to(v: Any) -> Any:
    if isinstance(v, str):
        return v
    raise _Invalid(f"expected a str, got {_describe(v)}")


def _bool_to(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    raise _Invalid(f"expected a bool, got {_describe(v)}")


def _int_to(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    raise _Invalid(f"expected an int, got {_describe(v)}")


def _float_to(v: Any) -> Any:
    if isinstance(v, int | float) and not isinstance(v, bool):
        if not math.isfinite(v):
            raise _Invalid(f"expected a finite number, got {_describe(v)}")
        return v
    raise _Invalid(f"expected a number, got {_describe(v)}")


def _bytes_to(v: Any) -> str:
    if isinstance(v, bytes | bytearray | memoryview):
        return _b64encode(v)
    raise _Invalid(f"expected bytes, got {_describe(v)}")


def _duration_to(v: Any) -> str:
    if not isinstance(v, datetime.timedelta):
        raise _Invalid(f"expected a timedelta, got {_describe(v)}")
    micros = (v.days * 86400 + v.seconds) * 1_000_000 + v.microseconds
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    if frac:
        return f"{sign}{whole}.{frac:06d}".rstrip("0") + "s"
    return f"{sign}{whole}s"


def _enum_to(v: Any) -> Any:
    if isinstance(v, str):
        return str.__str__(v)
    raise _Invalid(f"expected a string enum value, got {_describe(v)}")


def _check_json(v: Any, depth: int = 0) -> None:
    """Refuse what JSON cannot carry (NaN and infinities, non-str keys, other objects), the
    same with orjson or without it (orjson would write NaN as null, or serialise datetimes)."""
    if depth > 200:
        raise _Invalid("nested too deeply")
    if v is None or isinstance(v, bool | int | str):
        return
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _Invalid(f"{v!r} is not valid in JSON")
        return
    if isinstance(v, list | tuple):
        for item in v:
            _check_json(item, depth + 1)
        return
    if isinstance(v, Mapping):
        for key, item in v.items():
            if not isinstance(key, str):
                raise _Invalid(f"JSON object keys must be str, got {_describe(key)}")
            _check_json(item, depth + 1)
        return
    raise _Invalid(f"not JSON data: {_describe(v)}")


def _freeform_to(v: Any) -> Any:
    if isinstance(v, Mapping):
        _check_json(v)
        return v if type(v) is dict else dict(v)
    raise _Invalid(f"expected a dict, got {_describe(v)}")


def _str_map_to(v: Any) -> Any:
    if not isinstance(v, Mapping):
        raise _Invalid(f"expected a dict, got {_describe(v)}")
    for key, item in v.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise _Invalid(f"expected str keys and values, got {_describe(key)}: {_describe(item)}")
    return v if type(v) is dict else dict(v)


class _Unstructurer:
    """Builds and caches the unstructure function of each type."""

    def __init__(self) -> None:
        self._cache: dict[Any, Callable[[Any], Any]] = {}

    def handler(self, tp: Any) -> Callable[[Any], Any]:
        tp = _strip_optional(tp)
        fn = self._cache.get(tp)
        if fn is None:
            fn = self._make(tp)
            self._cache[tp] = fn
        return fn

    def _make(self, tp: Any) -> Callable[[Any], Any]:
        if tp is str:
            return _str_to
        if tp is bool:
            return _bool_to
        if tp is int:
            return _int_to
        if tp is float:
            return _float_to
        if tp is bytes:
            return _bytes_to
        if tp is datetime.timedelta:
            return _duration_to
        if tp is Any:
            return _any
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum_to
        origin = typing.get_origin(tp)
        if origin is dict:
            return _str_map_to if typing.get_args(tp) == (str, str) else _freeform_to
        if origin is tuple:
            args = typing.get_args(tp)
            if len(args) == 2 and args[1] is Ellipsis:
                return self._sequence(args[0])
        if attrs.has(tp):
            return self._attrs(tp)
        raise TypeError(f"no wire handler for {tp!r}")

    def _sequence(self, elem_tp: Any) -> Callable[[Any], Any]:
        holder: list[Callable[[Any], Any]] = []

        def unstructure(v: Any) -> list[Any]:
            if not isinstance(v, tuple | list):
                raise _Invalid(f"expected a tuple or list, got {_describe(v)}")
            if not holder:
                holder.append(self.handler(elem_tp))
            h = holder[0]
            out = []
            for i, x in enumerate(v):
                try:
                    out.append(h(x))
                except _Invalid as exc:
                    exc.path.append(i)
                    raise
            return out

        return unstructure

    def _attrs(self, cls: type) -> Callable[[Any], Any]:
        if cls in self._cache:
            return self._cache[cls]
        hints = typing.get_type_hints(cls)
        wrapped = _WRAPPED.get(cls, {})
        # [field name, wire key, handler or None, omit-when-false, omit-when-empty, wrapper]
        specs: list[list[Any]] = []
        keeps_extra = issubclass(cls, t._WireModel)
        for a in attrs.fields(cls):
            if a.name == "usage_metadata" and cls in _SERVER_KEY_OF:
                continue  # goes beside the message key, see encode_server
            if a.name == "extra" and keeps_extra:
                continue  # merged into the object below
            default = a.default
            specs.append(
                [
                    a.name,
                    _camel(a.name),
                    None,
                    default is False,
                    default == () and a.name not in wrapped,
                    wrapped.get(a.name),
                    hints[a.name],
                ]
            )
        me = self

        def unstructure(obj: Any) -> dict[str, Any]:
            if not isinstance(obj, cls):
                raise _Invalid(f"expected a {cls.__name__}, got {_describe(obj)}")
            out: dict[str, Any] = {}
            for spec in specs:
                v = getattr(obj, spec[0])
                if v is None or (spec[3] and v is False) or (spec[4] and v == ()):
                    continue
                h = spec[2]
                if h is None:
                    h = spec[2] = me.handler(spec[6])
                try:
                    value = h(v)
                except _Invalid as exc:
                    exc.path.append(spec[0])
                    raise
                out[spec[1]] = value if spec[5] is None else {spec[5]: value}
            if keeps_extra:
                extra: Mapping[str, Any] = getattr(obj, "extra")  # noqa: B009 (a _WireModel)
                if extra:
                    _merge_extra(out, extra)
            return out

        self._cache[cls] = unstructure
        return unstructure


_UNSTRUCT = _Unstructurer()


def _merge_extra(out: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Merge a model's ``extra`` into its wire object: an object into the object of the same
    name (recursively), anything else in place of what is there."""
    for key, value in extra.items():
        mine = out.get(key)
        if type(mine) is dict and isinstance(value, Mapping):
            merged = dict(mine)
            _merge_extra(merged, value)
            out[key] = merged
        else:
            out[key] = dict(value) if isinstance(value, Mapping) else value

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
        out[re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)] = cls
    return out


_SERVER_CLASSES = _with_snake(_SERVER_KEY_OF)
_CLIENT_CLASSES = _with_snake(_CLIENT_KEYS)

#: wire key -> fn(value, usage) building the message (filled lazily per class).
_SERVER_DECODERS: dict[str, Callable[[Any, Any], Any]] = {
    key: _WIRE.message(cls) for key, cls in _SERVER_CLASSES.items()
}
_CLIENT_DECODERS: dict[str, Callable[[Any, Any], Any]] = {
    key: _WIRE.message(cls) for key, cls in _CLIENT_CLASSES.items()
}
_USAGE_KEYS = ("usageMetadata", "usage_metadata")
_structure_usage = _WIRE.message(t.UsageMetadata)


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


def _usage_of(obj: dict[str, Any]) -> Any:
    raw = obj.get("usageMetadata")
    if raw is None:
        raw = obj.get("usage_metadata")
        if raw is None:
            return None
    try:
        return _structure_usage(raw, None)
    except _Invalid as exc:
        exc.path.append("usageMetadata")
        raise


def _invalid_frame(exc: _Invalid, frame: Any) -> ProtocolError:
    return ProtocolError(
        f"invalid server message: {exc.where()}: {exc.message}", _safe_frame(frame)
    )


def _instance_maker(cls: type) -> Callable[..., Any]:
    """Build *cls* from checked values as the table decoder does (its defaults, then the given
    fields, without ``__init__``)."""
    defaults = _field_defaults(cls)
    assert _buildable_without_init(cls), f"{cls.__name__} cannot be built without __init__"

    def make(**fields: Any) -> Any:
        obj: Any = _new_object(cls)
        dct = obj.__dict__
        dct.update(defaults)
        dct.update(fields)
        return obj

    return make


_make_blob = _instance_maker(t.Blob)
_make_part = _instance_maker(t.Part)
_make_content = _instance_maker(t.Content)
_make_server_content = _instance_maker(t.ServerContent)


def _fast_server_content(value: Any) -> t.ServerContent | None:
    """A ``serverContent`` that is only a ``modelTurn`` (an optional role and parts that are
    each plain text or inline data, in camelCase): nearly every message of a reply. Built
    directly, the same objects the table decoder builds (a test holds them equal), in under
    half its time; None for anything else, which the table decoder handles (errors too)."""
    if type(value) is not dict or len(value) != 1:
        return None
    turn = value.get("modelTurn")
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
            built.append(_make_part(text=text))
            continue
        blob = part.get("inlineData")
        if type(blob) is not dict or len(blob) != 2:
            return None
        mime = blob.get("mimeType")
        data = blob.get("data")
        if type(mime) is not str or type(data) is not str:
            return None
        try:
            raw = _b64decode_strict(data)
        except ValueError:
            return None  # (URL-safe or unpadded base64: the table decoder takes those)
        built.append(_make_part(inline_data=_make_blob(mime_type=mime, data=raw)))
    return _make_server_content(  # type: ignore[no-any-return]
        model_turn=_make_content(parts=tuple(built), role=role)
    )


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
    if len(obj) == 1:
        fast = _fast_server_content(obj.get("serverContent"))
        if fast is not None:
            return fast
    try:
        usage = _usage_of(obj) if len(obj) != 1 else None
        for key, value in obj.items():
            fn = _SERVER_DECODERS.get(key)
            if fn is not None and value is not None:
                try:
                    return fn(value, usage)  # type: ignore[no-any-return]
                except _Invalid as exc:
                    exc.path.append(key)
                    raise
        if usage is None:
            usage = _usage_of(obj)
        if usage is not None:
            return t.UsageMessage(usage_metadata=usage)
        return t.UnknownMessage(raw=obj)
    except _Invalid as exc:
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
        usage = _usage_of(obj)
        for key, value in obj.items():
            fn = _SERVER_DECODERS.get(key)
            if fn is not None and value is not None:
                try:
                    out.append(fn(value, usage if not out else None))
                except _Invalid as exc:
                    exc.path.append(key)
                    raise
        if not out:
            if usage is not None:
                out.append(t.UsageMessage(usage_metadata=usage))
            else:
                out.append(t.UnknownMessage(raw=obj))
        return out
    except _Invalid as exc:
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
    keys = [k for k in obj if k in _CLIENT_DECODERS]
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
        return _CLIENT_DECODERS[key](value, None)  # type: ignore[no-any-return]
    except _Invalid as exc:
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
            return {key: _UNSTRUCT.handler(cls)(msg)}
        if cls is t.UnknownMessage:
            return dict(msg.raw)  # type: ignore[union-attr]
        if isinstance(msg, t.UsageMessage):
            return {"usageMetadata": _UNSTRUCT.handler(t.UsageMetadata)(msg.usage_metadata)}
        if cls in _SERVER_KEY_OF:
            out = {_SERVER_KEY_OF[cls]: _UNSTRUCT.handler(cls)(msg)}
            usage = getattr(msg, "usage_metadata", None)
            if usage is not None:
                out["usageMetadata"] = _UNSTRUCT.handler(t.UsageMetadata)(usage)
            return out
    except _Invalid as exc:
        raise ConfigurationError(
            f"cannot encode {cls.__name__}: {exc.where(cls.__name__)}: {exc.message}"
        ) from None
    raise ConfigurationError(f"not a Live API message: {_describe(msg)}")


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
        raise ConfigurationError(f"not a client message: {_describe(msg)}")
    return _dump(to_wire_dict(msg))


def encode_audio(pcm: bytes | bytearray | memoryview, sample_rate: int) -> str:
    """``encode(audio_chunk(pcm, sample_rate))`` for checked input, from a template: the same
    text (a test holds them equal), without the walk over the message (the hot path of a voice
    app, once every 20-40 ms per stream)."""
    return _AUDIO_TEMPLATE % (sample_rate, _b64encode(pcm))


_AUDIO_TEMPLATE = '{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=%d","data":"%s"}}}'


def encode_server(msg: t.ServerMessage) -> str:
    """Encode a server message as the server would (camelCase JSON); for fake servers."""
    if type(msg) in _CLIENT_KEYS:
        raise ConfigurationError(f"not a server message: {_describe(msg)}")
    return _dump(to_wire_dict(msg))


def _dump(obj: dict[str, Any]) -> str:
    try:
        return _dumps(obj)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise ConfigurationError(f"message is not JSON-serialisable: {exc}") from None


def _unknown_field(key: Any, owner: str, known: list[str]) -> str:
    """The message for a config key no field takes, with the nearest field when there is one
    (``'response_modalites'`` -> ``did you mean 'response_modalities'?``)."""
    text = f"unknown field {key!r} for {owner}"
    if isinstance(key, str) and known:
        snake = _snake(key)
        close = difflib.get_close_matches(snake, known, n=1, cutoff=0.75)
        if close:
            return f"{text}; did you mean {close[0]!r}?"
    return f"{text} (known: {', '.join(known) or 'none'})"


def structure_config(value: Any, cls: type[_T], what: str | None = None) -> _T:
    """Build a typed config object from a user dict (snake_case or camelCase keys).

    Nested values may be dicts or typed objects. Unknown keys and wrong types raise
    :class:`~gemini_ws._errors.ConfigurationError` naming the field, e.g.
    ``speech_config.voice_config: unknown field 'voice_nme' ...``.
    """
    root = what or cls.__name__
    try:
        if not attrs.has(cls):  # an enum's name
            return _CONFIG.handler(cls)(value)  # type: ignore[no-any-return]
        return _CONFIG.message(cls)(value, None)  # type: ignore[no-any-return]
    except _Invalid as exc:
        raise ConfigurationError(f"{exc.where(root)}: {exc.message}") from None
    except RecursionError:
        raise ConfigurationError(f"{root}: nested too deeply") from None


# --- the cattrs converter ------------------------------------------------------------------

#: A :class:`cattrs.Converter` with the wire rules registered: ``converter.structure(d, T)``
#: reads a wire dict (raising ProtocolError), ``converter.unstructure(obj)`` gives the wire
#: dict (camelCase, unset fields omitted, raising ConfigurationError).
converter = cattrs.Converter()


def _cattrs_structure_factory(cls: Any) -> Callable[[Any, Any], Any]:
    fn = _WIRE.handler(cls)

    def hook(obj: Any, _: Any) -> Any:
        try:
            return fn(obj)
        except _Invalid as exc:
            raise ProtocolError(f"invalid {cls.__name__}: {exc.where()}: {exc.message}") from None

    return hook


def _cattrs_unstructure_factory(cls: Any) -> Callable[[Any], Any]:
    fn = _UNSTRUCT.handler(cls)

    def hook(obj: Any) -> Any:
        try:
            return fn(obj)
        except _Invalid as exc:
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
converter.register_unstructure_hook(datetime.timedelta, _duration_to)
