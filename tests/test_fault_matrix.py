"""The fault matrix: every fault the fake server can inject (plus TLS, refused and DNS failures)
crossed with every state of a stream where it applies.

States: ``connecting`` (TCP, TLS, upgrade), ``awaiting_setup`` (``setup`` sent, no
``setupComplete`` yet), ``idle`` (open, no turn running), ``mid_turn`` (a reply is streaming),
``paused`` (a reply is streaming into a paused stream that also holds an outgoing message),
``pool_checkout`` (the fault hits a warm spare before it is checked out, or the connection that
replaces it) and ``handover`` (a goAway handover of a stream with ``reconnect`` on, the faults
on the connection(s) it moves to). The last two have their own runners below
(``test_fault_matrix_pool_checkout`` and ``test_fault_matrix_handover``).

Every cell checks what a user relies on:

* the error is the right type of our hierarchy (with the server's code/reason/status kept), and
  comes within a bound; or, for the faults that are not errors (unknown message type, delayed
  pongs or messages), the session keeps working for a further turn;
* nothing hangs (``trio.fail_after`` around the cell);
* no task and no client socket is left once the stream's block is over, and nothing at all once
  the client and the server connections are closed;
* every server message sent before the fault was delivered, in order, before the error;
* every outgoing message was either received by the server or reported unsent.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import socket
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio
import trio.testing

import gemini_ws
from gemini_ws import (
    Client,
    ConnectionLostError,
    ConnectionRefusedByHostError,
    ConnectTimeoutError,
    DNSError,
    GeminiWSError,
    HandshakeRejectedError,
    HeartbeatTimeoutError,
    InvalidArgumentError,
    LiveConfig,
    MessageTooLargeError,
    PolicyViolationError,
    ProtocolError,
    ServerClosedError,
    ServerContent,
    ServerInternalError,
    SetupRejectedError,
    SetupTimeoutError,
    StreamClosedError,
    TLSError,
)
from gemini_ws.testing import Fault, open_fake_server
from gemini_ws.testing._faults import FaultKind

from .conftest import TEST_KEY

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])
#: Short heartbeat so that stalls are found fast; delayed pongs stay under the timeout.
HEARTBEAT = {"heartbeat_interval": 0.05, "heartbeat_timeout": 0.3}
#: How long an error may take to reach the application once the fault happened.
ERROR_BOUND = 2.5
#: The whole cell, as a hang guard.
CELL_BOUND = 10.0
LIMIT = 100_000  # max_message_size of the client in every cell
#: message number of the fault in mid-turn and paused cells: setupComplete is 1 and the
#: first model chunk is 2, so the fault comes after one chunk went out.
MID = 3


# --- helpers shared with the other reliability tests ----------------------------------------


def client_sockets(server_port: int | None) -> int:
    """Open INET sockets of this process that are not the server side of *server_port*."""
    gc.collect()
    count = 0
    for obj in gc.get_objects():
        if not isinstance(obj, socket.socket) or obj.fileno() == -1:
            continue
        if obj.family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            port = obj.getsockname()[1]
        except OSError:
            port = None
        if server_port is not None and port == server_port:
            continue
        count += 1
    return count


def tasks_under(nurseries: Iterator[trio.Nursery] | list[trio.Nursery]) -> int:
    """Tasks living under *nurseries*, at any depth."""
    total = 0
    stack = list(nurseries)
    while stack:
        nursery = stack.pop()
        for task in nursery.child_tasks:
            total += 1
            stack.extend(task.child_nurseries)
    return total


def all_tasks() -> set[trio.lowlevel.Task]:
    """Every task of the run, found from the root task."""
    found: set[trio.lowlevel.Task] = set()
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        found.add(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return found


def new_tasks(before: set[trio.lowlevel.Task]) -> list[str]:
    """Names of the tasks living now that did not live at *before* (trio's own system tasks,
    which it starts lazily, do not count)."""
    return [
        t.name for t in all_tasks() - before if not t.name.startswith("<TrioToken.run_sync_soon")
    ]


async def settle(predicate: Callable[[], bool], bound: float = 3.0) -> bool:
    """Wait (up to *bound*) until *predicate* holds; teardown of the other side takes a moment."""
    with trio.move_on_after(bound):
        while not predicate():
            await trio.sleep(0.01)
        return True
    return predicate()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wire(message: dict[str, Any]) -> gemini_ws.ServerMessage:
    """A server message as recorded by the fake server, decoded as the client decodes it."""
    return gemini_ws.decode(json.dumps(message))


def texts_of(received: list[dict[str, Any]]) -> list[str]:
    out = []
    for message in received:
        if "clientContent" in message:
            out.append(message["clientContent"]["turns"][0]["parts"][0]["text"])
        elif isinstance(message.get("realtimeInput", {}).get("text"), str):
            out.append(message["realtimeInput"]["text"])
    return out


def texts_unsent(messages: tuple[Any, ...]) -> list[str]:
    out = []
    for m in messages:
        if isinstance(m, gemini_ws.ClientContent):
            out.append(m.turns[0].parts[0].text)
        elif isinstance(m, gemini_ws.RealtimeInput) and m.text is not None:
            out.append(m.text)
    return out


# --- the cells -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cell:
    fault: str
    state: str
    #: faults injected on the first connection (for fake-server cells)
    faults: tuple[Fault, ...] = ()
    #: the error expected, or None when the fault must not end the session
    error: type[GeminiWSError] | None = None
    #: exact-type check (ServerClosedError for 1000, not one of its subclasses)
    exact: bool = False
    code: int | None = None
    reason: str | None = None
    status: int | None = None
    #: messages numbered 2..fault_at-1 went out before the fault (None: not a model-turn cell)
    fault_at: int | None = None
    client_options: tuple[tuple[str, Any], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.fault}-{self.state}"


_IDLE_DELAY = Fault.delay(0.1, after_message=1)  # the fault comes while the client waits idle
_PAUSE_DELAY = Fault.delay(0.1, at_message=2)  # the client has paused before the first chunk


def _placed(make: Callable[..., Fault], state: str) -> tuple[Fault, ...]:
    """The fault placed for *state* (make takes the trigger keyword arguments)."""
    if state == "awaiting_setup":
        return (make(at_message=1),)
    if state == "idle":
        return (_IDLE_DELAY, make(after_message=1))
    if state == "mid_turn":
        return (make(at_message=MID),)
    if state == "paused":
        return (_PAUSE_DELAY, make(at_message=MID))
    raise AssertionError(state)


_OPEN_STATES = ("awaiting_setup", "idle", "mid_turn", "paused")
_CLOSE_ERRORS: dict[int, type[ServerClosedError]] = {
    1000: ServerClosedError,
    1007: InvalidArgumentError,
    1008: PolicyViolationError,
    1011: ServerInternalError,
}


def _cells() -> list[Cell]:
    cells: list[Cell] = []

    def fault_at(state: str) -> int | None:
        return {"awaiting_setup": 1, "idle": 2, "mid_turn": MID, "paused": MID}[state]

    # connecting: everything that can go wrong before the WebSocket is open
    for status in (401, 403, 429, 503):
        cells.append(
            Cell(
                f"reject_upgrade_{status}",
                "connecting",
                (Fault.reject_upgrade(status),),
                HandshakeRejectedError,
                status=status,
            )
        )
    cells.append(Cell("tls_untrusted", "connecting", error=TLSError))
    cells.append(Cell("refused", "connecting", error=ConnectionRefusedByHostError))
    cells.append(Cell("dns", "connecting", error=DNSError))
    cells.append(
        Cell(
            "stall",
            "connecting",
            error=ConnectTimeoutError,
            client_options=(("connect_timeout", 0.3),),
        )
    )

    for state in _OPEN_STATES:
        at = fault_at(state)
        cells.append(
            Cell("abort", state, _placed(Fault.abort, state), ConnectionLostError, fault_at=at)
        )
        for code, error in _CLOSE_ERRORS.items():
            reason = f"fault matrix close {code} in {state}"
            cells.append(
                Cell(
                    f"close_{code}",
                    state,
                    _placed(
                        lambda code=code, reason=reason, **kw: Fault.close(code, reason, **kw),
                        state,
                    ),
                    SetupRejectedError if state == "awaiting_setup" else error,
                    exact=state != "awaiting_setup",
                    code=code,
                    reason=reason,
                    fault_at=at,
                )
            )
        cells.append(
            Cell("stall", state, _placed(Fault.stall, state), HeartbeatTimeoutError, fault_at=at)
        )
        cells.append(
            Cell(
                "malformed_json",
                state,
                _placed(Fault.malformed_json, state),
                ProtocolError,
                fault_at=at,
            )
        )
        cells.append(
            Cell(
                "oversized_frame",
                state,
                _placed(lambda **kw: Fault.oversized_frame(2 * LIMIT, **kw), state),
                MessageTooLargeError,
                fault_at=at,
            )
        )
        # not errors: the session must keep working
        cells.append(Cell("unknown_message", state, _placed(Fault.unknown_message, state)))
        cells.append(Cell("delay_pongs", state, (Fault.delay_pongs(0.1),)))
        if state != "awaiting_setup":
            cells.append(
                Cell(
                    "pongs_never",
                    state,
                    (Fault.delay_pongs(float("inf")),),
                    HeartbeatTimeoutError,
                    fault_at=None,
                )
            )
    # a delayed message: longer than the setup timeout before setupComplete is an error;
    # mid-turn (longer than the heartbeat timeout: pongs still flow) it is not
    cells.append(
        Cell(
            "delay",
            "awaiting_setup",
            (Fault.delay(2.0, at_message=1),),
            SetupTimeoutError,
            client_options=(("setup_timeout", 0.3),),
        )
    )
    cells.append(Cell("delay", "mid_turn", (Fault.delay(0.5, at_message=MID),)))
    cells.append(Cell("delay", "paused", (_PAUSE_DELAY, Fault.delay(0.5, at_message=MID))))
    return cells


CELLS = _cells()


def test_matrix_covers_every_fault_kind() -> None:
    kinds = {f.kind for cell in CELLS for f in cell.faults}
    # go_away_after_handle needs resumption handles, so it is a handover fault only: it is
    # exercised with reconnect on in tests/test_resumption.py
    # (test_go_away_right_after_a_handle_with_little_time_left_hands_over)
    expected = set(typing.get_args(FaultKind)) - {"go_away_after_handle"}
    assert kinds == expected, "every fault the fake server can inject"
    assert {c.state for c in CELLS} == {"connecting", *_OPEN_STATES}
    # the two states with their own runners
    assert {c.spare for c in POOL_CELLS} == {"abort", "close", "stall"}
    assert {c.code for c in POOL_CELLS} >= set(_CLOSE_ERRORS)
    assert {c.status for c in POOL_CELLS} >= {401, 403, 429, 503}
    handover_kinds = {f.kind for cell in HANDOVER_CELLS for f in cell.faults}
    assert handover_kinds == kinds - {"delay", "delay_pongs"}
    assert {f.code for c in HANDOVER_CELLS for f in c.faults if f.kind == "close"} == set(
        _CLOSE_ERRORS
    )
    assert any(c.expire for c in HANDOVER_CELLS)


# --- running a cell ----------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    error: BaseException | None = None
    elapsed_to_error: float | None = None
    received: list[Any] = dataclasses.field(default_factory=list)
    queued: list[str] = dataclasses.field(default_factory=list)
    send_raised: list[str] = dataclasses.field(default_factory=list)
    unsent: list[str] = dataclasses.field(default_factory=list)
    replies: list[str] = dataclasses.field(default_factory=list)


async def reply(s: gemini_ws.LiveStream, out: Outcome) -> str:
    parts = []
    async for msg in s.turn():
        out.received.append(msg)
        if isinstance(msg, ServerContent):
            parts.append(msg.text)
    return "".join(parts)


async def wait_failed(s: gemini_ws.LiveStream) -> None:
    while s.state not in ("failed", "closed", "cancelled"):
        await trio.sleep(0.01)


async def drive(s: gemini_ws.LiveStream, cell: Cell, out: Outcome) -> None:
    """What the application does in the cell's state; errors propagate to the caller."""

    async def send(text: str) -> None:
        out.queued.append(text)
        try:
            await s.send_text(text)
        except GeminiWSError:
            out.send_raised.append(text)
            raise

    async def receive_all() -> None:
        while True:
            out.received.append(await s.receive())

    if cell.error is None:
        # the fault must not end the session: two full turns, with time for the heartbeat
        if cell.state == "paused":
            await send("first")
            await s.pause()
            await send("second")
            await trio.sleep(0.6)
            with trio.fail_after(ERROR_BOUND):  # the whole first reply is held, not lost
                while s.statistics().turns_completed < 1:
                    await trio.sleep(0.01)
            assert s.statistics().queued_to_send == 1
            await s.resume()
        elif cell.state == "idle":
            await trio.sleep(0.6)
            await send("first")
        else:
            await send("first")
            if cell.fault == "delay_pongs":
                await trio.sleep(0.6)
        out.replies.append(await reply(s, out))
        if cell.state != "paused":
            await send("second")
        out.replies.append(await reply(s, out))
        return

    if cell.state == "awaiting_setup":
        raise AssertionError("the stream must not open")
    if cell.state == "idle":
        await receive_all()
    elif cell.state == "mid_turn":
        await send("hello")
        await receive_all()
    elif cell.state == "paused":
        await send("hello")
        await s.pause()
        await send("held")
        with trio.fail_after(ERROR_BOUND):
            await wait_failed(s)
        await s.resume()
        await receive_all()


