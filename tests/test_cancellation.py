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

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

import gemini_ws
from gemini_ws import Client, LiveConfig, ServerContent, StreamClosedError
from gemini_ws.testing import open_fake_server

from .conftest import TEST_KEY
from .test_fault_matrix import client_sockets, tasks_under, texts_of, texts_unsent

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])
MAX_STEPS = 400
PHASES = ("connect+setup", "send", "receive", "pause", "send paused", "resume", "turns")


class CancelAtStep(trio.abc.Instrument):
    """Calls *action* just before the *k*-th step of *task* (counting only while *counting*
    says so)."""

    def __init__(
        self,
        task: trio.lowlevel.Task,
        k: int,
        action: Callable[[], None],
        counting: Callable[[], bool] = lambda: True,
    ) -> None:
        self.task = task
        self.k = k
        self.action = action
        self.counting = counting
        self.steps = 0
        self.fired = False

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task and not self.fired and self.counting():
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


async def cancel_by_scope(client: Client, run: Run, k: int) -> None:
    with trio.CancelScope() as scope:

        def cancel() -> None:
            run.phase_at_cancel = run.phase
            scope.cancel()

        instrument = CancelAtStep(trio.lowlevel.current_task(), k, cancel)
        trio.lowlevel.add_instrument(instrument)
        try:
            await scenario(client, run)
        finally:
            trio.lowlevel.remove_instrument(instrument)
    assert run.completed != scope.cancelled_caught
    if run.completed:
        run.phase_at_cancel = None  # the cancel came after the last checkpoint, or never
        return
    if run.stream is not None:
        with pytest.raises(StreamClosedError):
            await run.stream.send_text("later")


async def cancel_by_stream(client: Client, run: Run, k: int) -> None:
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

        instrument = CancelAtStep(
            trio.lowlevel.current_task(), k, cancel, lambda: run.stream is not None
        )
        trio.lowlevel.add_instrument(instrument)
        try:
            await scenario(client, run)
        except StreamClosedError:
            assert run.phase_at_cancel is not None, "StreamClosedError without a cancel"
        finally:
            trio.lowlevel.remove_instrument(instrument)
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
