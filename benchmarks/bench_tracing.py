"""The receiver's cost per received chunk with tracing off and on (and with a metrics callback).

Usage: python benchmarks/bench_tracing.py [--quick] [--rounds N] [--output PATH]

What is timed is the receiver task's CPU work per frame, without the socket and the queue:
``decode(frame)`` then ``SessionRunner._observe(message)`` (where the observer of
gemini_ws._metrics sees every message), over model turns of text chunks, every turn opened by
the write of a text request (``StreamObserver.on_write``) and closed by a ``turnComplete``
frame with ``usageMetadata`` as the fake server sends it. Two shapes of turn:

- ``long``: 1000 chunks a turn, so the figure is the cost of one chunk in the middle of a turn
  (what an audio reply mostly is: 25 chunks a second);
- ``short``: 20 chunks a turn, so the per-turn work (a turn span started and ended, a
  TurnMetrics built) is spread over 21 frames; ``per turn`` is that work, derived from the two.

Contenders, in alternating rounds (median of the rounds):

- ``off``: no metrics callback, tracing off (the runner's observer is None);
- ``tracing on``: ``gemini_ws.telemetry.instrument()`` with opentelemetry-sdk's TracerProvider
  and a SimpleSpanProcessor over an exporter that drops the spans (the span work is real, the
  export is not measured: a BatchSpanProcessor exports in a thread of its own anyway);
- ``metrics on``: a no-op sync ``metrics=`` callback, tracing off.

Without opentelemetry-sdk the ``tracing on`` row is skipped. This is a measurement, not a test.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import trio
from _common import micro_arguments

from gemini_ws import _wire, telemetry
from gemini_ws._metrics import MetricsSink, StreamObserver
from gemini_ws._runner import SessionRunner, StreamOptions
from gemini_ws._types import RealtimeInput, Setup

MODEL = "models/gemini-3.1-flash-live-preview"
SHAPES = {"long": 1000, "short": 20}  # chunks per turn
TEXT = "Sure! Here is a short answer to your question, streamed as one of many small chunks."


def frames(chunks: int) -> list[bytes]:
    chunk = {"serverContent": {"modelTurn": {"parts": [{"text": TEXT}]}}}
    end = {
        "serverContent": {"turnComplete": True},
        "usageMetadata": {
            "promptTokenCount": 120,
            "responseTokenCount": 420,
            "totalTokenCount": 540,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}],
            "responseTokensDetails": [{"modality": "TEXT", "tokenCount": 420}],
        },
    }
    encoded = [json.dumps(chunk, indent=2).encode()] * chunks
    return [*encoded, json.dumps(end, indent=2).encode()]


REQUEST = RealtimeInput(text="tell me more")


def runner_for(kind: str, nursery: trio.Nursery) -> SessionRunner:
    runner = SessionRunner(Setup(model=MODEL), StreamOptions(), pool=None)  # type: ignore[arg-type]
    now = trio.current_time()
    if kind == "tracing on":
        runner.observer = StreamObserver(
            MODEL, now, sink=None, tracer=telemetry.session_tracer(MODEL, now)
        )
    elif kind == "metrics on":
        sink = MetricsSink(lambda item: None, nursery)
        runner.observer = StreamObserver(MODEL, now, sink=sink, tracer=None)
    return runner


def time_turns(runner: SessionRunner, turn: Sequence[bytes], turns: int) -> float:
    """Seconds per frame over *turns* turns."""
    decode = _wire.decode
    observe = runner._observe
    observer = runner.observer
    start = time.perf_counter()
    for _ in range(turns):
        if observer is not None:  # as SessionRunner._write does, once per request
            observer.on_write(REQUEST, trio.current_time())
        for frame in turn:
            observe(decode(frame))
    return (time.perf_counter() - start) / (turns * len(turn))


async def measure(
    kinds: list[str], rounds: int, frames_per_round: int
) -> dict[str, dict[str, list[float]]]:
    """Seconds per frame: shape -> contender -> one sample per round."""
    samples: dict[str, dict[str, list[float]]] = {}
    async with trio.open_nursery() as nursery:
        for shape, chunks in SHAPES.items():
            turn = frames(chunks)
            turns = max(1, frames_per_round // len(turn))
            runners = {kind: runner_for(kind, nursery) for kind in kinds}
            for kind in kinds:  # warm up
                time_turns(runners[kind], turn, turns // 10 + 1)
            got = samples[shape] = {kind: [] for kind in kinds}
            for r in range(rounds):
                order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
                for kind in order:
                    got[kind].append(time_turns(runners[kind], turn, turns))
    return samples


def install_tracing() -> str | None:
    """Instrument with an SDK provider whose exporter drops everything; why not, if not."""
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )
    except ImportError:
        return "opentelemetry-sdk is not installed (pip install opentelemetry-sdk)"

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Drop()))
    telemetry.instrument(provider)
    return None


def main(argv: list[str] | None = None) -> int:
    args, rounds = micro_arguments("tracing", __doc__.splitlines()[0], argv)
    frames_per_round = 4_000 if args.quick else 40_000

    kinds = ["off", "tracing on", "metrics on"]
    missing = install_tracing()
    if missing is not None:
        print(f"tracing on: skipped, {missing}")
        kinds.remove("tracing on")
    samples = trio.run(measure, kinds, rounds, frames_per_round)
    telemetry.uninstrument()
    medians = {
        shape: {kind: statistics.median(s) for kind, s in by_kind.items()}
        for shape, by_kind in samples.items()
    }
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "rounds": rounds,
        "frames_per_round": frames_per_round,
        "chunks_per_turn": SHAPES,
        "shapes": {},
    }
    header = f"{'turns':14} {'contender':12} {'us/chunk':>9} {'vs off':>7} {'us/turn':>9}"
    print(header)
    print("-" * len(header))
    for shape, by_kind in medians.items():
        base = by_kind["off"]
        entry = results["shapes"][shape] = {}
        for kind, per_frame in by_kind.items():
            ratio = per_frame / base
            # the extra work per turn: what the short turns cost more per frame than the long
            # ones, over the frames of a short turn
            per_turn = (
                (per_frame - base - (medians["long"][kind] - medians["long"]["off"]))
                * (SHAPES["short"] + 1)
                if shape == "short"
                else None
            )
            shown = f"{per_turn * 1e6:9.1f}" if per_turn is not None and kind != "off" else ""
            label = f"{shape} ({SHAPES[shape]})"
            print(f"{label:14} {kind:12} {per_frame * 1e6:9.2f} {ratio:6.3f}x {shown:>9}")
            entry[kind] = {
                "median_us_per_chunk": per_frame * 1e6,
                "ratio_vs_off": ratio,
                "extra_us_per_turn": per_turn * 1e6 if per_turn is not None else None,
                "samples_us": [x * 1e6 for x in samples[shape][kind]],
            }
    print()
    print(
        f"decode + observe per received frame (turns of N chunks + a turnComplete); median of "
        f"{rounds} alternating rounds of {frames_per_round} frames"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
