"""Shared fixtures. pytest-trio runs every async test in trio mode (see pyproject).

Every test runs with the ``gemini_ws`` and ``trio_websocket`` loggers at DEBUG, and an autouse
check fails any test whose log records mention one of the suite's API keys: the key must never
reach a log line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
import trio

#: Test modules run once per transport (``GEMINI_WS_TEST_TRANSPORT`` forces one transport on
#: every module instead).
PER_TRANSPORT = {
    "test_cancellation",
    "test_close_codes",
    "test_fault_matrix",
    "test_handover_integrity",
    "test_key_hygiene",
    "test_receive_under_load",
    "test_resumption",
    "test_stream",
    "test_transport",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-live",
        action="store_true",
        help="also run the tests marked live, against the real Gemini API (needs GEMINI_API_KEY)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
    if config.getoption("--run-live") and key:
        return
    reason = (
        "talks to the real Gemini API: set GEMINI_API_KEY and pass --run-live"
        if not key
        else "talks to the real Gemini API: pass --run-live (GEMINI_API_KEY is set)"
    )
    for item in items:
        if "live" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from gemini_ws._websocket import TRANSPORTS

    forced = os.environ.get("GEMINI_WS_TEST_TRANSPORT")
    module = metafunc.module.__name__.rpartition(".")[2]
    if forced:
        names = [forced]
    elif module in PER_TRANSPORT:
        names = list(TRANSPORTS)
    else:
        return
    metafunc.parametrize("ws_transport", names, indirect=True)


@pytest.fixture(autouse=True)
def ws_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The transport every Client of this test uses when it names none (parametrised for the
    modules in PER_TRANSPORT, else the library's default)."""
    from gemini_ws import _connection

    name: str = getattr(request, "param", _connection.DEFAULT_TRANSPORT)
    monkeypatch.setattr(_connection, "DEFAULT_TRANSPORT", name)
    return name


def known_gap(request: pytest.FixtureRequest, transport: str, reason: str) -> None:
    """Mark this test as an expected failure on *transport* (strict: it must fail there, so a
    gap that closes is noticed). The gaps are listed in docs/transports.rst."""
    if request.getfixturevalue("ws_transport") == transport:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


#: The key every fake-server test uses; asserted absent from logs and errors.
TEST_KEY = "AIzaSyTESTKEY-gemini-ws-0123456789abcdef"
SECRETS = (TEST_KEY, "AIzaTESTKEY-transport-0123456789abcdef", "auth_tokens/abc123def456")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += repr(record.exc_info[1])
        self.lines.append(text)


@pytest.fixture(autouse=True)
def no_key_in_logs() -> Iterator[None]:
    handler = _Collect()
    loggers = [logging.getLogger(n) for n in ("gemini_ws", "trio-websocket", "trio_websocket")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    leaked = [line for line in handler.lines for s in SECRETS if s in line]
    assert not leaked, f"an API key reached a log record: {leaked[:1]}"


@pytest.fixture
async def fake_server() -> AsyncIterator[object]:
    """A fake Live server on 127.0.0.1 with fast pacing."""
    from gemini_ws.testing import open_fake_server

    async with open_fake_server(api_key=TEST_KEY, chunk_count=3) as server:
        yield server


@pytest.fixture
async def client(fake_server: object) -> AsyncIterator[object]:
    """A Client pointed at ``fake_server``."""
    from gemini_ws import Client

    async with Client(api_key=TEST_KEY, base_url=fake_server.url) as c:  # type: ignore[attr-defined]
        yield c



@pytest.fixture(autouse=True)
def no_key_in_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every GeminiWSError created during a test is checked: its str, repr and attributes must
    not contain an API key (the suite covers connect, setup, close and protocol errors)."""
    from gemini_ws import _errors

    created: list[BaseException] = []
    original = _errors.GeminiWSError.__init__

    def recording_init(self: _errors.GeminiWSError, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        created.append(self)

    monkeypatch.setattr(_errors.GeminiWSError, "__init__", recording_init)
    yield
    for error in created:
        texts = [str(error), repr(error)] + [repr(v) for v in vars(error).values()]
        leaked = [t for t in texts for s in SECRETS if s in t]
        assert not leaked, f"an API key reached {type(error).__name__}: {leaked[:1]}"


@pytest.fixture
async def silent_port(nursery: trio.Nursery) -> AsyncIterator[int]:
    """A port on 127.0.0.1 whose server accepts TCP and then never says a word."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    held: list[trio.abc.Stream] = []

    async def hold(stream: trio.abc.Stream) -> None:
        held.append(stream)
        await trio.sleep_forever()

    nursery.start_soon(trio.serve_listeners, hold, listeners)
    yield int(listeners[0].socket.getsockname()[1])
    for stream in held:
        await stream.aclose()


@contextmanager
def instrumented(instrument: trio.abc.Instrument) -> Iterator[None]:
    """Run the block with *instrument* added to the trio run (removed however it ends)."""
    trio.lowlevel.add_instrument(instrument)
    try:
        yield
    finally:
        trio.lowlevel.remove_instrument(instrument)
