"""FakeLiveServer: a loopback Gemini Live (BidiGenerateContent) server on trio-websocket.

Behaviour, in the order a connection meets it (see PROTOCOL.md for the real service):

1. **Upgrade.** Every accepted socket gets ``TCP_NODELAY``. Faults of kind ``reject_upgrade``
   answer first. The path must match
   ``/ws/google.ai.generativelanguage.{v1,v1beta,v1alpha}.GenerativeService.{BidiGenerateContent,
   BidiGenerateContentConstrained}`` (the Gemini Developer API) or
   ``/ws/google.cloud.aiplatform.{v1beta1,v1}.LlmBidiService/BidiGenerateContent`` (Vertex AI: a
   slash before the method; see 9 below) (a leading ``//`` is fine); anything else gets HTTP
   404. On the Vertex AI path the credentials are checked here (HTTP 401 / 400, see 9).
   With ``max_connections`` set, an upgrade while that many connections are open is refused as
   ``max_connections_refusal`` says (HTTP 429, or a 1011 close right away or at the first
   message).
2. **First message.** The server accepts the upgrade and waits for the first client message
   (without a time limit, like a warm spare connection would). Then, in this order, it closes:
   - 1007 ``Invalid JSON payload received. Unknown name "x": Cannot bind query parameter. ...``
     for a query parameter other than ``key``, ``access_token`` and Google's system parameters
     (``alt``, ``prettyPrint``, ``fields``, ``quotaUser``, ``$.xgafv``...);
   - (on the Gemini API path; Vertex checks its credentials at the upgrade, see 9)
     1007 ``API key not valid. Please pass a valid API key.`` if any credential given
     (``x-goog-api-key``, ``?key=``, ``?access_token=``, ``Authorization: Token|Bearer``) is not
     the server's ``api_key`` or one of its ``auth_tokens``, or if an ``auth_tokens/...`` token is
     used on a method other than ``BidiGenerateContentConstrained`` (or, for a token minted
     at ``POST {rest_url}/v1alpha/auth_tokens``, is used up or past its expire times, see
     ``_auth_tokens``: checked at the setup, so a resumption can be told from a new session);
     1007 with Google's
     "Method doesn't allow unregistered callers ..." text when there is no credential at all;
   - 1007 ``Invalid JSON payload received. Unexpected token. ...`` for bytes that are not JSON;
   - 1007 ``Invalid JSON payload received. Unknown name "x": Cannot find field.`` for an unknown
     top-level key; in strict mode (the default) also 1007 ``Invalid JSON payload received.
     Unknown name "x" at 'setup.generation_config': Cannot find field.`` for an unknown field at
     any depth of any client message (``_schema``; ``sessionResumption.transparent`` included);
     1007 ``Request contains an invalid argument.`` when the first message is not
     ``setup``, for a message with no or several top-level keys, a second ``setup``, a ``setup``
     without a string ``model``, or ``responseModalities`` other than exactly one of TEXT/AUDIO;
   - 1008 ``models/X is not found for API version v1beta, or is not supported for
     bidiGenerateContent. Call ListModels...`` (cut to 123 bytes) for a model not in ``models``
     (a bare id gets ``models/`` prepended first).
   In strict mode the per-model rules of ``_rules`` apply next (1007 for ``thinkingConfig`` on
   gemini-3.8-live, for a thinking level other than LOW/MEDIUM/HIGH on its extended-thinking
   variant). Close reasons are always cut to 123 UTF-8 bytes without splitting a character.
3. **Setup.** ``{"setupComplete": {}}``. With no ``responseModalities`` the modality is the
   server's ``default_modality`` (AUDIO unless configured: the SDKs imply the real default is
   AUDIO; unconfirmed).
4. **Input.** Keys are normalised snake_case -> camelCase (not inside ``args``, ``response``,
   ``parameters``, ``properties``...); base64 is accepted in both alphabets, padded or not (bad
   base64 closes 1007). User turns:
   - ``clientContent``: its turns join the history at once; ``turnComplete: true`` starts a model
     turn whose text is the user text sent since the previous model turn. Any ``clientContent``
     interrupts a running generation (as documented), even with ``NO_INTERRUPTION``. In strict
     mode, on gemini-3.1 and gemini-3.8 models, ``clientContent`` is initial history only (see
     ``_rules``: other ``clientContent``, or a turn without ``role``, closes 1007, and the
     ``turnComplete`` ending the history starts no model turn).
   - ``realtimeInput.text``: each text is a complete user turn (inside an ``activityStart`` /
     ``activityEnd`` bracket it joins that turn instead).
   - ``realtimeInput.audio`` (and audio ``mediaChunks``) with automatic activity detection (the
     default): audio accumulates. A chunk whose mean absolute sample value reaches
     ``speech_level`` (300 of 32768 by default) is speech; the first loud chunk of a user turn is
     the start of speech. Once speech was heard, ``silence_duration`` seconds of quiet audio
     (0.5 s, or the setup's ``automaticActivityDetection.silenceDurationMs``) end the user turn,
     as the service's detection does, so an app streaming a microphone needs no
     ``audioStreamEnd``. ``audioStreamEnd`` ends the user turn at once when audio is pending
     (loud or not), and starts nothing when none is.
   - With ``automaticActivityDetection.disabled``: ``activityStart``/``activityEnd`` delimit the
     user turn (``activityEnd`` always starts a model turn, even an empty one); audio outside
     a bracket is ignored (counted in ``ignored_audio_bytes``) and ``audioStreamEnd`` ignored.
     ``activityStart``/``activityEnd`` with automatic detection on close 1007 (unconfirmed). In
     strict mode ``activityEnd`` in a TEXT session that sent no audio closes 1007 as well.
   - ``realtimeInput.video`` frames are counted, and otherwise ignored.
   - Start of speech, ``activityStart`` and realtime text interrupt a running generation unless
     ``activityHandling`` is ``NO_INTERRUPTION`` (then the new turn waits for the current one).
5. **Model turn.** ``sessionResumptionUpdate {"newHandle": "", "resumable": false}`` if resumption
   is on, ``inputTranscription {"text": "[audio 0.50s]"}`` if configured and the turn had audio,
   then what the responder yields, then (unless the responder sent ``turnComplete`` itself)
   ``{"serverContent": {"generationComplete": true}}`` and ``{"serverContent": {"turnComplete":
   true}, "usageMetadata": {...}}``, then, with resumption on, ``sessionResumptionUpdate`` with a
   fresh handle and ``resumable: true`` (plus, in lenient mode only, since strict mode refuses
   ``transparent`` as the Gemini API does, ``lastConsumedClientMessageIndex`` as a string with
   ``transparent: true``: the 0-based index of the last client message on this connection whose
   effect is in the snapshot; ``setup`` is index 0).
   An interrupted turn ends ``toolCallCancellation {"ids": [...]}`` (if calls were pending),
   ``{"serverContent": {"interrupted": true}}``, ``{"serverContent": {"turnComplete": true},
   "usageMetadata": ...}`` and the resumption update. Once ``generationComplete`` went out, the
   turn is no longer interruptible. With ``instant_replies`` a turn's messages go out together
   in one transport write (a ``toolCall`` at once).
   ``toolResponse`` entries for unknown ids are ignored (recorded in
   ``unknown_tool_response_ids``); every entry joins the history.
6. **Resumption.** A handle resumes its snapshot of the session's history on a new connection.
   Every handle issued stays valid while its session has an open connection and for
   ``handle_ttl`` seconds (2 h) after the last one closed. An unknown or expired handle, or a
   different model, closes 1007 ``Request contains an invalid argument.`` (unconfirmed). With
   ``refuse_resume_while_old_open`` (default) a resume while the session's previous connection is
   still open closes the new one 1011 ``Internal error encountered.`` (reported third-party
   behaviour; close the old connection first).
7. **Lifetime.** With ``connection_lifetime`` set (the service's is about 10 min; ``None`` by
   default so that tests do not meet it), after that many seconds from the upgrade the server
   sends ``{"goAway": {"timeLeft": "<goaway_time_left>s"}}`` (50 s by default, as in production)
   and ``goaway_time_left`` seconds later ends the connection as ``goaway_end`` says:
   ``"close_1011"`` (default) 1011 ``Deadline expired before operation could complete.``,
   ``"close_1008"`` 1008 with the same reason (unconfirmed), ``"close_1000"`` 1000 ``The
   operation was cancelled.`` (seen on Vertex), or ``"silent"``: the connection stays open but
   the server sends nothing more and ignores the client (pongs still answered; ``silent`` set).
   ``Fault.go_away_after_handle`` / ``FakeConnection.go_away_after_next_handle`` send the
   ``goAway`` right after a resumable handle instead.
   Limits (off by default): with ``session_limit`` a session (counted from its first
   ``setupComplete``, across resumed connections) ends that many seconds later, and with
   ``context_limit_tokens`` a model turn whose prompt (the session history, counted as
   ``usageMetadata`` counts it) exceeds that many tokens ends it instead; both close 1007
   ``Request contains an invalid argument.`` (the reason is unconfirmed) and set
   ``limit_exceeded``, and neither applies when the setup has ``contextWindowCompression`` (the
   service then runs without limit). ``pong_delay`` holds every pong answering a client ping
   that many seconds (the service answers after 8-30 s; 0 by default).
8. **Shutdown.** Leaving ``open_fake_server`` closes every connection with 1001 (bounded by
   ``close_timeout``), aborts what is left (stalled connections at once) and returns.
9. **The Vertex AI path** (``conn.backend == "vertex"``; ``"gemini"`` on the other path; see
   PROTOCOL.md 1.2 and 9.5). What differs from the Gemini API path:

   - *Credentials, at the upgrade* (not at the first message). ``Authorization: Bearer <token>``
     (or ``?access_token=<token>``) is accepted when the token is one of the server's
     ``bearer_tokens`` (a set read at every upgrade: a test may add or remove tokens, or call
     ``accept_token`` / ``revoke_token``); express mode, ``x-goog-api-key: <key>`` (or
     ``?key=``) with no bearer token, when the key is the server's ``api_key``. Every
     credential given must be valid. No credential at all: HTTP 401 with Google's JSON error
     body, ``"status": "UNAUTHENTICATED"``, message ``Request is missing required
     authentication credential. Expected OAuth 2 access token, login cookie or other valid
     authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.``;
     a token that is not accepted (wrong, revoked, another ``Authorization`` scheme such as
     ``Token``): HTTP 401, message ``Request had invalid authentication credentials. Expected
     OAuth 2 access token, login cookie or other valid authentication credential. See ...``;
     a wrong API key: HTTP 400 ``INVALID_ARGUMENT`` ``API key not valid. Please pass a valid
     API key.`` (as Google's REST APIs answer; on this WebSocket upgrade the statuses, texts
     and the ``ErrorInfo`` details are unconfirmed). ``conn.auth_method`` says which was used
     (``"bearer"`` or ``"api_key"``), ``conn.bearer_token`` the token, ``conn.user_project``
     the ``x-goog-user-project`` header (recorded, not checked).
   - *Model names*: ``projects/{p}/locations/{l}/publishers/google/models/{id}``, or in
     express mode ``publishers/google/models/{id}`` (what google-genai sends), where ``{id}``
     is in ``vertex_models`` (default :data:`DEFAULT_VERTEX_MODELS`) or ``models/{id}`` is in
     ``models``; ``conn.vertex_project`` / ``conn.vertex_location`` record ``{p}`` / ``{l}``.
     Any other name (``models/X``, a bare id, an unknown id) closes 1008 ``Publisher Model
     `NAME` was not found or your project does not have access to it. ...`` (the text of
     Vertex's REST 404; on Live unconfirmed), cut to 123 bytes. The per-model rules
     (``_rules``) and the thinking-model replies go by the id.
   - *Server messages*: ``{"setupComplete": {"sessionId": "<uuid>"}}``: the session's
     ``FakeSession.vertex_id``, the same on every connection that resumes the session
     (unconfirmed; the real service may mint one per connection); ``modelTurn`` carries
     ``"role": "model"``; the model's ``audio/pcm;rate=24000`` audio goes out as
     ``"mimeType": "audio/pcm"`` (as Vertex captures show); ``usageMetadata`` says
     ``candidatesTokenCount`` / ``candidatesTokensDetails`` instead of ``responseTokenCount``
     / ``responseTokensDetails``; function call ids are UUIDs (``function-call-<digits>`` on
     the Gemini API).
   - *Strict mode* checks the Vertex fields (``_schema.VERTEX_MESSAGES``): the Vertex-only
     setup fields are accepted, the Gemini-only ones refused; ``sessionResumption.transparent``
     is honoured (handles carry ``lastConsumedClientMessageIndex``) in strict mode too.
   - *Handles* stay valid 24 h after the session's last connection closed (2 h on the Gemini
     API), unless ``handle_ttl`` sets one figure for both. A handle resumes only on the path
     that issued it.
"""