async def run_cell(cell: Cell, out: Outcome, nursery: trio.Nursery) -> None:
    options: dict[str, Any] = {"max_message_size": LIMIT, **dict(cell.client_options)}
    if cell.fault in ("stall", "delay_pongs", "pongs_never", "delay"):
        options.update(HEARTBEAT)
    else:
        # no pings where none are needed: the fake server's reader crashes when it must answer
        # a ping after it sent its close frame (see the report), which would turn a clean close
        # into a reset
        options["heartbeat_interval"] = None
    tls = cell.fault == "tls_untrusted"
    async with open_fake_server(
        api_key=TEST_KEY, chunk_count=3, close_timeout=0.2, tls=tls, raise_errors=not tls
    ) as server:
        if cell.faults:
            server.inject(*cell.faults)
        base_url = server.url
        target_port: int | None = server.port
        if cell.fault == "refused":
            target_port = free_port()
            base_url = f"ws://127.0.0.1:{target_port}"
        elif cell.fault == "dns":
            base_url, target_port = "ws://no-such-host.invalid:9", None
            options["allow_insecure"] = True
        elif cell.fault == "stall" and cell.state == "connecting":
            target_port = await silent_server(nursery)
            base_url = f"ws://127.0.0.1:{target_port}"

        await trio.testing.wait_all_tasks_blocked()  # the server's accept loop is up
        sockets_before = client_sockets(target_port)
        tasks_before = all_tasks()
        here = trio.lowlevel.current_task()
        outer = set(here.child_nurseries)
        async with Client(api_key=TEST_KEY, base_url=base_url, **options) as client:
            client_nurseries = [n for n in here.child_nurseries if n not in outer]
            t0 = trio.current_time()
            stream: gemini_ws.LiveStream | None = None
            try:
                async with client.stream(MODEL, config=TEXT) as s:
                    stream = s
                    try:
                        await drive(s, cell, out)
                    except GeminiWSError as exc:
                        out.error = exc
                        out.elapsed_to_error = trio.current_time() - t0
                    if out.error is not None:
                        out.unsent = texts_unsent(s.unsent)
            except StreamClosedError as exc:
                # leaving the block after a failure with messages still queued reports them
                assert out.error is not None, f"unexpected {exc!r}"
                out.unsent = texts_unsent(exc.unsent)
            except GeminiWSError as exc:
                assert out.error is None, f"a second error {exc!r} after {out.error!r}"
                out.error = exc
                out.elapsed_to_error = trio.current_time() - t0
            if stream is not None and out.error is not None and not out.unsent:
                out.unsent = texts_unsent(stream.unsent)
            # the stream's block is over: none of its tasks and none of its sockets are left
            assert tasks_under(client_nurseries) == 0, "a stream task outlived its block"
            assert client_sockets(target_port) == sockets_before, "a client socket was left open"

        # every server connection ends, then everything is back to where it started
        # (a stalled fake connection may miss the client leaving: a bug of the fake server,
        # tested on its own below, so the matrix does not wait for those)
        with trio.fail_after(5):
            for conn in server.connections:
                if not conn.stalled:
                    await conn.wait_closed()
        if any(conn.stalled and not conn.closed.is_set() for conn in server.connections):
            return check_cell(cell, out, server)
        assert await settle(lambda: not new_tasks(tasks_before)), (
            f"tasks left behind: {new_tasks(tasks_before)}"
        )
        assert client_sockets(target_port) == sockets_before
        check_cell(cell, out, server)


