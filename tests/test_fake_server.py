"""The fake Live server: wire fidelity, setup errors and turns, via a raw trio-websocket client."""

from __future__ import annotations

import base64
import json
import re
import struct

import pytest
import trio

from gemini_ws import ConfigurationError
from gemini_ws.testing import FakeModel, open_fake_server
from gemini_ws.testing._json import (
    b64decode_lenient,
    format_duration,
    normalise_keys,
    truncate_reason,
)
from gemini_ws.testing._model import find_tool_calls, split_text
from tests.test_fake_server_helpers import (
    MODEL,
    TIMEOUT,
    connect,
    expect_close,
    raw_upgrade,
    read_turn,
    recv,
    say,
    send,
    setup,
    setup_close,
    text_setup,
    turn_text,
)

# ---------------------------------------------------------------------------------------------
# pure helpers


def test_truncate_reason_is_utf8_safe() -> None:
    reason = "é" * 100  # 200 bytes
    cut = truncate_reason(reason)
    assert len(cut.encode("utf-8")) <= 123
    assert cut == "é" * 61
    assert truncate_reason("short") == "short"


def test_normalise_keys_leaves_free_form_maps_alone() -> None:
    message = {
        "tool_response": {
            "function_responses": [
                {"id": "x", "response": {"snake_case_key": 1, "nested_obj": {"a_b": 2}}}
            ]
        },
        "setup": {
            "tools": [
                {
                    "function_declarations": [
                        {
                            "name": "get_weather",
                            "parameters": {"type": "OBJECT", "properties": {"city_name": {}}},
                        }
                    ]
                }
            ]
        },
        "client_content": {"turns": [{"parts": [{"function_call": {"args": {"a_b": 1}}}]}]},
    }
    assert normalise_keys(message) == {
        "toolResponse": {
            "functionResponses": [
                {"id": "x", "response": {"snake_case_key": 1, "nested_obj": {"a_b": 2}}}
            ]
        },
        "setup": {
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "get_weather",
                            "parameters": {"type": "OBJECT", "properties": {"city_name": {}}},
                        }
                    ]
                }
            ]
        },
        "clientContent": {"turns": [{"parts": [{"functionCall": {"args": {"a_b": 1}}}]}]},
    }


@pytest.mark.parametrize("data", [b"", b"\xff\xfe\xfd", b"\xfb\xff", bytes(range(256))])
def test_b64_both_alphabets_with_and_without_padding(data: bytes) -> None:
    for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
        text = encoded.decode()
        assert b64decode_lenient(text) == data
        assert b64decode_lenient(text.rstrip("=")) == data
    with pytest.raises(ValueError):
        b64decode_lenient("not base64 at all!")


def test_format_duration() -> None:
    assert format_duration(5) == "5s"
    assert format_duration(9.5) == "9.5s"
    assert format_duration(0.25) == "0.25s"
    assert format_duration(0) == "0s"


def test_split_text_and_tool_trigger() -> None:
    assert split_text("abcdefghij", 3) == ["abc", "def", "ghij"]
    assert split_text("ab", 5) == ["a", "b"]
    assert "".join(split_text("You said: hello", 5)) == "You said: hello"
    assert find_tool_calls('please call get_weather({"city": "Paris"}) now', ["get_weather"]) == [
        ("get_weather", {"city": "Paris"})
    ]
    assert find_tool_calls("call turn_on. then call nope", ["turn_on"]) == [("turn_on", {})]
    assert find_tool_calls('call a and call b( {"x": 1} )', ["a", "b"]) == [
        ("a", {}),
        ("b", {"x": 1}),
    ]


# ---------------------------------------------------------------------------------------------
# a text turn, byte for byte


