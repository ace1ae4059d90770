"""The fake Live server's Vertex AI path: bearer auth, model names, Vertex field names and
behaviour, and the Vertex-only setup fields in strict mode.

Raw JSON over a plain trio-websocket client (nothing of the client library), plus google-genai's
own Live client in Vertex AI mode, pointed at the fake over TLS (PROTOCOL.md 1.3 recipe (a)).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from gemini_ws.testing import (
    DEFAULT_VERTEX_MODELS,
    FakeLiveServer,
    open_fake_server,
)
from gemini_ws.testing._schema import unknown_field_reason
from tests.test_fake_server_helpers import (
    MODEL as GEMINI_MODEL,
)
from tests.test_fake_server_helpers import (
    TIMEOUT,
    connect,
    expect_close,
    raw_upgrade,
    read_cli_fields,
    read_turn,
    recv,
    say,
    send,
    turn_text,
)

TOKEN = "test-access-token"
PROJECT = "test-project"
LOCATION = "us-central1"
LIVE = "gemini-live-2.5-flash"
VERTEX_IDS = (
    "gemini-live-2.5-flash-preview-native-audio-09-2025",
    "gemini-live-2.5-flash-native-audio",
    "gemini-live-2.5-flash",
    "gemini-2.0-flash-live-preview-04-09",
)
TEXT = {"responseModalities": ["TEXT"]}
INVALID = "Request contains an invalid argument."
BAD_TOKEN = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login"
    " cookie or other valid authentication credential."
)
NO_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token,"
    " login cookie or other valid authentication credential."
)
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
WEATHER_TOOL = {
    "functionDeclarations": [
        {
            "name": "get_weather",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
        }
    ]
}


def vertex_model(model_id: str = LIVE, project: str = PROJECT, location: str = LOCATION) -> str:
    return f"projects/{project}/locations/{location}/publishers/google/models/{model_id}"


def vertex_path(api_version: str = "v1beta1") -> str:
    return f"/ws/google.cloud.aiplatform.{api_version}.LlmBidiService/BidiGenerateContent"


def bearer(token: str = TOKEN) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@asynccontextmanager
async def vertex(
    server: FakeLiveServer,
    *,
    token: str | None = TOKEN,
    api_key: str | None = None,
    api_version: str = "v1beta1",
    headers: list[tuple[str, str]] | None = None,
) -> AsyncIterator[WebSocketConnection]:
    """A raw WebSocket to the fake's Vertex AI path, with ``Authorization: Bearer <token>``
    (or, with ``token=None`` and ``api_key``, express mode's ``x-goog-api-key``)."""
    hdrs = list(headers or [])
    if token is not None:
        hdrs += bearer(token)
    async with connect(
        server,
        url=server.vertex_endpoint(api_version=api_version),
        headers=hdrs,
        api_key=api_key,
    ) as ws:
        yield ws


async def vertex_setup(ws: WebSocketConnection, **fields: Any) -> dict[str, Any]:
    """Send a Vertex setup (TEXT unless told otherwise); returns ``setupComplete``'s body."""
    body = {"model": vertex_model(), "generationConfig": TEXT, **fields}
    await send(ws, {"setup": body})
    reply = await recv(ws)
    assert set(reply) == {"setupComplete"}, reply
    complete: dict[str, Any] = reply["setupComplete"]
    return complete


async def setup_outcome(
    server: FakeLiveServer, setup_body: dict[str, Any], *, gemini: bool = False
) -> dict[str, Any] | tuple[int, str]:
    """``setupComplete``'s body, or ``(code, reason)`` if the server closed instead."""
    with trio.fail_after(TIMEOUT):
        context = connect(server) if gemini else vertex(server)
        async with context as ws:
            await send(ws, {"setup": setup_body})
            try:
                reply: dict[str, Any] | None = await recv(ws)
            except ConnectionClosed:
                reply = None
            if reply is not None and "setupComplete" in reply:
                complete: dict[str, Any] = reply["setupComplete"]
                return complete
            closed = await expect_close(ws)
            return closed.code, closed.reason or ""


# ---------------------------------------------------------------------------------------------
# the path and the credentials


@pytest.mark.parametrize("api_version", ["v1beta1", "v1"])
async def test_vertex_path_with_a_bearer_token(api_version: str) -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            async with vertex(
                server, api_version=api_version, headers=[("x-goog-user-project", "quota-p")]
            ) as ws:
                complete = await vertex_setup(ws)
                await say(ws, "hello")
                assert turn_text(await read_turn(ws)) == "You said: hello"
        (conn,) = server.connections
    assert conn.backend == "vertex"
    assert (conn.api_version, conn.method) == (api_version, "BidiGenerateContent")
    assert conn.auth_method == "bearer" and conn.bearer_token == TOKEN
    assert ("authorization", TOKEN) in conn.credentials
    assert conn.user_project == "quota-p"
    assert (conn.vertex_project, conn.vertex_location) == (PROJECT, LOCATION)
    # setupComplete carries a UUID sessionId: the session's vertex_id
    assert set(complete) == {"sessionId"}
    assert UUID_RE.match(complete["sessionId"])
    assert uuid.UUID(complete["sessionId"]).version == 4
    assert conn.session is not None and conn.session.vertex_id == complete["sessionId"]
    assert conn.session.backend == "vertex"


async def test_the_gemini_path_is_unchanged() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await send(ws, {"setup": {"model": GEMINI_MODEL, "generationConfig": TEXT}})
                assert await recv(ws) == {"setupComplete": {}}
        (conn,) = server.connections
    assert conn.backend == "gemini" and conn.auth_method == "api_key"
    assert conn.vertex_project is None and conn.bearer_token is None


async def test_vertex_path_forms() -> None:
    """A leading ``//`` (what google-genai sends with its default base URL) is fine; a dot
    before the method, the Gemini API's form, or another version is not a Vertex path."""
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            status, _, _ = await raw_upgrade(server, "/" + vertex_path(), bearer())
            assert status == 101
            dotted = "/ws/google.cloud.aiplatform.v1beta1.LlmBidiService.BidiGenerateContent"
            for path in (dotted, vertex_path("v1alpha"), vertex_path("v1beta")):
                status, _, _ = await raw_upgrade(server, path, bearer())
                assert status == 404, path
        assert server.connections[0].backend == "vertex"
        assert [c.backend for c in server.connections[1:]] == [None, None, None]


def _error(body: bytes) -> dict[str, Any]:
    parsed = json.loads(body)
    assert set(parsed) == {"error"}
    error: dict[str, Any] = parsed["error"]
    return error


@pytest.mark.parametrize(
    ("headers", "status", "message", "reason"),
    [
        ([], 401, NO_CREDENTIALS, "CREDENTIALS_MISSING"),
        (bearer("wrong-token"), 401, BAD_TOKEN, "ACCESS_TOKEN_TYPE_UNSUPPORTED"),
        (bearer(""), 401, BAD_TOKEN, "ACCESS_TOKEN_TYPE_UNSUPPORTED"),
        ([("authorization", f"Token {TOKEN}")], 401, BAD_TOKEN, "ACCESS_TOKEN_TYPE_UNSUPPORTED"),
        (
            [("authorization", "Token auth_tokens/test-ephemeral-token")],
            401,
            BAD_TOKEN,
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
        ),
        # a valid token does not excuse an invalid one beside it
        ([*bearer(), ("x-goog-api-key", "wrong-key")], 400, "API key not valid", "API_KEY_INVALID"),
        ([("x-goog-api-key", "wrong-key")], 400, "API key not valid", "API_KEY_INVALID"),
    ],
    ids=["missing", "wrong", "empty", "token-scheme", "ephemeral", "bearer+bad-key", "bad-key"],
)
async def test_vertex_refuses_bad_credentials_at_the_upgrade(
    headers: list[tuple[str, str]], status: int, message: str, reason: str
) -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            got, response_headers, body = await raw_upgrade(server, vertex_path(), headers)
        (conn,) = server.connections
    assert got == status and conn.rejected_status == status
    assert not conn.accepted and conn.auth_method is None
    assert response_headers["content-type"].startswith("application/json")
    error = _error(body)
    assert error["code"] == status
    assert error["status"] == ("UNAUTHENTICATED" if status == 401 else "INVALID_ARGUMENT")
    assert error["message"].startswith(message)
    (info,) = error["details"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["reason"] == reason
    assert info["metadata"]["service"] == "aiplatform.googleapis.com"
    if status == 401:
        assert error["message"].endswith(
            "See https://developers.google.com/identity/sign-in/web/devconsole-project."
        )
        assert response_headers["www-authenticate"].startswith("Bearer")


async def test_tokens_rotate_at_run_time() -> None:
    async with open_fake_server(bearer_tokens=("old-token",)) as server:
        assert server.bearer_tokens == {"old-token"}
        with trio.fail_after(TIMEOUT):
            async with vertex(server, token="old-token") as ws:
                await vertex_setup(ws)
                # rotate while this connection is open: it keeps going (checked at upgrade)
                server.accept_token("new-token")
                server.revoke_token("old-token")
                await say(ws, "still here")
                assert turn_text(await read_turn(ws)) == "You said: still here"
            status, _, body = await raw_upgrade(server, vertex_path(), bearer("old-token"))
            assert status == 401 and _error(body)["message"].startswith(BAD_TOKEN)
            async with vertex(server, token="new-token") as ws:
                await vertex_setup(ws)
            # the set itself may be changed too
            server.bearer_tokens.add("third")
            server.bearer_tokens.discard("new-token")
            async with vertex(server, token="third") as ws:
                await vertex_setup(ws)
            status, _, _ = await raw_upgrade(server, vertex_path(), bearer("new-token"))
            assert status == 401
    assert [c.rejected_status for c in server.connections] == [None, 401, None, None, 401]
    assert [c.bearer_token for c in server.connections if c.accepted] == [
        "old-token",
        "new-token",
        "third",
    ]


async def test_access_token_query_parameter() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            url = server.vertex_endpoint() + f"?access_token={TOKEN}"
            async with connect(server, url=url, api_key=None) as ws:
                await vertex_setup(ws)
    assert server.connections[0].auth_method == "bearer"


@pytest.mark.parametrize(
    "model",
    [f"publishers/google/models/{LIVE}", vertex_model()],
    ids=["short-name", "full-name"],
)
async def test_express_mode_api_key(model: str) -> None:
    """Express mode: ``x-goog-api-key`` and no bearer token; google-genai then sends the
    model as ``publishers/google/models/X`` (no project)."""
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            async with vertex(server, token=None, api_key=server.api_key) as ws:
                complete = await vertex_setup(ws, model=model)
                await say(ws, "express")
                assert turn_text(await read_turn(ws)) == "You said: express"
        (conn,) = server.connections
    assert UUID_RE.match(complete["sessionId"])
    assert conn.auth_method == "api_key" and conn.bearer_token is None
    expected = (None, None) if model.startswith("publishers/") else (PROJECT, LOCATION)
    assert (conn.vertex_project, conn.vertex_location) == expected


# ---------------------------------------------------------------------------------------------
# model names


@pytest.mark.parametrize(
    "model_id", [*VERTEX_IDS, "gemini-2.0-flash-live-001", "gemini-3.1-flash-live-preview"]
)
async def test_vertex_model_ids(model_id: str) -> None:
    assert model_id in DEFAULT_VERTEX_MODELS
    async with open_fake_server() as server:
        outcome = await setup_outcome(
            server,
            {"model": vertex_model(model_id, "p-1", "europe-west4"), "generationConfig": TEXT},
        )
        assert isinstance(outcome, dict) and "sessionId" in outcome
        conn = server.connections[0]
        assert (conn.vertex_project, conn.vertex_location) == ("p-1", "europe-west4")
        assert conn.session is not None
        assert conn.session.model == vertex_model(model_id, "p-1", "europe-west4")


@pytest.mark.parametrize(
    "model",
    [
        f"models/{LIVE}",
        "models/gemini-2.0-flash-live-001",
        LIVE,
        vertex_model("gemini-unknown"),
        f"projects/{PROJECT}/locations/{LOCATION}/publishers/meta/models/{LIVE}",
        f"projects/{PROJECT}/publishers/google/models/{LIVE}",
    ],
    ids=["gemini-form", "gemini-form-gemini-id", "bare", "unknown", "publisher", "no-location"],
)
async def test_other_model_names_close_1008_on_vertex(model: str) -> None:
    async with open_fake_server() as server:
        outcome = await setup_outcome(server, {"model": model, "generationConfig": TEXT})
    assert isinstance(outcome, tuple)
    code, reason = outcome
    assert code == 1008
    assert reason.startswith(f"Publisher Model `{model}` was not found")
    assert len(reason.encode()) <= 123


async def test_vertex_names_are_unknown_on_the_gemini_path() -> None:
    async with open_fake_server() as server:
        outcome = await setup_outcome(server, {"model": vertex_model()}, gemini=True)
    assert isinstance(outcome, tuple) and outcome[0] == 1008
    assert " is not found for API version" in outcome[1]


async def test_vertex_models_option() -> None:
    async with open_fake_server(vertex_models={"my-tuned-live"}) as server:
        accepted = await setup_outcome(server, {"model": vertex_model("my-tuned-live")})
        assert isinstance(accepted, dict) and "sessionId" in accepted
        # ids of ``models`` stay accepted; the Vertex-only defaults are replaced
        assert isinstance(
            await setup_outcome(server, {"model": vertex_model("gemini-2.0-flash-live-001")}),
            dict,
        )
        outcome = await setup_outcome(server, {"model": vertex_model(LIVE)})
        assert isinstance(outcome, tuple) and outcome[0] == 1008


async def test_per_model_rules_go_by_the_id() -> None:
    async with open_fake_server() as server:
        outcome = await setup_outcome(
            server,
            {
                "model": vertex_model("gemini-3.8-live"),
                "generationConfig": {**TEXT, "thinkingConfig": {"thinkingLevel": "LOW"}},
            },
        )
        assert outcome == (1007, "Thinking level is not supported for this model")
        # and 3.8-live replies like a thinking model on Vertex too
        with trio.fail_after(TIMEOUT):
            async with vertex(server) as ws:
                await vertex_setup(ws, model=vertex_model("gemini-3.8-live"))
                await send(ws, {"realtimeInput": {"text": "think"}})
                first = await read_turn(ws)
                second = await read_turn(ws)
        assert {"serverContent": {"interactionStatus": "IN_PROGRESS"}} in first
        assert turn_text(first + second) == "You said: think"
        # 3.1: clientContent is initial history only, whatever the prefix
        with trio.fail_after(TIMEOUT):
            async with vertex(server) as ws:
                await vertex_setup(ws, model=vertex_model("gemini-3.1-flash-live-preview"))
                await say(ws, "not history")
                closed = await expect_close(ws)
        assert (closed.code, closed.reason) == (1007, INVALID)


# ---------------------------------------------------------------------------------------------
# Vertex field names and behaviour


@pytest.mark.parametrize("delay", [0.0, 0.05])
async def test_usage_metadata_names(delay: float) -> None:
    async with open_fake_server(first_chunk_delay=delay, chunk_count=2) as server:
        with trio.fail_after(TIMEOUT):
            async with vertex(server) as ws:
                await vertex_setup(ws)
                await say(ws, "count me")
                vertex_turn = await read_turn(ws)
            async with connect(server) as ws:
                await send(ws, {"setup": {"model": GEMINI_MODEL, "generationConfig": TEXT}})
                await recv(ws)
                await say(ws, "count me")
                gemini_turn = await read_turn(ws)
    v_usage = vertex_turn[-1]["usageMetadata"]
    g_usage = gemini_turn[-1]["usageMetadata"]
    assert v_usage["candidatesTokenCount"] == g_usage["responseTokenCount"] > 0
    assert v_usage["candidatesTokensDetails"] == g_usage["responseTokensDetails"]
    assert "responseTokenCount" not in v_usage and "responseTokensDetails" not in v_usage
    assert "candidatesTokenCount" not in g_usage
    for key in ("promptTokenCount", "totalTokenCount", "promptTokensDetails"):
        assert v_usage[key] == g_usage[key]


@pytest.mark.parametrize("modality", ["TEXT", "AUDIO"])
async def test_model_turn_role_and_audio_mime(modality: str) -> None:
    config = {"responseModalities": [modality]}
    async with open_fake_server(chunk_count=2) as server:
        with trio.fail_after(TIMEOUT):
            async with vertex(server) as ws:
                await vertex_setup(ws, generationConfig=config)
                await say(ws, "hi")
                vertex_turn = await read_turn(ws)
            async with connect(server) as ws:
                await send(ws, {"setup": {"model": GEMINI_MODEL, "generationConfig": config}})
                await recv(ws)
                await say(ws, "hi")
                gemini_turn = await read_turn(ws)

    def model_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            m["serverContent"]["modelTurn"]
            for m in messages
            if "modelTurn" in m.get("serverContent", {})
        ]

    assert model_turns(vertex_turn) and all(
        t["role"] == "model" for t in model_turns(vertex_turn)
    )
    assert all("role" not in t for t in model_turns(gemini_turn))
    if modality == "AUDIO":

        def mimes(messages: list[dict[str, Any]]) -> set[str]:
            return {p["inlineData"]["mimeType"] for t in model_turns(messages) for p in t["parts"]}

        assert (mimes(vertex_turn), mimes(gemini_turn)) == ({"audio/pcm"}, {"audio/pcm;rate=24000"})
    else:
        assert turn_text(vertex_turn) == turn_text(gemini_turn) == "You said: hi"


@pytest.mark.parametrize("delay", [0.0, 0.05])
async def test_function_call_ids_are_uuids(delay: float) -> None:
    async with open_fake_server(first_chunk_delay=delay) as server:
        with trio.fail_after(TIMEOUT):
            async with vertex(server) as ws:
                await vertex_setup(ws, tools=[WEATHER_TOOL])
                await say(ws, 'call get_weather({"city": "Oslo"})')
                message = await recv(ws)
                while "toolCall" not in message:
                    message = await recv(ws)
                (call,) = message["toolCall"]["functionCalls"]
                assert UUID_RE.match(call["id"])
                assert (call["name"], call["args"]) == ("get_weather", {"city": "Oslo"})
                await send(
                    ws,
                    {
                        "toolResponse": {
                            "functionResponses": [
                                {"id": call["id"], "name": "get_weather", "response": {"t": 3}}
                            ]
                        }
                    },
                )
                assert turn_text(await read_turn(ws)) == 'Tool results: get_weather={"t":3}'
            async with connect(server) as ws:
                await send(ws, {"setup": {"model": GEMINI_MODEL, "generationConfig": TEXT,
                                          "tools": [WEATHER_TOOL]}})
                await recv(ws)
                await say(ws, "call get_weather")
                message = await recv(ws)
                while "toolCall" not in message:
                    message = await recv(ws)
        assert re.match(r"^function-call-\d{19}$", message["toolCall"]["functionCalls"][0]["id"])
        assert server.connections[0].unknown_tool_response_ids == []


async def _handle_update(ws: WebSocketConnection) -> dict[str, Any]:
    """The next resumable ``sessionResumptionUpdate``."""
    while True:
        message = await recv(ws)
        update = message.get("sessionResumptionUpdate")
        if update and update.get("resumable"):
            result: dict[str, Any] = update
            return result


@pytest.mark.parametrize("delay", [0.0, 0.1])
async def test_transparent_resumption_on_vertex(delay: float) -> None:
    """Strict mode honours ``transparent`` on Vertex: each handle says which client message it
    covers (setup = 0). With model latency a second turn sent before the first reply
    interrupts it; no handle goes out until the second turn's reply is in."""
    async with open_fake_server(first_chunk_delay=delay, chunk_count=1) as server:
        assert server.strict
        with trio.fail_after(TIMEOUT):
            async with vertex(server) as ws:
                await vertex_setup(ws, sessionResumption={"transparent": True})
                await say(ws, "one")
                update = await _handle_update(ws)
                assert update["lastConsumedClientMessageIndex"] == "1"
                await say(ws, "two")
                if delay:
                    await say(ws, "three")  # while "two" is being generated: interrupts it
                update = await _handle_update(ws)
                assert update["lastConsumedClientMessageIndex"] == ("3" if delay else "2")
                handle = update["newHandle"]
                sent = server.connections[0].sent
                if delay:
                    assert {"serverContent": {"interrupted": True}} in sent
        # resuming keeps the session, and its sessionId
        with trio.fail_after(TIMEOUT):
            await server.connections[0].wait_closed()
            async with vertex(server) as ws:
                complete = await vertex_setup(
                    ws, sessionResumption={"handle": handle, "transparent": True}
                )
                await say(ws, "four")
                update = await _handle_update(ws)
                assert update["lastConsumedClientMessageIndex"] == "1"
        first, resumed = server.connections
        assert resumed.resumed_from == handle and resumed.session is first.session
        assert first.session is not None
        assert complete["sessionId"] == first.session.vertex_id
        assert first.sent[0] == {"setupComplete": {"sessionId": first.session.vertex_id}}


async def test_transparent_is_refused_on_the_gemini_path() -> None:
    async with open_fake_server() as server:
        outcome = await setup_outcome(
            server,
            {"model": GEMINI_MODEL, "sessionResumption": {"transparent": True}},
            gemini=True,
        )
    assert outcome == (
        1007,
        "Invalid JSON payload received. Unknown name \"transparent\" at"
        " 'setup.session_resumption': Cannot find field.",
    )


async def test_a_handle_resumes_only_on_its_own_path() -> None:
    async with open_fake_server(chunk_count=1) as server:
        with trio.fail_after(TIMEOUT):
            async with vertex(server) as ws:
                await vertex_setup(ws, sessionResumption={})
                await say(ws, "one")
                handle = (await _handle_update(ws))["newHandle"]
            outcome = await setup_outcome(
                server,
                {"model": GEMINI_MODEL, "sessionResumption": {"handle": handle}},
                gemini=True,
            )
    assert outcome == (1007, INVALID)


async def test_handles_live_24_hours_on_vertex_and_2_on_gemini() -> None:
    async with open_fake_server(chunk_count=1) as server:
        assert server.handle_ttl is None
        assert (server.handle_ttl_for("gemini"), server.handle_ttl_for("vertex")) == (
            7200.0,
            86400.0,
        )
        handles = {}
        with trio.fail_after(TIMEOUT):
            async with vertex(server) as ws:
                await vertex_setup(ws, sessionResumption={})
                await say(ws, "v")
                handles["vertex"] = (await _handle_update(ws))["newHandle"]
            async with connect(server) as ws:
                await send(ws, {"setup": {"model": GEMINI_MODEL, "generationConfig": TEXT,
                                          "sessionResumption": {}}})
                await recv(ws)
                await say(ws, "g")
                handles["gemini"] = (await _handle_update(ws))["newHandle"]
            for conn in server.connections:
                await conn.wait_closed()
                assert conn.session is not None and conn.session.last_closed_at is not None
                conn.session.last_closed_at -= 3 * 3600  # closed three hours ago
        resumed = await setup_outcome(
            server, {"model": vertex_model(), "sessionResumption": {"handle": handles["vertex"]}}
        )
        assert isinstance(resumed, dict) and "sessionId" in resumed
        expired = await setup_outcome(
            server,
            {"model": GEMINI_MODEL, "sessionResumption": {"handle": handles["gemini"]}},
            gemini=True,
        )
        assert expired == (1007, INVALID)
    async with open_fake_server(handle_ttl=60.0) as server:
        assert server.handle_ttl_for("vertex") == server.handle_ttl_for("gemini") == 60.0


# ---------------------------------------------------------------------------------------------
# strict mode: the Vertex-only setup fields


VERTEX_ONLY = [
    ({"explicitVadSignal": True}, "explicitVadSignal", "setup"),
    ({"explicit_vad_signal": True}, "explicit_vad_signal", "setup"),
    ({"tools": [{"retrieval": {"vertexAiSearch": {"datastore": "d"}}}]}, "retrieval",
     "setup.tools[0]"),
    ({"tools": [{"enterpriseWebSearch": {}}]}, "enterpriseWebSearch", "setup.tools[0]"),
    ({"tools": [{"googleSearch": {"excludeDomains": ["a.com"]}}]}, "excludeDomains",
     "setup.tools[0].google_search"),
    (
        {"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE",
                             "method": "SEVERITY"}]},
        "method",
        "setup.safety_settings[0]",
    ),
    ({"generationConfig": {**TEXT, "audioTimestamp": True}}, "audioTimestamp",
     "setup.generation_config"),
    ({"generationConfig": {**TEXT, "routingConfig": {"autoMode": {}}}}, "routingConfig",
     "setup.generation_config"),
]


