"""Transport and endpoint: each way a connection can fail surfaces promptly as its own error,
and the key never reaches a URL. These tests use bare trio-websocket servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import ssl

import pytest
import trio
import trio_websocket
import trustme

import gemini_ws
from gemini_ws import (
    Client,
    ConfigurationError,
    ConnectionRefusedByHostError,
    ConnectTimeoutError,
    DNSError,
    HandshakeRejectedError,
    TLSError,
)
from gemini_ws._transport import Endpoint

KEY = "AIzaTESTKEY-transport-0123456789abcdef"
MODEL = "gemini-3.1-flash-live-preview"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def setup_complete_handler(request: trio_websocket.WebSocketRequest) -> None:
    ws = await request.accept()
    try:
        await ws.get_message()
        await ws.send_message(b'{\n  "setupComplete": {}\n}\n')
        while True:
            await ws.get_message()
    except trio_websocket.ConnectionClosed:
        pass


async def test_refused_connection_is_its_own_error() -> None:
    port = free_port()
    with trio.fail_after(5):
        async with Client(api_key=KEY, base_url=f"ws://127.0.0.1:{port}") as client:
            with pytest.raises(ConnectionRefusedByHostError) as info:
                async with client.stream(MODEL):
                    pass
    assert isinstance(info.value, gemini_ws.ConnectError)
    assert KEY not in str(info.value) and KEY not in repr(info.value)


async def test_unresolvable_host_is_a_dns_error() -> None:
    with trio.fail_after(10):
        async with Client(
            api_key=KEY, base_url="ws://no-such-host.invalid:9", allow_insecure=True
        ) as client:
            with pytest.raises(DNSError, match=r"no-such-host\.invalid"):
                async with client.stream(MODEL):
                    pass


async def test_http_rejection_keeps_status_and_body_excerpt(nursery: trio.Nursery) -> None:
    async def reject(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(403, body=b'{"error": "PERMISSION_DENIED: nope"}')

    server = await nursery.start(trio_websocket.serve_websocket, reject, "127.0.0.1", 0, None)
    with trio.fail_after(5):
        async with Client(api_key=KEY, base_url=f"ws://127.0.0.1:{server.port}") as client:
            with pytest.raises(HandshakeRejectedError) as info:
                async with client.stream(MODEL):
                    pass
    assert info.value.status == 403
    assert "PERMISSION_DENIED" in info.value.body
    assert "403" in str(info.value)


async def test_silent_server_gives_connect_timeout(silent_port: int) -> None:
    """A server that accepts TCP but never answers the upgrade: a timeout, not a hang."""
    with trio.fail_after(5):
        async with Client(
            api_key=KEY, base_url=f"ws://127.0.0.1:{silent_port}", connect_timeout=0.3
        ) as client:
            with pytest.raises(ConnectTimeoutError):
                async with client.stream(MODEL):
                    pass


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


async def tls_server(nursery: trio.Nursery, ca: trustme.CA) -> int:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    server = await nursery.start(
        trio_websocket.serve_websocket, setup_complete_handler, "127.0.0.1", 0, server_ctx
    )
    return int(server.port)


async def test_untrusted_certificate_is_a_prompt_tls_error(
    nursery: trio.Nursery, ca: trustme.CA
) -> None:
    port = await tls_server(nursery, ca)
    with trio.fail_after(5):
        async with Client(api_key=KEY, base_url=f"wss://127.0.0.1:{port}") as client:
            with pytest.raises(TLSError, match="certificate"):
                async with client.stream(MODEL):
                    pass


async def test_tls_with_trusted_ca_works(nursery: trio.Nursery, ca: trustme.CA) -> None:
    port = await tls_server(nursery, ca)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with trio.fail_after(5):
        async with Client(
            api_key=KEY, base_url=f"wss://127.0.0.1:{port}", ssl_context=ctx
        ) as client:
            async with client.stream(MODEL) as s:
                assert s.state == "open"
                assert s.connection.endpoint.secure


async def test_key_travels_in_header_only(nursery: trio.Nursery) -> None:
    seen: list[trio_websocket.WebSocketRequest] = []

    async def record(request: trio_websocket.WebSocketRequest) -> None:
        seen.append(request)
        await setup_complete_handler(request)

    server = await nursery.start(trio_websocket.serve_websocket, record, "127.0.0.1", 0, None)
    with trio.fail_after(5):
        async with Client(api_key=KEY, base_url=f"ws://127.0.0.1:{server.port}") as client:
            async with client.stream(MODEL) as s:
                assert KEY not in repr(s) and KEY not in repr(client)
                assert KEY not in s.connection.endpoint.url
    (request,) = seen
    headers = {k.decode().lower(): v.decode() for k, v in request.headers}
    assert headers["x-goog-api-key"] == KEY
    assert KEY not in request.path
    assert request.path == (
        "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    )


async def test_ephemeral_token_uses_constrained_method_and_token_header(
    nursery: trio.Nursery,
) -> None:
    seen: list[trio_websocket.WebSocketRequest] = []
    first_messages: list[dict[str, object]] = []

    async def record(request: trio_websocket.WebSocketRequest) -> None:
        seen.append(request)
        ws = await request.accept()
        try:
            first_messages.append(json.loads(await ws.get_message()))
            await ws.send_message(b'{"setupComplete": {}}')
            while True:
                await ws.get_message()
        except trio_websocket.ConnectionClosed:
            pass

    server = await nursery.start(trio_websocket.serve_websocket, record, "127.0.0.1", 0, None)
    token = "auth_tokens/abc123def456"
    with trio.fail_after(5):
        async with Client(api_key=token, base_url=f"ws://127.0.0.1:{server.port}") as client:
            async with client.stream(MODEL):
                pass
    (request,) = seen
    headers = {k.decode().lower(): v.decode() for k, v in request.headers}
    assert headers["authorization"] == f"Token {token}"
    assert "x-goog-api-key" not in headers
    assert request.path.endswith("v1alpha.GenerativeService.BidiGenerateContentConstrained")
    assert first_messages[0]["setup"] == {"model": f"models/{MODEL}"}


def test_default_endpoint_is_the_real_v1beta_url() -> None:
    client = Client(api_key=KEY)
    assert client.endpoint.url == (
        "wss://generativelanguage.googleapis.com/ws/"
        "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    )
    assert Client(api_key=KEY, api_version="v1alpha").endpoint.resource.count("v1alpha") == 1


@pytest.mark.parametrize(
    "base_url",
    ["ws://example.com", "ws://10.0.0.1:8080", "ftp://127.0.0.1", "ws://", "wss://h/?key=x"],
)
def test_bad_or_insecure_base_urls_are_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError):
        Client(api_key=KEY, base_url=base_url)


def test_plain_ws_allowed_for_loopback_and_when_explicit() -> None:
    for url in ("ws://127.0.0.1:1", "ws://localhost:1", "ws://[::1]:1", "http://127.0.0.2:1"):
        assert not Client(api_key=KEY, base_url=url).endpoint.secure
    assert Client(api_key=KEY, base_url="ws://example.com", allow_insecure=True).endpoint.host
    ep = Endpoint.from_base_url("https://127.0.0.1:9/prefix/", "/ws/x")
    assert ep.url == "wss://127.0.0.1:9/prefix/ws/x"


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="GEMINI_API_KEY"):
        Client()
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaFROMENVIRONMENT-0000000000")
    assert "AIzaFROMENV" not in repr(Client())
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaPREFERRED-000000000000000")
    client = Client()
    assert client._api_key == "AIzaPREFERRED-000000000000000"


def test_bad_client_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        Client(api_key=KEY, connect_timeout=0)
    with pytest.raises(ConfigurationError):
        Client(api_key=KEY, api_version="v2")
    with pytest.raises(ConfigurationError):
        Client(api_key=KEY, headers={"X-Goog-Api-Key": "other"})
    with pytest.raises(ConfigurationError):
        Client(api_key="bad\nkey")


async def test_client_must_be_entered_and_once() -> None:
    client = Client(api_key=KEY, base_url="ws://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match="async with"):
        async with client.stream(MODEL):
            pass
    async with client:
        pass
    with pytest.raises(ConfigurationError):
        async with client:
            pass


async def test_a_reader_that_attaches_while_the_close_reads_waits_for_it(
    nursery: trio.Nursery,
) -> None:
    """The close handshake reads the answer itself when no reader is attached; a receiver that
    starts meanwhile (a stream closed just as a handover's new connection got its tasks) waits
    for that read instead of racing it for the socket (which was a BusyResourceError)."""
    from gemini_ws._websocket import WebSocket, WebSocketClosed

    async def slow_close_handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        with pytest.raises(trio_websocket.ConnectionClosed):
            while True:
                await ws.get_message()

    port = free_port()
    await nursery.start(trio_websocket.serve_websocket, slow_close_handler, "127.0.0.1", port,
                        None)
    endpoint = Endpoint(secure=False, host="127.0.0.1", port=port, resource="/")
    with trio.fail_after(5):
        ws = await WebSocket.connect(endpoint, headers=[], ssl_context=None,
                                     max_message_size=2**20)
        results: list[object] = []

        async def close() -> None:
            results.append(await ws.aclose(1000, bound=3))

        async with trio.open_nursery() as tasks:
            tasks.start_soon(close)
            while not ws._reading:  # the close is waiting for the answer itself
                await trio.sleep(0)
            ws.reader_attached = True
            with pytest.raises(WebSocketClosed):
                await ws.receive()
            ws.reader_attached = False
    assert results == [True]  # the server's answer was read, by one task
