"""Credentials for each new connection: an API key (fixed) or OAuth access tokens (Vertex AI).

A :class:`BearerAuth` wraps a google-auth ``Credentials`` object (anything with ``token``,
``expiry``, ``refresh(request)`` and optionally ``quota_project_id``): before every new
connection (the first, a warm spare, a handover, a re-dial) it refreshes the token when it is
missing or expires within :data:`REFRESH_MARGIN`, in a worker thread (google-auth refreshes
with blocking HTTP), one refresh at a time. Every token it sees is registered with the
redactor, so no token appears in an error, repr or log record.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

import trio

from ._errors import ConfigurationError, ConnectError, register_secret

__all__ = ["REFRESH_MARGIN", "ApiKeyAuth", "Auth", "BearerAuth", "default_credentials"]

logger = logging.getLogger("gemini_ws")

#: A token that expires sooner than this is refreshed before a connection is opened with it.
REFRESH_MARGIN = datetime.timedelta(minutes=5)

#: The OAuth scope Vertex AI needs.
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class Auth:
    """What a connection sends to prove who it is."""

    async def headers(self) -> list[tuple[str, str]]:
        """The credential headers for a new connection."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short, secret-free description for reprs."""
        raise NotImplementedError


class ApiKeyAuth(Auth):
    """An API key (or an ephemeral ``auth_tokens/`` token), the same for every connection."""

    def __init__(self, header: str, value: str) -> None:
        self._header = [(header, value)]
        self._name = header

    async def headers(self) -> list[tuple[str, str]]:
        return list(self._header)

    def describe(self) -> str:
        return "api_key=***"


class BearerAuth(Auth):
    """OAuth access tokens from a google-auth ``Credentials`` object, refreshed when due."""

    def __init__(
        self,
        credentials: Any,
        *,
        request_factory: Callable[[], Any] | None = None,
        margin: datetime.timedelta = REFRESH_MARGIN,
    ) -> None:
        if not callable(getattr(credentials, "refresh", None)):
            raise ConfigurationError(
                "credentials must be a google-auth Credentials object (with refresh() and "
                f"token), got {type(credentials).__name__}"
            )
        self.credentials = credentials
        self._request_factory = request_factory or _google_auth_request
        self._margin = margin
        self._lock = trio.Lock()
        self._seen: dict[str, Callable[[], None]] = {}
        #: How many times the token was refreshed (a test counts them).
        self.refreshes = 0

    def describe(self) -> str:
        return f"credentials={type(self.credentials).__name__}"

    def _due(self) -> bool:
        token = getattr(self.credentials, "token", None)
        if not token:
            return True
        expiry = getattr(self.credentials, "expiry", None)
        if expiry is None:
            return False  # a token that does not say when it expires is used as it is
        if expiry.tzinfo is None:  # google-auth keeps naive UTC datetimes
            expiry = expiry.replace(tzinfo=datetime.UTC)
        return bool(expiry - self._margin <= datetime.datetime.now(datetime.UTC))

    async def token(self) -> str:
        """A token valid for at least the refresh margin (refreshed first when needed)."""
        async with self._lock:
            if self._due():
                try:
                    await trio.to_thread.run_sync(self._refresh)
                except ConfigurationError:
                    raise
                except Exception as exc:
                    raise ConnectError(
                        f"could not refresh the Google Cloud access token: "
                        f"{type(exc).__name__}: {exc}"
                    ) from None
                self.refreshes += 1
            token = getattr(self.credentials, "token", None)
        if not isinstance(token, str) or not token:
            raise ConnectError("the Google Cloud credentials gave no access token")
        if token not in self._seen:
            self._seen[token] = register_secret(token)
        return token

    def _refresh(self) -> None:
        self.credentials.refresh(self._request_factory())

    async def headers(self) -> list[tuple[str, str]]:
        token = await self.token()
        headers = [("authorization", f"Bearer {token}")]
        quota = getattr(self.credentials, "quota_project_id", None)
        if isinstance(quota, str) and quota:
            headers.append(("x-goog-user-project", quota))
        return headers

    def forget(self) -> None:
        """Stop masking the tokens this object registered (the client is closed)."""
        for forget in self._seen.values():
            forget()
        self._seen.clear()


def _google_auth_request() -> Any:
    try:
        from google.auth.transport.requests import Request
    except ImportError:
        return None  # a credentials object of one's own may not need one
    return Request()


def default_credentials() -> tuple[Any, str | None]:
    """Application default credentials and their project, from google-auth."""
    try:
        import google.auth
    except ImportError:
        raise ConfigurationError(
            "Vertex AI without an API key needs Google Cloud credentials: install the extra "
            "with `pip install 'gemini-ws[vertex]'` (google-auth), or pass credentials=..."
        ) from None
    try:
        credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except Exception as exc:
        raise ConfigurationError(
            f"no Google Cloud application default credentials: {exc} (run `gcloud auth "
            f"application-default login`, or pass credentials=...)"
        ) from None
    return credentials, project
