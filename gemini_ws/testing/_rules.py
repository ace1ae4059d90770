"""Strict mode: the service's refusals the fake imitates by default (``strict=True``).

With ``open_fake_server(strict=False)`` / ``FakeLiveServer(strict=False)`` the fake is lenient:
it checks only the top-level key of each client message, applies none of the per-model rules
below, and honours ``sessionResumption.transparent`` (sending ``lastConsumedClientMessageIndex``),
as the Vertex AI path does. The strict refusals, each a 1007 close:

1. **Unknown fields, at any depth** of ``setup``, ``clientContent``, ``realtimeInput``,
   ``toolResponse`` and ``contextUpdate``: ``Invalid JSON payload received. Unknown name "X" at
   'setup.generation_config': Cannot find field.`` (see ``_schema`` for the fields and the path
   rules). ``sessionResumption.transparent`` is one of them on the Gemini API (``Unknown name
   "transparent" at 'setup.session_resumption'``), so strict mode never sends
   ``lastConsumedClientMessageIndex`` there. [3P code; PROTOCOL.md 9.2, 9.4] On the Vertex AI
   path the fields are the Vertex ones (``_schema.VERTEX_MESSAGES``: ``transparent``,
   ``explicitVadSignal``, the Vertex-only tools... are known there, and honoured), and the
   rules below apply by the model id whatever its prefix
   (``projects/p/locations/l/publishers/google/models/gemini-3.8-live`` is gemini-3.8-live).
2. **gemini-3.8-live** (and variants other than extended-thinking): any
   ``generationConfig.thinkingConfig`` closes ``Thinking level is not supported for this
   model`` [3P openclaw#152413].
3. **gemini-3.8-live-extended-thinking**: a ``thinkingConfig.thinkingLevel`` other than LOW,
   MEDIUM or HIGH (any case) closes ``Request contains an invalid argument.`` (the reason text
   is unconfirmed) [3P vercel/ai#20787]. A budget without a level is accepted.
4. **gemini-3.1-flash-live and gemini-3.8-live models, clientContent** [3P livekit#5985/#5262,
   pipecat#4403, livekit realtime_api.py:676-680; the ``HistoryConfig`` field documentation]:

   - a turn whose ``role`` is missing or empty closes ``Request contains an invalid argument.``;
   - ``clientContent`` is accepted only as *initial history*: the setup has
     ``historyConfig.initialHistoryInClientContent: true``, and on this connection no
     ``realtimeInput`` has arrived, no model turn has started and no earlier ``clientContent``
     ended the history with ``turnComplete: true``. Any other ``clientContent`` closes
     ``Request contains an invalid argument.``;
   - the ``turnComplete: true`` that ends the initial history starts no model turn (the
     documented "This initial history will not trigger a model call"); the conversation goes on
     with ``realtimeInput``. Initial history sent without ``turnComplete`` also ends at the
     first ``realtimeInput``.

   Unconfirmed: whether the service closes or silently drops later ``clientContent``, its close
   reason, and whether a resumed connection may send initial history again (the fake allows
   it: the rule is per connection).
5. **activityEnd in a text-only session**: ``realtimeInput.activityEnd`` when the session's
   modality is TEXT and no audio arrived on the connection closes ``Request contains an invalid
   argument.`` [python-genai#1720; whether it depends on automatic activity detection is
   unconfirmed: with detection on, activityStart/activityEnd close 1007 in either mode].

Not imitated (left out on purpose): TEXT ``responseModalities`` on the audio-only models
(2.5 native audio, 3.x Live): the fake answers TEXT on every model because a test reads text
replies more easily; affective dialog / proactive audio on 3.1 (whether the service refuses or
ignores them is unknown).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "REASON_THINKING_UNSUPPORTED",
    "history_rules_apply",
    "thinking_refusal",
]

REASON_INVALID_ARGUMENT = "Request contains an invalid argument."
#: gemini-3.8-live's close reason for ``thinkingConfig`` (openclaw#152413).
REASON_THINKING_UNSUPPORTED = "Thinking level is not supported for this model"

#: Model-name prefixes (without ``models/``) whose clientContent is initial history only.
_REALTIME_TEXT_PREFIXES = ("gemini-3.1-flash-live", "gemini-3.8-live")
_EXTENDED_THINKING_PREFIX = "gemini-3.8-live-extended-thinking"
_NO_THINKING_PREFIX = "gemini-3.8-live"
_EXTENDED_THINKING_LEVELS = frozenset({"LOW", "MEDIUM", "HIGH"})


def _name(model: str) -> str:
    return model.rpartition("/")[2]


def history_rules_apply(model: str) -> bool:
    """True if *model* takes clientContent only as initial history (and needs turn roles)."""
    return _name(model).startswith(_REALTIME_TEXT_PREFIXES)


def thinking_refusal(model: str, generation_config: Any) -> str | None:
    """The close reason (1007) for the setup's thinking settings on *model*, or None."""
    if not isinstance(generation_config, Mapping):
        return None
    thinking = generation_config.get("thinkingConfig")
    if thinking is None:
        return None
    name = _name(model)
    if name.startswith(_EXTENDED_THINKING_PREFIX):
        level = thinking.get("thinkingLevel") if isinstance(thinking, Mapping) else None
        if level is not None and str(level).upper() not in _EXTENDED_THINKING_LEVELS:
            return REASON_INVALID_ARGUMENT
        return None
    if name.startswith(_NO_THINKING_PREFIX):
        return REASON_THINKING_UNSUPPORTED
    return None
