"""The fake server's ephemeral tokens: ``POST /v1alpha/auth_tokens`` (h11) and their rules."""

from __future__ import annotations

import json
import time
from typing import Any

import h11
import pytest
import trio

from gemini_ws.testing import FakeLiveServer, open_fake_server
from gemini_ws.testing._auth_tokens import format_timestamp, parse_timestamp
from tests.test_fake_server_helpers import (
    MODEL,
    TIMEOUT,
    connect,
    expect_close,
    read_turn,
    recv,
    say,
    send,
)

BAD_KEY = "API key not valid. Please pass a valid API key."


async def rest(
    server: FakeLiveServer,
    body: Any,
    *,
    method: str = "POST",
    target: str = "/v1alpha/auth_tokens",
    key: str | None = "",
) -> tuple[int, Any]:
    """One raw HTTP/1.1 request to ``server.rest_url`` with h11; returns (status, JSON or text)."""
    if key == "":
        key = server.api_key
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = [("Host", "127.0.0.1"), ("Content-Type", "application/json")]
    headers.append(("Content-Length", str(len(data))))
    if key is not None:
        headers.append(("x-goog-api-key", key))
    conn = h11.Connection(h11.CLIENT)
    stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", server.rest_port)
    if server.tls:
        stream = trio.SSLStream(
            stream, server.client_ssl_context(), server_hostname="127.0.0.1"
        )
    try:
        out = conn.send(h11.Request(method=method, target=target, headers=headers))
        await stream.send_all((out or b"") + (conn.send(h11.Data(data=data)) or b""))
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        status = 0
        payload = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await stream.receive_some(65536)))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                payload += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    finally:
        await trio.aclose_forcefully(stream)
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode()


async def mint(server: FakeLiveServer, **body: Any) -> str:
    status, answer = await rest(server, body)
    assert status == 200, answer
    assert set(answer) == {"name"}
    name = answer["name"]
    assert isinstance(name, str) and name.startswith("auth_tokens/")
    return name


def ahead(seconds: float) -> str:
    return format_timestamp(time.time() + seconds)


def constrained(server: FakeLiveServer) -> str:
    return server.endpoint(api_version="v1alpha", method="BidiGenerateContentConstrained")


def token_args(server: FakeLiveServer, token: str, *, query: bool = False) -> dict[str, Any]:
    if query:
        return {"api_key": None, "url": f"{constrained(server)}?access_token={token}"}
    return {
        "api_key": None,
        "url": constrained(server),
        "headers": [("Authorization", f"Token {token}")],
    }


async def open_session(
    server: FakeLiveServer, token: str, setup: dict[str, Any], *, query: bool = False
) -> tuple[dict[str, Any], str]:
    """Set up with ``token``, play one turn; returns (the first reply message, the handle)."""
    async with connect(server, **token_args(server, token, query=query)) as ws:
        await send(ws, {"setup": setup})
        assert await recv(ws) == {"setupComplete": {}}
        await say(ws, "hello there")
        messages = await read_turn(ws)
        handle = ""
        while not handle and "sessionResumption" in setup:
            update = (await recv(ws)).get("sessionResumptionUpdate", {})
            handle = update.get("newHandle", "") if update.get("resumable") else ""
        await ws.aclose()
    content = next(m for m in messages if "modelTurn" in m.get("serverContent", {}))
    return content, handle


async def refused(server: FakeLiveServer, token: str, setup: dict[str, Any]) -> tuple[int, str]:
    async with connect(server, **token_args(server, token)) as ws:
        await send(ws, {"setup": setup})
        closed = await expect_close(ws)
    assert closed.reason is not None
    return closed.code, closed.reason


def modality(content: dict[str, Any]) -> str:
    parts = content["serverContent"]["modelTurn"]["parts"]
    return "AUDIO" if "inlineData" in parts[0] else "TEXT"


TEXT_SETUP = {"model": MODEL, "generationConfig": {"responseModalities": ["TEXT"]}}
AUDIO_SETUP = {"model": MODEL, "generationConfig": {"responseModalities": ["AUDIO"]}}