@pytest.mark.parametrize(("fields", "name", "path"), VERTEX_ONLY)
async def test_vertex_only_setup_fields(fields: dict[str, Any], name: str, path: str) -> None:
    async with open_fake_server() as server:
        accepted = await setup_outcome(server, {"model": vertex_model(), **fields})
        assert isinstance(accepted, dict) and "sessionId" in accepted
        refused = await setup_outcome(server, {"model": GEMINI_MODEL, **fields}, gemini=True)
    assert refused == (
        1007,
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{path}': Cannot find field.",
    )


GEMINI_ONLY = [
    ({"tools": [{"fileSearch": {"fileSearchStoreNames": ["s"]}}]}, "fileSearch",
     "setup.tools[0]"),
    ({"generationConfig": {**TEXT, "enableEnhancedCivicAnswers": True}},
     "enableEnhancedCivicAnswers", "setup.generation_config"),
    ({"tools": [{"mcpServers": [{"name": "m"}]}]}, "name", "setup.tools[0].mcp_servers[0]"),
]


@pytest.mark.parametrize(("fields", "name", "path"), GEMINI_ONLY)
async def test_gemini_only_setup_fields_are_refused_on_vertex(
    fields: dict[str, Any], name: str, path: str
) -> None:
    async with open_fake_server() as server:
        refused = await setup_outcome(server, {"model": vertex_model(), **fields})
        accepted = await setup_outcome(server, {"model": GEMINI_MODEL, **fields}, gemini=True)
    assert refused == (
        1007,
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{path}': Cannot find field.",
    )
    assert accepted == {}