async def test_text_turn_wire_format() -> None:
    async with open_fake_server(chunk_count=3) as server:
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", server.url)
        assert server.ca_pem is None
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await send(ws, {"setup": {"model": MODEL, **text_setup()}})
                raw = await ws.get_message()
                assert raw == b'{\n  "setupComplete": {}\n}'
                await say(ws, "hello")
                frames = []
                while True:
                    raw = await ws.get_message()
                    assert isinstance(raw, bytes)
                    message = json.loads(raw)
                    # pretty-printed with 2-space indentation, UTF-8
                    assert raw == json.dumps(message, indent=2, ensure_ascii=False).encode()
                    frames.append(message)
                    if message.get("serverContent", {}).get("turnComplete"):
                        break
        chunks = frames[:-2]
        assert [list(m["serverContent"]["modelTurn"]["parts"][0]) for m in chunks] == [["text"]] * 3
        assert turn_text(frames) == "You said: hello"
        assert frames[-2] == {"serverContent": {"generationComplete": True}}
        last = frames[-1]
        assert last["serverContent"] == {"turnComplete": True}
        usage = last["usageMetadata"]
        assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["responseTokenCount"]
        assert usage["promptTokensDetails"][0]["modality"] == "TEXT"
        assert usage["responseTokensDetails"] == [
            {"modality": "TEXT", "tokenCount": usage["responseTokenCount"]}
        ]
        connection = server.connections[0]
        await connection.wait_closed()
        assert connection.close_code == 1000
        assert connection.closed_by == "client"
        assert connection.setup is not None and connection.setup["model"] == MODEL
        assert connection.sent == [{"setupComplete": {}}, *frames]
        assert [list(m) for m in connection.received] == [["setup"], ["clientContent"]]


async def test_history_and_multiple_turns() -> None:
    async with open_fake_server(chunk_count=2) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                # a turn without turnComplete only adds history
                await send(
                    ws,
                    {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "one"}]}]}},
                )
                await say(ws, "two")
                assert turn_text(await read_turn(ws)) == "You said: one two"
                await say(ws, "three")
                assert turn_text(await read_turn(ws)) == "You said: three"
        turns = server.connections[0].turns
        assert [t.text for t in turns] == ["one two", "three"]
        assert [c["role"] for c in turns[1].history] == ["user", "user", "model", "user"]
        assert turns[1].history[2] == {"role": "model", "parts": [{"text": "You said: one two"}]}


async def test_realtime_text_is_a_turn_and_video_is_counted() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                jpeg = base64.b64encode(b"\xff\xd8\xff\xe0fake").decode()
                await send(
                    ws, {"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": jpeg}}}
                )
                await send(ws, {"realtime_input": {"text": "typed"}})
                assert turn_text(await read_turn(ws)) == "You said: typed"
        connection = server.connections[0]
        assert connection.video_frames == 1
        assert connection.turns[0].video_frames == 1


# ---------------------------------------------------------------------------------------------
# endpoints and credentials


@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha"])
@pytest.mark.parametrize("prefix", ["/", "//"])
async def test_paths_accepted(version: str, prefix: str) -> None:
    async with open_fake_server() as server:
        url = (
            f"{server.url}{prefix}ws/google.ai.generativelanguage.{version}"
            ".GenerativeService.BidiGenerateContent"
        )
        with trio.fail_after(TIMEOUT):
            async with connect(server, url=url) as ws:
                await setup(ws)
        assert server.connections[0].api_version == version
        assert server.connections[0].path.startswith(prefix + "ws/")


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/ws/google.ai.generativelanguage.v2.GenerativeService.BidiGenerateContent",
        "/ws/google.ai.generativelanguage.v1beta.GenerativeService/BidiGenerateContent",
        "///ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
        "/prefix/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
    ],
)
async def test_other_paths_get_404(path: str) -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            status, _headers, body = await raw_upgrade(server, path)
            assert (status, await raw_upgrade(server, path + "?key=test-key")) == (
                404,
                (404, _headers, body),
            )
        assert body
        assert server.connections[0].rejected_status == 404


async def test_credentials_each_mechanism() -> None:
    token = "auth_tokens/test-ephemeral-token"
    async with open_fake_server() as server:
        constrained = server.endpoint(
            api_version="v1alpha", method="BidiGenerateContentConstrained"
        )
        cases = [
            {"api_key": server.api_key},
            {"api_key": None, "url": f"{server.endpoint()}?key={server.api_key}"},
            {"api_key": None, "url": f"{constrained}?access_token={token}"},
            {"api_key": None, "headers": [("Authorization", f"Token {token}")], "url": constrained},
            # the Python SDK sends the token both ways
            {
                "api_key": token,
                "headers": [("Authorization", f"Token {token}")],
                "url": constrained,
            },
        ]
        with trio.fail_after(TIMEOUT):
            for case in cases:
                async with connect(server, **case) as ws:
                    await setup(ws)
        assert [c.credentials for c in server.connections] == [
            [("x-goog-api-key", "test-key")],
            [("key", "test-key")],
            [("access_token", token)],
            [("authorization", token)],
            [("authorization", token), ("x-goog-api-key", token)],
        ]


