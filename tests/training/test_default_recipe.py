"""`make train-default` end to end at toy scale: every stage runs, the export reloads through the policy API with
the trained weights, and a rerun resumes without redoing a stage or losing its record from the model card."""
from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from robovlms_policy.vla.policy import VLAPolicy
from robovlms_training import default_recipe
from robovlms_training.default_recipe import MODEL_CARD, RECIPE, TRAINING_RECORD, Round, main, run

TOY = replace(RECIPE, overrides=("init.create.image_size=32", "train.batch_size=2", "train.segment=4",
                                 "train.val_every=0", "train.save_every=0", "train.twin_eval_every=0",
                                 "optim.warmup_steps=1"),
              demo_episodes_per_task=1, rounds=(Round(3, 1e-3), Round(2, 1e-4, 1)), workers=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work, out = tmp_path_factory.mktemp("work"), tmp_path_factory.mktemp("out")
    record = run(work, out, TOY, progress=False)
    return work, out, record


def test_every_stage_runs_and_the_export_is_the_last_round(trained):
    work, out, record = trained
    kinds = [next(k for k in ("demos", "dagger_round", "round") if k in s) for s in record["stages"]]
    assert kinds == ["demos", "round", "dagger_round", "round"]
    assert json.loads((out / TRAINING_RECORD).read_text()) == json.loads(json.dumps(record))
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (out / name).read_bytes() == (work / "round_1" / name).read_bytes()
    assert (work / "round_0" / "model.safetensors").read_bytes() != (out / "model.safetensors").read_bytes()
    card = (out / MODEL_CARD).read_text()
    assert "make train-default" in card and "round 1: 2 steps" in card and "DAgger round 1" in card
    assert "training/recipes/twin_tiny.yaml with init.create.image_size=32" in card
    assert record["recipe"]["resolved"]["train"]["batch_size"] == 2
    # The commit the code came from, marked when the working tree had changes on top of it ("unknown"
    # outside a git checkout).
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", record["commit"]), record["commit"]


def test_the_export_reloads_through_the_policy_api_with_the_trained_actions(trained):
    work, out, _ = trained
    exported, trained_round = VLAPolicy.from_checkpoint(out), VLAPolicy.from_checkpoint(work / "round_1")
    untrained = VLAPolicy.from_checkpoint(work / "init")
    assert exported.config.proprio_layout and exported.image_size == 32
    rng = np.random.default_rng(0)
    frames = {name: rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for name in exported.camera_names}
    proprio = np.concatenate([[0.45, 0.0, 0.35], [1, 0, 0], [0, -1, 0], [0.0]])
    outputs = []
    for policy in (exported, trained_round, untrained):
        policy.reset("press the button")
        outputs.append(policy.step(frames, proprio))
    np.testing.assert_array_equal(outputs[0].arm, outputs[1].arm)
    np.testing.assert_array_equal(outputs[0].gripper, outputs[1].gripper)
    assert not np.array_equal(outputs[0].arm, outputs[2].arm)


def test_a_rerun_resumes_and_keeps_every_stage_in_the_record(trained, capsys):
    work, out, record = trained
    before = (out / "model.safetensors").read_bytes()
    again = run(work, out, TOY, progress=False)
    printed = capsys.readouterr().out
    assert printed.count("already done") == 5  # init, demos, round 0, DAgger 1, round 1
    assert again["stages"] == record["stages"] and again["hours"] == pytest.approx(record["hours"])
    assert (out / "model.safetensors").read_bytes() == before


def test_the_cli_passes_overrides_to_the_training_recipe(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(default_recipe, "run", lambda work, out, recipe, progress: seen.append(recipe))
    assert main(["--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"), "--no-progress",
                 "--override", "optim.arm_weights=[4, 4, 1, 1, 1, 1]", "--override", "train.max_steps=7"]) == 0
    training = seen[0].training_recipe()
    assert training.optim.arm_weights == (4, 4, 1, 1, 1, 1) and training.train.max_steps == 7


@pytest.mark.parametrize("override, named", [("optim.arm_weigths=[1, 1, 1, 1, 1, 1]", "arm_weigths"),
                                             ("optim.arm_weights=[1, 1]", "arm_weights"),
                                             ("train.max_steps", "KEY.PATH=VALUE")])
def test_the_cli_rejects_a_bad_override_before_any_stage_runs(tmp_path, capsys, override, named):
    with pytest.raises(SystemExit) as exited:
        main(["--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"), "--override", override])
    assert exited.value.code == 2 and named in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
