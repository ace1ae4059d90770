"""gemini_ws under anyio on the trio backend, and a clear refusal under asyncio.

These are plain synchronous tests that start their own event loop, so they run both in the
main suite (where the anyio pytest plugin is off) and in ``nox -s anyio``.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

import gemini_ws
from gemini_ws import Client, LiveConfig, ServerContent
from gemini_ws.testing import open_fake_server

from .conftest import TEST_KEY

MODEL = "gemini-3.1-flash-live-preview"


def test_stream_under_anyio_task_group_and_cancel_scope() -> None:
    async def main() -> tuple[str, bool, str]:
        async with open_fake_server(api_key=TEST_KEY, chunk_count=3) as server:
            async with Client(api_key=TEST_KEY, base_url=server.url) as client:
                texts: list[str] = []

                async def talk() -> None:
                    async with client.stream(
                        MODEL, config=LiveConfig(response_modalities=["TEXT"])
                    ) as s:
                        await s.send_text("from anyio")
                        async for msg in s.turn():
                            if isinstance(msg, ServerContent):
                                texts.append(msg.text)

                with anyio.fail_after(10):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(talk)

                # an anyio cancel scope cancels an open stream cleanly
                with anyio.CancelScope() as scope:
                    async with client.stream(MODEL) as s:
                        scope.cancel()
                        await s.receive()
                state = s.state
            return "".join(texts), scope.cancelled_caught, state

    text, cancelled, state = anyio.run(main, backend="trio")
    assert "from anyio" in text
    assert cancelled
    assert state in ("closed", "cancelled")


def test_asyncio_fails_at_once_with_instructions() -> None:
    async def main() -> None:
        async with Client(api_key=TEST_KEY, base_url="ws://127.0.0.1:9"):
            pass

    with pytest.raises(gemini_ws.ConfigurationError, match=r"trio\.run|backend='trio'"):
        asyncio.run(main())
