"""Decode cost of gemini_ws._wire.decode next to a bare json.loads of the same frames.

Usage: python benchmarks/bench_decode.py [--quick] [--rounds N] [--output PATH]

Frames (as the server sends them: pretty-printed JSON in binary frames):
- text:  {"serverContent": {"modelTurn": {"parts": [{"text": "..."}]}}}
- audio: the same with one inlineData part holding 40 ms of 24 kHz 16-bit PCM
  (1920 bytes, base64 in the JSON)

- turn:  {"serverContent": {"turnComplete": true}} with the turn's usageMetadata beside it
- transcription: {"serverContent": {"outputTranscription": {"text": "..."}}}
- tool:  a toolCall with one function call and its arguments
- resumption: a sessionResumptionUpdate with a handle

Contenders: json.loads, orjson.loads, gemini_ws decode (what a stream uses), and "cattrs
hooks": the same decode without the hand-written fast path, i.e. the cattrs-generated hooks
alone. The rule the codec follows: a hand-written fast path only for a message where the
cattrs hooks cost more than 1.5x a bare orjson.loads *and* that message comes at streaming
rate (the text and audio chunks); the table prints the ratio for every frame.

A second table times building one streamed text chunk's objects (ServerContent, Content and
Part) three ways: what the fast path does (the dict classes' instance dicts filled), the same
classes rebuilt as frozen *slotted* attrs classes with every slot set through its descriptor,
and those slotted classes' own ``__init__``. It is why those models are dict classes.

For each frame the contenders run in alternating rounds (json.loads, orjson.loads if
installed, decode, decode, ... in a rotating order) so that drift affects them alike; each
round times a batch of calls and the table reports the median rate over the rounds and the
ratio of decode's time per message to json.loads's. The goal set by the foundation issue is
a ratio of at most 2.0. This is a measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import micro_arguments

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


def turn_frame() -> bytes:
    obj = {
        "serverContent": {"turnComplete": True},
        "usageMetadata": {
            "promptTokenCount": 515,
            "responseTokenCount": 38,
            "totalTokenCount": 553,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 515}],
        },
    }
    return json.dumps(obj).encode("utf-8")


def transcription_frame() -> bytes:
    obj = {"serverContent": {"outputTranscription": {"text": " a few words of"}}}
    return json.dumps(obj).encode("utf-8")


def tool_frame() -> bytes:
    obj = {
        "toolCall": {
            "functionCalls": [
                {"id": "call-1", "name": "get_weather", "args": {"city": "Paris", "days": 3}}
            ]
        }
    }
    return json.dumps(obj).encode("utf-8")


def resumption_frame() -> bytes:
    obj = {"sessionResumptionUpdate": {"newHandle": "h" * 64, "resumable": True}}
    return json.dumps(obj).encode("utf-8")


def _cattrs_only(frame: bytes) -> Any:
    """decode without its fast path: the cattrs-generated hooks alone."""
    return _wire._decode_object(_wire._load_object(frame), frame)


def _slotted_twin(cls: type) -> type:
    """*cls* as a frozen slotted attrs class with the same fields and defaults."""
    import attrs

    fields = {a.name: attrs.field(default=a.default, kw_only=a.kw_only) for a in attrs.fields(cls)}
    return attrs.make_class(cls.__name__ + "Slotted", fields, frozen=True, slots=True)


def construction_contenders() -> dict[str, Callable[[Any], Any]]:
    """Three ways to build the objects of one text chunk (the argument is the text)."""
    import attrs

    from gemini_ws._types import Content, Part

    twins = {cls: _slotted_twin(cls) for cls in (ServerContent, Content, Part)}
    new = object.__new__

    def slot_builder(cls: type) -> Callable[..., Any]:
        twin = twins[cls]
        defaults = [(getattr(twin, a.name).__set__, a.name, a.default) for a in attrs.fields(twin)]

        def build(**values: Any) -> Any:
            obj = new(twin)
            for set_slot, name, default in defaults:
                set_slot(obj, values.get(name, default))
            return obj

        return build

    slot_sc, slot_content, slot_part = (slot_builder(c) for c in (ServerContent, Content, Part))
    init_sc, init_content, init_part = (twins[c] for c in (ServerContent, Content, Part))

    def dict_fill(text: Any) -> Any:
        return _wire._make_server_content(
            {"model_turn": _wire._make_content((_wire._make_text_part(text),), None)}
        )

    def slots_fill(text: Any) -> Any:
        return slot_sc(model_turn=slot_content(parts=(slot_part(text=text),)))

    def slots_init(text: Any) -> Any:
        return init_sc(model_turn=init_content(parts=(init_part(text=text),)))

    assert dict_fill("x").text == "x"
    return {"dict fill (used)": dict_fill, "slots, descriptors": slots_fill,
            "slots, __init__": slots_init}


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
    args, rounds = micro_arguments("decode", __doc__.splitlines()[0], argv)
    batch = 2_000 if args.quick else 20_000

    frames = {
        "text": text_frame(),
        "audio": audio_frame(),
        "turn": turn_frame(),
        "transcription": transcription_frame(),
        "tool": tool_frame(),
        "resumption": resumption_frame(),
    }
    # sanity: decode really decodes these frames
    msg = _wire.decode(frames["audio"])
    assert isinstance(msg, ServerContent) and len(msg.audio) == 1920
    assert _wire.decode(frames["text"]).text == TEXT  # type: ignore[union-attr]
    for frame in frames.values():  # the fast path and the hooks build the same messages
        assert _wire.decode(frame) == _cattrs_only(frame)

    contenders: dict[str, Callable[[Any], Any]] = {"json.loads": json.loads}
    if orjson is not None:
        contenders["orjson.loads"] = orjson.loads
    contenders["gemini_ws decode"] = _wire.decode
    contenders["cattrs hooks"] = _cattrs_only

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
        f"{'frame':13} {'bytes':>6}  {'contender':18} {'msgs/s':>12} {'us/msg':>8} "
        f"{'vs json':>8} {'vs orjson':>9}"
    )
    print(header)
    print("-" * len(header))
    for fname, frame in frames.items():
        samples = measure(frame, contenders, rounds, batch)
        medians = {name: statistics.median(s) for name, s in samples.items()}
        base = medians["json.loads"]
        obase = medians.get("orjson.loads", base)
        entry: dict[str, Any] = {"bytes": len(frame), "contenders": {}}
        for name, per_call in medians.items():
            ratio = per_call / base
            entry["contenders"][name] = {
                "median_us_per_msg": per_call * 1e6,
                "median_msgs_per_s": 1 / per_call,
                "ratio_vs_json_loads": ratio,
                "ratio_vs_orjson_loads": per_call / obase,
                "samples_us": [s * 1e6 for s in samples[name]],
            }
            print(
                f"{fname:13} {len(frame):6}  {name:18} {1 / per_call:12,.0f} "
                f"{per_call * 1e6:8.2f} {ratio:7.2f}x {per_call / obase:8.2f}x"
            )
        entry["decode_ratio_vs_json_loads"] = medians["gemini_ws decode"] / base
        entry["cattrs_ratio_vs_orjson_loads"] = medians["cattrs hooks"] / obase
        results["frames"][fname] = entry
    print()
    print("building one text chunk's objects (ServerContent > Content > Part):")
    builders = construction_contenders()
    samples = measure(TEXT, builders, rounds, batch)  # type: ignore[arg-type]
    medians = {name: statistics.median(s) for name, s in samples.items()}
    base = medians["dict fill (used)"]
    results["construction"] = {}
    for name, per_call in medians.items():
        results["construction"][name] = {"median_us": per_call * 1e6, "ratio": per_call / base}
        print(f"  {name:20} {per_call * 1e6:8.2f} us  {per_call / base:5.2f}x")
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
