"""robovlms-train fit on real tiny models and real episode stores: the run directory and the resolved recipe
in every checkpoint, resume from Lightning's training state, weighted mixtures of embodiments with statistics
per embodiment, fine-tuning from another embodiment's checkpoint, gradient checkpointing."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robovlms_policy.vla.checkpoint import load_checkpoint
from robovlms_policy.vla.policy import VLAPolicy
from robovlms_training.cli import main as train_main
from robovlms_training.fit import fit, prepare_finetune
from robovlms_training.recipe import load_recipe
from synthetic_data import tiny_recipe, write_store


@pytest.fixture(scope="module")
def kinova_store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("kinova") / "store")


@pytest.fixture(scope="module")
def bridge_store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("bridge") / "store", embodiment="bridge", seed=1)


@pytest.fixture(scope="module")
def fitted(kinova_store, tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    config = tiny_recipe(root / "recipe.yaml", [kinova_store], train={"max_steps": 3, "save_every": 2})
    assert train_main(["fit", "--config", str(config), "--out", str(root / "run")]) == 0
    return root / "run"


def test_a_run_holds_its_init_checkpoint_and_resolved_recipe_everywhere(fitted):
    recipe = load_recipe(fitted / "recipe.yaml")
    assert recipe.train.max_steps == 3 and recipe.train.save_every == 2
    for checkpoint in (fitted / "checkpoint", fitted / "checkpoint" / "checkpoints" / "step_000002"):
        assert load_recipe(checkpoint / "recipe.yaml") == recipe
        VLAPolicy.from_checkpoint(checkpoint)
    assert (fitted / "init" / "config.json").is_file()
    assert (fitted / "checkpoint" / "resume" / "last.ckpt").is_file()
    assert list((fitted / "checkpoint" / "train_logs" / "tensorboard").glob("events.out.tfevents.*"))


def test_a_resumed_run_continues_from_its_training_state(fitted, tmp_path, capsys):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(fitted, run)
    before = torch.load(run / "checkpoint" / "resume" / "last.ckpt", weights_only=False)
    assert before["global_step"] == 3
    assert before["robovlms_attachments"]["recipe.yaml"] == (run / "recipe.yaml").read_text()
    assert train_main(["fit", "--resume", str(run), "--override", "train.max_steps=5"]) == 0
    assert "trained 5 steps" in capsys.readouterr().out
    after = torch.load(run / "checkpoint" / "resume" / "last.ckpt", weights_only=False)
    assert after["global_step"] == 5 and after["lr_schedulers"][0]["last_epoch"] == 5
    assert load_recipe(run / "recipe.yaml").train.max_steps == 5
    # Resuming needs a run; a new run refuses a used directory.
    assert train_main(["fit", "--resume", str(tmp_path / "nothing")]) == 1
    assert train_main(["fit", "--config", str(fitted / "recipe.yaml"), "--out", str(run)]) == 1
    assert "already holds a training run" in capsys.readouterr().err


def test_a_mixture_keeps_statistics_per_embodiment_and_samples_by_weight(kinova_store, bridge_store, tmp_path):
    path = tiny_recipe(tmp_path / "mix.yaml", [{"path": str(kinova_store), "weight": 1.0},
                                               {"path": str(bridge_store), "weight": 3.0}])
    summary = fit(load_recipe(path), tmp_path / "run")
    config = load_checkpoint(tmp_path / "run" / "checkpoint")[1]
    assert config.embodiment == "kinova" and sorted(config.embodiment_stats) == ["bridge", "kinova"]
    assert config.action_stats == config.embodiment_stats["kinova"]
    assert config.embodiment_stats["bridge"] != config.embodiment_stats["kinova"]
    assert summary.steps == 3


def test_the_weighted_sampler_draws_sources_in_proportion(kinova_store, bridge_store):
    from robovlms_training.run_data import weighted_sampler

    class Rows:  # 12 rows of source 0, 4 of source 1
        row_episodes = [0] * 12 + [1] * 4
    sampler = weighted_sampler([0, 1], Rows(), [1.0, 3.0], torch.Generator().manual_seed(0))
    drawn = np.array([Rows.row_episodes[i] for _ in range(200) for i in sampler])
    assert abs(drawn.mean() - 0.75) < 0.05  # source 1 has weight 3 of 4 despite a quarter of the rows
    assert weighted_sampler([0, 1], Rows(), [2.0, 2.0], torch.Generator()) is None


def test_data_of_another_embodiment_needs_a_finetune(bridge_store, tmp_path, capsys):
    path = tiny_recipe(tmp_path / "r.yaml", [bridge_store])
    assert train_main(["fit", "--config", str(path), "--out", str(tmp_path / "run")]) == 1
    assert "acts as 'kinova' but the training data is ['bridge']" in capsys.readouterr().err


@pytest.mark.parametrize("head", ["keep", "reinit"])
def test_finetune_from_another_embodiment_keeps_the_backbone(fitted, bridge_store, tmp_path, head):
    source, _, _ = load_checkpoint(fitted / "checkpoint")
    path = tiny_recipe(tmp_path / "ft.yaml", [bridge_store], init={"checkpoint": str(fitted / "checkpoint")},
                       finetune={"embodiment": "bridge", "head": head}, train={"max_steps": 1})
    recipe = load_recipe(path)
    prepared_dir = tmp_path / "prepared"
    prepare_finetune(fitted / "checkpoint", prepared_dir, "bridge", head == "reinit")
    prepared, config, _ = load_checkpoint(prepared_dir)
    assert config.embodiment == "bridge"
    for name, value in source.backbone.state_dict().items():
        torch.testing.assert_close(prepared.backbone.state_dict()[name], value)
    same_head = all(torch.equal(a, b) for a, b in zip(source.head.state_dict().values(),
                                                      prepared.head.state_dict().values()))
    assert same_head == (head == "keep")
    fit(recipe, tmp_path / "run")
    trained = load_checkpoint(tmp_path / "run" / "checkpoint")[1]
    assert trained.embodiment == "bridge" and trained.embodiment_stats is None
    policy = VLAPolicy.from_checkpoint(tmp_path / "run" / "checkpoint")
    assert policy.embodiment == "bridge"


def test_gradient_checkpointing_trains_the_same_model(kinova_store, tmp_path, monkeypatch):
    from robovlms_training import module as module_file

    trained_with = []
    fine_tuner = module_file.VLAFineTuner

    def recording(model, *args):  # the model the run trains, as the trainer gets it
        trained_with.append(model.backbone.model.is_activation_checkpointing)
        return fine_tuner(model, *args)

    monkeypatch.setattr("robovlms_training.train.VLAFineTuner", recording)
    losses = {}
    for checkpointing in (False, True):
        path = tiny_recipe(tmp_path / f"gc{checkpointing}.yaml", [kinova_store],
                           train={"gradient_checkpointing": checkpointing, "augment": None, "max_steps": 2})
        losses[checkpointing] = fit(load_recipe(path), tmp_path / f"run{checkpointing}").losses
    assert trained_with == [False, True]
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)
    assert json.loads((tmp_path / "runTrue" / "init" / "config.json").read_text())["backbone"] == "paligemma"


def test_streamed_rlds_mixture_trains_with_statistics_per_dataset(tmp_path, capsys):
    from test_oxe_readers import write_builder

    write_builder(tmp_path / "bridge_dataset" / "1.0.0")
    write_builder(tmp_path / "fractal20220817_data" / "0.1.0", name="fractal20220817_data")
    sources = [{"path": str(tmp_path / "bridge_dataset" / "1.0.0"), "weight": 1.0},
               {"path": str(tmp_path / "fractal20220817_data" / "0.1.0"), "weight": 0.5}]
    create = {"backbone": "paligemma", "structure": "policy_head", "tiny": True, "image_size": 32, "window": 2,
              "chunk": 2, "embodiment": "bridge", "camera_names": ["static"]}
    path = tiny_recipe(tmp_path / "oxe.yaml", sources, init={"create": create},
                       train={"streaming": True, "shuffle_buffer": 8, "max_steps": 3, "validation_fraction": 0.0})
    summary = fit(load_recipe(path), tmp_path / "run")
    assert summary.steps == 3 and summary.frames_seen > 0
    config = load_checkpoint(tmp_path / "run" / "checkpoint")[1]
    assert sorted(config.embodiment_stats) == ["bridge", "google_robot"]
    assert config.action_stats == config.embodiment_stats["bridge"]
    # A stream has no passes over the data, and no split by seed.
    for index, (train, message) in enumerate([({"epochs": 1.0, "validation_fraction": 0.0}, "has no passes"),
                                              ({}, "is not split by seed")]):
        path = tiny_recipe(tmp_path / f"bad{index}.yaml", sources, init={"create": create},
                           train={"streaming": True, **train})
        assert train_main(["fit", "--config", str(path), "--out", str(tmp_path / f"bad{index}")]) == 1
        assert message in capsys.readouterr().err


def test_a_mixture_name_expands_to_its_datasets_under_a_tfds_directory(tmp_path):
    from robovlms_training.fit import data_sources
    from robovlms_training.oxe.rlds import OXEDataError
    from test_oxe_readers import write_builder

    write_builder(tmp_path / "bridge_dataset" / "0.9.0")
    write_builder(tmp_path / "bridge_dataset" / "1.0.0")
    recipe = load_recipe("oxe_pretrain_kosmos2", [f"data=[{{path: {tmp_path}, mixture: bridge, weight: 2}}]"])
    assert data_sources(recipe) == [(tmp_path / "bridge_dataset" / "1.0.0", 2.0)]
    recipe = load_recipe("oxe_pretrain_kosmos2", [f"data=[{{path: {tmp_path}, mixture: magic_soup_subset}}]"])
    with pytest.raises(OXEDataError, match="needs fractal20220817_data"):
        data_sources(recipe)


@pytest.mark.parametrize("strategy, message", [("deepspeed_stage_3", "needs DeepSpeed: pip install deepspeed"),
                                               ("fsdp", "requires a GPU accelerator")])
def test_strategies_this_machine_cannot_run_fail_with_a_clear_error(kinova_store, tmp_path, capsys, strategy,
                                                                    message):
    import importlib.util
    if strategy.startswith("deepspeed") and importlib.util.find_spec("deepspeed") is not None:
        pytest.skip("DeepSpeed is installed here")
    path = tiny_recipe(tmp_path / "r.yaml", [kinova_store], train={"strategy": strategy, "devices": 2})
    assert train_main(["fit", "--config", str(path), "--out", str(tmp_path / "run")]) == 1
    assert message in capsys.readouterr().err


def test_a_mixture_checkpoint_fine_tunes_to_an_embodiment_outside_the_mixture(kinova_store, bridge_store,
                                                                              tmp_path):
    mixture = tiny_recipe(tmp_path / "mix.yaml", [kinova_store, bridge_store], train={"max_steps": 1})
    fit(load_recipe(mixture), tmp_path / "mix")
    target = write_store(tmp_path / "google", embodiment="google_robot", seed=2)
    path = tiny_recipe(tmp_path / "ft.yaml", [target], init={"checkpoint": str(tmp_path / "mix" / "checkpoint")},
                       finetune={"embodiment": "google_robot"}, train={"max_steps": 1})
    fit(load_recipe(path), tmp_path / "ft")
    config = load_checkpoint(tmp_path / "ft" / "checkpoint")[1]
    assert config.embodiment == "google_robot" and config.embodiment_stats is None
    with pytest.raises(ValueError, match="has no statistics to keep"):
        prepare_finetune(tmp_path / "mix" / "checkpoint", tmp_path / "x", "google_robot", False,
                         keep_statistics=True)
    prepare_finetune(tmp_path / "mix" / "checkpoint", tmp_path / "kept", "bridge", False, keep_statistics=True)
    mix_config = load_checkpoint(tmp_path / "mix" / "checkpoint")[1]
    assert load_checkpoint(tmp_path / "kept")[1].action_stats == mix_config.embodiment_stats["bridge"]


def test_paths_in_a_recipe_expand_the_home_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    recipe = load_recipe("calvin_abc_d_kosmos2")
    assert recipe.init.create.pretrained == tmp_path / "models" / "kosmos-2-patch14-224"
    assert recipe.data[0].path == tmp_path / "calvin" / "dataset" / "task_ABC_D" / "training"
    assert recipe.train.validation_data == [tmp_path / "calvin" / "dataset" / "task_ABC_D" / "validation"]


def test_a_rerun_starts_again_after_an_early_interruption_and_refuses_a_changed_init(kinova_store, tmp_path):
    path = tiny_recipe(tmp_path / "r.yaml", [kinova_store], train={"max_steps": 1})
    run = tmp_path / "run"
    fit(load_recipe(path), run)
    (run / "checkpoint" / "config.json").unlink()  # as if stopped before any training state was written
    import shutil
    shutil.rmtree(run / "checkpoint" / "resume")
    fit(load_recipe(path), run)
    assert (run / "checkpoint" / "config.json").is_file() and list(run.glob("checkpoint.interrupted_*"))
    changed = tiny_recipe(tmp_path / "c.yaml", [kinova_store], train={"max_steps": 1},
                          init={"create": {"backbone": "paligemma", "tiny": True, "image_size": 32, "window": 3}})
    shutil.rmtree(run / "checkpoint")
    with pytest.raises(ValueError, match="made by another init / finetune section"):
        fit(load_recipe(changed), run)