async def silent_server(nursery: trio.Nursery) -> int:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def hold(stream: trio.abc.Stream) -> None:
        # never answer; end when the client gives up
        async with stream:
            try:
                while await stream.receive_some():
                    pass
            except trio.BrokenResourceError:
                pass

    nursery.start_soon(trio.serve_listeners, hold, listeners)
    return int(listeners[0].socket.getsockname()[1])


def check_cell(cell: Cell, out: Outcome, server: Any) -> None:
    conn = server.connections[0] if server.connections else None
    if cell.error is None:
        assert out.error is None, f"{cell.fault} must not end the session: {out.error!r}"
        assert "first" in out.replies[0] and "second" in out.replies[1]
        assert texts_of(conn.received) == ["first", "second"]
        if cell.fault == "unknown_message":
            assert any(isinstance(m, gemini_ws.UnknownMessage) for m in out.received)
        if cell.fault == "delay_pongs":
            assert conn is not None and conn.closed_by == "client" and conn.close_code == 1000
        return

    error = out.error
    assert error is not None, f"expected {cell.error.__name__}, the session went on"
    if cell.exact:
        assert type(error) is cell.error, f"expected exactly {cell.error.__name__}: {error!r}"
    assert isinstance(error, cell.error), f"expected {cell.error.__name__}, got {error!r}"
    assert out.elapsed_to_error is not None and out.elapsed_to_error < ERROR_BOUND
    if cell.code is not None:
        assert error.code == cell.code  # type: ignore[attr-defined]
        assert error.reason == cell.reason  # type: ignore[attr-defined]
    if cell.status is not None:
        assert error.status == cell.status  # type: ignore[attr-defined]
        assert error.body  # type: ignore[attr-defined]

    # everything the server sent before the fault was delivered, in order, and nothing after
    if cell.fault_at is not None and cell.state in ("idle", "mid_turn", "paused"):
        before = [wire(m) for m in conn.sent[1 : cell.fault_at - 1]]
        assert out.received == before

    # every outgoing message was received by the server, reported unsent, or refused at send
    received = texts_of(conn.received) if conn is not None else []
    for text in out.queued:
        accounted = [text in received, text in out.unsent, text in out.send_raised]
        assert any(accounted), f"{text!r} was neither sent nor reported unsent"
    if cell.state == "paused":
        assert out.unsent == ["held"], "the message held by pause() is reported unsent"


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
async def test_fault_matrix(cell: Cell, nursery: trio.Nursery) -> None:
    out = Outcome()
    with trio.fail_after(CELL_BOUND):
        await run_cell(cell, out, nursery)


