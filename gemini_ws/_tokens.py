"""Ephemeral tokens: ``await client.auth_tokens.create(...)`` mints a short-lived token a
browser or phone can open Live sessions with, without ever holding the API key.

The request goes over the documented REST endpoint (``POST /v1alpha/auth_tokens``, Gemini
Developer API only) with httpx, which runs on trio through anyio. The token is the returned
``name`` (``auth_tokens/...``); pass it as ``Client(api_key=token.name)``. It is a credential:
its repr is masked, and it is masked in every error and log record while the minting client
is open.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._codec import camel
from ._errors import ConfigurationError, ConnectError, GeminiWSError
from ._types import LiveConfig
from ._validate import validated
from ._wire import encode, structure_config

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["AuthToken", "AuthTokenError", "AuthTokens"]

#: The generationConfig fields a lock list may name bare (``"temperature"``).
_GENERATION_FIELDS = frozenset(
    {
        "responseModalities",
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "candidateCount",
        "presencePenalty",
        "frequencyPenalty",
        "seed",
        "mediaResolution",
        "speechConfig",
        "thinkingConfig",
        "enableAffectiveDialog",
        "translationConfig",
        "audioTranscriptionConfig",
    }
)


class AuthTokenError(GeminiWSError):
    """The service refused to mint a token (its HTTP status and message)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        #: The HTTP status of the refusal.
        self.status = status


@validated
@attrs.frozen
class AuthToken:
    """A minted ephemeral token. ``name`` is the token itself: ``Client(api_key=token.name)``."""

    name: str = attrs.field(repr=lambda _: "'auth_tokens/***'")
    #: When messages in its sessions start being refused (as asked, or the service default).
    expire_time: datetime.datetime | None = None
    #: After this, no new session may be opened with it.
    new_session_expire_time: datetime.datetime | None = None
    #: How many sessions it may open (0: no limit); resuming one does not count.
    uses: int | None = None


