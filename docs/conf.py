"""Sphinx configuration for the gemini_ws documentation.

The build is offline (no intersphinx) and nitpicky: CI runs ``sphinx -n -W --keep-going``, so
every cross-reference must resolve. Names from outside the project (the standard library,
trio) are listed in ``nitpick_ignore_regex`` below instead of being linked. Needs Sphinx 9
(``:class:`` references to the ``py:type`` aliases in api.rst) and furo.
"""

from __future__ import annotations

import enum
import inspect
import os
import re
import sys
import typing
from typing import Any

# Document the package from this checkout even when it is not installed.
sys.path.insert(0, os.path.abspath(".."))

project = "gemini_ws"
author = "the gemini_ws developers"
copyright = "2026, the gemini_ws developers"

try:
    from gemini_ws import __version__ as release
except ImportError:  # the package is mid-edit; the docs still build
    release = "unknown"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    # sphinx.ext.intersphinx is deliberately off: the docs build without network access.
]

needs_sphinx = "9.0"
root_doc = "index"
exclude_patterns = ["_build"]
default_role = "py:obj"
nitpicky = True

# --- the API reference -----------------------------------------------------------------------
# Types go in the signatures, where they are read: ``send_audio(pcm: bytes, sample_rate: int =
# 16000) -> None``. Long signatures are split one parameter per line.
autodoc_typehints = "signature"
autodoc_typehints_format = "short"  # LiveStream, not gemini_ws._stream.LiveStream
python_maximum_signature_line_length = 88
python_display_short_literal_types = True  # 'both' | 'send', not Literal['both', 'send']
autodoc_member_order = "bysource"
# Public type aliases stay named in signatures instead of being spelled out as their unions
# (documented with ``py:type`` in api.rst; "~" shows them as ``StreamEvent``).
autodoc_type_aliases = {
    "StreamEvent": "~gemini_ws.StreamEvent",
    "MetricsCallback": "~gemini_ws.MetricsCallback",
    "ClientMessage": "~gemini_ws.ClientMessage",
    "ServerMessage": "~gemini_ws.ServerMessage",
    "Responder": "~gemini_ws.testing.Responder",
    "ResponderItem": "~gemini_ws.testing.ResponderItem",
    # gemini_ws._wire spells them through its ``import ... _types as t``
    "t.ClientMessage": "~gemini_ws.ClientMessage",
    "t.ServerMessage": "~gemini_ws.ServerMessage",
}

# Classes the library creates for you: their constructor arguments are internal, so no signature
# is shown (what you read from them is documented as attributes instead). Exceptions, enums and
# protocols get none either. Everything else (Client, LiveConfig, the messages, FakeLiveServer,
# FakeModel...) keeps its constructor signature.
_NOT_CONSTRUCTED = {
    "gemini_ws.LiveStream",
    "gemini_ws.LiveConnection",
    "gemini_ws.ConnectionPool",
    "gemini_ws.Models",
    "gemini_ws.Model",
    "gemini_ws.StreamStatistics",
    "gemini_ws.PoolStatistics",
    "gemini_ws.ConnectionStatistics",
    "gemini_ws.SessionResumed",
    "gemini_ws.testing.FakeConnection",
    "gemini_ws.testing.FakeSession",
    "gemini_ws.testing.UserTurn",
    "gemini_ws.testing.Fault",  # built with its class methods
    "gemini_ws.audio.PlaybackStatistics",
    "gemini_ws.ToolRunner",
    "gemini_ws.AuthTokens",
    "gemini_ws.ToolRunnerStatistics",
    "gemini_ws.TurnMetrics",
    "gemini_ws.SessionMetrics",
}

# References to the standard library (``os.PathLike``, ``wave``) and to trio: there is no
# intersphinx, so they stay plain text.
_EXTERNAL = "|".join(sorted(sys.stdlib_module_names | {"trio"}))
nitpick_ignore_regex = [(r"py:.*", rf"(?:{_EXTERNAL})(?:\..*)?")]
nitpick_ignore = [
    # private classes the design notes name on purpose
    ("py:class", "gemini_ws._session.Session"),
    # gemini_ws.telemetry.instrument()'s argument: opentelemetry is an optional extra
    ("py:class", "TracerProvider"),
    ("py:class", "opentelemetry.trace.TracerProvider"),
]

