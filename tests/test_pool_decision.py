"""The pool as a pure decision: ``decide()`` tested with tables and properties (no sockets, no
trio), then the pool methods that apply it with a fake connection opener, and the handover
method ``checkout_replacement()`` on a real connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from gemini_ws import Client, ConfigurationError, ConnectError, PoolTimeoutError
from gemini_ws._pool import ConnectionPool, decide

from .conftest import TEST_KEY

NOW = 100.0
IDLE_TIMEOUT = 30.0


@attrs.frozen
class Conn:
    """A connection as decide() sees it: a name and whether it is open."""

    name: str
    is_open: bool = True


def spares(spec: str) -> list[tuple[Conn, float]]:
    """``"a@80 b@95!"``: spare a idle since 80, spare b since 95 and dead (``!``)."""
    out = []
    for item in spec.split():
        name, since = item.rstrip("!").split("@")
        out.append((Conn(name, is_open=not item.endswith("!")), float(since)))
    return out


def run(
    idle: str = "",
    waiters: str = "",
    replacements: str = "",
    *,
    busy: int = 0,
    spares_connecting: int = 0,
    spare_target: int = 0,
    max_connections: int | None = None,
    closed: bool = False,
) -> dict[str, Any]:
    """decide() on a compact state; the decision in compact form (``None`` = dial)."""
    d = decide(
        now=NOW,
        idle=spares(idle),
        waiters=waiters.split(),
        replacements=replacements.split(),
        busy=busy,
        spares_connecting=spares_connecting,
        spare_target=spare_target,
        max_connections=max_connections,
        idle_timeout=IDLE_TIMEOUT,
        closed=closed,
    )
    return {
        "replacements": [(r, s[0].name if s else None) for r, s in d.replacements],
        "grants": [(w, s[0].name if s else None) for w, s in d.grants],
        "idle": [c.name for c, _ in d.idle],
        "close": [c.name for c in d.close],
        "expired": d.expired,
        "dead": d.dead,
        "open_spares": d.open_spares,
    }


NOTHING: dict[str, Any] = {
    "replacements": [],
    "grants": [],
    "idle": [],
    "close": [],
    "expired": 0,
    "dead": 0,
    "open_spares": 0,
}

TABLE: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("an empty pool fills to pool_size", {"spare_target": 2}, {"open_spares": 2}),
    (
        "the limit bounds the spares",
        {"busy": 3, "spare_target": 2, "max_connections": 4},
        {"open_spares": 1},
    ),
    (
        "only idle and opening spares count towards pool_size, not active ones (httpcore #1000)",
        {"idle": "a@90", "busy": 5, "spare_target": 2},
        {"idle": ["a"], "open_spares": 1},
    ),
    (
        "spares being opened count towards pool_size",
        {"busy": 1, "spares_connecting": 1, "spare_target": 2},
        {"open_spares": 1},
    ),
    (
        "expired and dead spares are closed, the others kept in order",
        {"idle": "old@60 dead@90! b@92 c@95", "spare_target": 3},
        {"idle": ["b", "c"], "close": ["old", "dead"], "expired": 1, "dead": 1, "open_spares": 1},
    ),
    (
        "a spare idle exactly idle_timeout is still good",
        {"idle": "a@70"},
        {"idle": ["a"]},
    ),
    (
        "waiters take the newest spare first, then free slots, in order",
        {"idle": "a@80 b@90", "waiters": "w1 w2 w3 w4", "max_connections": 3},
        {"grants": [("w1", "b"), ("w2", "a"), ("w3", None)]},
    ),
    (
        "the head waiter blocks the rest; no spare opens while anybody waits",
        {"waiters": "w1 w2", "busy": 2, "max_connections": 2, "spare_target": 2},
        {},
    ),
    (
        "an expired spare frees its slot for a waiter",
        {"idle": "old@10", "waiters": "w1", "max_connections": 1},
        {"grants": [("w1", None)], "close": ["old"], "expired": 1},
    ),
    (
        "a dead spare is never handed out",
        {"idle": "a@95!", "waiters": "w1", "max_connections": 1},
        {"grants": [("w1", None)], "close": ["a"], "dead": 1},
    ),
    (
        "once the waiters are served, spares refill within the limit",
        {"waiters": "w1", "busy": 1, "max_connections": 4, "spare_target": 5},
        {"grants": [("w1", None)], "open_spares": 2},
    ),
    (
        "a replacement takes the newest spare and its slot goes to the head waiter",
        {"idle": "s@90", "waiters": "w1 w2", "replacements": "r", "busy": 1, "max_connections": 2},
        {"replacements": [("r", "s")], "grants": [("w1", None)]},
    ),
    (
        "without a spare a replacement dials in its own slot and the waiter keeps waiting",
        {"waiters": "w1", "replacements": "r", "busy": 1, "max_connections": 1},
        {"replacements": [("r", None)]},
    ),
    (
        "replacements go before waiters for the spares",
        {"idle": "s@90", "waiters": "w1", "replacements": "r", "busy": 2, "max_connections": 3},
        {"replacements": [("r", "s")], "grants": [("w1", None)]},
    ),
    (
        "a closed pool closes every spare and serves nobody",
        {"idle": "a@90 b@95!", "waiters": "w1", "spare_target": 3, "closed": True},
        {"close": ["a", "b"]},
    ),
]


@pytest.mark.parametrize(("state", "expected"), [(s, e) for _, s, e in TABLE],
                         ids=[name for name, _, _ in TABLE])
def test_decide(state: dict[str, Any], expected: dict[str, Any]) -> None:
    assert run(**state) == {**NOTHING, **expected}


def test_decide_is_pure() -> None:
    """No trio call (this test runs outside trio), no I/O, and the inputs are left as they
    were; the same state gives the same decision."""
    idle = spares("a@10 b@95! c@96")
    waiters = ["w1", "w2"]
    before = (list(idle), list(waiters))
    kwargs: dict[str, Any] = dict(
        now=NOW, idle=idle, waiters=waiters, replacements=["r"], busy=1, spares_connecting=0,
        spare_target=2, max_connections=3, idle_timeout=IDLE_TIMEOUT,
    )
    first = decide(**kwargs)
    assert (idle, waiters) == before
    assert decide(**kwargs) == first
    with pytest.raises(RuntimeError):
        trio.current_time()  # really outside trio


@st.composite
def states(draw: st.DrawFn) -> dict[str, Any]:
    limit = draw(st.none() | st.integers(1, 6))
    n_idle = draw(st.integers(0, limit if limit is not None else 6))
    cap = 8 if limit is None else limit - n_idle
    n_spares_connecting = draw(st.integers(0, cap))
    n_replacements = draw(st.integers(0, cap - n_spares_connecting))
    busy = draw(st.integers(n_spares_connecting + n_replacements, max(
        cap, n_spares_connecting + n_replacements)))
    idle = [
        (Conn(f"s{i}", is_open=draw(st.booleans())), draw(st.floats(0, NOW)))
        for i in range(n_idle)
    ]
    idle.sort(key=lambda spare: spare[1])
    return dict(
        now=NOW,
        idle=idle,
        waiters=[f"w{i}" for i in range(draw(st.integers(0, 5)))],
        replacements=[f"r{i}" for i in range(n_replacements)],
        busy=busy,
        spares_connecting=n_spares_connecting,
        spare_target=draw(st.integers(0, 6)),
        max_connections=limit,
        idle_timeout=IDLE_TIMEOUT,
    )


@given(states())
def test_decide_invariants(state: dict[str, Any]) -> None:
    d = decide(**state)
    given_out = [s for _, s in d.replacements if s] + [s for _, s in d.grants if s]
    # every spare ends up exactly once: kept, closed, or handed out
    outcome = [c.name for c, _ in [*d.idle, *given_out]] + [c.name for c in d.close]
    assert sorted(outcome) == sorted(c.name for c, _ in state["idle"])
    assert all(c.is_open and NOW - t <= IDLE_TIMEOUT for c, t in [*d.idle, *given_out])
    # every replacement is served; waiters in order, a prefix of the queue
    assert [r for r, _ in d.replacements] == state["replacements"]
    assert [w for w, _ in d.grants] == state["waiters"][: len(d.grants)]
    # no spare opens while somebody waits, and never past the spare target
    if len(d.grants) < len(state["waiters"]):
        assert d.open_spares == 0
    if d.open_spares:
        assert len(d.idle) + state["spares_connecting"] + d.open_spares <= state["spare_target"]
    # never past the limit
    if state["max_connections"] is not None:
        dials = sum(1 for _, s in d.grants if s is None)
        freed = sum(1 for _, s in d.replacements if s)
        total = state["busy"] + len(state["idle"]) - len(d.close) - freed + dials
        assert total + d.open_spares <= state["max_connections"]


# --- the pool applying the decision, with a fake opener ----------------------------------------


class FakeConnection:
    """Stands in for a LiveConnection: the pool only reads ``is_open``, sets ``was_spare``,
    keeps an idle spare warm (``keep_warm``/``stop_keeping``) and calls ``aclose``."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.is_open = True
        self.was_spare = False

    def __repr__(self) -> str:
        return f"<FakeConnection {self.number}>"

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        self.is_open = False
        await trio.lowlevel.checkpoint()

    async def keep_warm(self) -> None:
        await trio.lowlevel.checkpoint()

    async def stop_keeping(self) -> None:
        await trio.lowlevel.checkpoint()


