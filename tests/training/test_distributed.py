"""DDP on two CPU processes (gloo) through the CLI, as a user starts it: Lightning launches the second rank, the
ranks train on different shards of the rows, and both end with bit-identical weights."""
from __future__ import annotations

import json
import subprocess
import sys

import torch

from robovlms_policy.vla.checkpoint import load_checkpoint
from robovlms_training.callbacks import weights_digest
from synthetic_data import tiny_recipe, write_store


def test_ddp_on_two_cpu_processes_trains_one_model(tmp_path):
    store = write_store(tmp_path / "store", episodes=8)
    recipe = tiny_recipe(tmp_path / "ddp.yaml", [store], train={"max_steps": 4, "devices": 2, "strategy": "ddp"})
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "robovlms_training.cli", "fit", "--config", str(recipe),
                             "--out", str(run)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained 4 steps") == 1  # rank 0 reports
    record = json.loads((run / "checkpoint" / "replicas.json").read_text())
    assert record["world_size"] == 2 and record["strategy"] == "DDPStrategy"
    assert record["identical"] and len(set(record["digests"])) == 1
    trained, _, _ = load_checkpoint(run / "checkpoint")
    assert weights_digest(trained) == record["digests"][0]  # the saved checkpoint is the replicas' model
    assert weights_digest(trained) != weights_digest(load_checkpoint(run / "init")[0])


def test_the_weights_digest_sees_any_change():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    before = weights_digest(model)
    assert weights_digest(model) == before
    with torch.no_grad():
        model[1].bias[0] += 1e-7
    assert weights_digest(model) != before
