"""SimplerEnv's visual-matching protocol, independent of how an episode is run (through ROS, or a test's env).

Each episode of a task's set runs for the task's full step count with the policy reset and the env's own
instruction, and counts as a success when the env's info["success"] holds at the last step (SimplerEnv's
evaluator: it never stops early). A task's success rate is over its episodes; the benchmark's figure for a
robot is the mean of its tasks' rates. Results go out in the trial manager's format (results.json / .csv and
report.md, one row per episode with the URDF / overlay variant as the setting), so shards merge like any run.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from robovlms_policy.trials.report import TrialResult, load_results, write_report
from robovlms_simpler.tasks import Episode, Task

BENCHMARK = "simpler"
MERGE_KEYS = ("benchmark", "robot", "backend", "checkpoint", "rotation")  # shards of one run agree on these


class EpisodeRunner(Protocol):
    def run_episode(self, episode: Episode) -> TrialResult:
        """Run ``episode`` from its reset to the task's last step."""


def plan_episodes(tasks: Sequence[Task], per_task: int | None = None) -> list[Episode]:
    """Every task's episodes, or ``per_task`` of them spread evenly over the set (so over the URDF variants and
    object placements, not the first variant's first placements)."""
    if per_task is not None and per_task < 1:
        raise ValueError("the number of episodes per task must be at least 1")
    planned = []
    for task in tasks:
        count = task.episode_count
        indices = range(count) if per_task is None or per_task >= count else \
            sorted({int(i) for i in np.linspace(0, count - 1, per_task).round()})
        planned.extend(task.episode(i) for i in indices)
    return planned


def run_episodes(runner: EpisodeRunner, episodes: Iterable[Episode],
                 progress: Callable[[TrialResult, list[TrialResult]], None] | None = None) -> list[TrialResult]:
    results: list[TrialResult] = []
    for episode in episodes:
        results.append(runner.run_episode(episode))
        if progress is not None:
            progress(results[-1], results)
    return results


def success_rates(results: Sequence[TrialResult]) -> dict:
    """Per task: successes, episodes, rate; and the mean of the task rates (SimplerEnv's per-robot figure)."""
    by_task: dict[str, list[bool]] = defaultdict(list)
    for result in results:
        by_task[result.task].append(result.success)
    tasks = {task: {"success": sum(wins), "total": len(wins), "rate": sum(wins) / len(wins)}
             for task, wins in by_task.items()}
    mean = sum(t["rate"] for t in tasks.values()) / len(tasks) if tasks else 0.0
    return {"tasks": tasks, "mean_task_rate": mean}


def write_run(out_dir: Path, results: Sequence[TrialResult], meta: dict, title: str, plots: bool = True) -> str:
    """results.json / results.csv / report.md (and plots) of a run or of merged shards; returns the report."""
    rates = success_rates(results)
    meta = {**meta, "benchmark": BENCHMARK, "success_rates": rates}
    description = (f"SimplerEnv visual matching, {meta.get('robot', '?')} on {meta.get('backend', '?')}, checkpoint "
                   f"{meta.get('checkpoint', '?')}; mean of the task success rates {rates['mean_task_rate']:.1%} "
                   "(an episode succeeds when the env's info['success'] holds at its last step).")
    return write_report(out_dir, results, title, description, meta, plots)


def merge_runs(paths: Sequence[Path]) -> tuple[dict, list[TrialResult]]:
    """Shards of one run combined; refuses results of other runs or benchmarks, and overlapping episodes."""
    if not paths:
        raise ValueError("nothing to merge")
    merged_meta: dict | None = None
    merged: list[TrialResult] = []
    seen: set[tuple[str, int]] = set()
    for path in paths:
        meta, results = load_results(path)
        if meta.get("benchmark") != BENCHMARK:
            raise ValueError(f"{path}: not a SimplerEnv run")
        if merged_meta is None:
            merged_meta = {k: v for k, v in meta.items() if k not in ("shard", "success_rates")}
            merged_meta["shards"] = []
        for key in MERGE_KEYS:
            if meta.get(key) != merged_meta.get(key):
                raise ValueError(f"{path}: {key} {meta.get(key)!r} differs from {merged_meta.get(key)!r}")
        episodes = {(r.task, r.seed) for r in results}
        overlap = seen & episodes
        if overlap:
            raise ValueError(f"{path}: episodes {sorted(overlap)[:3]} are already in another shard")
        seen |= episodes
        merged_meta["shards"].append(str(path))
        merged.extend(results)
    return merged_meta, merged
