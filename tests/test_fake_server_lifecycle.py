"""The fake Live server: tools, resumption, goAway, scripting, pings, TLS and the CLI."""

from __future__ import annotations

import base64
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
import trio

from gemini_ws.testing import (
    FakeLiveServer,
    FakeServerError,
    ResponderItem,
    UserTurn,
    open_fake_server,
    scripted,
    serve_fake_server,
)
from tests.test_fake_server_helpers import (
    MODEL,
    TIMEOUT,
    connect,
    expect_close,
    read_cli_fields,
    read_turn,
    recv,
    say,
    send,
    setup,
    text_setup,
    turn_text,
)

TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "get_weather",
                "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
            },
            {"name": "turn_on"},
        ]
    }
]

# ---------------------------------------------------------------------------------------------
# tools


async def test_tool_call_and_response() -> None:
    async with open_fake_server(chunk_count=2) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup(tools=TOOLS))
                await say(ws, 'call get_weather({"city": "Paris"}) and call turn_on please')
                message = await recv(ws)
                calls = message["toolCall"]["functionCalls"]
                assert [(c["name"], c["args"]) for c in calls] == [
                    ("get_weather", {"city": "Paris"}),
                    ("turn_on", {}),
                ]
                assert all(re.fullmatch(r"function-call-\d{19}", c["id"]) for c in calls)
                # answered in snake_case, like the Python SDK; free-form response untouched
                await send(
                    ws,
                    {
                        "tool_response": {
                            "function_responses": [
                                {
                                    "id": calls[1]["id"],
                                    "name": "turn_on",
                                    "response": {"result": "ok"},
                                },
                                {
                                    "id": calls[0]["id"],
                                    "name": "get_weather",
                                    "response": {"temp_c": 21},
                                    "scheduling": "WHEN_IDLE",
                                },
                            ]
                        }
                    },
                )
                messages = await read_turn(ws)
                assert turn_text(messages) == (
                    'Tool results: get_weather={"temp_c":21}; turn_on={"result":"ok"}'
                )
                assert messages[-2] == {"serverContent": {"generationComplete": True}}
                # an unknown id is ignored (and recorded)
                await send(
                    ws,
                    {"toolResponse": {"functionResponses": [{"id": "nope", "response": {}}]}},
                )
                await say(ws, "call nothing_declared")
                assert turn_text(await read_turn(ws)) == "You said: call nothing_declared"
        connection = server.connections[0]
        assert connection.unknown_tool_response_ids == ["nope"]
        history_parts = [list(c["parts"][0]) for c in connection.turns[1].history]
        assert ["functionCall"] in history_parts and ["functionResponse"] in history_parts


async def test_tool_call_cancelled_by_new_input() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup(tools=TOOLS))
                await say(ws, "call turn_on")
                call_id = (await recv(ws))["toolCall"]["functionCalls"][0]["id"]
                await say(ws, "never mind")
                assert await recv(ws) == {"toolCallCancellation": {"ids": [call_id]}}
                assert await recv(ws) == {"serverContent": {"interrupted": True}}
                assert (await recv(ws))["serverContent"] == {"turnComplete": True}
                assert turn_text(await read_turn(ws)) == "You said: never mind"
                # the late answer is for an unknown id now
                await send(ws, {"toolResponse": {"functionResponses": [{"id": call_id}]}})
                await say(ws, "x")
                await read_turn(ws)
        assert server.connections[0].unknown_tool_response_ids == [call_id]


# ---------------------------------------------------------------------------------------------
# resumption


async def test_resumption_updates_and_history_across_connections() -> None:
    async with open_fake_server(chunk_count=1) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup(sessionResumption={}))
                await say(ws, "remember me")
                messages = await read_turn(ws)
                assert messages[0] == {
                    "sessionResumptionUpdate": {"newHandle": "", "resumable": False}
                }
                update = (await recv(ws))["sessionResumptionUpdate"]
                assert update["resumable"] is True
                assert "lastConsumedClientMessageIndex" not in update
                handle = update["newHandle"]
                assert handle
            # old connection closed: resume on a new one
            async with connect(server) as ws:
                await setup(ws, **text_setup(sessionResumption={"handle": handle}))
                await say(ws, "who am I?")
                assert turn_text(await read_turn(ws)) == "You said: who am I?"
                second = (await recv(ws))["sessionResumptionUpdate"]["newHandle"]
                assert second and second != handle
        first, resumed = server.connections
        assert resumed.resumed_from == handle
        assert resumed.session is first.session
        turn = resumed.turns[0]
        assert turn.index == 1
        assert [c["parts"][0]["text"] for c in turn.history] == [
            "remember me",
            "You said: remember me",
            "who am I?",
        ]


