"""The ``gemini-ws`` command, run as a user runs it: a subprocess, no key in the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import trio

from gemini_ws import Client, LiveConfig, ServerContent

CMD = [sys.executable, "-m", "gemini_ws"]
TIMEOUT = 15.0
KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run(
    *args: str, input: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CMD, *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env or clean_env(),
    )


def frames(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
        return w.getnframes()


class Reader:
    """Collects a pipe's output in a thread so that a test can wait for text with a bound."""

    def __init__(self, pipe: object) -> None:
        self._pipe = pipe
        self.text = ""
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fd = self._pipe.fileno()  # type: ignore[attr-defined]
        while data := os.read(fd, 4096):
            with self._changed:
                self.text += data.decode()
                self._changed.notify_all()

    def wait_for(self, needle: str, after: int = 0, timeout: float = TIMEOUT) -> int:
        """Wait until *needle* appears at or after offset *after*; return where it ends."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (at := self.text.find(needle, after)) < 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{needle!r} never came; output so far: {self.text!r}")
                self._changed.wait(left)
        return at + len(needle)

    def join(self) -> None:
        self._thread.join(TIMEOUT)


@pytest.fixture
def chat() -> Iterator[tuple[subprocess.Popen[bytes], Reader, Reader]]:
    """``gemini-ws chat`` with slow replies (0.2 s between chunks), driven through pipes."""
    with subprocess.Popen(
        [*CMD, "chat", "--fake-chunk-interval", "0.2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    ) as proc:
        out, err = Reader(proc.stdout), Reader(proc.stderr)
        try:
            yield proc, out, err
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(TIMEOUT)
            out.join()
            err.join()


def send_line(proc: subprocess.Popen[bytes], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line.encode() + b"\n")
    proc.stdin.flush()


# --- demo -----------------------------------------------------------------------------------


def test_demo_runs_the_scripted_session_and_prints_its_table() -> None:
    result = run("demo", "--fake-chunk-interval", "0.01")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "built-in fake Live server" in out
    assert "You said: Hello! What can you do?" in out
    assert "[tool call: get_time()]" in out
    assert 'Tool results: get_time={"time":' in out
    assert "arrived meanwhile and are held" in out
    assert "You said: Tell me a short fact about the sea." in out
    assert "[goAway: the server will close this connection in 5 s]" in out
    assert "[session resumed on a warm spare with the newest handle" in out
    assert "0 message(s) replayed]" in out
    assert "You said: Do you still remember what I asked first?" in out
    assert "reported 1 queued message(s) that were never sent" in out
    table = out[out.index("\nStatistics\n") :]
    for row in (
        "time to setupComplete",
        "time to first chunk",
        "chunk spacing p50 / p99",
        "the built-in server sends a chunk every 10.0 ms, so this is its pacing",
        "heartbeat RTT",
        "bytes sent / received",
        "goAway handovers",
    ):
        assert row in table
    # one time to first chunk per completed turn: the cancelled fifth turn is not among them
    rows = dict(line.split("  ", 1) for line in table.splitlines() if "  " in line)
    completed = int(rows["turns completed"].strip())
    assert completed == 4
    first_chunks = rows["time to first chunk"].split(" (")[0].split(", ")
    assert len(first_chunks) == completed, first_chunks
    assert "Traceback" not in result.stderr


# --- chat -----------------------------------------------------------------------------------


def test_chat_streams_replies_to_lines_from_stdin_and_ends_at_eof() -> None:
    result = run("chat", input="hello\n\nsecond line\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["You said: hello", "You said: second line"]
    assert "built-in fake Live server" in result.stderr
    # each reply's timing, on stderr so that piped output stays the replies alone
    timings = [line for line in result.stderr.splitlines() if line.startswith("[first chunk")]
    assert len(timings) == 2, result.stderr
    assert all("whole reply" in line for line in timings)


def test_chat_ctrl_c_cancels_the_reply_in_progress_and_keeps_chatting(
    chat: tuple[subprocess.Popen[bytes], Reader, Reader],
) -> None:
    proc, out, err = chat
    send_line(proc, "hello there")
    first = out.wait_for("You")  # the first chunk; four more follow, 0.2 s apart
    proc.send_signal(signal.SIGINT)
    end = out.wait_for("[reply cancelled]\n", first)
    assert "You said: hello there" not in out.text[:end]
    send_line(proc, "again")
    out.wait_for("You said: again\n", end)
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(TIMEOUT) == 0
    assert "Traceback" not in err.text


def test_chat_ctrl_c_while_idle_exits_130(
    chat: tuple[subprocess.Popen[bytes], Reader, Reader],
) -> None:
    proc, out, err = chat
    send_line(proc, "hi")
    out.wait_for("You said: hi\n")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(TIMEOUT) == 130
    assert "Traceback" not in err.text


def test_chat_audio_out_appends_every_reply_to_a_wav(tmp_path: Path) -> None:
    path = tmp_path / "chat.wav"
    result = run("chat", "--audio-out", str(path), input="hello\nbye\n")
    assert result.returncode == 0, result.stderr
    # The transcription of the spoken replies is shown as text.
    assert result.stdout.splitlines() == ["You said: hello", "You said: bye"]
    # The fake speaks 50 ms (1200 frames at 24 kHz) per character of its reply.
    assert frames(path) == 1200 * (len("You said: hello") + len("You said: bye"))


# --- say ------------------------------------------------------------------------------------


def test_say_writes_the_spoken_reply_as_a_wav(tmp_path: Path) -> None:
    path = tmp_path / "reply.wav"
    result = run("say", "Hi there", "--out", str(path))
    assert result.returncode == 0, result.stderr
    assert frames(path) == 1200 * len("You said: Hi there")
    assert "You said: Hi there" in result.stdout
    assert "[first chunk after" in result.stderr


# --- talk -----------------------------------------------------------------------------------


def write_wav(path: Path, seconds: float, rate: int, channels: int) -> None:
    import math
    import wave

    frames_ = bytearray()
    for i in range(int(seconds * rate)):
        value = int(6000 * math.sin(2 * math.pi * 220 * i / rate))
        sample = value.to_bytes(2, "little", signed=True)
        frames_ += sample * channels
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(frames_))


def test_talk_streams_a_wav_file_and_writes_the_spoken_reply(tmp_path: Path) -> None:
    source, reply = tmp_path / "question.wav", tmp_path / "reply.wav"
    write_wav(source, 1.5, 44100, 2)
    result = run("talk", str(source), "--out", str(reply), "--speed", "8")
    assert result.returncode == 0, result.stderr
    # What the fake heard: 1.5 s of 16 kHz mono (its transcript names the seconds it received)
    lines = result.stdout.splitlines()
    assert lines == ["you: [audio 1.50s]", "model: You said: [audio 1.50s]"], result.stdout
    # The reply: 24 kHz mono, 50 ms of speech per character of what the model said
    import wave

    with wave.open(str(reply), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24000, 1, 2)
        assert wav.getnframes() == 1200 * len("You said: [audio 1.50s]")
    assert "at 8x real time" in result.stderr
    assert "after the input ended" in result.stderr
    assert "Traceback" not in result.stderr


def test_talk_on_a_thinking_model_writes_the_whole_reply(tmp_path: Path) -> None:
    # gemini-3.8-live replies across two turnCompletes (interactionStatus IN_PROGRESS...IDLE)
    source, reply = tmp_path / "q.wav", tmp_path / "r.wav"
    write_wav(source, 0.5, 16000, 1)
    result = run("talk", str(source), "--out", str(reply), "--fast", "--model", "gemini-3.8-live")
    assert result.returncode == 0, result.stderr
    assert "model: You said: [audio 0.50s]" in result.stdout
    assert frames(reply) == 1200 * len("You said: [audio 0.50s]")


def test_talk_in_real_time_takes_as_long_as_the_audio(tmp_path: Path) -> None:
    import time

    source, reply = tmp_path / "q.wav", tmp_path / "r.wav"
    write_wav(source, 1.0, 16000, 1)
    start = time.monotonic()
    result = run("talk", str(source), "--out", str(reply))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start >= 1.0  # paced like a microphone, not dumped at once
    assert "you: [audio 1.00s]" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["talk", "{tmp}/none.wav", "--out", "{tmp}/r.wav"], 1, "none.wav"),
        (["talk", "{tmp}/not-a-wav.wav", "--out", "{tmp}/r.wav"], 1, "not-a-wav.wav"),
        (["talk", "{tmp}/q.wav", "--out", "{tmp}/r.wav", "--fast", "--speed", "2"], 2, "--fast"),
        (["talk", "{tmp}/q.wav", "--out", "{tmp}/r.wav", "--chunk-ms", "5"], 2, "--chunk-ms"),
        (["talk", "{tmp}/q.wav"], 2, "--out"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_talk_bad_input_gives_one_error_line(
    args: Sequence[str], code: int, says: str, tmp_path: Path
) -> None:
    write_wav(tmp_path / "q.wav", 0.2, 16000, 1)
    (tmp_path / "not-a-wav.wav").write_bytes(b"RIFF....not really")
    result = run(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    line = assert_one_error_line(result, code)
    assert says in line
    assert not (tmp_path / "r.wav").exists()


# --- fake-server ----------------------------------------------------------------------------


async def one_turn(url: str, key: str) -> str:
    async with Client(api_key=key, base_url=url) as client:
        config = LiveConfig(response_modalities=["TEXT"])
        async with client.stream("gemini-3.1-flash-live-preview", config=config) as s:
            await s.send_text("ping")
            return "".join([m.text async for m in s.turn() if isinstance(m, ServerContent)])


def test_fake_server_serves_clients_until_terminated() -> None:
    with subprocess.Popen(
        [*CMD, "fake-server", "--port", "0", "--api-key", "cli-test-key"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    ) as proc:
        out = Reader(proc.stdout)
        try:
            out.wait_for("ready\n")
            fields = dict(line.split(": ", 1) for line in out.text.splitlines() if ": " in line)
            assert fields["api_key"] == "cli-test-key"
            assert fields["url"].startswith("ws://127.0.0.1:")
            assert trio.run(one_turn, fields["url"], fields["api_key"]) == "You said: ping"
            proc.terminate()
            assert proc.wait(TIMEOUT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(TIMEOUT)
            out.join()


# --- bad input --------------------------------------------------------------------------------


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gemini-ws: error: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == code
    return lines[0]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        ([], 2, "choose a command"),
        (["--bogus"], 2, "--bogus"),
        (["demo", "--bogus"], 2, "--bogus"),
        (["no-such-command"], 2, "no-such-command"),
        (["say", "hi"], 2, "--out"),
        (["demo", "--live"], 2, "GEMINI_API_KEY"),
        (["chat", "--api-key", "k"], 2, "--base-url"),
        (["demo", "--model", "no-such-model"], 1, "no-such-model is not found"),
        (["demo", "--base-url", "ws://127.0.0.1:1"], 1, "refused"),
        (["say", "hi", "--out", "{tmp}/missing/reply.wav"], 1, "No such file or directory"),
        (["chat", "--audio-out", "{tmp}/missing/chat.wav"], 1, "No such file or directory"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_input_gives_one_error_line(
    args: Sequence[str], code: int, says: str, tmp_path: Path
) -> None:
    result = run(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    line = assert_one_error_line(result, code)
    assert says in line
    assert not list(tmp_path.rglob("*.wav"))


def test_the_api_key_is_never_printed() -> None:
    key = "AIzaSyCLI-TEST-KEY-never-printed-0123456789"
    result = run(
        "demo", "--live", "--base-url", "ws://127.0.0.1:1", env=clean_env(GEMINI_API_KEY=key)
    )
    assert_one_error_line(result, 1)
    assert key not in result.stdout + result.stderr


def test_chat_survives_input_that_is_not_utf8() -> None:
    result = subprocess.run(
        [*CMD, "chat"], input=b"hi\n\xff\nbye\n", capture_output=True, timeout=TIMEOUT,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    assert b"You said: bye" in result.stdout


def test_fake_server_key_that_starts_with_a_dash() -> None:
    proc = subprocess.Popen(
        [*CMD, "fake-server", "--port", "0", "--api-key=-x"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert lines[1].strip() == "api_key: -x"
