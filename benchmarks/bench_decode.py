"""Decode throughput of gemini_ws._wire.decode next to a bare json.loads of the same frames.

Usage: python benchmarks/bench_decode.py [--quick] [--rounds N] [--output PATH]

Frames (as the server sends them: pretty-printed JSON in binary frames):
- text:  {"serverContent": {"modelTurn": {"parts": [{"text": "..."}]}}}
- audio: the same with one inlineData part holding 40 ms of 24 kHz 16-bit PCM
  (1920 bytes, base64 in the JSON)

For each frame the contenders run in alternating rounds (json.loads, orjson.loads if
installed, decode, decode, ... in a rotating order) so that drift affects them alike; each
round times a batch of calls and the table reports the median rate over the rounds and the
ratio of decode's time per message to json.loads's. The goal set by the foundation issue is
a ratio of at most 2.0. This is a measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gemini_ws import _wire
from gemini_ws._types import ServerContent

try:
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

TEXT = "Sure! Here is a short answer to your question, streamed as one of many small chunks."


def text_frame() -> bytes:
    obj = {"serverContent": {"modelTurn": {"parts": [{"text": TEXT}]}}}
    return json.dumps(obj, indent=2).encode("utf-8")


def audio_frame() -> bytes:
    import base64

    pcm = os.urandom(1920)  # 40 ms of 24 kHz 16-bit mono PCM
    obj = {
        "serverContent": {
            "modelTurn": {
                "parts": [
                    {
                        "inlineData": {
                            "mimeType": "audio/pcm;rate=24000",
                            "data": base64.b64encode(pcm).decode("ascii"),
                        }
                    }
                ]
            }
        }
    }
    return json.dumps(obj, indent=2).encode("utf-8")


def time_batch(fn: Callable[[Any], Any], frame: bytes, n: int) -> float:
    """Seconds per call, over one batch of n calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn(frame)
    return (time.perf_counter() - start) / n


def measure(
    frame: bytes, contenders: dict[str, Callable[[Any], Any]], rounds: int, batch: int
) -> dict[str, list[float]]:
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm up
        time_batch(contenders[name], frame, batch // 10 + 1)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            samples[name].append(time_batch(contenders[name], frame, batch))
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few short rounds (smoke run)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="default: benchmarks/results/decode.json (decode-quick.json with --quick)",
    )
    args = parser.parse_args(argv)
    if args.output is None:
        name = "decode-quick.json" if args.quick else "decode.json"
        args.output = Path(__file__).resolve().parent / "results" / name
    rounds = args.rounds or (5 if args.quick else 21)
    batch = 2_000 if args.quick else 20_000

    frames = {"text": text_frame(), "audio": audio_frame()}
    # sanity: decode really decodes these frames
    msg = _wire.decode(frames["audio"])
    assert isinstance(msg, ServerContent) and len(msg.audio) == 1920
    assert _wire.decode(frames["text"]).text == TEXT  # type: ignore[union-attr]

    contenders: dict[str, Callable[[Any], Any]] = {"json.loads": json.loads}
    if orjson is not None:
        contenders["orjson.loads"] = orjson.loads
    contenders["gemini_ws decode"] = _wire.decode

    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "orjson": _wire.USING_ORJSON,
        "pybase64": _wire.USING_PYBASE64,
        "rounds": rounds,
        "batch": batch,
        "frames": {},
    }
    header = (
        f"{'frame':6} {'bytes':>6}  {'contender':18} {'msgs/s':>12} {'us/msg':>8} {'vs json':>8}"
    )
    print(header)
    print("-" * len(header))
    for fname, frame in frames.items():
        samples = measure(frame, contenders, rounds, batch)
        medians = {name: statistics.median(s) for name, s in samples.items()}
        base = medians["json.loads"]
        entry: dict[str, Any] = {"bytes": len(frame), "contenders": {}}
        for name, per_call in medians.items():
            ratio = per_call / base
            entry["contenders"][name] = {
                "median_us_per_msg": per_call * 1e6,
                "median_msgs_per_s": 1 / per_call,
                "ratio_vs_json_loads": ratio,
                "samples_us": [s * 1e6 for s in samples[name]],
            }
            print(
                f"{fname:6} {len(frame):6}  {name:18} {1 / per_call:12,.0f} "
                f"{per_call * 1e6:8.2f} {ratio:7.2f}x"
            )
        entry["decode_ratio_vs_json_loads"] = medians["gemini_ws decode"] / base
        results["frames"][fname] = entry
    print()
    print(
        f"orjson: {'yes' if _wire.USING_ORJSON else 'no'}, "
        f"pybase64: {'yes' if _wire.USING_PYBASE64 else 'no'}; "
        f"median of {rounds} alternating rounds of {batch} messages each (target: decode <= 2x)"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