from __future__ import annotations

import array
import contextlib
import functools
import json
import logging
import math
import os
import re
import secrets
import socket
import ssl
import sys
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, Literal, NoReturn
from urllib.parse import parse_qs

import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    wrap_server_stream,
)

from .._errors import ConfigurationError
from ._auth_tokens import REASON_TOKEN_EXPIRED, MintedToken, effective_setup, handle_rest
from ._faults import REASON_DEADLINE, ControlledStream, Fault, http_error_body
from ._json import (
    b64decode_lenient,
    b64encode_std,
    encode_frame,
    format_duration,
    normalise_keys,
    truncate_reason,
)
from ._model import (
    OUTPUT_MIME,
    FakeModel,
    Responder,
    UserTurn,
    audio_message,
    parse_rate,
    text_message,
    usage_metadata,
)
from ._rules import history_rules_apply, thinking_refusal
from ._schema import unknown_field_reason

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_VERTEX_MODELS",
    "FakeConnection",
    "FakeLiveServer",
    "FakeServerError",
    "FakeSession",
    "open_fake_server",
    "serve_fake_server",
]

logger = logging.getLogger("gemini_ws.testing")

#: Models that report interactionStatus and send two turnCompletes per reply (Gemini 3.x
#: thinking models, PROTOCOL.md 9.3); ``interaction_status=`` overrides it for every model.
#: On the Vertex AI path the model id is matched (``models/`` + the id).
THINKING_MODEL_PREFIXES = ("models/gemini-3.8-live",)

#: Model names the fake accepts by default.
DEFAULT_MODELS = frozenset(
    {
        "models/gemini-3.1-flash-live-preview",
        "models/gemini-3.8-live",
        "models/gemini-3.8-live-extended-thinking",
        "models/gemini-2.5-flash-native-audio-preview-12-2025",
        "models/gemini-2.5-flash-native-audio-preview-09-2025",
        "models/gemini-live-2.5-flash-preview",
        "models/gemini-2.0-flash-live-001",
    }
)

#: Model ids accepted on the Vertex AI path (PROTOCOL.md 6), besides every ``models/{id}`` of
#: ``models``: the Vertex ids and the Gemini API ones.
DEFAULT_VERTEX_MODELS = frozenset(
    {
        "gemini-live-2.5-flash-preview-native-audio-09-2025",
        "gemini-live-2.5-flash-native-audio",
        "gemini-live-2.5-flash",
        "gemini-2.0-flash-live-preview-04-09",
        *(name.removeprefix("models/") for name in DEFAULT_MODELS),
    }
)

PATH_RE = re.compile(
    r"^//?ws/google\.ai\.generativelanguage\.(v1|v1beta|v1alpha)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)$"
)
#: The Vertex AI path: a slash, not a dot, before the method.
VERTEX_PATH_RE = re.compile(
    r"^//?ws/google\.cloud\.aiplatform\.(v1beta1|v1)\.LlmBidiService/(BidiGenerateContent)$"
)
#: A Vertex AI model name; the project and location are optional (express mode).
VERTEX_MODEL_RE = re.compile(
    r"^(?:projects/([^/]+)/locations/([^/]+)/)?publishers/google/models/([^/]+)$"
)
KNOWN_QUERY_PARAMETERS = frozenset(
    {
        "key",
        "access_token",
        "alt",
        "$alt",
        "prettyPrint",
        "fields",
        "quotaUser",
        "$.xgafv",
        "callback",
        "upload_protocol",
        "uploadType",
    }
)
TOP_LEVEL_KEYS = frozenset(
    {"setup", "clientContent", "realtimeInput", "toolResponse", "contextUpdate"}
)

REASON_INVALID_ARGUMENT = "Request contains an invalid argument."
REASON_BAD_KEY = "API key not valid. Please pass a valid API key."
REASON_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity)."
    " Please use API Key or other form of API consumer identity to call this API."
)
REASON_INTERNAL = "Internal error encountered."
#: Close reason for a connection over ``max_connections`` (the real quota text is unconfirmed).
REASON_QUOTA = "Resource has been exhausted (e.g. check quota)."
REASON_SHUTDOWN = "The server is shutting down."
#: Close reason of the ``goaway_end="close_1000"`` close (seen on Vertex, pipecat#3112).
REASON_CANCELLED = "The operation was cancelled."
_SEE_DEVCONSOLE = " See https://developers.google.com/identity/sign-in/web/devconsole-project."
#: Vertex AI, HTTP 401 for an upgrade without any credential (Google's text; unconfirmed here).
REASON_VERTEX_NO_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token,"
    " login cookie or other valid authentication credential." + _SEE_DEVCONSOLE
)
#: Vertex AI, HTTP 401 for a wrong, revoked or expired access token (unconfirmed here).
REASON_VERTEX_BAD_TOKEN = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login"
    " cookie or other valid authentication credential." + _SEE_DEVCONSOLE
)
#: Handle validity after the session's last connection closed, per path (PROTOCOL.md 9.4).
HANDLE_TTL = {"gemini": 7200.0, "vertex": 86400.0}
_UNSENDABLE_CODES = frozenset({1005, 1006, 1015})


class FakeServerError(Exception):
    """Raised when leaving ``open_fake_server`` if the fake (or a responder) hit a bug.

    ``errors`` holds the original exceptions. Client misbehaviour never counts: it only ends the
    client's own connection.
    """

    def __init__(self, errors: Sequence[BaseException]) -> None:
        super().__init__(f"{len(errors)} error(s) in the fake Live server: {errors[0]!r}")
        self.errors = list(errors)


class FakeSession:
    """A conversation. It outlives its connections when resumed by handle.

    Attributes: ``id``, ``model``, ``history`` (``Content`` dicts), ``turn_count``,
    ``connections`` (all connections that served it, oldest first), ``handles`` issued,
    ``backend`` (``"gemini"`` or ``"vertex"``), ``vertex_id`` (a UUID: the ``sessionId`` of
    ``setupComplete`` on the Vertex AI path).
    """

    def __init__(
        self, session_id: str, model: str, *, backend: str = "gemini", vertex_id: str = ""
    ) -> None:
        self.id = session_id
        self.model = model
        self.backend = backend
        self.vertex_id = vertex_id
        self.history: list[dict[str, Any]] = []
        self.turn_count = 0
        self.connections: list[FakeConnection] = []
        self.handles: list[str] = []
        self.last_closed_at: float | None = None
        #: trio time of the session's first ``setupComplete`` (``session_limit`` counts from it)
        self.started_at: float | None = None

    @property
    def connection(self) -> FakeConnection | None:
        """The latest connection of the session."""
        return self.connections[-1] if self.connections else None

    def __repr__(self) -> str:
        return f"FakeSession({self.id!r}, turns={self.turn_count})"


class _Handle:
    def __init__(
        self, session: FakeSession, history: list[dict[str, Any]], turn_count: int
    ) -> None:
        self.session = session
        self.history = history
        self.turn_count = turn_count


class _Message:
    __slots__ = ("message",)

    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message


class _Raw:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class _Abort:
    __slots__ = ()


class _Cork:
    __slots__ = ()


class _Flush:
    __slots__ = ("uncork",)

    def __init__(self, *, uncork: bool) -> None:
        self.uncork = uncork


_Item = _Message | _Raw | _Close | _Abort | _Cork | _Flush

#: What ``max_connections_refusal`` accepts.
MaxConnectionsRefusal = Literal["close_on_setup", "close", "http_429"]

#: What ``goaway_end`` accepts: how a connection ends ``timeLeft`` after its ``goAway``.
GoAwayEnd = Literal["close_1011", "close_1008", "close_1000", "silent"]
_GOAWAY_CLOSES: dict[str, tuple[int, str]] = {
    "close_1011": (1011, REASON_DEADLINE),
    "close_1008": (1008, REASON_DEADLINE),
    "close_1000": (1000, REASON_CANCELLED),
}


class _Generation:
    def __init__(self, turn: UserTurn) -> None:
        self.turn = turn
        self.scope = trio.CancelScope()
        self.interrupted = False
        self.uninterruptible = False
        self.generation_complete = False
        self.turn_complete_sent = False
        self.text: list[str] = []
        self.transcript: list[str] = []
        self.audio_bytes = 0


def _b64_length(data: str) -> int:
    text = data.rstrip("=")
    return len(text) * 3 // 4


def _loudness(pcm: bytes) -> float:
    """Mean absolute sample value of 16-bit little-endian PCM (0 for silence, 32768 at most)."""
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return 0.0
    return sum(map(abs, samples)) / len(samples)


