"""A run's results from its trial folders: results.csv / results.json, and report.md with PNG plots (success per
task and setting with 95% Wilson intervals, tick latency from the recorded policy_status, trial durations);
and a side-by-side comparison of two runs of the same plan. Used by the trial manager, `make demo` and the
CALVIN evaluation's per-subtask table."""
from __future__ import annotations

import csv
import json
import math
import platform
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, Sequence

TRIAL_FILE = "trial.json"
PLOTS = "plots"
POLICY_STATUS_TOPIC = "/policy_status"


@dataclass
class TrialResult:
    """One recorded trial as the report counts it."""

    trial_id: str
    task: str
    setting: str
    instruction: str
    outcome: str  # success, failure, partial, or unlabelled
    steps: int
    seconds: float
    seed: int | None = None
    repeat: int | None = None
    stop_reason: str = ""
    note: str = ""

    @property
    def success(self) -> bool:
        return self.outcome == "success"


def result_of(info: dict) -> TrialResult:
    """The TrialResult of a trial.json document (as the recorder and the trial manager write it)."""
    label = info.get("label") or {}
    outcome = label.get("outcome") or ({True: "success", False: "failure"}.get(label.get("success"), "unlabelled"))
    seconds = float(info.get("stopped_at", info.get("started_at", 0.0))) - float(info.get("started_at", 0.0))
    return TrialResult(str(info["trial_id"]), str(info.get("task", "")), str(info.get("setting", "")),
                       str(info.get("instruction", "")), outcome, int(info.get("steps", 0)), max(0.0, seconds),
                       info.get("seed"), info.get("repeat"), str(info.get("stop_reason", "")),
                       str(label.get("note", "")))


def trial_infos(run_dir: Path) -> list[dict]:
    """The trial.json documents of a run's trial folders, in start order (unreadable ones are skipped)."""
    infos = []
    for path in sorted(Path(run_dir).glob(f"*/{TRIAL_FILE}")):
        try:
            infos.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted((i for i in infos if "trial_id" in i), key=lambda i: i.get("started_at", 0.0))


def read_results(run_dir: Path) -> list[TrialResult]:
    """Every trial folder of a run, in start order."""
    return [result_of(info) for info in trial_infos(run_dir)]


