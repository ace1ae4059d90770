"""The ``gemini-ws`` command (also ``python -m gemini_ws``).

Subcommands:

- ``demo``: a short scripted session that shows what the library does (streaming, a tool call,
  pause/resume, cancel) and ends with a statistics table;
- ``chat``: an interactive chat that streams replies; Ctrl-C cancels the reply in progress;
- ``say TEXT --out reply.wav``: one spoken reply written as a WAV file;
- ``talk IN.wav --out reply.wav``: a WAV file streamed as realtime audio at real-time pace, both
  transcriptions printed as they arrive, the spoken reply written as a WAV file;
- ``fake-server``: the built-in fake Live server, standalone.

``demo``, ``chat``, ``say`` and ``talk`` run against the built-in fake Live server (in this
process, no key needed) unless ``--live`` is given, which uses the real Gemini Live API with the
key from ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``); ``--base-url`` points them at another
server.

Output: replies and results go to stdout; notices go to stderr; progress ("connecting...",
"waiting for the first chunk...") is shown on stderr only when it is a terminal, and is erased
once the wait is over. Bad input ends with one line ``gemini-ws: error: ...`` on stderr and exit
status 2 (usage: unknown option or command, missing key for ``--live``) or 1 (runtime: the server
refused the session, the host is unreachable, a file cannot be written). Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import signal
import ssl
import sys
import wave
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO

import trio

from . import audio
from ._client import Client
from ._errors import GeminiWSError, SetupRejectedError, leaves
from ._stream import LiveStream, SessionResumed, StreamStatistics
from ._types import FunctionCall, GoAway, LiveConfig, ServerContent, ServerMessage, ToolCall

__all__ = ["DEFAULT_MODEL", "main"]

PROG = "gemini-ws"
#: The model used when ``--model`` is not given.
DEFAULT_MODEL = "gemini-3.1-flash-live-preview"
KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
#: The key of a fake server started with its defaults (``gemini-ws fake-server``).
FAKE_SERVER_KEY = "test-key"
#: The Live API's output audio: 24 kHz, mono, 16-bit little-endian PCM.
OUTPUT_RATE = 24000
EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """The command line (or the environment it needs) is wrong: exit status 2."""


class CommandError(Exception):
    """A runtime failure with a message meant for the user: exit status 1."""


# --- output -----------------------------------------------------------------------------------


class _UI:
    """Where the command writes: results on stdout, notices and progress on stderr.

    Progress lines are transient (erased when the wait ends) and only shown on a terminal, so
    that piped output and error output stay clean.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self._progress_enabled = _isatty(err)
        self._progress_shown = False
        self.at_line_start = True

    def write(self, text: str) -> None:
        """Write result text to stdout at once (replies stream through here)."""
        if not text:
            return
        self.clear_progress()
        self._out.write(text)
        self._out.flush()
        self.at_line_start = text.endswith("\n")

    def line(self, text: str = "") -> None:
        """Write one full line of results to stdout."""
        self.write(text + "\n")

    def end_line(self) -> None:
        """Finish a partial stdout line, if there is one."""
        if not self.at_line_start:
            self.write("\n")

    def finish(self) -> None:
        """Before exiting on an error: erase progress, end a partial line; never raises."""
        try:
            self.clear_progress()
            self.end_line()
        except (OSError, ValueError):
            pass

    def note(self, text: str) -> None:
        """Write a notice line to stderr."""
        self.clear_progress()
        self._err.write(text + "\n")
        self._err.flush()

    def progress(self, text: str) -> None:
        """Show a transient progress line on stderr (terminals only)."""
        if not self._progress_enabled or not self.at_line_start:
            return
        self._err.write(f"\r\x1b[K{text}")
        self._err.flush()
        self._progress_shown = True

    def clear_progress(self) -> None:
        """Erase the progress line, if one is shown."""
        if self._progress_shown:
            self._progress_shown = False
            self._err.write("\r\x1b[K")
            self._err.flush()

    def prompt(self, text: str) -> None:
        """Show an input prompt on stderr when a person types on a terminal."""
        if _isatty(sys.stdin) and self._progress_enabled:
            self.clear_progress()  # not "connecting...you>"
            self._err.write(text)
            self._err.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# --- connecting -------------------------------------------------------------------------------


def _env_key() -> str | None:
    for name in KEY_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=args.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise CommandError(f"cannot load the CA file {args.ca_file}: {_os_reason(exc)}") from None


