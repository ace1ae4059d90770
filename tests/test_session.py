"""The session machine with no sockets: events in, phase and actions out (tables), and a
hypothesis state machine that drives it against a model server and checks the coverage rule
after every step."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gemini_ws import ConfigurationError, ConnectionLostError, ReconnectPolicy, ServerClosedError
from gemini_ws._session import (
    HOLDING,
    WRITABLE,
    Dial,
    Emit,
    Fail,
    HoldSends,
    Outgoing,
    Phase,
    ReleaseSends,
    Replay,
    Session,
    SessionStateError,
    SetTimer,
    StopConnection,
)
from gemini_ws._types import (
    ActivityEnd,
    ActivityStart,
    Behavior,
    Blob,
    ClientContent,
    Content,
    FunctionCall,
    FunctionDeclaration,
    FunctionResponse,
    GoAway,
    Part,
    RealtimeInput,
    ServerContent,
    SessionResumptionConfig,
    SessionResumptionUpdate,
    Setup,
    Tool,
    ToolCall,
    ToolResponse,
)

POLICY = ReconnectPolicy(initial_backoff=0.0, jitter=0.0, max_attempts=3)


def make_session(policy: ReconnectPolicy | None = POLICY) -> Session:
    session = Session(
        Setup(model="models/m", session_resumption=SessionResumptionConfig()), policy
    )
    session.setup_complete()
    return session


def turn(text: str) -> Outgoing:
    message = ClientContent(turns=(Content(parts=(Part(text=text),), role="user"),),
                            turn_complete=True)
    return Outgoing(message, text)


def audio_end() -> Outgoing:
    return Outgoing(RealtimeInput(audio_stream_end=True), "ase")


def write(session: Session, item: Outgoing) -> None:
    session.write_started(item, session.generation)
    session.write_done(item, session.generation)


def server(session: Session, message: object, now: float = 0.0) -> list[object]:
    return list(session.server_message(message, session.generation, now))  # type: ignore[arg-type]


TC = ServerContent(turn_complete=True)
CHUNK = ServerContent(model_turn=Content(parts=(Part(text="x"),), role="model"))


def handle(name: str) -> SessionResumptionUpdate:
    return SessionResumptionUpdate(new_handle=name, resumable=True)


def answer(session: Session, name: str) -> None:
    server(session, SessionResumptionUpdate(resumable=False))
    server(session, CHUNK)
    server(session, TC)
    server(session, handle(name))


# --- tables ----------------------------------------------------------------------------


def test_a_handle_covers_an_answered_turn_and_nothing_after_it() -> None:
    s = make_session()
    a, b = turn("a"), turn("b")
    write(s, a)
    answer(s, "h1")
    assert s.handle == "h1" and s.covered_seq == a.seq and s.replay_log == ()
    write(s, b)  # written after the handle: not covered
    assert s.replay_log == (b,)


def test_audio_stream_end_with_nothing_pending_never_shifts_coverage() -> None:
    # The first build paired every turn-ending message with a turnComplete: an
    # audioStreamEnd that started no turn left every later handle one turn behind.
    s = make_session()
    write(s, audio_end())
    a = turn("a")
    write(s, a)
    answer(s, "h1")
    assert s.covered_seq == a.seq and s.replay_log == ()
    b = turn("b")
    write(s, b)
    answer(s, "h2")
    assert s.covered_seq == b.seq and s.replay_log == ()


def test_a_reply_that_arrives_before_the_write_returns_still_counts() -> None:
    s = make_session()
    a = turn("a")
    s.write_started(a, s.generation)
    answer(s, "h1")  # the whole reply before write_done
    s.write_done(a, s.generation)
    assert s.covered_seq == a.seq and s.replay_log == ()


def test_only_media_and_blocking_calls_responses_count_as_read_at_a_turn_end() -> None:
    """Rule 3: a message that is no request, written before a turn end arrived, may still have
    been on its way to the server when it took the snapshot. Audio and the response to a call
    the model waits for count as read (the documented limit of continuous audio; the model
    cannot end a turn waiting for a response unread); a partial clientContent, a stream-end
    marker and the response to a non-blocking call wait for the request they precede, however
    long ago they were written."""
    tools = (Tool(function_declarations=(
        FunctionDeclaration(name="wait_for_me"),
        FunctionDeclaration(name="later", behavior=Behavior.NON_BLOCKING),
    )),)
    s = Session(Setup(model="models/gemini-2.5-flash-native-audio-preview-12-2025",
                      session_resumption=SessionResumptionConfig(), tools=tools), POLICY)
    s.setup_complete()

    def response(name: str) -> Outgoing:
        return Outgoing(ToolResponse(function_responses=(FunctionResponse(id="c", name=name),)),
                        name)

    question = turn("q")
    blocking, context = response("wait_for_me"), Outgoing(ClientContent(
        turns=(Content(parts=(Part(text="ctx"),), role="user"),), turn_complete=False), "ctx")
    chunk, end, non_blocking = Outgoing(None, "audio", audio=(b"\0\0", 16000)), audio_end(), \
        response("later")
    for item in (question, blocking, context, chunk, end, non_blocking):
        write(s, item)
    server(s, TC)
    server(s, handle("h1"))
    assert s.replay_log == (context, end, non_blocking) == s.unconfirmed()
    assert s.covered_seq == blocking.seq  # the prefix ends before the context
    server(s, handle("h2"), 60.0)  # however late a handle comes
    assert s.replay_log == (context, end, non_blocking)
    nxt = turn("next")
    write(s, nxt)
    answer(s, "h3")  # the request they preceded was answered
    assert s.replay_log == () and s.covered_seq == nxt.seq


def test_media_inside_an_explicit_activity_waits_for_its_answer() -> None:
    """Push-to-talk: audio (as a PCM chunk or as a built RealtimeInput) and video written after
    activityStart and before its activityEnd is covered by the activity's answer, never by a
    turn end that came meanwhile; audio outside an activity still is (rule 3)."""
    s = Session(Setup(model="models/gemini-2.5-flash-native-audio-preview-12-2025",
                      session_resumption=SessionResumptionConfig()), POLICY)
    s.setup_complete()
    question = turn("q")
    before = Outgoing(None, "before", audio=(b"\0\0", 16000))
    start = Outgoing(RealtimeInput(activity_start=ActivityStart()), "start")
    pcm = Outgoing(None, "pcm", audio=(b"\1\1", 16000))
    built = Outgoing(RealtimeInput(audio=Blob(data=b"\2\2", mime_type="audio/pcm;rate=16000")),
                     "built")
    frame = Outgoing(RealtimeInput(video=Blob(data=b"jpeg", mime_type="image/jpeg")), "frame")
    for item in (question, before, start, pcm, built, frame):
        write(s, item)
    server(s, TC)  # the previous reply ends while the user speaks
    server(s, handle("h1"))
    assert s.replay_log == (start, pcm, built, frame) == s.unconfirmed()
    assert [i.in_activity for i in (before, start, pcm, built, frame)] == [
        False, False, True, True, True]
    end = Outgoing(RealtimeInput(activity_end=ActivityEnd()), "end")
    after = Outgoing(None, "after", audio=(b"\3\3", 16000))
    write(s, end)
    write(s, after)
    answer(s, "h2")  # the activity was answered (and the audio after it: its turn ended)
    assert not after.in_activity
    assert s.replay_log == () and s.covered_seq >= end.seq


def test_a_withdrawn_activity_end_leaves_the_activity_open() -> None:
    """An ``activityEnd`` whose write was cancelled before any byte went out never reached the
    server: the audio the app goes on sending is still inside the activity (found by an
    independent server: it was counted read by a turn end and lost on a drop). A withdrawn
    ``activityStart`` opens nothing either."""
    s = Session(Setup(model="models/gemini-2.5-flash-native-audio-preview-12-2025",
                      session_resumption=SessionResumptionConfig()), POLICY)
    s.setup_complete()
    question = turn("q")
    start = Outgoing(RealtimeInput(activity_start=ActivityStart()), "start")
    a0, a1, a2 = (Outgoing(None, f"a{k}", audio=(bytes([k, k]), 16000)) for k in range(3))
    end = Outgoing(RealtimeInput(activity_end=ActivityEnd()), "end")
    write(s, question)
    write(s, start)
    write(s, a0)
    s.write_started(end, s.generation)
    s.write_withdrawn(end, s.generation)
    write(s, a1)
    write(s, a2)
    server(s, TC)
    server(s, handle("h1"))
    assert [i.in_activity for i in (a0, a1, a2)] == [True, True, True]
    assert s.replay_log == (start, a0, a1, a2)
    # a withdrawn activityStart: the audio after it is outside any activity
    end2 = Outgoing(RealtimeInput(activity_end=ActivityEnd()), "end2")
    write(s, end2)
    answer(s, "h2")
    start2 = Outgoing(RealtimeInput(activity_start=ActivityStart()), "start2")
    s.write_started(start2, s.generation)
    s.write_withdrawn(start2, s.generation)
    b0 = Outgoing(None, "b0", audio=(b"\4\4", 16000))
    write(s, b0)
    assert not b0.in_activity


def test_thinking_models_several_turn_completes_answer_once() -> None:
    s = make_session()
    a, b = turn("a"), turn("b")
    write(s, a)
    server(s, ServerContent(interaction_status="IN_PROGRESS"))
    server(s, TC)  # an intermediate turnComplete: more to come
    write(s, b)
    server(s, TC)
    server(s, handle("h-mid"))
    assert s.covered_seq < a.seq  # a not answered yet, b certainly not
    server(s, ServerContent(interaction_status="IDLE", turn_complete=True))
    server(s, handle("h1"))
    assert s.covered_seq == a.seq and s.replay_log == (b,)


def test_a_server_started_turn_answers_no_request() -> None:
    s = make_session()
    a = turn("a")
    s.write_started(a, s.generation)
    server(s, TC)  # a voice-activity turn finishing as a is written
    s.write_done(a, s.generation)
    server(s, TC)
    server(s, handle("h1"))
    assert s.covered_seq == a.seq


def test_transparent_index_decides_alone() -> None:
    s = make_session()
    a, b, c = turn("a"), turn("b"), turn("c")
    for item in (a, b, c):
        write(s, item)
    server(s, SessionResumptionUpdate(new_handle="h", resumable=True,
                                      last_consumed_client_message_index=2))
    assert s.covered_seq == b.seq and s.replay_log == (c,)


def test_go_away_while_idle_holds_sends_and_hands_over_at_once() -> None:
    s = make_session()
    a = turn("a")
    write(s, a)
    answer(s, "h1")
    actions = server(s, GoAway(time_left=datetime.timedelta(seconds=10)), now=100.0)
    assert s.phase is Phase.RESUMING
    assert any(isinstance(x, SetTimer) and x.at == pytest.approx(109.0) for x in actions)
    assert any(isinstance(x, HoldSends) for x in actions)
    assert any(isinstance(x, StopConnection) for x in actions)
    dial = next(x for x in actions if isinstance(x, Dial))
    assert dial.setup.session_resumption is not None
    assert dial.setup.session_resumption.handle == "h1"
    out = s.dial_succeeded(101.0, warm=True)
    assert s.phase is Phase.OPEN and not any(isinstance(x, Replay) for x in out)
    event = next(x.event for x in out if isinstance(x, Emit))
    assert event.reason == "go_away" and event.replayed == 0 and not event.interrupted_turn
    assert isinstance(out[-1], ReleaseSends)


def test_go_away_mid_turn_waits_for_the_turn_and_its_handle() -> None:
    s = make_session()
    a = turn("a")
    write(s, a)
    server(s, CHUNK)
    server(s, GoAway(time_left=datetime.timedelta(seconds=10)), now=0.0)
    assert s.phase is Phase.DRAINING and not s.holding  # a tool response may be needed
    server(s, TC)
    assert s.phase is Phase.QUIET and s.holding  # no new turn may start now
    out = server(s, handle("h1"))
    assert s.phase is Phase.RESUMING and any(isinstance(x, Dial) for x in out)
    resumed = next(x.event for x in s.dial_succeeded(1.0, warm=False) if isinstance(x, Emit))
    assert resumed.replayed == 0 and not resumed.interrupted_turn


def test_go_away_deadline_forces_the_handover_and_replays_the_uncovered() -> None:
    s = make_session()
    a, b = turn("a"), turn("b")
    write(s, a)
    answer(s, "h1")
    write(s, b)
    server(s, CHUNK)
    server(s, GoAway(time_left=datetime.timedelta(seconds=0.5)), now=0.0)
    assert s.phase is Phase.DRAINING
    assert s.deadline(0.1) == []
    out = s.deadline(0.3)
    assert s.phase is Phase.RESUMING and any(isinstance(x, Dial) for x in out)
    done = s.dial_succeeded(0.4, warm=False)
    replay = next(x for x in done if isinstance(x, Replay))
    assert replay.items == (b,)
    assert next(x.event for x in done if isinstance(x, Emit)).interrupted_turn


def test_a_resumable_drop_redials_and_replays_the_write_in_flight() -> None:
    s = make_session()
    a, b = turn("a"), turn("b")
    write(s, a)
    answer(s, "h1")
    s.write_started(b, s.generation)
    out = s.connection_lost(ConnectionLostError("drop"), s.generation, 5.0)
    assert s.phase is Phase.RESUMING
    assert [type(x) for x in out] == [HoldSends, StopConnection, Dial]
    retry = s.dial_failed(ConnectionLostError("again"), 5.1)
    assert isinstance(retry[0], Dial) and retry[0].attempt == 2
    done = s.dial_succeeded(5.2, warm=False)
    assert next(x for x in done if isinstance(x, Replay)).items == (b,)


@pytest.mark.parametrize("then_asked", [False, True])
def test_a_reply_received_before_its_handle_is_counted_as_answered_again(then_asked: bool) -> None:
    """The connection drops after b's reply came complete but before the handle that covers
    it: the resume restores the state of h1, b is replayed, and the model answers it again.
    SessionResumed says so (answered_again). No reply was cut off, so interrupted_turn is
    False unless c, asked after b's reply, was waiting for its answer (replayed, not counted)."""
    s = make_session()
    a, b, c = turn("a"), turn("b"), turn("c")
    write(s, a)
    answer(s, "h1")
    write(s, b)
    server(s, SessionResumptionUpdate(resumable=False))
    server(s, CHUNK)
    server(s, TC)  # b's reply is complete; its handle never comes
    if then_asked:
        write(s, c)
    s.connection_lost(ConnectionLostError("drop"), s.generation, 5.0)
    done = s.dial_succeeded(5.2, warm=False)
    replayed = (b, c) if then_asked else (b,)
    assert next(x for x in done if isinstance(x, Replay)).items == replayed
    resumed = next(x.event for x in done if isinstance(x, Emit))
    assert (resumed.answered_again, resumed.interrupted_turn) == (1, then_asked)