class AuthTokens:
    """``client.auth_tokens``: mint ephemeral tokens with this client's API key."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def create(
        self,
        *,
        uses: int | None = None,
        expire_time: datetime.datetime | datetime.timedelta | None = None,
        new_session_expire_time: datetime.datetime | datetime.timedelta | None = None,
        model: str | None = None,
        config: LiveConfig | Mapping[str, Any] | None = None,
        lock_additional_fields: Sequence[str] | None = None,
    ) -> AuthToken:
        """Mint a token.

        Args:
            uses: Sessions the token may open (default 1 on the service; 0 for no limit).
                Resuming a session does not count.
            expire_time: When messages in its sessions start being refused (a datetime, or a
                time from now; the service's default is 30 minutes, at most 20 hours).
            new_session_expire_time: After this no new session may start (default 60 s).
            model: With *config*: the setup the token is locked to (``models/`` is added).
            config: The locked setup's settings.
            lock_additional_fields: ``None`` (default) locks the whole setup: a session's own
                setup is ignored. ``[]`` locks only the fields *model* and *config* set;
                a list locks those and the named ones (generation-config names such as
                ``"temperature"`` may be given bare).

        The request is bounded by the client's ``connect_timeout`` (to connect) and
        ``setup_timeout`` (for the answer); wrap it in ``trio.fail_after`` for a bound of
        your own.

        Raises:
            AuthTokenError: The service refused (bad key, bad request).
            ConnectError: It could not be reached.
            ConfigurationError: Bad arguments, or a client that cannot mint (Vertex AI, or a
                client that itself holds an ephemeral token).
        """
        client = self._client
        if client.vertexai:
            raise ConfigurationError("ephemeral tokens are minted on the Gemini Developer API")
        if client.ephemeral or client._api_key is None:
            raise ConfigurationError("minting a token needs a client with an API key")
        body: dict[str, Any] = {}
        if uses is not None:
            if isinstance(uses, bool) or not isinstance(uses, int) or uses < 0:
                raise ConfigurationError(f"uses must be an int >= 0, got {uses!r:.40}")
            body["uses"] = uses
        now = datetime.datetime.now(datetime.UTC)
        for key, value in (
            ("expireTime", expire_time),
            ("newSessionExpireTime", new_session_expire_time),
        ):
            if value is not None:
                body[key] = _timestamp(value, now, key)
        if model is not None or config is not None:
            if model is None:
                raise ConfigurationError("a locked config needs its model too: model=...")
            cfg = (
                config
                if isinstance(config, LiveConfig)
                else structure_config(config or {}, LiveConfig, "config")
            )
            setup = _setup_dict(cfg, model)
            body["bidiGenerateContentSetup"] = setup
            if lock_additional_fields is not None:
                body["fieldMask"] = ",".join(_field_mask(setup, lock_additional_fields))
        elif lock_additional_fields:
            body["fieldMask"] = ",".join(_lock_names(lock_additional_fields))
        return await self._post(body)

    async def _post(self, body: dict[str, Any]) -> AuthToken:
        import httpx

        client = self._client
        url = client.rest_base_url.rstrip("/") + "/v1alpha/auth_tokens"
        key = client._api_key
        assert key is not None
        headers = {"x-goog-api-key": key, "content-type": "application/json"}
        verify: Any = client.connection_options.ssl_context or True
        limits = httpx.Timeout(
            client.stream_options.setup_timeout,
            connect=client.connection_options.connect_timeout,
        )
        try:
            async with httpx.AsyncClient(timeout=limits, verify=verify) as http:
                response = await http.post(url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise ConnectError("minting a token timed out") from None
        except httpx.HTTPError as exc:
            raise ConnectError(f"could not reach {url}: {type(exc).__name__}: {exc}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200:
            message = _error_message(data) or response.reason_phrase
            raise AuthTokenError(
                f"the service refused to mint a token: HTTP {response.status_code}: {message}",
                status=response.status_code,
            )
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise AuthTokenError(
                "the service answered without a token name", status=response.status_code
            )
        name = data["name"]
        client._remember_secret(name)
        uses = data.get("uses", body.get("uses"))
        return AuthToken(
            name=name,
            expire_time=_parse_time(data.get("expireTime") or body.get("expireTime")),
            new_session_expire_time=_parse_time(
                data.get("newSessionExpireTime") or body.get("newSessionExpireTime")
            ),
            uses=uses if isinstance(uses, int) and not isinstance(uses, bool) else None,
        )


def _timestamp(
    value: datetime.datetime | datetime.timedelta, now: datetime.datetime, what: str
) -> str:
    if isinstance(value, datetime.timedelta):
        value = now + value
    if not isinstance(value, datetime.datetime):
        raise ConfigurationError(f"{what} must be a datetime or a timedelta, got {value!r:.40}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).isoformat()


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _setup_dict(config: LiveConfig, model: str) -> dict[str, Any]:
    import json

    wire = json.loads(encode(config.to_setup(model)))
    setup: dict[str, Any] = wire["setup"]
    return setup


def _field_mask(setup: Mapping[str, Any], extra: Sequence[str]) -> list[str]:
    """The fields the token locks: those the setup sets (one level into objects, as the
    service's masks go), and the named ones."""
    fields: list[str] = []
    for key, value in setup.items():
        if isinstance(value, dict) and value:
            fields.extend(f"{key}.{inner}" for inner in value)
        else:
            fields.append(key)
    for name in _lock_names(extra):
        if name not in fields:
            fields.append(name)
    return fields


def _lock_names(names: Sequence[str]) -> list[str]:
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise ConfigurationError(
            f"lock_additional_fields must be a list of field names, got {names!r:.60}"
        )
    out = []
    for name in names:
        wire_name = camel(name)
        out.append(
            f"generationConfig.{wire_name}" if wire_name in _GENERATION_FIELDS else wire_name
        )
    return out


def _error_message(data: Any) -> str | None:
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            status = error.get("status")
            return f"{error['message']} ({status})" if isinstance(status, str) else error["message"]
    return None

