"""PNG plots of a benchmark run: latency distribution per mode, speed-up per task."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evals.bench import TaskResult


def plot(results: list[TaskResult], out: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    modes = [m for m in ("sequential", "async", "speculative") if any(r.mode == m for r in results)]
    latencies = {m: [t.to_first_token_s for r in results if r.mode == m for t in r.turns
                     if t.to_first_token_s is not None] for m in modes}
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot([latencies[m] for m in modes], showfliers=False)
    ax.set_xticks(range(1, len(modes) + 1), modes)
    ax.set_ylabel("end of speech to first answer token (s)")
    ax.set_title(f"{title}: latency per turn")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    paths.append(out / "latency_by_mode.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    if "sequential" in modes and "speculative" in modes:
        def mean_latency(result: TaskResult) -> float | None:
            values = [t.to_first_token_s for t in result.turns if t.to_first_token_s is not None]
            return sum(values) / len(values) if values else None

        by_task = {(r.task, r.mode): mean_latency(r) for r in results}
        pairs = [(by_task.get((task, "sequential")), by_task.get((task, "speculative")))
                 for task in {r.task for r in results}]
        speedups = sorted(seq / spec for seq, spec in pairs if seq and spec)
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(range(len(speedups)), speedups, marker=".", linestyle="none")
        ax.axhline(1.0, color="gray", linewidth=0.8)
        ax.set_xlabel("tasks, sorted")
        ax.set_ylabel("speed-up, speculative vs sequential")
        ax.set_title(f"{title}: speed-up per task")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        paths.append(out / "speedup_per_task.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