async def test_mint_then_uses_one_and_resumption() -> None:
    async with open_fake_server() as server:
        assert server.rest_url == f"http://127.0.0.1:{server.rest_port}"
        with trio.fail_after(TIMEOUT):
            token = await mint(server, uses=1)
            record = server.minted[token]
            assert record.uses == 1 and record.uses_left == 1
            assert 55 < record.new_session_expire_time - time.time() <= 60
            assert 1795 < record.expire_time - time.time() <= 1800
            setup = {**TEXT_SETUP, "sessionResumption": {}}
            _, handle = await open_session(server, token, setup, query=True)
            assert record.uses_left == 0
            assert server.connections[0].auth_method == "ephemeral"
            assert server.connections[0].auth_token == token
            # a second new session: refused like a bad credential
            assert await refused(server, token, setup) == (1007, BAD_KEY)
            # resuming the token's session is not a use
            resume = {**TEXT_SETUP, "sessionResumption": {"handle": handle}}
            await open_session(server, token, resume)
            await open_session(server, token, resume)
        assert record.sessions == [server.connections[0].session.id]  # type: ignore[union-attr]
        assert record.connections == 3
        assert server.connections[2].resumed_from == handle


async def test_uses_zero_is_unlimited_and_static_tokens_still_work() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            token = await mint(server, uses=0)
            for _ in range(3):
                await open_session(server, token, TEXT_SETUP)
            assert server.minted[token].uses_left is None
            for _ in range(2):
                await open_session(server, "auth_tokens/test-ephemeral-token", TEXT_SETUP)
        assert len(server.minted[token].sessions) == 3


async def test_new_session_expire_time() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            token = await mint(server, uses=0, newSessionExpireTime=ahead(0.4))
            setup = {**TEXT_SETUP, "sessionResumption": {}}
            _, handle = await open_session(server, token, setup)
            await trio.sleep(max(server.minted[token].new_session_expire_time - time.time(), 0))
            assert await refused(server, token, setup) == (1007, BAD_KEY)
            # resumption is still allowed until expireTime
            resume = {**TEXT_SETUP, "sessionResumption": {"handle": handle}}
            await open_session(server, token, resume)


async def test_expire_time_refuses_and_closes_open_sessions() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            token = await mint(server, uses=0, expireTime=ahead(0.5))
            setup = {**TEXT_SETUP, "sessionResumption": {}}
            async with connect(server, **token_args(server, token)) as ws:
                await send(ws, {"setup": setup})
                assert await recv(ws) == {"setupComplete": {}}
                closed = await expect_close(ws)
            assert (closed.code, closed.reason) == (1008, "The auth token has expired.")
            assert await refused(server, token, setup) == (1007, BAD_KEY)


async def test_locked_setup_wholesale() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            locked = {
                "model": MODEL,
                "generation_config": {"response_modalities": ["TEXT"]},
                "session_resumption": {},
            }
            token = await mint(server, bidiGenerateContentSetup=locked)
            client = {**AUDIO_SETUP, "systemInstruction": {"parts": [{"text": "be brief"}]}}
            content, _ = await open_session(server, token, client)
        conn = server.connections[0]
        assert modality(content) == "TEXT"
        # the connection's setup is ignored
        assert conn.effective_setup == {
            "model": MODEL,
            "generationConfig": {"responseModalities": ["TEXT"]},
            "sessionResumption": {},
        }
        assert conn.client_setup is not None and "systemInstruction" in conn.client_setup
        assert conn.setup == conn.effective_setup


async def test_locked_setup_with_field_mask() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            locked = {
                "model": MODEL,
                "generationConfig": {"responseModalities": ["TEXT"], "temperature": 0.2},
                "systemInstruction": {"parts": [{"text": "locked, but not in the mask"}]},
            }
            token = await mint(
                server,
                bidiGenerateContentSetup=locked,
                fieldMask="generation_config.response_modalities,sessionResumption",
            )
            client = {
                "model": MODEL,
                "generationConfig": {"responseModalities": ["AUDIO"], "temperature": 0.9},
                "sessionResumption": {},
            }
            async with connect(server, **token_args(server, token)) as ws:
                await send(ws, {"setup": client})
                assert await recv(ws) == {"setupComplete": {}}
                await say(ws, "hi")
                messages = await read_turn(ws)
        content = next(m for m in messages if "modelTurn" in m.get("serverContent", {}))
        assert modality(content) == "TEXT"
        # the masked fields come from the token; a masked field the token lacks is removed
        assert server.connections[0].effective_setup == {
            "model": MODEL,
            "generationConfig": {"responseModalities": ["TEXT"], "temperature": 0.9},
        }
        assert server.minted[token].field_mask == [
            "generationConfig.responseModalities",
            "sessionResumption",
        ]


