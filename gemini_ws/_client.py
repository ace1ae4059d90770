"""Client: configuration, credentials, the endpoint URL, and the nursery that runs connections.

``async with Client() as client`` opens a nursery. Each stream's connection task and its
sender/receiver tasks run there, so a stream can be opened in one task and used from several;
``client.stream()`` waits for all of them to finish before its ``async with`` exits, so no task
or socket outlives the block that started it.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import attrs
import sniffio
import trio

from . import _connection
from ._auth import ApiKeyAuth, Auth, BearerAuth, default_credentials
from ._codec import snake
from ._connection import ConnectionOptions, LiveConnection
from ._errors import (
    ConfigurationError,
    MultipleErrorsError,
    StreamClosedError,
    leaves,
    register_secret,
)
from ._metrics import MetricsCallback
from ._models import check_setup_for_model, traits_of
from ._pool import ConnectionPool, check_pool_options
from ._stream import LiveStream, ReconnectPolicy, StreamEvent, StreamOptions
from ._tokens import AuthTokens
from ._transport import Endpoint
from ._types import (
    ClientContent,
    Content,
    LiveConfig,
    Part,
    SessionResumptionConfig,
    Setup,
)
from ._validate import check_int, check_number
from ._wire import structure_config

__all__ = ["DEFAULT_BASE_URL", "Client"]

DEFAULT_BASE_URL = "wss://generativelanguage.googleapis.com"
_EPHEMERAL_PREFIX = "auth_tokens/"
_VERSIONS = ("v1", "v1beta", "v1alpha")


def _path(api_version: str, method: str) -> str:
    return f"/ws/google.ai.generativelanguage.{api_version}.GenerativeService.{method}"


_VERTEX_VERSIONS = ("v1beta1", "v1")
#: Vertex AI's multi-region locations, served from their own hosts.
_MULTI_REGIONS = frozenset({"us", "eu"})


def _vertex_path(api_version: str) -> str:
    return f"/ws/google.cloud.aiplatform.{api_version}.LlmBidiService/BidiGenerateContent"


def _vertex_base_url(location: str | None) -> str:
    """The host google-genai picks for a Vertex AI location (PROTOCOL.md 1.2)."""
    if location is None or location == "global":
        return "wss://aiplatform.googleapis.com"
    if location in _MULTI_REGIONS:
        return f"wss://aiplatform.{location}.rep.googleapis.com"
    return f"wss://{location}-aiplatform.googleapis.com"


def _rest_base(endpoint: Endpoint) -> str:
    scheme = "https" if endpoint.secure else "http"
    return f"{scheme}://{endpoint.host_header}"


def _forget_tokens(auth: BearerAuth | None) -> Any:
    def forget() -> None:
        if auth is not None:
            auth.forget()

    return forget


def _require_trio(what: str) -> None:
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = "none"
    if library != "trio":
        raise ConfigurationError(
            f"{what} runs on trio, but the running event loop is {library!r}. Start your program "
            "with trio.run(main), or anyio.run(main, backend='trio')."
        )


class Client:
    """Entry point: ``async with Client() as client: async with client.stream(model) as s``.

    The key comes from *api_key*, else ``GEMINI_API_KEY``, else ``GOOGLE_API_KEY``. It travels
    only in the ``x-goog-api-key`` header (an ephemeral ``auth_tokens/...`` token goes to the
    v1alpha ``BidiGenerateContentConstrained`` method with ``Authorization: Token``) and never
    appears in a URL, repr, log record or error.

    *base_url* points the client elsewhere, e.g. ``ws://127.0.0.1:PORT`` for a local server
    (plain ``ws://`` is refused for non-loopback hosts unless *allow_insecure*). *ssl_context*
    replaces the default verifying context (e.g. to trust a test CA).

    *transport* picks the WebSocket implementation: ``"websockets"`` (the default and the
    fastest: websockets' sans-I/O protocol driven by the stream's own receiver task) or
    ``"trio-websocket"`` (trio-websocket's public API; see :doc:`transports` for the few
    things it reports differently).

    *vertexai* (or ``GOOGLE_GENAI_USE_VERTEXAI=true``) talks to Vertex AI instead
    (:doc:`vertex`): *project* and *location* (or ``GOOGLE_CLOUD_PROJECT`` and
    ``GOOGLE_CLOUD_LOCATION``; location ``global`` by default) pick the host and the model's
    resource name, and *credentials* (a google-auth ``Credentials`` object; the application
    default credentials when omitted) give an OAuth access token for each connection,
    refreshed before it expires. An *api_key* alone on Vertex AI is express mode.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        api_version: str | None = None,
        allow_insecure: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
        setup_timeout: float = 30.0,
        close_timeout: float = 3.0,
        heartbeat_interval: float | None = 20.0,
        heartbeat_timeout: float = 60.0,
        max_message_size: int = 64 * 1024 * 1024,
        receive_buffer_bytes: int = 32 * 1024 * 1024,
        send_buffer_bytes: int = 8 * 1024 * 1024,
        headers: Mapping[str, str] | None = None,
        pool_size: int = 0,
        max_connections: int | None = None,
        idle_timeout: float = 30.0,
        pool_timeout: float = 30.0,
        transport: str | None = None,
        vertexai: bool | None = None,
        project: str | None = None,
        location: str | None = None,
        credentials: object | None = None,
        rest_base_url: str | None = None,
    ) -> None:
        if vertexai is None:
            flag = os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "")
            vertexai = flag.strip().lower() in ("1", "true", "yes")
        if not isinstance(vertexai, bool):
            raise ConfigurationError(
                f"vertexai must be True or False, got {type(vertexai).__name__}"
            )
        #: True when this client talks to Vertex AI (see :doc:`vertex`).
        self.vertexai = vertexai
        self.project: str | None = None
        self.location: str | None = None
        self._bearer: BearerAuth | None = None
        key: str | None
        if vertexai:
            key = self._init_vertex(api_key, project, location, credentials)
        else:
            if project is not None or location is not None or credentials is not None:
                raise ConfigurationError(
                    "project, location and credentials are for Vertex AI: pass vertexai=True "
                    "(or set GOOGLE_GENAI_USE_VERTEXAI=true)"
                )
            key = (
                api_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
            )
            if not key:
                raise ConfigurationError(
                    "no API key: pass Client(api_key=...) or set GEMINI_API_KEY (or "
                    "GOOGLE_API_KEY)"
                )
        if key is not None and (
            not isinstance(key, str) or any(c in key for c in "\r\n\0")
        ):
            raise ConfigurationError("the API key must be a str without control characters")
        # (the key is registered with the redactor only once every argument is valid: below)
        self._api_key = key
        self.ephemeral = key is not None and key.startswith(_EPHEMERAL_PREFIX)
        if vertexai and self.ephemeral:
            raise ConfigurationError(
                "ephemeral auth_tokens/ tokens are for the Gemini Developer API, not Vertex AI"
            )
        if vertexai:
            version = api_version or "v1beta1"
            versions: tuple[str, ...] = _VERTEX_VERSIONS
        else:
            version = api_version or ("v1alpha" if self.ephemeral else "v1beta")
            versions = _VERSIONS
        if version not in versions:
            raise ConfigurationError(
                f"api_version must be one of {', '.join(versions)}, got {version!r:.40}"
            )
        self.api_version = version
        method = "BidiGenerateContentConstrained" if self.ephemeral else "BidiGenerateContent"
        if base_url is not None and not isinstance(base_url, str):
            raise ConfigurationError(f"base_url must be a str, got {type(base_url).__name__}")
        if base_url is not None and key is not None and len(key) >= 4 and key in base_url:
            # said without echoing the URL: the key is not registered for masking yet
            raise ConfigurationError("base_url must not contain the API key; pass api_key")
        if not isinstance(allow_insecure, bool):
            raise ConfigurationError(
                f"allow_insecure must be True or False, got {type(allow_insecure).__name__}"
            )
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise ConfigurationError(
                f"ssl_context must be an ssl.SSLContext, got {type(ssl_context).__name__}"
            )
        if vertexai:
            default_base, path = _vertex_base_url(self.location), _vertex_path(version)
        else:
            default_base, path = DEFAULT_BASE_URL, _path(version, method)
        self.endpoint = Endpoint.from_base_url(
            base_url or default_base, path, allow_insecure=allow_insecure
        )
        if rest_base_url is not None and not isinstance(rest_base_url, str):
            raise ConfigurationError(
                f"rest_base_url must be a str, got {type(rest_base_url).__name__}"
            )
        #: Where REST calls (``auth_tokens.create``) go: *rest_base_url*, else the Live
        #: endpoint's host over https (http for a ws:// base URL).
        self.rest_base_url = rest_base_url or _rest_base(self.endpoint)
        # (bools are refused: isinstance(True, int) holds, and True would mean 1)
        check_number("connect_timeout", connect_timeout)
        check_number("setup_timeout", setup_timeout)
        check_number("close_timeout", close_timeout)
        check_number("heartbeat_timeout", heartbeat_timeout)
        check_number("heartbeat_interval", heartbeat_interval, optional=True)
        check_int("max_message_size", max_message_size, minimum=1)
        check_int("receive_buffer_bytes", receive_buffer_bytes, minimum=1)
        check_int("send_buffer_bytes", send_buffer_bytes, minimum=1)
        self.connection_options = ConnectionOptions(
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            max_message_size=max_message_size,
            ssl_context=ssl_context,
            transport=_connection.DEFAULT_TRANSPORT if transport is None else transport,
        )
        self.stream_options = StreamOptions(
            receive_buffer_bytes=receive_buffer_bytes,
            send_buffer_bytes=send_buffer_bytes,
            setup_timeout=setup_timeout,
            close_timeout=close_timeout,
        )
        from . import __version__

        if headers is not None and not isinstance(headers, Mapping):
            raise ConfigurationError(f"headers must be a mapping, got {type(headers).__name__}")
        extra = dict(headers or {})
        for header, content in extra.items():
            if not isinstance(header, str) or not isinstance(content, str):
                raise ConfigurationError("header names and values must be str")
            if any(c in header + content for c in "\r\n\0") or not header.strip():
                raise ConfigurationError(f"header {header!r:.40} has control characters")
            try:
                (header + content).encode("latin-1")
            except UnicodeEncodeError:
                raise ConfigurationError(
                    f"header {header!r:.40} cannot be sent: HTTP headers are latin-1"
                ) from None
            if header.lower() in ("x-goog-api-key", "authorization"):
                raise ConfigurationError(
                    f"pass credentials as api_key, not as a {header} header"
                )
        self._headers: list[tuple[str, str]] = [
            ("user-agent", f"gemini-ws/{__version__}"),
            ("x-goog-api-client", f"gemini-ws/{__version__}"),
        ]
        self._headers += list(extra.items())
        self._auth: Auth
        if self._bearer is not None:
            self._auth = self._bearer
        elif self.ephemeral:
            assert key is not None
            self._auth = ApiKeyAuth("authorization", f"Token {key}")
        else:
            assert key is not None
            self._auth = ApiKeyAuth("x-goog-api-key", key)
        self.pool_size = pool_size
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.pool_timeout = pool_timeout
        check_pool_options(pool_size, max_connections, idle_timeout, pool_timeout)
        self._pool: ConnectionPool | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None
        self._closed = False
        self._streams: set[LiveStream] = set()
        self.models = Models(self)
        #: Mint ephemeral tokens: ``await client.auth_tokens.create(...)`` (:doc:`tokens`).
        self.auth_tokens = AuthTokens(self)
        self._minted: list[Any] = []
        # Every argument is valid: from now until this client closes (or is collected without
        # having been entered) its key (or every access token it used) is masked in every
        # error and log record.
        forget_key = register_secret(key) if key is not None else _forget_tokens(self._bearer)
        minted = self._minted

        def forget() -> None:
            forget_key()
            for forget_token in minted:
                forget_token()
            minted.clear()

        self._forget_key = weakref.finalize(self, forget)

    def _remember_secret(self, secret: str) -> None:
        """Mask *secret* (a token this client minted) until the client closes."""
        self._minted.append(register_secret(secret))

    def _init_vertex(
        self,
        api_key: str | None,
        project: str | None,
        location: str | None,
        credentials: object | None,
    ) -> str | None:
        """Settle the Vertex AI target and credentials; returns the express-mode API key."""
        for name, value in (("project", project), ("location", location)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigurationError(f"{name} must be a non-empty str, got {value!r:.40}")
        if api_key is not None and (project is not None or location is not None):
            raise ConfigurationError(
                "on Vertex AI an api_key (express mode) and project/location exclude each "
                "other: pass one or the other"
            )
        if api_key is not None and credentials is not None:
            raise ConfigurationError("pass credentials or an api_key, not both")
        project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None
        location = location or os.environ.get("GOOGLE_CLOUD_LOCATION") or None
        if api_key is None and credentials is None and project is None and location is None:
            api_key = os.environ.get("GOOGLE_API_KEY") or None  # express mode from the env
        if api_key is not None:
            self.location = location
            return api_key  # express mode: x-goog-api-key, no project
        if credentials is None:
            credentials, found = default_credentials()
            project = project or found
        if not project:
            raise ConfigurationError(
                "Vertex AI needs a project: pass project=... or set GOOGLE_CLOUD_PROJECT"
            )
        self.project = project
        self.location = location or "global"
        self._bearer = BearerAuth(credentials)
        return None

    def vertex_model_name(self, model: str) -> str:
        """The Vertex AI resource name of *model*, as google-genai writes it.

        A bare id becomes ``publishers/google/models/<id>``, ``<publisher>/<id>`` becomes
        ``publishers/<publisher>/models/<id>``; with a project (not express mode) the name is
        prefixed with ``projects/<project>/locations/<location>/``. A ``projects/...`` name is
        kept as it is.
        """
        if not isinstance(model, str) or not model:
            raise ConfigurationError(f"model must be a non-empty str, got {model!r:.40}")
        if model.startswith("projects/"):
            return model
        if model.startswith("models/"):
            model = f"publishers/google/{model}"
        elif not model.startswith("publishers/"):
            publisher, _, name = model.rpartition("/")
            model = f"publishers/{publisher or 'google'}/models/{name}"
        if self.project is not None and self.location is not None:
            model = f"projects/{self.project}/locations/{self.location}/{model}"
        return model

    def __repr__(self) -> str:
        state = "open" if self._nursery is not None else ("closed" if self._closed else "new")
        return f"<gemini_ws.Client {self.endpoint.url} {self._auth.describe()} {state}>"

    # --- lifetime ------------------------------------------------------------------------
    async def __aenter__(self) -> Client:
        _require_trio("gemini_ws.Client")
        if self._nursery is not None or self._closed:
            raise ConfigurationError("a Client can be entered once")
        stack = contextlib.AsyncExitStack()
        self._nursery = await stack.enter_async_context(trio.open_nursery())
        self._exit_stack = stack
        self._pool = ConnectionPool(
            self.connect,
            self._nursery,
            pool_size=self.pool_size,
            max_connections=self.max_connections,
            idle_timeout=self.idle_timeout,
            pool_timeout=self.pool_timeout,
        )
        self._pool.refill()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            return await self._exit(exc_type, exc, tb)
        finally:
            # Nothing of this client is left to raise or log: its key stops being masked
            # (other live clients' keys, and anything shaped like a key, still are).
            self._forget_key()

    async def _exit(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._exit_stack = self._exit_stack, None
        self._closed = True
        nursery, self._nursery = self._nursery, None
        pool, self._pool = self._pool, None
        if stack is None or nursery is None:
            return None
        # A stream still open (in a task the client's block does not wait for) ends now, with
        # an error that says why; its own block then finishes at once.
        for stream in list(self._streams):
            await stream._client_closed()
        if pool is not None:
            await pool.aclose()
        # Every stream waits for its own tasks; whatever is left (nothing, normally) is
        # cancelled so that leaving the client never hangs.
        nursery.cancel_scope.cancel()
        try:
            return await stack.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            cancelled, rest = group.split(trio.Cancelled)
            real = leaves(rest) if rest is not None else []
            if exc is not None and real == [exc]:
                return False  # the body's own exception, exactly as it was raised
            if not real:
                # only cancellation (an outer scope): one Cancelled, as trio code expects
                assert cancelled is not None
                raise leaves(cancelled)[0] from None
            # Our tasks never raise; anything else is a bug or a KeyboardInterrupt.
            for leaf in real:
                if isinstance(leaf, KeyboardInterrupt):
                    raise leaf from group
            if len(real) == 1:
                raise real[0] from None
            raise MultipleErrorsError(group) from None

    def _require_open(self) -> trio.Nursery:
        if self._nursery is None:
            raise ConfigurationError(
                "use the client inside 'async with Client(...) as client:'"
                if not self._closed
                else "this Client is closed"
            )
        return self._nursery

    # --- streams -------------------------------------------------------------------------
    @staticmethod
    def _as_config(config: LiveConfig | Mapping[str, Any] | None) -> LiveConfig:
        if config is None:
            return LiveConfig()
        if isinstance(config, LiveConfig):
            return config
        if isinstance(config, Mapping):
            # snake_case or camelCase keys, at the top level as everywhere below it
            return structure_config(config, LiveConfig, "config")
        raise ConfigurationError(
            f"config must be a LiveConfig or a dict, got {type(config).__name__}"
        )

    def build_setup(
        self,
        model: str,
        config: LiveConfig | Mapping[str, Any] | None = None,
        *,
        resume_handle: str | None = None,
    ) -> Setup:
        """The ``setup`` message a stream would send (model normalised, handle applied)."""
        cfg = self._as_config(config)
        if resume_handle is not None:
            if not isinstance(resume_handle, str) or not resume_handle:
                raise ConfigurationError("resume_handle must be a non-empty str")
            transparent = (
                cfg.session_resumption.transparent if cfg.session_resumption is not None else None
            )
            cfg = cfg.evolve(
                session_resumption=SessionResumptionConfig(
                    handle=resume_handle, transparent=transparent
                )
            )
        if not isinstance(model, str):
            raise ConfigurationError(f"model must be a str, got {type(model).__name__}")
        if self.vertexai:
            model = self.vertex_model_name(model)
            if self._bearer is not None and not cfg.response_modalities:
                # as google-genai does on Vertex AI: the server's default is not relied on
                cfg = cfg.evolve(response_modalities=["AUDIO"])
        setup = cfg.to_setup(model)
        check_setup_for_model(setup)
        return setup

    @property
    def pool(self) -> ConnectionPool:
        """The connection pool (warm spares and limits) of this open client."""
        self._require_open()
        assert self._pool is not None
        return self._pool

    async def prewarm(self, n: int) -> int:
        """Open warm spare connections until *n* are idle (within ``max_connections``) and
        wait for them; returns how many are idle. Spares take connection set-up out of the
        time to first chunk of the next streams."""
        return await self.pool.prewarm(n)

    async def connect(self) -> LiveConnection:
        """Open one connection (TCP, TLS, WebSocket upgrade; no setup yet), bypassing the
        pool. The caller must ``aclose()`` it."""
        nursery = self._require_open()
        # credentials per connection: an access token is refreshed here when it is due, so
        # every spare, handover and re-dial opens with a valid one
        headers = self._headers + await self._auth.headers()
        conn = LiveConnection(self.endpoint, headers, self.connection_options)
        return await conn.open(nursery)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        model: str,
        config: LiveConfig | Mapping[str, Any] | None = None,
        *,
        reconnect: bool | ReconnectPolicy = False,
        resume_handle: str | None = None,
        metrics: MetricsCallback | None = None,
    ) -> AsyncIterator[LiveStream]:
        """Open a Live session on *model*; yields a :class:`LiveStream` once the server has
        answered ``setupComplete``.

        ``reconnect=True`` (or a :class:`ReconnectPolicy`) turns on session resumption with
        goAway handover and bounded re-dial after a resumable drop; each handover is yielded
        as a :class:`SessionResumed` event. ``resume_handle`` resumes an earlier session by
        hand (everything but the model may change). On leaving the block, queued messages are
        flushed, the connection is closed with 1000 and every task of the stream has finished.
        ``metrics`` (a sync or async function) gets a :class:`TurnMetrics` at the end of each
        model turn and a :class:`SessionMetrics` at the end of the block (see
        :doc:`observability`).
        """
        _require_trio("client.stream()")
        if reconnect is True:
            policy: ReconnectPolicy | None = ReconnectPolicy()
        elif reconnect is False or reconnect is None:
            policy = None
        elif isinstance(reconnect, ReconnectPolicy):
            policy = reconnect
        else:
            raise ConfigurationError("reconnect must be a bool or a ReconnectPolicy")
        setup = self.build_setup(model, config, resume_handle=resume_handle)
        if policy is not None and setup.session_resumption is None:
            setup = attrs.evolve(setup, session_resumption=SessionResumptionConfig())
        self._require_open()
        stream = LiveStream(
            setup, self.stream_options, pool=self.pool, reconnect=policy, metrics=metrics
        )
        body_error: BaseException | None = None
        self._streams.add(stream)
        try:
            # The stream's own nursery: its supervisor, receiver, sender and heartbeat. Those
            # tasks never raise, so the only exception that can come out of it is the body's.
            async with trio.open_nursery() as nursery:
                try:
                    await stream._open(nursery)
                except BaseException:
                    # cancelled or failed while its tasks were starting: close what is open
                    await stream._close(flush=False)
                    raise
                try:
                    yield stream
                except BaseException as exc:
                    body_error = exc
                    await stream._close(flush=False)
                    raise
                await stream._close(flush=True)
        except BaseExceptionGroup as group:
            members = leaves(group)
            if body_error is not None and all(
                leaf is body_error or isinstance(leaf, trio.Cancelled) for leaf in members
            ):
                raise body_error from None
            real = [leaf for leaf in members if not isinstance(leaf, trio.Cancelled)]
            if len(real) == 1:
                raise real[0] from None
            if not real:
                raise members[0] from None
            raise MultipleErrorsError(group) from None
        finally:
            self._streams.discard(stream)
        # Never end a session silently: an error the application did not look at, or queued
        # input that never went out, is raised on leaving the block.
        if stream.unsent and stream.state != "cancelled":
            raise StreamClosedError(
                "the stream ended before every queued message was sent",
                unsent=stream.unsent,
                resume_handle=stream.resume_handle,
            ) from stream._error
        unseen = stream._unseen_error()
        if unseen is not None:
            raise unseen


class Models:
    """``client.models``: the seed-compatible one-shot API."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def by_name(self, name: str) -> Model:
        """The model called *name* (``models/`` is added when missing)."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a model name must be a non-empty str")
        return Model(self._client, name)


