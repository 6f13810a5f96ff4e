"""`make demo` in short: the whole graph in one process, episodes recorded, labelled and reported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rosbags.rosbag2 import Reader

from robovlms_policy.vla.init_checkpoint import main as init_checkpoint

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]


def run_demo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "robovlms_demo.demo", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def bag_topics(bag_dir: Path) -> dict[str, int]:
    with Reader(bag_dir) as reader:
        return {c.topic: c.msgcount for c in reader.connections}


def test_expert_demo_records_scores_and_reports(tmp_path):
    out = tmp_path / "run"
    result = run_demo("--commander", "expert", "--tasks", "press_button,lift_red_block", "--episodes", "1",
                      "--image-size", "64",
                      "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| press_button | 1 | 1 | 100% |" in result.stdout and "| lift_red_block | 1 | 1 | 100% |" in result.stdout
    episodes = json.loads((out / "results.json").read_text())["episodes"]
    assert [e["task"] for e in episodes] == ["press_button", "lift_red_block"]
    assert all(e["success"] for e in episodes)
    for episode in episodes:
        trial = out / episode["trial_id"]
        metadata = json.loads((trial / "trial.json").read_text())
        assert metadata["label"]["success"] is True and metadata["stop_reason"] == "success"
        topics = bag_topics(trial / "bag")
        assert topics["/ee_command"] == metadata["steps"] > 0
        assert topics["/rgb/image_raw"] > 0 and topics["/camera/camera/color/image_raw"] > 0
        assert topics["/instruction"] >= 1 and topics["/episode_info"] > 0
    assert (out / "report.md").read_text().startswith("# Demo run")


def test_policy_demo_runs_the_policy_node_end_to_end(tmp_path):
    checkpoint = tmp_path / "tiny"
    init_checkpoint(["--backbone", "paligemma", "--structure", "policy_head", "--tiny", str(checkpoint)])
    out = tmp_path / "run"
    result = run_demo("--tasks", "open_drawer", "--episodes", "1", "--max-steps", "15", "--image-size", "64",
                      "--checkpoint", str(checkpoint), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    episode = json.loads((out / "results.json").read_text())["episodes"][0]
    assert episode["steps"] == 15  # an untrained policy does not open the drawer: max_steps ends the trial
    topics = bag_topics(out / episode["trial_id"] / "bag")
    assert topics["/action_chunk"] > 0 and topics["/policy_status"] > 0


@pytest.mark.parametrize("args,message", [
    (["--tasks", "fly_to_the_moon"], "unknown task"),
    (["--episodes", "0"], "at least 1"),
    (["--checkpoint", "/nonexistent/checkpoint"], "not a directory"),
])
def test_bad_arguments_are_refused(args, message):
    result = run_demo(*args, timeout=60)
    assert result.returncode == 2 and message in result.stderr


def test_demo_refuses_a_domain_where_another_graph_runs(ros_context, tmp_path):
    from rclpy.node import Node

    from robovlms_msgs.srv import StartTrial

    other = Node("another_trial_recorder", context=ros_context)
    other.create_service(StartTrial, "trial/start", lambda request, response: response)
    try:
        result = run_demo("--commander", "expert", "--tasks", "press_button", "--episodes", "1", "--out",
                          str(tmp_path / "run"), timeout=120)
    finally:
        other.destroy_node()
    assert result.returncode == 1 and "another graph is running" in result.stderr
    assert not (tmp_path / "run").exists()