def load_results(run_dir: Path) -> tuple[dict, list[TrialResult]]:
    """A run's results.json (as write_results writes it): its meta and episodes; ValueError if unreadable."""
    path = Path(run_dir) / "results.json"
    try:
        document = json.loads(path.read_text())
        names = {f.name for f in fields(TrialResult)}
        episodes = [TrialResult(**{k: v for k, v in e.items() if k in names}) for e in document["episodes"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a readable results file ({error})") from error
    return dict(document.get("meta") or {}), episodes


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sound for small n and rates of 0 or 1)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def success_table(results: Sequence[TrialResult]) -> str:
    """Markdown table: one row per task, plus the overall rate."""
    by_task: dict[str, list[TrialResult]] = defaultdict(list)
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


def _cells(results: Iterable[TrialResult]) -> dict[tuple[str, str], list[TrialResult]]:
    cells: dict[tuple[str, str], list[TrialResult]] = defaultdict(list)
    for r in results:
        if r.outcome != "unlabelled":
            cells[(r.task, r.setting)].append(r)
    return cells


def cell_table(results: Sequence[TrialResult]) -> str:
    """Markdown: success k/n (rate, 95% interval) per task (rows) and setting (columns); partials counted."""
    cells = _cells(results)
    tasks = list(dict.fromkeys(t for t, _ in cells))
    settings = list(dict.fromkeys(s for _, s in cells))
    lines = ["| task | " + " | ".join(settings) + " |", "|---|" + "---:|" * len(settings)]
    for task in tasks:
        row = []
        for setting in settings:
            trials = cells.get((task, setting), [])
            wins, partial = sum(t.success for t in trials), sum(t.outcome == "partial" for t in trials)
            low, high = wilson_interval(wins, len(trials))
            row.append(f"{wins}/{len(trials)} ({wins / max(len(trials), 1):.0%}, {low:.0%}-{high:.0%})"
                       + (f" +{partial} partial" if partial else "") if trials else "")
        lines.append(f"| {task} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def write_results(run_dir: Path, results: Sequence[TrialResult], meta: dict | None = None) -> None:
    """results.csv (one row per trial) and results.json ({"meta": ..., "episodes": [...]})."""
    run_dir.mkdir(parents=True, exist_ok=True)
    columns = [f.name for f in fields(TrialResult)] + ["success"]
    with (run_dir / "results.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, columns)
        writer.writeheader()
        writer.writerows({**asdict(r), "success": r.success} for r in results)
    document = {"meta": meta or {}, "episodes": [{**asdict(r), "success": r.success} for r in results]}
    (run_dir / "results.json").write_text(json.dumps(document, indent=2) + "\n")


def policy_timing(run_dir: Path, results: Sequence[TrialResult]) -> tuple[list[float], list[float]]:
    """Tick periods and model latencies (s) from the policy_status messages recorded in the trials' bags
    (bags without them, or not readable, are skipped)."""
    from rosbags.rosbag2 import Reader

    from .bag_format import suite_typestore

    typestore, ticks, latencies = suite_typestore(), [], []
    for result in results:
        try:
            with Reader(run_dir / result.trial_id / "bag") as reader:
                wanted = [c for c in reader.connections if c.topic == POLICY_STATUS_TOPIC]
                for connection, _, raw in reader.messages(connections=wanted):
                    status = typestore.deserialize_cdr(raw, connection.msgtype)
                    if status.tick_period > 0:
                        ticks.append(float(status.tick_period))
                    if status.model_latency > 0:
                        latencies.append(float(status.model_latency))
        except Exception:  # a missing or footer-less bag: its trial simply contributes no timing
            continue
    return ticks, latencies


def write_plots(run_dir: Path, results: Sequence[TrialResult]) -> list[str]:
    """PNG plots under run_dir/plots; returns their paths relative to run_dir."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out = run_dir / PLOTS
    out.mkdir(parents=True, exist_ok=True)
    written = []
    cells = _cells(results)
    if cells:
        keys = list(cells)
        rates = [sum(t.success for t in cells[k]) / len(cells[k]) for k in keys]
        bounds = [wilson_interval(sum(t.success for t in cells[k]), len(cells[k])) for k in keys]
        errors = [[r - lo for r, (lo, _) in zip(rates, bounds)], [hi - r for r, (_, hi) in zip(rates, bounds)]]
        figure, axis = plt.subplots(figsize=(max(4.0, 0.6 * len(keys) + 2), 3.5))
        axis.bar(range(len(keys)), rates, yerr=errors, capsize=3, color="tab:blue")
        axis.set_xticks(range(len(keys)), [f"{t}\n{s}" for t, s in keys], rotation=60, ha="right", fontsize=7)
        axis.set_ylim(0, 1.05)
        axis.set_ylabel("success rate (95% Wilson)")
        written.append(_save(figure, out / "success_by_cell.png", run_dir))
    ticks, latencies = policy_timing(run_dir, results)
    if ticks or latencies:
        figure, axis = plt.subplots(figsize=(5, 3.2))
        for values, name in ((ticks, "tick period"), (latencies, "model latency")):
            if values:
                axis.hist([1000 * v for v in values], bins=40, alpha=0.6, label=f"{name} (n={len(values)})")
        axis.set_xlabel("ms")
        axis.legend()
        written.append(_save(figure, out / "tick_latency.png", run_dir))
    if results:
        figure, axis = plt.subplots(figsize=(5, 3.2))
        axis.hist([r.seconds for r in results], bins=20, color="tab:green")
        axis.set_xlabel("trial duration (s)")
        written.append(_save(figure, out / "durations.png", run_dir))
    plt.close("all")
    return written


def _save(figure, path: Path, run_dir: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return str(path.relative_to(run_dir))


def write_report(run_dir: Path, results: Sequence[TrialResult], title: str, description: str = "",
                 meta: dict | None = None, plots: bool = True) -> str:
    """results.csv, results.json, plots and report.md; returns the report text."""
    write_results(run_dir, results, meta)
    images = write_plots(run_dir, results) if plots else []
    labelled = [r for r in results if r.outcome != "unlabelled"]
    report = "\n".join([
        f"# {title}", "",
        (description + " " if description else "") + f"Machine: {platform.machine()}, Python "
        f"{platform.python_version()}. Written {time.strftime('%Y-%m-%d %H:%M:%S')}.", "",
        success_table(labelled), "",
        "Success per task and setting (k/n, rate, 95% Wilson interval):", "",
        cell_table(labelled), "",
        *[f"![{Path(i).stem}]({i})" for i in images], "",
        "Each trial's rosbag2 (MCAP) and trial.json are in the folder named by its trial id:", "",
        *[f"- `{r.trial_id}`: {r.task}, {r.setting}" + (f", seed {r.seed}" if r.seed is not None else "")
          + f", {r.outcome}, {r.steps} steps, '{r.instruction}'" + (f" ({r.note})" if r.note else "")
          for r in results], "",
    ])
    (run_dir / "report.md").write_text(report)
    return report


def compare_runs(first: Path, second: Path) -> str:
    """Markdown: the success of each (task, setting) cell in two runs side by side, with the overall rates."""
    runs = [read_results(first), read_results(second)]
    cells = [_cells(r) for r in runs]
    keys = list(dict.fromkeys([*cells[0], *cells[1]]))
    names = [Path(first).name, Path(second).name]
    lines = [f"| task | setting | {names[0]} | {names[1]} |", "|---|---|---:|---:|"]

    def rate(trials: list[TrialResult]) -> str:
        if not trials:
            return "-"
        wins = sum(t.success for t in trials)
        low, high = wilson_interval(wins, len(trials))
        return f"{wins}/{len(trials)} ({low:.0%}-{high:.0%})"

    for key in keys:
        lines.append(f"| {key[0]} | {key[1]} | {rate(cells[0].get(key, []))} | {rate(cells[1].get(key, []))} |")
    totals = [[t for trials in c.values() for t in trials] for c in cells]
    lines.append(f"| **all** | | **{rate(totals[0])}** | **{rate(totals[1])}** |")
    return "\n".join(lines)
