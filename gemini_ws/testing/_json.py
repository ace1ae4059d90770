"""Raw-JSON helpers of the fake server: key normalisation, base64, framing, durations.

The fake server deliberately does not use the client's codec (``gemini_ws._wire``): it works on
plain dicts exactly as PROTOCOL.md shows them, so that a bug in the codec cannot hide itself by
being mirrored on both sides of the wire.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

__all__ = [
    "FREE_FORM_KEYS",
    "MAX_CLOSE_REASON_BYTES",
    "b64decode_lenient",
    "b64encode_std",
    "camel_case",
    "encode_frame",
    "format_duration",
    "normalise_keys",
    "truncate_reason",
]

#: A WebSocket close frame has room for at most 123 bytes of reason text.
MAX_CLOSE_REASON_BYTES = 123

#: Keys whose values are free-form JSON (user data or JSON schema): never renamed inside.
FREE_FORM_KEYS = frozenset(
    {
        "args",
        "response",
        "parameters",
        "parametersJsonSchema",
        "responseJsonSchema",
        "responseSchema",
        "partialArgs",
        "labels",
        "structValue",
        "properties",
    }
)

_SNAKE = re.compile(r"_([a-z0-9])")


def camel_case(key: str) -> str:
    """``mime_type`` -> ``mimeType``; keys without an inner underscore are returned unchanged."""
    if "_" not in key.strip("_"):
        return key
    head = len(key) - len(key.lstrip("_"))
    return key[:head] + _SNAKE.sub(lambda m: m.group(1).upper(), key[head:])


def normalise_keys(value: Any) -> Any:
    """Rename snake_case keys to lowerCamelCase, recursively; keys only, never values.

    Values under :data:`FREE_FORM_KEYS` (function ``args``, tool ``response``, schema
    ``parameters`` and ``properties`` maps, ...) are kept exactly as sent.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            new_key = camel_case(key) if isinstance(key, str) else key
            out[new_key] = item if new_key in FREE_FORM_KEYS else normalise_keys(item)
        return out
    if isinstance(value, list):
        return [normalise_keys(item) for item in value]
    return value


def b64decode_lenient(data: str) -> bytes:
    """Decode base64 in the standard or URL-safe alphabet, with or without ``=`` padding.

    Raises ``ValueError`` on anything else.
    """
    text = "".join(data.split())
    text = text.replace("-", "+").replace("_", "/").rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"Base64 decoding failed for {data[:40]!r}") from exc


def b64encode_std(data: bytes) -> str:
    """Standard-alphabet base64 with padding, as the real server sends."""
    return base64.b64encode(data).decode("ascii")


def encode_frame(message: Any) -> bytes:
    """Pretty-print a server message the way the real server does: 2-space indented UTF-8 JSON."""
    return json.dumps(message, indent=2, ensure_ascii=False).encode("utf-8")


def truncate_reason(reason: str, limit: int = MAX_CLOSE_REASON_BYTES) -> str:
    """Cut a close reason to ``limit`` UTF-8 bytes without splitting a character."""
    raw = reason.encode("utf-8")
    if len(raw) <= limit:
        return reason
    return raw[:limit].decode("utf-8", errors="ignore")


def format_duration(seconds: float) -> str:
    """Seconds as a proto-JSON ``Duration`` string: ``5`` -> ``"5s"``, ``9.5`` -> ``"9.5s"``."""
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text or '0'}s"
