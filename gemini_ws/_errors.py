"""One error hierarchy for connect, send and receive.

Everything gemini_ws raises derives from :class:`GeminiWSError`. Errors that come from a
WebSocket close keep the server's ``code`` and ``reason``; errors raised while a session was
resumable carry the newest ``resume_handle`` so the caller can resume by hand.

No message, ``repr`` or attribute of these errors ever contains the API key: every text that
may hold server- or user-controlled data goes through :func:`redact` first. The redactor masks
the keys of the clients alive now (each :class:`~gemini_ws.Client` registers its own key and
forgets it when it closes), and anything shaped like a Google key or an ephemeral token.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "ConnectionRefusedByHostError",
    "DNSError",
    "GeminiWSError",
    "HandshakeRejectedError",
    "HeartbeatTimeoutError",
    "InvalidArgumentError",
    "MessageTooLargeError",
    "MultipleErrorsError",
    "PolicyViolationError",
    "PoolTimeoutError",
    "ProtocolError",
    "ServerClosedError",
    "ServerInternalError",
    "SetupRejectedError",
    "SetupTimeoutError",
    "StreamClosedError",
    "TLSError",
    "WebSocketError",
    "redact",
]

_KEYLIKE = re.compile(r"(AIza[0-9A-Za-z_\-]{20,}|auth_tokens/[0-9A-Za-z_\-.]+)")
_EXCERPT = 200

# The credentials of the clients alive now, one entry per registration (a Client registers its
# key once every argument is valid, and forgets it when it closes or is collected unentered):
# a key is masked while some client holding it lives, and no longer. ``_masked`` is the
# snapshot redact() reads, longest first, rebuilt under the lock when a registration changes.
# (An RLock: a registration may be forgotten by a finalizer that the garbage collector runs
# while this thread holds the lock; the worst outcome then is a forgotten key masked a little
# longer, never a live key unmasked.)
_live: dict[object, str] = {}
_masked: tuple[str, ...] = ()
_lock = threading.RLock()


def register_secret(secret: str) -> Callable[[], None]:
    """Mask *secret* in every error and log record until the returned function is called
    (idempotent). Each call is a registration of its own: a key two clients hold stays masked
    until both forgot it. Secrets shorter than 4 characters are not masked (they would mask
    ordinary words); the returned function is then a no-op."""
    token = object()
    if len(secret) >= 4:
        with _lock:
            _live[token] = secret
            _refresh()

    def forget() -> None:
        with _lock:
            if _live.pop(token, None) is not None:
                _refresh()

    return forget


def _refresh() -> None:
    global _masked
    _masked = tuple(sorted(set(_live.copy().values()), key=len, reverse=True))


def redact(text: str) -> str:
    """Return *text* with the credential of every live client (and anything shaped like a
    Google key or an ephemeral token) masked."""
    for secret in _masked:
        if secret in text:
            text = text.replace(secret, "***")
    return _KEYLIKE.sub("***", text)


def excerpt(data: bytes | str | Any, limit: int = _EXCERPT) -> str:
    """A short, redacted, printable excerpt of a frame or payload for an error message."""
    if isinstance(data, bytes | bytearray | memoryview):
        text = bytes(data[: limit * 4]).decode("utf-8", "replace")
    else:
        text = str(data)
    text = redact(text)
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text)} chars)"
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


class RedactingFilter(logging.Filter):
    """Masks credentials in log records (installed on trio-websocket's logger, which logs
    close reasons, and on ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _masked or record.args or any(m in str(record.msg) for m in ("AIza", "auth_tokens/")):
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg = cleaned
                record.args = None
        return True


def install_log_redaction() -> None:
    """Put a :class:`RedactingFilter` on the loggers that may see server-controlled text."""
    for name in ("trio-websocket", "gemini_ws"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


class GeminiWSError(Exception):
    """Base of every error gemini_ws raises, on connect, send and receive alike."""

    #: The newest session resumption handle known when the error happened, if any.
    resume_handle: str | None = None

    def __init__(self, message: str = "", *, resume_handle: str | None = None) -> None:
        self.message = redact(message)
        if resume_handle is not None:
            self.resume_handle = resume_handle
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


#: Alias kept for users who think of it as a WebSocket error.
WebSocketError = GeminiWSError


class ConfigurationError(GeminiWSError, ValueError):
    """An argument the caller gave is not valid (bad config, model name, URL, payload...)."""


# --- connecting --------------------------------------------------------------------------


class ConnectError(GeminiWSError):
    """The connection could not be opened (before any WebSocket traffic)."""


class ConnectTimeoutError(ConnectError):
    """Opening TCP, TLS or the WebSocket upgrade took longer than the connect timeout."""


class DNSError(ConnectError):
    """The host name could not be resolved."""


class ConnectionRefusedByHostError(ConnectError):
    """The host actively refused the TCP connection (nothing listening on that port)."""


class TLSError(ConnectError):
    """The TLS handshake failed (untrusted certificate, wrong host name, protocol mismatch)."""


class HandshakeRejectedError(ConnectError):
    """The server answered the WebSocket upgrade with an HTTP error status.

    ``status`` is the HTTP status code and ``body`` a short excerpt of the response body.
    """

    def __init__(self, status: int, body: str = "", *, resume_handle: str | None = None) -> None:
        self.status = status
        self.body = excerpt(body)
        msg = f"the server rejected the WebSocket upgrade with HTTP {status}"
        if self.body:
            msg += f": {self.body}"
        super().__init__(msg, resume_handle=resume_handle)


# --- the server closed the WebSocket -----------------------------------------------------


class ServerClosedError(GeminiWSError):
    """The server closed the WebSocket with a close frame; ``code`` and ``reason`` are kept."""

    def __init__(
        self,
        code: int,
        reason: str | None = None,
        *,
        message: str | None = None,
        resume_handle: str | None = None,
    ) -> None:
        self.code = code
        self.reason = excerpt(reason) if reason else ""
        text = message or f"the server closed the connection with code {code}"
        if self.reason:
            text += f": {self.reason}"
        super().__init__(text, resume_handle=resume_handle)


class SetupRejectedError(ServerClosedError):
    """The server refused the session's ``setup`` (usually 1007 invalid argument or key, or
    1008 unknown model), with the server's code and reason."""


class InvalidArgumentError(ServerClosedError):
    """The server closed with 1007: it found a message invalid (or the key invalid)."""


class PolicyViolationError(ServerClosedError):
    """The server closed with 1008 (policy violation: unknown model, connection limit...)."""


class ServerInternalError(ServerClosedError):
    """The server closed with 1011 (internal error, deadline exceeded, quota...)."""


# --- the connection went away without a close frame ---------------------------------------


class ConnectionLostError(GeminiWSError):
    """The connection ended without a close frame (network drop, TCP reset)."""


class HeartbeatTimeoutError(ConnectionLostError):
    """No pong came back within the heartbeat timeout: the connection is considered dead."""


class SetupTimeoutError(GeminiWSError):
    """No ``setupComplete`` arrived within the setup timeout."""


# --- protocol -----------------------------------------------------------------------------


class ProtocolError(GeminiWSError):
    """The server sent something that is not a valid Live API message.

    ``excerpt`` holds a short, redacted excerpt of the offending frame.
    """

    def __init__(
        self, message: str, frame: bytes | str | None = None, *, resume_handle: str | None = None
    ) -> None:
        self.excerpt = excerpt(frame) if frame is not None else ""
        if self.excerpt:
            message = f"{message} (frame: {self.excerpt})"
        super().__init__(message, resume_handle=resume_handle)


class MessageTooLargeError(ProtocolError):
    """A message exceeded the configured size limit."""


# --- using the library --------------------------------------------------------------------


class StreamClosedError(GeminiWSError):
    """The stream is closed or cancelled; it can no longer send or receive.

    ``unsent`` holds the outgoing messages that were queued but never written to the socket,
    and, when the connection was lost, those written whose arrival nothing confirmed (with
    ``reconnect`` on: written after the newest handle and not answered). Sending them again
    on a stream resumed with ``resume_handle`` repeats nothing.
    """

    def __init__(
        self,
        message: str = "the stream is closed",
        *,
        unsent: Sequence[Any] = (),
        resume_handle: str | None = None,
    ) -> None:
        self.unsent = tuple(unsent)
        if self.unsent:
            message += (
                f" ({len(self.unsent)} message(s) never sent or not known to have arrived; "
                "see .unsent)"
            )
        super().__init__(message, resume_handle=resume_handle)


class PoolTimeoutError(GeminiWSError):
    """No connection became available from the pool within the pool timeout."""


class MultipleErrorsError(GeminiWSError):
    """Several independent errors happened at once; ``exceptions`` holds them all."""

    def __init__(self, group: BaseExceptionGroup[BaseException]) -> None:
        self.exceptions = tuple(group.exceptions)
        kinds = ", ".join(f"{type(e).__name__}: {e}" for e in self.exceptions)
        super().__init__(f"{len(self.exceptions)} errors happened at once: {kinds}")
        self.__cause__ = group


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions in *exc*: itself, or for an exception group its members, nested groups
    flattened (internal)."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]