@pytest.mark.parametrize(
    ("connect_args", "code", "reason"),
    [
        ({"api_key": "wrong"}, 1007, "API key not valid. Please pass a valid API key."),
        ({"api_key": None}, 1007, "Method doesn't allow unregistered callers"),
        # an ephemeral token needs the Constrained method
        (
            {"api_key": "auth_tokens/test-ephemeral-token"},
            1007,
            "API key not valid. Please pass a valid API key.",
        ),
    ],
)
async def test_bad_credentials_close_1007(connect_args: dict, code: int, reason: str) -> None:
    async with open_fake_server() as server:
        closed = await setup_close(server, {"setup": {"model": MODEL}}, **connect_args)
        assert closed.code == code
        assert closed.reason is not None and closed.reason.startswith(reason)
        assert len(closed.reason.encode()) <= 123
        await server.connections[0].wait_closed()
        assert server.connections[0].close_code == code
        assert server.connections[0].closed_by == "server"


async def test_unknown_query_parameter_closes_1007() -> None:
    async with open_fake_server() as server:
        closed = await setup_close(
            server, {"setup": {"model": MODEL}}, url=server.endpoint() + "?model=x"
        )
        assert closed.code == 1007
        assert closed.reason is not None
        assert closed.reason.startswith(
            'Invalid JSON payload received. Unknown name "model": Cannot bind query parameter.'
        )


# ---------------------------------------------------------------------------------------------
# setup errors


async def test_first_message_must_be_setup() -> None:
    async with open_fake_server() as server:
        closed = await setup_close(server, {"clientContent": {"turnComplete": True}})
        assert (closed.code, closed.reason) == (1007, "Request contains an invalid argument.")


async def test_malformed_json_closes_1007() -> None:
    async with open_fake_server() as server:
        closed = await setup_close(server, '{"setup": {')
        assert closed.code == 1007
        assert closed.reason is not None
        assert closed.reason.startswith("Invalid JSON payload received.")
        closed = await setup_close(server, b"\xff\xfe not utf-8")
        assert closed.code == 1007


async def test_unknown_top_level_key_closes_1007() -> None:
    async with open_fake_server() as server:
        closed = await setup_close(server, {"setup": {"model": MODEL}, "bogus": {}})
        assert closed.code == 1007
        assert (
            closed.reason
            == 'Invalid JSON payload received. Unknown name "bogus": Cannot find field.'
        )


async def test_unknown_model_closes_1008_cut_to_123_bytes() -> None:
    async with open_fake_server() as server:
        closed = await setup_close(server, {"setup": {"model": "models/no-such-model"}})
        assert closed.code == 1008
        assert closed.reason is not None
        full = (
            "models/no-such-model is not found for API version v1beta, or is not supported for"
            " bidiGenerateContent. Call ListModels to see the list of available models and"
            " their supported methods."
        )
        assert closed.reason == full.encode()[:123].decode()
        # multi-byte characters are never split
        closed = await setup_close(server, {"setup": {"model": "models/" + "é" * 80}})
        assert closed.code == 1008
        assert closed.reason is not None and len(closed.reason.encode()) <= 123
        # a second setup on a live connection is refused too
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                await send(ws, {"setup": {"model": MODEL}})
                closed = await expect_close(ws)
        assert closed.code == 1007


async def test_bad_modalities_and_bad_base64_close_1007() -> None:
    async with open_fake_server() as server:
        closed = await setup_close(
            server,
            {
                "setup": {
                    "model": MODEL,
                    "generationConfig": {"responseModalities": ["TEXT", "AUDIO"]},
                }
            },
        )
        assert closed.code == 1007
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                await send(
                    ws, {"realtimeInput": {"audio": {"mimeType": "audio/pcm", "data": "%%%"}}}
                )
                closed = await expect_close(ws)
        assert closed.code == 1007
        assert closed.reason is not None and "Base64 decoding failed" in closed.reason