# --- state "pool_checkout": the fault hits a warm spare, or the connection replacing it ------


@dataclasses.dataclass(frozen=True)
class PoolCell:
    """A spare of ``Client(pool_size=1)``, warmed with ``prewarm(1)``, meets *fault* before a
    stream checks it out."""

    fault: str
    #: what happens to the spare: "abort", "close" or "stall" (it stops answering pings: all a
    #: stall can show on a connection that has nothing to send yet)
    spare: str
    code: int | None = None
    #: True: the client had a moment to read the fault before the checkout (the spare is known
    #: dead); False: the checkout comes before the client could read it (a dead spare that
    #: still looks open)
    noticed: bool = True
    #: the upgrade of the replacement connection is refused with this status
    status: int | None = None

    @property
    def id(self) -> str:
        return f"{self.fault}-pool_checkout"


def _pool_cells() -> list[PoolCell]:
    cells = [PoolCell("abort", "abort"), PoolCell("abort_unnoticed", "abort", noticed=False)]
    cells += [PoolCell(f"close_{code}", "close", code=code) for code in _CLOSE_ERRORS]
    cells.append(PoolCell("stall", "stall"))
    cells += [
        PoolCell(f"reject_upgrade_{status}", "abort", status=status)
        for status in (401, 403, 429, 503)
    ]
    return cells