def test_calls_made_after_the_newest_handle_are_withdrawn_by_a_resume() -> None:
    """A resume restores the newest handle's state: a tool call received after that handle
    was never made there, so no response to it is replayed or written later (a response to
    several calls keeps the others'); a call received before the handle stays; the model
    making a withdrawn call again (same id) makes it current again."""
    s = make_session()

    def call(*ids: str) -> ToolCall:
        return ToolCall(function_calls=tuple(FunctionCall(id=i, name="f") for i in ids))

    def response(*ids: str) -> Outgoing:
        message = ToolResponse(function_responses=tuple(
            FunctionResponse(id=i, name="f", response={"ok": i}) for i in ids))
        return Outgoing(message, ",".join(ids))

    a = turn("a")
    write(s, a)
    server(s, call("old"))
    answer(s, "h1")
    b = turn("b")
    write(s, b)
    server(s, call("new1", "new2"))
    both, early = response("old", "new1"), response("new2")
    write(s, both)
    write(s, early)
    s.connection_lost(ConnectionLostError("drop"), s.generation, 5.0)
    done = s.dial_succeeded(5.2, warm=False)
    resumed = next(x.event for x in done if isinstance(x, Emit))
    assert resumed.withdrawn_calls == ("new1", "new2")
    replay = next(x for x in done if isinstance(x, Replay)).items
    assert [item.text for item in replay][:1] == ["b"] and len(replay) == 2
    trimmed = replay[1].message
    assert isinstance(trimmed, ToolResponse) and [r.id for r in trimmed.function_responses] == [
        "old"]
    assert replay[1].seq == both.seq
    late = response("new1")
    assert s.without_withdrawn(late) is None  # a tool that finished after the resume
    assert s.without_withdrawn(response("old")) is not None
    server(s, call("new1"))  # made again under the same id
    assert s.without_withdrawn(late) is late
    assert s.without_withdrawn(response("new2")) is None