async def test_custom_models_and_bare_ids() -> None:
    async with open_fake_server(models={"models/my-model"}) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await send(ws, {"setup": {"model": "my-model"}})
                assert await recv(ws) == {"setupComplete": {}}
        closed = await setup_close(server, {"setup": {"model": MODEL}})
        assert closed.code == 1008


# ---------------------------------------------------------------------------------------------
# input normalisation


async def test_python_sdk_style_snake_case_input() -> None:
    pcm = struct.pack("<4h", -1, 2, -3, 4) * 500  # 4000 bytes
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await send(
                    ws,
                    {
                        "setup": {
                            "model": MODEL,
                            "generationConfig": {"responseModalities": ["TEXT"]},
                            "realtimeInputConfig": {
                                "automatic_activity_detection": {
                                    "start_of_speech_sensitivity": "START_SENSITIVITY_LOW"
                                }
                            },
                            "contextWindowCompression": {
                                "trigger_tokens": 1000,
                                "sliding_window": {"target_tokens": 500},
                            },
                        }
                    },
                )
                assert await recv(ws) == {"setupComplete": {}}
                # URL-safe base64 without padding, mime_type in snake_case
                data = base64.urlsafe_b64encode(pcm).decode().rstrip("=")
                await send(
                    ws,
                    {
                        "realtime_input": {
                            "audio": {"data": data, "mime_type": "audio/pcm;rate=16000"}
                        }
                    },
                )
                # standard alphabet with padding
                await send(
                    ws,
                    {
                        "realtime_input": {
                            "audio": {
                                "data": base64.b64encode(pcm).decode(),
                                "mime_type": "audio/pcm;rate=16000",
                            }
                        }
                    },
                )
                await send(ws, {"realtime_input": {"audioStreamEnd": True}})
                messages = await read_turn(ws)
        assert turn_text(messages) == "You said: [audio 0.25s]"
        connection = server.connections[0]
        assert connection.turns[0].audio == pcm + pcm
        assert connection.received[1] == {
            "realtimeInput": {"audio": {"data": data, "mimeType": "audio/pcm;rate=16000"}}
        }
        assert connection.setup is not None
        assert connection.setup["realtimeInputConfig"] == {
            "automaticActivityDetection": {"startOfSpeechSensitivity": "START_SENSITIVITY_LOW"}
        }
        assert connection.context_window_compression == {
            "triggerTokens": 1000,
            "slidingWindow": {"targetTokens": 500},
        }


# ---------------------------------------------------------------------------------------------
# audio


async def test_audio_turn_pcm_and_transcriptions() -> None:
    pcm = b"\x01\x00" * 8000  # 0.5 s at 16 kHz
    async with open_fake_server(chunk_count=4) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                # no responseModalities: the fake's default is AUDIO
                await setup(ws, inputAudioTranscription={}, outputAudioTranscription={})
                await send(
                    ws,
                    {
                        "realtimeInput": {
                            "audio": {
                                "mimeType": "audio/pcm;rate=16000",
                                "data": base64.b64encode(pcm).decode(),
                            }
                        }
                    },
                )
                await send(ws, {"realtimeInput": {"audioStreamEnd": True}})
                messages = await read_turn(ws)
        reply = "You said: [audio 0.50s]"
        assert messages[0] == {"serverContent": {"inputTranscription": {"text": "[audio 0.50s]"}}}
        audio = b""
        transcript = ""
        for message in messages[1:-2]:
            content = message["serverContent"]
            if "modelTurn" in content:
                (part,) = content["modelTurn"]["parts"]
                assert part["inlineData"]["mimeType"] == "audio/pcm;rate=24000"
                data = part["inlineData"]["data"]
                assert "-" not in data and "_" not in data  # standard alphabet
                audio += base64.b64decode(data, validate=True)
            else:
                transcript += content["outputTranscription"]["text"]
        assert transcript == reply
        assert len(audio) == 2400 * len(reply)  # 50 ms per character, 24 kHz 16-bit mono
        samples = struct.unpack(f"<{len(audio) // 2}h", audio)
        assert max(samples) > 7000 and min(samples) < -7000  # a tone, not silence
        assert messages[-2] == {"serverContent": {"generationComplete": True}}
        usage = messages[-1]["usageMetadata"]
        assert usage["responseTokensDetails"] == [{"modality": "AUDIO", "tokenCount": 29}]
        assert any(d["modality"] == "AUDIO" for d in usage["promptTokensDetails"])