Request = str | Content | ClientContent | Sequence[Content | str] | Mapping[str, Any]


#: GenerateContentRequest keys the one-shot API maps onto the session's setup.
_REQUEST_KEYS = {
    "contents": "contents",
    "config": "config",
    "generationConfig": "generation_config",
    "generation_config": "generation_config",
    "systemInstruction": "system_instruction",
    "system_instruction": "system_instruction",
    "tools": "tools",
    "safetySettings": "safety_settings",
    "safety_settings": "safety_settings",
}
#: The generationConfig fields a Live setup has (everything else has no place in one).
_LIVE_GENERATION_FIELDS = (
    "response_modalities",
    "temperature",
    "top_p",
    "top_k",
    "max_output_tokens",
    "candidate_count",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "media_resolution",
    "speech_config",
    "thinking_config",
    "enable_affective_dialog",
)


def _request_config(request: Mapping[str, Any]) -> LiveConfig | None:
    """The LiveConfig a GenerateContentRequest's own settings ask for (None without any)."""
    for key in request:
        if key not in _REQUEST_KEYS:
            hint = (
                " (a Live session has no tool config: declare the tools, the model decides)"
                if key in ("toolConfig", "tool_config")
                else ""
            )
            raise ConfigurationError(
                f"a request has no field {key!r} that maps onto a Live session{hint}; it takes "
                f"contents, generationConfig, systemInstruction, tools, safetySettings or config"
            )
    fields: dict[str, Any] = {}
    generation = request.get("generationConfig", request.get("generation_config"))
    if generation is not None:
        if not isinstance(generation, Mapping):
            raise ConfigurationError(
                f"generationConfig must be a dict, got {type(generation).__name__}"
            )
        for key, value in generation.items():
            name = snake(str(key))
            if name not in _LIVE_GENERATION_FIELDS:
                raise ConfigurationError(
                    f"generationConfig.{key} has no place in a Live session's setup (it takes "
                    f"{', '.join(_LIVE_GENERATION_FIELDS)})"
                )
            fields[name] = value
    for key in ("systemInstruction", "system_instruction"):
        if request.get(key) is not None:
            fields["system_instruction"] = request[key]
    if request.get("tools") is not None:
        fields["tools"] = request["tools"]
    safety = request.get("safetySettings", request.get("safety_settings"))
    if safety is not None:
        fields["extra"] = {"safetySettings": safety}
    return structure_config(fields, LiveConfig, "request") if fields else None


