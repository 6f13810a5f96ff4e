"""optim.vision_lr_scale: the vision tower trains at a fraction of the learning rate, or not at all (frozen: no
gradient reaches it and a whole run leaves its weights bit-identical while the rest of the model moves)."""
from __future__ import annotations

import pytest
import torch

from robovlms_policy.vla.checkpoint import load_checkpoint
from robovlms_policy.vla.init_checkpoint import create_checkpoint
from robovlms_training.augment import FrameProcessor
from robovlms_training.cli import main as train_main
from robovlms_training.module import OptimizerConfig, VLAFineTuner
from synthetic_data import tiny_recipe, write_store

SIZE = 32


def _module(tmp_path, scale: float) -> tuple[VLAFineTuner, torch.nn.Module]:
    create_checkpoint(tmp_path / "ckpt", "paligemma", "policy_head", image_size=SIZE, window=2, chunk=2)
    model, config, _ = load_checkpoint(tmp_path / "ckpt")
    module = VLAFineTuner(model.train(), OptimizerConfig(lr=1e-3, vision_lr_scale=scale),
                          FrameProcessor(config.image_mean, config.image_std))
    return module, model.backbone.vision_tower


def _group_lrs(module: VLAFineTuner, tower: torch.nn.Module) -> tuple[set[float], set[float]]:
    vision = {id(p) for p in tower.parameters()}
    groups = module.configure_optimizers()["optimizer"].param_groups
    in_vision = {g["initial_lr"] for g in groups if any(id(p) in vision for p in g["params"])}
    elsewhere = {g["initial_lr"] for g in groups if any(id(p) not in vision for p in g["params"])}
    assert not any(any(id(p) in vision for p in g["params"]) and any(id(p) not in vision for p in g["params"])
                   for g in groups), "a group mixes vision-tower and other parameters"
    return in_vision, elsewhere


def test_a_scale_sets_the_vision_towers_learning_rate_and_leaves_the_rest(tmp_path):
    module, tower = _module(tmp_path, 0.1)
    in_vision, elsewhere = _group_lrs(module, tower)
    assert in_vision == {1e-3 * 0.1} and elsewhere == {1e-3}
    assert all(p.requires_grad for p in tower.parameters())


def test_scale_zero_freezes_the_tower(tmp_path):
    module, tower = _module(tmp_path, 0.0)
    assert not any(p.requires_grad for p in tower.parameters())
    in_vision, elsewhere = _group_lrs(module, tower)
    assert in_vision == set() and elsewhere == {1e-3}


@pytest.mark.parametrize("scale", [-0.5, float("nan")])
def test_a_negative_or_nan_scale_is_refused(scale):
    with pytest.raises(ValueError, match="vision_lr_scale >= 0"):
        OptimizerConfig(vision_lr_scale=scale)


def test_a_frozen_run_keeps_the_vision_tower_bit_identical(tmp_path):
    store = write_store(tmp_path / "store")
    recipe = tiny_recipe(tmp_path / "recipe.yaml", [store], train={"max_steps": 3})
    assert train_main(["fit", "--config", str(recipe), "--out", str(tmp_path / "run"),
                       "--override", "optim.vision_lr_scale=0"]) == 0
    initial = load_checkpoint(tmp_path / "run" / "init")[0]
    trained = load_checkpoint(tmp_path / "run" / "checkpoint")[0]
    tower = {id(p) for p in trained.backbone.vision_tower.parameters()}
    vision = {name for name, p in trained.named_parameters() if id(p) in tower}
    assert vision
    before, after = initial.state_dict(), trained.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in vision)
    assert any(not torch.equal(before[name], after[name]) for name in after if name not in vision)