async def test_long_audio_is_split_under_one_mebibyte() -> None:
    async with open_fake_server(chunk_count=1) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                await say(ws, "x" * 500)
                sizes = []
                while True:
                    raw = await ws.get_message()
                    assert isinstance(raw, bytes)
                    sizes.append(len(raw))
                    if json.loads(raw).get("serverContent", {}).get("turnComplete"):
                        break
        assert len(sizes) > 4  # 1.2 MB of PCM in a single segment, cut into several messages
        assert max(sizes) < 2**20


async def test_manual_activity_detection() -> None:
    chunk = base64.b64encode(b"\x00\x10" * 1600).decode()  # 0.1 s at 16 kHz
    audio = {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": chunk}}}
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(
                    ws,
                    **text_setup(
                        realtimeInputConfig={"automaticActivityDetection": {"disabled": True}}
                    ),
                )
                await send(ws, audio)  # outside an activity: ignored
                await send(ws, {"realtimeInput": {"activityStart": {}}})
                await send(ws, audio)
                await send(ws, audio)
                await send(ws, {"realtimeInput": {"audioStreamEnd": True}})  # ignored
                await send(ws, {"realtimeInput": {"activityEnd": {}}})
                assert turn_text(await read_turn(ws)) == "You said: [audio 0.20s]"
                # activity signals need automatic detection off: here they are fine
        connection = server.connections[0]
        assert connection.ignored_audio_bytes == 3200
        assert connection.audio_bytes_received == 9600
        async with open_fake_server() as server:
            closed = None
            with trio.fail_after(TIMEOUT):
                async with connect(server) as ws:
                    await setup(ws)
                    await send(ws, {"realtimeInput": {"activityStart": {}}})
                    closed = await expect_close(ws)
            assert closed.code == 1007


# ---------------------------------------------------------------------------------------------
# interruption


async def test_interruption() -> None:
    async with open_fake_server(chunk_count=10, chunk_interval=0.05) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                await say(ws, "a long story")
                first = await recv(ws)
                assert "modelTurn" in first["serverContent"]
                await say(ws, "stop")
                messages = [first, *await read_turn(ws)]
                assert {"serverContent": {"interrupted": True}} in messages
                assert messages[-2] == {"serverContent": {"interrupted": True}}
                assert "usageMetadata" in messages[-1]
                assert not any(m["serverContent"].get("generationComplete") for m in messages)
                assert len(turn_text(messages)) < len("You said: a long story")
                # then the new input is answered
                assert turn_text(await read_turn(ws)) == "You said: stop"


async def test_start_of_speech_interrupts() -> None:
    chunk = base64.b64encode(b"\x00\x10" * 800).decode()
    audio = {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": chunk}}}
    async with open_fake_server(chunk_count=10, chunk_interval=0.05) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                await say(ws, "a long story")
                await recv(ws)
                await send(ws, audio)  # barge-in
                messages = await read_turn(ws)
                assert messages[-2] == {"serverContent": {"interrupted": True}}
                await send(ws, {"realtimeInput": {"audioStreamEnd": True}})
                assert turn_text(await read_turn(ws)) == "You said: [audio 0.05s]"


async def test_no_interruption_queues_realtime_text() -> None:
    async with open_fake_server(chunk_count=4, chunk_interval=0.03) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(
                    ws, **text_setup(realtimeInputConfig={"activityHandling": "NO_INTERRUPTION"})
                )
                await send(ws, {"realtimeInput": {"text": "first"}})
                await recv(ws)
                await send(ws, {"realtimeInput": {"text": "second"}})
                first = await read_turn(ws)
                assert not any(m["serverContent"].get("interrupted") for m in first)
                assert turn_text(await read_turn(ws)) == "You said: second"


async def test_model_pacing() -> None:
    async with open_fake_server(chunk_count=3, first_chunk_delay=0.2, chunk_interval=0.1) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                start = trio.current_time()
                await say(ws, "hi")
                await recv(ws)
                first = trio.current_time() - start
                await read_turn(ws)
                total = trio.current_time() - start
        assert 0.2 <= first < 1.0
        assert 0.4 <= total < 1.5


def test_fake_model_rejects_zero_chunks() -> None:
    with pytest.raises(ConfigurationError, match="chunk_count"):
        FakeModel(chunk_count=0)