POOL_CELLS = _pool_cells()


def pool_counts(client: Client) -> tuple[int, int, int, int]:
    stats = client.pool.statistics()
    return stats.active, stats.idle, stats.connecting, stats.waiting


async def run_pool_cell(cell: PoolCell) -> None:
    options: dict[str, Any] = {"max_message_size": LIMIT, "pool_size": 1}
    if cell.spare == "stall":
        options.update(HEARTBEAT)
    else:
        options["heartbeat_interval"] = None  # see run_cell
    async with open_fake_server(api_key=TEST_KEY, chunk_count=3, close_timeout=0.2) as server:
        if cell.spare == "stall":
            server.inject(Fault.delay_pongs(float("inf")))  # the spare, connection #0
        await trio.testing.wait_all_tasks_blocked()
        sockets_before = client_sockets(server.port)
        tasks_before = all_tasks()
        async with Client(api_key=TEST_KEY, base_url=server.url, **options) as client:
            assert await client.prewarm(1) == 1
            spare = server.connections[0]
            assert spare.accepted and spare.setup is None
            if cell.status is not None:
                server.inject(Fault.reject_upgrade(cell.status))  # the replacement, #1
            # the fault hits the idle spare
            if cell.spare == "abort":
                spare.abort()
            elif cell.spare == "close":
                assert cell.code is not None
                await spare.close(cell.code, f"spare closed with {cell.code}")
            else:
                with trio.fail_after(ERROR_BOUND):  # the client's heartbeat gives up on it
                    await spare.wait_closed()
            if cell.noticed:
                await trio.testing.wait_all_tasks_blocked()

            error: GeminiWSError | None = None
            reply_text = ""
            during: tuple[int, int, int, int] | None = None
            t0 = trio.current_time()
            try:
                async with client.stream(MODEL, config=TEXT) as s:
                    during = pool_counts(client)
                    await s.send_text("checkout")
                    reply_text = "".join(
                        [m.text async for m in s.turn() if isinstance(m, ServerContent)]
                    )
            except GeminiWSError as exc:
                error = exc
            elapsed = trio.current_time() - t0
            stats = client.pool.statistics()
            if cell.status is None:
                assert error is None, f"the caller saw the dead spare: {error!r} ({stats})"
            assert stats.discarded_dead == 1, f"the dead spare was not discarded: {stats}"
            # the dead spare served no checkout (a refilled spare may serve the retry)
            assert stats.warm_checkouts <= (1 if cell.status is None else 0), stats

            if cell.status is None:
                assert reply_text == "You said: checkout"
                active, idle, connecting, waiting = during
                # one stream active; the refill of the pool under way or already done
                assert (active, idle + connecting, waiting) == (1, 1, 0), during
                # served once, by a new connection or by the refilled spare
                assert stats.cold_checkouts + stats.warm_checkouts == 1
                assert stats.spare_failures == 0
                (replacement,) = [c for c in server.connections[1:] if c.setup is not None]
                assert texts_of(replacement.received) == ["checkout"]
            else:
                assert isinstance(error, HandshakeRejectedError), repr(error)
                assert error.status == cell.status and error.body
                assert elapsed < ERROR_BOUND
                assert stats.cold_checkouts == 0
                assert pool_counts(client) == (0, 0, 0, 0), "a refused checkout left counts"
                # the pool recovers: the next stream opens a connection and refills
                with trio.fail_after(ERROR_BOUND):
                    async with client.stream(MODEL, config=TEXT) as s:
                        await s.send_text("again")
                        text = "".join(
                            [m.text async for m in s.turn() if isinstance(m, ServerContent)]
                        )
                assert text == "You said: again"
            # pool counts once the refill is done: one spare, nothing else; its socket is the
            # only client socket left
            assert await settle(lambda: pool_counts(client) == (0, 1, 0, 0)), pool_counts(client)
            assert await settle(lambda: client_sockets(server.port) == sockets_before + 1)

        with trio.fail_after(5):
            for conn in server.connections:
                await conn.wait_closed()
        assert spare.close_code in (1006, cell.code)
        assert await settle(lambda: not new_tasks(tasks_before)), (
            f"tasks left behind: {new_tasks(tasks_before)}"
        )
        assert client_sockets(server.port) == sockets_before


