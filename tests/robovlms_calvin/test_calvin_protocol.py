"""Protocol bookkeeping: chain stop rule, SR@k and Avg. Len, shards and merge, results files."""
import json

import pytest

from robovlms_calvin.protocol import (ChainResult, SubtaskOutcome, evaluate, merge_results, read_results,
                                      select_chains, summary, write_results)
from robovlms_calvin.sequences import Chain


def chains(n):
    return [Chain(i, {"led": 0}, tuple(f"task_{i}_{k}" for k in range(5))) for i in range(n)]


class ScriptedRunner:
    """Succeeds on the first ``completed[chain]`` subtasks of each chain, fails the next; records calls."""

    def __init__(self, completed):
        self.completed, self.calls = completed, []

    def run_subtask(self, chain, position, subtask):
        self.calls.append((chain.index, position, subtask))
        return SubtaskOutcome(subtask, f"do {subtask}", position < self.completed[chain.index], position + 1, 0.1)


def test_a_chain_stops_at_its_first_failure_and_positions_are_in_order():
    runner = ScriptedRunner({0: 2, 1: 5, 2: 0})
    results = evaluate(runner, chains(3))
    assert [r.completed for r in results] == [2, 5, 0]
    assert [c for c in runner.calls if c[0] == 0] == [(0, 0, "task_0_0"), (0, 1, "task_0_1"), (0, 2, "task_0_2")]
    assert len([c for c in runner.calls if c[0] == 1]) == 5 and len([c for c in runner.calls if c[0] == 2]) == 1


def test_success_rates_and_average_length_as_calvin_counts_them():
    completed = {0: 5, 1: 3, 2: 1, 3: 0}
    s = summary(evaluate(ScriptedRunner(completed), chains(4)))
    assert s["avg_len"] == pytest.approx(9 / 4)
    assert s["success_rate"] == {"1": 0.75, "2": 0.5, "3": 0.5, "4": 0.25, "5": 0.25}
    assert s["tasks"]["task_1_3"] == {"success": 0, "total": 1} and s["tasks"]["task_0_4"]["success"] == 1


def test_shards_partition_the_selected_chains():
    selected = [[c.index for c in select_chains(chains(10), 7, i, 3)] for i in range(3)]
    assert selected == [[0, 1, 2], [3, 4], [5, 6]]
    assert [c.index for c in select_chains(chains(10))] == list(range(10))
    with pytest.raises(ValueError):
        select_chains(chains(10), 5, 3, 3)
    with pytest.raises(ValueError):
        select_chains(chains(10), 0)


def test_shard_results_merge_into_the_whole_run(tmp_path):
    runner = ScriptedRunner({i: i % 6 for i in range(6)})
    whole = evaluate(runner, chains(6))
    meta = {"checkpoint": "ck", "max_subtask_steps": 360}
    for shard in range(2):
        part = [r for r in whole if r.index in [c.index for c in select_chains(chains(6), None, shard, 2)]]
        write_results(tmp_path / f"s{shard}", part, {**meta, "shard": f"{shard}/2"}, "shard")
    merged_meta, merged = merge_results([tmp_path / "s1", tmp_path / "s0"])
    assert [r.index for r in merged] == list(range(6))
    assert summary(merged) == summary(whole)
    report = write_results(tmp_path / "all", merged, merged_meta, "all")
    assert "Avg. Len" in report and "| **all** |" in report
    document = json.loads((tmp_path / "all" / "results.json").read_text())
    assert document["benchmark"] == "calvin" and document["summary"]["chains"] == 6
    assert read_results(tmp_path / "all")[1][3].completed == 3


def test_merge_refuses_overlaps_and_other_runs(tmp_path):
    results = evaluate(ScriptedRunner({0: 1, 1: 2}), chains(2))
    write_results(tmp_path / "a", results, {"checkpoint": "ck", "max_subtask_steps": 360}, "a")
    write_results(tmp_path / "b", results[:1], {"checkpoint": "ck", "max_subtask_steps": 360}, "b")
    write_results(tmp_path / "c", results[1:], {"checkpoint": "other", "max_subtask_steps": 360}, "c")
    with pytest.raises(ValueError, match="already in another shard"):
        merge_results([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ValueError, match="checkpoint"):
        merge_results([tmp_path / "b", tmp_path / "c"])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not a readable"):
        read_results(tmp_path / "bad.json")


def test_completed_counts_only_the_leading_successes():
    result = ChainResult(0, {}, ["a", "b"], [SubtaskOutcome("a", "", True, 1, 0.0), SubtaskOutcome("b", "", False, 1, 0.0)])
    assert result.completed == 1