async def test_fields_the_sdk_converters_disagree_on_are_accepted_on_vertex() -> None:
    """``labels`` and ``audioStreamEnd``: one Vertex converter of google-genai refuses them,
    another sends them; the fake accepts them."""
    pcm = "AAAAAAAAAAA="
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            async with vertex(server) as ws:
                await vertex_setup(ws, labels={"team": "a"})
                await send(ws, {"realtimeInput": {"audio": {"mimeType": "audio/pcm", "data": pcm}}})
                await send(ws, {"realtimeInput": {"audioStreamEnd": True}})
                assert turn_text(await read_turn(ws)).startswith("You said: [audio")
            conn = server.connections[0]
            await conn.wait_closed()
        assert (conn.close_code, conn.closed_by) == (1000, "client")


def test_the_vertex_schema_directly() -> None:
    transparent = {"setup": {"sessionResumption": {"transparent": True}}}
    assert unknown_field_reason(transparent, vertex=True) is None
    assert unknown_field_reason(transparent) is not None
    part = {"clientContent": {"turns": [{"parts": [{"partMetadata": {}}]}]}}
    assert unknown_field_reason(part) is None
    assert unknown_field_reason(part, vertex=True) == (
        "Invalid JSON payload received. Unknown name \"partMetadata\" at"
        " 'client_content.turns[0].parts[0]': Cannot find field."
    )
    call = {"clientContent": {"turns": [{"parts": [{"functionCall": {"willContinue": True}}]}]}}
    assert unknown_field_reason(call, vertex=True) is None
    assert unknown_field_reason(call) is not None


