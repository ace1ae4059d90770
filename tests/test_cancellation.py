"""Cancellation safety, systematically: the same scenario (connect, setup, send, receive, pause,
send while paused, resume, finish the turns) is run again and again, cancelled at the k-th step of
the task running it, for k = 1, 2, ... until a run finishes before its k-th step. A trio
Instrument counts the steps (every step of a task ends at a checkpoint), so every checkpoint of
the scenario gets its cancellation, not just the ones chance would pick.

Two ways to cancel: an outer cancel scope around the stream (what ``move_on_after`` does), and
``await s.cancel()`` from another task. After every run: no task of the stream and no client
socket is left, the fake server saw every connection closed, every message the application
queued was either received by the server or reported unsent, and a new stream on the same client
works.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

import gemini_ws
from gemini_ws import (
    Client,
    GoAway,
    LiveConfig,
    ReconnectPolicy,
    ServerContent,
    SessionResumed,
    SessionResumptionUpdate,
    StreamClosedError,
)
from gemini_ws.testing import open_fake_server

from .conftest import TEST_KEY, instrumented
from .test_fault_matrix import client_sockets, tasks_under, texts_of, texts_unsent

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])
MAX_STEPS = 400
#: after a cancelled handover, check that the client still opens a working stream every this
#: many runs (and whenever the state the cancel hit changes)
STILL_WORKS_EVERY = 4
PHASES = ("connect+setup", "send", "receive", "pause", "send paused", "resume", "turns")


class CancelAtStep(trio.abc.Instrument):
    """Calls *action* just before the *k*-th step of *task* (counting only while *counting*
    says so). *task* may also be a predicate: then the steps of every task it accepts count."""

    def __init__(
        self,
        task: trio.lowlevel.Task | Callable[[trio.lowlevel.Task], bool],
        k: int,
        action: Callable[[], None],
        counting: Callable[[], bool] = lambda: True,
    ) -> None:
        if isinstance(task, trio.lowlevel.Task):
            self.counts: Callable[[trio.lowlevel.Task], bool] = lambda t, only=task: t is only
        else:
            self.counts = task
        self.k = k
        self.action = action
        self.counting = counting
        self.steps = 0
        self.fired = False

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if not self.fired and self.counting() and self.counts(task):
            self.steps += 1
            if self.steps == self.k:
                self.fired = True
                self.action()


class Run:
    def __init__(self) -> None:
        self.phase = "connect+setup"
        self.phase_at_cancel: str | None = None
        self.stream: gemini_ws.LiveStream | None = None
        self.queued: list[str] = []
        self.completed = False


async def scenario(client: Client, run: Run) -> None:
    async with client.stream(MODEL, config=TEXT) as s:
        run.stream = s
        run.phase = "send"
        await s.send_text("one")
        run.queued.append("one")
        run.phase = "receive"
        await s.receive()
        run.phase = "pause"
        await s.pause()
        run.phase = "send paused"
        await s.send_text("two")
        run.queued.append("two")
        run.phase = "resume"
        await s.resume()
        run.phase = "turns"
        completes = 0
        while completes < 2:
            msg = await s.receive()
            if isinstance(msg, ServerContent) and msg.turn_complete:
                completes += 1
    run.completed = True


async def still_works(client: Client) -> None:
    with trio.fail_after(5):
        async with client.stream(MODEL, config=TEXT) as s:
            await s.send_text("after")
            text = "".join([m.text async for m in s.turn() if isinstance(m, ServerContent)])
    assert "after" in text


async def check_after(
    run: Run,
    server: Any,
    first_conn: int,
    sockets_before: int,
    client_nurseries: list[trio.Nursery],
    port: int,
) -> None:
    # nothing of the stream is left once its block is over
    assert tasks_under(client_nurseries) == 0, f"a task outlived the stream ({run.phase_at_cancel})"
    assert client_sockets(port) == sockets_before, f"a socket was left ({run.phase_at_cancel})"
    # the server saw every connection of this run closed
    conns = server.connections[first_conn:]
    with trio.fail_after(3):
        for conn in conns:
            await conn.wait_closed()
    if run.stream is not None:
        (conn,) = conns
        assert conn.close_code == 1000, (run.phase_at_cancel, conn.close_code)
        # every queued message was sent or reported unsent
        received = texts_of(conn.received)
        unsent = texts_unsent(run.stream.unsent)
        for text in run.queued:
            assert text in received or text in unsent, (run.phase_at_cancel, text)
    else:
        assert not run.queued


@pytest.mark.parametrize("how", ["outer_scope", "stream_cancel"])
async def test_cancel_at_every_step(how: str) -> None:
    phases_hit: set[str] = set()
    async with open_fake_server(api_key=TEST_KEY, chunk_count=3, close_timeout=0.2) as server:
        port = server.port
        here = trio.lowlevel.current_task()
        outer = set(here.child_nurseries)
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            client_nurseries = [n for n in here.child_nurseries if n not in outer]
            await trio.testing.wait_all_tasks_blocked()
            sockets_before = client_sockets(port)
            for k in range(1, MAX_STEPS):
                run = Run()
                first_conn = len(server.connections)
                with trio.fail_after(10):
                    if how == "outer_scope":
                        await cancel_by_scope(client, run, k)
                    else:
                        await cancel_by_stream(client, run, k)
                if run.phase_at_cancel is None:
                    assert run.completed
                    break
                phases_hit.add(run.phase_at_cancel)
                await check_after(run, server, first_conn, sockets_before, client_nurseries, port)
                await still_works(client)
            else:
                raise AssertionError(f"the scenario never finished within {MAX_STEPS} steps")
    assert k > 15, "the scenario has more checkpoints than that: the instrument missed them"
    expected = set(PHASES) if how == "outer_scope" else set(PHASES) - {"connect+setup"}
    assert phases_hit >= expected, f"cancelled in {sorted(phases_hit)} only"


Body = Callable[[], Awaitable[None]]


async def cancel_by_scope(
    client: Client,
    run: Run,
    k: int,
    body: Body | None = None,
    make_instrument: Callable[[int, Callable[[], None]], CancelAtStep] | None = None,
) -> None:
    with trio.CancelScope() as scope:

        def cancel() -> None:
            run.phase_at_cancel = run.phase
            scope.cancel()

        if make_instrument is None:
            instrument = CancelAtStep(trio.lowlevel.current_task(), k, cancel)
        else:
            instrument = make_instrument(k, cancel)
        with instrumented(instrument):
            await (body or (lambda: scenario(client, run)))()
    assert run.completed != scope.cancelled_caught
    if run.completed:
        run.phase_at_cancel = None  # the cancel came after the last checkpoint, or never
        return
    if run.stream is not None:
        with pytest.raises(StreamClosedError):
            await run.stream.send_text("later")


async def cancel_by_stream(
    client: Client,
    run: Run,
    k: int,
    body: Body | None = None,
    make_instrument: Callable[[int, Callable[[], None]], CancelAtStep] | None = None,
) -> None:
    go = trio.Event()
    unsent: list[tuple[Any, ...]] = []

    async def canceller() -> None:
        await go.wait()
        if run.stream is not None:
            unsent.append(await run.stream.cancel())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(canceller)

        def cancel() -> None:
            run.phase_at_cancel = run.phase
            go.set()

        if make_instrument is None:
            instrument = CancelAtStep(
                trio.lowlevel.current_task(), k, cancel, lambda: run.stream is not None
            )
        else:
            instrument = make_instrument(k, cancel)
        with instrumented(instrument):
            try:
                await (body or (lambda: scenario(client, run)))()
            except StreamClosedError:
                assert run.phase_at_cancel is not None, "StreamClosedError without a cancel"
            if not instrument.fired:
                nursery.cancel_scope.cancel()
    if not instrument.fired:
        assert run.completed
        run.phase_at_cancel = None
        return
    assert run.stream is not None and unsent
    # cancel() returns exactly what the stream reports unsent
    assert unsent[0] == run.stream.unsent
    if not run.completed:
        assert run.stream.state == "cancelled"


# --- cancellation during a goAway handover ------------------------------------------------------

HANDOVER_POLICY = ReconnectPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.02)
HANDOVER_PHASES = ("go_away", "send during", "await resumed")


class HandoverRun(Run):
    def __init__(self) -> None:
        super().__init__()
        self.go_away_sent = False
        #: the stream's state when the cancel fired: "open" (waiting for a quiet moment) or
        #: "resuming" (moving to the new connection)
        self.state_at_cancel: str | None = None

    def in_handover(self) -> bool:
        """From the goAway until the stream has moved (its SessionResumed event exists)."""
        return self.go_away_sent and self.stream is not None and not self.stream.handovers


async def handover_scenario(client: Client, server: Any, run: HandoverRun) -> None:
    async with client.stream(MODEL, config=TEXT, reconnect=HANDOVER_POLICY) as s:
        run.stream = s
        run.phase = "first turn"
        await s.send_text("one")
        run.queued.append("one")
        while True:  # until the handle taken after the turn
            msg = await s.receive()
            if isinstance(msg, SessionResumptionUpdate) and msg.new_handle:
                break
        run.phase = "go_away"
        server.connections[-1].go_away(1.0)
        run.go_away_sent = True
        while not isinstance(await s.receive(), GoAway):
            pass
        while s.state == "open" and not s.handovers:
            await trio.sleep(0)
        run.phase = "send during"
        await s.send_text("during")
        run.queued.append("during")
        run.phase = "await resumed"
        while not isinstance(await s.receive(), SessionResumed):
            pass
        run.phase = "reply"
        text = "".join([m.text async for m in s.turn() if isinstance(m, ServerContent)])
        assert text == "You said: during"
    run.completed = True


def client_side(client_nursery: trio.Nursery, app: trio.lowlevel.Task) -> Callable[..., bool]:
    """A predicate: the task is the application's, or lives under the client's nursery (the
    stream's supervisor, sender and receiver, connections and their readers)."""

    def accepts(task: trio.lowlevel.Task) -> bool:
        while True:
            if task is app:
                return True
            nursery = task.parent_nursery
            if nursery is None:
                return False
            if nursery is client_nursery:
                return True
            task = nursery.parent_task

    return accepts


async def check_after_handover(
    run: HandoverRun,
    client: Client,
    server: Any,
    first_conn: int,
    sockets_before: int,
    client_nurseries: list[trio.Nursery],
    port: int,
) -> None:
    where = (run.phase_at_cancel, run.state_at_cancel)
    assert tasks_under(client_nurseries) == 0, f"a task outlived the stream {where}"
    assert client_sockets(port) == sockets_before, f"a socket was left {where}"
    stats = client.pool.statistics()
    assert (stats.active, stats.idle, stats.connecting, stats.waiting) == (0, 0, 0, 0), where
    conns = server.connections[first_conn:]
    with trio.fail_after(3):
        for conn in conns:
            await conn.wait_closed()
    for conn in conns:
        if conn.setup is not None:  # a session ran on it: the client ended it with 1000
            assert (conn.closed_by, conn.close_code) == ("client", 1000), (where, conn)
    assert run.stream is not None
    received = [t for conn in conns for t in texts_of(conn.received)]
    unsent = texts_unsent(run.stream.unsent)
    for text in run.queued:
        assert text in received or text in unsent, (where, text)
    # nothing went out twice: the handle covers "one", "during" is sent once
    assert sorted(received) == sorted(set(received)), (where, received)


@pytest.mark.parametrize("how", ["outer_scope", "stream_cancel"])
async def test_cancel_at_every_step_of_a_handover(how: str) -> None:
    """A goAway handover (quiet wait, old connection closed, new one opened, resuming setup,
    held sends released) cancelled at its k-th step, for every k: the steps counted are those
    of the application task and of every task under the client's nursery, from the goAway until
    the stream has moved."""
    phases_hit: set[str] = set()
    states_hit: set[str] = set()
    stages_hit: set[str] = set()
    async with open_fake_server(api_key=TEST_KEY, chunk_count=3, close_timeout=0.2) as server:
        port = server.port
        here = trio.lowlevel.current_task()
        outer = set(here.child_nurseries)
        # A close_timeout longer than each run's fail_after: a cancel that waits for a close
        # answer nobody will read (it once did, when the cancel caught the receiver before it
        # had let go of the connection) fails the run instead of only slowing it down.
        async with Client(api_key=TEST_KEY, base_url=server.url, close_timeout=30) as client:
            client_nurseries = [n for n in here.child_nurseries if n not in outer]
            (client_nursery,) = client_nurseries
            await trio.testing.wait_all_tasks_blocked()
            sockets_before = client_sockets(port)
            state_before: str | None = None
            for k in range(1, MAX_STEPS):
                run = HandoverRun()
                first_conn = len(server.connections)

                def make_instrument(
                    k: int, action: Callable[[], None], run: HandoverRun = run
                ) -> CancelAtStep:
                    def fire() -> None:
                        assert run.stream is not None
                        run.state_at_cancel = run.stream.state
                        action()

                    accepts = client_side(client_nursery, trio.lowlevel.current_task())
                    return CancelAtStep(accepts, k, fire, run.in_handover)

                def body(run: HandoverRun = run) -> Awaitable[None]:
                    return handover_scenario(client, server, run)

                with trio.fail_after(10) as bound:
                    if how == "outer_scope":
                        await cancel_by_scope(client, run, k, body, make_instrument)
                    else:
                        await cancel_by_stream(client, run, k, body, make_instrument)
                # (a shielded wait is not interrupted by fail_after: look at the clock too)
                assert trio.current_time() < bound.deadline, f"the cancel hung (k={k})"
                if run.phase_at_cancel is None:
                    assert run.completed
                    break
                phases_hit.add(run.phase_at_cancel)
                assert run.state_at_cancel is not None
                states_hit.add(run.state_at_cancel)
                await check_after_handover(
                    run, client, server, first_conn, sockets_before, client_nurseries, port
                )
                stages_hit.add(new_connection_stage(server.connections[first_conn:]))
                # (a whole new stream each time doubles the test's run time; the checks above
                # already find a leaked task, socket or pool slot after every k)
                if k % STILL_WORKS_EVERY == 0 or run.state_at_cancel != state_before:
                    await still_works(client)
                state_before = run.state_at_cancel
            else:
                raise AssertionError(f"the handover never finished within {MAX_STEPS} steps")
    assert k > 20, "a handover has more checkpoints than that: the instrument missed them"
    assert phases_hit >= set(HANDOVER_PHASES), f"cancelled in {sorted(phases_hit)} only"
    assert states_hit >= {"open", "resuming"}, f"cancelled in states {sorted(states_hit)} only"
    # the cancels caught the new connection at each stage of its opening
    assert stages_hit >= {"none", "upgraded", "resumed"}, sorted(stages_hit)


def new_connection_stage(conns: list[Any]) -> str:
    """How far the connection the session was moving to had got when the cancel came."""
    if len(conns) < 2:
        return "none"
    new = conns[-1]
    if new.resumed_from is not None:
        return "resumed"
    return "upgraded" if new.accepted else "upgrading"