_ASYNC_ITERATOR = re.compile(
    r"^~?(?:collections\.abc\.|typing\.)?(?:AsyncIterator|AsyncGenerator)\[(.*?)(?:, None)?\]$"
)


def _is_attrs_class(obj: Any) -> bool:
    try:
        import attrs
    except ImportError:
        return False
    return isinstance(obj, type) and attrs.has(obj)


def _is_async_context_manager_function(obj: Any) -> bool:
    """A function made by ``@contextlib.asynccontextmanager`` (an async generator inside)."""
    wrapped = getattr(obj, "__wrapped__", None)
    return (
        callable(obj)
        and not inspect.isasyncgenfunction(obj)
        and wrapped is not None
        and inspect.isasyncgenfunction(wrapped)
    )


class _Shown:
    """A default value shown as given text (``{}`` for ``attrs.field(factory=dict)``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _attrs_signature(cls: type) -> str | None:
    """The constructor signature of an attrs class with each field's declared type.

    attrs annotates ``__init__`` with the converters' argument types (``Any``, ``Iterable[Any]``
    for most of LiveConfig and the messages); the field types say what you get.
    """
    import attrs
    from sphinx.util.inspect import stringify_signature

    try:
        hints = typing.get_type_hints(cls)
        signature = inspect.signature(cls)
    except Exception:
        return None
    fields = {getattr(f, "alias", None) or f.name.lstrip("_"): f for f in attrs.fields(cls)}
    parameters = []
    for parameter in signature.parameters.values():
        field = fields.get(parameter.name)
        if field is None:
            parameters.append(parameter)
            continue
        changes: dict[str, Any] = {}
        if field.name in hints:
            changes["annotation"] = hints[field.name]
        if isinstance(field.default, attrs.Factory):
            factory = field.default.factory
            plain = factory in (dict, list, tuple, set, frozenset)
            changes["default"] = _Shown(repr(factory()) if plain else "...")
        elif field.name == "extra":
            changes["default"] = _Shown("{}")  # (a shared read-only empty mapping)
        parameters.append(parameter.replace(**changes))
    # ``extra`` (the escape hatch every wire model inherits) reads best last
    parameters.sort(key=lambda p: p.name == "extra")
    return stringify_signature(
        signature.replace(parameters=parameters),
        show_return_annotation=False,
        unqualified_typehints=True,
    )


def _process_signature(
    app: Any,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str | None] | None:
    if signature is None:
        return None
    if what == "exception" or (
        what == "class"
        and (
            name in _NOT_CONSTRUCTED
            or isinstance(obj, enum.EnumMeta)
            or getattr(obj, "_is_protocol", False)  # a typing.Protocol: (*args, **kwargs)
        )
    ):
        return "", None
    if what == "class" and _is_attrs_class(obj):
        signature = _attrs_signature(obj) or signature
    if return_annotation and _is_async_context_manager_function(obj):
        # ``async with client.stream(...) as s`` gets a LiveStream: say so, rather than the
        # AsyncIterator[LiveStream] of the generator behind @asynccontextmanager.
        match = _ASYNC_ITERATOR.match(return_annotation)
        if match:
            return_annotation = f"~contextlib.AbstractAsyncContextManager[{match.group(1)}]"
    return signature or "", return_annotation


def _name_aliases_in_generics() -> None:
    """Sphinx (9.0) writes an alias nested in a generic (``AsyncIterator[StreamEvent]``) as
    ``TypeAliasForwardRef('~gemini_ws.StreamEvent')``: make it write the alias."""
    try:
        from sphinx.util.inspect import TypeAliasForwardRef
    except ImportError:
        return
    TypeAliasForwardRef.__repr__ = lambda self: str(self.name)


def setup(app: Any) -> None:
    _name_aliases_in_generics()
    app.connect("autodoc-process-signature", _process_signature)


# --- HTML --------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"gemini_ws {release}"
