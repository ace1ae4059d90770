"""Key hygiene and transport security.

Across a set of failing scenarios (bad key, unknown model, refused upgrades, TLS failure, a
protocol error on a frame that contains the key, a close reason and an HTTP body that contain
it), every exception text, repr, formatted traceback (with its whole chain) and log record is
collected, and the key must appear in none of them. Three kinds of key are used: a Google-shaped
key, a key of no recognisable shape (only the client's own registration can mask it) and an
ephemeral token.

Also: the key never goes in a URL; TLS verification is on by default; plain ``ws://`` is refused
for hosts that are not loopback; the message size limit holds; server-controlled strings are
excerpted and escaped in errors.
"""

from __future__ import annotations

import logging
import ssl
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from gemini_ws import (
    Client,
    ConfigurationError,
    GeminiWSError,
    HandshakeRejectedError,
    LiveConfig,
    MessageTooLargeError,
    ProtocolError,
    ServerClosedError,
    ServerContent,
    SetupRejectedError,
    TLSError,
)
from gemini_ws._transport import default_ssl_context
from gemini_ws.testing import Fault, open_fake_server

from .conftest import TEST_KEY

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])
#: a key with no recognisable shape: only the client's own registration can mask it
PLAIN_KEY = "plain-secret-hygiene-0f3c9a7e5b1d"
TOKEN = "auth_tokens/abc123def456"
KEYS = {"google_shaped": TEST_KEY, "no_shape": PLAIN_KEY, "ephemeral": TOKEN}


