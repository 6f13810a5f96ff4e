"""The demo's outputs: a success table on stdout, results.json and report.md in the run directory."""
from __future__ import annotations

import json
import platform
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class EpisodeResult:
    """One recorded and labelled episode."""

    task: str
    seed: int
    variation: str
    instruction: str
    success: bool
    steps: int
    seconds: float
    trial_id: str


def success_table(results: list[EpisodeResult]) -> str:
    """Markdown table: one row per task, plus the overall rate."""
    by_task: dict[str, list[EpisodeResult]] = defaultdict(list)
    for result in results:
        by_task[result.task].append(result)
    lines = ["| task | episodes | successes | success rate | mean steps |", "|---|---:|---:|---:|---:|"]
    for task, episodes in by_task.items():
        wins = sum(e.success for e in episodes)
        steps = sum(e.steps for e in episodes) / len(episodes)
        lines.append(f"| {task} | {len(episodes)} | {wins} | {wins / len(episodes):.0%} | {steps:.1f} |")
    total = sum(r.success for r in results)
    lines.append(f"| **all** | {len(results)} | {total} | {total / max(len(results), 1):.0%} | |")
    return "\n".join(lines)


def write_report(out_dir: Path, results: list[EpisodeResult], commander: str) -> str:
    """Write results.json and report.md; return the report text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(
        {"commander": commander, "episodes": [asdict(r) for r in results]}, indent=2) + "\n")
    report = "\n".join([
        f"# Demo run {out_dir.name}",
        "",
        f"Commander: {commander}. Machine: {platform.machine()}, Python {platform.python_version()}. "
        f"Written {time.strftime('%Y-%m-%d %H:%M:%S')}.",
        "",
        success_table(results),
        "",
        "Each trial's rosbag2 (MCAP) and trial.json are in the folder named by its trial id:",
        "",
        *[f"- `{r.trial_id}`: {r.task}, seed {r.seed}, {'success' if r.success else 'failure'}, "
          f"'{r.instruction}'" for r in results],
        "",
    ])
    (out_dir / "report.md").write_text(report)
    return report
