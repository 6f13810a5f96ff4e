"""robovlms-trial-manager as a user runs it, against a graph launched in other processes, and its keyboard
operator. (A module of its own: the graph of test_trial_manager.py must not share the DDS domain.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
import yaml

from robovlms_policy.trials.plan import parse_plan
from robovlms_policy.trials.report import read_results
from robovlms_policy.trials.trial_manager_cli import KeyboardOperator
from test_policy_node import checkpoint  # noqa: F401 (fixture: a tiny policy-head checkpoint)
from test_trial_manager import plan_of

pytestmark = pytest.mark.ros


def test_the_command_line_runs_a_plan_against_a_launched_graph(tmp_path, checkpoint):
    """As a user would: the sim cell and the policy node in their own processes (a random tiny policy: every
    trial times out at max_steps), `robovlms-trial-manager run --sim` in a third; then a resume does nothing."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    graph = [subprocess.Popen([sys.executable, "-m", "robovlms_twin.sim_cell", "--ros-args", "-p", "image_size:=64"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT),
             subprocess.Popen([sys.executable, "-m", "robovlms_policy.node.policy_node", "--ros-args", "-p",
                               f"checkpoint:={checkpoint}"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)]
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({**plan_of("cli", tasks=["open_drawer"], trials=2), "max_steps": 8}))
    command = [sys.executable, "-m", "robovlms_policy.trials.trial_manager_cli", "run", str(plan), "--run",
               str(tmp_path / "run"), "--sim"]
    try:
        first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
        assert "[2/2] open_drawer" in first.stdout and "| open_drawer | 2 | 0 | 0% |" in first.stdout
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "2 of 2 trials already done" in again.stdout
    finally:
        for process in graph:
            process.send_signal(signal.SIGINT)
        for process in graph:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    results = read_results(tmp_path / "run")
    assert [(r.outcome, r.steps, r.stop_reason) for r in results] == [("failure", 8, "max_steps")] * 2
    run_record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_record["checkpoint"]["path"] == str(checkpoint.resolve())
    assert len(run_record["checkpoint"]["weights_sha256"]) == 64
    info = json.loads((tmp_path / "run" / results[0].trial_id / "trial.json").read_text())
    assert info["checkpoint"] == run_record["checkpoint"] and info["seed"] == 0


def test_the_keyboard_operator_reads_answers_from_its_input():
    lines = iter(["\n", "s\n", "maybe\n", "p\n", "wobbly grasp\n"])
    said: list[str] = []
    operator = KeyboardOperator(read_line=lambda: next(lines, ""), write=said.append)
    trial = parse_plan(plan_of("k", instruction="press it")).trials()[0]
    assert operator.ready(trial, 1, 2) == "go" and operator.ready(trial, 2, 2) == "skip"
    assert operator.label("t1", lambda: False) == ("partial", "wobbly grasp")  # "maybe" is asked again
    assert operator.ready(trial, 3, 3) == "quit"  # end of input: nobody to confirm
    assert sum("success?" in s for s in said) == 2
    done = threading.Event()
    quiet = KeyboardOperator(read_line=lambda: done.wait(5) and "", write=said.append)
    assert quiet.label("t2", lambda: True) is None  # labelled through the service meanwhile
    done.set()
