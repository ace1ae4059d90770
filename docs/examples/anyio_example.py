"""gemini_ws under anyio: ``anyio.run(main, backend="trio")``, task groups and cancel scopes.

Two streams run side by side in an anyio task group, a third is cut short by an anyio deadline,
and the last lines show what happens under asyncio: an immediate, explanatory error. Against the
built-in fake Live server (no key needed): ``python3 docs/examples/anyio_example.py``.
"""

from __future__ import annotations

import asyncio

import anyio

from gemini_ws import Client, ConfigurationError, LiveConfig, ServerContent
from gemini_ws.testing import open_fake_server

MODEL = "gemini-3.1-flash-live-preview"
TEXT = LiveConfig(response_modalities=["TEXT"])


async def ask(client: Client, question: str, answers: dict[str, str]) -> None:
    async with client.stream(MODEL, config=TEXT) as s:
        await s.send_text(question)
        answers[question] = "".join(
            [m.text async for m in s.turn() if isinstance(m, ServerContent)]
        )


async def main() -> None:
    async with open_fake_server(chunk_count=3, chunk_interval=0.05) as server:
        print(f"using the built-in fake Live server at {server.url} (no key needed)")
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            answers: dict[str, str] = {}
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(ask, client, "first, from an anyio task", answers)
                    tg.start_soon(ask, client, "second, at the same time", answers)
            for answer in sorted(answers.values()):
                print(f"model: {answer}")

            with anyio.move_on_after(0.05) as scope:
                await ask(client, "too slow for the deadline", answers)
            print(f"anyio deadline: cancelled_caught={scope.cancelled_caught}")


async def under_asyncio() -> None:
    async with Client(api_key="not-used", base_url="ws://127.0.0.1:9"):
        pass


if __name__ == "__main__":
    anyio.run(main, backend="trio")
    try:
        asyncio.run(under_asyncio())
    except ConfigurationError as exc:
        print(f"under asyncio: ConfigurationError: {exc}")