def _request_to_message(request: Request) -> tuple[ClientContent, LiveConfig | None]:
    if isinstance(request, str):
        return ClientContent(turns=(Content(parts=(Part(text=request),), role="user"),),
                             turn_complete=True), None
    if isinstance(request, ClientContent):
        return request, None
    if isinstance(request, Content):
        return ClientContent(turns=(request,), turn_complete=True), None
    if isinstance(request, Mapping):
        contents = request.get("contents")
        if contents is None:
            raise ConfigurationError("a request mapping needs 'contents'")
        message, _ = _request_to_message(contents)
        settings = _request_config(request)
        config_raw = request.get("config")
        if config_raw is None:
            return message, settings
        if settings is not None:
            raise ConfigurationError(
                "a request gives its settings once: in 'config' or as generationConfig / "
                "systemInstruction / tools / safetySettings, not both"
            )
        if isinstance(config_raw, LiveConfig):
            return message, config_raw
        if isinstance(config_raw, Mapping):
            return message, structure_config(config_raw, LiveConfig, "config")
        raise ConfigurationError("'config' must be a LiveConfig or a dict")
    if isinstance(request, Sequence):
        turns: list[Content] = []
        for item in request:
            if isinstance(item, str):
                turns.append(Content(parts=(Part(text=item),), role="user"))
            elif isinstance(item, Content):
                turns.append(item)
            elif isinstance(item, Mapping):
                turns.append(structure_config(item, Content, "contents item"))
            else:
                raise ConfigurationError(
                    f"contents items must be str, Content or dict, got {type(item).__name__}"
                )
        if not turns:
            raise ConfigurationError("a request needs at least one turn")
        return ClientContent(turns=tuple(turns), turn_complete=True), None
    raise ConfigurationError(
        f"a request must be a str, Content, list of contents or a mapping, got "
        f"{type(request).__name__}"
    )


