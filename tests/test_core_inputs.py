"""Bad input raises ConfigurationError (never a bare TypeError or ValueError), bools are not
ints, and the key redactor belongs to each Client: a key is masked while its client lives, and
a client that failed to build or has closed masks nothing."""

from __future__ import annotations

import gc
import logging
from typing import Any

import attrs
import pytest

import gemini_ws
from gemini_ws import (
    Blob,
    Client,
    ConfigurationError,
    Content,
    GeminiWSError,
    LiveConfig,
    ReconnectPolicy,
)
from gemini_ws._pool import check_pool_options
from gemini_ws._validate import validated

from .conftest import TEST_KEY

LOCAL = "ws://127.0.0.1:1"

def exported_attrs_classes() -> list[Any]:
    out = []
    for name in sorted(dir(gemini_ws)):
        obj = getattr(gemini_ws, name)
        if isinstance(obj, type) and attrs.has(obj):
            out.append(pytest.param(obj, id=name))
    return out


# --- 1. ConfigurationError for bad input -----------------------------------------------------


def test_live_config_unknown_keyword_is_a_configuration_error() -> None:
    unknown = r"LiveConfig\(\) got an unknown argument 'unknown'"
    with pytest.raises(ConfigurationError, match=unknown):
        LiveConfig(unknown=1)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="did you mean 'temperature'"):
        LiveConfig(temprature=0.5)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="unknown"):
        attrs.evolve(LiveConfig(), unknown=1)


@pytest.mark.parametrize("cls", exported_attrs_classes())
def test_every_exported_attrs_class_refuses_an_unknown_keyword(cls: type) -> None:
    with pytest.raises(ConfigurationError) as info:
        cls(no_such_argument=1)
    assert cls.__name__ in str(info.value) and "no_such_argument" in str(info.value)
    assert isinstance(info.value, GeminiWSError)


def test_missing_and_surplus_arguments_and_bad_values() -> None:
    with pytest.raises(ConfigurationError, match=r"Blob\(\) missing .*'mime_type'"):
        Blob()  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match=r"Blob\(\) takes"):
        Blob("audio/pcm", b"", 3)  # type: ignore[call-arg]
    # a converter's refusal names the class and the argument
    with pytest.raises(ConfigurationError, match=r"Content\.parts: expected a list"):
        Content(parts="not a list")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"LiveConfig\.temperature: expected a number"):
        LiveConfig(temperature="hot")  # type: ignore[arg-type]


def test_reconnect_policy_bad_value_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="max_attempts"):
        ReconnectPolicy(max_attempts=0)


def test_validated_turns_attrs_validator_errors_into_configuration_errors() -> None:
    """What ``@validated`` does to ReconnectPolicy's own validators (on a subclass, so the
    real class is left as it is)."""

    @validated
    @attrs.frozen
    class Policy(ReconnectPolicy):
        pass

    with pytest.raises(ConfigurationError, match=r"Policy: 'max_attempts' must be >= 1: 0"):
        Policy(max_attempts=0)
    with pytest.raises(ConfigurationError, match="'jitter'"):
        Policy(jitter=-1)
    with pytest.raises(ConfigurationError, match="unknown argument 'max_attempt'"):
        Policy(max_attempt=3)  # type: ignore[call-arg]
    assert Policy(max_attempts=2).max_attempts == 2
    assert validated(Policy) is Policy  # twice is harmless
    with pytest.raises(ConfigurationError):
        Policy(max_attempts=0)


INT_OPTIONS = ("pool_size", "max_connections", "max_message_size", "receive_buffer_bytes",
               "send_buffer_bytes")
NUMBER_OPTIONS = ("connect_timeout", "setup_timeout", "close_timeout", "heartbeat_timeout",
                  "heartbeat_interval", "idle_timeout", "pool_timeout")


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("option", INT_OPTIONS + NUMBER_OPTIONS)
def test_client_refuses_bools_for_numeric_options(option: str, value: bool) -> None:
    with pytest.raises(ConfigurationError, match=option):
        Client(api_key=TEST_KEY, base_url=LOCAL, **{option: value})


