"""Training recipes: every shipped recipe loads strictly and round-trips; misspelt keys, wrong types and bad
overrides fail with the key path; learning-rate schedules."""
from __future__ import annotations

import math

import pytest

from robovlms_training.module import OptimizerConfig
from robovlms_training.recipe import RECIPES_DIR, RecipeError, load_recipe, recipe_text

SHIPPED = sorted(RECIPES_DIR.glob("*.yaml"))


def test_the_shipped_recipes_are_the_ones_the_docs_name():
    assert {p.stem for p in SHIPPED} >= {"twin_tiny", "calvin_abc_d_kosmos2", "oxe_pretrain_kosmos2",
                                         "bridge_finetune", "rt1_finetune"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_recipes_load_and_their_resolved_form_loads_back_unchanged(path, tmp_path):
    recipe = load_recipe(path)
    resolved = tmp_path / "recipe.yaml"
    resolved.write_text(recipe_text(recipe))
    assert load_recipe(resolved) == recipe
    assert load_recipe(path.stem) == recipe  # by name


def test_recipe_values_reach_the_dataclasses():
    recipe = load_recipe("calvin_abc_d_kosmos2")
    assert recipe.init.create.backbone == "kosmos2" and recipe.init.create.embodiment == "calvin"
    assert recipe.train.calvin_scenes == ("A", "B", "C") and recipe.train.augment.shift_fraction == 0.05
    assert recipe.optim.lr == 2e-5 and recipe.optim.gripper_weight == 0.01
    finetune = load_recipe("rt1_finetune")
    assert finetune.finetune.embodiment == "google_robot" and finetune.finetune.head == "reinit"


@pytest.mark.parametrize("override, message", [
    ("optim.weight_decy=0.1", "optim.weight_decy: unknown key (did you mean 'weight_decay'?)"),
    ("train.max_step=3", "did you mean 'max_steps'"),
    ("train.max_steps=many", "train.max_steps: expected int, got 'many'"),
    ("train.progress_bar=3", "train.progress_bar: expected bool"),
    ("train.strategy=horovod", "strategy 'horovod' is not one of"),
    ("optim.schedule=linear", "schedule 'linear' is not one of"),
    ("optim.arm_weights=[1, 1, 1]", "arm_weights must be six"),
    ("finetune.head=freeze", "finetune.head: 'freeze' is not one of"),
    ("data=[]", "data: needs at least one source"),
    ("max_steps", "is not KEY.PATH=VALUE"),
    ("init.create.backbone=paligemma", "exactly one of checkpoint"),
])
def test_bad_keys_and_values_are_errors_naming_the_key(override, message):
    with pytest.raises(RecipeError, match="bridge_finetune.yaml") as error:
        load_recipe("bridge_finetune", [override])
    assert message in str(error.value)


def test_overrides_parse_as_yaml_and_create_sections(tmp_path):
    recipe = load_recipe("twin_tiny", ["train.max_steps=7", "optim.lr=3e-4", "train.augment=null",
                                       "train.camera_topics={static: /cam}", "optim.arm_weights=[3, 3, 1, 1, 1, 1]"])
    assert recipe.train.max_steps == 7 and recipe.optim.lr == 3e-4 and recipe.train.augment is None
    assert recipe.optim.arm_weights == (3.0, 3.0, 1.0, 1.0, 1.0, 1.0)
    assert recipe.train.camera_topics == {"static": "/cam"}
    with pytest.raises(RecipeError, match="recipe no_such_recipe is neither a file nor one of"):
        load_recipe("no_such_recipe")
    broken = tmp_path / "broken.yaml"
    broken.write_text("init: [unclosed")
    with pytest.raises(RecipeError, match="broken.yaml: cannot read the recipe"):
        load_recipe(broken)
    broken.write_text("- just a list")
    with pytest.raises(RecipeError, match="a recipe is a mapping"):
        load_recipe(broken)


def test_missing_required_keys_are_named(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("init: {create: {structure: policy_head}}\ndata: [{path: x}]\n")
    with pytest.raises(RecipeError, match=r"init.create: missing key\(s\) \['backbone'\]"):
        load_recipe(path)
    path.write_text("init: {checkpoint: c}\n")
    with pytest.raises(RecipeError, match=r"missing key\(s\) \['data'\]"):
        load_recipe(path)


@pytest.mark.parametrize("schedule, end", [("constant", 1.0), ("cosine", 0.1), ("half_cosine", 0.55)])
def test_schedules_warm_up_over_a_ratio_then_decay(schedule, end):
    optim = OptimizerConfig(lr=1.0, total_steps=100, warmup_ratio=0.25, schedule=schedule, min_lr_ratio=0.1)
    assert optim.warmup == 25
    assert optim.lr_factor(0) == pytest.approx(1 / 25) and optim.lr_factor(24) == pytest.approx(1.0)
    assert optim.lr_factor(100) == pytest.approx(end)
    factors = [optim.lr_factor(s) for s in range(25, 101)]
    assert all(a >= b - 1e-12 for a, b in zip(factors, factors[1:]))  # never rises after warm-up
    if schedule == "half_cosine":  # half-way down a cosine: steepest at the end, unlike cosine
        assert optim.lr_factor(100) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))


def test_an_image_readout_override_reaches_the_created_checkpoint(tmp_path):
    from robovlms_policy.vla.checkpoint import load_checkpoint
    from robovlms_training.fit import create_checkpoint_from

    recipe = load_recipe("twin_tiny", ["init.create.image_readout=4", "init.create.bpe_corpus=''"])
    create_checkpoint_from(recipe.init.create, tmp_path)
    model, config, _ = load_checkpoint(tmp_path)
    assert config.image_readout == 4 and model.image_readout.per_token.out_features == 4
    assert model.image_readout.tokens == 2 * 16  # two cameras, 64 px / 16 px patches
