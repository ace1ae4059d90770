"""Opening the byte stream under a Live connection: TCP, then TLS (handshake forced), then the
WebSocket upgrade through ``trio_websocket.wrap_client_stream``.

We open the socket ourselves, rather than letting trio-websocket do it, for three reasons:

* TLS failures must surface as :class:`TLSError`, promptly, not as a connect timeout
  (trio-websocket #199): we run the TLS handshake before the upgrade.
* A refused connection, a DNS failure and an HTTP rejection of the upgrade are distinct errors.
* The stream is ours, so we close it ourselves, also when the server closed first
  (trio-websocket 0.12.2 leaves the client socket open in that case).
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import quote, urlsplit

import attrs
import trio
import trio_websocket
from wsproto import ConnectionType, WSConnection

from ._errors import (
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    ConnectionRefusedByHostError,
    DNSError,
    HandshakeRejectedError,
    TLSError,
)

__all__ = ["Endpoint", "default_ssl_context", "open_websocket_stream"]

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """True when *host* names this machine (127.0.0.0/8, ::1 or localhost)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@attrs.frozen
class Endpoint:
    """Where a Live connection goes: scheme, host, port and the request path (no credentials)."""

    secure: bool
    host: str
    port: int
    resource: str

    @property
    def url(self) -> str:
        """The URL (never carrying the key)."""
        scheme = "wss" if self.secure else "ws"
        default = 443 if self.secure else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = host if self.port == default else f"{host}:{self.port}"
        return f"{scheme}://{netloc}{self.resource}"

    @property
    def host_header(self) -> str:
        """The value of the HTTP ``Host`` header."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    @classmethod
    def from_base_url(
        cls, base_url: str, path: str, *, allow_insecure: bool = False
    ) -> Endpoint:
        """Build an endpoint from a base URL (``wss://host[:port][/prefix]``) and a path.

        ``http``/``https`` are accepted as aliases of ``ws``/``wss``. Plain ``ws://`` is refused
        for hosts other than loopback unless *allow_insecure* is true: the API key would travel
        in clear text.
        """
        try:
            parts = urlsplit(base_url)
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(f"invalid base_url {base_url!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme in ("wss", "https"):
            secure = True
        elif scheme in ("ws", "http"):
            secure = False
        else:
            raise ConfigurationError(
                f"base_url must start with wss://, ws://, https:// or http://, got {base_url!r}"
            )
        host = parts.hostname
        if not host:
            raise ConfigurationError(f"base_url has no host: {base_url!r}")
        if parts.username or parts.password:
            raise ConfigurationError("base_url must not carry credentials; pass api_key instead")
        if parts.query or parts.fragment:
            raise ConfigurationError(
                "base_url must not carry a query or fragment (the key goes in a header)"
            )
        if not secure and not allow_insecure and not is_loopback(host):
            raise ConfigurationError(
                f"refusing plain ws:// to {host!r}: the API key would travel unencrypted. "
                "Use wss://, or pass allow_insecure=True if you really mean it."
            )
        prefix = parts.path.rstrip("/")
        return cls(
            secure=secure,
            host=host,
            port=port if port is not None else (443 if secure else 80),
            resource=quote(prefix, safe="/:@-._~!$&'()*+,;=") + path,
        )


def default_ssl_context() -> ssl.SSLContext:
    """A verifying TLS context: the system's CAs plus certifi's bundle when it is installed."""
    ctx = ssl.create_default_context()
    try:
        import certifi

        ctx.load_verify_locations(cafile=certifi.where())
    except (ImportError, OSError):  # pragma: no cover - certifi is a dependency
        pass
    return ctx


def _is_refused(exc: BaseException) -> bool:
    seen: list[BaseException] = [exc]
    while seen:
        e = seen.pop()
        if isinstance(e, ConnectionRefusedError) or (
            isinstance(e, OSError) and e.errno == errno.ECONNREFUSED
        ):
            return True
        if isinstance(e, BaseExceptionGroup):
            seen.extend(e.exceptions)
        if e.__cause__ is not None:
            seen.append(e.__cause__)
    return False


async def _open_byte_stream(
    endpoint: Endpoint, ssl_context: ssl.SSLContext | None
) -> trio.SocketStream | trio.SSLStream[trio.SocketStream]:
    try:
        tcp = await trio.open_tcp_stream(endpoint.host, endpoint.port)
    except socket.gaierror as exc:
        raise DNSError(f"could not resolve host {endpoint.host!r}: {exc.strerror}") from None
    except OSError as exc:
        if _is_refused(exc):
            raise ConnectionRefusedByHostError(
                f"connection refused by {endpoint.host}:{endpoint.port} (is the server running?)"
            ) from None
        raise ConnectError(
            f"could not connect to {endpoint.host}:{endpoint.port}: {exc}"
        ) from None
    if not endpoint.secure:
        return tcp
    ctx = ssl_context if ssl_context is not None else default_ssl_context()
    tls = trio.SSLStream(tcp, ctx, server_hostname=endpoint.host, https_compatible=True)
    try:
        await tls.do_handshake()
    except BaseException as exc:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(tcp)
        if isinstance(exc, trio.BrokenResourceError | ssl.SSLError):
            cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
            raise TLSError(
                f"TLS handshake with {endpoint.host}:{endpoint.port} failed: {cause}"
            ) from None
        raise
    return tls


Sink = Callable[[str | bytes], Awaitable[None]]


class MessageTap:
    """Stands in for trio-websocket's internal message channel (its reader task calls
    ``send(message)`` for each complete message). With no sink, messages go to the channel
    as usual (``get_message()`` returns them); with a sink, the reader hands each message
    straight to it, saving a task switch and a channel per message. Close events still go
    to the channel, so ``get_message()`` raises ``ConnectionClosed`` as before.

    The sink runs in trio-websocket's reader task: it must not raise, and while it waits the
    socket is not read (that is the backpressure we want once our byte bound is reached).
    """

    def __init__(self, channel: trio.MemorySendChannel[str | bytes]) -> None:
        self._channel = channel
        self.sink: Sink | None = None

    async def send(self, message: str | bytes) -> None:
        sink = self.sink
        if sink is None:
            await self._channel.send(message)
        else:
            await sink(message)

    async def aclose(self) -> None:
        await self._channel.aclose()

    async def __aenter__(self) -> MessageTap:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def open_websocket_stream(
    nursery: trio.Nursery,
    endpoint: Endpoint,
    *,
    headers: Iterable[tuple[str, str]],
    ssl_context: ssl.SSLContext | None,
    max_message_size: int,
    receive_buffer_size: int,
    message_queue_size: int = 4,
) -> tuple[trio_websocket.WebSocketConnection, trio.abc.Stream, MessageTap]:
    """Open TCP (+TLS) and do the WebSocket upgrade; trio-websocket's reader runs in *nursery*.

    Returns the WebSocket and the byte stream under it, which the caller must close. On failure
    the stream is closed here and one of our :class:`ConnectError` subclasses is raised. The
    caller bounds the whole call with its connect timeout.

    trio-websocket raises an HTTP rejection from inside its reader task, so *nursery* should be a
    nursery the caller is prepared to see fail with :class:`HandshakeRejectedError` (see
    :func:`translate_reader_error`).
    """
    stream = await _open_byte_stream(endpoint, ssl_context)
    try:
        # What trio_websocket.wrap_client_stream does, with our tap put in before the reader
        # task starts.
        ws = trio_websocket.WebSocketConnection(
            stream,
            WSConnection(ConnectionType.CLIENT),
            host=endpoint.host_header,
            path=endpoint.resource,
            client_extra_headers=[
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers
            ],
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            receive_buffer_size=receive_buffer_size,
        )
        tap = MessageTap(ws._send_channel)
        ws._send_channel = tap  # type: ignore[assignment]
        nursery.start_soon(ws._reader_task)
        await ws._open_handshake.wait()
    except BaseException:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)
        raise
    return ws, stream, tap


def translate_reader_error(exc: BaseException) -> BaseException:
    """Map an exception escaping trio-websocket's reader during the upgrade to ours."""
    if isinstance(exc, trio_websocket.ConnectionRejected):
        body = exc.body or b""
        return HandshakeRejectedError(exc.status_code, body.decode("utf-8", "replace"))
    if isinstance(exc, trio_websocket.ConnectionClosed):
        return ConnectionLostError("the connection closed during the WebSocket upgrade")
    if isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError | OSError):
        return ConnectionLostError(f"the connection broke during the WebSocket upgrade: {exc}")
    return exc
