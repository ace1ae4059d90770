"""Every example in docs/examples runs against the fake server, as a user would run it, and
prints what its page says it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).parent.parent / "docs" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))

#: For each example, strings its stdout must contain. A new example needs an entry here.
EXPECTED: dict[str, list[str]] = {
    "quickstart.py": [
        "using the built-in fake Live server",
        "connected; setupComplete after",
        "model: You said: Hello! What can you do?",
        '[tool call: get_time] Tool results: get_time={"time":"12:00"}',
        "model (after resume): You said: This waits while paused.",
        "turns: 3,",
    ],
    "pause_resume.py": [
        "using the built-in fake Live server",
        "paused: receive=True send=True",
        "held for sending: 1",
        "model: You said: first question, with a rather long answer please (58 chunks)",
        "model: You said: second question (25 chunks)",
        "state: open",
        "the server received, in order: "
        "['first question, with a rather long answer please', 'second question']",
    ],
    "cancel.py": [
        "using the built-in fake Live server",
        "cancel(): state=cancelled, unsent=['and another one']",
        "send after cancel: StreamClosedError, unsent=['and another one']",
        "the server saw close code 1000",
        "move_on_after: cancelled_caught=True, state=closed",
        "exception exit: state=closed, unsent=['draft that should not go out']",
        "unnoticed failure: StreamClosedError (cause ServerInternalError), "
        "unsent=['held 1', 'held 2']",
    ],
    "resumption.py": [
        "using the built-in fake Live server",
        "goAway: 2 s left",
        "SessionResumed(reason='go_away', attempts=1, warm=True, replayed=0",
        "model: You said: are you still there?",
        "same conversation on a new connection: True, True",
        "reconfigure() returned: SessionResumed(reason='reconfigure'",
        "model: You said: what is my name?",
        "SessionResumed(reason='connection_lost', attempts=1, warm=False, replayed=1, "
        "interrupted_turn=True",
        "model: You said: second",
        "model: You said: which number?",
        "resumed the same conversation: True",
    ],
    "tool_calls.py": [
        "using the built-in fake Live server",
        'model: [tool call: get_time] Tool results: get_time={"time":"12:00"}',
        "[tool call: get_weather({'city': 'Oslo'}) id=function-call-",
        'Tool results: get_weather={"city":"Oslo","sky":"clear","temp_c":21}; '
        'get_time={"time":"12:00"}',
        "the server received 2 toolResponse messages",
    ],
    "audio_to_wav.py": [
        "using the built-in fake Live server",
        "heard: '[audio 1.00s]'",
        "model (transcription): 'You said: [audio 1.00s]'",
        # 23 characters of reply, 50 ms of tone each
        "wrote reply.wav: 55200 bytes of PCM, 1.15 s at 24000 Hz",
        "activity start/end: heard '[audio 0.50s]', reply 1.15 s",
    ],
    "stream_wav_file.py": [
        "using the built-in fake Live server",
        "read question.wav: 1.00 s at 48000 Hz",
        "sending 1.00 s at 16000 Hz in real time",
        "  sent 0.50 s (16000 bytes)",
        "  sent 1.00 s (32000 bytes)",
        # 23 characters of reply ("You said: [audio 1.00s]"), 50 ms of tone each
        "wrote reply.wav: 1.15 s at 24000 Hz",
        "barge-in: interrupted 1 time(s);",
        "dropped True, queued now 0.00 s",
    ],
    "testing_with_fake_server.py": [
        "fake Live server",
        "scripted responder: ok, the server received ['Capital of France?', 'Tell me more']",
        "fault injection: ok, ServerInternalError code=1011",
        "TLS with the throwaway CA: ok, 'You said: secure hello'",
        "all tests passed",
    ],
    "pooling.py": [
        "using the built-in fake Live server",
        "spares ready: 2; <ConnectionPool: 0 active, 2 idle, 0 connecting, 0 waiting>",
        "warm stream: was_spare=True",
        "while busy: <ConnectionPool: ",
        "sessions opened in this order: [",
        "timeouts: 0, waiting: 0",
        "spares after refill: 2",
    ],
    "observability.py": [
        "using the built-in fake Live server",
        "turn 1: tokens in/out 4/10 {'TEXT': 4}, tool calls ['get_time'], first chunk after",
        "turn 2: tokens in/out 15/4 {'TEXT': 15}, tool calls [], first chunk after",
        "session: 2 turns, 33 tokens, 1 handover(s), warm=False, ended with None;",
        # (the span tree is printed when opentelemetry-sdk is installed: the test extra has it)
        "traces:",
    ],
    "anyio_example.py": [
        "using the built-in fake Live server",
        "model: You said: first, from an anyio task",
        "model: You said: second, at the same time",
        "anyio deadline: cancelled_caught=True",
        "under asyncio: ConfigurationError: gemini_ws.Client runs on trio",
        "anyio.run(main, backend='trio')",
    ],
}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path: Path) -> None:
    expected = EXPECTED.get(path.name)
    assert expected, f"{path.name} has no expected output: add it to EXPECTED in {__file__}"
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    missing = [s for s in expected if s not in result.stdout]
    assert not missing, f"missing from the output: {missing}\n--- stdout ---\n{result.stdout}"


def test_there_are_examples() -> None:
    assert EXAMPLES


def test_every_expectation_has_an_example() -> None:
    names = {p.name for p in EXAMPLES}
    assert set(EXPECTED) <= names, f"expectations for missing examples: {set(EXPECTED) - names}"
