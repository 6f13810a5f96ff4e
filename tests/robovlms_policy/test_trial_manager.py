"""The trial manager over the real twin graph (one process, real DDS, the scripted expert as the commander):
plans and their errors, a short sim plan whose bags, labels, CSV and report agree, resume after an interruption
without touching recorded trials, the real-cell operator flow (reset confirmation, operator stop, partial
labels, a label through the service), and the report / compare command."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import rclpy
import yaml
from rosbags.rosbag2 import Reader

from robovlms_demo.demo import CONFIG_FILES, DemoGraph, parse_args
from robovlms_demo.graph import bringup_context
from robovlms_msgs.srv import LabelTrial
from robovlms_policy.trials.plan import PlanError, load_plan, parse_plan
from robovlms_policy.trials.report import read_results, wilson_interval, write_report
from robovlms_policy.trials.trial_manager import TrialManager
from robovlms_policy.trials.trial_manager_cli import main as trial_manager

pytestmark = pytest.mark.ros
TASKS = ["press_button", "open_drawer"]


def plan_of(name: str, settings=("default",), trials=1, tasks=TASKS, **extra) -> dict:
    return {"name": name, "settings": list(settings), "trials_per_cell": trials, "max_steps": 120,
            "max_duration_s": 40.0, "tasks": [{"task": t, **extra} for t in tasks]}


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """The demo's graph (twin, driver, expert commander, recorder) writing trials under a temporary root."""
    root = tmp_path_factory.mktemp("trials")
    context = bringup_context(CONFIG_FILES)
    graph = DemoGraph(context, parse_args(["--commander", "expert", "--tasks", ",".join(TASKS), "--image-size", "64",
                                           "--out", str(root)]))
    graph.start()
    yield graph, root
    graph.close()
    rclpy.try_shutdown(context=context)


def manager(twin, plan: dict, run: str, **kwargs) -> TrialManager:
    graph, root = twin
    return TrialManager(graph, graph.recorder, parse_plan(plan), root / run, say=kwargs.pop("say", lambda _: None),
                        **{"sim": True, **kwargs})


def test_plans_are_loaded_strictly(tmp_path):
    plan = parse_plan(plan_of("p", settings=("a", "b"), trials=2, tasks=["x", "y"]))
    assert [t.key for t in plan.trials()][:5] == ["x/a/0", "y/a/0", "x/b/0", "y/b/0", "x/a/1"]
    assert plan.digest == parse_plan(plan_of("p", settings=("a", "b"), trials=2, tasks=["x", "y"])).digest
    for broken, message in [({**plan_of("p"), "trails_per_cell": 2}, r"unknown key\(s\) \['trails_per_cell'\]"),
                            ({**plan_of("p"), "max_steps": -1}, "max_steps must be a non-negative int"),
                            ({**plan_of("p"), "tasks": []}, "tasks must be a non-empty list"),
                            (plan_of("p", tasks=["x", "x"]), "names a task twice"),
                            (plan_of("p", instructions={"unseen": "go"}), "must map settings of the plan"),
                            ({"tasks": [{"task": "x"}]}, "needs 'name' and 'tasks'"),
                            ({**plan_of("p"), "tasks": [{"task": "x", "instuction": "go"}]}, "instuction")]:
        with pytest.raises(PlanError, match=message):
            parse_plan(broken)
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(PlanError, match="bad.yaml cannot be read as YAML"):
        load_plan(tmp_path / "bad.yaml")


def test_a_sim_plan_records_labels_and_reports_consistently(twin):
    graph, root = twin
    results = manager(twin, plan_of("sim-plan", settings=("default", "paraphrase")), "sim").run()
    run = root / "sim"
    assert [(r.task, r.setting, r.outcome) for r in results] == [
        ("press_button", "default", "success"), ("open_drawer", "default", "success"),
        ("press_button", "paraphrase", "success"), ("open_drawer", "paraphrase", "success")]
    for result in results:
        info = json.loads((run / result.trial_id / "trial.json").read_text())
        assert info["plan_key"] == f"{result.task}/{result.setting}/0" and info["seed"] == 0
        assert info["label"] == {**info["label"], "success": True, "outcome": "success"}
        with Reader(run / result.trial_id / "bag") as reader:
            counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts["/ee_command"] == info["steps"] == result.steps > 0
        assert counts["/rgb/image_raw"] > 0 and counts["/camera/camera/color/image_raw"] > 0
        assert counts["/policy_status"] > 0 and counts["/instruction"] >= 1
        metadata = yaml.safe_load((run / result.trial_id / "bag" / "metadata.yaml").read_text())
        extra = metadata["rosbag2_bagfile_information"]["custom_data"]
        assert json.loads(extra["robovlms.trial"])["plan_key"] == info["plan_key"]
        assert json.loads(extra["robovlms.label"])["outcome"] == "success"
    report = write_report(run, results, "sim plan")
    rows = list(csv.DictReader((run / "results.csv").open()))
    assert [(r["trial_id"], r["outcome"]) for r in rows] == [(r.trial_id, r.outcome) for r in results]
    assert f"| press_button | 1/1 (100%, {wilson_interval(1, 1)[0]:.0%}-100%) | 1/1" in report
    assert "| **all** | 4 | 4 | 100% |" in report
    assert {p.name for p in (run / "plots").iterdir()} == {"success_by_cell.png", "tick_latency.png",
                                                           "durations.png"}