@asynccontextmanager
async def _open_client(
    args: argparse.Namespace,
    ui: _UI,
    *,
    chunk_interval: float,
    heartbeat_interval: float | None = 20.0,
    pool_size: int = 0,
) -> AsyncIterator[tuple[Client, str]]:
    """A Client for the backend the options choose, and a description of that backend.

    ``--live``: the real API (or ``--base-url``) with the key from the environment; else
    ``--base-url``: another server (a ``gemini-ws fake-server``) with ``--api-key``; else the
    built-in fake server, started here for the duration of the block.
    """
    ssl_context = _ssl_context(args)
    if args.live:
        key = _env_key()
        assert key is not None  # checked by _check_args
        where = (
            f"the server at {args.base_url}" if args.base_url else "the real Gemini Live API"
        )
        ui.progress(f"connecting to {where}...")
        async with Client(
            api_key=key,
            base_url=args.base_url,
            ssl_context=ssl_context,
            heartbeat_interval=heartbeat_interval,
            pool_size=pool_size,
        ) as client:
            yield client, where
        return
    if args.base_url:
        ui.progress(f"connecting to {args.base_url}...")
        async with Client(
            api_key=args.api_key or FAKE_SERVER_KEY,
            base_url=args.base_url,
            ssl_context=ssl_context,
            heartbeat_interval=heartbeat_interval,
            pool_size=pool_size,
        ) as client:
            yield client, f"the server at {args.base_url}"
        return
    from .testing import open_fake_server

    ui.progress("starting the built-in fake Live server...")
    interval = args.fake_chunk_interval if args.fake_chunk_interval is not None else chunk_interval
    async with open_fake_server(chunk_interval=interval, close_timeout=1.0) as server:
        ui.progress("connecting...")
        args.fake_server = server  # the demo uses it to send a goAway
        async with Client(
            api_key=server.api_key,
            base_url=server.url,
            heartbeat_interval=heartbeat_interval,
            pool_size=pool_size,
        ) as client:
            yield (
                client,
                f"the built-in fake Live server at {server.url} "
                "(no key needed; add --live to use the real API)",
            )


def _audio_mode(args: argparse.Namespace) -> bool:
    """AUDIO replies (shown through their transcription) or TEXT replies."""
    if getattr(args, "audio_out", None) is not None:
        return True
    if args.modality is not None:
        return bool(args.modality == "AUDIO")
    # The default live model answers in audio only; the fake answers whatever is asked.
    return bool(args.live)


def _config(
    audio: bool,
    *,
    system: str | None = None,
    tools: Sequence[dict[str, Any]] = (),
    resumable: bool = False,
) -> LiveConfig:
    options: dict[str, Any] = {"response_modalities": ["AUDIO" if audio else "TEXT"]}
    if audio:
        options["output_audio_transcription"] = {}
    if system:
        options["system_instruction"] = system
    if tools:
        options["tools"] = list(tools)
    if resumable:
        options["session_resumption"] = {}
    return LiveConfig(**options)


def _reply_text(message: ServerContent, audio: bool) -> str:
    """The text to show for one message: the text parts, or the audio's transcription."""
    if audio:
        transcription = message.output_transcription
        return (transcription.text or "") if transcription is not None else ""
    return message.text


def _is_chunk(message: ServerMessage) -> bool:
    """A message carrying model output (text or audio parts)."""
    return isinstance(message, ServerContent) and message.model_turn is not None


# --- statistics helpers -----------------------------------------------------------------------


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank *p*-th percentile of *samples* (which must not be empty)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.2f} MiB"


class _ChunkClock:
    """Arrival times of the chunks of each reply, as the application receives them."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._last: float | None = None

    def start_turn(self) -> None:
        self._last = None

    def chunk(self) -> None:
        now = trio.current_time()
        if self._last is not None:
            self.gaps.append(now - self._last)
        self._last = now


class _ReplyTiming:
    """Time to the first chunk of a reply and to its end, from when the prompt was sent."""

    def __init__(self) -> None:
        self.sent = trio.current_time()
        self.first: float | None = None

    def chunk(self) -> None:
        if self.first is None:
            self.first = trio.current_time()

    def summary(self) -> str:
        total = trio.current_time() - self.sent
        if self.first is None:
            return f"[no reply content; the turn ended after {_ms(total)}]"
        return f"[first chunk after {_ms(self.first - self.sent)}, whole reply {_ms(total)}]"


# --- demo -------------------------------------------------------------------------------------

_DEMO_TOOLS = [
    {
        "function_declarations": [
            {"name": "get_time", "description": "The current local time on the user's computer."}
        ]
    }
]


def _get_time(call: FunctionCall) -> dict[str, Any]:
    """The demo's local tool: the time on this computer."""
    return {"time": datetime.datetime.now().strftime("%H:%M:%S")}