def test_a_write_that_returns_after_its_connection_was_reported_lost_stays_unsure() -> None:
    """The bytes reached the kernel before the drop was seen (trio-websocket's own reader sees
    it first): the late write_done is expected, is not an error, and does not make the message
    count as delivered: it is still replayed."""
    s = make_session()
    a, b = turn("a"), turn("b")
    write(s, a)
    answer(s, "h1")
    gen = s.generation
    s.write_started(b, gen)
    s.connection_lost(ConnectionLostError("drop"), gen, 5.0)
    assert s.write_done(b, gen) == []
    done = s.dial_succeeded(5.2, warm=False)
    assert next(x for x in done if isinstance(x, Replay)).items == (b,)
    with pytest.raises(SessionStateError):
        s.write_done(turn("never started"), s.generation)


def test_an_unresumable_close_fails_and_exhausted_attempts_fail() -> None:
    s = make_session()
    write(s, turn("a"))
    answer(s, "h1")
    out = s.connection_lost(ServerClosedError(1007, "bad"), s.generation, 0.0)
    assert s.phase is Phase.FAILED and isinstance(out[0], Fail)
    s = make_session(ReconnectPolicy(max_attempts=1))
    write(s, turn("a"))
    answer(s, "h1")
    s.connection_lost(ConnectionLostError("drop"), s.generation, 0.0)
    out = s.dial_failed(ConnectionLostError("again"), 0.0)
    assert s.phase is Phase.FAILED and isinstance(out[0], Fail)
    assert isinstance(out[0].error, ConnectionLostError) and out[0].error.resume_handle == "h1"


