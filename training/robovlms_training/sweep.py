"""``robovlms-train sweep``: hyperparameter search over a recipe with Optuna; every trial is a normal
``robovlms-train fit`` run with its own directory, logs and checkpoints.

    robovlms-train sweep --config calvin_abc_d_kosmos2 --out runs/sweep \\
        --grid optim.lr=1e-4,2e-5,1e-5 --grid optim.weight_decay=0,0.1 --grid train.batch_size=128,256,512
    robovlms-train sweep --config twin_tiny --out runs/search --trials 20 \\
        --space optim.lr=log:1e-5:1e-3 --space train.batch_size=int:8:32

The study lives in OUT/study.journal (Optuna's journal file; a shared file system lets workers on several
machines run the same command and share it) or in ``--storage`` (an RDB URL such as postgresql://...). Trials
minimise the best validation loss (the last training loss where a run has no validation). After the workers's
trials, OUT/results.md, results.csv (best first) and results.png (a bar chart) describe every trial of the study.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import sys
from pathlib import Path
from typing import Any

import yaml

from .recipe import RecipeError, load_recipe
from .train import USER_ERRORS

JOURNAL = "study.journal"
RESULTS = "results"


def parse_grid(entries: list[str]) -> dict[str, list[Any]]:
    """``optim.lr=1e-4,2e-5`` -> {"optim.lr": [1e-4, 2e-5]} (each value parsed as YAML)."""
    grid: dict[str, list[Any]] = {}
    for entry in entries:
        key, sep, values = entry.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise RecipeError(f"--grid {entry!r} is not KEY.PATH=V1,V2,...")
        grid[key.strip()] = [_yaml_value(v, entry) for v in values.split(",")]
    return grid


def parse_space(entries: list[str]) -> dict[str, tuple[str, list[Any]]]:
    """``optim.lr=log:1e-5:1e-3``, ``train.batch_size=int:8:32``, ``optim.schedule=choice:cosine,constant``."""
    space: dict[str, tuple[str, list[Any]]] = {}
    for entry in entries:
        key, sep, spec = entry.partition("=")
        kind, _, rest = spec.partition(":")
        if not sep or kind not in ("log", "float", "int", "choice") or not rest:
            raise RecipeError(f"--space {entry!r} is not KEY.PATH=log|float|int:LOW:HIGH or KEY.PATH=choice:A,B")
        values = [_yaml_value(v, entry) for v in rest.split("," if kind == "choice" else ":")]
        if kind != "choice" and len(values) != 2:
            raise RecipeError(f"--space {entry!r}: {kind} needs LOW:HIGH")
        space[key.strip()] = (kind, values)
    return space


def _yaml_value(text: str, entry: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecipeError(f"{entry!r}: {text!r} is not a YAML value: {err}") from err


def _suggest(trial, space: dict[str, tuple[str, list[Any]]]) -> dict[str, Any]:
    chosen = {}
    for key, (kind, values) in space.items():
        if kind == "choice":
            chosen[key] = trial.suggest_categorical(key, values)
        elif kind == "int":
            chosen[key] = trial.suggest_int(key, int(values[0]), int(values[1]))
        else:
            chosen[key] = trial.suggest_float(key, float(values[0]), float(values[1]), log=kind == "log")
    return chosen


def objective_of(summary) -> tuple[float, str]:
    """What a trial minimises: the best validation loss, else the final validation loss, else the mean of the
    last ten training losses."""
    for key in ("val/best_loss", "val/loss"):
        if key in summary.validation:
            return summary.validation[key], key
    tail = summary.losses[-10:]
    if not tail:
        raise ValueError(f"{summary.out_dir}: the run trained no step, so it has no loss to rank")
    return sum(tail) / len(tail), "train/loss"


def run_sweep(config: str, out: Path, grid: dict[str, list[Any]], space: dict[str, tuple[str, list[Any]]],
              trials: int, overrides: list[str], storage: str | None = None, study_name: str | None = None,
              seed: int = 0):
    """Run this worker's trials; returns the Optuna study (every worker's trials)."""
    import optuna

    from .fit import fit

    if bool(grid) == bool(space):
        raise RecipeError("give the search as --grid entries or as --space entries (one kind)")
    _check_single_process(load_recipe(config, overrides))  # a broken recipe fails here, not in every trial
    for chosen in _corners(grid, space):  # and so does a misspelt or mistyped search key
        _check_single_process(load_recipe(config, overrides, chosen))
    out.mkdir(parents=True, exist_ok=True)
    if storage is None:
        from optuna.storages.journal import JournalFileBackend
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(out / JOURNAL)))
    sampler = optuna.samplers.GridSampler(grid, seed=seed) if grid else optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(study_name=study_name or out.name, storage=storage, sampler=sampler,
                                direction="minimize", load_if_exists=True)

    def objective(trial) -> float:
        chosen = {key: trial.suggest_categorical(key, values) for key, values in grid.items()} if grid \
            else _suggest(trial, space)
        run = out / f"trial_{trial.number:03d}"
        trial.set_user_attr("run", str(run))
        recipe = _check_single_process(load_recipe(config, overrides, chosen))
        summary = fit(recipe, run)
        value, metric = objective_of(summary)
        trial.set_user_attr("metric", metric)
        trial.set_user_attr("steps_per_s", round(summary.samples_per_second, 2))
        for key, metric_value in summary.validation.items():
            trial.set_user_attr(key, metric_value)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    n_trials = trials or (_grid_size(grid) if grid else 10)
    if grid:  # other workers may have taken grid points already: never run a combination twice
        taken = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                        optuna.trial.TrialState.RUNNING)]
        n_trials = min(n_trials, _grid_size(grid) - len(taken))
    study.optimize(objective, n_trials=n_trials, catch=(*USER_ERRORS, RuntimeError))  # a failed trial, not the sweep
    write_results(study, out)
    return study


def _corners(grid: dict[str, list[Any]], space: dict[str, tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """Every grid point, or each search dimension's bounds: the values a trial can set."""
    if grid:
        return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    return [{key: values[end] for key, (_, values) in space.items()} for end in (0, -1)]