async def test_resume_refused_while_old_connection_open_and_unknown_handle() -> None:
    async with open_fake_server(chunk_count=1) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as old:
                await setup(old, **text_setup(sessionResumption={}))
                await say(old, "hi")
                await read_turn(old)
                handle = (await recv(old))["sessionResumptionUpdate"]["newHandle"]
                async with connect(server) as new:
                    await send(
                        new,
                        {"setup": {"model": MODEL, "sessionResumption": {"handle": handle}}},
                    )
                    closed = await expect_close(new)
                    assert (closed.code, closed.reason) == (1011, "Internal error encountered.")
                # the old one still works
                await say(old, "still here")
                assert turn_text(await read_turn(old)) == "You said: still here"
            async with connect(server) as ws:
                await send(
                    ws, {"setup": {"model": MODEL, "sessionResumption": {"handle": "bogus"}}}
                )
                closed = await expect_close(ws)
                assert closed.code == 1007
            # a different model is refused, even with a good handle
            async with connect(server) as ws:
                await send(
                    ws,
                    {
                        "setup": {
                            "model": "models/gemini-3.1-flash-live-preview",
                            "sessionResumption": {"handle": handle},
                        }
                    },
                )
                assert (await expect_close(ws)).code == 1007
            server.expire_handles()
            async with connect(server) as ws:
                await send(ws, {"setup": {"model": MODEL, "sessionResumption": {"handle": handle}}})
                assert (await expect_close(ws)).code == 1007


async def test_resume_while_open_allowed_when_configured() -> None:
    async with open_fake_server(chunk_count=1, refuse_resume_while_old_open=False) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as old:
                await setup(old, **text_setup(sessionResumption={}))
                await say(old, "hi")
                await read_turn(old)
                handle = (await recv(old))["sessionResumptionUpdate"]["newHandle"]
                async with connect(server) as new:
                    await setup(new, **text_setup(sessionResumption={"handle": handle}))


async def test_transparent_resumption_reports_consumed_index() -> None:
    chunk = {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": "AAAA"}}}
    # transparent is Vertex only: the strict (Gemini API) fake refuses it
    async with open_fake_server(chunk_count=1, chunk_interval=0, strict=False) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup(sessionResumption={"transparent": True}))
                await say(ws, "one")  # client message index 1 (setup is 0)
                await read_turn(ws)
                update = (await recv(ws))["sessionResumptionUpdate"]
                assert update["lastConsumedClientMessageIndex"] == "1"
                # audio that is not yet a user turn is not consumed
                await send(ws, {"realtimeInput": {"text": "two"}})  # index 2
                await recv(ws)  # non-resumable update
                await send(ws, chunk)  # index 3, pending
                await read_turn(ws)
                update = (await recv(ws))["sessionResumptionUpdate"]
                assert update["lastConsumedClientMessageIndex"] == "2"


# ---------------------------------------------------------------------------------------------
# goAway


async def test_go_away_then_close() -> None:
    async with open_fake_server(
        connection_lifetime=0.1, goaway_time_left=0.25, goaway_close_code=1011
    ) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                start = trio.current_time()
                assert await recv(ws) == {"goAway": {"timeLeft": "0.25s"}}
                closed = await expect_close(ws)
                assert trio.current_time() - start >= 0.2
        assert (closed.code, closed.reason) == (
            1011,
            "Deadline expired before operation could complete.",
        )
        connection = server.connections[0]
        await connection.wait_closed()
        assert (connection.close_code, connection.closed_by) == (1011, "server")


async def test_go_away_on_demand() -> None:
    async with open_fake_server() as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                server.connections[0].go_away(2, close_code=None)
                assert await recv(ws) == {"goAway": {"timeLeft": "2s"}}
                server.connections[0].go_away(0.05, close_code=1008)
                assert await recv(ws) == {"goAway": {"timeLeft": "0.05s"}}
                assert (await expect_close(ws)).code == 1008


# ---------------------------------------------------------------------------------------------
# scripting


async def test_custom_responder_items_and_auto_turn_complete() -> None:
    seen: list[UserTurn] = []

    async def responder(turn: UserTurn) -> AsyncIterator[ResponderItem]:
        seen.append(turn)
        yield "Hello "
        yield {"serverContent": {"modelTurn": {"parts": [{"text": "there"}]}}}
        yield b"\x01\x00" * 10

    async with open_fake_server(responder=responder) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                await say(ws, "hi")
                messages = await read_turn(ws)
        assert turn_text(messages) == "Hello there"
        assert messages[2]["serverContent"]["modelTurn"]["parts"][0]["inlineData"] == {
            "mimeType": "audio/pcm;rate=24000",
            "data": base64.b64encode(b"\x01\x00" * 10).decode(),
        }
        assert messages[-2] == {"serverContent": {"generationComplete": True}}
        assert seen[0].text == "hi" and seen[0].setup["model"] == MODEL


