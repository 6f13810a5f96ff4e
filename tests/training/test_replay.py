"""robovlms-replay on real recordings: a trial recorded by `make demo` with a tiny checkpoint on the policy node
replays to ~zero error against its own chunks; the same bag against its commands, and an expert recording
(no chunks), give real, non-zero errors; bad input exits 1 with the reason."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robovlms_policy.vla.init_checkpoint import main as init_checkpoint
from robovlms_training.replay import main as replay
from test_training_episodes import demo_run, record_demo_run  # noqa: F401 (demo_run: an expert recording)

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny random checkpoint and one open_drawer trial it drove through the demo graph (15 steps)."""
    root = tmp_path_factory.mktemp("policy_run")
    checkpoint = root / "tiny"
    assert init_checkpoint(["--backbone", "paligemma", "--structure", "policy_head", "--tiny", str(checkpoint)]) == 0
    out = root / "run"
    result = subprocess.run([sys.executable, "-m", "robovlms_demo.demo", "--tasks", "open_drawer", "--episodes", "1",
                             "--max-steps", "15", "--image-size", "64", "--checkpoint", str(checkpoint), "--out",
                             str(out)], env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return checkpoint, out


def test_the_recording_checkpoint_reproduces_its_own_chunks(policy_run, tmp_path, capsys):
    checkpoint, run = policy_run
    assert replay([str(checkpoint), str(run), "--json", str(tmp_path / "r.json")]) == 0
    [figures] = json.loads((tmp_path / "r.json").read_text())
    assert figures["against"] == "chunks" and figures["compared"] >= 30  # at least 3 chunks of 10 actions
    assert max(figures["max_error"]) < 1e-3  # mm / mrad: the same model on the same frames
    assert figures["gripper_agreement"] == 1.0
    assert "| chunks |" in capsys.readouterr().out


def test_replay_against_commands_and_of_an_expert_recording(policy_run, demo_run, tmp_path):
    checkpoint, run = policy_run
    assert replay([str(checkpoint), str(run), "--against", "commands", "--json", str(tmp_path / "c.json")]) == 0
    [commands] = json.loads((tmp_path / "c.json").read_text())
    # Every command the policy node sent with an action; its hold commands (no chunk covered the tick) are not.
    assert commands["against"] == "commands" and 1 <= commands["compared"] <= 15
    assert np.isfinite(commands["mean_error"]).all()
    assert replay([str(checkpoint), str(demo_run), "--json", str(tmp_path / "e.json")]) == 0
    [expert] = json.loads((tmp_path / "e.json").read_text())
    # The scripted expert records no chunks; a random policy is far from its motions.
    assert expert["against"] == "commands" and max(expert["mean_error"]) > 0.1


def test_bad_input_exits_1_with_the_reason(policy_run, demo_run, tmp_path, capsys):
    checkpoint, run = policy_run
    assert replay([str(checkpoint), str(demo_run), "--against", "chunks"]) == 1
    assert "no recorded chunks with frame stamps" in capsys.readouterr().err
    assert replay([str(tmp_path / "missing"), str(run)]) == 1
    assert "robovlms-replay: error:" in capsys.readouterr().err
    assert replay([str(checkpoint), str(tmp_path)]) == 1
    assert "holds no trials" in capsys.readouterr().err