def _last_user_text(message: ClientContent) -> str | None:
    """The text of the request's last turn when it is a user turn of text parts only."""
    last = message.turns[-1] if message.turns else None
    if last is None or (last.role or "user") != "user" or not last.parts:
        return None
    if any(part.text is None or not _only_text(part) for part in last.parts):
        return None
    return "".join(part.text or "" for part in last.parts)


def _only_text(part: Part) -> bool:
    return all(
        getattr(part, a.name) in (None, False, (), a.default)
        for a in attrs.fields(Part)
        if a.name not in ("text", "extra")
    ) and not part.extra


class Model:
    """One model, for the one-shot API."""

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self.name = name

    def __repr__(self) -> str:
        return f"<Model {self.name}>"

    @contextlib.asynccontextmanager
    async def stream_generate_content(
        self, request: Request, *, config: LiveConfig | Mapping[str, Any] | None = None
    ) -> AsyncIterator[AsyncIterator[StreamEvent]]:
        """Send one request and yield an async iterator over the chunks of the reply (every
        server message of that one model turn). The session is closed on leaving the block."""
        message, request_config = _request_to_message(request)
        if config is not None and request_config is not None:
            raise ConfigurationError(
                "the request carries its own settings; pass config= or the request's "
                "settings, not both"
            )
        setup_config = config if config is not None else request_config
        realtime = traits_of(self.name).text_as_realtime_input
        last_text = _last_user_text(message) if realtime else None
        if last_text is not None and len(message.turns) > 1:
            # Gemini 3.x: earlier turns go as initial history (historyConfig), the question as
            # realtimeInput.text, the only forms those models take
            base = self._client._as_config(setup_config)
            setup_config = base.evolve(
                history_config={"initial_history_in_client_content": True}
            )
        async with self._client.stream(self.name, setup_config) as stream:
            if last_text is None:
                await stream.send(message)
            else:
                if len(message.turns) > 1:
                    await stream.send(
                        ClientContent(turns=message.turns[:-1], turn_complete=False)
                    )
                await stream.send_realtime_text(last_text)
            yield stream.turn()


__all__ += ["Model", "Models"]
