"""The fake server's model: what a user turn looks like, and a deterministic default responder.

Reply derivation of :class:`FakeModel` (tests may assert on it):

- ``said`` is the turn's text (all user text parts of the turn joined with a space) followed by
  its audio transcript ``"[audio 0.50s]"`` when the turn carried audio (seconds = PCM bytes / 2 /
  input rate, two decimals), joined with a space; ``said`` is ``""`` for an empty turn.
- Tool trigger: when the setup declares functions and the turn's *text* contains
  ``call <name>`` (``<name>`` a declared function), optionally followed at once by
  ``(<JSON object>)`` for the arguments (``call get_weather({"city": "Paris"})``), the model
  first sends one ``toolCall`` carrying every triggered call in order (``args`` = the JSON object,
  or ``{}``), waits for a ``toolResponse`` for each id, then replies
  ``"Tool results: " + "; ".join(f"{name}={json.dumps(response, sort_keys=True,
  separators=(',', ':'))}")`` with ``response`` the ``response`` object the client sent (``{}``
  if absent), in call order.
- Otherwise the reply text is ``f"You said: {said}"``.
- The reply is cut into ``chunk_count`` segments by characters: segment ``i`` is
  ``reply[i*L//n:(i+1)*L//n]`` (``L = len(reply)``, empty segments skipped), so the segments join
  back to the reply.
- TEXT modality: one ``serverContent.modelTurn.parts[{"text": segment}]`` message per segment.
- AUDIO modality: per segment, ``1200 * len(segment)`` samples (50 ms per character) of a 440 Hz
  sine tone, amplitude 8000, 24 kHz 16-bit little-endian mono PCM, phase-continuous across the
  reply, in ``inlineData`` parts with mime ``audio/pcm;rate=24000`` and standard base64; a segment
  whose PCM exceeds ``max_audio_chunk_bytes`` is sent as several messages. So the reply's PCM is
  exactly ``2400 * len(reply)`` bytes. With ``outputAudioTranscription`` in the setup each
  segment's audio is followed by ``serverContent.outputTranscription {"text": segment}``.
- Pacing: ``first_chunk_delay`` seconds before the first message of a reply (before the
  ``toolCall``, and again before the reply after tool results), ``chunk_interval`` between
  segments.
- The server, not the model, ends the turn (``generationComplete`` then ``turnComplete`` with
  ``usageMetadata``) and sends ``inputTranscription`` and ``sessionResumptionUpdate``.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import trio

from .._errors import ConfigurationError
from ._json import b64encode_std

if TYPE_CHECKING:
    from ._server import FakeConnection

__all__ = [
    "OUTPUT_MIME",
    "OUTPUT_RATE",
    "FakeModel",
    "Responder",
    "ResponderItem",
    "UserTurn",
    "audio_message",
    "find_tool_calls",
    "scripted",
    "split_text",
    "text_message",
    "tone_pcm",
]

OUTPUT_RATE = 24000
OUTPUT_MIME = f"audio/pcm;rate={OUTPUT_RATE}"

#: What a responder may yield: a raw server message dict, a ``str`` (a text chunk) or ``bytes``
#: (a chunk of 24 kHz PCM audio).
ResponderItem: TypeAlias = Mapping[str, Any] | str | bytes
#: A responder: called once per user turn; returns an async iterator of items to send.
Responder: TypeAlias = Callable[["UserTurn"], AsyncIterator[ResponderItem]]


class UserTurn:
    """The user's input for one model turn, as the fake server understood it.

    Attributes:
        text: all user text of the turn (clientContent user parts, realtime text), space-joined.
        audio: the raw PCM the user sent in this turn (``b""`` if none).
        audio_rate: the input sample rate from the audio mime type (default 16000).
        transcript: ``"[audio 0.50s]"`` if the turn had audio, else ``""``.
        video_frames: realtime video frames received since the previous turn.
        messages: the normalised client messages that made up this turn, in order.
        history: the conversation as ``Content`` dicts, oldest first, including this turn's input.
        setup: the connection's normalised ``setup`` object.
        modality: ``"TEXT"`` or ``"AUDIO"``.
        function_declarations: declared functions by name.
        index: the turn's number in its session (0-based, continues across resumption).
        connection: the :class:`FakeConnection` the turn arrived on.
    """

    def __init__(
        self,
        *,
        text: str,
        audio: bytes,
        audio_rate: int,
        video_frames: int,
        messages: Sequence[Mapping[str, Any]],
        history: Sequence[Mapping[str, Any]],
        setup: Mapping[str, Any],
        modality: str,
        function_declarations: Mapping[str, Mapping[str, Any]],
        index: int,
        connection: FakeConnection,
        new_call_id: Callable[[], str],
    ) -> None:
        self.text = text
        self.audio = audio
        self.audio_rate = audio_rate
        self.video_frames = video_frames
        self.messages = list(messages)
        self.history = list(history)
        self.setup = setup
        self.modality = modality
        self.function_declarations = dict(function_declarations)
        self.index = index
        self.connection = connection
        self._new_call_id = new_call_id
        self._pending: dict[str, str] = {}
        self._responses: dict[str, dict[str, Any]] = {}
        self._changed = trio.Event()

    def __repr__(self) -> str:
        return (
            f"UserTurn(index={self.index}, text={self.text!r}, audio={len(self.audio)} bytes,"
            f" modality={self.modality})"
        )

    @property
    def transcript(self) -> str:
        """Deterministic transcript of the turn's audio, ``"[audio 0.50s]"``; ``""`` without."""
        if not self.audio:
            return ""
        return f"[audio {len(self.audio) / 2 / self.audio_rate:.2f}s]"

    @property
    def said(self) -> str:
        """Text and audio transcript of the turn, space-joined (what FakeModel echoes)."""
        return " ".join(x for x in (self.text, self.transcript) if x)

    @property
    def output_transcription(self) -> bool:
        """True if the setup asked for ``outputAudioTranscription``."""
        return "outputAudioTranscription" in self.setup

    def new_function_call_id(self) -> str:
        """A fresh id shaped like the real ones: ``function-call-`` and 19 digits on the Gemini
        API path, a UUID on the Vertex AI path."""
        return self._new_call_id()

    @property
    def pending_calls(self) -> dict[str, str]:
        """Function calls sent in this turn and not answered yet (id -> name)."""
        return dict(self._pending)

    def _register_calls(self, calls: Iterable[Mapping[str, Any]]) -> None:
        for call in calls:
            call_id = call.get("id")
            if isinstance(call_id, str):
                self._pending[call_id] = str(call.get("name", ""))

    def _deliver(self, response: Mapping[str, Any]) -> bool:
        call_id = response.get("id")
        if not isinstance(call_id, str) or call_id not in self._pending:
            return False
        del self._pending[call_id]
        self._responses[call_id] = dict(response)
        self._changed.set()
        self._changed = trio.Event()
        return True

    async def wait_tool_responses(self, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Wait until the client answered the given calls (default: all pending ones).

        Returns the ``functionResponses`` entries (normalised dicts), in the order of ``ids``.
        """
        wanted = list(self._pending) if ids is None else list(ids)
        while not all(i in self._responses for i in wanted):
            await self._changed.wait()
        return [self._responses[i] for i in wanted]


def parse_rate(mime: str, default: int = 16000) -> int:
    """The ``rate=N`` of an audio mime type, or *default* when absent or implausible (the
    fake must not crash on odd client input)."""
    match = re.search(r"rate=(\d{1,7})(?!\d)", mime)
    if match is None:
        return default
    rate = int(match.group(1))
    return rate if 1000 <= rate <= 1_000_000 else default


def text_message(text: str) -> dict[str, Any]:
    """A ``serverContent`` text chunk."""
    return {"serverContent": {"modelTurn": {"parts": [{"text": text}]}}}


def audio_message(pcm: bytes, mime_type: str = OUTPUT_MIME) -> dict[str, Any]:
    """A ``serverContent`` audio chunk (standard base64)."""
    return {
        "serverContent": {
            "modelTurn": {
                "parts": [{"inlineData": {"mimeType": mime_type, "data": b64encode_std(pcm)}}]
            }
        }
    }


def split_text(text: str, count: int) -> list[str]:
    """Cut ``text`` into ``count`` near-equal segments by characters, dropping empty ones."""
    count = max(1, count)
    n = len(text)
    pieces = [text[i * n // count : (i + 1) * n // count] for i in range(count)]
    return [p for p in pieces if p]


def tone_pcm(
    samples: int,
    *,
    start: int = 0,
    rate: int = OUTPUT_RATE,
    frequency: float = 440.0,
    amplitude: int = 8000,
) -> bytes:
    """``samples`` samples of a sine tone, 16-bit little-endian PCM, from sample ``start`` on."""
    step = 2 * math.pi * frequency / rate
    values = [int(amplitude * math.sin(step * (start + k))) for k in range(samples)]
    return struct.pack(f"<{samples}h", *values)


_CALL = re.compile(r"\bcall\s+([A-Za-z_][A-Za-z0-9_.\-]*)")


def find_tool_calls(text: str, names: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """The ``call <name>`` / ``call <name>({...})`` triggers in ``text`` for declared ``names``."""
    declared = set(names)
    found: list[tuple[str, dict[str, Any]]] = []
    decoder = json.JSONDecoder()
    for match in _CALL.finditer(text):
        name = match.group(1)
        if name not in declared:
            # allow a trailing sentence dot: "call turn_on."
            stripped = name.rstrip(".-")
            if stripped not in declared:
                continue
            name = stripped
        args: dict[str, Any] = {}
        pos = match.start(1) + len(name)
        if text[pos : pos + 1] == "(":
            start = pos + 1
            while start < len(text) and text[start].isspace():
                start += 1
            try:
                obj, end = decoder.raw_decode(text, start)
            except (ValueError, RecursionError):
                obj, end = None, start
            while end < len(text) and text[end].isspace():
                end += 1
            if isinstance(obj, dict) and text[end : end + 1] == ")":
                args = obj
        found.append((name, args))
    return found


class FakeModel:
    """The default, deterministic responder. See the module docstring for the exact replies.

    Call an instance with a :class:`UserTurn` to get the async iterator of messages for it;
    :meth:`render` gives the messages of a given reply text without pacing, which is handy in a
    custom responder (``async for m in model.reply(turn, "Hi")``).
    """

    def __init__(
        self,
        *,
        chunk_count: int = 5,
        first_chunk_delay: float = 0.0,
        chunk_interval: float = 0.0,
        samples_per_char: int = 1200,
        tone_hz: float = 440.0,
        amplitude: int = 8000,
        max_audio_chunk_bytes: int = 256 * 1024,
    ) -> None:
        if chunk_count < 1:
            raise ConfigurationError("chunk_count must be >= 1")
        self.chunk_count = chunk_count
        self.first_chunk_delay = first_chunk_delay
        self.chunk_interval = chunk_interval
        self.samples_per_char = samples_per_char
        self.tone_hz = tone_hz
        self.amplitude = amplitude
        self.max_audio_chunk_bytes = max(2, max_audio_chunk_bytes - max_audio_chunk_bytes % 2)

    def reply_text(self, turn: UserTurn) -> str:
        """The reply to a turn without tool calls: ``"You said: " + turn.said``."""
        return f"You said: {turn.said}"

    def render(
        self, reply: str, *, modality: str, transcription: bool
    ) -> list[list[dict[str, Any]]]:
        """The messages of ``reply``, grouped by segment (pacing applies between groups)."""
        groups: list[list[dict[str, Any]]] = []
        sample = 0
        for segment in split_text(reply, self.chunk_count):
            if modality != "AUDIO":
                groups.append([text_message(segment)])
                continue
            count = self.samples_per_char * len(segment)
            pcm = tone_pcm(
                count,
                start=sample,
                frequency=self.tone_hz,
                amplitude=self.amplitude,
            )
            sample += count
            group = [
                audio_message(pcm[i : i + self.max_audio_chunk_bytes])
                for i in range(0, len(pcm), self.max_audio_chunk_bytes)
            ]
            if transcription:
                group.append({"serverContent": {"outputTranscription": {"text": segment}}})
            groups.append(group)
        return groups

    async def reply(self, turn: UserTurn, reply: str) -> AsyncGenerator[dict[str, Any], None]:
        """Stream ``reply`` for ``turn`` in its modality, with this model's pacing."""
        groups = self.render(reply, modality=turn.modality, transcription=turn.output_transcription)
        await trio.sleep(self.first_chunk_delay)
        for i, group in enumerate(groups):
            if i:
                await trio.sleep(self.chunk_interval)
            for message in group:
                yield message

    async def __call__(self, turn: UserTurn) -> AsyncIterator[ResponderItem]:
        calls = find_tool_calls(turn.text, turn.function_declarations)
        if calls:
            await trio.sleep(self.first_chunk_delay)
            ids = [turn.new_function_call_id() for _ in calls]
            function_calls = [
                {"id": call_id, "name": name, "args": args}
                for call_id, (name, args) in zip(ids, calls, strict=True)
            ]
            yield {"toolCall": {"functionCalls": function_calls}}
            responses = await turn.wait_tool_responses(ids)
            results = "; ".join(
                f"{name}="
                + json.dumps(resp.get("response", {}), sort_keys=True, separators=(",", ":"))
                for (name, _args), resp in zip(calls, responses, strict=True)
            )
            reply = f"Tool results: {results}"
        else:
            reply = self.reply_text(turn)
        messages = self.reply(turn, reply)
        try:
            async for message in messages:
                yield message
        finally:
            await messages.aclose()


ScriptEntry: TypeAlias = (
    str | Sequence[ResponderItem] | Callable[[UserTurn], AsyncIterator[ResponderItem]]
)


def scripted(
    *entries: ScriptEntry,
    model: FakeModel | None = None,
    then: Responder | None = None,
) -> Responder:
    """A responder that plays a script: the i-th turn it sees gets ``entries[i]``.

    An entry is a reply text (streamed like :class:`FakeModel` streams its replies, in the turn's
    modality), a list of items to send as they are (dicts, ``str`` text chunks, ``bytes`` PCM),
    or a responder to delegate that turn to. When the script is used up, turns go to ``then``
    (default: ``model`` or a ``FakeModel()``). The counter is per responder, across connections.
    """
    fallback_model = model or FakeModel()
    fallback: Responder = then or fallback_model
    position = 0

    async def responder(turn: UserTurn) -> AsyncIterator[ResponderItem]:
        nonlocal position
        index = position
        position += 1
        entry = entries[index] if index < len(entries) else fallback
        if isinstance(entry, str):
            messages = fallback_model.reply(turn, entry)
            try:
                async for message in messages:
                    yield message
            finally:
                await messages.aclose()
        elif callable(entry):
            items = entry(turn)
            try:
                async for item in items:
                    yield item
            finally:
                aclose = getattr(items, "aclose", None)
                if aclose is not None:
                    await aclose()
        else:
            for item in entry:
                yield item
                await trio.lowlevel.checkpoint()

    return responder


def usage_metadata(
    history: Sequence[Mapping[str, Any]],
    *,
    response_text: str,
    response_audio_bytes: int,
) -> dict[str, Any]:
    """Plausible token counts: text = ceil(chars / 4), audio = 25 tokens per second."""
    prompt_text_chars = 0
    prompt_audio_seconds = 0.0
    for content in history:
        for part in content.get("parts") or ():
            if not isinstance(part, Mapping):
                continue
            text = part.get("text")
            if isinstance(text, str):
                prompt_text_chars += len(text)
            inline = part.get("inlineData")
            if isinstance(inline, Mapping) and str(inline.get("mimeType", "")).startswith("audio"):
                rate = parse_rate(str(inline.get("mimeType")))
                data = inline.get("data", "")
                prompt_audio_seconds += len(str(data)) * 3 / 4 / 2 / rate
    prompt_details: list[dict[str, Any]] = [
        {"modality": "TEXT", "tokenCount": math.ceil(prompt_text_chars / 4)}
    ]
    if prompt_audio_seconds:
        prompt_details.append(
            {"modality": "AUDIO", "tokenCount": math.ceil(prompt_audio_seconds * 25)}
        )
    response_details: list[dict[str, Any]] = []
    if response_text and not response_audio_bytes:
        response_details.append(
            {"modality": "TEXT", "tokenCount": math.ceil(len(response_text) / 4)}
        )
    if response_audio_bytes:
        seconds = response_audio_bytes / 2 / OUTPUT_RATE
        response_details.append({"modality": "AUDIO", "tokenCount": math.ceil(seconds * 25)})
    prompt = sum(int(d["tokenCount"]) for d in prompt_details)
    response = sum(int(d["tokenCount"]) for d in response_details)
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "responseTokenCount": response,
        "totalTokenCount": prompt + response,
        "promptTokensDetails": prompt_details,
    }
    if response_details:
        usage["responseTokensDetails"] = response_details
    return usage