def test_a_failure_from_a_drop_names_what_may_not_have_arrived() -> None:
    """Answered or covered: arrived. Written after the newest handle with no answer: unsure,
    reported with the failure. A failure that is not a drop reports nothing."""
    s = make_session(ReconnectPolicy(max_attempts=1))
    first, second, third = turn("a"), turn("b"), turn("c")
    write(s, first)
    answer(s, "h1")
    write(s, second)
    server(s, TC)  # b answered, its handle not yet in
    write(s, third)
    s.connection_lost(ConnectionLostError("drop"), s.generation, 0.0)
    out = s.dial_failed(ConnectionLostError("again"), 0.0)
    assert isinstance(out[0], Fail) and out[0].unconfirmed == (third,)
    s = make_session()
    write(s, turn("a"))
    out = s.fail(ConnectionLostError("the Client was closed"))
    assert isinstance(out[0], Fail) and out[0].unconfirmed == ()


def test_without_a_policy_every_drop_fails() -> None:
    s = make_session(None)
    write(s, turn("a"))
    out = s.connection_lost(ConnectionLostError("drop"), s.generation, 0.0)
    assert isinstance(out[0], Fail) and s.replay_log == ()


def test_events_are_refused_in_phases_that_forbid_them() -> None:
    s = make_session()
    write(s, turn("a"))
    answer(s, "h1")
    s.connection_lost(ConnectionLostError("drop"), s.generation, 0.0)
    with pytest.raises(SessionStateError):
        s.write_started(turn("b"), s.generation)
    with pytest.raises(SessionStateError):
        s.dial_succeeded(0.0, warm=False) and s.dial_succeeded(0.0, warm=False)
    with pytest.raises(ConfigurationError):
        make_session().reconfigure(Setup(model="models/m"), 0.0)  # no handle yet