async def test_lenient_vertex() -> None:
    async with open_fake_server(strict=False) as server:
        outcome = await setup_outcome(
            server, {"model": vertex_model(), "madeUpField": 1, "generationConfig": TEXT}
        )
    assert isinstance(outcome, dict) and "sessionId" in outcome


# ---------------------------------------------------------------------------------------------
# google-genai's own Live client in Vertex AI mode


def _credentials(token: str, quota_project: str | None) -> Any:
    credentials_module = pytest.importorskip("google.auth.credentials")

    class StaticCredentials(credentials_module.Credentials):
        """An access token that never expires; refresh() does nothing."""

        def __init__(self) -> None:
            super().__init__()
            self.token = token
            self._quota_project_id = quota_project

        def refresh(self, request: Any) -> None:
            pass

    return StaticCredentials()


async def _sdk_vertex_conversation(
    port: int, ca_pem: bytes, *, token: str = TOKEN, api_key: str | None = None
) -> dict[str, Any]:
    from google import genai
    from google.genai import types

    context = ssl.create_default_context(cadata=ca_pem.decode())
    http_options = types.HttpOptions(
        base_url=f"https://127.0.0.1:{port}", async_client_args={"ssl": context}
    )
    if api_key is not None:
        client = genai.Client(vertexai=True, api_key=api_key, http_options=http_options)
    else:
        client = genai.Client(
            vertexai=True,
            project=PROJECT,
            location=LOCATION,
            credentials=_credentials(token, "quota-project"),
            http_options=http_options,
        )
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.TEXT],
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(**WEATHER_TOOL["functionDeclarations"][0])
                ]
            )
        ],
        session_resumption=types.SessionResumptionConfig(transparent=True),
        explicit_vad_signal=False,
    )
    result: dict[str, Any] = {}
    try:
        async with client.aio.live.connect(model=LIVE, config=config) as session:
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="hello")]),
                turn_complete=True,
            )
            texts: list[str] = []
            roles: set[str | None] = set()
            async for message in session.receive():
                if message.text:
                    texts.append(message.text)
                content = message.server_content
                if content and content.model_turn:
                    roles.add(content.model_turn.role)
                if content and content.turn_complete:
                    result["usage"] = message.usage_metadata
            result["text"] = "".join(texts)
            result["roles"] = roles

            await session.send_client_content(
                turns=types.Content(
                    role="user", parts=[types.Part(text='call get_weather({"city": "Oslo"})')]
                ),
                turn_complete=True,
            )
            texts = []
            updates: list[Any] = []
            async for message in session.receive():
                if message.session_resumption_update is not None:
                    updates.append(message.session_resumption_update)
                if message.tool_call is not None:
                    calls = message.tool_call.function_calls or []
                    result["tool_call"] = [(c.id, c.name, c.args) for c in calls]
                    await session.send_tool_response(
                        function_responses=[
                            types.FunctionResponse(id=c.id, name=c.name, response={"sky": "grey"})
                            for c in calls
                        ]
                    )
                if message.text:
                    texts.append(message.text)
            result["tool_text"] = "".join(texts)
            async for message in session.receive():
                if message.session_resumption_update is not None:
                    updates.append(message.session_resumption_update)
                    break
            result["last_consumed"] = [u.last_consumed_client_message_index for u in updates]
    finally:
        await client.aio.aclose()
        client.close()
    return result


