"""Property tests on the public API with arbitrary (mostly invalid) arguments.

Every public send method of :class:`LiveStream`, ``pause``/``resume`` directions, the
:class:`Client` constructor and :class:`LiveConfig`: each call either works or raises
:class:`ConfigurationError` (a :class:`GeminiWSError`), never another exception, never hangs, and
the stream stays usable after bad input.

The stream tests run hypothesis in a worker thread (``trio.to_thread.run_sync``) and each example
calls back into the trio loop with ``trio.from_thread.run``, so that one fake server, one client
and one stream serve every example of a run.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import hypothesis.strategies as st
import pytest
import trio
from hypothesis import HealthCheck, given, settings

import gemini_ws
from gemini_ws import (
    Client,
    ConfigurationError,
    Content,
    FunctionCall,
    FunctionResponse,
    LiveConfig,
    Part,
    RealtimeInput,
    ServerContent,
    ToolCall,
)

from .conftest import TEST_KEY

MODEL = "gemini-3.1-flash-live-preview"
#: For the calls that send clientContent mid-session, which 3.1 takes as initial history only.
MODEL_25 = "gemini-2.5-flash-native-audio-preview-12-2025"
TEXT = LiveConfig(response_modalities=["TEXT"])
CALL_BOUND = 2.0
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.text(max_size=3)),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.just(object()),
    st.just(math.inf),
    st.just(-1),
    st.just(0),
)
texts = st.text(max_size=40)
pcm = st.binary(max_size=64)
content = st.builds(
    Content, parts=st.tuples(st.builds(Part, text=texts)), role=st.sampled_from(["user", "model"])
)
def _function_response(**fields: Any) -> Any:
    """A FunctionResponse, or (when its own constructor refuses the junk, as it should, with a
    ConfigurationError) the raw fields, which send_tool_response must refuse in turn."""
    try:
        return FunctionResponse(**fields)
    except gemini_ws.ConfigurationError:
        return fields


function_response = st.builds(
    _function_response,
    id=st.one_of(st.text(max_size=8), junk),
    name=st.one_of(st.text(min_size=1, max_size=8), junk),
    response=st.one_of(st.dictionaries(st.text(max_size=5), st.integers(), max_size=2), junk),
)
tool_call = st.builds(
    ToolCall,
    function_calls=st.tuples(
        st.builds(
            FunctionCall, id=st.text(min_size=1, max_size=8), name=st.just("f"), args=st.just({})
        )
    ),
)
directions = st.one_of(st.sampled_from(["both", "receive", "send"]), junk)

#: (method name, strategy of (args, kwargs))
CALLS: dict[str, st.SearchStrategy[tuple[tuple[Any, ...], dict[str, Any]]]] = {
    "send_text": st.tuples(
        st.tuples(st.one_of(texts, junk)),
        st.fixed_dictionaries({}, optional={"turn_complete": st.one_of(st.booleans(), junk)}),
    ),
    "send_realtime_text": st.tuples(st.tuples(st.one_of(texts, junk)), st.just({})),
    "send_content": st.tuples(
        st.tuples(
            st.one_of(
                texts,
                content,
                st.lists(st.one_of(texts, content), max_size=3),
                st.lists(junk, min_size=1, max_size=2),
                junk,
            )
        ),
        st.fixed_dictionaries({}, optional={"turn_complete": st.one_of(st.booleans(), junk)}),
    ),
    "send_audio": st.tuples(
        st.tuples(st.one_of(pcm, junk)),
        st.fixed_dictionaries(
            {}, optional={"sample_rate": st.one_of(st.sampled_from([16000, 24000]), junk)}
        ),
    ),
    "send_video": st.tuples(
        st.tuples(st.one_of(pcm, junk)),
        st.fixed_dictionaries(
            {},
            optional={
                "mime_type": st.one_of(
                    st.sampled_from(["image/jpeg", "image/png", "video/mp4"]), junk
                )
            },
        ),
    ),
    "send_tool_response": st.tuples(
        st.one_of(
            st.tuples(st.one_of(function_response, st.lists(function_response, max_size=2), junk)),
            st.tuples(
                tool_call,
                st.one_of(st.dictionaries(st.sampled_from(["f", "g"]), st.integers()), junk),
            ),
        ),
        st.just({}),
    ),
    "send": st.tuples(
        st.tuples(
            st.one_of(
                junk,
                st.builds(gemini_ws.text_turn, texts),
                st.builds(RealtimeInput, text=texts),
                st.builds(gemini_ws.ClientContent, turns=st.tuples(content)),
                st.just(gemini_ws.Setup(model="models/x")),
            )
        ),
        st.just({}),
    ),
    "pause": st.tuples(st.one_of(st.just(()), st.tuples(directions)), st.just({})),
    "resume": st.tuples(st.one_of(st.just(()), st.tuples(directions)), st.just({})),
}


async def call_once(
    s: gemini_ws.LiveStream, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """One call: it works or raises ConfigurationError, within a bound; the stream stays open."""
    method: Callable[..., Awaitable[Any]] = getattr(s, name)
    with trio.fail_after(CALL_BOUND):
        try:
            await method(*args, **kwargs)
        except ConfigurationError:
            pass
        except BaseException as exc:
            raise AssertionError(
                f"s.{name}(*{args!r:.200}, **{kwargs!r:.200}) raised {exc!r:.300}; expected "
                "success or ConfigurationError"
            ) from exc
        # keep the stream flowing for the next example
        await s.resume()
    assert s.state == "open", f"the stream broke after s.{name}(*{args!r:.200}): {s.state}"


async def check_still_usable(s: gemini_ws.LiveStream, marker: str) -> None:
    await s.resume()
    await s.send_text(marker)
    turn_text = ""
    with trio.fail_after(10):
        while True:
            msg = await s.receive()
            if isinstance(msg, ServerContent):
                turn_text += msg.text
                if msg.turn_complete:
                    if marker in turn_text:
                        return
                    turn_text = ""


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_send_methods_give_configuration_error_or_work(
    client: Client, fake_server: Any, name: str
) -> None:
    model = MODEL_25 if name in ("send", "send_content") else MODEL
    async with client.stream(model, config=TEXT) as s:

        @FUZZ
        @given(call=CALLS[name])
        def check(call: tuple[tuple[Any, ...], dict[str, Any]]) -> None:
            args, kwargs = call
            trio.from_thread.run(call_once, s, name, args, kwargs)

        await trio.to_thread.run_sync(check)
        await check_still_usable(s, f"still usable after fuzzing {name}")
    assert fake_server.connections[0].close_code == 1000


# --- Client(...) -------------------------------------------------------------------------------

CLIENT_ARGS: dict[str, st.SearchStrategy[Any]] = {
    "base_url": st.one_of(
        st.sampled_from(
            [
                "ws://127.0.0.1:1",
                "wss://127.0.0.1:1/prefix",
                "ws://example.com",
                "http://[::1]:1",
                "ws://user:pw@127.0.0.1:1",
                "wss://h/?key=x",
                "ws://127.0.0.1:99999",
                "ws://[bad",
                "",
            ]
        ),
        junk,
    ),
    "api_version": st.one_of(st.sampled_from(["v1", "v1beta", "v1alpha", "v2"]), junk),
    "allow_insecure": st.one_of(st.booleans(), junk),
    "ssl_context": junk,
    "connect_timeout": st.one_of(st.floats(0.1, 10), junk),
    "setup_timeout": st.one_of(st.floats(0.1, 10), junk),
    "close_timeout": st.one_of(st.floats(0.1, 10), junk),
    "heartbeat_interval": st.one_of(st.floats(0.1, 10), junk),
    "heartbeat_timeout": st.one_of(st.floats(0.1, 10), junk),
    "max_message_size": st.one_of(st.integers(1, 2**30), junk),
    "receive_buffer_bytes": st.one_of(st.integers(1, 2**30), junk),
    "send_buffer_bytes": st.one_of(st.integers(1, 2**30), junk),
    "headers": st.one_of(
        st.dictionaries(
            st.sampled_from(["x-a", "X-Goog-Api-Key", "authorization"]), st.text(max_size=5)
        ),
        junk,
    ),
}


@settings(max_examples=300, deadline=None, database=None)
@given(
    api_key=st.one_of(st.just(TEST_KEY), st.just("auth_tokens/abc123def456"), junk),
    kwargs=st.fixed_dictionaries({}, optional=CLIENT_ARGS),
)
def test_client_constructor_gives_configuration_error_or_works(
    api_key: Any, kwargs: dict[str, Any]
) -> None:
    try:
        client = Client(api_key, **kwargs)
    except ConfigurationError:
        return
    except BaseException as exc:
        raise AssertionError(
            f"Client({api_key!r:.60}, **{kwargs!r:.300}) raised {exc!r:.300}"
        ) from exc
    assert isinstance(client.endpoint.url, str)
    assert TEST_KEY not in repr(client) and TEST_KEY not in client.endpoint.url


def test_client_rejects_a_non_context_ssl_context() -> None:
    """Passing something that is not an ``ssl.SSLContext`` is a configuration mistake that
    should be reported when it is made, not as an AttributeError deep in the TLS handshake."""
    with pytest.raises(ConfigurationError):
        Client(TEST_KEY, base_url="wss://127.0.0.1:1", ssl_context="verify=False")  # type: ignore[arg-type]


# --- LiveConfig(...) ---------------------------------------------------------------------------

CONFIG_FIELDS = [f.name for f in attrs.fields(LiveConfig)]
config_values = st.one_of(
    junk,
    st.lists(st.sampled_from(["TEXT", "AUDIO", "VIDEO", "text", "x"]), max_size=3),
    st.dictionaries(
        st.sampled_from(
            ["voice_config", "disabled", "handle", "transparent", "x", "sliding_window"]
        ),
        st.one_of(
            st.booleans(),
            st.text(max_size=5),
            st.dictionaries(st.text(max_size=3), st.none(), max_size=2),
        ),
        max_size=3,
    ),
    st.lists(
        st.dictionaries(
            st.sampled_from(["function_declarations", "google_search", "x"]),
            st.one_of(
                st.lists(
                    st.dictionaries(st.sampled_from(["name", "description"]), st.text(max_size=4)),
                    max_size=2,
                ),
                st.dictionaries(st.text(max_size=2), st.none(), max_size=1),
            ),
            max_size=2,
        ),
        max_size=2,
    ),
)


@settings(max_examples=300, deadline=None, database=None)
@given(values=st.dictionaries(st.sampled_from(CONFIG_FIELDS), config_values, max_size=4))
def test_live_config_gives_configuration_error_or_works(values: dict[str, Any]) -> None:
    try:
        config = LiveConfig(**values)
    except ConfigurationError:
        return
    except BaseException as exc:
        raise AssertionError(f"LiveConfig(**{values!r:.300}) raised {exc!r:.300}") from exc
    # a config that constructed must also build and encode its setup message
    client = Client(TEST_KEY, base_url="ws://127.0.0.1:1")
    try:
        gemini_ws.encode(client.build_setup(MODEL, config))
    except ConfigurationError:
        pass
    except BaseException as exc:
        raise AssertionError(
            f"LiveConfig(**{values!r:.300}) built, but its setup raised {exc!r:.300}"
        ) from exc
    # and the dict form passed to client.stream() behaves the same
    try:
        client.build_setup(MODEL, values)
    except ConfigurationError:
        pass
    except BaseException as exc:
        raise AssertionError(f"build_setup(dict {values!r:.300}) raised {exc!r:.300}") from exc
