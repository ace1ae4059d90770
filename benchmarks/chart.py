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
COLOURS = {"gemini_ws": "#2b7bba", "raw trio-websocket": "#9e9e9e", "google-genai": "#e07b39"}


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
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))

    ax = axes[0]
    names = [r["contender"] for r in throughput]
    values = [r["chunks_per_s_median"] / 1000 for r in throughput]
    ax.bar(names, values, color=[COLOURS[n] for n in names])
    ax.set_title("Text chunks per second (thousands)\n20 turns x 1,000 chunks, TLS")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.1f}k", ha="center", va="bottom")

    ax = axes[1]
    names = [r["contender"] for r in realtime]
    values = [r["sessions_per_core_cpu"] for r in realtime]
    ax.bar(names, values, color=[COLOURS[n] for n in names])
    ax.set_title("Realtime audio sessions per core\n(40 ms chunks up and down, by CPU)")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.0f}", ha="center", va="bottom")

    ax = axes[2]
    for r in memory:
        samples = r["stream"]["samples"]
        ax.plot([s[0] for s in samples], [s[1] for s in samples], label=r["contender"],
                color=COLOURS[r["contender"]])
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
