"""The model table: send_text's wire form per model, and setups a model refuses, checked
locally before anything is sent (judged from what the fake server consumed)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from gemini_ws import Client, ConfigurationError, LiveConfig, ServerContent
from gemini_ws._models import DEFAULT_TRAITS, traits_of

TEXT = LiveConfig(response_modalities=["TEXT"])


@pytest.mark.parametrize(
    ("model", "text_input", "non_blocking", "levels"),
    [
        ("gemini-3.1-flash-live-preview", "realtime_input", False, None),
        ("models/gemini-3.1-flash-live-preview", "realtime_input", False, None),
        ("gemini-3.8-live", "realtime_input", True, frozenset()),
        (
            "projects/p/locations/l/publishers/google/models/gemini-3.8-live-extended-thinking",
            "realtime_input",
            True,
            frozenset({"LOW", "MEDIUM", "HIGH"}),
        ),
        ("gemini-2.5-flash-native-audio-preview-12-2025", "client_content", False, None),
        ("a-model-nobody-knows", "client_content", False, None),
    ],
)
def test_traits_by_longest_prefix(
    model: str, text_input: str, non_blocking: bool, levels: frozenset[str] | None
) -> None:
    traits = traits_of(model)
    assert (traits.text_input, traits.non_blocking_tools, traits.thinking_levels) == (
        text_input,
        non_blocking,
        levels,
    )
    assert traits_of("a-model-nobody-knows") is DEFAULT_TRAITS


async def reply(s: Any) -> str:
    return "".join([m.text async for m in s.turn() if isinstance(m, ServerContent)])


@pytest.mark.parametrize(
    ("model", "form"),
    [
        ("gemini-3.1-flash-live-preview", "realtimeInput"),
        ("gemini-3.8-live", "realtimeInput"),
        ("gemini-2.5-flash-native-audio-preview-12-2025", "clientContent"),
    ],
)
async def test_send_text_uses_the_form_the_model_takes(
    client: Client, fake_server: Any, model: str, form: str
) -> None:
    with trio.fail_after(10):
        async with client.stream(model, config=TEXT) as s:
            await s.send_text("hello")
            assert await reply(s) == "You said: hello"
    (message,) = fake_server.connections[0].received[1:]
    assert list(message) == [form]
    if form == "realtimeInput":
        assert message == {"realtimeInput": {"text": "hello"}}
    else:
        assert message["clientContent"]["turnComplete"] is True


async def test_an_unfinished_text_turn_is_refused_where_text_is_realtime_input(
    client: Client, fake_server: Any
) -> None:
    with trio.fail_after(10):
        async with client.stream("gemini-3.1-flash-live-preview", config=TEXT) as s:
            with pytest.raises(ConfigurationError, match="turn_complete=False"):
                await s.send_text("part one", turn_complete=False)
            await s.send_text("whole")
            assert await reply(s) == "You said: whole"
    assert fake_server.connections[0].received_texts == ["whole"]


@pytest.mark.parametrize(
    ("model", "thinking", "needle"),
    [
        ("gemini-3.8-live", {"thinking_level": "LOW"}, "does not take thinking_config"),
        ("gemini-3.8-live", {"thinking_budget": 0}, "does not take thinking_config"),
        (
            "gemini-3.8-live-extended-thinking",
            {"thinking_level": "MINIMAL"},
            "takes thinking_level HIGH, LOW, MEDIUM, not 'MINIMAL'",
        ),
    ],
)
async def test_thinking_settings_a_model_refuses_fail_before_connecting(
    client: Client, fake_server: Any, model: str, thinking: dict[str, Any], needle: str
) -> None:
    config = LiveConfig(response_modalities=["AUDIO"], thinking_config=thinking)
    with pytest.raises(ConfigurationError, match=needle):
        async with client.stream(model, config=config):
            pass  # pragma: no cover
    assert [c for c in fake_server.connections if c.setup is not None] == []


async def test_thinking_settings_a_model_takes_go_through(
    client: Client, fake_server: Any
) -> None:
    config = LiveConfig(response_modalities=["TEXT"], thinking_config={"thinking_level": "HIGH"})
    with trio.fail_after(10):
        async with client.stream("gemini-3.8-live-extended-thinking", config=config) as s:
            await s.send_text("hi")
            assert await reply(s) == "You said: hi"
    setup = fake_server.connections[0].setup
    assert setup["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "HIGH"}


async def test_reconfigure_checks_the_model_too(client: Client, fake_server: Any) -> None:
    with trio.fail_after(10):
        async with client.stream("gemini-3.8-live", config=TEXT, reconnect=True) as s:
            with pytest.raises(ConfigurationError, match="does not take thinking_config"):
                await s.reconfigure({"thinkingConfig": {"thinkingLevel": "LOW"}})
            await s.send_text("still here")
            assert await reply(s) == "You said: still here"


async def test_a_config_dict_takes_camel_case_top_level_keys(
    client: Client, fake_server: Any
) -> None:
    config = {"responseModalities": ["TEXT"], "systemInstruction": "Be brief."}
    with trio.fail_after(10):
        async with client.stream("gemini-3.1-flash-live-preview", config=config) as s:
            await s.send_text("hi")
            assert await reply(s) == "You said: hi"
    setup = fake_server.connections[0].setup
    assert setup["generationConfig"]["responseModalities"] == ["TEXT"]
    assert setup["systemInstruction"]["parts"][0]["text"] == "Be brief."


async def test_a_turn_without_a_role_is_refused_where_the_service_closes_1007(
    client: Client, fake_server: Any
) -> None:
    from gemini_ws import ClientContent, Content, Part

    turn = ClientContent(turns=(Content(parts=(Part(text="who?"),)),), turn_complete=True)
    with trio.fail_after(10):
        async with client.stream("gemini-3.1-flash-live-preview", config=TEXT) as s:
            with pytest.raises(ConfigurationError, match="without a role"):
                await s.send(turn)
        async with client.stream("gemini-2.5-flash-native-audio-preview-12-2025", config=TEXT) as s:
            await s.send(turn)  # older models default the role to user
            assert await reply(s) == "You said: who?"