class FakeConnection:
    """One connection to the fake server: what happened on it, and a few controls.

    Attributes (read them in tests)::

        index: position in ``server.connections``.
        path: the request target (path and query); ``query`` its parsed query (name -> values).
        headers: request headers, lower-case names (later duplicates win); ``raw_headers`` all.
        backend: ``"gemini"`` (the Gemini Developer API path), ``"vertex"`` (the Vertex AI
            path) or ``None`` (the path was refused).
        api_version / method: from the path (``None`` if the path was refused).
        credentials: ``(source, value)`` pairs found (``"x-goog-api-key"``, ``"key"``,
            ``"access_token"``, ``"authorization"``: the token after ``Token`` / ``Bearer``).
        auth_method: the credential accepted: ``"api_key"``, ``"ephemeral"`` (an
            ``auth_tokens/`` token), ``"bearer"`` (a Vertex access token); ``None`` until
            accepted (on the Gemini API path at the first message, on Vertex at the upgrade).
        auth_token: the ``auth_tokens/`` token given (``minted_token``: its record, when it
            was minted by the REST endpoint).
        client_setup / effective_setup: the setup the client sent / the one the session runs
            (they differ when a minted token locks the setup; ``setup`` is the effective one).
        bearer_token: the Vertex AI access token accepted (``None`` otherwise).
        user_project: the ``x-goog-user-project`` header, if any.
        vertex_project / vertex_location: parsed from a Vertex AI model name (``None`` on the
            Gemini API path, and in express mode's ``publishers/google/models/X``).
        faults: the faults applied; ``faults_fired`` those that fired.
        rejected_status: the HTTP status if the upgrade was refused, else ``None``.
        accepted: True once the upgrade was accepted.
        received: normalised (camelCase) client messages that parsed as JSON objects, in order;
            ``received_raw``: every client message as it arrived (``str`` or ``bytes``).
        sent: the server messages sent (dicts, before encoding), in order; injected frames are
            not included.
        setup: the normalised ``setup`` object, once received.
        session: the :class:`FakeSession`; ``resumed_from``: the handle used, if any.
        handles: resumption handles issued on this connection.
        turns: the :class:`UserTurn` objects of this connection.
        received_texts: the user texts consumed, in order (clientContent or realtimeInput).
        close_code / close_reason: how it ended (1006 and ``None`` for an abrupt end);
            ``closed_by``: ``"server"``, ``"client"`` or ``None`` (no close frame).
        pong_rtts: round-trip times (s) of the server's own pings (``ping_interval``).
        tcp_nodelay: True if ``TCP_NODELAY`` is set on the accepted socket (the server sets it
            on every connection; ``None`` if it could not be read).
        over_limit: True if the upgrade came while ``max_connections`` connections were open;
            the connection was then refused (see ``max_connections_refusal``).
        ignored_audio_bytes, audio_bytes_received, video_frames, unknown_tool_response_ids,
        context_window_compression, stalled.
        silent: True once the connection went silent after a goAway (``goaway_end="silent"``).
        limit_exceeded: ``"session"`` or ``"context"`` if ``session_limit`` /
            ``context_limit_tokens`` closed the connection, else ``None``.
        closed: a ``trio.Event`` set when the connection is over.
    """

    def __init__(self, server: FakeLiveServer, index: int, request: WebSocketRequest) -> None:
        self.server = server
        self.index = index
        self.path: str = request.path
        # not urlsplit: it would read a leading "//ws/..." as a network location
        path, _, query = request.path.partition("?")
        self.query: dict[str, list[str]] = parse_qs(query, keep_blank_values=True)
        self.raw_headers: list[tuple[str, str]] = [
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers
        ]
        self.headers: dict[str, str] = dict(self.raw_headers)
        match = PATH_RE.match(path)
        vertex = None if match else VERTEX_PATH_RE.match(path)
        found = match or vertex
        self.backend: str | None = "gemini" if match else "vertex" if vertex else None
        self.api_version: str | None = found.group(1) if found else None
        self.method: str | None = found.group(2) if found else None
        self.credentials: list[tuple[str, str]] = self._find_credentials()
        self.auth_method: str | None = None
        self.auth_token: str | None = None
        self.minted_token: MintedToken | None = None
        self.client_setup: dict[str, Any] | None = None
        self.effective_setup: dict[str, Any] | None = None
        self.bearer_token: str | None = None
        self.user_project: str | None = self.headers.get("x-goog-user-project")
        self.vertex_project: str | None = None
        self.vertex_location: str | None = None
        self.faults: tuple[Fault, ...] = ()
        self.faults_fired: list[Fault] = []
        self.rejected_status: int | None = None
        self.accepted = False
        self.received: list[dict[str, Any]] = []
        self.received_raw: list[str | bytes] = []
        self.sent: list[dict[str, Any]] = []
        self.setup: dict[str, Any] | None = None
        self.session: FakeSession | None = None
        self.resumed_from: str | None = None
        self.handles: list[str] = []
        self.turns: list[UserTurn] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.closed_by: str | None = None
        self.pong_rtts: list[float] = []
        self.pings_unanswered = 0
        self.tcp_nodelay: bool | None = None
        self.over_limit = False
        self._over_limit_refusal: MaxConnectionsRefusal | None = None
        self.ignored_audio_bytes = 0
        self.audio_bytes_received = 0
        self.video_frames = 0
        self.unknown_tool_response_ids: list[Any] = []
        self.context_window_compression: dict[str, Any] | None = None
        self.stalled = False
        self.silent = False
        self.limit_exceeded: str | None = None
        self.closed = trio.Event()
        self._progress = trio.Event()

        self._ws: WebSocketConnection | None = None
        self._stream: ControlledStream | None = None
        self._nursery: trio.Nursery | None = None
        self._outbox_send, self._outbox_recv = trio.open_memory_channel[_Item](0)
        self._turn_send, self._turn_recv = trio.open_memory_channel[UserTurn](math.inf)
        self._server_close: tuple[int, str] | None = None
        self._close_done = trio.Event()
        self._closing = False
        self._messages_sent = 0
        self._handles_sent = 0
        self._client_count = 0
        self._current: _Generation | None = None
        self._modality = server.default_modality
        self._auto_vad = True
        self._activity_handling = "START_OF_ACTIVITY_INTERRUPTS"
        self._activity_active = False
        self._functions: dict[str, dict[str, Any]] = {}
        self._resumption: dict[str, Any] | None = None
        self._pending_text: list[str] = []
        self._pending_parts: list[dict[str, Any]] = []
        self._pending_messages: list[dict[str, Any]] = []
        self._pending_since: int | None = None
        self._audio = bytearray()
        self._audio_rate = 16000
        self._pending_video = 0
        # automatic activity detection: speech heard in the pending audio, and the seconds of
        # silence since its last loud chunk
        self._speaking = False
        self._silence = 0.0
        self._silence_duration = server.silence_duration
        # Gemini 3.x thinking models: interactionStatus, and two turnCompletes per reply
        self._thinking = False
        # strict mode, gemini-3.1/3.8: clientContent only as initial history (see _rules)
        self._history_rules = False
        self._history_open = False

    def __repr__(self) -> str:
        if self.closed.is_set():
            state = f"closed {self.close_code}"
        else:
            state = "open" if self.is_open else "closing"
        return f"<FakeConnection #{self.index} {self.path!r} {state}>"

    # -- public controls ----------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True while the WebSocket is open (no close frame sent or received, not aborted)."""
        ws, stream = self._ws, self._stream
        if ws is None or stream is None or self.closed.is_set():
            return False
        return ws.closed is None and not stream.aborted and self._server_close is None

    @property
    def messages_sent(self) -> int:
        """How many server messages went out (the count faults use)."""
        return self._messages_sent

    @property
    def received_texts(self) -> list[str]:
        """The user texts the model consumed on this connection, in order, whichever form
        carried them: the text parts of ``clientContent`` turns and ``realtimeInput.text``
        (``send_text`` picks the form the model takes)."""
        texts: list[str] = []
        for message in self.received:
            content = message.get("clientContent")
            if isinstance(content, dict):
                for turn in content.get("turns") or ():
                    for part in (turn.get("parts") or ()) if isinstance(turn, dict) else ():
                        if isinstance(part, dict) and isinstance(part.get("text"), str):
                            texts.append(part["text"])
            realtime = message.get("realtimeInput")
            if isinstance(realtime, dict) and isinstance(realtime.get("text"), str):
                texts.append(realtime["text"])
        return texts

    async def send(self, message: Mapping[str, Any] | str | bytes) -> None:
        """Send a raw server message (dict), text chunk (str) or PCM chunk (bytes), in order."""
        if not await self._emit_item(_Message(_coerce(message))):
            raise trio.ClosedResourceError("the fake connection is closed")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close after the messages already queued; returns when the close handshake is over."""
        await self._emit_item(_Close(code, reason))
        await self.wait_closed()

    def abort(self) -> None:
        """Drop the TCP connection now, without a close frame."""
        if self._stream is not None:
            self._stream.abort()

    def go_away(
        self,
        time_left: float | None = None,
        *,
        close_code: int | None = 1011,
        end: GoAwayEnd | None = None,
    ) -> None:
        """Send ``goAway`` now and (unless ``close_code`` is None) close ``time_left`` later.

        ``time_left`` defaults to the server's ``goaway_time_left``. ``close_code`` closes with
        ``Deadline expired before operation could complete.``; ``end`` (one of the
        ``goaway_end`` values) overrides it, e.g. ``end="silent"``.
        """
        if self._nursery is None:
            raise RuntimeError("the connection is not running")
        if time_left is None:
            time_left = self.server.goaway_time_left
        if end is not None:
            _check_goaway_end(end)
            ending: tuple[int, str] | None = _GOAWAY_CLOSES.get(end)
            silent = end == "silent"
        else:
            ending = None if close_code is None else (close_code, REASON_DEADLINE)
            silent = False
        self._nursery.start_soon(self._go_away, time_left, ending, silent)

    def go_away_after_next_handle(
        self,
        time_left: float = 1.0,
        *,
        close_code: int | None = 1011,
        reason: str = REASON_DEADLINE,
    ) -> None:
        """Send ``goAway`` right after the next resumable handle this connection sends.

        Same as injecting ``Fault.go_away_after_handle(time_left, close_code=close_code,
        reason=reason)`` counted from now: the ``goAway`` follows the next
        ``sessionResumptionUpdate`` with a non-empty ``newHandle`` at once, and ``time_left``
        seconds later the server closes with ``close_code`` (``None``: it does not close).
        """
        fault = Fault.go_away_after_handle(
            time_left,
            handle=self._handles_sent + 1,
            close_code=close_code,
            reason=reason,
        )
        self.faults = (*self.faults, fault)

    async def wait_closed(self) -> None:
        """Wait until the connection is over."""
        await self.closed.wait()

    async def wait_received(self, count: int) -> None:
        """Wait until ``count`` client messages arrived (or the connection ended)."""
        while len(self.received_raw) < count and not self.closed.is_set():
            await self._progress.wait()

    async def wait_sent(self, count: int) -> None:
        """Wait until ``count`` server messages went out (or the connection ended)."""
        while self._messages_sent < count and not self.closed.is_set():
            await self._progress.wait()

    def _notify(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    # -- upgrade -------------------------------------------------------------------------------

    def _find_credentials(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for name, value in self.raw_headers:
            if name == "x-goog-api-key":
                found.append(("x-goog-api-key", value.strip()))
            elif name == "authorization":
                scheme, _, token = value.strip().partition(" ")
                if scheme.lower() in ("token", "bearer") and token:
                    found.append(("authorization", token.strip()))
                else:
                    found.append(("authorization", value.strip()))
        for name in ("key", "access_token"):
            for value in self.query.get(name, []):
                found.append((name, value))
        return found

    def _vertex_refusal(self) -> tuple[int, bytes] | None:
        """Vertex AI: the HTTP status and JSON body refusing the upgrade's credentials, or
        None (then ``auth_method`` and ``bearer_token`` are set). See the module docstring."""
        tokens: list[str] = []
        bad_scheme = False
        for name, value in self.raw_headers:
            if name == "authorization":
                scheme, _, token = value.strip().partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    tokens.append(token.strip())
                else:
                    bad_scheme = True  # "Token auth_tokens/..." is the Gemini API's
        tokens.extend(self.query.get("access_token", []))
        keys = [v for source, v in self.credentials if source in ("x-goog-api-key", "key")]
        server = self.server
        if not tokens and not keys and not bad_scheme:
            return 401, _vertex_error_body(
                401, "UNAUTHENTICATED", REASON_VERTEX_NO_CREDENTIALS, "CREDENTIALS_MISSING",
                self.api_version,
            )
        if bad_scheme or any(t not in server.bearer_tokens for t in tokens):
            return 401, _vertex_error_body(
                401, "UNAUTHENTICATED", REASON_VERTEX_BAD_TOKEN, "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                self.api_version,
            )
        if any(k != server.api_key for k in keys):
            return 400, _vertex_error_body(
                400, "INVALID_ARGUMENT", REASON_BAD_KEY, "API_KEY_INVALID", self.api_version
            )
        if tokens:
            self.auth_method, self.bearer_token = "bearer", tokens[0]
        else:
            self.auth_method = "api_key"
        return None

    # -- running -------------------------------------------------------------------------------

    async def _run(self, ws: WebSocketConnection, stream: ControlledStream) -> None:
        self._ws = ws
        self._stream = stream
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._writer)
            nursery.start_soon(self._model_loop)
            if self.server.ping_interval:
                nursery.start_soon(self._pinger, self.server.ping_interval)
            if self.server.connection_lifetime is not None:
                nursery.start_soon(self._lifetime, self.server.connection_lifetime)
            nursery.start_soon(self._watch_transport, stream, nursery.cancel_scope)
            if self._over_limit_refusal == "close":
                await self._fail(1011, REASON_QUOTA)
            try:
                await self._reader_loop()
                if self._server_close is not None:
                    with trio.move_on_after(self.server.close_timeout):
                        await self._close_done.wait()
            finally:
                nursery.cancel_scope.cancel()

    async def _watch_transport(self, stream: ControlledStream, scope: trio.CancelScope) -> None:
        # Once TCP is gone nothing more can happen; do not let a task blocked on the outbox
        # (e.g. behind a stalled writer) keep the connection alive.
        # The reader gets close_timeout to drain what arrived before the end.
        await stream.dead.wait()
        await trio.sleep(self.server.close_timeout)
        scope.cancel()

    def _finish(self) -> None:
        ws, stream = self._ws, self._stream
        if self._server_close is not None:
            self.close_code, self.close_reason = self._server_close
            self.closed_by = "server"
        elif stream is not None and stream.aborted:
            self.close_code, self.close_reason, self.closed_by = 1006, None, None
        elif ws is not None and ws.closed is not None:
            self.close_code = ws.closed.code
            self.close_reason = ws.closed.reason
            self.closed_by = None if ws.closed.code == 1006 else "client"
        elif self.rejected_status is None:
            self.close_code, self.close_reason = 1006, None
        session = self.session
        if session is not None and session.connection is self:
            session.last_closed_at = trio.current_time()
        self.closed.set()
        self._notify()

    async def _shutdown_close(self) -> None:
        ws, stream = self._ws, self._stream
        if ws is None or stream is None or not self.is_open:
            return
        if stream.stalled:
            stream.abort()
            return
        self._server_close = (1001, REASON_SHUTDOWN)
        with contextlib.suppress(Exception):
            await ws.aclose(1001, REASON_SHUTDOWN)

    # -- output --------------------------------------------------------------------------------

    async def _emit_item(self, item: _Item) -> bool:
        try:
            await self._outbox_send.send(item)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def _emit(self, message: dict[str, Any]) -> None:
        """Queue a message; if the connection is gone, park until teardown cancels us."""
        if not await self._emit_item(_Message(message)):
            await trio.sleep_forever()

    async def _writer(self) -> None:
        async with self._outbox_recv:
            async for item in self._outbox_recv:
                if not await self._write(item):
                    return

    async def _write(self, item: _Item) -> bool:
        """Carry out one outbox item; False when the connection is over for the writer."""
        ws = self._ws
        assert ws is not None
        if self.silent and isinstance(item, _Message | _Raw):
            return True  # gone silent after a goAway: nothing more goes out
        if isinstance(item, _Close):
            await self._do_close(item.code, item.reason)
            return False
        if isinstance(item, _Abort):
            await self._flush_held()
            self.abort()
            return False
        if isinstance(item, _Cork):
            if self._stream is not None:
                self._stream.cork()
            return True
        if isinstance(item, _Flush):
            await self._flush_held(uncork=item.uncork)
            return True
        if isinstance(item, _Raw):
            return await self._send_bytes(item.data)
        number = self._messages_sent + 1
        for fault in self.faults:
            if fault.fires_at(number) and not await self._fire(fault):
                return False
        if not await self._send_bytes(encode_frame(item.message)):
            return False
        self._messages_sent = number
        self.sent.append(item.message)
        self._notify()
        for fault in self.faults:
            if fault.fires_after(number) and not await self._fire(fault):
                return False
        if _is_resumable_update(item.message):
            self._handles_sent += 1
            for fault in self.faults:
                if fault.fires_after_handle(self._handles_sent) and not await self._fire(fault):
                    return False
        return True

    async def _flush_held(self, *, uncork: bool = False) -> None:
        """Write the frames a corked stream holds (``instant_replies``), bounded."""
        stream = self._stream
        if stream is None:
            return
        if uncork:
            stream.corked = False
        with (
            trio.move_on_after(self.server.close_timeout),
            contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
        ):
            await stream.flush()

    async def _send_bytes(self, data: bytes) -> bool:
        ws = self._ws
        assert ws is not None
        try:
            await ws.send_message(data)
        except ConnectionClosed:
            return False
        return True

    async def _fire(self, fault: Fault) -> bool:
        """Carry out a triggered fault; False when the connection is over for the writer."""
        self.faults_fired.append(fault)
        kind = fault.kind
        if kind in ("abort", "stall", "delay"):
            await self._flush_held()  # what went out before the fault reaches the client
        if kind == "abort":
            self.abort()
            return False
        if kind == "go_away_after_handle":
            goaway = {"goAway": {"timeLeft": format_duration(fault.seconds)}}
            if not await self._write(_Message(goaway)):
                return False
            if fault.closes and self._nursery is not None:
                self._nursery.start_soon(self._close_later, fault.seconds, fault.code, fault.reason)
            return True
        if kind == "close":
            await self._do_close(fault.code, fault.reason)
            return False
        if kind == "stall":
            self._stall()
            await trio.sleep_forever()
        if kind == "delay":
            await trio.sleep(fault.seconds)
            return True
        frame = _fault_frame(fault)
        if frame is not None:
            return await self._send_bytes(frame)
        return True

    def _stall(self) -> None:
        self.stalled = True
        if self._stream is not None:
            self._stream.stall()

    async def _do_close(self, code: int, reason: str) -> None:
        ws = self._ws
        assert ws is not None
        if self._server_close is not None or ws.closed is not None:
            self._close_done.set()
            return
        reason = truncate_reason(reason)
        self._server_close = (code, reason)
        self._closing = True
        try:
            if code in _UNSENDABLE_CODES:
                await self._flush_held()
                self.abort()
                return
            with trio.move_on_after(self.server.close_timeout):
                await ws.aclose(code, reason)
        finally:
            self._close_done.set()

    async def _fail(self, code: int, reason: str) -> None:
        """Close for a client error (after what is queued); later client messages are ignored."""
        if self._closing:
            return
        self._closing = True
        await self._emit_item(_Close(code, reason))

    # -- input ---------------------------------------------------------------------------------

    async def _reader_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        while True:
            try:
                raw = await ws.get_message()
            except ConnectionClosed:
                return
            self._client_count += 1
            number = self._client_count
            self.received_raw.append(raw)
            self._notify()
            if self._closing or self.stalled or self.silent:
                continue
            for fault in self.faults:
                if fault.fires_on_client(number):
                    await self._fire_on_client(fault)
            if self._stream is not None and self._stream.aborted:
                return  # an aborted connection reads nothing more
            if self._closing or self.stalled:
                continue
            await self._handle_raw(raw, number)

    async def _fire_on_client(self, fault: Fault) -> None:
        self.faults_fired.append(fault)
        if fault.kind in ("abort", "stall"):
            await self._flush_held()
        if fault.kind == "abort":
            self.abort()
            self._closing = True
        elif fault.kind == "close":
            self._closing = True
            await self._emit_item(_Close(fault.code, fault.reason))
        elif fault.kind == "stall":
            self._stall()
        elif fault.kind == "delay":
            await trio.sleep(fault.seconds)
        else:
            frame = _fault_frame(fault)
            if frame is not None:
                await self._emit_item(_Raw(frame))

    async def _handle_raw(self, raw: str | bytes, number: int) -> None:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            obj = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError):
            excerpt = (raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))[:40]
            await self._fail(1007, f"Invalid JSON payload received. Unexpected token.\n{excerpt}")
            return
        if not isinstance(obj, dict):
            await self._fail(
                1007, "Invalid JSON payload received. Expected an object at the top level."
            )
            return
        message: dict[str, Any] = normalise_keys(obj)
        self.received.append(message)
        unknown = [k for k in message if k not in TOP_LEVEL_KEYS]
        if unknown:
            await self._fail(
                1007,
                f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.',
            )
            return
        if len(message) != 1:
            await self._fail(1007, REASON_INVALID_ARGUMENT)
            return
        if self.server.strict:
            # the service's proto-JSON parser: unknown fields at any depth (checked on the
            # frame as sent, so the name is quoted in the client's own casing)
            reason = unknown_field_reason(obj, vertex=self.backend == "vertex")
            if reason is not None:
                await self._fail(1007, reason)
                return
        try:
            await self._dispatch(message, number)
        except (TypeError, ValueError, ArithmeticError, RecursionError, AttributeError):
            # Client input the model code did not expect: like the real service, refuse that
            # input (1007); it is not a bug of the fake server.
            await self._fail(1007, REASON_INVALID_ARGUMENT)

    async def _dispatch(self, message: dict[str, Any], number: int) -> None:
        ((kind, body),) = message.items()
        if self.setup is None:
            if kind != "setup":
                await self._fail(1007, REASON_INVALID_ARGUMENT)
                return
            await self._on_setup(body)
            return
        if not isinstance(body, dict):
            await self._fail(1007, REASON_INVALID_ARGUMENT)
            return
        try:
            if kind == "setup":
                await self._fail(1007, REASON_INVALID_ARGUMENT)
            elif kind == "clientContent":
                self._on_client_content(body, message, number)
            elif kind == "realtimeInput":
                self._on_realtime_input(body, message, number)
            elif kind == "toolResponse":
                self._on_tool_response(body)
            elif kind == "contextUpdate":
                self._on_context_update(body)
        except _InvalidArgument as exc:
            await self._fail(1007, str(exc))

    # -- setup ---------------------------------------------------------------------------------

    def _check_request(self) -> tuple[int, str] | None:
        for name in self.query:
            if name not in KNOWN_QUERY_PARAMETERS:
                return 1007, (
                    f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query'
                    f" parameter. Field '{name}' could not be found in request message."
                )
        if self.backend == "vertex":
            return None  # the credentials were checked at the upgrade
        if not self.credentials:
            return 1007, REASON_NO_KEY
        ephemeral = False
        for _source, value in self.credentials:
            if value == self.server.api_key:
                continue
            if value in self.server.auth_tokens or value in self.server.minted:
                if self.method != "BidiGenerateContentConstrained":
                    return 1007, REASON_BAD_KEY
                ephemeral = True
                self.auth_token = value
                continue
            return 1007, REASON_BAD_KEY
        self.auth_method = "ephemeral" if ephemeral else "api_key"
        return None

    def _resolve_model(self, name: str) -> str | None:
        """The model a setup names, as the session records it, or None if unknown here."""
        server = self.server
        if self.backend != "vertex":
            model = name if "/" in name else f"models/{name}"
            return model if model in server.models else None
        match = VERTEX_MODEL_RE.match(name)
        if match is None:
            return None
        project, location, model_id = match.groups()
        if model_id not in server.vertex_models and f"models/{model_id}" not in server.models:
            return None
        self.vertex_project, self.vertex_location = project, location
        return name

    def _model_not_found(self, name: str) -> str:
        if self.backend == "vertex":
            return (
                f"Publisher Model `{name}` was not found or your project does not have access"
                " to it. Please ensure you are using a valid model version. For more"
                " information, see: https://cloud.google.com/vertex-ai/generative-ai/docs/"
                "learn/model-versions"
            )
        return (
            f"{name} is not found for API version {self.api_version}, or is not"
            " supported for bidiGenerateContent. Call ListModels to see the list of available"
            " models and their supported methods."
        )

    def _new_call_id(self) -> str:
        if self.backend == "vertex":
            return self.server._new_uuid()  # Vertex call ids are UUIDs (PROTOCOL.md 3.3)
        return self.server._new_call_id()

    async def _on_setup(self, setup: Any) -> None:
        problem = self._check_request()
        if problem is not None:
            await self._fail(*problem)
            return
        if self._over_limit_refusal == "close_on_setup":
            await self._fail(1011, REASON_QUOTA)
            return
        token = self.server.minted.get(self.auth_token) if self.auth_token else None
        self.minted_token = token
        if isinstance(setup, dict):
            self.client_setup = setup
            if token is not None:
                setup = effective_setup(token, setup)
        if token is not None and token.refusal(self.server.clock(), new_session=False):
            await self._fail(1007, REASON_BAD_KEY)  # expired (expireTime passed)
            return
        if not isinstance(setup, dict) or not isinstance(setup.get("model"), str):
            await self._fail(1007, REASON_INVALID_ARGUMENT)
            return
        model = self._resolve_model(setup["model"])
        if model is None:
            await self._fail(1008, self._model_not_found(setup["model"]))
            return
        model_id = model.rpartition("/")[2]
        generation_config = setup.get("generationConfig") or {}
        modalities = (
            generation_config.get("responseModalities")
            if isinstance(generation_config, dict)
            else None
        )
        if modalities is not None:
            if (
                not isinstance(modalities, list)
                or len(modalities) != 1
                or str(modalities[0]).upper() not in ("TEXT", "AUDIO")
            ):
                await self._fail(1007, REASON_INVALID_ARGUMENT)
                return
            self._modality = str(modalities[0]).upper()
        strict = self.server.strict
        if strict:
            refusal = thinking_refusal(model, generation_config)
            if refusal is not None:
                await self._fail(1007, refusal)
                return
        ric = setup.get("realtimeInputConfig") or {}
        aad = ric.get("automaticActivityDetection") or {} if isinstance(ric, dict) else {}
        self._auto_vad = not (isinstance(aad, dict) and aad.get("disabled") is True)
        silence_ms = aad.get("silenceDurationMs") if isinstance(aad, dict) else None
        if isinstance(silence_ms, int | str) and str(silence_ms).isdigit() and int(silence_ms):
            self._silence_duration = int(silence_ms) / 1000
        if isinstance(ric, dict) and isinstance(ric.get("activityHandling"), str):
            self._activity_handling = ric["activityHandling"]
        self._set_tools(setup.get("tools"))
        thinking = self.server.interaction_status
        self._thinking = (
            f"models/{model_id}".startswith(THINKING_MODEL_PREFIXES)
            if thinking is None
            else thinking
        )
        resumption = setup.get("sessionResumption")
        self._resumption = resumption if isinstance(resumption, dict) else None
        cwc = setup.get("contextWindowCompression")
        self.context_window_compression = cwc if isinstance(cwc, dict) else None
        history = setup.get("historyConfig")
        self._history_rules = strict and history_rules_apply(model)
        self._history_open = self._history_rules and (
            isinstance(history, dict) and history.get("initialHistoryInClientContent") is True
        )

        handle = self._resumption.get("handle") if self._resumption else None
        if handle:
            record = self.server._handles.get(str(handle))
            if record is None or self.server._expired(record.session):
                await self._fail(1007, REASON_INVALID_ARGUMENT)
                return
            session = record.session
            if session.model != model or session.backend != self.backend:
                await self._fail(1007, REASON_INVALID_ARGUMENT)
                return
            old = session.connection
            if self.server.refuse_resume_while_old_open and old is not None and old.is_open:
                await self._fail(1011, REASON_INTERNAL)
                return
            new_use = token is not None and session.id not in token.sessions
            if token is not None and token.refusal(self.server.clock(), new_session=new_use):
                await self._fail(1007, REASON_BAD_KEY)
                return
            session.history = [dict(c) for c in record.history]
            session.turn_count = record.turn_count
            self.resumed_from = str(handle)
        else:
            new_use = True
            if token is not None and token.refusal(self.server.clock(), new_session=True):
                await self._fail(1007, REASON_BAD_KEY)  # used up, or newSessionExpireTime passed
                return
            session = self.server._new_session(model, self.backend or "gemini")
        if token is not None:
            token.record_use(session.id, new_session=new_use)
            assert self._nursery is not None
            self._nursery.start_soon(self._token_deadline, token)
        session.connections.append(self)
        self.session = session
        self.setup = setup
        self.effective_setup = setup
        if self.backend == "vertex":
            await self._emit({"setupComplete": {"sessionId": session.vertex_id}})
        else:
            await self._emit({"setupComplete": {}})
        if session.started_at is None:
            session.started_at = trio.current_time()
        limit = self.server.session_limit
        if limit is not None and self.context_window_compression is None:
            assert self._nursery is not None
            remaining = session.started_at + limit - trio.current_time()
            self._nursery.start_soon(self._session_deadline, remaining)

    def _set_tools(self, tools: Any) -> None:
        self._functions = {}
        if not isinstance(tools, list):
            return
        for tool in tools:
            if not isinstance(tool, dict):
                continue
            decls = tool.get("functionDeclarations")
            if not isinstance(decls, list):
                continue
            for decl in decls:
                if isinstance(decl, dict) and isinstance(decl.get("name"), str):
                    self._functions[decl["name"]] = decl

    def _on_context_update(self, body: dict[str, Any]) -> None:
        assert self.setup is not None
        if "systemInstruction" in body:
            self.setup["systemInstruction"] = body["systemInstruction"]
        tools = body.get("tools")
        if isinstance(tools, dict):
            self.setup["tools"] = tools.get("tools", [])
            self._set_tools(self.setup["tools"])

    # -- user turns ----------------------------------------------------------------------------

    def _mark_pending(self, number: int, message: dict[str, Any]) -> None:
        if self._pending_since is None:
            self._pending_since = number
        self._pending_messages.append(message)

    def _interrupt(self, *, barge_in: bool) -> None:
        if barge_in and self._activity_handling == "NO_INTERRUPTION":
            return
        gen = self._current
        if gen is None or gen.uninterruptible or gen.turn_complete_sent:
            return
        gen.interrupted = True
        gen.scope.cancel()

    def _on_client_content(
        self, body: dict[str, Any], message: dict[str, Any], number: int
    ) -> None:
        session = self.session
        assert session is not None
        turns = body.get("turns") or []
        if not isinstance(turns, list):
            raise _InvalidArgument(REASON_INVALID_ARGUMENT)
        initial_history = False
        if self._history_rules:
            # gemini-3.1/3.8 (strict): every turn names its role, and clientContent is initial
            # history only (see _rules)
            if any(isinstance(c, dict) and not c.get("role") for c in turns):
                raise _InvalidArgument(REASON_INVALID_ARGUMENT)
            if not self._history_open:
                raise _InvalidArgument(REASON_INVALID_ARGUMENT)
            initial_history = True
        self._interrupt(barge_in=False)
        for content in turns:
            if not isinstance(content, dict):
                raise _InvalidArgument(REASON_INVALID_ARGUMENT)
            parts = content.get("parts") or []
            if not isinstance(parts, list):
                raise _InvalidArgument(REASON_INVALID_ARGUMENT)
            for part in parts:
                _check_part(part)
            role = content.get("role") or "user"
            session.history.append({"role": role, "parts": parts})
            if role == "user":
                self._pending_text.extend(
                    p["text"]
                    for p in parts
                    if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
        self._pending_messages.append(message)
        if body.get("turnComplete") is True:
            if initial_history:
                # the end of the initial history: "will not trigger a model call"
                self._history_open = False
                return
            self._start_turn()

    def _on_realtime_input(
        self, body: dict[str, Any], message: dict[str, Any], number: int
    ) -> None:
        self._history_open = False  # the realtime conversation has begun
        if "text" in body:
            text = body["text"]
            if not isinstance(text, str):
                raise _InvalidArgument(REASON_INVALID_ARGUMENT)
            self._pending_text.append(text)
            self._pending_parts.append({"text": text})
            if not self._auto_vad and self._activity_active:
                self._mark_pending(number, message)
            else:
                self._interrupt(barge_in=True)
                self._pending_messages.append(message)
                self._start_turn()
        blobs: list[Any] = []
        if "audio" in body:
            blobs.append(body["audio"])
        if "video" in body:
            blobs.append(body["video"])
        chunks = body.get("mediaChunks")
        if isinstance(chunks, list):
            blobs.extend(chunks[:1])  # "all but the first will be ignored"
        for blob in blobs:
            if not isinstance(blob, dict):
                raise _InvalidArgument(REASON_INVALID_ARGUMENT)
            data = _decode_blob(blob, "realtime_input")
            mime = str(blob.get("mimeType") or "")
            if mime.startswith("image/") or mime.startswith("video/"):
                self.video_frames += 1
                self._pending_video += 1
            else:
                self._on_audio(data, mime, message, number)
        if body.get("activityStart") is not None:
            if self._auto_vad:
                raise _InvalidArgument(REASON_INVALID_ARGUMENT)
            self._activity_active = True
            self._interrupt(barge_in=True)
            self._mark_pending(number, message)
        if body.get("activityEnd") is not None:
            if self._auto_vad:
                raise _InvalidArgument(REASON_INVALID_ARGUMENT)
            if self.server.strict and self._modality == "TEXT" and not self.audio_bytes_received:
                raise _InvalidArgument(REASON_INVALID_ARGUMENT)  # python-genai#1720
            if self._activity_active:
                self._activity_active = False
                self._pending_messages.append(message)
                self._start_turn()
        if body.get("audioStreamEnd") is True and self._auto_vad and self._audio:
            self._pending_messages.append(message)
            self._start_turn()

    def _on_audio(self, data: bytes, mime: str, message: dict[str, Any], number: int) -> None:
        self.audio_bytes_received += len(data)
        if not self._auto_vad and not self._activity_active:
            self.ignored_audio_bytes += len(data)
            return
        self._audio_rate = parse_rate(mime)
        self._audio += data
        self._mark_pending(number, message)
        if not self._auto_vad:
            return
        # Automatic activity detection, as the service does it: a loud chunk is speech (the
        # start of it interrupts the model); once speech was heard, silence_duration seconds
        # of quiet audio end the user's turn, without audioStreamEnd.
        if _loudness(data) >= self.server.speech_level:
            if not self._speaking:
                self._speaking = True
                self._interrupt(barge_in=True)
            self._silence = 0.0
        elif self._speaking:
            self._silence += len(data) / 2 / max(self._audio_rate, 1)
            if self._silence >= self._silence_duration - 1e-9:
                self._start_turn()

    def _on_tool_response(self, body: dict[str, Any]) -> None:
        session = self.session
        assert session is not None
        responses = body.get("functionResponses") or []
        if not isinstance(responses, list):
            raise _InvalidArgument(REASON_INVALID_ARGUMENT)
        gen = self._current
        for response in responses:
            if not isinstance(response, dict):
                raise _InvalidArgument(REASON_INVALID_ARGUMENT)
            session.history.append({"role": "user", "parts": [{"functionResponse": response}]})
            if gen is None or not gen.turn._deliver(response):
                self.unknown_tool_response_ids.append(response.get("id"))

    def _start_turn(self) -> None:
        """End the user turn: its not-yet-recorded input joins the history; queue a model turn."""
        session = self.session
        assert session is not None and self.setup is not None
        self._history_open = False
        parts = list(self._pending_parts)
        if self._audio:
            mime = f"audio/pcm;rate={self._audio_rate}"
            parts.append(
                {"inlineData": {"mimeType": mime, "data": b64encode_std(bytes(self._audio))}}
            )
        if parts:
            session.history.append({"role": "user", "parts": parts})
        turn = UserTurn(
            text=" ".join(t for t in self._pending_text if t),
            audio=bytes(self._audio),
            audio_rate=self._audio_rate,
            video_frames=self._pending_video,
            messages=self._pending_messages,
            history=session.history,
            setup=self.setup,
            modality=self._modality,
            function_declarations=self._functions,
            index=session.turn_count,
            connection=self,
            new_call_id=self._new_call_id,
        )
        session.turn_count += 1
        self._pending_text = []
        self._pending_parts = []
        self._pending_messages = []
        self._pending_since = None
        self._audio = bytearray()
        self._pending_video = 0
        self._speaking = False
        self._silence = 0.0
        self.turns.append(turn)
        self._turn_send.send_nowait(turn)

    # -- model turns ---------------------------------------------------------------------------

    async def _model_loop(self) -> None:
        async for turn in self._turn_recv:
            await self._run_turn(turn)

    async def _run_turn(self, turn: UserTurn) -> None:
        if self._over_context_limit():
            if not self._closing:
                self.limit_exceeded = "context"
                await self._fail(1007, REASON_INVALID_ARGUMENT)
            return
        gen = _Generation(turn)
        self._current = gen
        instant = self.server.instant_replies
        if instant:
            # hold the whole turn and write it at once (see ``instant_replies``)
            await self._emit_item(_Cork())
        try:
            if self._resumption is not None:
                await self._emit({"sessionResumptionUpdate": {"newHandle": "", "resumable": False}})
            if turn.audio and self.setup is not None and "inputAudioTranscription" in self.setup:
                await self._emit(
                    {"serverContent": {"inputTranscription": {"text": turn.transcript}}}
                )
            if self._thinking:
                await self._emit({"serverContent": {"interactionStatus": "IN_PROGRESS"}})
            with gen.scope:
                await self._generate(gen)
            if not gen.turn_complete_sent:
                if turn.pending_calls:
                    await self._emit({"toolCallCancellation": {"ids": list(turn.pending_calls)}})
                await self._emit({"serverContent": {"interrupted": True}})
                await self._emit(self._turn_complete(gen))
                gen.turn_complete_sent = True
            if self._thinking:
                await self._emit({"serverContent": {"interactionStatus": "IDLE"}})
            self._record_model_output(gen)
            # A handle is a snapshot at a resumable point: not while input that interrupted
            # this turn waits for its own answer (it is already in the history).
            queued = self._turn_recv.statistics().current_buffer_used
            if self._resumption is not None and not queued:
                await self._emit(self._new_handle())
        finally:
            self._current = None
        if instant:
            await self._emit_item(_Flush(uncork=True))

    async def _generate(self, gen: _Generation) -> None:
        responder = self.server.responder
        try:
            stream = responder(gen.turn)
            mid_turn_complete = self._thinking
            async with _closing(stream):
                async for item in stream:
                    message = _coerce(item)
                    if self.backend == "vertex":
                        message = _vertex_shape(message)
                    self._track(gen, message)
                    await self._emit(message)
                    if mid_turn_complete and _is_model_content(message):
                        # a thinking model's reply spans turnCompletes: one after its first
                        # chunk, the usual one at its end, then IDLE
                        mid_turn_complete = False
                        await self._emit({"serverContent": {"turnComplete": True}})
                    if "toolCall" in message and self.server.instant_replies:
                        # the model now waits for the client: let the call out
                        await self._emit_item(_Flush(uncork=False))
                    if _turn_complete_in(message):
                        gen.turn_complete_sent = True
                        return
            gen.uninterruptible = True
            if not gen.generation_complete:
                await self._emit({"serverContent": {"generationComplete": True}})
            await self._emit(self._turn_complete(gen))
            gen.turn_complete_sent = True
        except Exception as exc:
            logger.exception("responder failed on %r", gen.turn)
            self.server.errors.append(exc)
            gen.turn_complete_sent = True  # no interrupted/turnComplete: we close instead
            await self._emit_item(_Close(1011, REASON_INTERNAL))
            await trio.sleep_forever()

    def _track(self, gen: _Generation, message: Mapping[str, Any]) -> None:
        content = message.get("serverContent")
        if isinstance(content, Mapping):
            model_turn = content.get("modelTurn")
            if isinstance(model_turn, Mapping):
                for part in model_turn.get("parts") or ():
                    if not isinstance(part, Mapping):
                        continue
                    if isinstance(part.get("text"), str) and not part.get("thought"):
                        gen.text.append(part["text"])
                    inline = part.get("inlineData")
                    if isinstance(inline, Mapping) and isinstance(inline.get("data"), str):
                        gen.audio_bytes += _b64_length(inline["data"])
            transcription = content.get("outputTranscription")
            if isinstance(transcription, Mapping) and isinstance(transcription.get("text"), str):
                gen.transcript.append(transcription["text"])
            if content.get("generationComplete"):
                gen.generation_complete = True
                gen.uninterruptible = True
        tool_call = message.get("toolCall")
        if isinstance(tool_call, Mapping):
            calls = [c for c in tool_call.get("functionCalls") or () if isinstance(c, Mapping)]
            gen.turn._register_calls(calls)
            if self.session is not None and calls:
                self.session.history.append(
                    {"role": "model", "parts": [{"functionCall": dict(c)} for c in calls]}
                )

    def _turn_complete(self, gen: _Generation) -> dict[str, Any]:
        session = self.session
        assert session is not None
        usage = usage_metadata(
            session.history,
            response_text="".join(gen.text) or "".join(gen.transcript),
            response_audio_bytes=gen.audio_bytes,
        )
        if self.backend == "vertex":
            # Vertex names the response counts after candidates (_UsageMetadata_from_vertex)
            usage = {_VERTEX_USAGE_NAMES.get(k, k): v for k, v in usage.items()}
        return {"serverContent": {"turnComplete": True}, "usageMetadata": usage}

    def _record_model_output(self, gen: _Generation) -> None:
        text = "".join(gen.text) or "".join(gen.transcript)
        if text and self.session is not None:
            self.session.history.append({"role": "model", "parts": [{"text": text}]})

    def _new_handle(self) -> dict[str, Any]:
        session = self.session
        assert session is not None and self._resumption is not None
        handle = secrets.token_urlsafe(24)
        self.server._handles[handle] = _Handle(
            session, [dict(c) for c in session.history], session.turn_count
        )
        session.handles.append(handle)
        self.handles.append(handle)
        update: dict[str, Any] = {"newHandle": handle, "resumable": True}
        # transparent: the Vertex AI path honours it; the Gemini API refuses it (strict mode)
        transparent_ok = self.backend == "vertex" or not self.server.strict
        if self._resumption.get("transparent") is True and transparent_ok:
            if self._pending_since is not None:
                consumed = self._pending_since - 2
            else:
                consumed = self._client_count - 1
            update["lastConsumedClientMessageIndex"] = str(consumed)
        return {"sessionResumptionUpdate": update}

    # -- timers --------------------------------------------------------------------------------

    async def _lifetime(self, lifetime: float) -> None:
        await trio.sleep(lifetime)
        server = self.server
        silent = False
        if server.goaway_close_code is not None:
            ending: tuple[int, str] | None = (server.goaway_close_code, REASON_DEADLINE)
        else:
            ending = _GOAWAY_CLOSES.get(server.goaway_end)
            silent = server.goaway_end == "silent"
        await self._go_away(server.goaway_time_left, ending, silent)

    async def _go_away(
        self, time_left: float, ending: tuple[int, str] | None, silent: bool = False
    ) -> None:
        await self._emit({"goAway": {"timeLeft": format_duration(time_left)}})
        if silent:
            await trio.sleep(time_left)
            self.silent = True  # nothing more goes out; client input is ignored
            self._notify()
        elif ending is not None:
            await self._close_later(time_left, *ending)

    async def _token_deadline(self, token: MintedToken) -> None:
        await trio.sleep(max(token.expire_time - self.server.clock(), 0.0))
        if self._closing:
            return
        await self._fail(1008, REASON_TOKEN_EXPIRED)  # the service's close is unconfirmed

    async def _session_deadline(self, remaining: float) -> None:
        await trio.sleep(max(remaining, 0.0))
        if self._closing:
            return
        self.limit_exceeded = "session"
        await self._fail(1007, REASON_INVALID_ARGUMENT)

    def _over_context_limit(self) -> bool:
        limit = self.server.context_limit_tokens
        if limit is None or self.context_window_compression is not None or self.session is None:
            return False
        usage = usage_metadata(self.session.history, response_text="", response_audio_bytes=0)
        return int(usage["promptTokenCount"]) > limit

    async def _close_later(self, delay: float, code: int, reason: str) -> None:
        await trio.sleep(delay)
        await self._emit_item(_Close(code, reason))

    async def _pinger(self, interval: float) -> None:
        ws = self._ws
        assert ws is not None
        while True:
            await trio.sleep(interval)
            if self.stalled:
                return
            started = trio.current_time()
            with trio.move_on_after(self.server.ping_timeout):
                try:
                    await ws.ping(os.urandom(8))
                except ConnectionClosed:
                    return
                self.pong_rtts.append(trio.current_time() - started)
                continue
            self.pings_unanswered += 1


class _InvalidArgument(Exception):
    pass


def _check_goaway_end(end: str) -> None:
    if end not in ("close_1011", "close_1008", "close_1000", "silent"):
        raise ConfigurationError(
            "goaway_end must be 'close_1011', 'close_1008', 'close_1000' or 'silent'"
        )


def _decode_blob(blob: Mapping[str, Any], where: str) -> bytes:
    data = blob.get("data", "")
    if not isinstance(data, str):
        raise _InvalidArgument(REASON_INVALID_ARGUMENT)
    try:
        return b64decode_lenient(data)
    except ValueError:
        raise _InvalidArgument(
            f"Invalid value at '{where}.data' (TYPE_BYTES), Base64 decoding failed for"
            f' "{data[:30]}"'
        ) from None


def _check_part(part: Any) -> None:
    if not isinstance(part, dict):
        raise _InvalidArgument(REASON_INVALID_ARGUMENT)
    inline = part.get("inlineData")
    if isinstance(inline, dict):
        _decode_blob(inline, "client_content.turns.parts.inline_data")


@contextlib.asynccontextmanager
async def _closing(iterator: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _coerce(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        return text_message(item)
    if isinstance(item, bytes | bytearray):
        return audio_message(bytes(item))
    if isinstance(item, Mapping):
        return dict(item)
    raise ConfigurationError(
        f"a responder must yield dicts, str or bytes, not {type(item).__name__}"
    )


_VERTEX_USAGE_NAMES = {
    "responseTokenCount": "candidatesTokenCount",
    "responseTokensDetails": "candidatesTokensDetails",
}


def _vertex_shape(message: dict[str, Any]) -> dict[str, Any]:
    """A model message as the Vertex AI path sends it: ``modelTurn`` with ``"role": "model"``,
    and the model's ``audio/pcm;rate=24000`` as ``audio/pcm`` (copies; the input is kept)."""
    content = message.get("serverContent")
    if not isinstance(content, Mapping):
        return message
    model_turn = content.get("modelTurn")
    if not isinstance(model_turn, Mapping):
        return message
    turn = dict(model_turn)
    turn.setdefault("role", "model")
    parts = turn.get("parts")
    if isinstance(parts, list):
        shaped: list[Any] = []
        for part in parts:
            inline = part.get("inlineData") if isinstance(part, Mapping) else None
            if isinstance(inline, Mapping) and inline.get("mimeType") == OUTPUT_MIME:
                part = {**part, "inlineData": {**inline, "mimeType": "audio/pcm"}}
            shaped.append(part)
        turn["parts"] = shaped
    return {**message, "serverContent": {**content, "modelTurn": turn}}


