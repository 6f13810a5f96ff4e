"""CALVIN's long-horizon protocol, independent of how a subtask is run (through ROS, or a test's env).

A chain starts from its initial scene; each subtask runs with the policy reset and the subtask's validation
instruction for at most 360 steps, judged by CALVIN's task oracle against the info at the subtask's start;
the chain stops at its first failure. SR@k is the share of chains whose first k subtasks all succeeded, and
Avg. Len the mean number of subtasks completed in a row (CALVIN's count_success / avg_seq_len).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

from robovlms_calvin.sequences import CHAIN_LENGTH, Chain
from robovlms_policy.trials.shards import take_shard

RESULTS_FILE = "results.json"
BENCHMARK = "calvin"


@dataclass
class SubtaskOutcome:
    subtask: str
    instruction: str
    success: bool
    steps: int
    seconds: float
    trial_id: str = ""


@dataclass
class ChainResult:
    index: int
    initial_state: dict
    subtasks: list[str]
    outcomes: list[SubtaskOutcome] = field(default_factory=list)

    @property
    def completed(self) -> int:
        """Subtasks completed in a row from the first."""
        count = 0
        for outcome in self.outcomes:
            if not outcome.success:
                break
            count += 1
        return count


class SubtaskRunner(Protocol):
    def run_subtask(self, chain: Chain, position: int, subtask: str) -> SubtaskOutcome:
        """Run ``chain.subtasks[position]``; position 0 first resets the scene to the chain's initial state,
        later positions continue from the scene the previous subtask left."""


def run_chain(runner: SubtaskRunner, chain: Chain) -> ChainResult:
    """One chain, stopping at its first failed subtask."""
    result = ChainResult(chain.index, dict(chain.initial_state), list(chain.subtasks))
    for position, subtask in enumerate(chain.subtasks):
        outcome = runner.run_subtask(chain, position, subtask)
        result.outcomes.append(outcome)
        if not outcome.success:
            break
    return result


def evaluate(runner: SubtaskRunner, chains: Iterable[Chain],
             progress: Callable[[ChainResult, list[ChainResult]], None] | None = None) -> list[ChainResult]:
    results: list[ChainResult] = []
    for chain in chains:
        results.append(run_chain(runner, chain))
        if progress is not None:
            progress(results[-1], results)
    return results


def select_chains(chains: Sequence[Chain], first: int | None = None, shard: int = 0,
                  shards: int = 1) -> list[Chain]:
    """The first ``first`` chains (all when None), then shard ``shard`` of ``shards`` contiguous parts."""
    if first is not None and first < 1:
        raise ValueError("the number of chains must be at least 1")
    return take_shard(list(chains[:first] if first is not None else chains), shard, shards)


def summary(results: Sequence[ChainResult]) -> dict:
    """Avg. Len, SR@1..5 and per-subtask success counts (CALVIN's print_and_save figures)."""
    n = len(results)
    completed = [r.completed for r in results]
    successes, totals = Counter(), Counter()
    for result in results:
        for outcome in result.outcomes:
            totals[outcome.subtask] += 1
            successes[outcome.subtask] += outcome.success
    return {
        "chains": n,
        "avg_len": sum(completed) / n if n else 0.0,
        "success_rate": {str(k): (sum(c >= k for c in completed) / n if n else 0.0)
                         for k in range(1, CHAIN_LENGTH + 1)},
        "tasks": {task: {"success": successes[task], "total": totals[task]} for task in sorted(totals)},
    }


def results_document(results: Sequence[ChainResult], meta: dict) -> dict:
    return {"benchmark": BENCHMARK, **meta, "summary": summary(results),
            "chains": [{**asdict(r), "completed": r.completed} for r in sorted(results, key=lambda r: r.index)]}


def read_results(path: Path) -> tuple[dict, list[ChainResult]]:
    """A results.json (file or run directory): its metadata and chain results."""
    path = path / RESULTS_FILE if path.is_dir() else path
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable results file ({error})") from error
    if document.get("benchmark") != BENCHMARK:
        raise ValueError(f"{path}: not a CALVIN results file")
    chains = [ChainResult(c["index"], c["initial_state"], c["subtasks"],
                          [SubtaskOutcome(**o) for o in c["outcomes"]]) for c in document["chains"]]
    meta = {k: v for k, v in document.items() if k not in ("benchmark", "summary", "chains")}
    return meta, chains


MERGE_KEYS = ("max_subtask_steps", "checkpoint")  # shards of one run agree on these


def merge_results(paths: Sequence[Path]) -> tuple[dict, list[ChainResult]]:
    """Shards of one run combined; refuses shards of different runs or overlapping chains."""
    if not paths:
        raise ValueError("nothing to merge")
    merged_meta, merged, seen = None, [], set()
    for path in paths:
        meta, chains = read_results(path)
        if merged_meta is None:
            merged_meta = {**meta, "shards": []}
        for key in MERGE_KEYS:
            if meta.get(key) != merged_meta.get(key):
                raise ValueError(f"{path}: {key} {meta.get(key)!r} differs from {merged_meta.get(key)!r}")
        overlap = seen & {c.index for c in chains}
        if overlap:
            raise ValueError(f"{path}: chains {sorted(overlap)[:5]} are already in another shard")
        seen |= {c.index for c in chains}
        merged_meta["shards"].append(str(path))
        merged.extend(chains)
    merged_meta.pop("shard", None)
    return merged_meta, sorted(merged, key=lambda r: r.index)


def report_markdown(results: Sequence[ChainResult], meta: dict, title: str) -> str:
    """The CALVIN table (SR@1..5, Avg. Len) and, in the twin report's format, one row per subtask."""
    from robovlms_policy.trials.report import TrialResult, success_table

    s = summary(results)
    rates = " | ".join(f"{s['success_rate'][str(k)]:.1%}" for k in range(1, CHAIN_LENGTH + 1))
    episodes = [TrialResult(o.trial_id, o.subtask, "calvin", o.instruction, "success" if o.success else "failure",
                            o.steps, o.seconds, seed=r.index) for r in results for o in r.outcomes]
    return "\n".join([
        f"# {title}", "",
        ", ".join(f"{k}: {v}" for k, v in meta.items() if k in ("commander", "checkpoint", "max_subtask_steps",
                                                                  "shard", "written")), "",
        f"| chains | {' | '.join(f'SR@{k}' for k in range(1, CHAIN_LENGTH + 1))} | Avg. Len |",
        "|---:|" + "---:|" * (CHAIN_LENGTH + 1),
        f"| {s['chains']} | {rates} | {s['avg_len']:.2f} |", "",
        "Subtasks attempted (a chain stops at its first failure):", "",
        success_table(episodes), "",
    ])


def write_results(out_dir: Path, results: Sequence[ChainResult], meta: dict, title: str) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULTS_FILE).write_text(json.dumps(results_document(results, meta), indent=2) + "\n")
    report = report_markdown(results, meta, title)
    (out_dir / "report.md").write_text(report)
    return report
