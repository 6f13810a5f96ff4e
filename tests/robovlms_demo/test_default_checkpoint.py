"""The shipped default checkpoint (twin_default) loads from the installed share and does the job in the twin.

A smoke test, kept quick for CI: a few episodes of two tasks on evaluation seeds through the direct path
(DriverCore + sim backend, the policy node's timing). The full closed-loop evaluation through the ROS graph is
benchmarks/eval_default_policy.py, whose table is in the README and the model card.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def shipped():
    from robovlms_demo.demo import default_checkpoint

    path = default_checkpoint()
    assert (path / "config.json").is_file(), f"the default checkpoint is not installed at {path}"
    return path


def test_shipped_checkpoint_is_small_documented_and_pickle_free(shipped):
    files = {f.name for f in shipped.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "MODEL_CARD.md", "training.json"} <= files
    assert not any(name.endswith((".pt", ".pth", ".ckpt", ".bin", ".pkl")) for name in files)
    assert sum(f.stat().st_size for f in shipped.iterdir()) < 25 * 2**20
    config = json.loads((shipped / "config.json").read_text())
    assert config["structure"] == "policy_head" and config["proprio_layout"]
    card = (shipped / "MODEL_CARD.md").read_text()
    assert "make train-default" in card and "(not evaluated yet)" not in card


def test_shipped_checkpoint_acts_and_succeeds_in_the_twin(shipped):
    from robovlms_policy.vla.policy import VLAPolicy
    from robovlms_training.twin_eval import evaluate

    policy = VLAPolicy.from_checkpoint(shipped)
    result = evaluate(policy, ["open_drawer", "move_slider_left"], episodes_per_task=2)
    # Loose on purpose: the trained rate is ~100% on these tasks; a broken export or input path gives ~0%.
    assert np.mean(list(result.rates.values())) >= 0.5, result.describe()