def _vertex_error_body(
    code: int, status: str, message: str, reason: str, api_version: str | None
) -> bytes:
    """Google's JSON error body for a refused Vertex AI upgrade (the details: unconfirmed)."""
    version = api_version or "v1beta1"
    method = f"google.cloud.aiplatform.{version}.LlmBidiService.BidiGenerateContent"
    body = {
        "error": {
            "code": code,
            "message": message,
            "status": status,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": reason,
                    "domain": "googleapis.com",
                    "metadata": {"service": "aiplatform.googleapis.com", "method": method},
                }
            ],
        }
    }
    return json.dumps(body, indent=2).encode("utf-8")


def _is_resumable_update(message: Mapping[str, Any]) -> bool:
    update = message.get("sessionResumptionUpdate")
    return (
        isinstance(update, Mapping)
        and update.get("resumable") is True
        and isinstance(update.get("newHandle"), str)
        and bool(update["newHandle"])
    )


def _is_model_content(message: Mapping[str, Any]) -> bool:
    content = message.get("serverContent")
    return isinstance(content, Mapping) and (
        "modelTurn" in content or "outputTranscription" in content
    ) and not content.get("turnComplete")


def _turn_complete_in(message: Mapping[str, Any]) -> bool:
    content = message.get("serverContent")
    return isinstance(content, Mapping) and bool(content.get("turnComplete"))