async def test_token_without_setup_uses_the_connection_setup() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            token = await mint(server)
            content, _ = await open_session(server, token, {**AUDIO_SETUP, "sessionResumption": {}})
        assert modality(content) == "AUDIO"
        assert server.connections[0].effective_setup == server.connections[0].client_setup


async def test_minted_token_needs_the_constrained_method() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            token = await mint(server)
            async with connect(server, api_key=token) as ws:
                await send(ws, {"setup": TEXT_SETUP})
                closed = await expect_close(ws)
        assert (closed.code, closed.reason) == (1007, BAD_KEY)
        assert server.minted[token].uses_left == 1


@pytest.mark.parametrize(
    ("key", "status", "state", "message"),
    [
        ("wrong", 400, "INVALID_ARGUMENT", BAD_KEY),
        (None, 403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers"),
        ("auth_tokens/test-ephemeral-token", 400, "INVALID_ARGUMENT", BAD_KEY),
    ],
)
async def test_bad_key(key: str | None, status: int, state: str, message: str) -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            code, answer = await rest(server, {"uses": 1}, key=key)
        assert code == status
        assert answer["error"]["code"] == status
        assert answer["error"]["status"] == state
        assert answer["error"]["message"].startswith(message)
        assert not server.minted


async def test_key_in_query() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            code, answer = await rest(
                server, {}, key=None, target=f"/v1alpha/auth_tokens?key={server.api_key}"
            )
        assert code == 200 and answer["name"] in server.minted


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        {"unknown": 1},
        {"uses": -1},
        {"uses": "many"},
        {"expireTime": "tomorrow"},
        {"expireTime": "2030-01-01T00:00:00"},  # no offset
        {"newSessionExpireTime": "2999-01-01T00:00:00Z"},  # 20 h or more ahead
        {"bidiGenerateContentSetup": "x"},
        {"fieldMask": 3},
    ],
)
async def test_bad_body(body: Any) -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            code, answer = await rest(server, body)
        assert code == 400
        assert answer["error"]["status"] == "INVALID_ARGUMENT"
        assert not server.minted


@pytest.mark.parametrize(
    ("method", "target"),
    [("GET", "/v1alpha/auth_tokens"), ("POST", "/v1beta/auth_tokens"), ("POST", "/other")],
)
async def test_wrong_method_or_path(method: str, target: str) -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            code, _ = await rest(server, {}, method=method, target=target)
        assert code == 404


async def test_tls_rest_endpoint() -> None:
    pytest.importorskip("trustme")
    async with open_fake_server(tls=True) as server:
        assert server.rest_url.startswith("https://")
        with trio.fail_after(TIMEOUT):
            token = await mint(server)
        assert token in server.minted


async def test_clock_hook() -> None:
    now = [1_000_000.0]
    async with open_fake_server(clock=lambda: now[0]) as server:
        with trio.fail_after(TIMEOUT):
            token = await mint(server, uses=0)
            assert server.minted[token].new_session_expire_time == now[0] + 60
            await open_session(server, token, TEXT_SETUP)
            now[0] += 61
            assert await refused(server, token, TEXT_SETUP) == (1007, BAD_KEY)


def test_timestamps() -> None:
    assert parse_timestamp("2030-01-01T00:00:00Z") == parse_timestamp("2030-01-01T01:00:00+01:00")
    assert parse_timestamp("2030-01-01T00:00:00.123456789Z") == pytest.approx(
        parse_timestamp("2030-01-01T00:00:00Z") + 0.123456
    )
    assert format_timestamp(parse_timestamp("2030-01-01T00:00:00Z")) == "2030-01-01T00:00:00Z"
