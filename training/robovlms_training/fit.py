"""``robovlms-train fit``: one recipe -> one run directory.

    RUN/recipe.yaml    the resolved recipe (also inside every checkpoint written)
    RUN/init/          the starting checkpoint, when the recipe creates one or fine-tunes another embodiment's
                       (a run interrupted before training reuses it)
    RUN/checkpoint/    the trained policy checkpoint, with checkpoints/ (best, periodic), train_logs/ (CSV,
                       TensorBoard) and resume/last.ckpt (Lightning's training state, for ``--resume``)

In a distributed run every rank executes this; rank 0 prepares RUN/init and the others wait for it (under
Lightning's own launcher they start after it anyway; under torchrun / SLURM they start together).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only

from robovlms_policy.vla.checkpoint import load_checkpoint, save_checkpoint
from robovlms_policy.vla.structures.heads import ChunkMLP, build_policy_head

from .recipe import RESOLVED_RECIPE, CreateSpec, Recipe, RecipeError, load_recipe, recipe_text
from .train import TrainSummary, resume_state, train

INIT_DIR = "init"
POLICY_DIR = "checkpoint"
READY_FILE = "config.json"  # inside RUN/init only after the atomic rename of the complete checkpoint
WAIT_SECONDS = 1800
MADE_BY = "made_by.json"  # the recipe sections RUN/init was made from: a changed recipe cannot reuse it


def fit(recipe: Recipe, run: str | Path, resume: bool = False) -> TrainSummary:
    """Prepare the starting checkpoint, train, write RUN/checkpoint; ``resume`` continues RUN's last state."""
    run = Path(run)
    rank = rank_zero_only.rank
    text = recipe_text(recipe)
    if rank == 0:
        trained = run / POLICY_DIR
        if resume and not resume_state(trained).exists():  # checked before the run's recipe.yaml is rewritten
            raise ValueError(f"cannot resume {run}: {resume_state(trained)} does not exist")
        if not resume and trained.exists() and any(trained.iterdir()):
            if (trained / READY_FILE).exists() or resume_state(trained).exists():
                raise ValueError(f"run directory {run} already holds a training run; choose a new one or "
                                 f"--resume")
            # Stopped before its first training state was saved: nothing to resume, start again beside it.
            trained.rename(run / time.strftime(f"{POLICY_DIR}.interrupted_%Y%m%d-%H%M%S"))
        run.mkdir(parents=True, exist_ok=True)
        (run / RESOLVED_RECIPE).write_text(text)
    init = starting_checkpoint(recipe, run / INIT_DIR, rank)
    attachments = {RESOLVED_RECIPE: text}
    sources = data_sources(recipe)
    return train(init, [path for path, _ in sources], run / POLICY_DIR, recipe.train, recipe.optim,
                 weights=[weight for _, weight in sources], attachments=attachments, resume=resume)


def data_sources(recipe: Recipe) -> list[tuple[Path, float]]:
    """(directory, weight) of every training source, mixtures expanded into their datasets."""
    from .oxe.mixtures import mixture_sources

    sources = []
    for source in recipe.data:
        if source.mixture:
            sources += [(path, weight * source.weight) for path, weight in mixture_sources(source.path,
                                                                                             source.mixture)]
        else:
            sources.append((source.path, source.weight))
    return sources


def resume_recipe(run: str | Path, overrides=()) -> Recipe:
    """The recipe a run was started with (RUN/recipe.yaml)."""
    path = Path(run) / RESOLVED_RECIPE
    if not path.is_file():
        raise RecipeError(f"cannot resume {run}: it has no {RESOLVED_RECIPE} (not a robovlms-train fit run)")
    return load_recipe(path, overrides)