def test_client_refuses_a_non_bool_allow_insecure() -> None:
    with pytest.raises(ConfigurationError, match="allow_insecure"):
        Client(api_key=TEST_KEY, base_url="ws://example.com", allow_insecure="no")  # type: ignore[arg-type]


def test_pool_options_refuse_bools() -> None:
    for args in ((True, None, 1, 1), (0, True, 1, 1), (0, None, True, 1), (0, None, 1, False)):
        with pytest.raises(ConfigurationError):
            check_pool_options(*args)
    check_pool_options(0, 1, 1, 0.5)  # ints and floats are fine


async def test_prewarm_refuses_a_bool() -> None:
    async with Client(api_key=TEST_KEY, base_url=LOCAL) as client:
        with pytest.raises(ConfigurationError, match="prewarm"):
            await client.prewarm(True)
        assert client.pool.statistics().connecting == 0


# --- 2. the redactor belongs to each Client ----------------------------------------------------


def masked(secret: str) -> bool:
    return secret not in str(GeminiWSError(f"text with {secret} in it"))


def test_a_client_that_failed_to_build_masks_nothing() -> None:
    with pytest.raises(ConfigurationError):
        Client(api_key="temperature", base_url="ws://[bad")
    assert not masked("temperature")
    with pytest.raises(ConfigurationError, match="temperature"):
        LiveConfig(temperature="hot")  # type: ignore[arg-type]
    # any bad argument: the key is registered only once every argument is valid
    with pytest.raises(ConfigurationError):
        Client(api_key="plain-key-never-built-1", base_url=LOCAL, pool_size=-1)
    assert not masked("plain-key-never-built-1")


def test_a_url_with_the_key_in_it_is_refused_without_echoing_it() -> None:
    key = "plain-key-in-the-url-42"
    with pytest.raises(ConfigurationError) as info:
        Client(api_key=key, base_url=f"ws://[bad/{key}")
    assert key not in str(info.value)


async def test_a_key_is_masked_while_its_client_lives_and_no_longer() -> None:
    key = "plain-key-lifetime-0001"
    client = Client(api_key=key, base_url=LOCAL)
    assert masked(key), "masked from construction on"
    async with client:
        assert masked(key)
    assert not masked(key), "forgotten when the client closed"


def test_a_client_collected_without_being_entered_forgets_its_key() -> None:
    key = "plain-key-collected-0002"
    client = Client(api_key=key, base_url=LOCAL)
    assert masked(key)
    del client
    gc.collect()
    assert not masked(key)


async def test_two_clients_mask_only_the_keys_that_are_live() -> None:
    a, b = "plain-key-client-a-0003", "plain-key-client-b-0004"
    async with Client(api_key=a, base_url=LOCAL):
        async with Client(api_key=b, base_url=LOCAL):
            assert masked(a) and masked(b)
        assert masked(a) and not masked(b)
    assert not masked(a) and not masked(b)
    # the same key in two clients stays masked until both closed
    async with Client(api_key=a, base_url=LOCAL):
        async with Client(api_key=a, base_url=LOCAL):
            pass
        assert masked(a)
    assert not masked(a)


def test_google_shaped_keys_are_always_masked() -> None:
    assert masked(TEST_KEY) and masked("auth_tokens/abc123def456")


async def test_log_records_never_show_a_live_key(caplog: pytest.LogCaptureFixture) -> None:
    key = "plain-key-logged-0005"
    logger = logging.getLogger("gemini_ws")
    async with Client(api_key=key, base_url=LOCAL):
        with caplog.at_level(logging.DEBUG, logger="gemini_ws"):
            logger.debug("the server said %s", f"bad key {key}")
            logger.debug(f"inline {key}")
    texts = [r.getMessage() for r in caplog.records]
    assert len(texts) == 2 and not any(key in t for t in texts), texts