async def _stream_turn(
    stream: LiveStream,
    ui: _UI,
    audio: bool,
    clock: _ChunkClock | None,
    *,
    tools: dict[str, Callable[[FunctionCall], Any]] | None = None,
) -> int:
    """Print the current reply as it arrives (answering tool calls); return its chunk count."""
    chunks = 0
    if clock is not None:
        clock.start_turn()
    ui.progress("waiting for the first chunk...")
    async for message in stream.turn():
        if isinstance(message, ToolCall):
            for call in message.function_calls:
                ui.end_line()
                ui.line(f"[tool call: {call.name}({_args(call)})]")
            results = {c.id or c.name: _run_tool(tools or {}, c) for c in message.function_calls}
            for call in message.function_calls:
                ui.line(f"[tool result, from a local function: {results[call.id or call.name]}]")
            await stream.send_tool_response(message, results)
            ui.progress("waiting for the reply to the tool result...")
            continue
        if not isinstance(message, ServerContent):
            continue
        if _is_chunk(message):
            chunks += 1
            if clock is not None:
                clock.chunk()
        text = _reply_text(message, audio)
        if text:
            if ui.at_line_start:
                ui.write("model: ")
            ui.write(text)
    ui.end_line()
    return chunks


def _run_tool(tools: dict[str, Callable[[FunctionCall], Any]], call: FunctionCall) -> Any:
    function = tools.get(call.name)
    if function is None:
        return {"error": f"no function called {call.name!r}"}
    return function(call)


def _args(call: FunctionCall) -> str:
    if not call.args:
        return ""
    return ", ".join(f"{k}={v!r}" for k, v in call.args.items())


async def _wait_first_text(stream: LiveStream, ui: _UI, audio: bool) -> bool:
    """Print the current reply until its first text (or transcription) has arrived; False if
    the reply ended first."""
    ui.progress("waiting for the first chunk...")
    async for message in stream.turn():
        if isinstance(message, ServerContent):
            text = _reply_text(message, audio)
            if text:
                ui.write("model: " if ui.at_line_start else "")
                ui.write(text)
                return True
    return False


async def _run_demo(args: argparse.Namespace, ui: _UI) -> int:
    audio = _audio_mode(args)
    config = _config(
        audio,
        system="You are a concise assistant. Answer in one or two sentences.",
        tools=_DEMO_TOOLS,
    )
    pause_for = 3.0 if args.live else 0.5
    clock = _ChunkClock()
    async with _open_client(
        args, ui, chunk_interval=0.05, heartbeat_interval=0.5, pool_size=1
    ) as (client, where):
        async with client.stream(args.model, config=config, reconnect=True) as s:
            setup = s.statistics().time_to_setup_complete
            ui.line(f"Connected to {where}.")
            kind = "AUDIO replies shown as their transcription" if audio else "TEXT replies"
            ui.line(f"Model {s.model}, {kind}; setupComplete after {_ms(setup)}.")

            ui.line("\n1. A reply, printed chunk by chunk as it streams in")
            prompt = "Hello! What can you do?"
            ui.line(f"you: {prompt}")
            await s.send_text(prompt)
            await _stream_turn(s, ui, audio, clock)

            ui.line("\n2. A tool call, answered by a local function")
            prompt = "What time is it? call get_time"
            ui.line(f"you: {prompt}")
            await s.send_text(prompt)
            await _stream_turn(s, ui, audio, clock, tools={"get_time": _get_time})

            ui.line("\n3. Pause and resume: nothing is lost or reordered")
            prompt = "Tell me a short fact about the sea."
            ui.line(f"you: {prompt}")
            await s.pause("receive")
            await s.send_text(prompt)
            ui.progress(f"receiving paused for {pause_for:.1f} s...")
            await trio.sleep(pause_for)
            held = s.statistics()
            ui.line(
                f"[receiving paused for {pause_for:.1f} s: {held.queued_to_deliver} messages "
                f"({_size(held.bytes_queued_to_deliver)}) arrived meanwhile and are held]"
            )
            await s.resume("receive")
            ui.line("[resumed: the held messages are delivered, in order]")
            await _stream_turn(s, ui, audio, None)  # arrival times are the pause's, not the net's

            ui.line("\n4. A goAway handover: the session moves to a new connection")
            await _demo_go_away(args, s, ui, audio, clock)

            ui.line("\n5. Cancel in the middle of a reply")
            prompt = "Count slowly from one to twenty."
            ui.line(f"you: {prompt}")
            await s.send_text(prompt)
            mid_reply = await _wait_first_text(s, ui, audio)
            await s.pause("send")  # hold the follow-up so that it is still queued at cancel()
            await s.send_text("And then from twenty back to one.")
            unsent = await s.cancel()
            ui.end_line()
            ui.line(
                f"[cancelled {'mid-reply' if mid_reply else 'after the reply'}: cancel() closed "
                f"the connection and reported {len(unsent)} queued message(s) that were never "
                "sent]"
            )
            stats = s.statistics()
    fake = getattr(args, "fake_server", None)
    _print_table(ui, stats, clock, where, fake.model.chunk_interval if fake is not None else None)
    return EXIT_OK


