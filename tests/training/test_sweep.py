"""robovlms-train sweep: a 2 x 2 grid of 3-step runs on Optuna's journal storage, each trial a normal run; the
results table best first; a second worker on the same study finds the grid done; search-space parsing."""
from __future__ import annotations

import csv

import pytest

from robovlms_training.cli import main as train_main
from robovlms_training.recipe import RecipeError, load_recipe
from robovlms_training.sweep import parse_grid, parse_space
from synthetic_data import tiny_recipe, write_store


def test_a_grid_sweep_runs_every_combination_and_ranks_them(tmp_path, capsys):
    store = write_store(tmp_path / "store")
    recipe = tiny_recipe(tmp_path / "r.yaml", [store])
    out = tmp_path / "sweep"
    argv = ["sweep", "--config", str(recipe), "--out", str(out), "--grid", "optim.lr=1e-2,1e-4",
            "--grid", "optim.weight_decay=0,0.1", "--override", "train.max_steps=3"]
    assert train_main(argv) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 4 and all(r["state"] == "COMPLETE" for r in rows)
    assert {(float(r["optim.lr"]), float(r["optim.weight_decay"])) for r in rows} == \
        {(1e-2, 0.0), (1e-2, 0.1), (1e-4, 0.0), (1e-4, 0.1)}
    objectives = [float(r["objective"]) for r in rows]
    assert objectives == sorted(objectives) and [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    assert all(r["metric"] == "val/best_loss" for r in rows)
    for row in rows:  # each trial is a normal run with its own recipe, logs and checkpoint
        recipe_of_trial = load_recipe(f"{row['run']}/recipe.yaml")
        assert recipe_of_trial.optim.lr == float(row["optim.lr"]) and recipe_of_trial.train.max_steps == 3
        assert (tmp_path / row["run"] / "checkpoint" / "train_logs" / "metrics.csv").is_file()
    assert (out / "study.journal").is_file() and (out / "results.png").stat().st_size > 1000
    table = (out / "results.md").read_text()
    assert "4 of 4 trials complete" in table and table in capsys.readouterr().out
    # A second worker on the same study: the grid is done, nothing reruns, the table still lists every trial.
    assert train_main(argv + ["--trials", "1"]) == 0
    assert len(list(csv.DictReader((out / "results.csv").open()))) == 4
    assert sorted(p.name for p in out.glob("trial_*")) == [f"trial_{i:03d}" for i in range(4)]


def test_grid_and_space_parsing():
    assert parse_grid(["optim.lr=1e-4,2e-5", "train.batch_size=8,16"]) == \
        {"optim.lr": ["1e-4", "2e-5"], "train.batch_size": [8, 16]}
    assert parse_space(["optim.lr=log:1e-5:1e-3", "optim.schedule=choice:cosine,constant"]) == \
        {"optim.lr": ("log", ["1e-5", "1e-3"]), "optim.schedule": ("choice", ["cosine", "constant"])}
    for bad in (["optim.lr"], ["optim.lr="]):
        with pytest.raises(RecipeError, match="is not KEY.PATH=V1,V2"):
            parse_grid(bad)
    with pytest.raises(RecipeError, match="log needs LOW:HIGH"):
        parse_space(["optim.lr=log:1e-5"])
    with pytest.raises(RecipeError):
        parse_space(["optim.lr=gauss:0:1"])


def test_a_sweep_needs_one_kind_of_search_and_a_valid_recipe(tmp_path, capsys):
    recipe = tiny_recipe(tmp_path / "r.yaml", [tmp_path])
    assert train_main(["sweep", "--config", str(recipe), "--out", str(tmp_path / "s")]) == 1
    assert "give the search as --grid entries or as --space" in capsys.readouterr().err
    assert train_main(["sweep", "--config", str(recipe), "--out", str(tmp_path / "s"), "--grid", "optim.lr=1,2",
                       "--override", "train.max_stepz=2"]) == 1
    assert "did you mean 'max_steps'" in capsys.readouterr().err
    # Every value a trial can set is checked before the first trial runs.
    for search, message in ((["--grid", "optim.lrr=1,2"], "optim.lrr: unknown key"),
                            (["--space", "train.batch_size=choice:8,sixteen"],
                             "train.batch_size: expected int, got 'sixteen'")):
        assert train_main(["sweep", "--config", str(recipe), "--out", str(tmp_path / "s"), *search]) == 1
        assert message in capsys.readouterr().err
    assert not list((tmp_path / "s").glob("trial_*"))
    assert train_main(["sweep", "--config", str(recipe), "--out", str(tmp_path / "s"), "--grid", "optim.lr=1,2",
                       "--override", "train.devices=2"]) == 1
    assert "start one sweep worker per device" in capsys.readouterr().err
