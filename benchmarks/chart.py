"""Draw docs/_static/benchmarks.png from benchmarks/results/*.json (the full runs).

``python benchmarks/chart.py`` needs matplotlib, which is not a dependency of gemini_ws:
install it by hand (``pip install matplotlib``) to redraw the chart; ``nox -s bench`` skips
this step when it is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUT = HERE.parent / "docs" / "_static" / "benchmarks.png"
COLOURS = {"gemini_ws": "#2b7bba", "gemini_ws (trio-websocket)": "#7fb3dc",
           "gemini_ws (audio.Pacer)": "#4f95cc",
           "raw trio-websocket": "#9e9e9e", "google-genai": "#e07b39",
           "bare trio (floor)": "#cfcfcf", "bare websockets-asyncio (floor)": "#e0e0e0"}


def short(name: str) -> str:
    return {"raw trio-websocket": "raw\ntrio-ws",
            "gemini_ws (trio-websocket)": "gemini_ws\n(trio-ws)",
            "gemini_ws (audio.Pacer)": "gemini_ws\n(audio.Pacer)",
            "google-genai": "google-\ngenai", "bare trio (floor)": "bare trio\n(floor)",
            "bare websockets-asyncio (floor)": "bare ws\n(floor)"}.get(name, name)


def load(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((RESULTS / f"{name}.json").read_text())


def main() -> int:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("chart.py: matplotlib is not installed; chart not redrawn", file=sys.stderr)
        return 0
    throughput = load("throughput")["results"]
    realtime = load("realtime")["results"]
    memory = load("memory")["results"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))

    ax = axes[0]
    names = [r["contender"] for r in throughput]
    values = [1000 / r["cpu_us_per_chunk_median"] for r in throughput]
    ax.bar([short(n) for n in names], values, color=[COLOURS.get(n, "#bbbbbb") for n in names])
    ax.set_title("Text chunks received per CPU-second\n(thousands; TLS, full speed)")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.0f}k", ha="center", va="bottom")

    ax = axes[1]
    names = [r["contender"] for r in realtime]
    values = [r["sessions_per_core_cpu"] for r in realtime]
    ax.bar([short(n) for n in names], values, color=[COLOURS.get(n, "#bbbbbb") for n in names])
    ax.set_title("Realtime audio sessions per core\n(20 ms chunks up and down, by CPU)")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.0f}", ha="center", va="bottom")

    ax = axes[2]
    for r in memory:
        samples = r["stream"]["samples"]
        ax.plot([s[0] for s in samples], [s[1] for s in samples], label=r["contender"],
                color=COLOURS.get(r["contender"], "#bbbbbb"))
    ax.set_title("RSS (MiB), one stream carrying\n1 GiB of audio")
    ax.set_xlabel("MiB carried")
    ax.set_ylim(bottom=0)
    ax.legend()
    for ax in axes[:2]:
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=90)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