def _run_sdk(port: int, ca_pem: bytes, **options: Any) -> dict[str, Any]:
    async def bounded() -> dict[str, Any]:
        return await asyncio.wait_for(_sdk_vertex_conversation(port, ca_pem, **options), 20)

    return asyncio.run(bounded())


@pytest.mark.parametrize("delay", [0.0, 0.05])
async def test_official_sdk_in_vertex_mode_against_the_fake(delay: float) -> None:
    pytest.importorskip("google.genai")
    async with open_fake_server(tls=True, chunk_count=2, first_chunk_delay=delay) as server:
        assert server.ca_pem is not None
        with trio.fail_after(30):
            result = await trio.to_thread.run_sync(_run_sdk, server.port, server.ca_pem)
        (conn,) = server.connections
    assert result["text"] == "You said: hello"
    assert result["roles"] == {"model"}
    # the SDK reads Vertex's candidatesTokenCount as response_token_count
    assert result["usage"].response_token_count > 0
    ((call_id, name, args),) = result["tool_call"]
    assert UUID_RE.match(call_id) and name == "get_weather" and args == {"city": "Oslo"}
    assert result["tool_text"] == 'Tool results: get_weather={"sky":"grey"}'
    assert [i for i in result["last_consumed"] if i is not None]  # transparent honoured

    # what the SDK put on the wire, as the fake recorded it
    assert conn.path == vertex_path("v1beta1")
    assert conn.backend == "vertex" and conn.auth_method == "bearer"
    assert conn.headers["authorization"] == f"Bearer {TOKEN}"
    assert conn.user_project == "quota-project"
    assert conn.setup is not None and conn.setup["model"] == vertex_model()
    assert (conn.vertex_project, conn.vertex_location) == (PROJECT, LOCATION)
    assert conn.setup["explicitVadSignal"] is False
    assert conn.setup["sessionResumption"] == {"transparent": True}
    assert conn.session is not None
    assert conn.sent[0] == {"setupComplete": {"sessionId": conn.session.vertex_id}}


