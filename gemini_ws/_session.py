"""The session machine: what a Live session knows and decides, with no I/O (no trio import).

In the style of h11: :class:`Session` holds state and never performs I/O. The stream feeds it
events (a write started or finished, a server message arrived, a deadline passed, the connection
was lost, a dial succeeded or failed, the app asked to reconfigure or to close) and gets back a
list of actions (hold or release sends, stop the connection, dial with this setup after this
delay, replay these messages, emit :class:`SessionResumed`, fail with this error). The stream is
the only code that performs them; an event that is not allowed in the current phase raises
:class:`SessionStateError` at once (a bug in the caller, never a user error).

Phases::

    SETUP ──setupComplete──▶ OPEN ──goAway / reconfigure──▶ DRAINING ⇄ QUIET
                              ▲                                 │ quiet (or deadline)
                              │                                 ▼
                              └────────dial succeeded──────── RESUMING ◀── resumable drop
    any ──close──▶ CLOSING (a resumable drop while flushing still resumes) ──▶ CLOSED
    any ──unresumable error / attempts exhausted──▶ FAILED

Sends are held (the gate is closed) exactly in QUIET and RESUMING.

Which client messages a handle covers
-------------------------------------
A handle is a snapshot of the session at the moment the server issued it, and the server
consumes client messages in the order it reads them, so what a handle covers is always a
*prefix* of the messages written; the session keeps the messages after that prefix in a replay
log and sends them again, first, on the next connection. The prefix is decided from facts the
client observes, never by pairing each turn-ending message with one ``turnComplete``:

1. With transparent resumption the server says it: ``lastConsumedClientMessageIndex`` is the
   index (on that connection; ``setup`` is 0) of the last message in the snapshot.
2. Otherwise, a *request* (a message that asks for a model turn: ``clientContent`` with
   ``turnComplete``, ``realtimeInput.text``, ``realtimeInput.activityEnd``) is covered only once
   it has been answered. Requests are recorded as pending when their write *starts* (a reply can
   arrive before the write returns), and a final ``turnComplete`` answers the oldest pending
   one. A ``turnComplete`` while the server reports ``interactionStatus: IN_PROGRESS`` (thinking
   models end one reply with several) answers nothing until the server reports ``IDLE`` or
   ``waitingForInput``; a ``turnComplete`` with nothing pending (a turn the server started
   itself, from voice activity detection) answers nothing. ``audioStreamEnd``, audio, video,
   tool responses and partial content are never requests: they start no turn of their own.
   This relies on the service's rule that a handle is resumable only while no consumed input
   waits for its answer.
3. Other messages are covered when they were written before a covered request. Beyond that,
   streamed media (audio, video) and the responses to blocking function calls are covered when
   their write had completed before the client received the ``turnComplete`` or
   ``interrupted`` that preceded the handle (the model cannot end a turn that waits for a
   response before it read it). Nothing else (partial ``clientContent``, activity and
   stream-end markers, responses to non-blocking calls) is ever covered by the timing of a turn
   end: one written just before it may reach the server after the snapshot, and no timing the
   client can see tells (its own reading may lag, for one). They wait for the request they
   precede; a drop before it sends them again (the model may see one twice, never zero times).
   Media inside an explicit user activity (push-to-talk: written after ``activityStart`` and
   before its ``activityEnd``) is treated the same way: the activity's answer covers it, a turn
   end never does, so an utterance begun as a reply ends is sent again whole after a drop.

Tool calls follow from the same snapshot: a call the client received after the newest handle is
not in it, so after a resume with that handle the call was never made. Responses to such calls
(``SessionResumed.withdrawn_calls``) are never replayed or written later; the model makes the
call again if it still needs the tool.

Limits (continuous audio with automatic activity detection): audio still in flight to the server
during the one-way trip before a ``turnComplete`` may be counted as covered though the server
read it after the snapshot, so at most one round trip of audio written just before a turn ended
can be lost on a drop; audio written after that ``turnComplete`` and before the handle is sent
again (at most one round trip of audio duplicated). A planned handover (goAway, reconfigure)
avoids both: it holds sends at the first quiet moment, lets the in-flight write finish and waits
for the handle that follows, so the handle covers everything written. A forced handover (the
goAway deadline passed while a turn was in progress) replays what the newest handle does not
cover; the partial reply is generated again (``SessionResumed.interrupted_turn``).
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque

import attrs

from ._errors import (
    ConfigurationError,
    ConnectionLostError,
    GeminiWSError,
    ServerClosedError,
    SetupRejectedError,
)
from ._models import blocking_function, traits_of
from ._types import (
    ClientContent,
    ClientMessage,
    Content,
    GoAway,
    HistoryConfig,
    Part,
    RealtimeInput,
    ServerContent,
    ServerMessage,
    SessionResumptionConfig,
    SessionResumptionUpdate,
    Setup,
    ToolCall,
    ToolResponse,
    audio_chunk,
)
from ._validate import validated
from ._wire import encode

__all__ = [
    "Action",
    "Dial",
    "Emit",
    "Fail",
    "HoldSends",
    "Outgoing",
    "Phase",
    "ReconnectPolicy",
    "ReleaseSends",
    "Replay",
    "Session",
    "SessionResumed",
    "SessionStateError",
    "SetTimer",
    "StopConnection",
    "is_request",
    "resumable_error",
]


class Phase(enum.Enum):
    """The phases of a session (see the module docstring)."""

    SETUP = "setup"
    OPEN = "open"
    DRAINING = "draining"
    QUIET = "quiet"
    RESUMING = "resuming"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


#: Phases in which sends are held.
HOLDING = frozenset({Phase.QUIET, Phase.RESUMING})
#: Phases in which a write may start.
WRITABLE = frozenset({Phase.OPEN, Phase.DRAINING, Phase.CLOSING})
#: Phases after which nothing happens any more.
ENDED = frozenset({Phase.CLOSED, Phase.FAILED})


class SessionStateError(RuntimeError):
    """An event arrived in a phase that forbids it: a bug in the caller, never a user error."""


@validated
@attrs.frozen
class ReconnectPolicy:
    """How a stream with ``reconnect`` on survives goAway and dropped connections.

    On ``goAway`` the stream waits (at most until ``time_left`` minus ``go_away_margin``) for a
    quiet moment: no request waiting for its answer, no model turn in progress, and the handle
    that follows the last turn. It holds new sends from then on and moves the session to a new
    connection (a warm spare when the pool has one). On a resumable drop it re-dials up to
    ``max_attempts`` times, the first at once, then with exponential backoff from
    ``initial_backoff`` to ``max_backoff``, each delay jittered by up to ``jitter`` of itself.
    """

    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    initial_backoff: float = attrs.field(default=0.25, validator=attrs.validators.ge(0))
    max_backoff: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    go_away_margin: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    #: Finish the old connection's close handshake before sending the resuming ``setup``
    #: (the real service has been reported to refuse a resume while the old connection is
    #: open). ``False`` overlaps the two, saving one round trip of handover gap, for servers
    #: known to allow it.
    close_old_first: bool = True
    #: Outgoing messages kept for replay after the newest handle, bounded in bytes.
    replay_buffer_bytes: int = attrs.field(
        default=8 * 1024 * 1024, validator=attrs.validators.gt(0)
    )
    #: When the server refuses to resume (an expired or unknown handle: 1007 or 1008), or there
    #: is no handle to resume with, open a fresh session seeded with the conversation so far
    #: (its text: user texts, input transcriptions, the model's text or output transcription)
    #: instead of failing; announced by ``SessionResumed(state_restored=False)``.
    reseed: bool = False
    #: The conversation kept for a reseed, bounded in characters of text (oldest dropped).
    history_chars: int = attrs.field(default=200_000, validator=attrs.validators.gt(0))

    def backoff(self, attempt: int) -> float:
        """The jittered delay before re-dial number *attempt* (1-based; the first is 0)."""
        if attempt <= 1:
            return 0.0
        base = min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt - 2))
        return float(base * (1 + self.jitter * random.random()))


@validated
@attrs.frozen
class SessionResumed:
    """Yielded by a stream with ``reconnect`` on when its session moved to a new connection.

    ``reason`` is ``"go_away"``, ``"connection_lost"`` or ``"reconfigure"``; ``gap`` is the time
    in seconds during which nothing could be sent or received; ``replayed`` counts the client
    messages sent again because the handle does not cover them; ``interrupted_turn`` is True
    when a request was waiting for its answer or a model turn was in progress (its reply will be
    generated again); ``error`` is the error that caused a ``connection_lost`` handover.
    """

    reason: str
    handle: str
    attempts: int
    gap: float
    replayed: int
    interrupted_turn: bool
    warm: bool
    error: GeminiWSError | None = None
    #: messages that should have been replayed but had been dropped because the replay log
    #: passed ``ReconnectPolicy.replay_buffer_bytes`` (0 unless the log overflowed)
    replay_dropped: int = 0
    #: False when the server could not resume the session and a fresh one was opened, seeded
    #: with the conversation so far (``ReconnectPolicy.reseed``): the model has the text of the
    #: conversation, not its full state
    state_restored: bool = True
    #: turns of conversation the fresh session was seeded with (0 unless reseeded)
    reseeded_turns: int = 0
    #: requests among the replayed messages whose reply had already come, complete, on the
    #: old connection (the connection ended before a handle covered them): the model answers
    #: each again, so the next this many replies repeat ones you have received
    answered_again: int = 0
    #: ids of the tool calls the old connection made after the handle the session resumed
    #: with: the resumed session never made them, so no response to them is sent (none
    #: replayed, none written later; a tool still running for one is cancelled by
    #: ``run_tools``). The model calls again if it still needs the tool
    withdrawn_calls: tuple[str, ...] = ()


# --- actions ----------------------------------------------------------------------------


@attrs.frozen
class HoldSends:
    """Close the send gate: queued messages wait."""


@attrs.frozen
class ReleaseSends:
    """Open the send gate."""


@attrs.frozen
class StopConnection:
    """Close the current connection; ``wait`` says whether the dial must wait for it."""

    wait: bool = True


@attrs.frozen
class Dial:
    """After ``delay`` seconds, take a connection for the session and send ``setup`` on it."""

    setup: Setup
    delay: float
    attempt: int


@attrs.frozen
class Replay:
    """Put these messages, in order, ahead of everything queued."""

    items: tuple[Outgoing, ...]


@attrs.frozen
class Emit:
    """Deliver this event to the application, after what the old connection delivered."""

    event: SessionResumed


@attrs.frozen
class Fail:
    """The session is over with this error.

    *unconfirmed*: messages written on the lost connection that may not have been consumed
    (see :meth:`Session.unconfirmed`), for the application to learn of as unsent.
    """

    error: GeminiWSError
    unconfirmed: tuple[Outgoing, ...] = ()


@attrs.frozen
class SetTimer:
    """Call :meth:`Session.deadline` at (or after) this time."""

    at: float


Action = HoldSends | ReleaseSends | StopConnection | Dial | Replay | Emit | Fail | SetTimer


@attrs.define(eq=False)
class Outgoing:
    """One client message on its way: encoded once, numbered when first written.

    An audio chunk (``audio``: its checked PCM and sample rate) is sent from its text alone:
    its :attr:`message` is built only when something asks for it (an observer, the list of
    unsent messages), not on the hot path of a voice app, once every 20-40 ms per stream.
    """

    _message: ClientMessage | None = attrs.field(alias="message")
    text: str
    #: position in the whole stream (1-based), assigned when first written
    seq: int = 0
    #: position on the connection it was last written on (``setup`` is 0)
    index: int = 0
    #: the history a reseeded session starts with (never replayed, never remembered)
    seed: bool = False
    #: for an audio chunk: its PCM and sample rate (then ``message`` may be None)
    audio: tuple[bytes, int] | None = None
    #: media first written inside an explicit user activity (after ``activityStart``, before
    #: its ``activityEnd``): covered only by that activity's answer, never by a turn end
    in_activity: bool = False

    @property
    def message(self) -> ClientMessage:
        """The message (an audio chunk's is built on first use)."""
        message = self._message
        if message is None:
            assert self.audio is not None
            pcm, rate = self.audio
            message = self._message = audio_chunk(pcm, rate)
        return message

    @property
    def size(self) -> int:
        """The size the queues weigh it with."""
        return len(self.text)


def _is_media(item: Outgoing) -> bool:
    """Whether *item* is streamed media: an audio chunk, or realtime audio or video."""
    if item.audio is not None:
        return True
    message = item.message
    return isinstance(message, RealtimeInput) and (
        message.audio is not None or message.video is not None or bool(message.media_chunks)
    )


def is_request(message: ClientMessage) -> bool:
    """Whether *message* asks the model for a turn of its own (see the module docstring)."""
    if isinstance(message, ClientContent):
        return bool(message.turn_complete)
    if isinstance(message, RealtimeInput):
        return bool(message.text) or message.activity_end is not None
    return False


def resumable_error(error: GeminiWSError, after_go_away: bool) -> bool:
    """Whether a session may be resumed after *error* (a drop, not a refusal)."""
    if isinstance(error, ConnectionLostError):
        return True
    if isinstance(error, ServerClosedError) and not isinstance(error, SetupRejectedError):
        if error.code in (1000, 1001, 1011, 1012, 1013, 1014):
            return True
        return after_go_away and error.code == 1008
    return False


@attrs.define
class _Handover:
    reason: str
    deadline: float = math.inf
    setup: Setup | None = None
    error: GeminiWSError | None = None
    started_at: float = 0.0
    attempt: int = 0
    interrupted: bool = False
    #: set once the handover completed (reconfigure waits for it)
    result: SessionResumed | None = None
    #: set when a reconfigure had to be given up (no handle came)
    failed: GeminiWSError | None = None
    #: the handover opens a fresh session seeded with the history (the resume was refused)
    reseed: bool = False


@attrs.define
class _Link:
    """What the session knows about its current connection."""

    generation: int
    index: int = 0
    pending: deque[Outgoing] = attrs.Factory(deque)
    #: the newest seq whose write completed on this connection
    written_seq: int = 0
    #: the newest seq known consumed because a request at or after it was answered
    evidence_seq: int = 0
    #: the newest seq whose write had completed when the last turn end (``turnComplete``,
    #: ``interrupted``) arrived: media and blocking calls' responses up to it count as read
    turn_end_seq: int = 0
    #: a final turnComplete arrived and its handle has not yet
    handle_due: bool = False
    #: the model is generating (content, a tool call, a non-resumable update)
    turn_open: bool = False
    #: a turnComplete came while the server reported IN_PROGRESS: answer on IDLE
    answer_deferred: bool = False
    in_progress: bool = False
    #: seq of the message being written, 0 when none
    in_flight: Outgoing | None = None
    #: the write that was in flight when the connection was reported lost
    lost_in_flight: Outgoing | None = None
    go_away: bool = False
    #: ids of the tool calls received since the newest handle (not in its snapshot)
    calls: set[str] = attrs.Factory(set)


class Session:
    """The state of one Live session across its connections (no I/O; see module docstring).

    *policy* ``None`` means no resumption: every connection loss fails the session.
    """

    def __init__(self, setup: Setup, policy: ReconnectPolicy | None) -> None:
        self.setup = setup
        self.policy = policy
        self.phase = Phase.SETUP
        self.error: GeminiWSError | None = None
        self.handle: str | None = (
            setup.session_resumption.handle if setup.session_resumption is not None else None
        )
        #: the newest seq the newest handle covers (every message up to it; a later one may
        #: be covered too, see rule 3)
        self.covered_seq = 0
        self._seq = 0
        #: an activityStart was written and its activityEnd not yet (see _follow_activity)
        self._activity_open = False
        self._log: deque[Outgoing] = deque()
        self._log_bytes = 0
        #: tool calls a resume withdrew (see SessionResumed.withdrawn_calls), until the model
        #: makes one of them again
        self.withdrawn_calls: set[str] = set()
        self.replay_dropped = 0
        self._dropped_since_handover = 0
        self._link = _Link(generation=0)
        self._handover: _Handover | None = None
        self._closing = False
        self.handovers: list[SessionResumed] = []
        self.turns_completed = 0
        #: the conversation so far, for a reseed: (seq of the last client message it follows,
        #: role, text), oldest first, bounded by ``policy.history_chars``
        self.history: deque[tuple[int, str, str]] = deque()
        self._history_chars = 0
        self._model_text: list[str] = []
        self._heard: list[str] = []
        self._remembered_seq = 0

    # --- queries -------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """Which connection the session is on (events about older ones are ignored)."""
        return self._link.generation

    @property
    def holding(self) -> bool:
        """True exactly in the phases that hold sends."""
        return self.phase in HOLDING

    @property
    def replay_log(self) -> tuple[Outgoing, ...]:
        """Messages written and not known to be covered by the newest handle, oldest first."""
        return tuple(self._log)

    def unconfirmed(self) -> tuple[Outgoing, ...]:
        """Messages written that may not have been consumed, oldest first: the newest handle
        does not cover them (a resume restores a state without them) and nothing the server
        sent since (an answer, a ``turnComplete`` after them) shows they arrived."""
        return tuple(item for item in self._log if not self._known_read(item))

    def _known_read(self, item: Outgoing) -> bool:
        """Whether what the server sent shows it read *item* on the current connection (rules
        2 and 3 of the module docstring)."""
        link = self._link
        if item.seq <= link.evidence_seq:
            return True
        return item.seq <= link.turn_end_seq and self._read_by_turn_end(item)

    def _read_by_turn_end(self, item: Outgoing) -> bool:
        """Whether a turn end that arrived after *item*'s write shows it read (rule 3): for
        streamed media outside an explicit activity, and for responses to calls the model
        waits for."""
        if item.in_activity:
            return False  # (the activity's answer covers it)
        if _is_media(item):
            return True
        message = item.message
        if isinstance(message, ToolResponse):
            # (a function the setup does not declare: its behaviour is unknown)
            return bool(message.function_responses) and all(
                blocking_function(self.setup, response.name, undeclared=False)
                for response in message.function_responses
            )
        return False

    @property
    def in_flight(self) -> Outgoing | None:
        """The message being written now, if any."""
        return self._link.in_flight

    @property
    def pending_handover(self) -> _Handover | None:
        """The handover wanted or under way, if any (reconfigure() waits on its result)."""
        return self._handover

    def _require(self, allowed: frozenset[Phase] | set[Phase], event: str) -> None:
        if self.phase not in allowed:
            raise SessionStateError(f"{event} is not allowed in phase {self.phase.value}")

    # --- connection lifetime -------------------------------------------------------------
    def setup_complete(self) -> list[Action]:
        """The first connection answered ``setupComplete``."""
        self._require({Phase.SETUP}, "setup_complete")
        self.phase = Phase.OPEN
        return []

    def close_requested(self) -> list[Action]:
        """The application left the block: flush what is queued, then close."""
        if self.phase in ENDED:
            return []
        self._closing = True
        if self.phase in (Phase.DRAINING, Phase.QUIET):
            # flush on this connection; a drop while flushing still resumes
            self._handover = None
            self.phase = Phase.CLOSING
            return [ReleaseSends()]
        if self.phase is not Phase.RESUMING:
            self.phase = Phase.CLOSING
        return []

    def closed(self) -> list[Action]:
        """The session ended normally (after the close handshake)."""
        if self.phase not in ENDED:
            self.phase = Phase.CLOSED
        return []

    def fail(self, error: GeminiWSError, *, lost: bool = False) -> list[Action]:
        """End the session with *error* (the first error wins); *lost*: it ends because its
        connection was lost (then what may not have arrived is reported with it)."""
        if self.phase in ENDED:
            return []
        unconfirmed = self.unconfirmed() if lost else ()
        self.phase = Phase.FAILED
        self.error = error
        self._handover = None
        return [Fail(error, unconfirmed)]

    # --- writes --------------------------------------------------------------------------
    def write_started(self, item: Outgoing, generation: int) -> list[Action]:
        """The sender is about to write *item* on connection *generation*."""
        if generation != self._link.generation:
            raise SessionStateError("write on a connection the session has left")
        self._require(WRITABLE, "write_started")
        link = self._link
        if link.in_flight is not None:
            raise SessionStateError("two writes at once")
        if item.seq == 0:
            self._seq += 1
            item.seq = self._seq
            self._note_activity(item)
        link.index += 1
        item.index = link.index
        link.in_flight = item
        if item.audio is None and is_request(item.message):  # (audio never asks for a turn)
            link.pending.append(item)
        return []

    def without_withdrawn(self, item: Outgoing) -> Outgoing | None:
        """*item* with its responses to withdrawn tool calls (see
        :attr:`SessionResumed.withdrawn_calls`) taken out, in place (it stays the same item:
        its number, and the runner's record of it, hold); None when nothing is left to
        send. Only where its size is not counted: taken from the queue, or in the log being
        emptied by a resume."""
        message = item._message  # (an audio chunk's is never built here)
        withdrawn = self.withdrawn_calls
        if not withdrawn or not isinstance(message, ToolResponse):
            return item
        current = tuple(r for r in message.function_responses if r.id not in withdrawn)
        if len(current) == len(message.function_responses):
            return item
        if not current:
            return None
        item._message = attrs.evolve(message, function_responses=current)
        item.text = encode(item._message)
        return item

    def _note_activity(self, item: Outgoing) -> None:
        """Mark media first written inside an explicit user activity (push-to-talk; see
        :attr:`Outgoing.in_activity`)."""
        if _is_media(item):
            item.in_activity = self._activity_open

    def _follow_activity(self, item: Outgoing) -> None:
        """An activity marker was written (a whole write, first or replayed: a withdrawn
        ``activityEnd`` must not close the activity its audio goes on in)."""
        if item.audio is not None:
            return
        message = item.message
        if isinstance(message, RealtimeInput):
            if message.activity_start is not None:
                self._activity_open = True
            if message.activity_end is not None:
                self._activity_open = False

    def write_done(self, item: Outgoing, generation: int) -> list[Action]:
        """The write of *item* returned."""
        self._follow_activity(item)  # (on a connection since left too: it went out)
        if generation != self._link.generation:
            return []
        link = self._link
        if link.in_flight is not item:
            if link.lost_in_flight is item:
                link.lost_in_flight = None
                return []  # written to a connection already reported lost: still unsure
            raise SessionStateError("write_done for a message not being written")
        link.in_flight = None
        link.written_seq = max(link.written_seq, item.seq)
        if self.policy is not None and item.seq > self.covered_seq and not item.seed:
            self._keep(item)
        if self.policy is not None and self.policy.reseed and not item.seed:
            self._remember_sent(item)
        return self._progress()

    # --- the conversation, for a reseed ------------------------------------------------------
    def _remember(self, seq: int, role: str, text: str) -> None:
        assert self.policy is not None
        if not text:
            return
        self.history.append((seq, role, text))
        self._history_chars += len(text)
        while self._history_chars > self.policy.history_chars and len(self.history) > 1:
            self._history_chars -= len(self.history.popleft()[2])

    def _remember_sent(self, item: Outgoing) -> None:
        if item.seq <= self._remembered_seq or item.audio is not None:
            return  # a replay: already in the history; audio: not text history
        self._remembered_seq = item.seq
        message = item.message
        if isinstance(message, ClientContent):
            for turn in message.turns:
                text = "".join(part.text or "" for part in turn.parts if not part.thought)
                self._remember(item.seq, turn.role or "user", text)
        elif isinstance(message, RealtimeInput) and message.text:
            self._remember(item.seq, "user", message.text)

    def _remember_received(self, message: ServerContent, reply_done: bool) -> None:
        if message.input_transcription is not None and message.input_transcription.text:
            self._heard.append(message.input_transcription.text)
        if message.model_turn is not None:
            self._model_text.extend(
                part.text for part in message.model_turn.parts if part.text and not part.thought
            )
        elif message.output_transcription is not None and message.output_transcription.text:
            self._model_text.append(message.output_transcription.text)
        if message.interrupted:
            self._model_text.clear()  # cut off: the model did not say the rest
        if reply_done:
            seq = self._link.written_seq
            self._remember(seq, "user", "".join(self._heard).strip())
            self._remember(seq, "model", "".join(self._model_text).strip())
            self._heard.clear()
            self._model_text.clear()

    def _seed_contents(self) -> tuple[Content, ...]:
        """The conversation a fresh session is seeded with: what the newest handle covered
        (what follows it is replayed, and answered again)."""
        contents: list[Content] = []
        for seq, role, text in self.history:
            if seq > self.covered_seq:
                break
            if contents and contents[-1].role == role:  # one content per speaker change
                previous = contents[-1].parts[0].text or ""
                contents[-1] = Content(parts=(Part(text=f"{previous}\n{text}"),), role=role)
            else:
                contents.append(Content(parts=(Part(text=text),), role=role))
        return tuple(contents)

    def write_withdrawn(self, item: Outgoing, generation: int) -> list[Action]:
        """The write of *item* was cancelled by its caller before any byte of it was written:
        as if it had never been sent (nothing is kept for replay)."""
        if generation != self._link.generation:
            return []
        link = self._link
        if link.in_flight is item:
            link.in_flight = None
            link.index -= 1  # the server never saw it: the next message takes its index
        if item in link.pending:
            link.pending.remove(item)
        return self._progress()

    def write_failed(self, item: Outgoing, generation: int) -> list[Action]:
        """The write of *item* did not complete (the connection broke or was stopped). It is
        not known to have arrived: it is kept for replay (or reported unsent without
        resumption). The connection's end is reported separately."""
        if generation != self._link.generation:
            return []
        link = self._link
        if link.in_flight is item:
            link.in_flight = None
        if item in link.pending:
            link.pending.remove(item)
        if self.policy is not None and item.seq > self.covered_seq and item not in self._log:
            self._keep(item)
        return []

    def _keep(self, item: Outgoing) -> None:
        assert self.policy is not None
        self._log.append(item)
        self._log_bytes += item.size
        while self._log_bytes > self.policy.replay_buffer_bytes and len(self._log) > 1:
            old = self._log.popleft()
            self._log_bytes -= old.size
            self.replay_dropped += 1
            self._dropped_since_handover += 1

    def _forget_covered(self) -> None:
        while self._log and self._log[0].seq <= self.covered_seq:
            self._log_bytes -= self._log.popleft().size

    # --- server messages -----------------------------------------------------------------
    def server_message(
        self, message: ServerMessage, generation: int, now: float
    ) -> list[Action]:
        """A message arrived on connection *generation* (before it is delivered)."""
        if generation != self._link.generation or self.phase in ENDED:
            return []
        link = self._link
        actions: list[Action] = []
        if isinstance(message, ServerContent):
            if message.interaction_status is not None:
                status = str(message.interaction_status).upper()
                link.in_progress = status == "IN_PROGRESS"
            if self.policy is not None and self.policy.reseed:
                self._remember_received(
                    message,
                    reply_done=(
                        bool(message.turn_complete)
                        and (not link.in_progress or message.waiting_for_input)
                    )
                    or (link.answer_deferred and not link.in_progress),
                )
            if message.turn_complete:
                self.turns_completed += 1
                link.turn_end_seq = link.written_seq
                if link.in_progress and not message.waiting_for_input:
                    link.answer_deferred = True
                else:
                    self._answer()
                    link.turn_open = False
                if self.policy is not None:
                    link.handle_due = True
            elif message.interrupted:
                link.turn_end_seq = link.written_seq
            elif message.model_turn is not None or message.output_transcription is not None:
                link.turn_open = True
            if (message.waiting_for_input or not link.in_progress) and link.answer_deferred:
                self._answer()
                link.turn_open = False
        elif isinstance(message, ToolCall):
            link.turn_open = True
            for call in message.function_calls:
                if call.id:
                    link.calls.add(call.id)
                    self.withdrawn_calls.discard(call.id)  # made again, under the same id
        elif isinstance(message, SessionResumptionUpdate):
            if message.resumable and message.new_handle:
                self._new_handle(message.new_handle, message.last_consumed_client_message_index)
            elif not message.resumable:
                link.turn_open = True
        elif isinstance(message, GoAway):
            link.go_away = True
            if self.policy is not None and self.phase is Phase.OPEN and not self._closing:
                time_left = message.time_left.total_seconds()
                margin = min(self.policy.go_away_margin, time_left / 2)
                deadline = now + max(0.0, time_left - margin)
                self._handover = _Handover("go_away", deadline=deadline)
                self.phase = Phase.DRAINING
                actions.append(SetTimer(deadline))
        actions.extend(self._progress(now))
        return actions

    def _answer(self) -> None:
        link = self._link
        link.answer_deferred = False
        if link.pending:
            answered = link.pending.popleft()
            link.evidence_seq = max(link.evidence_seq, answered.seq)

    def _new_handle(self, handle: str, last_consumed: int | None) -> None:
        link = self._link
        self.handle = handle
        link.handle_due = False
        link.calls.clear()  # (every call received so far is in this snapshot)
        if not link.pending:
            link.turn_open = False  # a resumable point: the model is idle
        if self.policy is None:
            return
        if last_consumed is not None:
            covered = self.covered_seq
            for item in self._log:
                if item.index <= last_consumed and item.seq > covered:
                    covered = item.seq
            in_flight = link.in_flight
            if in_flight is not None and in_flight.index <= last_consumed:
                covered = max(covered, in_flight.seq)
        else:
            # rules 2 and 3: what the server shows it read, short of a request still waiting
            # for its answer (the snapshot was taken while the model was idle)
            limit = (
                link.pending[0].seq - 1
                if link.pending
                else max(link.written_seq, link.evidence_seq)  # (a reply can beat its write)
            )
            kept: deque[Outgoing] = deque()
            for item in self._log:
                if item.seq <= limit and self._known_read(item):
                    self._log_bytes -= item.size
                else:
                    kept.append(item)
            self._log = kept
            # the prefix: every message before the oldest one still kept
            covered = min(limit, kept[0].seq - 1) if kept else limit
        self.covered_seq = max(self.covered_seq, covered)
        self._forget_covered()

    # --- handovers -----------------------------------------------------------------------
    def reconfigure(self, setup: Setup, now: float) -> list[Action]:
        """The application asked for a new configuration: hand over at the next quiet moment
        with *setup* (its resumption handle is filled in at the dial)."""
        if self.policy is None:
            raise ConfigurationError(
                "reconfigure() needs session resumption: open the stream with reconnect=True"
            )
        self._require({Phase.OPEN}, "reconfigure")
        link = self._link
        if self.handle is None and not (link.handle_due or link.pending or link.turn_open):
            raise ConfigurationError(
                "reconfigure() needs a resumption handle, and the server has not sent one yet "
                "(it sends them after model turns)"
            )
        self._handover = _Handover("reconfigure", setup=setup)
        self.phase = Phase.DRAINING
        return self._progress(now)

    def deadline(self, now: float) -> list[Action]:
        """A timer set by :class:`SetTimer` fired."""
        return self._progress(now)

    def _progress(self, now: float = -math.inf) -> list[Action]:
        """Move a wanted handover on: hold at the quiet moment, start it when quiet enough."""
        handover = self._handover
        if handover is None or self.phase not in (Phase.DRAINING, Phase.QUIET):
            return []
        link = self._link
        actions: list[Action] = []
        busy = bool(link.pending) or link.turn_open
        if now >= handover.deadline:
            if self.handle is None:
                return self._give_up_handover()
            handover.interrupted = busy or link.in_flight is not None
            if link.in_flight is not None:
                # the write in flight is replayed if the handle does not cover it
                self._keep_unsure(link.in_flight)
            return actions + self._begin(handover, now)
        if busy:
            if self.phase is Phase.QUIET:
                self.phase = Phase.DRAINING
                actions.append(ReleaseSends())
            return actions
        if self.phase is Phase.DRAINING:
            self.phase = Phase.QUIET
            actions.append(HoldSends())
        if link.in_flight is not None or link.handle_due:
            return actions  # wait for the write, or for the handle after the last turn
        if self.handle is None:
            return actions + self._give_up_handover()
        return actions + self._begin(handover, now)

    def _give_up_handover(self) -> list[Action]:
        """Nothing to resume with: a goAway stays a plain message (the connection ends)."""
        handover = self._handover
        self._handover = None
        if handover is not None and handover.reason == "reconfigure":
            handover.failed = ConfigurationError(
                "reconfigure() needs a resumption handle, and the server sent none after the "
                "last turn (is session resumption refused?)"
            )
        was_holding = self.phase is Phase.QUIET
        self.phase = Phase.OPEN
        return [ReleaseSends()] if was_holding else []

    def _keep_unsure(self, item: Outgoing) -> None:
        if self.policy is not None and item.seq > self.covered_seq and item not in self._log:
            self._keep(item)

    def _begin(self, handover: _Handover, now: float) -> list[Action]:
        assert self.policy is not None
        handover.started_at = now if now > -math.inf else handover.started_at
        handover.attempt = 1
        self.phase = Phase.RESUMING
        return [
            HoldSends(),
            StopConnection(wait=self.policy.close_old_first),
            Dial(self._resume_setup(handover), self.policy.backoff(1), 1),
        ]

    def _resume_setup(self, handover: _Handover) -> Setup:
        base = handover.setup or self.setup
        transparent = (
            base.session_resumption.transparent if base.session_resumption is not None else None
        )
        return attrs.evolve(
            base,
            session_resumption=SessionResumptionConfig(handle=self.handle, transparent=transparent),
        )

    def _fresh_setup(self, handover: _Handover) -> Setup:
        """The setup of a fresh session to seed with the history (no handle)."""
        base = handover.setup or self.setup
        transparent = (
            base.session_resumption.transparent if base.session_resumption is not None else None
        )
        history = base.history_config
        if traits_of(base.model).text_as_realtime_input:
            # 3.x models take clientContent only as initial history, announced in the setup
            history = HistoryConfig(initial_history_in_client_content=True)
        return attrs.evolve(
            base,
            session_resumption=SessionResumptionConfig(transparent=transparent),
            history_config=history,
        )

    def connection_lost(
        self, error: GeminiWSError, generation: int, now: float
    ) -> list[Action]:
        """Connection *generation* ended with *error* (not one we stopped on purpose)."""
        if generation != self._link.generation or self.phase in ENDED:
            return []
        if self.phase is Phase.RESUMING:
            return []  # the old connection ending during the handover is expected
        link = self._link
        if link.in_flight is not None:
            self._keep_unsure(link.in_flight)
            # its write may still return (the bytes reached the kernel before the end was
            # seen): that write_done is expected, and changes nothing
            link.lost_in_flight = link.in_flight
            link.in_flight = None
        no_handle = self.handle is None and not (self.policy is not None and self.policy.reseed)
        if (
            self.policy is None
            or no_handle
            or self.phase is Phase.SETUP
            or not resumable_error(error, link.go_away)
        ):
            return self.fail(error, lost=True)
        handover = self._handover
        if handover is None or handover.reason != "reconfigure":
            # a reconfigure under way keeps its setup (and its waiter); a goAway becomes a drop
            handover = _Handover("connection_lost")
        handover.error = error
        handover.started_at = now
        handover.interrupted = bool(link.pending) or link.turn_open
        self._handover = handover
        handover.attempt = 1
        self.phase = Phase.RESUMING
        handover.reseed = self.handle is None  # nothing to resume with: start afresh
        setup = self._fresh_setup(handover) if handover.reseed else self._resume_setup(handover)
        return [HoldSends(), StopConnection(wait=True), Dial(setup, 0.0, 1)]

    def dial_failed(self, error: GeminiWSError, now: float) -> list[Action]:
        """The dial (or the resuming setup) failed with *error*."""
        self._require({Phase.RESUMING}, "dial_failed")
        handover = self._handover
        assert handover is not None and self.policy is not None
        refused = isinstance(error, SetupRejectedError) and error.code in (1007, 1008)
        if refused and self.policy.reseed and not handover.reseed:
            # the handle is refused (expired, unknown): a fresh session, seeded with the
            # conversation so far
            handover.reseed = True
            handover.error = handover.error or error
            handover.attempt += 1
            return [Dial(self._fresh_setup(handover), 0.0, handover.attempt)]
        if refused or handover.attempt >= self.policy.max_attempts:
            final = ConnectionLostError(
                f"the session could not be resumed after {handover.attempt} attempt(s): "
                f"{error}",
                resume_handle=self.handle,
            )
            final.__cause__ = error
            return self.fail(final, lost=True)
        handover.attempt += 1
        setup = self._fresh_setup(handover) if handover.reseed else self._resume_setup(handover)
        return [Dial(setup, self.policy.backoff(handover.attempt), handover.attempt)]

    def dial_succeeded(self, now: float, *, warm: bool) -> list[Action]:
        """The resuming setup was answered ``setupComplete`` on a new connection."""
        self._require({Phase.RESUMING}, "dial_succeeded")
        handover = self._handover
        assert handover is not None
        if handover.setup is not None:
            self.setup = attrs.evolve(handover.setup, session_resumption=attrs.evolve(
                handover.setup.session_resumption or SessionResumptionConfig(), handle=None
            ))
        withdrawn = set(self._link.calls)
        if handover.reseed:  # a fresh session made no call at all
            withdrawn.update(
                response.id
                for item in self._log
                if isinstance(item.message, ToolResponse)
                for response in item.message.function_responses
                if response.id
            )
        self.withdrawn_calls |= withdrawn
        replay = tuple(
            kept for kept in (self.without_withdrawn(item) for item in self._log) if kept
        )
        answered = self._link.evidence_seq
        answered_again = sum(
            1
            for item in replay
            if item.seq <= answered and item.audio is None and is_request(item.message)
        )
        self._log.clear()
        self._log_bytes = 0
        self._link = _Link(generation=self._link.generation + 1)
        seed: tuple[Content, ...] = ()
        if handover.reseed:
            seed = self._seed_contents()
            # the old session's handle is dead; the fresh session will send its own
            self.handle = None
            # what the handle did not cover is replayed, and remembered again when written
            self.history = deque(entry for entry in self.history if entry[0] <= self.covered_seq)
            self._history_chars = sum(len(entry[2]) for entry in self.history)
            self._remembered_seq = self.covered_seq
            self._heard.clear()
            self._model_text.clear()
        event = SessionResumed(
            reason=handover.reason,
            handle=self.handle or "",
            attempts=handover.attempt,
            gap=max(0.0, now - handover.started_at),
            replayed=len(replay),
            interrupted_turn=handover.interrupted,
            warm=warm,
            error=handover.error,
            replay_dropped=self._dropped_since_handover,
            state_restored=not handover.reseed,
            reseeded_turns=len(seed),
            answered_again=answered_again,
            withdrawn_calls=tuple(sorted(withdrawn)),
        )
        if seed:
            message = ClientContent(turns=seed, turn_complete=False)
            replay = (Outgoing(message, encode(message), seed=True), *replay)
        self._dropped_since_handover = 0
        handover.result = event
        self.handovers.append(event)
        self._handover = None
        self.phase = Phase.CLOSING if self._closing else Phase.OPEN
        actions: list[Action] = []
        if replay:
            actions.append(Replay(replay))
        actions += [Emit(event), ReleaseSends()]
        return actions