def test_an_interrupted_run_resumes_without_touching_recorded_trials(twin):
    graph, root = twin
    plan = plan_of("resumable", trials=2, tasks=["press_button"])

    def interrupt_after_first(line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manager(twin, plan, "resume", say=interrupt_after_first).run()
    run = root / "resume"
    first = read_results(run)
    assert len(first) == 1 and first[0].outcome == "success"
    before = (run / first[0].trial_id / "trial.json").read_text()
    said: list[str] = []
    results = manager(twin, plan, "resume", say=said.append).run()
    assert said[0].startswith("resuming") and "1 of 2 trials already done" in said[0]
    assert [r.trial_id for r in results][0] == first[0].trial_id and len(results) == 2
    assert (run / first[0].trial_id / "trial.json").read_text() == before
    assert len(read_results(run)) == 2
    with pytest.raises(ValueError, match="holds a run of another plan"):
        manager(twin, plan_of("another", tasks=["press_button"]), "resume").run()


class ScriptedOperator:
    """The real-cell operator, scripted: confirms resets, stops each trial after a few polls, labels the first
    trial partial at the 'keyboard' and the second through the trial/label service (as a second person would)."""

    def __init__(self, graph) -> None:
        self.graph, self.polls, self.labels = graph, 0, 0

    def ready(self, trial, number, total) -> str:
        return "go"

    def wants_stop(self) -> bool:
        self.polls += 1
        return self.polls % 25 == 0  # ~0.5 s into the trial

    def label(self, trial_id, labelled):
        self.labels += 1
        if self.labels == 1:
            return "partial", "gripper slipped"
        answer = self.graph.call("trial/label", LabelTrial.Request(trial_id=trial_id, success=False, note="service",
                                                                   outcome="failure"))
        assert answer.accepted and labelled()
        return None


def test_the_real_cell_flow_with_an_operator(twin):
    graph, root = twin
    plan = plan_of("real", tasks=["press_button"], trials=2, instruction="press the button")
    results = manager(twin, plan, "real", sim=False, operator=ScriptedOperator(graph)).run()
    assert [(r.outcome, r.note, r.stop_reason, r.seed) for r in results] == [
        ("partial", "gripper slipped", "operator", None), ("failure", "service", "operator", None)]
    with pytest.raises(ValueError, match="needs an operator"):
        manager(twin, plan, "real2", sim=False)


def test_report_and_compare_commands(twin, capsys):
    graph, root = twin
    assert trial_manager(["report", str(root / "sim"), "--compare", str(root / "resume")]) == 0
    out = capsys.readouterr().out
    assert "| press_button | default | 1/1" in out and (root / "sim" / "compare_resume.md").is_file()
    assert trial_manager(["report", str(root / "nothing")]) == 1
    bad = root / "bad_plan.yaml"
    bad.write_text(yaml.safe_dump({**plan_of("x"), "setings": ["a"]}))
    assert trial_manager(["run", str(bad), "--run", str(root / "x")]) == 1
    assert "unknown key(s) ['setings']" in capsys.readouterr().err


def test_wilson_interval_matches_worked_values():
    # 8 of 10: the textbook 95% Wilson interval is 0.490 .. 0.943; 0 of 5: 0 .. 0.434.
    assert [round(v, 3) for v in wilson_interval(8, 10)] == [0.490, 0.943]
    assert [round(v, 3) for v in wilson_interval(0, 5)] == [0.0, 0.434]


def test_the_shipped_plans_load():
    from robovlms_twin.tasks import TASKS, VARIATIONS

    plans = {p.name: load_plan(p) for p in sorted((Path(__file__).resolve().parents[2] / "plans").glob("*.yaml"))}
    twin = plans["twin_all_settings.yaml"]
    assert [t.task for t in twin.tasks] == list(TASKS) and twin.settings == VARIATIONS
    assert len(twin.trials()) == 140 and len(plans["kinova_real_example.yaml"].trials()) == 75