def test_reconfigure_hands_over_with_the_new_setup() -> None:
    s = make_session()
    write(s, turn("a"))
    answer(s, "h1")
    new = Setup(model="models/m", session_resumption=SessionResumptionConfig())
    out = s.reconfigure(new, 0.0)
    dial = next(x for x in out if isinstance(x, Dial))
    assert dial.setup.session_resumption is not None
    assert dial.setup.session_resumption.handle == "h1"
    s.dial_succeeded(0.1, warm=False)
    assert s.phase is Phase.OPEN


def test_stale_events_from_an_old_connection_are_ignored() -> None:
    s = make_session()
    write(s, turn("a"))
    answer(s, "h1")
    old = s.generation
    s.connection_lost(ConnectionLostError("drop"), old, 0.0)
    s.dial_succeeded(0.0, warm=False)
    assert s.server_message(TC, old, 0.0) == []
    assert s.connection_lost(ConnectionLostError("late"), old, 0.0) == []


# --- the state machine against a model server ------------------------------------------


class ModelServer:
    """Consumes client messages in order; answers requests one at a time; issues a handle
    (a snapshot of what it consumed) after each final turnComplete, only while nothing waits
    for an answer; restores a snapshot on resume."""

    def __init__(self) -> None:
        self.consumed: list[int] = []  # seqs
        self.snapshots: dict[str, list[int]] = {}
        self.queue: list[tuple[int, bool]] = []  # (seq, is_request) in flight to the server
        self.unanswered: list[int] = []
        self.n = 0

    def read_all(self) -> None:
        for seq, request in self.queue:
            self.consumed.append(seq)
            if request:
                self.unanswered.append(seq)
        self.queue.clear()


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.session = make_session(ReconnectPolicy(max_attempts=50, replay_buffer_bytes=10**9))
        self.server = ModelServer()
        self.queue: list[Outgoing] = []  # what the app queued, not yet written
        self.now = 0.0
        self.used_handle: str | None = None
        self.all_items: list[Outgoing] = []
        self.gate_closed = False

    def apply(self, actions: Sequence[object]) -> None:
        s = self.session
        for action in actions:
            if isinstance(action, HoldSends):
                self.gate_closed = True
            if isinstance(action, ReleaseSends):
                self.gate_closed = False
            if isinstance(action, Replay):
                self.queue[:0] = list(action.items)
            if isinstance(action, Dial):
                assert s.phase is Phase.RESUMING
                # resume: the server restores the snapshot of the handle used
                self.server.queue.clear()
                self.server.unanswered.clear()
                handle = action.setup.session_resumption.handle  # type: ignore[union-attr]
                self.server.consumed = list(self.server.snapshots[handle])  # type: ignore[index]
                self.used_handle = handle
                self.apply(s.dial_succeeded(self.now, warm=False))

    @rule(request=st.booleans(), audio_end=st.booleans())
    def app_sends(self, request: bool, audio_end: bool) -> None:
        item = turn(f"t{len(self.all_items)}") if request else (
            Outgoing(RealtimeInput(audio_stream_end=True), "e") if audio_end
            else Outgoing(RealtimeInput(text=None), "audio")
        )
        self.all_items.append(item)
        self.queue.append(item)

    @precondition(lambda self: self.queue and self.session.phase in WRITABLE
                  and not self.gate_closed and self.session.in_flight is None)
    @rule(reply_first=st.booleans())
    def sender_writes(self, reply_first: bool) -> None:
        s = self.session
        item = self.queue.pop(0)
        self.apply(s.write_started(item, s.generation))
        self.server.queue.append((item.seq, item in self._requests()))
        if reply_first:
            self.server_reads_and_answers()
        if s.in_flight is item:
            self.apply(s.write_done(item, s.generation))

    @precondition(lambda self: self.queue and self.session.phase in WRITABLE
                  and not self.gate_closed and self.session.in_flight is None)
    @rule()
    def caller_write_withdrawn(self) -> None:
        """A write from the caller's task, cancelled before its first byte: never sent."""
        s = self.session
        item = self.queue.pop(0)
        self.apply(s.write_started(item, s.generation))
        self.apply(s.write_withdrawn(item, s.generation))
        self.all_items.remove(item)  # as if the app had never sent it

    def _requests(self) -> list[Outgoing]:
        return [i for i in self.all_items if isinstance(i.message, ClientContent)]

    @rule()
    def server_reads_and_answers(self) -> None:
        srv, s = self.server, self.session
        if s.phase in (Phase.RESUMING, Phase.CLOSED, Phase.FAILED):
            return
        srv.read_all()
        if srv.unanswered:
            srv.unanswered.pop(0)
            self.apply(s.server_message(CHUNK, s.generation, self.now))
            self.apply(s.server_message(TC, s.generation, self.now))
            if not srv.unanswered and not srv.queue:
                srv.n += 1
                name = f"h{srv.n}"
                srv.snapshots[name] = list(srv.consumed)
                self.apply(s.server_message(handle(name), s.generation, self.now))

    @rule(left=st.sampled_from([0.0, 0.5, 10.0]))
    def go_away(self, left: float) -> None:
        s = self.session
        self.apply(s.server_message(GoAway(time_left=datetime.timedelta(seconds=left)),
                                    s.generation, self.now))

    @rule()
    def time_passes(self) -> None:
        self.now += 1.0
        self.apply(self.session.deadline(self.now))

    @rule(late_write=st.booleans())
    def drop(self, late_write: bool) -> None:
        s = self.session
        in_flight, generation = s.in_flight, s.generation
        if in_flight is not None and s.phase in WRITABLE and not late_write:
            self.apply(s.write_failed(in_flight, generation))
        self.apply(s.connection_lost(ConnectionLostError("drop"), generation, self.now))
        if in_flight is not None and late_write:
            # the write returns after the end was reported (its bytes reached the kernel)
            self.apply(s.write_done(in_flight, generation))

    @invariant()
    def gate_closed_exactly_when_holding(self) -> None:
        assert self.session.holding == (self.session.phase in HOLDING)
        assert self.gate_closed == self.session.holding, "the gate actions disagree with the phase"

    @invariant()
    def no_turn_duplicated_and_coverage_is_honest(self) -> None:
        s, srv = self.session, self.server
        # turns: never twice (audio written around a handle may be, by the documented bound)
        turns = {i.seq for i in self._requests() if i.seq}
        consumed = [seq for seq in srv.consumed if seq in turns]
        assert len(consumed) == len(set(consumed)), f"turn consumed twice: {consumed}"
        # everything the session believes covered by its handle is in that snapshot
        if s.handle is not None and s.handle in srv.snapshots:
            snapshot = set(srv.snapshots[s.handle])
            for item in self.all_items:
                if 0 < item.seq <= s.covered_seq and isinstance(item.message, ClientContent):
                    assert item.seq in snapshot, f"seq {item.seq} counted covered, not consumed"

    @invariant()
    def every_written_turn_is_consumed_kept_or_queued(self) -> None:
        s, srv = self.session, self.server
        if s.phase is Phase.FAILED:
            return
        known = set(srv.consumed) | {q for q, _ in srv.queue}
        kept = {i.seq for i in s.replay_log} | {i.seq for i in self.queue if i.seq}
        if s.in_flight is not None:
            kept.add(s.in_flight.seq)
        for item in self.all_items:
            if item.seq and isinstance(item.message, ClientContent):
                assert item.seq in known or item.seq in kept, f"turn {item.seq} lost"


TestSessionMachine = SessionMachine.TestCase
TestSessionMachine.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_an_audio_chunk_is_sent_from_its_text_and_builds_its_message_on_demand() -> None:
    """``send_audio`` hands the session an Outgoing with the audio's text and PCM only: the
    session numbers and records it without building the RealtimeInput (no turn, no history),
    and the message, when asked for (unsent lists, observers), is the one audio_chunk makes."""
    from gemini_ws._types import audio_chunk
    from gemini_ws._wire import encode, encode_audio

    pcm = bytes(range(200))
    item = Outgoing(None, encode_audio(pcm, 24000), audio=(pcm, 24000))
    s = make_session()
    gen = s.generation
    s.write_started(item, gen)
    assert item._message is None  # the hot path never built it
    s.write_done(item, gen)
    assert item._message is None and item.seq == 1
    assert not s.history  # audio is not text history
    assert item.message == audio_chunk(pcm, 24000)
    assert encode(item.message) == item.text