@pytest.mark.parametrize("cell", POOL_CELLS, ids=[c.id for c in POOL_CELLS])
async def test_fault_matrix_pool_checkout(cell: PoolCell) -> None:
    with trio.fail_after(CELL_BOUND):
        await run_pool_cell(cell)


# --- state "handover": a goAway handover meets faults on the connection(s) it moves to --------

HANDOVER_POLICY = gemini_ws.ReconnectPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.02)


@dataclasses.dataclass(frozen=True)
class HandoverCell:
    fault: str
    #: faults on the connection(s) the session moves to (at the upgrade, or before
    #: setupComplete)
    faults: tuple[Fault, ...]
    #: 1: only the first re-dial meets the faults; None: every one does
    connections: int | None
    #: the error behind the ConnectionLostError when the handover fails
    cause: type[GeminiWSError]
    #: the handover must succeed (else it must fail with ConnectionLostError)
    resumes: bool
    #: connections the stream tries (each reaches the fake server)
    attempts: int
    expire: bool = False
    #: ``Client(pool_size=1)``: the handover takes a warm spare, and the faults are on it
    warm: bool = False

    @property
    def id(self) -> str:
        if self.warm:
            return f"{self.fault}-handover-warm_spare"
        redials = "first_redial" if self.connections == 1 else "every_redial"
        return f"{self.fault}-handover-{redials}"


def _handover_cells() -> list[HandoverCell]:
    retried: list[tuple[str, Fault, type[GeminiWSError]]] = [
        ("abort", Fault.abort(at_message=1), ConnectionLostError),
        ("close_1000", Fault.close(1000, "handover 1000", at_message=1), SetupRejectedError),
        ("close_1011", Fault.close(1011, "handover 1011", at_message=1), SetupRejectedError),
        ("stall", Fault.stall(at_message=1), HeartbeatTimeoutError),
        ("malformed_json", Fault.malformed_json(at_message=1), ProtocolError),
        ("oversized_frame", Fault.oversized_frame(2 * LIMIT, at_message=1), MessageTooLargeError),
    ]
    retried += [
        (f"reject_upgrade_{status}", Fault.reject_upgrade(status), HandshakeRejectedError)
        for status in (401, 403, 429, 503)
    ]
    refused = [
        ("close_1007", Fault.close(1007, "handover 1007", at_message=1)),
        ("close_1008", Fault.close(1008, "handover 1008", at_message=1)),
    ]
    cells: list[HandoverCell] = []
    for connections in (1, None):
        max_attempts = HANDOVER_POLICY.max_attempts
        for name, fault, cause in retried:
            # a re-dial that meets the fault is retried; it succeeds once the fault is gone
            once = connections == 1
            attempts = 2 if once else max_attempts
            cells.append(HandoverCell(name, (fault,), connections, cause, once, attempts))
        for name, fault in refused:
            # the server refused the resume itself: no retry
            cells.append(HandoverCell(name, (fault,), connections, SetupRejectedError, False, 1))
        # not an error: delivered, and the handover goes on
        cells.append(
            HandoverCell(
                "unknown_message",
                (Fault.unknown_message(at_message=1),),
                connections,
                GeminiWSError,
                True,
                1,
            )
        )
    cells.append(HandoverCell("handle_expired", (), None, SetupRejectedError, False, 1, True))
    # the handover takes a warm spare that meets the fault: retried on the next connection
    # (the refilled spare or a new one), except for a refusal
    for name, fault, cause in retried[:5]:
        cells.append(HandoverCell(name, (fault,), 1, cause, True, 2, warm=True))
    name, fault = refused[0]
    cells.append(HandoverCell(name, (fault,), 1, SetupRejectedError, False, 1, warm=True))
    # the spare was dropped by the server just before the handover takes it
    cells.append(HandoverCell("spare_aborted", (), 1, ConnectionLostError, True, 0, warm=True))
    return cells