class _Everything(logging.Handler):
    """Every log record of the process, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        self.texts.append(repr(record.args))


@pytest.fixture
def all_logs() -> Iterator[_Everything]:
    handler = _Everything()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def texts_of_error(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    for value in vars(error).values():
        texts.append(repr(value))
    # the whole chain, also the parts format_exception would hide
    seen = {id(error)}

    def next_of(e: BaseException) -> BaseException | None:
        return e.__cause__ or (None if e.__suppress_context__ else e.__context__)

    cause = next_of(error)
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        texts += [str(cause), repr(cause)]
        cause = next_of(cause)
    return texts


async def failing_scenarios(key: str) -> list[BaseException]:
    """Run every failing scenario with *key*; return the errors the application saw."""
    errors: list[BaseException] = []
    ephemeral = key.startswith("auth_tokens/")
    server_key = "server-side-other-key-000000" if ephemeral else key
    tokens = (key,) if ephemeral else ()
    echo = f"echo of the credential {key} here"

    async def expect(
        server: Any,
        error_type: type[GeminiWSError],
        *,
        api_key: str = key,
        turn: bool = False,
        **options: Any,
    ) -> None:
        async with Client(api_key=api_key, base_url=server.url, **options) as client:
            with pytest.raises(error_type) as info:
                async with client.stream(MODEL, config=TEXT) as s:
                    if turn:
                        await s.send_text("hello")
                        while True:
                            await s.receive()
        errors.append(info.value)

    with trio.fail_after(20):
        async with open_fake_server(
            api_key=server_key, auth_tokens=tokens, chunk_count=2, close_timeout=0.2
        ) as server:
            # a bad key: the server closes 1007 (the client holds a key the server does not)
            bad = "auth_tokens/zzz-not-a-token-999" if ephemeral else f"{key}-wrong"
            await expect(server, SetupRejectedError, api_key=bad)
            # an unknown model: 1008
            async with Client(api_key=key, base_url=server.url) as client:
                with pytest.raises(SetupRejectedError) as info:
                    async with client.stream("no-such-model"):
                        pass
                errors.append(info.value)
            # refused upgrades, one with the key in the HTTP body
            for status in (401, 403, 429, 503):
                server.inject(Fault.reject_upgrade(status))
                await expect(server, HandshakeRejectedError)
            server.inject(Fault.reject_upgrade(400, body=echo.encode()))
            await expect(server, HandshakeRejectedError)
            # a frame that contains the key, which is not valid JSON
            server.inject(Fault.malformed_json(at_message=2, payload=f'{{"x": "{key}'.encode()))
            await expect(server, ProtocolError, turn=True)
            # a valid frame carrying the key, larger than the limit
            server.inject(Fault.oversized_frame(5000, at_message=2))
            await expect(server, MessageTooLargeError, turn=True, max_message_size=1000)
            # a close reason that contains the key
            server.inject(Fault.close(1011, echo, at_message=2))
            await expect(server, ServerClosedError, turn=True)
            server.inject(Fault.close(1007, echo, at_message=1))
            await expect(server, SetupRejectedError)
        # TLS: the certificate is not trusted
        async with open_fake_server(
            api_key=server_key, auth_tokens=tokens, tls=True, raise_errors=False
        ) as server:
            await expect(server, TLSError)
    return errors


@pytest.mark.parametrize("kind", sorted(KEYS))
async def test_key_appears_in_no_error_traceback_or_log(kind: str, all_logs: _Everything) -> None:
    key = KEYS[kind]
    errors = await failing_scenarios(key)
    assert len(errors) == 12
    error_texts = [t for e in errors for t in texts_of_error(e)]
    # the echoes really were there to be masked (the scenarios are not vacuous)
    assert sum("echo of the credential ***" in t for t in error_texts) >= 3
    leaked = [t for t in error_texts if key in t]
    assert not leaked, f"the {kind} key leaked into an error: {leaked[0][:300]!r}"
    leaked = [t for t in all_logs.texts if key in t]
    assert not leaked, f"the {kind} key leaked into a log record: {leaked[0][:300]!r}"


@pytest.mark.parametrize("kind", sorted(KEYS))
async def test_key_is_never_in_a_url(kind: str) -> None:
    key = KEYS[kind]
    ephemeral = key.startswith("auth_tokens/")
    async with open_fake_server(
        api_key="other-key-0000000000" if ephemeral else key,
        auth_tokens=(key,) if ephemeral else (),
        chunk_count=2,
    ) as server:
        async with Client(api_key=key, base_url=server.url) as client:
            assert key not in client.endpoint.url and key not in repr(client)
            with trio.fail_after(5):
                async with client.stream(MODEL, config=TEXT) as s:
                    await s.send_text("hi")
                    async for _ in s.turn():
                        pass
                    assert key not in repr(s) and key not in repr(s.connection)
                    assert key not in repr(s.statistics())
        (conn,) = server.connections
        assert key not in conn.path and not conn.query
        assert conn.credentials == [("authorization" if ephemeral else "x-goog-api-key", key)]


async def test_tls_verification_is_on_by_default_and_only_ssl_context_changes_it() -> None:
    ctx = default_ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    async with open_fake_server(api_key=TEST_KEY, tls=True, raise_errors=False) as server:
        with trio.fail_after(10):
            async with Client(api_key=TEST_KEY, base_url=server.url) as client:
                with pytest.raises(TLSError, match="certificate"):
                    async with client.stream(MODEL, config=TEXT):
                        pass
                # other options do not weaken it
            async with Client(
                api_key=TEST_KEY, base_url=server.url, allow_insecure=True, connect_timeout=5
            ) as client:
                with pytest.raises(TLSError):
                    async with client.stream(MODEL, config=TEXT):
                        pass
            # an explicit context that trusts the test CA is the one way in
            async with Client(
                api_key=TEST_KEY, base_url=server.url, ssl_context=server.client_ssl_context()
            ) as client:
                async with client.stream(MODEL, config=TEXT) as s:
                    assert s.connection.endpoint.secure


@pytest.mark.parametrize(
    "url",
    [
        "ws://example.com",
        "ws://10.0.0.1:80",
        "http://192.168.1.1",
        "ws://0.0.0.0:1",
        "ws://localhost.example.com",
        "ws://127.0.0.1.nip.io",
        "ws://127.0.0.1@example.com",
        "ws://example.com#@127.0.0.1",
        "ws://example.com/?@127.0.0.1",
    ],
)
def test_plain_ws_is_refused_for_hosts_that_are_not_loopback(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Client(api_key=TEST_KEY, base_url=url)


def test_plain_ws_is_allowed_for_loopback() -> None:
    for url in ("ws://127.0.0.1:1", "ws://127.5.6.7:1", "ws://LOCALHOST:1", "ws://[::1]:1"):
        assert not Client(api_key=TEST_KEY, base_url=url).endpoint.secure


@pytest.mark.parametrize(
    "headers",
    [
        {"x-extra": "v\r\nx-goog-api-key: other"},
        {"x-extra\r\nx-injected": "v"},
        {"x-extra": "caf\u00e9\u2028"},
        {"x-extra": 5},
    ],
)
def test_headers_that_cannot_be_sent_safely_are_configuration_errors(
    headers: dict[str, Any],
) -> None:
    """Extra headers travel beside the key: CR/LF (header injection), characters outside
    latin-1 and non-str values must be refused when the client is built, not at connect time
    as a ConnectError."""
    with pytest.raises(ConfigurationError):
        Client(api_key=TEST_KEY, base_url="ws://127.0.0.1:1", headers=headers)


async def test_message_size_limit_is_enforced() -> None:
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        with trio.fail_after(10):
            async with Client(api_key=TEST_KEY, base_url=server.url, max_message_size=10_000) as c:
                server.inject(Fault.oversized_frame(10_001, at_message=2))
                with pytest.raises(MessageTooLargeError):
                    async with c.stream(MODEL, config=TEXT) as s:
                        await s.send_text("hi")
                        while True:
                            await s.receive()
                # exactly at the limit passes
                server.inject(Fault.oversized_frame(10_000, at_message=2))
                async with c.stream(MODEL, config=TEXT) as s:
                    await s.send_text("hi")
                    first = await s.receive()
                    assert isinstance(first, ServerContent)
                    assert len(first.text) > 9_000


async def test_server_controlled_strings_are_excerpted_and_escaped() -> None:
    nasty = "\x1b[31mred\x1b[0m\r\nInjected-Line: 1\u202eevil\x00" + "z" * 60
    long_body = ("<html>" + "A" * 5000 + "</html>").encode()
    async with open_fake_server(api_key=TEST_KEY, chunk_count=2) as server:
        faults = [
            Fault.close(1011, nasty, at_message=2),
            Fault.reject_upgrade(503, body=long_body),
            Fault.malformed_json(at_message=2, payload=b"\x00\x1b[2J" + b"B" * 5000),
        ]
        errors: list[GeminiWSError] = []
        with trio.fail_after(10):
            async with Client(api_key=TEST_KEY, base_url=server.url) as client:
                for fault in faults:
                    server.inject(fault)  # (injections stack on the next connection)
                    try:
                        async with client.stream(MODEL, config=TEXT) as s:
                            await s.send_text("hi")
                            while True:
                                await s.receive()
                    except GeminiWSError as exc:
                        errors.append(exc)
    assert [type(e) for e in errors] == [type(errors[0]), HandshakeRejectedError, ProtocolError]
    assert isinstance(errors[0], ServerClosedError)
    for error in errors:
        text = str(error)
        assert text.isprintable(), f"raw control characters in {text!r:.200}"
        assert "\u202e" not in text and "\x1b" not in text
        assert len(text) < 600, f"an error message of {len(text)} characters"
    assert "\\x1b" in errors[0].reason  # escaped, still readable
