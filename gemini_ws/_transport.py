"""Opening the byte stream under a Live connection: TCP, then TLS (handshake forced). The
WebSocket on top is :mod:`gemini_ws._websocket`.

We open the socket ourselves for three reasons:

* TLS failures must surface as :class:`TLSError`, promptly, not as a connect timeout
  (trio-websocket #199): we run the TLS handshake before the upgrade.
* A refused connection, a DNS failure and an HTTP rejection of the upgrade are distinct errors.
* The stream is ours, so we close it ourselves, also when the server closed first.

It also sets ``TCP_USER_TIMEOUT`` (Linux) to the heartbeat timeout: the kernel then drops the
connection when bytes it sent stay unacknowledged, or the peer's window stays shut, for that
long. That finds a dead peer the heartbeat cannot: while an app streams audio into a connection
whose peer vanished, every buffer fills, each write waits, and the ping would queue behind them
(a socket that takes nothing looks exactly like a slow uplink from above it; the kernel sees
the acknowledgements). :func:`timed_out` tells such an end from others.
"""

from __future__ import annotations

import errno
import math
import socket
import ssl
from urllib.parse import quote, urlsplit

import attrs
import trio

from ._errors import (
    ConfigurationError,
    ConnectError,
    ConnectionRefusedByHostError,
    DNSError,
    TLSError,
)
from ._tls import TLSStream

__all__ = [
    "ByteStream",
    "Endpoint",
    "default_ssl_context",
    "open_byte_stream",
    "timed_out",
]

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


ByteStream = trio.SocketStream | TLSStream


def timed_out(exc: BaseException) -> bool:
    """True when *exc* (or what caused it) is the kernel giving up on the connection
    (``ETIMEDOUT``: the ``TCP_USER_TIMEOUT`` ran out, or the retransmissions did)."""
    seen: BaseException | None = exc
    for _ in range(8):  # (a short chain: trio's and our wrappers around the OSError)
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno == errno.ETIMEDOUT:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def open_byte_stream(
    endpoint: Endpoint, ssl_context: ssl.SSLContext | None, *, dead_after: float | None = None
) -> ByteStream:
    """TCP (``TCP_NODELAY`` on), then TLS with the handshake forced; our errors on failure.

    *dead_after*: seconds the kernel may wait for the peer to take (acknowledge) data before
    it drops the connection (``TCP_USER_TIMEOUT``, where the platform has it)."""
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
    tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if dead_after is not None and hasattr(socket, "TCP_USER_TIMEOUT"):
        tcp.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, max(1, math.ceil(dead_after * 1000))
        )
    if not endpoint.secure:
        return tcp
    ctx = ssl_context if ssl_context is not None else default_ssl_context()
    tls = TLSStream(tcp, ctx, server_hostname=endpoint.host)  # (it takes tcp's socket over)
    try:
        await tls.do_handshake()
    except BaseException as exc:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(tls)
        if isinstance(exc, trio.BrokenResourceError | ssl.SSLError):
            cause = (exc.__cause__ or exc) if isinstance(exc, trio.BrokenResourceError) else exc
            raise TLSError(
                f"TLS handshake with {endpoint.host}:{endpoint.port} failed: {cause}"
            ) from None
        raise
    return tls
