"""Ephemeral tokens: minted with ``client.auth_tokens.create`` against the fake server's REST
endpoint, then used to open, resume and be refused sessions, as the service enforces them.
Judged from the fake server's record of the tokens and sessions."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import trio

from gemini_ws import (
    AuthTokenError,
    Client,
    ConfigurationError,
    LiveConfig,
    ServerContent,
    SetupRejectedError,
)
from gemini_ws.testing import open_fake_server

from .test_resumption import wait_for_handle

MODEL = "gemini-3.1-flash-live-preview"


def minter(server: Any) -> Client:
    return Client(api_key=server.api_key, base_url=server.url, rest_base_url=server.rest_url)


async def test_a_minted_token_opens_one_session_and_resumes_it() -> None:
    async with open_fake_server() as server:
        async with minter(server) as client:
            token = await client.auth_tokens.create(
                uses=1,
                new_session_expire_time=datetime.timedelta(minutes=1),
                expire_time=datetime.timedelta(minutes=30),
            )
            assert token.name.startswith("auth_tokens/")
            assert token.name not in repr(token)
        record = server.minted[token.name]
        assert record.uses == 1
        config = LiveConfig(response_modalities=["TEXT"], session_resumption={})
        with trio.fail_after(10):
            async with Client(api_key=token.name, base_url=server.url) as device:
                async with device.stream(MODEL, config=config) as s:
                    await s.send_text("hi")
                    assert any(isinstance(m, ServerContent) for m in await s.receive_turn())
                    await wait_for_handle(s)
                    handle = s.resume_handle
                # resuming is free
                async with device.stream(MODEL, config=config, resume_handle=handle) as s:
                    await s.send_text("again")
                    await s.receive_turn()
                # a second new session is one use too many
                with pytest.raises(SetupRejectedError) as info:
                    async with device.stream(MODEL, config=config):
                        pass  # pragma: no cover
        assert info.value.code == 1007
        assert token.name not in str(info.value)
        conns = [c for c in server.connections if c.auth_method == "ephemeral"]
        assert [c.method for c in conns] == ["BidiGenerateContentConstrained"] * 3


async def test_a_locked_setup_wins_over_the_sessions_own() -> None:
    async with open_fake_server() as server:
        async with minter(server) as client:
            token = await client.auth_tokens.create(
                model=MODEL, config=LiveConfig(response_modalities=["TEXT"])
            )
        assert server.minted[token.name].field_mask in (None, "", [])
        with trio.fail_after(10):
            async with Client(api_key=token.name, base_url=server.url) as device:
                async with device.stream(
                    MODEL, config=LiveConfig(response_modalities=["AUDIO"])
                ) as s:
                    await s.send_text("hello")
                    messages = await s.receive_turn()
        text = "".join(m.text for m in messages if isinstance(m, ServerContent))
        assert text == "You said: hello"  # a TEXT reply: the token's setup, not the session's
        conn = next(c for c in server.connections if c.auth_method == "ephemeral")
        assert conn.effective_setup["generationConfig"]["responseModalities"] == ["TEXT"]


async def test_lock_additional_fields_builds_the_field_mask_as_google_genai_does() -> None:
    async with open_fake_server() as server:
        async with minter(server) as client:
            only_set = await client.auth_tokens.create(
                model=MODEL,
                config=LiveConfig(response_modalities=["AUDIO"], temperature=0.7),
                lock_additional_fields=[],
            )
            plus = await client.auth_tokens.create(
                model=MODEL,
                config=LiveConfig(response_modalities=["AUDIO"]),
                lock_additional_fields=["temperature", "system_instruction"],
            )
    mask = server.minted[only_set.name].field_mask
    masks = mask.split(",") if isinstance(mask, str) else list(mask)
    assert masks == ["model", "generationConfig.responseModalities", "generationConfig.temperature"]
    mask = server.minted[plus.name].field_mask
    masks = mask.split(",") if isinstance(mask, str) else list(mask)
    assert masks == [
        "model",
        "generationConfig.responseModalities",
        "generationConfig.temperature",
        "systemInstruction",
    ]


async def test_a_refusal_is_an_auth_token_error_with_the_status() -> None:
    async with open_fake_server() as server:
        async with Client(
            api_key="AIzaSyWRONG-key-0000000000000000000000",
            base_url=server.url,
            rest_base_url=server.rest_url,
        ) as client:
            with pytest.raises(AuthTokenError) as info:
                await client.auth_tokens.create(uses=1)
    assert info.value.status == 400
    assert "API key not valid" in str(info.value)
    assert "AIzaSyWRONG" not in str(info.value)


async def test_bad_arguments_and_clients_that_cannot_mint() -> None:
    async with open_fake_server() as server:
        async with minter(server) as client:
            with pytest.raises(ConfigurationError, match="uses"):
                await client.auth_tokens.create(uses=-1)
            with pytest.raises(ConfigurationError, match="needs its model"):
                await client.auth_tokens.create(config={"temperature": 0.2})
            with pytest.raises(ConfigurationError, match="datetime or a timedelta"):
                await client.auth_tokens.create(expire_time="soon")  # type: ignore[arg-type]
        async with Client(api_key="auth_tokens/abcdef", base_url=server.url) as device:
            with pytest.raises(ConfigurationError, match="needs a client with an API key"):
                await device.auth_tokens.create()


async def test_an_unreachable_endpoint_is_a_connect_error() -> None:
    from gemini_ws import ConnectError

    async with Client(
        api_key="AIzaSyFAKE-0000000000000000000000000",
        base_url="ws://127.0.0.1:1",
        rest_base_url="http://127.0.0.1:1",
    ) as client:
        with pytest.raises(ConnectError):
            await client.auth_tokens.create()


def test_the_rest_base_follows_the_live_endpoint() -> None:
    key = "AIzaSyFAKE-0000000000000000000000000"
    assert Client(api_key=key).rest_base_url == "https://generativelanguage.googleapis.com"
    assert Client(api_key=key, base_url="ws://127.0.0.1:8765").rest_base_url == (
        "http://127.0.0.1:8765"
    )
