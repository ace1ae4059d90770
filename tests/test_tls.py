"""The TLS pump (``gemini_ws._tls.TLSStream``) against a TLS server written for these tests on
trio's own ``SSLStream``: a burst of records comes back from one read, close_notify and a ragged
EOF both end the stream, TLS 1.3 session tickets and a large write pass through, a failed
verification is an ``ssl`` error, and the stream is usable by one reader and one writer at once.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio

from gemini_ws import Client, TLSError
from gemini_ws._tls import TLSStream
from gemini_ws.testing import open_fake_server
from gemini_ws.testing._tls import make_certificates

from .conftest import TEST_KEY

Handler = Callable[[trio.SSLStream[trio.SocketStream]], Awaitable[None]]


@pytest.fixture(scope="module")
def certs():  # type: ignore[no-untyped-def]
    return make_certificates()


@asynccontextmanager
async def tls_server(certs, handler: Handler) -> AsyncIterator[int]:  # type: ignore[no-untyped-def]
    """A TLS server on 127.0.0.1 running *handler* per connection; yields its port."""

    async def serve(tcp: trio.SocketStream) -> None:
        tls = trio.SSLStream(tcp, certs.server_context, server_side=True)
        try:
            await tls.do_handshake()
            await handler(tls)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(tls)

    async with trio.open_nursery() as nursery:
        serve_tls = functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1")
        listeners = await nursery.start(serve_tls)
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def connect(certs, port: int) -> TLSStream:  # type: ignore[no-untyped-def]
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    tls = TLSStream(tcp, certs.client_context(), server_hostname="127.0.0.1")
    await tls.do_handshake()
    return tls


async def read_all(tls: TLSStream) -> tuple[bytes, int]:
    """Everything until the end of the stream, and how many receive_some calls it took."""
    data, calls = b"", 0
    while True:
        chunk = await tls.receive_some(1 << 20)
        calls += 1
        if not chunk:
            return data, calls
        data += chunk


async def test_one_read_returns_every_record_of_a_burst(certs) -> None:  # type: ignore[no-untyped-def]
    ready = trio.Event()

    async def burst(tls: trio.SSLStream[trio.SocketStream]) -> None:
        for i in range(200):  # 200 small records, one per send (as a streaming server writes)
            await tls.send_all(b"%03d;" % i)
        ready.set()
        await tls.aclose()  # close_notify

    async with tls_server(certs, burst) as port:
        tls = await connect(certs, port)
        await ready.wait()
        await trio.sleep(0.05)  # every record is in the client's socket buffer
        first = await tls.receive_some(1 << 20)
        rest, _ = await read_all(tls)
        await tls.aclose()
    assert first + rest == b"".join(b"%03d;" % i for i in range(200))
    # trio's SSLStream returns one record per call: 200 calls. The pump needs one socket read.
    assert len(first) > 100 * 4


async def test_a_cancelled_receive_loses_no_decrypted_bytes(certs) -> None:  # type: ignore[no-untyped-def]
    ready = trio.Event()

    async def burst(tls: trio.SSLStream[trio.SocketStream]) -> None:
        for i in range(50):
            await tls.send_all(b"%02d;" % i)
        ready.set()
        await tls.aclose()

    async with tls_server(certs, burst) as port:
        tls = await connect(certs, port)
        await ready.wait()
        await trio.sleep(0.05)
        head = await tls.receive_some(3)  # the rest is decrypted, or waits in the TLS object
        cancelled = 0
        for _ in range(5):  # each of these finds bytes ready, then is cancelled at its yield
            with trio.CancelScope() as scope:
                scope.cancel()
                await tls.receive_some(6)
            cancelled += scope.cancelled_caught
        rest, _ = await read_all(tls)
        await tls.aclose()
    assert cancelled == 5
    assert head + rest == b"".join(b"%02d;" % i for i in range(50))


async def test_close_notify_and_a_ragged_eof_both_end_the_stream(certs) -> None:  # type: ignore[no-untyped-def]
    async def polite(tls: trio.SSLStream[trio.SocketStream]) -> None:
        await tls.send_all(b"bye")
        await tls.aclose()

    async def ragged(tls: trio.SSLStream[trio.SocketStream]) -> None:
        await tls.send_all(b"bye")
        await tls.transport_stream.aclose()  # TCP closed, no close_notify

    for handler in (polite, ragged):
        async with tls_server(certs, handler) as port:
            tls = await connect(certs, port)
            data, _ = await read_all(tls)
            assert data == b"bye"
            assert await tls.receive_some(10) == b""  # and it stays ended
            await tls.aclose()


async def test_tls13_session_tickets_and_a_large_echo_pass_through(certs) -> None:  # type: ignore[no-untyped-def]
    async def echo(tls: trio.SSLStream[trio.SocketStream]) -> None:
        while data := await tls.receive_some(1 << 16):
            await tls.send_all(data)

    payload = bytes(range(256)) * 8192  # 2 MiB: many records each way
    async with tls_server(certs, echo) as port:
        tls = await connect(certs, port)
        assert tls._tls.version() == "TLSv1.3"  # the server sent tickets after the handshake
        got = bytearray()
        async with trio.open_nursery() as nursery:  # one writer and one reader at once
            nursery.start_soon(tls.send_all, payload)
            while len(got) < len(payload):
                got += await tls.receive_some(1 << 20)
        await tls.aclose()
    assert bytes(got) == payload


async def test_an_untrusted_certificate_is_a_tls_error_promptly(certs) -> None:  # type: ignore[no-untyped-def]
    async with open_fake_server(api_key=TEST_KEY, tls=True) as server:
        # the default verifying context does not trust the test CA
        async with Client(api_key=TEST_KEY, base_url=server.url) as client:
            with trio.fail_after(5), pytest.raises(TLSError, match="certificate"):
                async with client.stream("gemini-3.1-flash-live-preview"):
                    pass


async def test_the_server_vanishing_during_the_handshake_is_broken_not_a_hang(certs) -> None:  # type: ignore[no-untyped-def]
    async def vanish(tcp: trio.SocketStream) -> None:
        await tcp.receive_some(1 << 16)  # the ClientHello
        await tcp.aclose()

    async with trio.open_nursery() as nursery:
        serve_raw = functools.partial(trio.serve_tcp, vanish, 0, host="127.0.0.1")
        listeners = await nursery.start(serve_raw)
        port = listeners[0].socket.getsockname()[1]
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        tls = TLSStream(tcp, certs.client_context(), server_hostname="127.0.0.1")
        with trio.fail_after(5), pytest.raises((trio.BrokenResourceError, ssl.SSLError)):
            await tls.do_handshake()
        await tls.aclose()
        nursery.cancel_scope.cancel()
