"""DDP on two CPU processes (gloo) through the CLI, as a user starts it, with Lightning's launcher and with
torchrun: the ranks train on different shards of the rows, and both end with bit-identical weights."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import torch

from robovlms_policy.vla.checkpoint import load_checkpoint
from robovlms_training.callbacks import weights_digest
from synthetic_data import tiny_recipe, write_store


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _fit(recipe, run, launcher: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *launcher, "-m", "robovlms_training.cli", "fit", "--config", str(recipe),
                           "--out", str(run)], capture_output=True, text=True, timeout=600)


def test_ddp_on_two_cpu_processes_trains_one_model_whichever_launcher_starts_the_ranks(tmp_path):
    store = write_store(tmp_path / "store", episodes=8)
    recipe = tiny_recipe(tmp_path / "ddp.yaml", [store], train={"max_steps": 4, "devices": 2, "strategy": "ddp"})
    digests = {}
    # Lightning's own launcher (one command starts rank 1 itself) and torchrun (both ranks start together; rank
    # 1 waits for rank 0's init checkpoint).
    for name, launcher in (("lightning", []), ("torchrun", ["-m", "torch.distributed.run", "--nproc_per_node", "2",
                                                            "--master_port", str(_free_port())])):
        run = tmp_path / name
        result = _fit(recipe, run, launcher)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.count("trained 4 steps") == 1  # rank 0 reports
        record = json.loads((run / "checkpoint" / "replicas.json").read_text())
        assert record["world_size"] == 2 and record["strategy"] == "DDPStrategy"
        assert record["identical"] and len(set(record["digests"])) == 1
        trained, _, _ = load_checkpoint(run / "checkpoint")
        assert weights_digest(trained) == record["digests"][0]  # the saved checkpoint is the replicas' model
        assert weights_digest(trained) != weights_digest(load_checkpoint(run / "init")[0])
        digests[name] = record["digests"][0]
    assert digests["lightning"] == digests["torchrun"]  # same data shards, same seeds: the same model


def test_the_weights_digest_sees_any_change():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    before = weights_digest(model)
    assert weights_digest(model) == before
    with torch.no_grad():
        model[1].bias[0] += 1e-7
    assert weights_digest(model) != before