class Opener:
    """``open_connection`` for the pool: takes ``delay`` seconds; a dial started while ``fail``
    is set fails."""

    def __init__(self, delay: float = 1.0) -> None:
        self.delay = delay
        self.fail = False
        self.opened: list[FakeConnection] = []

    async def __call__(self) -> Any:
        failing = self.fail
        await trio.sleep(self.delay)
        if failing:
            raise ConnectError("the fake dial failed")
        conn = FakeConnection(len(self.opened) + 1)
        self.opened.append(conn)
        return conn


def make_pool(nursery: trio.Nursery, opener: Callable[[], Awaitable[Any]], **options: Any) -> Any:
    options.setdefault("pool_timeout", 1000.0)
    return ConnectionPool(opener, nursery, **options)


def counts(pool: ConnectionPool) -> tuple[int, int, int, int]:
    s = pool.statistics()
    return (s.active, s.idle, s.connecting, s.waiting)


async def start_waiter(nursery: trio.Nursery, pool: ConnectionPool, got: list[Any]) -> None:
    async def waiter() -> None:
        got.append(await pool.checkout())

    nursery.start_soon(waiter)
    await trio.testing.wait_all_tasks_blocked()


async def test_replacement_at_the_limit_does_not_queue_behind_a_waiter(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    opener = Opener(delay=1.0)
    pool = make_pool(nursery, opener, max_connections=1)
    old = await pool.checkout()
    got: list[Any] = []
    await start_waiter(nursery, pool, got)
    assert counts(pool) == (1, 0, 0, 1)
    started = trio.current_time()
    new = await pool.checkout_replacement(old)
    assert trio.current_time() - started == pytest.approx(1.0)  # one dial, no queueing
    assert new is not old and not new.was_spare
    await trio.testing.wait_all_tasks_blocked()
    assert got == [] and counts(pool) == (1, 0, 0, 1), "the waiter keeps waiting"
    pool.release(old)  # a no-op: the slot is new's
    await trio.testing.wait_all_tasks_blocked()
    assert got == [] and counts(pool) == (1, 0, 0, 1)
    stats = pool.statistics()
    assert (stats.replacements, stats.cold_checkouts, stats.handing_over) == (1, 2, 0)
    pool.release(new)
    with trio.fail_after(5):
        while not got:
            await trio.sleep(0.1)
    assert counts(pool) == (1, 0, 0, 0)


async def test_replacement_prefers_a_warm_spare_and_frees_the_inherited_slot(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    opener = Opener(delay=1.0)
    pool = make_pool(nursery, opener, max_connections=2, pool_timeout=5.0)
    old = await pool.checkout()
    assert await pool.prewarm(1) == 1
    started = trio.current_time()
    new = await pool.checkout_replacement(old)
    assert trio.current_time() == started  # no dial
    assert new.was_spare and counts(pool) == (1, 0, 0, 0)
    assert pool.statistics().warm_checkouts == 1
    # old's slot was given back: one more checkout fits, then the limit holds
    other = await pool.checkout()
    assert counts(pool) == (2, 0, 0, 0)
    with pytest.raises(PoolTimeoutError):
        await pool.checkout()
    for conn in (old, new, other):
        pool.release(conn)
    assert counts(pool) == (0, 0, 0, 0)


async def test_a_failed_replacement_dial_keeps_the_slot_with_the_session(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    opener = Opener(delay=1.0)
    pool = make_pool(nursery, opener, max_connections=1)
    old = await pool.checkout()
    got: list[Any] = []
    await start_waiter(nursery, pool, got)
    opener.fail = True
    with pytest.raises(ConnectError):
        await pool.checkout_replacement(old)
    await trio.testing.wait_all_tasks_blocked()
    assert got == [] and counts(pool) == (1, 0, 0, 1), "the slot stayed with the session"
    assert pool.statistics().handing_over == 1
    # a retry works in the same slot...
    opener.fail = False
    new = await pool.checkout_replacement(old)
    await trio.testing.wait_all_tasks_blocked()
    assert got == [] and counts(pool) == (1, 0, 0, 1)
    # ...and a retry past a failed setup on the new connection continues from it
    opener.fail = True
    with pytest.raises(ConnectError):
        await pool.checkout_replacement(new)
    with pytest.raises(ConfigurationError, match="not checked out"):
        await pool.checkout_replacement(old)
    # giving up gives the slot back: the waiter is served
    pool.release(new)
    opener.fail = False
    with trio.fail_after(5):
        while not got:
            await trio.sleep(0.1)
    assert counts(pool) == (1, 0, 0, 0) and pool.statistics().handing_over == 0


async def test_replacement_never_raises_pool_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    opener = Opener(delay=5.0)
    pool = make_pool(nursery, opener, max_connections=1, pool_timeout=0.5)
    old = await pool.checkout()
    new = await pool.checkout_replacement(old)  # the dial takes 10x pool_timeout
    assert new.is_open and pool.statistics().timeouts == 0


async def test_pool_timeout_and_dial_failure_are_told_apart(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    assert not issubclass(PoolTimeoutError, ConnectError)
    assert not issubclass(ConnectError, PoolTimeoutError)
    opener = Opener(delay=0.1)
    pool = make_pool(nursery, opener, max_connections=1, pool_timeout=1.0)
    opener.fail = True
    with pytest.raises(ConnectError):
        await pool.checkout()  # a dial failure: the dial's error, not a pool timeout
    assert counts(pool) == (0, 0, 0, 0) and pool.statistics().timeouts == 0
    opener.fail = False
    held = await pool.checkout()
    with pytest.raises(PoolTimeoutError):
        await pool.checkout()
    assert pool.statistics().timeouts == 1
    pool.release(held)


async def test_a_checkout_cancelled_right_after_its_grant_gives_the_slot_back(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """httpcore #1093: the slot is granted (synchronously, by a release) and the checkout is
    cancelled before it could dial."""
    opener = Opener(delay=1.0)
    pool = make_pool(nursery, opener, max_connections=1)
    holder = await pool.checkout()
    outcome: list[str] = []

    async def waiter(scope: trio.CancelScope) -> None:
        with scope:
            await pool.checkout()
            outcome.append("served")
        outcome.append("cancelled" if scope.cancelled_caught else "done")

    scope = trio.CancelScope()
    nursery.start_soon(waiter, scope)
    await trio.testing.wait_all_tasks_blocked()
    pool.release(holder)  # grants the waiter a slot to dial...
    scope.cancel()  # ...and it is cancelled before it runs
    await trio.testing.wait_all_tasks_blocked()
    assert outcome == ["cancelled"]
    assert counts(pool) == (0, 0, 0, 0)
    conn = await pool.checkout()  # the slot is free again
    pool.release(conn)


class CancelOnCheck(FakeConnection):
    """A spare that cancels *scope* when the pool checks it is alive: that is while the pool
    hands it to a parked waiter, so the waiter is cancelled with the spare already granted."""

    def __init__(self, scope: trio.CancelScope) -> None:
        super().__init__(0)
        self.scope = scope

    @property  # type: ignore[override]
    def is_open(self) -> bool:
        self.scope.cancel()
        return self._open

    @is_open.setter
    def is_open(self, value: bool) -> None:
        self._open = value


async def test_a_spare_granted_to_a_cancelled_checkout_goes_back_to_idle(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    gate = trio.Event()
    scope = trio.CancelScope()
    dials = 0

    async def opener() -> Any:
        nonlocal dials
        dials += 1
        if dials == 1:
            return FakeConnection(1)
        await gate.wait()
        return CancelOnCheck(scope)

    pool = make_pool(nursery, opener, max_connections=2, pool_size=1)
    holder = await pool.checkout()  # starts opening a spare, held at the gate
    assert counts(pool) == (1, 0, 1, 0)

    async def waiter() -> None:
        with scope:
            await pool.checkout()
            raise AssertionError("the waiter was cancelled")

    nursery.start_soon(waiter)
    await trio.testing.wait_all_tasks_blocked()
    assert counts(pool) == (1, 0, 1, 1)
    gate.set()  # the spare opens, goes to the waiter, which is cancelled meanwhile
    await trio.testing.wait_all_tasks_blocked()
    assert scope.cancelled_caught
    assert counts(pool) == (1, 1, 0, 0), "the spare is idle again"
    stats = pool.statistics()
    assert stats.warm_checkouts == 0
    spare = await pool.checkout()
    assert isinstance(spare, CancelOnCheck) and spare.was_spare
    pool.release(holder)
    pool.release(spare)


async def test_a_failed_dial_passes_the_slot_to_the_next_waiter(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    opener = Opener(delay=1.0)
    pool = make_pool(nursery, opener, max_connections=1)
    opener.fail = True
    errors: list[BaseException] = []
    got: list[Any] = []

    async def failing() -> None:
        with pytest.raises(ConnectError) as info:
            await pool.checkout()
        errors.append(info.value)

    nursery.start_soon(failing)
    await trio.testing.wait_all_tasks_blocked()
    await start_waiter(nursery, pool, got)
    assert counts(pool) == (0, 0, 1, 1)
    await trio.sleep(0.5)
    opener.fail = False
    await trio.sleep(0.6)  # the first dial failed: the waiter dials at once, in its slot
    assert errors and counts(pool) == (0, 0, 1, 0)
    await trio.sleep(1.0)
    assert len(got) == 1 and counts(pool) == (1, 0, 0, 0)


async def test_replacement_needs_a_connection_of_this_pool(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    pool = make_pool(nursery, Opener())
    stranger: Any = FakeConnection(99)
    with pytest.raises(ConfigurationError, match="not checked out"):
        await pool.checkout_replacement(stranger)
    conn = await pool.checkout()
    pool.release(conn)
    with pytest.raises(ConfigurationError, match="not checked out"):
        await pool.checkout_replacement(conn)  # released: it holds no slot any more


async def test_released_while_the_replacement_opens(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    opener = Opener(delay=1.0)
    pool = make_pool(nursery, opener, max_connections=1)
    old = await pool.checkout()
    errors: list[BaseException] = []

    async def replace() -> None:
        try:
            await pool.checkout_replacement(old)
        except Exception as exc:
            errors.append(exc)

    nursery.start_soon(replace)
    await trio.sleep(0.5)
    pool.release(old)  # the session ended meanwhile
    await trio.sleep(1.0)
    (error,) = errors
    assert "released" in str(error)
    await trio.testing.wait_all_tasks_blocked()
    assert counts(pool) == (0, 0, 0, 0)
    assert not opener.opened[-1].is_open  # the new connection was closed, not leaked


async def test_expired_and_dead_spares_are_closed_in_the_nursery(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    opener = Opener(delay=0.1)
    pool = make_pool(nursery, opener, idle_timeout=10.0)
    assert await pool.prewarm(2) == 2
    first, second = opener.opened
    second.is_open = False  # the server dropped it
    await trio.sleep(5)
    conn = await pool.checkout()  # touches the pool: the dead one goes
    await trio.testing.wait_all_tasks_blocked()
    assert conn is first and pool.statistics().discarded_dead == 1
    assert await pool.prewarm(1) == 1
    await trio.sleep(11)
    assert pool.statistics().expired == 0, "lazy: nothing happens until the pool is touched"
    await conn.aclose()  # (the caller closes what it checked out)
    pool.release(conn)
    await trio.testing.wait_all_tasks_blocked()
    assert pool.statistics().expired == 1 and counts(pool) == (0, 0, 0, 0)
    assert not any(c.is_open for c in opener.opened)


# --- on real connections ------------------------------------------------------------------------


async def test_replacement_on_a_real_connection_at_max_connections_1(fake_server: Any) -> None:
    """checkout_replacement at max_connections=1 while another task waits in checkout(): the
    replacement gets a connection promptly and the waiter keeps waiting."""
    async with Client(api_key=TEST_KEY, base_url=fake_server.url, max_connections=1) as client:
        pool = client.pool
        old = await pool.checkout()
        got: list[Any] = []
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:

                async def waiter() -> None:
                    got.append(await pool.checkout())

                nursery.start_soon(waiter)
                while pool.statistics().waiting != 1:
                    await trio.sleep(0.005)
                await old.aclose()  # the caller closes the old connection
                with trio.fail_after(2):
                    new = await pool.checkout_replacement(old)
                assert new.is_open and new is not old
                await trio.sleep(0.05)
                assert got == [] and pool.statistics().waiting == 1
                assert repr(pool) == "<ConnectionPool: 1 active, 0 idle, 0 connecting, 1 waiting>"
                pool.release(old)  # no-op
                assert pool.statistics().waiting == 1
                await new.aclose()
                pool.release(new)
            (served,) = got
            assert served.is_open
            await served.aclose()
            pool.release(served)
        assert pool.statistics().active == 0
