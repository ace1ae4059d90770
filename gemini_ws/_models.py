"""What we know about each Live model, in one table.

The Live API's messages are the same for every model, but the models differ in what they
accept: Gemini 3.x Live models take text during a session as ``realtimeInput.text`` and
``clientContent`` only as initial history; gemini-3.8-live makes function calls non-blocking by
default and refuses ``thinkingConfig``; its extended-thinking variant takes only LOW, MEDIUM or
HIGH thinking levels (PROTOCOL.md section 9.3). The client reads this table to choose the wire
form of :meth:`LiveStream.send_text <gemini_ws.LiveStream.send_text>` and to refuse locally, with
a :class:`~gemini_ws.ConfigurationError`, a setup the service would close with 1007.

A model the table does not know gets :data:`DEFAULT_TRAITS` (the pre-3.x behaviour), so new
and renamed models keep working; a rule is added here when the service's behaviour for a model
is known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import attrs

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._types import Setup

__all__ = [
    "DEFAULT_TRAITS",
    "MODEL_TRAITS",
    "ModelTraits",
    "blocking_function",
    "check_setup_for_model",
    "traits_of",
]


@attrs.frozen
class ModelTraits:
    """What one Live model accepts (see :func:`traits_of`)."""

    #: How user text goes mid-session: ``"client_content"`` (a ``clientContent`` turn) or
    #: ``"realtime_input"`` (``realtimeInput.text``; clientContent only as initial history).
    text_input: Literal["client_content", "realtime_input"] = "client_content"
    #: Function calls are NON_BLOCKING unless a declaration says otherwise.
    non_blocking_tools: bool = False
    #: Thinking levels the model takes; ``None`` means any, an empty set means it refuses
    #: ``thinkingConfig`` altogether.
    thinking_levels: frozenset[str] | None = None

    @property
    def text_as_realtime_input(self) -> bool:
        """Whether user text goes as ``realtimeInput.text`` (the 3.x models), not as a
        ``clientContent`` turn."""
        return self.text_input == "realtime_input"


#: Traits of a model the table does not name.
DEFAULT_TRAITS = ModelTraits()

#: Model-name prefixes (without ``models/``) and their traits; the longest matching prefix wins.
MODEL_TRAITS: dict[str, ModelTraits] = {
    "gemini-3.1-flash-live": ModelTraits(text_input="realtime_input"),
    "gemini-3.8-live": ModelTraits(
        text_input="realtime_input", non_blocking_tools=True, thinking_levels=frozenset()
    ),
    "gemini-3.8-live-extended-thinking": ModelTraits(
        text_input="realtime_input",
        non_blocking_tools=True,
        thinking_levels=frozenset({"LOW", "MEDIUM", "HIGH"}),
    ),
}


def traits_of(model: str) -> ModelTraits:
    """The traits of *model* (``models/X``, ``publishers/google/models/X`` or a bare id)."""
    name = model.rpartition("/")[2]
    best = ""
    for prefix in MODEL_TRAITS:
        if name.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return MODEL_TRAITS[best] if best else DEFAULT_TRAITS


def blocking_function(setup: Setup, name: str, *, undeclared: bool | None = None) -> bool:
    """Whether the model waits for the response to a call of function *name*: its
    declaration's ``behavior`` in *setup*, else the model's default. *undeclared*: the answer
    for a name *setup* declares no function of (None: the model's default as well)."""
    for tool in setup.tools:
        for declaration in tool.function_declarations:
            if declaration.name == name:
                if declaration.behavior is not None:
                    return str(declaration.behavior.value).upper() != "NON_BLOCKING"
                return not traits_of(setup.model).non_blocking_tools
    if undeclared is not None:
        return undeclared
    return not traits_of(setup.model).non_blocking_tools


def check_setup_for_model(setup: Setup) -> None:
    """Refuse, before anything is sent, a setup the service closes with 1007 for its model.

    Raises:
        ConfigurationError: ``thinking_config`` on a model that refuses it, or a thinking level
            the model does not take.
    """
    levels = traits_of(setup.model).thinking_levels
    generation = setup.generation_config
    thinking = generation.thinking_config if generation is not None else None
    if levels is None or thinking is None:
        return
    name = setup.model.rpartition("/")[2]
    if not levels:
        raise ConfigurationError(
            f"{name} does not take thinking_config (the service closes the session with 1007 "
            f"'Thinking level is not supported for this model'); leave thinking_config unset"
        )
    level = thinking.thinking_level
    if level is not None and str(level.value).upper() not in levels:
        raise ConfigurationError(
            f"{name} takes thinking_level {', '.join(sorted(levels))}, not {level.value!r}"
        )