HANDOVER_CELLS = _handover_cells()


@dataclasses.dataclass
class HandoverOutcome(Outcome):
    handle: str | None = None
    resumed: gemini_ws.SessionResumed | None = None
    #: messages delivered after the SessionResumed event
    after: list[Any] = dataclasses.field(default_factory=list)
    pool_after_handover: tuple[int, int, int, int] | None = None


async def drive_handover(
    s: gemini_ws.LiveStream, client: Client, server: Any, cell: HandoverCell, out: HandoverOutcome
) -> None:
    async def send(text: str) -> None:
        out.queued.append(text)
        try:
            await s.send_text(text)
        except GeminiWSError:
            out.send_raised.append(text)
            raise

    # one completed turn, then its handle: the session can be resumed
    await send("first")
    out.replies.append(await reply(s, out))
    while not (
        out.received
        and isinstance(out.received[-1], gemini_ws.SessionResumptionUpdate)
        and out.received[-1].new_handle
    ):
        out.received.append(await s.receive())
    out.handle = s.resume_handle
    assert out.handle is not None

    (old,) = [c for c in server.connections if c.setup is not None]
    if cell.expire:
        server.expire_handles()
    if cell.warm:
        # the spare the handover will take (its faults were injected before it opened)
        assert await settle(lambda: pool_counts(client) == (1, 1, 0, 0)), pool_counts(client)
        if cell.fault == "spare_aborted":
            server.connections[-1].abort()
    elif cell.faults:
        server.inject(*cell.faults, connections=cell.connections)
    old.go_away(1.0)
    t0 = trio.current_time()
    try:
        while not isinstance(msg := await s.receive(), gemini_ws.GoAway):
            out.received.append(msg)
        out.received.append(msg)
        with trio.fail_after(ERROR_BOUND):  # the handover starts
            while s.state == "open":
                await trio.sleep(0)
        await send("during")  # held while the session moves
        while not isinstance(msg := await s.receive(), gemini_ws.SessionResumed):
            out.received.append(msg)
    except GeminiWSError as exc:
        out.error = exc
        out.elapsed_to_error = trio.current_time() - t0
        return
    out.resumed = msg
    if cell.warm:  # the pool refills the spare the handover took
        await settle(lambda: pool_counts(client) == (1, 1, 0, 0))
    out.pool_after_handover = pool_counts(client)
    parts = []
    async for msg in s.turn():
        out.after.append(msg)
        if isinstance(msg, ServerContent):
            parts.append(msg.text)
    out.replies.append("".join(parts))


async def run_handover_cell(cell: HandoverCell, out: HandoverOutcome) -> None:
    options: dict[str, Any] = {"max_message_size": LIMIT, "pool_size": int(cell.warm)}
    if cell.fault == "stall":
        options.update(HEARTBEAT)
    else:
        options["heartbeat_interval"] = None  # see run_cell
    async with open_fake_server(api_key=TEST_KEY, chunk_count=3, close_timeout=0.2) as server:
        await trio.testing.wait_all_tasks_blocked()
        sockets_before = client_sockets(server.port)
        tasks_before = all_tasks()
        here = trio.lowlevel.current_task()
        outer = set(here.child_nurseries)
        async with Client(api_key=TEST_KEY, base_url=server.url, **options) as client:
            client_nurseries = [n for n in here.child_nurseries if n not in outer]
            if cell.warm:
                assert await client.prewarm(1) == 1
                if cell.faults:  # on the spare refilled when the stream takes this one
                    server.inject(*cell.faults, connections=1)
            stream: gemini_ws.LiveStream | None = None
            try:
                async with client.stream(MODEL, config=TEXT, reconnect=HANDOVER_POLICY) as s:
                    stream = s
                    await drive_handover(s, client, server, cell, out)
                    if out.error is not None:
                        out.unsent = texts_unsent(s.unsent)
            except StreamClosedError as exc:
                assert out.error is not None, f"unexpected {exc!r}"
                out.unsent = texts_unsent(exc.unsent)
            if stream is not None and out.error is not None and not out.unsent:
                out.unsent = texts_unsent(stream.unsent)
            if cell.warm:  # only the spare is left
                assert await settle(lambda: pool_counts(client) == (0, 1, 0, 0)), (
                    client.pool.statistics()
                )
                assert await settle(lambda: client_sockets(server.port) == sockets_before + 1)
            else:
                assert tasks_under(client_nurseries) == 0, "a stream task outlived its block"
                assert client_sockets(server.port) == sockets_before, "a client socket was left"
                assert pool_counts(client) == (0, 0, 0, 0), client.pool.statistics()

        with trio.fail_after(5):
            for conn in server.connections:
                if not conn.stalled:
                    await conn.wait_closed()
        if not any(conn.stalled and not conn.closed.is_set() for conn in server.connections):
            assert await settle(lambda: not new_tasks(tasks_before)), (
                f"tasks left behind: {new_tasks(tasks_before)}"
            )
            assert client_sockets(server.port) == sockets_before
        check_handover(cell, out, server)