async def _demo_go_away(
    args: argparse.Namespace, s: LiveStream, ui: _UI, audio: bool, clock: _ChunkClock
) -> None:
    fake = getattr(args, "fake_server", None)
    if fake is None:
        ui.line("[skipped: the real service sends goAway only after about ten minutes]")
        return
    live = [c for c in fake.connections if c.setup is not None][-1]
    live.go_away(5.0)
    ui.progress("waiting for the goAway and the handover...")
    async for message in s:
        if isinstance(message, GoAway):
            ui.line(
                f"[goAway: the server will close this connection in "
                f"{message.time_left.total_seconds():g} s]"
            )
        elif isinstance(message, SessionResumed):
            source = "a warm spare" if message.warm else "a new connection"
            ui.line(
                f"[session resumed on {source} with the newest handle: nothing could be "
                f"delivered for {_ms(message.gap)}; {message.replayed} message(s) replayed]"
            )
            break
    prompt = "Do you still remember what I asked first?"
    ui.line(f"you: {prompt}")
    await s.send_text(prompt)
    await _stream_turn(s, ui, audio, clock)


def _print_table(
    ui: _UI,
    stats: StreamStatistics,
    clock: _ChunkClock,
    where: str,
    fake_interval: float | None,
) -> None:
    conn = stats.connection
    # the cancelled turn has a first chunk too, but no end: only completed turns are shown
    ttfc = stats.time_to_first_chunk[: stats.turns_completed]
    if clock.gaps:
        pacing = (
            "; the built-in server sends a chunk every "
            f"{_ms(fake_interval)}, so this is its pacing"
            if fake_interval is not None
            else "; mostly the server's pacing"
        )
        latency = (
            f"{_ms(percentile(clock.gaps, 50))} / {_ms(percentile(clock.gaps, 99))} "
            f"(time between chunks of a reply, n={len(clock.gaps)}{pacing})"
        )
    else:
        latency = "n/a (no reply had two chunks)"
    if conn.last_heartbeat_rtt is not None:
        heartbeat = (
            f"{_ms(conn.last_heartbeat_rtt)} (last of {conn.pongs_received} pongs to "
            f"{conn.pings_sent} pings)"
        )
    else:
        heartbeat = f"n/a (no pong yet; {conn.pings_sent} pings sent)"
    rows = [
        ("server", where.split(" (")[0]),
        ("time to setupComplete", _ms(stats.time_to_setup_complete)),
        (
            "time to first chunk",
            (", ".join(_ms(t) for t in ttfc) + " (per completed turn, from sending the turn)")
            if ttfc
            else "n/a",
        ),
        ("chunk spacing p50 / p99", latency),
        ("heartbeat RTT", heartbeat),
        ("messages sent / received", f"{stats.messages_sent} / {stats.messages_received}"),
        (
            "bytes sent / received",
            f"{_size(stats.bytes_sent)} / {_size(stats.bytes_received)} (WebSocket payloads)",
        ),
        (
            "goAway handovers",
            ", ".join(f"{_ms(g)} gap" for g in stats.handover_gaps) or "none",
        ),
        ("turns completed", str(stats.turns_completed)),
        ("time paused", f"{stats.time_paused:.2f} s"),
    ]
    width = max(len(label) for label, _ in rows)
    ui.line("\nStatistics")
    ui.line("-" * (width + 2 + 40))
    for label, value in rows:
        ui.line(f"{label:<{width}}  {value}")


# --- chat -------------------------------------------------------------------------------------


class _ChatState:
    def __init__(self) -> None:
        self.reply_scope: trio.CancelScope | None = None
        self.exit_code = EXIT_OK


async def _watch_sigint(
    signals: AsyncIterator[int], state: _ChatState, everything: trio.CancelScope
) -> None:
    """Ctrl-C during a reply cancels that reply; Ctrl-C otherwise (or a second one) exits."""
    async for _ in signals:
        scope = state.reply_scope
        if scope is not None and not scope.cancel_called:
            scope.cancel()
            continue
        state.exit_code = EXIT_INTERRUPTED
        everything.cancel()
        return


