"""The auxiliary final-position loss (optim.final_position_weight): rows carry the episode's standardised final TCP
position, a linear probe regresses it from the [LRN] features the policy head sees, the gradient reaches the
vision tower, the probe is never exported, and checkpoints it cannot read are refused before training."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from robovlms_policy.vla.checkpoint import load_checkpoint
from robovlms_policy.vla.init_checkpoint import create_checkpoint
from robovlms_policy.vla.policy import VLAPolicy
from robovlms_policy.vla.proprio import ProprioNormalizer
from robovlms_training.augment import FrameProcessor
from robovlms_training.cli import main as train_main
from robovlms_training.dataset import WindowCollator, WindowDataset
from robovlms_training.module import OptimizerConfig, VLAFineTuner
from synthetic_data import tiny_recipe, write_store
from test_training_dataset import SIZE, episode

WINDOW, CHUNK, SEGMENT = 3, 2, 4


def _checkpoint(tmp_path, **overrides):
    create_checkpoint(tmp_path / "ckpt", "paligemma", overrides.pop("structure", "policy_head"), image_size=SIZE,
                      window=WINDOW, chunk=CHUNK, **overrides)
    return load_checkpoint(tmp_path / "ckpt")


def test_the_probe_reads_the_head_features_and_trains_the_vision_tower(tmp_path):
    model, config, tokenizer = _checkpoint(tmp_path, proprio_dim=10, proprio_layout="ee_pose_gripper")
    episodes = [episode(9, 1), episode(6, 2)]
    stats = ProprioNormalizer.from_data(np.concatenate([e.proprio for e in episodes]))
    codec = VLAPolicy(model, config, tokenizer).codec
    dataset = WindowDataset(episodes, codec, ["static", "wrist"], SIZE, WINDOW, CHUNK, SEGMENT, stats)
    rows = [dataset[i] for i in range(len(dataset))]
    for (episode_index, _), row in zip(dataset._index, rows):
        expected = stats.normalize(episodes[episode_index].proprio)[-1, :3]
        np.testing.assert_allclose(row["final_position"].numpy(), expected, rtol=1e-5, atol=1e-6)
    batch = WindowCollator(tokenizer, config.max_instruction_tokens)(rows)
    batch["pixels"] = FrameProcessor(config.image_mean, config.image_std)(batch.pop("frames"), train=False)
    module = VLAFineTuner(model.train(), OptimizerConfig(final_position_weight=0.5), FrameProcessor(
        config.image_mean, config.image_std))

    out = model.compute_loss(batch)
    features = out["lrn_features"]
    assert features.shape == (len(rows), WINDOW - 1 + SEGMENT, model.backbone.hidden_size)
    torch.testing.assert_close(model.over_histories(model.head, features)[0].detach(), out["pred_arm"])
    supervised = batch["action_mask"][..., 0]
    probe = module.final_position_probe
    errors = [((probe(features[b, t]) - batch["final_position"][b]) ** 2).mean()
              for b in range(len(rows)) for t in range(features.shape[1]) if supervised[b, t]]
    loss = module._final_position_loss(out, batch)
    torch.testing.assert_close(loss, torch.stack(errors).mean())

    loss.backward()
    assert probe.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.vision_tower.parameters())
    trained = {id(p) for group in module.configure_optimizers()["optimizer"].param_groups for p in group["params"]}
    assert id(probe.weight) in trained and id(probe.bias) in trained


@pytest.mark.parametrize("checkpoint", [dict(), dict(structure="one_step_continuous", proprio_dim=10,
                                                          proprio_layout="ee_pose_gripper")])
def test_a_checkpoint_without_lrn_features_or_proprioception_is_refused(tmp_path, checkpoint):
    model, config, _ = _checkpoint(tmp_path, **checkpoint)
    with pytest.raises(ValueError, match="final_position_weight needs a policy_head checkpoint with proprio"):
        VLAFineTuner(model, OptimizerConfig(final_position_weight=1.0),
                     FrameProcessor(config.image_mean, config.image_std))
    with pytest.raises(ValueError, match="final_position_weight"):
        OptimizerConfig(final_position_weight=-1.0)


def test_a_run_logs_the_auxiliary_loss_and_exports_without_the_probe(tmp_path):
    store = write_store(tmp_path / "store")
    recipe = tiny_recipe(tmp_path / "recipe.yaml", [store], train={"max_steps": 4, "val_every": 2})
    assert train_main(["fit", "--config", str(recipe), "--out", str(tmp_path / "run"),
                       "--override", "optim.final_position_weight=0.5"]) == 0
    rows = list(csv.DictReader(open(next((tmp_path / "run").rglob("metrics.csv")))))
    train_losses = [float(r["train/final_position_loss"]) for r in rows if r.get("train/final_position_loss")]
    val_losses = [float(r["val/final_position_loss"]) for r in rows if r.get("val/final_position_loss")]
    assert len(train_losses) == 4 and len(val_losses) == 2 and all(np.isfinite(train_losses + val_losses))
    exported = load_checkpoint(tmp_path / "run" / "checkpoint")[0].state_dict()
    initial = load_checkpoint(tmp_path / "run" / "init")[0].state_dict()
    assert sorted(exported) == sorted(initial)