def check_handover(cell: HandoverCell, out: HandoverOutcome, server: Any) -> None:
    old = next(c for c in server.connections if c.setup is not None)
    redials = server.connections[old.index + 1 :]
    assert texts_of(old.received) == ["first"]
    assert old.closed_by == "client" and old.close_code == 1000, "the old connection is closed"
    if cell.warm:
        # the spare the handover took was the one with the faults
        assert redials[0].faults == cell.faults
        if cell.faults:
            assert redials[0].faults_fired
    else:
        assert len(redials) == cell.attempts, f"{len(redials)} re-dials, not {cell.attempts}"
    # everything the old connection sent was delivered, in order, before the event or error
    assert out.received == [wire(m) for m in old.sent[1:]]
    assert isinstance(out.received[-1], gemini_ws.GoAway)

    if cell.resumes:
        assert out.error is None, f"the handover failed: {out.error!r}"
        event = out.resumed
        assert event is not None
        assert (event.reason, event.handle) == ("go_away", out.handle)
        if cell.attempts:  # (a dropped spare may be noticed, and discarded, before the checkout)
            assert event.attempts == cell.attempts
        assert event.replayed == 0 and not event.interrupted_turn
        assert event.gap < ERROR_BOUND
        assert out.pool_after_handover == (1, int(cell.warm), 0, 0)
        new = [c for c in redials if c.resumed_from is not None][-1]
        assert new.resumed_from == out.handle and new.session is old.session
        # the message sent during the handover went out once, on the new connection
        assert texts_of(new.received) == ["during"]
        assert out.replies == ["You said: first", "You said: during"]
        assert out.after[-1].turn_complete
        if cell.fault == "unknown_message":
            assert any(isinstance(m, gemini_ws.UnknownMessage) for m in out.after)
        return

    error = out.error
    assert isinstance(error, ConnectionLostError), f"expected ConnectionLostError: {error!r}"
    assert error.resume_handle == out.handle, "the error carries the handle to resume by hand"
    assert isinstance(error.__cause__, cell.cause), repr(error.__cause__)
    assert out.elapsed_to_error is not None and out.elapsed_to_error < ERROR_BOUND
    # the message sent during the handover was never written: it is reported
    received = [t for conn in server.connections for t in texts_of(conn.received)]
    for text in out.queued:
        accounted = [text in received, text in out.unsent, text in out.send_raised]
        assert any(accounted), f"{text!r} was neither sent nor reported unsent"
    assert "during" not in received and "during" in out.unsent + out.send_raised


@pytest.mark.parametrize("cell", HANDOVER_CELLS, ids=[c.id for c in HANDOVER_CELLS])
async def test_fault_matrix_handover(cell: HandoverCell) -> None:
    out = HandoverOutcome()
    with trio.fail_after(CELL_BOUND):
        await run_handover_cell(cell, out)


async def test_stalled_fake_connection_notices_the_client_leaving() -> None:
    """``Fault.stall`` promises that the fake keeps reading (and discarding) input, "so the fake
    notices when the client gives up and drops TCP". A client ping that reached the fake's
    trio-websocket reader just before the stall makes that reader block for ever sending the
    pong (``ControlledStream.send_all`` waits for ``dead``, which only the reader can set), so
    the stalled connection lives until the server shuts down. Repeated: the race is likely,
    not certain, in one run."""
    async with open_fake_server(api_key=TEST_KEY, chunk_count=3, close_timeout=0.2) as server:
        async with Client(api_key=TEST_KEY, base_url=server.url, **HEARTBEAT) as client:
            for _ in range(6):
                server.inject(Fault.delay(0.1, at_message=2), Fault.stall(at_message=MID))
                with trio.fail_after(5), pytest.raises(StreamClosedError):
                    async with client.stream(MODEL, config=TEXT) as s:
                        await s.send_text("hello")
                        await s.pause()
                        await s.send_text("held")
                        await wait_failed(s)
                        await s.resume()
                        with pytest.raises(HeartbeatTimeoutError):
                            while True:
                                await s.receive()
        for conn in server.connections:
            with trio.move_on_after(2):
                await conn.wait_closed()
            assert conn.closed.is_set(), (
                f"stalled connection #{conn.index} did not notice the client leaving"
            )
