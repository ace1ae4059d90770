"""Tool calls: declare functions, run the ones the model asks for, send the results back.

The fake model calls a declared function when the user's text says ``call <name>`` (optionally
with JSON arguments, ``call get_weather({"city": "Oslo"})``) and then answers with the results
it was sent. Against the built-in fake Live server (no key needed):
``python3 docs/examples/tool_calls.py``.
"""

from __future__ import annotations

from typing import Any

import trio

from gemini_ws import Client, FunctionCall, LiveConfig, ServerContent, ToolCall
from gemini_ws.testing import open_fake_server

MODEL = "gemini-3.1-flash-live-preview"

CONFIG = LiveConfig(
    response_modalities=["TEXT"],
    tools=[
        {
            "function_declarations": [
                {
                    "name": "get_weather",
                    "description": "The current weather in a city.",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"city": {"type": "STRING"}},
                        "required": ["city"],
                    },
                },
                {"name": "get_time", "description": "The local time."},
            ]
        }
    ],
)


def run_tool(call: FunctionCall) -> dict[str, Any]:
    """Our local implementation of the declared functions."""
    if call.name == "get_weather":
        city = (call.args or {}).get("city", "?")
        return {"city": city, "temp_c": 21, "sky": "clear"}
    if call.name == "get_time":
        return {"time": "12:00"}
    return {"error": f"unknown function {call.name}"}


async def main() -> None:
    async with open_fake_server(chunk_count=3) as server:
        print(f"using the built-in fake Live server at {server.url} (no key needed)")
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            async with client.stream(MODEL, config=CONFIG) as s:
                # 1. results keyed by function name
                await s.send_text("call get_time")
                print("model: ", end="")
                async for msg in s.turn():
                    if isinstance(msg, ToolCall):
                        print(f"[tool call: {msg.function_calls[0].name}] ", end="")
                        await s.send_tool_response(msg, {"get_time": {"time": "12:00"}})
                    elif isinstance(msg, ServerContent):
                        print(msg.text, end="")
                print()

                # 2. two calls in one toolCall, answered by a function (matched by call id)
                await s.send_text('call get_weather({"city": "Oslo"}) and call get_time')
                print("model: ", end="")
                async for msg in s.turn():
                    if isinstance(msg, ToolCall):
                        for call in msg.function_calls:
                            print(f"[tool call: {call.name}({call.args}) id={call.id}] ", end="")
                        await s.send(msg.respond(run_tool))
                    elif isinstance(msg, ServerContent):
                        print(msg.text, end="")
                print()

        responses = [
            m["toolResponse"] for m in server.connections[0].received if "toolResponse" in m
        ]
        print(f"the server received {len(responses)} toolResponse messages")


if __name__ == "__main__":
    trio.run(main)