async def test_official_sdk_vertex_express_mode() -> None:
    pytest.importorskip("google.genai")
    async with open_fake_server(tls=True, chunk_count=1) as server:
        assert server.ca_pem is not None
        with trio.fail_after(30):
            result = await trio.to_thread.run_sync(
                lambda: _run_sdk(server.port, server.ca_pem or b"", api_key=server.api_key)
            )
        (conn,) = server.connections
    assert result["text"] == "You said: hello"
    assert conn.auth_method == "api_key" and "authorization" not in conn.headers
    assert conn.setup is not None and conn.setup["model"] == f"publishers/google/models/{LIVE}"
    assert conn.vertex_project is None


async def test_official_sdk_with_a_revoked_token_gets_401() -> None:
    pytest.importorskip("google.genai")
    async with open_fake_server(tls=True) as server:
        server.revoke_token(TOKEN)
        assert server.ca_pem is not None
        with trio.fail_after(30):
            with pytest.raises(Exception, match="401"):
                await trio.to_thread.run_sync(_run_sdk, server.port, server.ca_pem)
        assert [c.rejected_status for c in server.connections] == [401]


# ---------------------------------------------------------------------------------------------
# python -m gemini_ws.testing


async def test_standalone_cli_prints_the_vertex_endpoint_and_the_rest_url() -> None:
    command = [
        sys.executable, "-m", "gemini_ws.testing", "--port", "0",
        "--bearer-token", "cli-token-1", "--bearer-token", "cli-token-2",
    ]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    try:
        with trio.fail_after(15):
            lines, fields = await read_cli_fields(process)
            tokens = [line.split(": ", 1)[1] for line in lines if line.startswith("bearer_token")]
            assert tokens == ["cli-token-1", "cli-token-2"]
            url = fields["url"]
            assert fields["vertex_endpoint"] == url + vertex_path("v1beta1")
            stand_in = FakeLiveServer()
            stand_in.port = int(url.rsplit(":", 1)[1])
            async with connect(
                stand_in, url=fields["vertex_endpoint"], headers=bearer("cli-token-2"),
                api_key=None,
            ) as ws:
                await vertex_setup(ws)
                await say(ws, "cli")
                assert turn_text(await read_turn(ws)) == "You said: cli"
            status, _, _ = await raw_upgrade(stand_in, vertex_path(), bearer(TOKEN))
            assert status == 401  # the default token is not accepted once tokens are given
            # the REST listener it prints mints ephemeral tokens
            from gemini_ws import Client

            async with Client(
                api_key=fields["api_key"], base_url=url, rest_base_url=fields["rest_url"]
            ) as client:
                token = await client.auth_tokens.create(uses=1)
            assert token.name.startswith("auth_tokens/")
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