def _check_single_process(recipe):
    """Trials run inside this process; a multi-device strategy would relaunch the whole sweep on every rank."""
    if recipe.train.devices * recipe.train.num_nodes > 1:
        raise RecipeError("a sweep trial trains in the sweep's own process: use train.devices 1 and "
                          "train.num_nodes 1, and start one sweep worker per device to use several")
    return recipe


def _grid_size(grid: dict[str, list[Any]]) -> int:
    size = 1
    for values in grid.values():
        size *= len(values)
    return size


def write_results(study, out: Path) -> list[dict[str, Any]]:
    """OUT/results.csv and results.md (every trial, best first; failed ones last) and results.png."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    other = [t for t in study.trials if t.state != optuna.trial.TrialState.COMPLETE]
    params = sorted({key for t in study.trials for key in t.params})
    rows = []
    for rank, trial in enumerate(sorted(done, key=lambda t: t.value) + other, start=1):
        rows.append({"rank": rank if trial in done else "", "trial": trial.number, "state": trial.state.name,
                     "objective": "" if trial.value is None else f"{trial.value:.5f}",
                     "metric": trial.user_attrs.get("metric", ""),
                     **{key: trial.params.get(key, "") for key in params},
                     "val/arm_error": _fmt(trial.user_attrs.get("val/arm_error")),
                     "val/gripper_accuracy": _fmt(trial.user_attrs.get("val/gripper_accuracy")),
                     "steps/s": trial.user_attrs.get("steps_per_s", ""), "run": trial.user_attrs.get("run", "")})
    columns = list(rows[0]) if rows else ["rank", "trial", "state", "objective"]
    with (out / f"{RESULTS}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    (out / f"{RESULTS}.md").write_text(f"# Sweep {study.study_name}: {len(done)} of {len(rows)} trials complete\n\n"
                                       + "\n".join(lines) + "\n")
    _plot(rows, params, out / f"{RESULTS}.png")
    return rows


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4f}"


def _plot(rows: list[dict[str, Any]], params: list[str], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["objective"] != ""]
    figure, axes = plt.subplots(figsize=(max(4.0, 0.9 * len(done) + 2), 3.5))
    labels = ["\n".join(f"{p.split('.')[-1]}={r[p]}" for p in params) for r in done]
    axes.bar(range(len(done)), [float(r["objective"]) for r in done], color="tab:blue")
    axes.set_xticks(range(len(done)), labels, fontsize=7)
    axes.set_ylabel(done[0]["metric"] if done else "objective")
    axes.set_title("trials, best first")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="robovlms-train sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="recipe YAML (a path or a name under training/recipes/)")
    parser.add_argument("--out", required=True, type=Path, help="sweep directory (trial runs, study, results)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY.PATH=V1,V2",
                        help="grid axis (repeatable): every combination is one trial")
    parser.add_argument("--space", action="append", default=[], metavar="KEY.PATH=KIND:...",
                        help="search dimension (repeatable) for TPE: log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH, "
                             "choice:A,B")
    parser.add_argument("--trials", type=int, default=0, help="trials for this worker (default: the whole grid; "
                        "10 for a search space)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="recipe value for every trial (repeatable)")
    parser.add_argument("--storage", help="Optuna RDB URL shared by workers (default: OUT/study.journal)")
    parser.add_argument("--study-name", help="study name (default: the sweep directory's name)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    args = parser.parse_args(argv)
    try:
        study = run_sweep(args.config, args.out, parse_grid(args.grid), parse_space(args.space), args.trials,
                          args.override, args.storage, args.study_name, args.seed)
    except USER_ERRORS as err:
        print(f"robovlms-train sweep: error: {err}", file=sys.stderr)
        return 1
    print((args.out / f"{RESULTS}.md").read_text())
    best = [t for t in study.trials if t.value is not None]
    return 0 if best else 1