async def _read_line() -> str:
    line: str = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
    # bytes that are not UTF-8 (a pasted binary, a wrong locale) become U+FFFD, not a crash
    return line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _WavSink:
    """A 24 kHz mono 16-bit WAV file that PCM is appended to; valid after every append."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.frames = 0
        try:
            # Opened here rather than by wave.open(path): on Python 3.11 a failed
            # wave.open(path) also prints an "Exception ignored" traceback.
            self._raw = open(path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {_os_reason(exc)}") from None
        self._file: wave.Wave_write | None = wave.open(self._raw, "wb")  # noqa: SIM115
        self._file.setnchannels(1)
        self._file.setsampwidth(2)
        self._file.setframerate(OUTPUT_RATE)

    def append(self, pcm: bytes) -> None:
        if self._file is None or not pcm:
            return
        if len(pcm) % 2:
            pcm = pcm[:-1]
        try:
            self._file.writeframes(pcm)
        except OSError as exc:
            raise CommandError(f"cannot write {self.path}: {_os_reason(exc)}") from None
        self.frames += len(pcm) // 2

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()  # writes the final header; does not close self._raw
            except OSError as exc:
                raise CommandError(f"cannot write {self.path}: {_os_reason(exc)}") from None
            finally:
                self._raw.close()


async def _run_chat(args: argparse.Namespace, ui: _UI) -> int:
    audio = _audio_mode(args)
    sink = _WavSink(args.audio_out) if args.audio_out is not None else None
    state = _ChatState()
    try:
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_sigint, signals, state, nursery.cancel_scope)
                await _chat_sessions(args, ui, audio, sink, state)
                nursery.cancel_scope.cancel()
    finally:
        if sink is not None:
            sink.close()
    if state.exit_code == EXIT_INTERRUPTED:
        ui.end_line()
    elif sink is not None:
        ui.note(f"wrote {sink.path}: {sink.frames / OUTPUT_RATE:.2f} s of audio")
    return state.exit_code


async def _chat_sessions(
    args: argparse.Namespace, ui: _UI, audio: bool, sink: _WavSink | None, state: _ChatState
) -> None:
    """One session after another: a cancelled reply ends a session; the next one resumes the
    conversation (as of the last completed reply) when the server allows it."""
    config = _config(audio, system=args.system, resumable=True)
    # The built-in server takes about a second per reply (5 chunks, 0.2 s apart), so that
    # Ctrl-C during a reply can be tried; --fake-chunk-interval changes it.
    async with _open_client(args, ui, chunk_interval=0.2) as (client, where):
        handle: str | None = None
        first = True
        while True:
            ui.progress("connecting...")
            try:
                session = client.stream(args.model, config=config, resume_handle=handle)
                stream = await session.__aenter__()
            except SetupRejectedError:
                if handle is None:
                    raise
                ui.note("[could not resume the conversation; a new one starts]")
                handle = None
                continue
            try:
                if first:
                    first = False
                    kind = "spoken replies shown as their transcription" if audio else "text"
                    ui.note(
                        f"Chatting with {stream.model} on {where}, {kind}. Type a message; "
                        "Ctrl-C cancels a reply, Ctrl-D (end of input) or Ctrl-C when idle ends."
                    )
                ended = await _converse(stream, ui, audio, sink, state)
                if not ended:
                    await stream.cancel()
            except BaseException as exc:
                await session.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            await session.__aexit__(None, None, None)
            if ended:
                return
            handle = stream.resume_handle


async def _converse(
    stream: LiveStream, ui: _UI, audio: bool, sink: _WavSink | None, state: _ChatState
) -> bool:
    """Read prompts and stream replies; True at end of input, False after a cancelled reply."""
    while True:
        ui.prompt("you> ")
        line = await _read_line()
        if not line:
            return True
        prompt = line.strip()
        if not prompt:
            continue
        timing = _ReplyTiming()
        with trio.CancelScope() as scope:
            state.reply_scope = scope
            await stream.send_text(prompt)
            ui.progress("waiting for the first chunk...")
            async for message in stream.turn():
                if not isinstance(message, ServerContent):
                    continue
                if sink is not None:
                    sink.append(message.audio)
                text = _reply_text(message, audio)
                if text or message.audio:
                    timing.chunk()
                ui.write(text)
        state.reply_scope = None
        ui.end_line()
        if scope.cancelled_caught:
            ui.line("[reply cancelled]")
            return False
        ui.note(timing.summary())


# --- say --------------------------------------------------------------------------------------


async def _run_say(args: argparse.Namespace, ui: _UI) -> int:
    sink = _WavSink(args.out)
    done = False
    try:
        config = _config(True, system=args.system)
        async with _open_client(args, ui, chunk_interval=0.0) as (client, _where):
            async with client.stream(args.model, config=config) as s:
                timing = _ReplyTiming()
                await s.send_text(args.text)
                ui.progress("waiting for the first chunk...")
                async for message in s.turn():
                    if isinstance(message, ServerContent):
                        if message.audio:
                            timing.chunk()
                        sink.append(message.audio)
                        ui.write(_reply_text(message, True))
                ui.end_line()
                took = timing.summary()
        if sink.frames == 0:
            raise CommandError("the reply had no audio")
        sink.close()
        done = True
    finally:
        if not done:
            sink.close()
            _remove_partial(args.out)
    ui.note(
        f"wrote {args.out}: {sink.frames / OUTPUT_RATE:.2f} s of 24 kHz mono 16-bit audio "
        f"{took}"
    )
    return EXIT_OK


# --- talk -------------------------------------------------------------------------------------


class _TalkTimes:
    """When the input ended, and when reply audio first came after that (trio clock)."""

    def __init__(self) -> None:
        self.input_end: float | None = None
        self.first_audio: float | None = None
        self.audio_before_end = False


async def _run_talk(args: argparse.Namespace, ui: _UI) -> int:
    pcm = audio.read_wav(args.input)
    source = f"{pcm.duration:.2f} s at {pcm.sample_rate} Hz"
    pcm = pcm.to_input()
    if not pcm.data:
        raise CommandError(f"{args.input} holds no audio")
    config = LiveConfig(
        response_modalities=["AUDIO"],
        input_audio_transcription={},
        output_audio_transcription={},
        **({"system_instruction": args.system} if args.system else {}),
    )
    speed = math.inf if args.fast else args.speed
    times = _TalkTimes()
    done = False
    wav = audio.WavWriter(args.out)
    try:
        async with _open_client(args, ui, chunk_interval=0.05) as (client, where):
            async with client.stream(args.model, config=config) as s:
                if math.isinf(speed):
                    pace = "as fast as the connection takes it"
                else:
                    pace = "in real time" if speed == 1 else f"at {speed:g}x real time"
                ui.note(f"Streaming {args.input} ({source}) to {s.model} on {where}, {pace}.")
                with trio.fail_after(pcm.duration / min(speed, 1e9) + args.timeout):
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_talk_send, s, pcm, args, speed, ui, times)
                        await _talk_receive(s, ui, wav, times)
                        nursery.cancel_scope.cancel()
        if wav.bytes_written == 0:
            raise CommandError("the reply had no audio")
        done = True
    except trio.TooSlowError:
        raise CommandError(
            f"no complete reply within {args.timeout:g} s of the end of the input "
            "(--timeout sets the wait)"
        ) from None
    finally:
        wav.close()
        if not done:
            _remove_partial(args.out)
    if times.first_audio is not None and times.input_end is not None:
        first = f"first audio {_ms(times.first_audio - times.input_end)} after the input ended"
    else:
        first = "all of it came before the input ended"
    if times.audio_before_end and times.first_audio is not None:
        first += " (some came before it ended)"
    ui.note(
        f"wrote {args.out}: {wav.duration:.2f} s of 24 kHz mono 16-bit audio; {first}"
    )
    return EXIT_OK


async def _talk_send(
    s: LiveStream,
    pcm: audio.Pcm,
    args: argparse.Namespace,
    speed: float,
    ui: _UI,
    times: _TalkTimes,
) -> None:
    total = pcm.duration

    def shown(_sent: int, seconds: float) -> None:
        ui.progress(f"sending audio: {seconds:.2f} / {total:.2f} s")

    await audio.send_paced(s, pcm, chunk_ms=args.chunk_ms, speed=speed, on_chunk=shown)
    # With automatic activity detection the server would wait for more speech: the file is over.
    await s.send_audio_stream_end()
    times.input_end = trio.current_time()
    ui.progress("waiting for the reply...")


async def _talk_receive(
    s: LiveStream, ui: _UI, wav: audio.WavWriter, times: _TalkTimes
) -> None:
    """Print both transcriptions as they arrive and write the reply's audio, until the model
    is done after the end of the input (the first turnComplete after it, or on a thinking
    model the IDLE after that)."""
    speaker: str | None = None
    completed = False
    async for message in s:
        if not isinstance(message, ServerContent):
            continue
        heard = message.input_transcription
        if heard is not None and heard.text:
            if speaker != "you":
                ui.end_line()
                ui.write("you: ")
                speaker = "you"
            ui.write(heard.text)
        said = message.output_transcription
        if said is not None and said.text:
            if speaker != "model":
                ui.end_line()
                ui.write("model: ")
                speaker = "model"
            ui.write(said.text)
        if message.audio:
            if times.input_end is None:
                times.audio_before_end = True  # a reply to speech early in the file
            elif times.first_audio is None:
                times.first_audio = trio.current_time()
            wav.write(message.audio)
        if message.turn_complete and times.input_end is not None:
            completed = True
        if completed and (s.model_idle or message.waiting_for_input):
            ui.end_line()
            return


def _remove_partial(path: str) -> None:
    """Remove a WAV file left unfinished by a failed ``say``."""
    Path(path).unlink(missing_ok=True)


# --- fake-server ------------------------------------------------------------------------------


def _run_fake_server(args: argparse.Namespace) -> int:
    if args.tls:
        import importlib.util

        if importlib.util.find_spec("trustme") is None:
            raise CommandError("--tls needs the trustme package: pip install trustme")
    from .testing.__main__ import main as fake_main

    argv = [
        f"--host={args.host}",
        "--port", str(args.port),
        f"--api-key={args.api_key}",  # one token: a key starting with "-" is not an option
        "--chunk-count", str(args.chunk_count),
        "--chunk-interval", str(args.chunk_interval),
        "--first-chunk-delay", str(args.first_chunk_delay),
        "--default-modality", args.default_modality,
    ]  # fmt: skip
    if args.tls:
        argv.append("--tls")
    return fake_main(argv)


# --- argument parsing -------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is raised (and reported as one line) instead of printed."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a number >= 0: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535 (0 picks a free one): {text!r}")
    return value


def _build_parser() -> _Parser:
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="Try the Gemini Live API from a terminal, with gemini_ws. Without --live, "
        "everything runs against the built-in fake Live server (no key needed).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    common = _Parser(add_help=False)
    common.add_argument(
        "--live",
        action="store_true",
        help="use the real Gemini Live API; the key comes from GEMINI_API_KEY (or "
        "GOOGLE_API_KEY)",
    )
    common.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"the Live model (default: {DEFAULT_MODEL})"
    )
    common.add_argument(
        "--base-url",
        metavar="URL",
        help="connect here: with --live, another Live endpoint; without, a running fake server "
        "(see 'gemini-ws fake-server'), e.g. ws://127.0.0.1:8765",
    )
    common.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"the key of the --base-url fake server (default: {FAKE_SERVER_KEY}); the real "
        "API's key only ever comes from the environment",
    )
    common.add_argument(
        "--ca-file", metavar="PEM", help="trust this CA (e.g. a 'fake-server --tls' ca_file)"
    )
    # Development: pacing of the built-in fake server's replies (seconds between chunks).
    common.add_argument(
        "--fake-chunk-interval", type=_positive_float, default=None, help=argparse.SUPPRESS
    )
    modality = _Parser(add_help=False)
    modality.add_argument(
        "--modality",
        type=str.upper,
        choices=("TEXT", "AUDIO"),
        help="reply modality; AUDIO replies are shown as their transcription (default: AUDIO "
        "with --live, since the default model speaks only; TEXT otherwise)",
    )

    demo = commands.add_parser(
        "demo",
        parents=[common, modality],
        help="a short scripted session with a statistics table",
        description="A short scripted Live session: a streamed reply, a tool call answered by "
        "a local function, pause and resume, a cancel in the middle of a reply, then "
        "statistics.",
    )
    demo.set_defaults(run=_run_demo)

    chat = commands.add_parser(
        "chat",
        parents=[common, modality],
        help="interactive chat; Ctrl-C cancels a reply",
        description="Chat in the terminal; replies stream as they arrive. Reads lines from "
        "stdin (a pipe works too) until end of input. Ctrl-C during a reply cancels it; "
        "Ctrl-C when idle, or a second Ctrl-C, exits with status 130.",
    )
    chat.add_argument("--system", metavar="TEXT", help="a system instruction")
    chat.add_argument(
        "--audio-out",
        metavar="FILE.wav",
        help="ask for spoken replies (shown as their transcription) and append their audio "
        "to this 24 kHz mono 16-bit WAV file",
    )
    chat.set_defaults(run=_run_chat)

    say = commands.add_parser(
        "say",
        parents=[common],
        help="write one spoken reply to a WAV file",
        description="Send TEXT and write the model's spoken reply as a 24 kHz mono 16-bit WAV "
        "file (its transcription goes to stdout).",
    )
    say.add_argument("text", metavar="TEXT", help="what to say to the model")
    say.add_argument("--out", required=True, metavar="FILE.wav", help="the WAV file to write")
    say.add_argument("--system", metavar="TEXT", help="a system instruction")
    say.set_defaults(run=_run_say)

    talk = commands.add_parser(
        "talk",
        parents=[common],
        help="stream a WAV file as realtime audio and write the spoken reply",
        description="Stream IN.wav to the model as realtime audio (resampled to 16 kHz mono, "
        "in chunks at real-time pace), then audioStreamEnd; print what the model heard and "
        "what it said as the transcriptions arrive, and write its spoken reply to a 24 kHz "
        "mono 16-bit WAV file. Ends at the first turnComplete after the input.",
    )
    talk.add_argument("input", metavar="IN.wav", help="the audio to send (any PCM WAV file)")
    talk.add_argument("--out", required=True, metavar="FILE.wav", help="the WAV file to write")
    talk.add_argument("--system", metavar="TEXT", help="a system instruction")
    talk.add_argument(
        "--speed",
        type=_positive_float,
        default=1.0,
        help="pace of the upload: 1 is real time (default), 2 twice as fast",
    )
    talk.add_argument(
        "--fast", action="store_true", help="send as fast as the connection takes it"
    )
    talk.add_argument(
        "--chunk-ms",
        type=int,
        default=20,
        help="milliseconds of audio per message (default: 20; 20 to 40 suits the Live API)",
    )
    talk.add_argument(
        "--timeout",
        type=_positive_float,
        default=60.0,
        help="seconds to wait for the reply after the input (default: 60)",
    )
    talk.set_defaults(run=_run_talk)

    fake = commands.add_parser(
        "fake-server",
        help="serve the built-in fake Live server",
        description="Serve the fake Gemini Live server until Ctrl-C or SIGTERM. Prints its "
        "url and api_key (and ca_file with --tls), then 'ready'.",
    )
    fake.add_argument("--host", default="127.0.0.1", help="where to listen (default: 127.0.0.1)")
    fake.add_argument("--port", type=_port, default=0, help="0 (default) picks a free port")
    fake.add_argument("--tls", action="store_true", help="serve wss:// with a throwaway CA")
    fake.add_argument(
        "--api-key",
        default=FAKE_SERVER_KEY,
        help=f"the key it accepts (default: {FAKE_SERVER_KEY})",
    )
    fake.add_argument("--chunk-count", type=int, default=5, help="chunks per reply (default: 5)")
    fake.add_argument(
        "--chunk-interval", type=_positive_float, default=0.05, help="seconds between chunks"
    )
    fake.add_argument(
        "--first-chunk-delay", type=_positive_float, default=0.0, help="seconds before a reply"
    )
    fake.add_argument(
        "--default-modality",
        type=str.upper,
        choices=("TEXT", "AUDIO"),
        default="AUDIO",
        help="the modality when a setup names none (default: AUDIO)",
    )
    fake.set_defaults(run=None)
    return parser


def _check_args(args: argparse.Namespace) -> None:
    """Checks argparse cannot express; raise UsageError."""
    if args.command is None:
        raise UsageError("choose a command: demo, chat, say, talk or fake-server")
    if args.command == "fake-server":
        if args.chunk_count < 1:
            raise UsageError("--chunk-count must be at least 1")
        return
    if args.live:
        if _env_key() is None:
            raise UsageError("--live needs GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment")
        if args.api_key is not None:
            raise UsageError(
                "--api-key is for a --base-url fake server; with --live the key comes from "
                "GEMINI_API_KEY (or GOOGLE_API_KEY)"
            )
    elif args.api_key is not None and not args.base_url:
        raise UsageError("--api-key needs --base-url (the built-in fake server needs no key)")
    if args.ca_file is not None and not args.base_url:
        raise UsageError("--ca-file needs --base-url")
    if args.command == "talk":
        if args.fast and args.speed != 1.0:
            raise UsageError("--fast and --speed exclude each other")
        if not 10 <= args.chunk_ms <= 1000:
            raise UsageError("--chunk-ms must be between 10 and 1000")
    if getattr(args, "audio_out", None) is not None and args.modality == "TEXT":
        raise UsageError("--audio-out needs AUDIO replies, not --modality TEXT")


# --- entry point ------------------------------------------------------------------------------


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _error(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {_one_line(message)}\n")
    sys.stderr.flush()


def _describe(exc: BaseException) -> str | None:
    """The user-facing message for an expected failure, or None for a bug."""
    if isinstance(exc, CommandError):
        return str(exc)
    if isinstance(exc, GeminiWSError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{_os_reason(exc)}{where}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gemini-ws`` command with *argv* (default: ``sys.argv[1:]``); return the exit
    status: 0 on success, 1 on a runtime error, 2 on a usage error, 130 after Ctrl-C."""
    try:
        args = _build_parser().parse_args(argv)
        _check_args(args)
    except UsageError as exc:
        _error(f"{exc} (see '{PROG} --help')")
        return EXIT_USAGE
    ui = _UI(sys.stdout, sys.stderr)
    try:
        if args.run is None:
            return _run_fake_server(args)
        status: int = trio.run(args.run, args, ui)
        return status
    except KeyboardInterrupt:
        ui.finish()
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (e.g. piped into head): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_RUNTIME
    except BaseException as exc:
        ui.finish()
        real = [e for e in leaves(exc) if not isinstance(e, trio.Cancelled)]
        if real and all(isinstance(e, KeyboardInterrupt) for e in real):
            return EXIT_INTERRUPTED
        messages = [_describe(e) for e in real]
        if not messages or any(m is None for m in messages):
            raise
        text = messages[0] or ""
        if len(messages) > 1:
            text += f" (and {len(messages) - 1} more error(s))"
        _error(text)
        return EXIT_RUNTIME