def starting_checkpoint(recipe: Recipe, target: Path, rank: int) -> Path:
    """The checkpoint training starts from: init.checkpoint as is, or one written to ``target`` (created, or
    prepared for a fine-tune to another embodiment)."""
    if recipe.init.checkpoint is not None and recipe.finetune is None:
        return recipe.init.checkpoint
    made_by = json.dumps({"init": recipe.to_dict()["init"], "finetune": recipe.to_dict()["finetune"]},
                         sort_keys=True)
    if (target / READY_FILE).is_file():
        if (target / MADE_BY).read_text() != made_by:
            raise RecipeError(f"{target} was made by another init / finetune section than this recipe's; "
                              f"train the changed recipe in a new run directory")
        return target
    if rank != 0:
        return _wait_for(target / READY_FILE)
    staging = target.with_name(target.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted attempt
    if recipe.init.create is not None:
        create_checkpoint_from(recipe.init.create, staging)
    else:
        prepare_finetune(recipe.init.checkpoint, staging, recipe.finetune.embodiment,
                         recipe.finetune.head == "reinit", recipe.train.seed, recipe.train.keep_statistics)
    (staging / MADE_BY).write_text(made_by)
    staging.rename(target)  # atomic: waiting ranks never see half a checkpoint
    return target


def prepare_finetune(source: Path, out: Path, embodiment: str, reinit_head: bool, seed: int = 0,
                     keep_statistics: bool = False) -> None:
    """A pre-trained checkpoint (any embodiment) made ready to train as ``embodiment``: the backbone kept, the
    action head kept or freshly initialised. The fine-tune's own data sets the statistics, unless
    ``keep_statistics``: then the pre-training mixture's entry for ``embodiment`` (which must exist)."""
    model, config, tokenizer = load_checkpoint(source)
    if reinit_head:
        reinitialize_head(model, seed)
    known = config.embodiment_stats or {config.embodiment: config.action_stats}
    if keep_statistics and embodiment not in known:
        raise ValueError(f"finetune with train.keep_statistics: {source} was trained on {sorted(known)}, not "
                         f"{embodiment!r}, so it has no statistics to keep; let the fine-tuning data set them")
    # Until the data sets them, the target acts with its own entry or, for a new embodiment, a placeholder.
    config = dataclasses.replace(config, embodiment=embodiment, embodiment_stats=None,
                                 action_stats=known.get(embodiment, config.action_stats))
    config.validate()
    save_checkpoint(model, config, tokenizer, out)


def reinitialize_head(model: torch.nn.Module, seed: int = 0) -> None:
    """The action head's weights as a new model of this configuration would start (the backbone untouched)."""
    config = model.config
    if not hasattr(model, "head"):
        raise ValueError(f"structure {config.structure} has no separate action head (it decodes actions with the "
                         f"language model head); use finetune.head: keep")
    torch.manual_seed(seed)
    hidden = model.backbone.hidden_size
    fresh = build_policy_head(config.policy_head, hidden, config.chunk, config.window) \
        if config.structure == "policy_head" else ChunkMLP(hidden, config.chunk)
    model.head.load_state_dict(fresh.state_dict())


def create_checkpoint_from(spec: CreateSpec, out: Path) -> None:
    """A new checkpoint in ``out`` as a recipe's init.create describes it."""
    from robovlms_policy.vla.init_checkpoint import create_checkpoint
    from robovlms_policy.vla.proprio import PROPRIO_LAYOUTS

    if spec.proprio_layout and spec.proprio_layout not in PROPRIO_LAYOUTS:
        raise RecipeError(f"init.create.proprio_layout: {spec.proprio_layout!r} is not one of "
                          f"{sorted(PROPRIO_LAYOUTS)}")
    proprio = dict(proprio_layout=spec.proprio_layout, proprio_dim=PROPRIO_LAYOUTS[spec.proprio_layout]) \
        if spec.proprio_layout else {}
    create_checkpoint(out, spec.backbone, spec.structure, tiny=spec.tiny, pretrained=spec.pretrained,
                      seed=spec.seed, backbone_changes=spec.backbone_changes or None,
                      tokenizer=_bpe_tokenizer(spec) if spec.bpe_corpus else None, policy_head=spec.policy_head,
                      embodiment=spec.embodiment, camera_names=list(spec.camera_names), window=spec.window,
                      chunk=spec.chunk, image_size=spec.image_size, image_readout=spec.image_readout, **proprio)


def _bpe_tokenizer(spec: CreateSpec):
    from robovlms_policy.vla.tokenizer import build_bpe_tokenizer

    if spec.bpe_corpus == "twin":
        from robovlms_twin.tasks import TASKS
        texts = [i for task in TASKS.values() for i in task.instructions]
    else:
        path = Path(spec.bpe_corpus).expanduser()
        if not path.is_file():
            raise RecipeError(f"init.create.bpe_corpus: {path} is neither 'twin' nor a file of instructions")
        texts = path.read_text().splitlines()
    return build_bpe_tokenizer(texts, spec.bpe_merges)


def _wait_for(path: Path) -> Path:
    deadline = time.monotonic() + WAIT_SECONDS
    while not path.is_file():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank {rank_zero_only.rank}: rank 0 did not write {path} within {WAIT_SECONDS} s")
        time.sleep(1.0)
    return path.parent
