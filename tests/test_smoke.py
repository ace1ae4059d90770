import trio

import gemini_ws


async def test_import_and_trio_mode() -> None:
    await trio.sleep(0)
    assert issubclass(gemini_ws.ProtocolError, gemini_ws.GeminiWSError)