def _fault_frame(fault: Fault) -> bytes | None:
    if fault.kind == "malformed_json":
        if fault.payload is not None:
            return fault.payload
        return encode_frame(text_message("this frame is cut short"))[:-12]
    if fault.kind == "unknown_message":
        message = dict(
            fault.message
            or {"futureFeatureUpdate": {"detail": "unknown to this client", "level": 3}}
        )
        return encode_frame(message)
    if fault.kind == "oversized_frame":
        empty = encode_frame(text_message(""))
        return encode_frame(text_message("x" * (fault.size_bytes - len(empty))))
    return None


class FakeLiveServer:
    """A faithful loopback Gemini Live server for tests. See the module docstring for behaviour.

    Start it with :func:`open_fake_server` (an async context manager),
    ``server = await nursery.start(serve_fake_server, ...)`` or
    ``await nursery.start(FakeLiveServer(...).serve)``.

    Options (keyword-only)::

        tls: serve ``wss://`` with a throwaway CA (needs ``trustme``); see ``ca_pem`` and
            :meth:`client_ssl_context`. The certificate covers 127.0.0.1, ::1 and localhost.
        host, port: where to listen (port 0: a free port, read ``port`` after start).
        api_key: the accepted API key (on Vertex AI: express mode). auth_tokens: accepted
            ephemeral tokens (Constrained method only; no limits). Tokens minted at
            ``POST {rest_url}/v1alpha/auth_tokens`` are accepted too, with their ``uses``,
            expire times and locked setup (see ``_auth_tokens`` and docs/testing.rst).
        clock: the wall clock (POSIX seconds) that token timestamps are read with
            (``time.time`` by default).
        bearer_tokens: the OAuth access tokens accepted on the Vertex AI path as
            ``Authorization: Bearer <token>`` (default ``("test-access-token",)``); kept as the
            set ``bearer_tokens``, read at every upgrade: change it (or call
            :meth:`accept_token` / :meth:`revoke_token`) to rotate tokens during a test.
        models: accepted model names (``models/...``), default :data:`DEFAULT_MODELS`.
        vertex_models: model ids accepted on the Vertex AI path besides those of ``models``
            (default :data:`DEFAULT_VERTEX_MODELS`), in
            ``projects/{p}/locations/{l}/publishers/google/models/{id}``.
        chunk_count, first_chunk_delay, chunk_interval: pacing of the default
            :class:`FakeModel` (seconds).
        responder: replaces the default model (see ``gemini_ws.testing._model``).
        default_modality: ``"AUDIO"`` (default) or ``"TEXT"`` when the setup names none.
        strict: refuse what the service refuses (default ``True``): unknown fields at any depth,
            ``sessionResumption.transparent``, and the per-model rules (see ``_rules``).
            ``False``: the lenient fake (top-level keys checked only, no per-model rules,
            ``transparent`` honoured with ``lastConsumedClientMessageIndex``).
        connection_lifetime: seconds from the upgrade to the ``goAway`` (``None``: never; the
            service's is about 10 min).
        goaway_time_left: the ``goAway``'s ``timeLeft`` (50 s, as in production), also the
            default of :meth:`FakeConnection.go_away`.
        goaway_end: what follows ``timeLeft`` later: ``"close_1011"`` (default), ``"close_1008"``,
            ``"close_1000"`` or ``"silent"`` (see the module docstring).
        goaway_close_code: kept for compatibility: a close code that replaces ``goaway_end``'s
            (with the deadline reason).
        session_limit: seconds a session lasts without ``contextWindowCompression`` before a
            1007 close (``None``: no limit; the service's is 15 min for audio, 2 min with video).
        context_limit_tokens: the prompt size (tokens, as ``usageMetadata`` counts them) beyond
            which a model turn closes 1007 instead, without ``contextWindowCompression``
            (``None``: no limit; the service's is 128k for native audio, else 32k).
        pong_delay: seconds before each pong to a client ping goes out (the service takes
            8-30 s; 0 by default so that tests stay fast).
        ping_interval, ping_timeout: the server's own pings (RTTs in ``pong_rtts``).
        refuse_resume_while_old_open: resumption rule (see the module docstring).
        handle_ttl: seconds a handle stays valid after its session's last connection closed;
            ``None`` (default): per path, 2 h on the Gemini API, 24 h on Vertex AI
            (:data:`HANDLE_TTL`).
        faults: faults for every connection (see also :meth:`inject`).
        max_message_size: largest client message (bigger: close 1009).
        handshake_timeout: time allowed for TLS and the HTTP upgrade.
        close_timeout: bound on each close handshake and on shutdown.
        tool_call_seed: seed of the ``function-call-<19 digits>`` ids.
        instant_replies: write each model turn at once: no pacing (``first_chunk_delay`` and
            ``chunk_interval`` must be 0), and the turn's messages, from the first
            ``sessionResumptionUpdate`` / chunk through ``turnComplete`` and the resumable
            handle, are held and written in a single transport write, so a client reads the
            whole reply (what fits in one TCP segment) in one receive. A ``toolCall`` is written
            as soon as it is queued (the model then waits for the client), and a fault that
            aborts, closes, stalls or delays writes what is held first. Messages a custom
            responder yields are held the same way until its turn ends.
        max_connections: at most this many connections open at once (``None``: no limit). A
            connection counts from its upgrade request until it is over; refused ones do not
            count. The upgrade of one more is refused as ``max_connections_refusal`` says, and
            marked ``over_limit``. Read at every upgrade request: tests may change it.
        max_connections_refusal: how a connection over ``max_connections`` is refused:
            ``"close_on_setup"`` (default): the upgrade is accepted and the first client message
            gets a close 1011 ``Resource has been exhausted (e.g. check quota).`` (after the
            credential checks, like the service's quota failures); ``"close"``: the same close
            right after the upgrade, before any client message; ``"http_429"``: the upgrade is
            answered with HTTP 429, a Google JSON error body and ``Retry-After: 1``.
        silence_duration: with automatic activity detection, the seconds of quiet audio after
            speech that end the user's turn (the setup's ``silenceDurationMs`` overrides it).
        speech_level: the mean absolute sample value (of 32768) from which a chunk of audio
            is speech; quieter audio neither starts a user turn nor interrupts the model.
        interaction_status: reply as Gemini 3.x thinking models do: ``interactionStatus``
            ``IN_PROGRESS`` before the reply, a ``turnComplete`` after its first chunk as
            well as at its end, then ``interactionStatus`` ``IDLE`` (before the handle).
            ``None`` (default): for the models in ``THINKING_MODEL_PREFIXES`` (gemini-3.8-live
            and its variants) only.

    Every accepted socket has ``TCP_NODELAY`` set (see ``FakeConnection.tcp_nodelay``): without
    it a reply written as several small frames reaches the client about 40 ms late (Nagle's
    algorithm waiting for a delayed ACK).

    Attributes: ``url`` (base URL, e.g. ``ws://127.0.0.1:PORT``: a client appends its path,
    the Gemini API's or Vertex AI's; see :meth:`endpoint` and ``vertex_endpoint()``),
    ``port``, ``api_key``, ``auth_tokens``, ``bearer_tokens``, ``ca_pem`` (PEM bytes of the CA
    with ``tls=True``, else None), ``connections`` (:class:`FakeConnection`, in upgrade order),
    ``sessions`` (id -> :class:`FakeSession`), ``model`` (the default :class:`FakeModel`),
    ``rest_url`` / ``rest_port`` (the REST listener minting ephemeral tokens), ``minted``
    (token name -> ``MintedToken``),
    ``errors`` (bugs caught in the fake or a responder).
    """

    def __init__(
        self,
        *,
        tls: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "test-key",
        auth_tokens: Collection[str] = ("auth_tokens/test-ephemeral-token",),
        bearer_tokens: Collection[str] = ("test-access-token",),
        models: Iterable[str] | None = None,
        vertex_models: Iterable[str] | None = None,
        chunk_count: int = 5,
        first_chunk_delay: float = 0.0,
        chunk_interval: float = 0.0,
        responder: Responder | None = None,
        default_modality: str = "AUDIO",
        strict: bool = True,
        connection_lifetime: float | None = None,
        goaway_time_left: float = 50.0,
        goaway_end: GoAwayEnd = "close_1011",
        goaway_close_code: int | None = None,
        session_limit: float | None = None,
        context_limit_tokens: int | None = None,
        pong_delay: float = 0.0,
        ping_interval: float | None = None,
        ping_timeout: float = 10.0,
        refuse_resume_while_old_open: bool = True,
        handle_ttl: float | None = None,
        faults: Iterable[Fault] = (),
        max_message_size: int = 16 * 1024 * 1024,
        handshake_timeout: float = 10.0,
        close_timeout: float = 2.0,
        tool_call_seed: int = 0,
        instant_replies: bool = False,
        max_connections: int | None = None,
        max_connections_refusal: MaxConnectionsRefusal = "close_on_setup",
        silence_duration: float = 0.5,
        speech_level: int = 300,
        interaction_status: bool | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if default_modality not in ("TEXT", "AUDIO"):
            raise ConfigurationError("default_modality must be 'TEXT' or 'AUDIO'")
        if instant_replies and (first_chunk_delay or chunk_interval):
            raise ConfigurationError(
                "instant_replies needs first_chunk_delay=0 and chunk_interval=0"
            )
        if max_connections is not None and max_connections < 0:
            raise ConfigurationError("max_connections must be >= 0 or None")
        if max_connections_refusal not in ("close_on_setup", "close", "http_429"):
            raise ConfigurationError(
                "max_connections_refusal must be 'close_on_setup', 'close' or 'http_429'"
            )
        self.tls = tls
        self.host = host
        self._requested_port = port
        self.port = 0
        self.api_key = api_key
        self.auth_tokens = frozenset(auth_tokens)
        self.clock: Callable[[], float] = clock if clock is not None else time.time
        self.minted: dict[str, MintedToken] = {}
        self.rest_port = 0
        if isinstance(bearer_tokens, str):
            raise ConfigurationError("bearer_tokens must be a collection of tokens, not a str")
        self.bearer_tokens: set[str] = set(bearer_tokens)
        self.models = frozenset(models) if models is not None else DEFAULT_MODELS
        self.vertex_models = (
            frozenset(vertex_models) if vertex_models is not None else DEFAULT_VERTEX_MODELS
        )
        self.model = FakeModel(
            chunk_count=chunk_count,
            first_chunk_delay=first_chunk_delay,
            chunk_interval=chunk_interval,
        )
        self.responder: Responder = responder if responder is not None else self.model
        self.default_modality = default_modality
        if not silence_duration > 0:
            raise ConfigurationError("silence_duration must be > 0 seconds")
        self.silence_duration = silence_duration
        self.speech_level = speech_level
        self.interaction_status = interaction_status
        _check_goaway_end(goaway_end)
        if pong_delay < 0:
            raise ConfigurationError("pong_delay must be >= 0 seconds")
        self.strict = strict
        self.connection_lifetime = connection_lifetime
        self.goaway_time_left = goaway_time_left
        self.goaway_end: GoAwayEnd = goaway_end
        self.goaway_close_code = goaway_close_code
        self.session_limit = session_limit
        self.context_limit_tokens = context_limit_tokens
        self.pong_delay = pong_delay
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.refuse_resume_while_old_open = refuse_resume_while_old_open
        self.handle_ttl = handle_ttl
        self.faults = tuple(faults)
        self.max_message_size = max_message_size
        self.handshake_timeout = handshake_timeout
        self.close_timeout = close_timeout
        self.instant_replies = instant_replies
        self.max_connections = max_connections
        self.max_connections_refusal: MaxConnectionsRefusal = max_connections_refusal
        self.ca_pem: bytes | None = None
        self.connections: list[FakeConnection] = []
        self.sessions: dict[str, FakeSession] = {}
        self.errors: list[BaseException] = []
        self._handles: dict[str, _Handle] = {}
        self._injections: list[list[Any]] = []
        self._ssl_context: ssl.SSLContext | None = None
        self._client_context: ssl.SSLContext | None = None
        self._scopes: set[trio.CancelScope] = set()
        self._accept_scope = trio.CancelScope()
        self._shutting_down = False
        self._new_connection = trio.Event()
        self._call_rng = __import__("random").Random(tool_call_seed)
        self._uuid_rng = __import__("random").Random(tool_call_seed)
        self._session_counter = 0

    def __repr__(self) -> str:
        return f"<FakeLiveServer {self.url if self.port else '(not started)'}>"

    # -- public --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL (scheme, host and port, no path), e.g. ``ws://127.0.0.1:PORT``."""
        scheme = "wss" if self.tls else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """Base URL of the REST listener (``POST {rest_url}/v1alpha/auth_tokens``), e.g.
        ``http://127.0.0.1:PORT`` (``https://`` with ``tls=True``)."""
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.rest_port}"

    def endpoint(self, *, api_version: str = "v1beta", method: str = "BidiGenerateContent") -> str:
        """The full Live endpoint URL on this server (no credentials in it)."""
        return (
            f"{self.url}/ws/google.ai.generativelanguage.{api_version}.GenerativeService.{method}"
        )

    def vertex_endpoint(self, *, api_version: str = "v1beta1") -> str:
        """The full Vertex AI Live endpoint URL on this server (``v1beta1`` or ``v1``)."""
        path = f"/ws/google.cloud.aiplatform.{api_version}.LlmBidiService/BidiGenerateContent"
        return f"{self.url}{path}"

    def accept_token(self, token: str) -> None:
        """Accept *token* as a Vertex AI access token from the next upgrade on."""
        self.bearer_tokens.add(token)

    def revoke_token(self, token: str) -> None:
        """Refuse *token* from the next upgrade on (open connections keep going)."""
        self.bearer_tokens.discard(token)

    def handle_ttl_for(self, backend: str) -> float:
        """Seconds a handle of a session on *backend* (``"gemini"``, ``"vertex"``) stays valid
        after the session's last connection closed."""
        if self.handle_ttl is not None:
            return self.handle_ttl
        return HANDLE_TTL.get(backend, HANDLE_TTL["gemini"])

    def client_ssl_context(self) -> ssl.SSLContext:
        """A verifying client SSL context that trusts the throwaway CA (``tls=True`` only)."""
        if self._client_context is None:
            raise ConfigurationError("the server was not started with tls=True")
        return self._client_context

    def inject(self, *faults: Fault, connections: int | None = 1) -> None:
        """Apply ``faults`` to the next ``connections`` upgrade requests (None: all of them).

        Faults are handed out when a connection's HTTP upgrade request arrives (so TCP garbage
        does not use them up); the server-wide ``faults=`` apply to every connection as well.
        """
        if connections is not None and connections < 1:
            raise ConfigurationError("connections must be >= 1 or None")
        self._injections.append([tuple(faults), connections])

    def expire_handles(self) -> None:
        """Forget every resumption handle issued so far (as if they had expired)."""
        self._handles.clear()

    async def wait_for_connections(self, count: int) -> list[FakeConnection]:
        """Wait until ``count`` connections sent an upgrade request; returns ``connections``."""
        while len(self.connections) < count:
            await self._new_connection.wait()
        return self.connections

    # -- internals -----------------------------------------------------------------------------

    def _new_call_id(self) -> str:
        return f"function-call-{self._call_rng.randrange(10**18, 10**19)}"

    def _new_uuid(self) -> str:
        """A version-4 UUID string, deterministic per ``tool_call_seed``."""
        return str(uuid.UUID(int=self._uuid_rng.getrandbits(128), version=4))

    def _new_session(self, model: str, backend: str = "gemini") -> FakeSession:
        self._session_counter += 1
        session = FakeSession(
            f"session-{self._session_counter}",
            model,
            backend=backend,
            vertex_id=self._new_uuid() if backend == "vertex" else "",
        )
        self.sessions[session.id] = session
        return session

    def _expired(self, session: FakeSession) -> bool:
        last = session.connection
        if last is not None and not last.closed.is_set():
            return False
        if session.last_closed_at is None:
            return False
        return trio.current_time() - session.last_closed_at > self.handle_ttl_for(session.backend)

    def _over_limit(self, connection: FakeConnection) -> bool:
        if self.max_connections is None:
            return False
        open_ = sum(
            1
            for c in self.connections
            if c is not connection
            and c.rejected_status is None
            and not c.over_limit
            and not c.closed.is_set()
        )
        return open_ >= self.max_connections

    def _take_faults(self) -> tuple[Fault, ...]:
        faults = list(self.faults)
        for entry in self._injections:
            group, remaining = entry
            if remaining is None or remaining > 0:
                faults.extend(group)
                if remaining is not None:
                    entry[1] = remaining - 1
        self._injections = [e for e in self._injections if e[1] is None or e[1] > 0]
        return tuple(faults)

    async def serve(
        self, *, task_status: trio.TaskStatus[FakeLiveServer] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled (nursery ``start`` protocol); then shut down gracefully."""
        if self.tls:
            from ._tls import make_certificates

            certificates = make_certificates()
            self.ca_pem = certificates.ca_pem
            self._ssl_context = certificates.server_context
            self._client_context = certificates.client_context()
        listeners = await trio.open_tcp_listeners(self._requested_port, host=self.host)
        rest_listeners: list[trio.SocketListener] = []
        try:
            self.port = listeners[0].socket.getsockname()[1]
            rest_listeners = await trio.open_tcp_listeners(0, host=self.host)
            self.rest_port = rest_listeners[0].socket.getsockname()[1]
            async with trio.open_nursery() as nursery:

                async def handle_rest_stream(raw: trio.SocketStream) -> None:
                    await handle_rest(self, raw)

                async def accept() -> None:
                    with self._accept_scope:
                        async with trio.open_nursery() as accepting:
                            accepting.start_soon(
                                functools.partial(
                                    trio.serve_listeners,
                                    handle_rest_stream,
                                    rest_listeners,
                                    handler_nursery=nursery,
                                )
                            )
                            await trio.serve_listeners(
                                self._handle_tcp, listeners, handler_nursery=nursery
                            )

                nursery.start_soon(accept)
                task_status.started(self)
                try:
                    await trio.sleep_forever()
                finally:
                    with trio.CancelScope(shield=True):
                        await self._shutdown()
        finally:
            with trio.CancelScope(shield=True):
                for listener in [*listeners, *rest_listeners]:
                    await listener.aclose()

    async def _shutdown(self) -> None:
        self._shutting_down = True
        self._accept_scope.cancel()
        with trio.move_on_after(self.close_timeout):
            async with trio.open_nursery() as nursery:
                for connection in self.connections:
                    nursery.start_soon(connection._shutdown_close)
        for scope in list(self._scopes):
            scope.cancel()

    async def _handle_tcp(self, raw: trio.SocketStream) -> None:
        # trio sets it too; it is part of what the fake promises, so do not rely on that
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        with trio.CancelScope(shield=True) as scope:
            self._scopes.add(scope)
            if self._shutting_down:
                scope.cancel()
            try:
                await self._handle_stream(raw)
            except Exception as exc:
                logger.exception("fake Live server: connection handler failed")
                self.errors.append(exc)
            finally:
                self._scopes.discard(scope)
                raw.socket.close()

    async def _handle_stream(self, raw: trio.SocketStream) -> None:
        inner: trio.abc.Stream = raw
        if self._ssl_context is not None:
            inner = trio.SSLStream(raw, self._ssl_context, server_side=True, https_compatible=True)
        async with trio.open_nursery() as nursery:
            stream = ControlledStream(inner, raw, nursery)
            try:
                request = await self._wait_request(nursery, stream)
                if request is not None:
                    await self._handle_request(request, stream)
            finally:
                nursery.cancel_scope.cancel()
                if not stream.aborted:
                    stream.abort()

    async def _wait_request(
        self, nursery: trio.Nursery, stream: ControlledStream
    ) -> WebSocketRequest | None:
        result: list[WebSocketRequest] = []
        with trio.move_on_after(self.handshake_timeout):
            async with trio.open_nursery() as race:

                async def get() -> None:
                    result.append(
                        await wrap_server_stream(
                            nursery, stream, max_message_size=self.max_message_size
                        )
                    )
                    race.cancel_scope.cancel()

                async def watch() -> None:
                    await stream.dead.wait()
                    race.cancel_scope.cancel()

                race.start_soon(get)
                race.start_soon(watch)
        return result[0] if result else None

    async def _handle_request(self, request: WebSocketRequest, stream: ControlledStream) -> None:
        connection = FakeConnection(self, len(self.connections), request)
        connection.faults = self._take_faults()
        with contextlib.suppress(OSError):
            nodelay = stream.transport.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            connection.tcp_nodelay = bool(nodelay)
        self.connections.append(connection)
        self._new_connection.set()
        self._new_connection = trio.Event()
        try:
            stream.pong_delay = max(stream.pong_delay, self.pong_delay)
            for fault in connection.faults:
                if fault.kind == "delay_pongs":
                    stream.pong_delay = max(stream.pong_delay, fault.seconds)
            reject = next((f for f in connection.faults if f.kind == "reject_upgrade"), None)
            if reject is not None:
                connection.faults_fired.append(reject)
                connection.rejected_status = reject.status
                await request.reject(
                    reject.status,
                    extra_headers=[
                        (k.encode("latin-1"), v.encode("latin-1")) for k, v in reject.headers
                    ]
                    + [(b"Content-Type", b"application/json; charset=UTF-8")],
                    body=reject.body,
                )
                await stream.aclose()
                return
            if connection.method is None:
                connection.rejected_status = 404
                await request.reject(
                    404,
                    extra_headers=[(b"Content-Type", b"text/html; charset=UTF-8")],
                    body=b"<!DOCTYPE html>\n<title>Error 404 (Not Found)!!1</title>\n",
                )
                await stream.aclose()
                return
            refusal = connection._vertex_refusal() if connection.backend == "vertex" else None
            if refusal is not None:
                status, body = refusal
                connection.rejected_status = status
                headers = [(b"Content-Type", b"application/json; charset=UTF-8")]
                if status == 401:
                    headers.append((b"WWW-Authenticate", b'Bearer realm="https://accounts.google.com/"'))
                await request.reject(status, extra_headers=headers, body=body)
                await stream.aclose()
                return
            if self._over_limit(connection):
                connection.over_limit = True
                if self.max_connections_refusal == "http_429":
                    connection.rejected_status = 429
                    await request.reject(
                        429,
                        extra_headers=[
                            (b"Retry-After", b"1"),
                            (b"Content-Type", b"application/json; charset=UTF-8"),
                        ],
                        body=http_error_body(429),
                    )
                    await stream.aclose()
                    return
                connection._over_limit_refusal = self.max_connections_refusal
            ws = await request.accept()
            connection.accepted = True
            await connection._run(ws, stream)
        finally:
            connection._finish()


async def serve_fake_server(
    *,
    task_status: trio.TaskStatus[FakeLiveServer] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run a :class:`FakeLiveServer` until cancelled: ``server = await nursery.start(
    serve_fake_server, ...)`` (use ``functools.partial`` for options). Same options as
    :func:`open_fake_server`."""
    server = FakeLiveServer(**options)
    await server.serve(task_status=task_status)


def _reraise_alone(exc: BaseException) -> NoReturn:
    """Raise the only exception of an internal group without chaining the group to it."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


@contextlib.asynccontextmanager
async def open_fake_server(
    *,
    tls: bool = False,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str = "test-key",
    auth_tokens: Collection[str] = ("auth_tokens/test-ephemeral-token",),
    bearer_tokens: Collection[str] = ("test-access-token",),
    models: Iterable[str] | None = None,
    vertex_models: Iterable[str] | None = None,
    chunk_count: int = 5,
    first_chunk_delay: float = 0.0,
    chunk_interval: float = 0.0,
    responder: Responder | None = None,
    default_modality: str = "AUDIO",
    strict: bool = True,
    connection_lifetime: float | None = None,
    goaway_time_left: float = 50.0,
    goaway_end: GoAwayEnd = "close_1011",
    goaway_close_code: int | None = None,
    session_limit: float | None = None,
    context_limit_tokens: int | None = None,
    pong_delay: float = 0.0,
    ping_interval: float | None = None,
    ping_timeout: float = 10.0,
    refuse_resume_while_old_open: bool = True,
    handle_ttl: float | None = None,
    faults: Iterable[Fault] = (),
    max_message_size: int = 16 * 1024 * 1024,
    handshake_timeout: float = 10.0,
    close_timeout: float = 2.0,
    tool_call_seed: int = 0,
    instant_replies: bool = False,
    max_connections: int | None = None,
    max_connections_refusal: MaxConnectionsRefusal = "close_on_setup",
    silence_duration: float = 0.5,
    speech_level: int = 300,
    interaction_status: bool | None = None,
    clock: Callable[[], float] | None = None,
    raise_errors: bool = True,
) -> AsyncIterator[FakeLiveServer]:
    """Run a fake Gemini Live server for the duration of the ``async with`` block.

    The options are :class:`FakeLiveServer`'s. The server is strict by default: it refuses what
    the service refuses (unknown fields at any depth, ``sessionResumption.transparent``, the
    per-model rules); ``strict=False`` gives the lenient fake.

    Every task and socket of the server ends with the block: open connections are closed with
    1001 (bounded by ``close_timeout``) or aborted. With ``raise_errors`` (default), bugs caught
    inside the fake or a custom responder are raised as :class:`FakeServerError` on exit.
    """
    server = FakeLiveServer(
        tls=tls,
        host=host,
        port=port,
        api_key=api_key,
        auth_tokens=auth_tokens,
        bearer_tokens=bearer_tokens,
        models=models,
        vertex_models=vertex_models,
        chunk_count=chunk_count,
        first_chunk_delay=first_chunk_delay,
        chunk_interval=chunk_interval,
        responder=responder,
        default_modality=default_modality,
        strict=strict,
        connection_lifetime=connection_lifetime,
        goaway_time_left=goaway_time_left,
        goaway_end=goaway_end,
        goaway_close_code=goaway_close_code,
        session_limit=session_limit,
        context_limit_tokens=context_limit_tokens,
        pong_delay=pong_delay,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        refuse_resume_while_old_open=refuse_resume_while_old_open,
        handle_ttl=handle_ttl,
        faults=faults,
        max_message_size=max_message_size,
        handshake_timeout=handshake_timeout,
        close_timeout=close_timeout,
        tool_call_seed=tool_call_seed,
        instant_replies=instant_replies,
        max_connections=max_connections,
        max_connections_refusal=max_connections_refusal,
        silence_duration=silence_duration,
        speech_level=speech_level,
        interaction_status=interaction_status,
        clock=clock,
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        _reraise_alone(group.exceptions[0])
    if raise_errors and server.errors:
        raise FakeServerError(server.errors)
