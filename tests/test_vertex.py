"""Vertex AI: URLs, hosts and model names as google-genai builds them (checked against its own
code in the test), the environment variables its users set, and the credential rules."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from gemini_ws import Client, ConfigurationError

from .test_resumption import next_reply, until_consumed_index, wait_for_handle

PATH = "/ws/google.cloud.aiplatform.{v}.LlmBidiService/BidiGenerateContent"


class CountingCredentials:
    """A google-auth-like credentials object that counts its refreshes."""

    def __init__(self, *, quota_project_id: str | None = None, lifetime: float = 3600) -> None:
        self.token: str | None = None
        self.expiry: datetime.datetime | None = None
        self.quota_project_id = quota_project_id
        self.lifetime = lifetime
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        self.token = f"ya29.test-token-{self.refreshes:04d}"
        self.expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + (
            datetime.timedelta(seconds=self.lifetime)
        )


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


def genai_url_and_model(model: str, **kw: Any) -> tuple[str, str]:
    """What google-genai 3.x itself builds for these arguments (its own code, offline)."""
    from google import genai
    from google.auth import credentials as google_credentials
    from google.genai import _transformers

    class Creds(google_credentials.Credentials):  # type: ignore[misc]
        def refresh(self, request: Any) -> None:
            self.token = "x"

    if "api_key" not in kw:
        kw["credentials"] = Creds()
    api = genai.Client(vertexai=True, **kw)._api_client
    base = api._websocket_base_url().rstrip("/")
    version = api._http_options.api_version or "v1beta1"
    url = base + PATH.format(v=version)
    name = _transformers.t_model(api, model)
    if name.startswith("publishers/") and api.project and api.location:
        name = f"projects/{api.project}/locations/{api.location}/{name}"
    return url, name


@pytest.mark.parametrize("location", ["us-central1", "europe-west4", "global", "us", "eu"])
@pytest.mark.parametrize(
    "model",
    ["gemini-live-2.5-flash", "publishers/google/models/gemini-live-2.5-flash", "google/x-1"],
)
def test_urls_and_model_names_are_google_genais(location: str, model: str) -> None:
    client = Client(
        vertexai=True, project="my-proj", location=location, credentials=CountingCredentials()
    )
    url, name = genai_url_and_model(model, project="my-proj", location=location)
    assert client.endpoint.url == url
    assert client.build_setup(model).model == name


def test_express_mode_is_google_genais() -> None:
    client = Client(vertexai=True, api_key="AIzaSyFAKE-express-key-000000000000000")
    url, name = genai_url_and_model(
        "gemini-live-2.5-flash", api_key="AIzaSyFAKE-express-key-000000000000000"
    )
    assert client.endpoint.url == url == "wss://aiplatform.googleapis.com" + PATH.format(
        v="v1beta1"
    )
    assert client.build_setup("gemini-live-2.5-flash").model == name
    assert "api_key=***" in repr(client)


def test_the_environment_variables_google_genai_users_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-proj")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "us-east5")
    client = Client(credentials=CountingCredentials())
    assert client.vertexai and (client.project, client.location) == ("env-proj", "us-east5")
    assert client.endpoint.url.startswith("wss://us-east5-aiplatform.googleapis.com/")
    assert client.build_setup("gemini-live-2.5-flash").model == (
        "projects/env-proj/locations/us-east5/publishers/google/models/gemini-live-2.5-flash"
    )


def test_location_defaults_to_global_and_v1_can_be_chosen() -> None:
    client = Client(
        vertexai=True, project="p", credentials=CountingCredentials(), api_version="v1"
    )
    assert client.location == "global"
    assert client.endpoint.url == "wss://aiplatform.googleapis.com" + PATH.format(v="v1")


def test_an_unset_modality_is_audio_as_google_genai_sends_it() -> None:
    client = Client(vertexai=True, project="p", credentials=CountingCredentials())
    setup = client.build_setup("gemini-live-2.5-flash")
    assert setup.generation_config is not None
    assert [m.value for m in setup.generation_config.response_modalities] == ["AUDIO"]
    text = client.build_setup("gemini-live-2.5-flash", {"response_modalities": ["TEXT"]})
    assert text.generation_config is not None
    assert [m.value for m in text.generation_config.response_modalities] == ["TEXT"]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"project": "p", "credentials": object()}, "google-auth Credentials"),
        ({"api_key": "AIzaSyFAKE-0000000000000000000000000", "project": "p"}, "exclude each"),
        (
            {"api_key": "AIzaSyFAKE-0000000000000000000000000", "credentials": 1},
            "not both",
        ),
        ({"project": "", "credentials": CountingCredentials()}, "project must be"),
        ({"project": "p", "credentials": CountingCredentials(), "api_version": "v1beta"}, "v1"),
        ({"api_key": "auth_tokens/abc123"}, "not Vertex AI"),
    ],
)
def test_bad_vertex_arguments_are_configuration_errors(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        Client(vertexai=True, **kwargs)


def test_vertex_arguments_without_vertexai_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="pass vertexai=True"):
        Client(api_key="AIzaSyFAKE-0000000000000000000000000", project="p")


def test_without_credentials_or_google_auth_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_google_auth(name: str, *args: Any, **kw: Any) -> Any:
        if name == "google.auth" or name.startswith("google.auth."):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_google_auth)
    with pytest.raises(ConfigurationError, match=r"gemini-ws\[vertex\]"):
        Client(vertexai=True, project="p")


# --- against the fake server's Vertex path ------------------------------------------------------


class ServerMintedCredentials(CountingCredentials):
    """Short-lived tokens (inside the refresh margin: every new connection refreshes), each
    accepted by the fake server as it is minted."""

    def __init__(self, server: Any, **kw: Any) -> None:
        super().__init__(lifetime=60, **kw)
        self.server = server

    def refresh(self, request: Any) -> None:
        super().refresh(request)
        self.server.accept_token(self.token)


def vertex_client(server: Any, credentials: Any, **kw: Any) -> Client:
    return Client(
        vertexai=True,
        project="test-project",
        location="us-central1",
        credentials=credentials,
        base_url=server.url,
        **kw,
    )


def conns_sent(server: Any) -> list[dict[str, Any]]:
    return [m for c in server.connections for m in c.sent]


def vertex_conns(server: Any) -> list[Any]:
    return [c for c in server.connections if c.setup is not None]


async def test_text_audio_and_tool_turns_on_vertex_with_a_fresh_token_per_connection() -> None:
    import trio

    from gemini_ws import LiveConfig, ServerContent, ToolCall
    from gemini_ws.testing import open_fake_server

    async with open_fake_server(bearer_tokens=()) as server:
        creds = ServerMintedCredentials(server, quota_project_id="billing-proj")
        async with vertex_client(server, creds) as client:
            config = LiveConfig(
                response_modalities=["TEXT"],
                tools=[{"function_declarations": [{"name": "get_time"}]}],
            )
            with trio.fail_after(15):
                async with client.stream("gemini-live-2.5-flash", config=config) as s:
                    await s.send_text("hello vertex")
                    first = await s.receive_turn()
                    text = "".join(m.text for m in first if isinstance(m, ServerContent))
                    usage = next(
                        m.usage_metadata
                        for m in first
                        if isinstance(m, ServerContent) and m.usage_metadata is not None
                    )
                    s.run_tools({"get_time": lambda: {"time": "12:00"}})
                    await s.send_text("call get_time")
                    tool_turn = await s.receive_turn()
                async with client.stream("gemini-live-2.5-flash") as s:  # AUDIO by default
                    await s.send_audio(b"\x01\x02" * 1600)
                    await s.send_audio_stream_end()
                    audio = b"".join(
                        m.audio for m in await s.receive_turn() if isinstance(m, ServerContent)
                    )
        conns = vertex_conns(server)
    assert text == "You said: hello vertex"
    # Vertex's candidatesTokenCount reads into the same typed field as the Gemini API's name
    sent_usage = next(
        m["usageMetadata"] for m in conns_sent(server) if "usageMetadata" in m
    )
    assert "candidatesTokenCount" in sent_usage
    assert usage.response_token_count == int(sent_usage["candidatesTokenCount"])
    call = next(m for m in tool_turn if isinstance(m, ToolCall)).function_calls[0]
    assert len(call.id or "") == 36  # Vertex call ids are UUIDs
    assert len(audio) > 0
    # judged from the server: the Vertex path, a Bearer token per connection, each fresh
    assert [c.backend for c in conns] == ["vertex", "vertex"]
    assert [c.auth_method for c in conns] == ["bearer", "bearer"]
    tokens = [c.bearer_token for c in conns]
    assert len(set(tokens)) == 2 and creds.refreshes == 2
    assert all(c.user_project == "billing-proj" for c in conns)
    assert conns[0].setup["model"] == (
        "projects/test-project/locations/us-central1/publishers/google/models/"
        "gemini-live-2.5-flash"
    )
    assert conns[1].setup["generationConfig"]["responseModalities"] == ["AUDIO"]


async def test_a_go_away_handover_and_a_drop_redial_each_get_a_fresh_token() -> None:
    import trio

    from gemini_ws import LiveConfig, SessionResumed
    from gemini_ws.testing import open_fake_server

    events: list[SessionResumed] = []
    async with open_fake_server(bearer_tokens=()) as server:
        creds = ServerMintedCredentials(server)
        async with vertex_client(server, creds) as client:
            config = LiveConfig(response_modalities=["TEXT"], session_resumption={})
            with trio.fail_after(20):
                async with client.stream(
                    "gemini-live-2.5-flash", config=config, reconnect=True
                ) as s:

                    async def turn(text: str) -> str:
                        before = s.resume_handle
                        await s.send_text(text)
                        out = await next_reply(s, events)
                        while s.resume_handle in (None, before):  # the handle after it
                            m = await s.receive()
                            if isinstance(m, SessionResumed):
                                events.append(m)
                        return out

                    assert await turn("one") == "You said: one"
                    vertex_conns(server)[-1].go_away(1.0)
                    assert await turn("two") == "You said: two"
                    while not events:  # the handover happens at the quiet moment after it
                        m = await s.receive()
                        if isinstance(m, SessionResumed):
                            events.append(m)
                    vertex_conns(server)[-1].abort()
                    assert await turn("three") == "You said: three"
        conns = vertex_conns(server)
    assert [e.reason for e in events] == ["go_away", "connection_lost"]
    tokens = [c.bearer_token for c in conns]
    assert len(conns) == 3 and len(set(tokens)) == 3
    assert creds.refreshes == 3


async def test_a_wrong_token_is_refused_like_the_service_and_never_shown() -> None:
    import trio

    from gemini_ws import HandshakeRejectedError
    from gemini_ws.testing import open_fake_server

    creds = CountingCredentials()  # tokens the server never accepted
    async with open_fake_server() as server:
        async with vertex_client(server, creds) as client:
            with trio.fail_after(10), pytest.raises(HandshakeRejectedError) as info:
                async with client.stream("gemini-live-2.5-flash"):
                    pass  # pragma: no cover
            assert creds.token is not None
            text = f"{info.value} {info.value!r} {client!r}"
    assert "401" in text
    assert creds.token not in text


async def test_tokens_never_reach_a_log_record(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import trio

    from gemini_ws import LiveConfig, ServerContent
    from gemini_ws.testing import open_fake_server

    caplog.set_level(logging.DEBUG)
    async with open_fake_server(bearer_tokens=()) as server:
        creds = ServerMintedCredentials(server)
        async with vertex_client(server, creds) as client:
            with trio.fail_after(10):
                async with client.stream(
                    "gemini-live-2.5-flash", config=LiveConfig(response_modalities=["TEXT"])
                ) as s:
                    logging.getLogger("gemini_ws").warning("token %s", creds.token)
                    await s.send_text("hi")
                    assert any(isinstance(m, ServerContent) for m in await s.receive_turn())
    assert creds.token is not None
    assert creds.token not in caplog.text


async def test_transparent_resumption_on_vertex_replays_only_what_was_not_consumed() -> None:
    import trio

    from gemini_ws import LiveConfig, ReconnectPolicy, SessionResumed
    from gemini_ws.testing import Fault, open_fake_server

    config = LiveConfig(response_modalities=["TEXT"], session_resumption={"transparent": True})
    events: list[SessionResumed] = []
    policy = ReconnectPolicy(initial_backoff=0.01, max_backoff=0.05)
    async with open_fake_server(bearer_tokens=(), chunk_count=2) as server:  # strict: Vertex
        # client messages: setup 1, "first" 2, "partial" 3, "second" 4 -> drop on "second"
        server.inject(Fault.abort(on_client_message=4))
        creds = ServerMintedCredentials(server)
        async with vertex_client(server, creds) as client:
            with trio.fail_after(15):
                async with client.stream(
                    "gemini-live-2.5-flash", config=config, reconnect=policy
                ) as s:
                    await s.send_text("first")
                    assert await next_reply(s, events) == "You said: first"
                    await wait_for_handle(s)
                    first = vertex_conns(server)[-1]
                    await s.send_content("partial", turn_complete=False)
                    await first.wait_received(3)
                    # the server's state now includes "partial" (client message index 2)
                    await first.send({"sessionResumptionUpdate": {
                        "newHandle": s.resume_handle, "resumable": True,
                        "lastConsumedClientMessageIndex": "2"}})
                    await until_consumed_index(s, 2)
                    await s.send_text("second")
                    await next_reply(s, events)
        second = vertex_conns(server)[-1]
    (event,) = events
    assert second.backend == "vertex" and second.setup["sessionResumption"]["transparent"]
    assert second.received_texts == ["second"], "partial was consumed: not sent twice"
    assert event.replayed == 1
