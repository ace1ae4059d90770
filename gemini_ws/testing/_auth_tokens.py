"""Ephemeral tokens for the fake Live server: ``POST /v1alpha/auth_tokens`` and the token rules.

The REST endpoint (PROTOCOL.md 5.4) is served with h11 on its own loopback listener,
``server.rest_url`` (``http://127.0.0.1:PORT``; ``https://`` with the server's throwaway CA when
``tls=True``), one request per connection (``Connection: close``):

- ``POST /v1alpha/auth_tokens`` with ``x-goog-api-key: <api_key>`` (or ``?key=``) and a JSON
  body ``{"uses", "expireTime", "newSessionExpireTime", "bidiGenerateContentSetup",
  "fieldMask"}`` (all optional; snake_case accepted) answers 200 ``{"name":
  "auth_tokens/<hex>"}``. The other fields are "Input only" in the service's ``AuthToken``
  (google-genai ``types.AuthToken``), so they are not echoed; ``server.minted[name]`` (a
  :class:`MintedToken`) records them.
- A wrong key: 400 ``INVALID_ARGUMENT`` ``API key not valid. Please pass a valid API key.``
  (``ErrorInfo`` reason ``API_KEY_INVALID``); no key: 403 ``PERMISSION_DENIED`` with the
  "Method doesn't allow unregistered callers" text; a body that is not a JSON object, an unknown
  field, a bad ``uses`` (not an int >= 0), a timestamp that is not RFC 3339 with an offset or is
  20 h or more ahead, a ``bidiGenerateContentSetup`` that is not an object, or a ``fieldMask``
  that is not a string: 400 ``INVALID_ARGUMENT``; another path or method: 404. (Google's REST
  error shapes; the exact texts on this endpoint are unconfirmed.)
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import json
import re
import secrets
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import h11
import trio

from ._json import camel_case, normalise_keys

if TYPE_CHECKING:
    from ._server import FakeLiveServer

#: Defaults of the service (PROTOCOL.md 5.4): seconds from the minting.
DEFAULT_EXPIRE = 30 * 60.0
DEFAULT_NEW_SESSION_EXPIRE = 60.0
#: Both timestamps must be less than 20 h ahead.
MAX_AHEAD = 20 * 3600.0
MAX_BODY = 1024 * 1024
TOKEN_FIELDS = frozenset(
    {"uses", "expireTime", "newSessionExpireTime", "bidiGenerateContentSetup", "fieldMask", "name"}
)
#: Close reason when a token's ``expireTime`` passes during a session (unconfirmed).
REASON_TOKEN_EXPIRED = "The auth token has expired."

_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclasses.dataclass
class MintedToken:
    """A token minted by ``POST /v1alpha/auth_tokens``; ``server.minted[name]``.

    ``uses`` as asked (0: unlimited); ``uses_left`` (``None``: unlimited); ``expire_time`` /
    ``new_session_expire_time``: POSIX seconds on the server's ``clock``; ``setup``: the
    normalised ``bidiGenerateContentSetup`` (``None`` without one); ``field_mask``: its paths
    (camelCase); ``sessions``: ids of the sessions opened with it (new ones only, in order);
    ``connections``: how many connections it authenticated; ``request``: the body as sent.
    """

    name: str
    uses: int
    uses_left: int | None
    expire_time: float
    new_session_expire_time: float
    setup: dict[str, Any] | None
    field_mask: list[str]
    created_at: float
    request: dict[str, Any]
    sessions: list[str] = dataclasses.field(default_factory=list)
    connections: int = 0

    def refusal(self, now: float, *, new_session: bool) -> str | None:
        """Why the token cannot open (``new_session``) or resume a session now, or None."""
        if now >= self.expire_time:
            return "expired"
        if new_session:
            if now >= self.new_session_expire_time:
                return "new_session_expired"
            if self.uses_left is not None and self.uses_left <= 0:
                return "used_up"
        return None

    def record_use(self, session_id: str, *, new_session: bool) -> None:
        self.connections += 1
        if new_session:
            self.sessions.append(session_id)
            if self.uses_left is not None:
                self.uses_left -= 1


def effective_setup(token: MintedToken, setup: dict[str, Any]) -> dict[str, Any]:
    """The setup a connection with ``token`` runs (PROTOCOL.md 5.4, ``fieldMask`` semantics).

    No token setup: the connection's; an empty mask: the token's, wholesale; a mask: the
    connection's with each listed path taken from the token's (removed when the token lacks
    it). The connection's ``sessionResumption.handle`` is always kept, so that a locked
    ``sessionResumption`` still resumes (unconfirmed, but resumption with a ``uses: 1`` token
    is documented to work).
    """
    if token.setup is None and not token.field_mask:
        return setup
    source = token.setup or {}
    if not token.field_mask:
        result = copy.deepcopy(source)
    else:
        result = copy.deepcopy(setup)
        for path in token.field_mask:
            _apply_path(result, source, path.split("."))
    resumption = setup.get("sessionResumption")
    handle = resumption.get("handle") if isinstance(resumption, dict) else None
    if handle:
        locked = result.get("sessionResumption")
        kept = locked if isinstance(locked, dict) else {}
        result["sessionResumption"] = {**kept, "handle": handle}
    return result


def _apply_path(dest: dict[str, Any], source: dict[str, Any], parts: list[str]) -> None:
    head, rest = parts[0], parts[1:]
    if not rest:
        if head in source:
            dest[head] = copy.deepcopy(source[head])
        else:
            dest.pop(head, None)
        return
    sub = source.get(head)
    sub_source = sub if isinstance(sub, dict) else {}
    target = dest.get(head)
    if not isinstance(target, dict):
        if not sub_source:
            return
        target = dest[head] = {}
    _apply_path(target, sub_source, rest)


def parse_timestamp(value: Any) -> float:
    """RFC 3339 (``2030-01-01T00:00:00Z``, an offset, up to 9 fraction digits) -> POSIX."""
    if not isinstance(value, str) or "T" not in value.upper():
        raise ValueError(value)
    text = _FRACTION.sub(r"\1", value.strip())
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(value)
    return moment.timestamp()


def format_timestamp(seconds: float) -> str:
    """POSIX seconds -> RFC 3339 in UTC with a ``Z``."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def error_body(code: int, status: str, message: str, reason: str | None = None) -> bytes:
    """Google's JSON error body (with an ``ErrorInfo`` when ``reason`` is given)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
    return json.dumps({"error": error}, indent=2).encode("utf-8")


class _BadBody(Exception):
    pass


def mint(
    body: Any, *, clock: Callable[[], float], name: str | None = None
) -> MintedToken:
    """Validate a create request body and build its token (raises ``_BadBody``)."""
    if not isinstance(body, dict):
        raise _BadBody("Invalid JSON payload received. Expected an object.")
    body = {camel_case(k) if isinstance(k, str) else k: v for k, v in body.items()}
    for key in body:
        if key not in TOKEN_FIELDS:
            raise _BadBody(
                f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
            )
    now = clock()
    uses_raw = body.get("uses", 1)
    if isinstance(uses_raw, str) and uses_raw.isdigit():
        uses_raw = int(uses_raw)
    if isinstance(uses_raw, bool) or not isinstance(uses_raw, int) or not 0 <= uses_raw < 2**31:
        raise _BadBody(f"Invalid value at 'uses' (TYPE_INT32), {json.dumps(uses_raw)}")
    times: dict[str, float] = {}
    for key, default in (
        ("expireTime", DEFAULT_EXPIRE),
        ("newSessionExpireTime", DEFAULT_NEW_SESSION_EXPIRE),
    ):
        raw = body.get(key)
        if raw is None:
            times[key] = now + default
            continue
        try:
            times[key] = parse_timestamp(raw)
        except ValueError:
            raise _BadBody(
                f"Invalid value at '{key}' (type.googleapis.com/google.protobuf.Timestamp),"
                f" Field '{key}', Invalid time format: {raw!r}"
            ) from None
        if times[key] - now >= MAX_AHEAD:
            raise _BadBody(f"{key} must be less than 20 hours in the future.")
    setup = body.get("bidiGenerateContentSetup")
    if setup is not None and not isinstance(setup, dict):
        raise _BadBody("Invalid value at 'bidi_generate_content_setup': expected an object.")
    mask_raw = body.get("fieldMask", "")
    if isinstance(mask_raw, list) and all(isinstance(p, str) for p in mask_raw):
        mask_raw = ",".join(mask_raw)
    if not isinstance(mask_raw, str):
        raise _BadBody(
            "Invalid value at 'field_mask' (type.googleapis.com/google.protobuf.FieldMask)"
        )
    mask = [
        ".".join(camel_case(part) for part in path.strip().split("."))
        for path in mask_raw.split(",")
        if path.strip()
    ]
    return MintedToken(
        name=name or f"auth_tokens/{secrets.token_hex(16)}",
        uses=uses_raw,
        uses_left=None if uses_raw == 0 else uses_raw,
        expire_time=times["expireTime"],
        new_session_expire_time=times["newSessionExpireTime"],
        setup=normalise_keys(setup) if isinstance(setup, dict) else None,
        field_mask=mask,
        created_at=now,
        request=body,
    )


def _answer(server: FakeLiveServer, request: h11.Request, data: bytes) -> tuple[int, bytes]:
    from ._server import REASON_BAD_KEY, REASON_NO_KEY

    target = request.target.decode("latin-1")
    path, _, query = target.partition("?")
    if request.method != b"POST" or path.rstrip("/") not in (
        "/v1alpha/auth_tokens",
        "//v1alpha/auth_tokens",
    ):
        return 404, b""
    keys = [v.decode("latin-1").strip() for k, v in request.headers if k == b"x-goog-api-key"]
    keys += parse_qs(query, keep_blank_values=True).get("key", [])
    if not keys:
        return 403, error_body(403, "PERMISSION_DENIED", REASON_NO_KEY)
    if any(key != server.api_key for key in keys):
        return 400, error_body(400, "INVALID_ARGUMENT", REASON_BAD_KEY, "API_KEY_INVALID")
    try:
        body = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (UnicodeDecodeError, ValueError):
        return 400, error_body(
            400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token."
        )
    try:
        token = mint(body, clock=server.clock)
    except _BadBody as exc:
        return 400, error_body(400, "INVALID_ARGUMENT", str(exc))
    server.minted[token.name] = token
    return 200, json.dumps({"name": token.name}, indent=2).encode("utf-8")


_NOT_FOUND = b"<!DOCTYPE html>\n<title>Error 404 (Not Found)!!1</title>\n"


async def handle_rest(server: FakeLiveServer, raw: trio.SocketStream) -> None:
    """Serve one HTTP/1.1 request on ``raw`` (a REST connection), then close it."""
    with contextlib.suppress(OSError):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
    stream: trio.abc.Stream = raw
    if server._ssl_context is not None:
        stream = trio.SSLStream(raw, server._ssl_context, server_side=True, https_compatible=True)
    try:
        with trio.move_on_after(server.handshake_timeout):
            await _serve_one(server, stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    except Exception as exc:  # a bug in the fake
        server.errors.append(exc)
    finally:
        await trio.aclose_forcefully(stream)


async def _serve_one(server: FakeLiveServer, stream: trio.abc.Stream) -> None:
    conn = h11.Connection(h11.SERVER)
    request: h11.Request | None = None
    body = bytearray()
    status: int | None = None
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await stream.receive_some(65536)))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    status = 413
                    break
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed, PAUSED
                return
    except h11.RemoteProtocolError as exc:
        status = exc.error_status_hint
    if status is not None or request is None:
        payload = error_body(status or 400, "INVALID_ARGUMENT", "Bad request.")
        code = status or 400
    else:
        code, payload = _answer(server, request, bytes(body))
    if conn.our_state is not h11.SEND_RESPONSE and conn.our_state is not h11.IDLE:
        return
    content_type = b"application/json; charset=UTF-8"
    if code == 404:
        content_type, payload = b"text/html; charset=UTF-8", _NOT_FOUND
    headers = [
        (b"Content-Type", content_type),
        (b"Content-Length", str(len(payload)).encode("ascii")),
        (b"Connection", b"close"),
    ]
    out = conn.send(h11.Response(status_code=code, headers=headers))
    out = (out or b"") + (conn.send(h11.Data(data=payload)) or b"")
    out += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(out)