async def test_responder_may_end_the_turn_itself() -> None:
    async def responder(turn: UserTurn) -> AsyncIterator[ResponderItem]:
        yield {"serverContent": {"modelTurn": {"parts": [{"text": "done"}]}, "turnComplete": True}}

    async with open_fake_server(responder=responder) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                await say(ws, "hi")
                assert await read_turn(ws) == [
                    {
                        "serverContent": {
                            "modelTurn": {"parts": [{"text": "done"}]},
                            "turnComplete": True,
                        }
                    }
                ]
                await say(ws, "again")
                assert len(await read_turn(ws)) == 1


async def test_scripted_conversation() -> None:
    async def third(turn: UserTurn) -> AsyncIterator[ResponderItem]:
        yield f"third got {turn.text}"

    responder = scripted(
        "First reply.",
        ["two ", "chunks"],
        third,
    )
    async with open_fake_server(responder=responder, chunk_count=2) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws, **text_setup())
                replies = []
                for text in ("a", "b", "c", "d"):
                    await say(ws, text)
                    replies.append(turn_text(await read_turn(ws)))
        assert replies == ["First reply.", "two chunks", "third got c", "You said: d"]


async def test_responder_error_closes_1011_and_is_raised_on_exit() -> None:
    async def responder(turn: UserTurn) -> AsyncIterator[ResponderItem]:
        yield "partial"
        raise RuntimeError("bug in the responder")

    with pytest.raises(FakeServerError) as info:
        async with open_fake_server(responder=responder) as server:
            with trio.fail_after(TIMEOUT):
                async with connect(server) as ws:
                    await setup(ws, **text_setup())
                    await say(ws, "hi")
                    assert turn_text([await recv(ws)]) == "partial"
                    closed = await expect_close(ws)
                    assert (closed.code, closed.reason) == (1011, "Internal error encountered.")
    assert isinstance(info.value.errors[0], RuntimeError)


# ---------------------------------------------------------------------------------------------
# pings, serve_fake_server, TLS, CLI


async def test_server_pings_record_rtts() -> None:
    async with open_fake_server(ping_interval=0.02) as server:
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
                while len(server.connections[0].pong_rtts) < 3:
                    await trio.sleep(0.01)
        assert all(0 <= rtt < 1 for rtt in server.connections[0].pong_rtts)


async def test_serve_fake_server_in_a_nursery() -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            lambda task_status: serve_fake_server(api_key="other", task_status=task_status)
        )
        with trio.fail_after(TIMEOUT):
            async with connect(server) as ws:
                await setup(ws)
        assert server.api_key == "other"
        nursery.cancel_scope.cancel()


async def test_tls() -> None:
    async with open_fake_server(tls=True) as server:
        assert server.url.startswith("wss://127.0.0.1:")
        assert server.ca_pem is not None and server.ca_pem.startswith(b"-----BEGIN CERTIFICATE")
        context = ssl.create_default_context(cadata=server.ca_pem.decode())
        with trio.fail_after(TIMEOUT):
            async with connect(server, ssl_context=context) as ws:
                await setup(ws, **text_setup())
                await say(ws, "secure")
                assert turn_text(await read_turn(ws)) == "You said: secure"
            # a client that does not trust the CA fails the TLS handshake; the server shrugs
            with pytest.raises(trio.BrokenResourceError):
                async with connect(server, ssl_context=ssl.create_default_context()):
                    pass  # pragma: no cover
            async with connect(server) as ws:
                await setup(ws)


@pytest.mark.parametrize("tls", [False, True])
async def test_standalone_cli(tls: bool) -> None:
    command = [sys.executable, "-m", "gemini_ws.testing", "--port", "0", "--api-key", "cli-key"]
    process = await trio.lowlevel.open_process(
        [*command, "--tls"] if tls else command, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        with trio.fail_after(15):
            _, lines = await read_cli_fields(process)
            assert lines["api_key"] == "cli-key"
            url = lines["url"]
            assert url.startswith("wss://" if tls else "ws://")
            context = None
            if tls:
                ca_pem = await trio.Path(lines["ca_file"]).read_text()
                context = ssl.create_default_context(cadata=ca_pem)
            # a stand-in object only to reuse the connect() helper
            stand_in = FakeLiveServer(api_key="cli-key", tls=tls)
            stand_in.port = int(url.rsplit(":", 1)[1])
            async with connect(stand_in, ssl_context=context) as ws:
                await setup(ws, **text_setup())
                await say(ws, "cli")
                assert turn_text(await read_turn(ws)) == "You said: cli"
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.stdout.aclose()
