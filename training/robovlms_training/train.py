"""robovlms-train: fine-tune a VLA checkpoint on recorded trials and write a new checkpoint the policy node loads.

Data: trial run directories recorded as rosbags (``make demo``, the trial recorder), episode stores written by
``robovlms-twin-collect`` and CALVIN split directories (``task_ABC_D/training``), in any mix. Action statistics (1st
/ 99th percentiles, with a floor on each dimension's range) and, for checkpoints with proprioception, its mean / std
replace the initial checkpoint's unless ``keep_statistics`` (continuing from a trained checkpoint). A validation
split by seed (or the given validation data, e.g. CALVIN's validation split) is scored every ``val_every`` steps;
the best and the periodic checkpoints are written under OUT_DIR/checkpoints, the final one to OUT_DIR. Logs (CSV and
TensorBoard) stay under OUT_DIR/train_logs; nothing is downloaded.

Distributed runs (``strategy`` ddp / fsdp / deepspeed_stage_2|3, ``devices``, ``num_nodes``) use Lightning's own
launchers: a single command on one machine starts the other local ranks itself; on a cluster start it under
torchrun or SLURM (``srun``) and Lightning reads their environment. Lightning's own training checkpoint
(optimizer and scheduler state) is kept as OUT_DIR/resume/last.ckpt, and ``resume`` continues from it.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from robovlms_policy.vla.backbones.base import BackboneLoadError
from robovlms_policy.vla.checkpoint import CheckpointError, load_checkpoint
from robovlms_policy.vla.policy import VLAPolicy

from .augment import AugmentConfig, FrameProcessor
from .callbacks import CheckpointWriter, ReplicaCheck, whole_model
from .episodes import EpisodeError
from .module import OptimizerConfig, VLAFineTuner
from .oxe.streaming import StreamPlacement
from .run_data import run_data

# What a user's mistake raises (bad data, files, settings, a machine that cannot run them): one line, exit 1.
USER_ERRORS = (EpisodeError, CheckpointError, BackboneLoadError, ValueError, OSError, FloatingPointError,
               TimeoutError, MisconfigurationException)
LOG_DIR = "train_logs"
RESUME_DIR = "resume"
RESUME_FILE = "last.ckpt"
STRATEGIES = ("auto", "ddp", "ddp_spawn", "fsdp", "deepspeed_stage_2", "deepspeed_stage_2_offload",
              "deepspeed_stage_3", "deepspeed_stage_3_offload")


def resume_state(out: Path) -> Path:
    """OUT/resume/last.ckpt: Lightning's training state of a run (a file; a directory under DeepSpeed)."""
    return out / RESUME_DIR / RESUME_FILE


# Floors on the normalisation range of each arm dimension (kinova units: m, rad per period).
DEFAULT_MIN_RANGE = (0.01, 0.01, 0.01, 0.05, 0.05, 0.05)


@dataclass
class TrainSettings:
    max_steps: int = 200
    epochs: float = 0.0  # > 0: train this many passes over the training rows instead of max_steps
    warmup_epochs: float = 0.0  # > 0: the learning-rate warm-up in passes (replaces optim.warmup_steps)
    batch_size: int = 8
    segment: int = 16  # supervised steps per batch row (each with its full history)
    validation_fraction: float = 0.1
    validation_data: list[Path] | None = None  # validation episodes from here instead of a split
    calvin_scenes: tuple[str, ...] | None = None  # CALVIN annotations of these scenes only (None: all)
    val_every: int = 0  # optimiser steps between validations (0: only at the end)
    save_every: int = 0  # optimiser steps between kept checkpoints (0: none besides best and final)
    include_failures: bool = False
    keep_statistics: bool = False
    min_range: tuple[float, ...] = DEFAULT_MIN_RANGE
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    accelerator: str = "auto"
    precision: str = "32-true"  # Lightning precision, e.g. bf16-mixed on a GPU
    gradient_clip: float = 0.0  # clip the gradient norm to this (0: no clipping)
    seed: int = 0
    num_workers: int = 0
    progress_bar: bool | None = None  # None: when stderr is a terminal
    camera_topics: dict[str, str] | None = None
    twin_eval_every: int = 0  # optimiser steps between closed-loop twin evaluations (0: none)
    twin_eval_episodes: int = 2  # per task
    strategy: str = "auto"  # Lightning strategy: ddp, fsdp, deepspeed_stage_2 / _3 (deepspeed imported only then)
    devices: int = 1  # per node
    num_nodes: int = 1
    accumulate_grad_batches: int = 1
    gradient_checkpointing: bool = False  # recompute the backbone's activations in the backward pass
    streaming: bool = False  # read episodes lazily through a shuffle buffer (data larger than memory)
    shuffle_buffer: int = 1000  # rows held for shuffling when streaming

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy {self.strategy!r} is not one of {STRATEGIES}")
        if min(self.devices, self.num_nodes, self.accumulate_grad_batches, self.shuffle_buffer) < 1:
            raise ValueError("devices, num_nodes, accumulate_grad_batches and shuffle_buffer must be >= 1")
        if self.strategy == "fsdp" and self.gradient_clip > 0:
            raise ValueError("strategy fsdp: Lightning's FSDP precision cannot clip the gradient norm; set "
                             "gradient_clip: 0 (or use ddp / deepspeed)")


@dataclass
class TrainSummary:
    out_dir: Path
    episodes: int
    samples: int  # batch rows in the training set
    steps: int
    samples_seen: int  # rows the optimiser processed, all replicas together
    frames_seen: int  # supervised steps the optimiser processed, all replicas together
    losses: list[float]
    seconds: float
    validation: dict[str, float]
    rank: int = 0  # global rank of the process (distributed runs return a summary on every rank)

    @property
    def samples_per_second(self) -> float:
        return self.frames_seen / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        first, last = (self.losses[0], self.losses[-1]) if self.losses else (float("nan"), float("nan"))
        val = ", ".join(f"{k} {v:.4f}" for k, v in self.validation.items())
        return (f"trained {self.steps} steps on {self.samples} rows from {self.episodes} episode(s) in "
                f"{self.seconds:.1f} s ({self.samples_per_second:.1f} supervised steps/s); loss {first:.4f} -> "
                f"{last:.4f}" + (f"; validation: {val}" if val else "") + f"; checkpoint: {self.out_dir}")


def train(init: str | Path, data: Sequence[str | Path], out: str | Path, settings: TrainSettings | None = None,
          optim: OptimizerConfig | None = None, weights: Sequence[float] | None = None,
          attachments: dict[str, str] | None = None, resume: bool = False) -> TrainSummary:
    """Load episodes and the initial checkpoint, set the statistics, train, save to ``out``.

    ``weights``: one sampling weight per ``data`` source (rows drawn in proportion; None: every row alike).
    ``attachments``: files (name -> text) written into every checkpoint, e.g. the resolved recipe.
    ``resume``: continue the run in ``out`` from its OUT/resume/last.ckpt."""
    settings = settings or TrainSettings()
    if settings.progress_bar is None:
        settings = dataclasses.replace(settings, progress_bar=sys.stderr.isatty())
    optim = optim or OptimizerConfig()
    out = Path(out)
    _check_run(settings, out, resume, data, weights)
    model, config, tokenizer = load_checkpoint(init)
    prepared = run_data(data, weights, config, tokenizer, settings)
    config = prepared.config
    frames = FrameProcessor(config.image_mean, config.image_std, settings.augment)
    # Lengths in passes count optimiser steps: batches per replica, over the accumulation.
    batches = prepared.batches_per_epoch(settings.devices * settings.num_nodes)
    settings, optim = _schedule(settings, optim, None if batches is None else
                                max(1, batches // settings.accumulate_grad_batches))
    if optim.total_steps == 0:
        optim = dataclasses.replace(optim, total_steps=settings.max_steps)
    if settings.gradient_checkpointing:
        _enable_gradient_checkpointing(model)
    # Checkpoints load in eval mode, and Lightning keeps a module's mode: switch dropout on for training.
    module = VLAFineTuner(model.train(), optim, frames)
    out.mkdir(parents=True, exist_ok=True)
    writer = CheckpointWriter(out, config, tokenizer, settings.save_every, attachments)
    callbacks: list[L.Callback] = [writer, ReplicaCheck(out), StreamPlacement(), ModelCheckpoint(
        dirpath=out / RESUME_DIR, filename="step_{step}", save_top_k=0, save_last=True,
        every_n_train_steps=settings.save_every or settings.val_every or max(1, settings.max_steps // 10))]
    twin_eval = _twin_eval_callback(config, tokenizer, settings)
    if twin_eval is not None:
        callbacks.append(twin_eval)
    # A resumed run logs its CSV beside the first one's (Lightning would replace metrics.csv); TensorBoard appends.
    csv_version = time.strftime("resumed_%Y%m%d-%H%M%S") if resume else ""
    loggers = [CSVLogger(out, name=LOG_DIR, version=csv_version),
               TensorBoardLogger(out, name=LOG_DIR, version="tensorboard")]
    # Lightning counts batches in val_check_interval, not optimiser steps.
    val_interval = (settings.val_every or settings.max_steps) * settings.accumulate_grad_batches
    trainer = L.Trainer(max_steps=settings.max_steps, max_epochs=-1, accelerator=settings.accelerator,
                        devices=settings.devices, num_nodes=settings.num_nodes, strategy=_strategy(settings),
                        precision=settings.precision, gradient_clip_val=settings.gradient_clip or None,
                        accumulate_grad_batches=settings.accumulate_grad_batches,
                        default_root_dir=out, logger=loggers, callbacks=callbacks, enable_checkpointing=True,
                        enable_progress_bar=settings.progress_bar, enable_model_summary=False,
                        log_every_n_steps=1, val_check_interval=val_interval if prepared.val_loader else None,
                        check_val_every_n_epoch=None, num_sanity_val_steps=0,
                        limit_val_batches=1.0 if prepared.val_loader else 0)
    start = time.perf_counter()
    trainer.fit(module, prepared.loader, prepared.val_loader,
                ckpt_path=resume_state(out) if resume else None)
    seconds = time.perf_counter() - start
    trainer.save_checkpoint(resume_state(out))  # the final state (every rank: sharded strategies)
    final = whole_model(trainer, module, config)
    if final is not None:
        writer.save(final.cpu(), out)
    if twin_eval is not None and trainer.is_global_zero:
        from .twin_eval import evaluation_table
        evaluation_table(out / "twin_eval.csv", twin_eval.history)
    validation = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    if writer.best_step >= 0:
        validation["val/best_loss"] = writer.best
    replicas = trainer.world_size  # they see equal batches: this rank's counts times their number
    return TrainSummary(out, prepared.episodes, prepared.rows, trainer.global_step, module.samples_seen * replicas,
                        module.steps_seen * replicas, module.loss_history, seconds, validation, trainer.global_rank)


def _check_run(settings: TrainSettings, out: Path, resume: bool, data: Sequence, weights) -> None:
    if settings.max_steps < 1 or settings.batch_size < 1:
        raise ValueError(f"max_steps and batch_size must be >= 1, got {settings.max_steps} and {settings.batch_size}")
    if weights is not None and (len(weights) != len(data) or not all(w > 0 for w in weights)):
        raise ValueError(f"need one weight > 0 per data source: {len(data)} source(s), weights {list(weights)}")
    if settings.strategy.startswith("deepspeed") and importlib.util.find_spec("deepspeed") is None:
        raise ValueError(f"strategy {settings.strategy} needs DeepSpeed: pip install deepspeed (on a CUDA machine)")
    if rank_zero_only.rank != 0:
        return  # the output directory is rank 0's to check and create
    if resume:
        if not resume_state(out).exists():
            raise ValueError(f"cannot resume: {resume_state(out)} does not exist")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"output {out} already exists and is not empty; choose a new directory (or resume)")


def _strategy(settings: TrainSettings) -> str:
    # Continuous structures leave parts of the VLM unused (its LM head, for one): DDP must expect that.
    return {"ddp": "ddp_find_unused_parameters_true",
            "ddp_spawn": "ddp_spawn_find_unused_parameters_true"}.get(settings.strategy, settings.strategy)


def _enable_gradient_checkpointing(model) -> None:
    vlm = model.backbone.model
    if not getattr(vlm, "supports_gradient_checkpointing", False):
        raise ValueError(f"the {type(vlm).__name__} backbone does not support gradient checkpointing")
    # Non-reentrant checkpointing keeps the RNG state, so dropout masks match the forward pass.
    vlm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def _schedule(settings: TrainSettings, optim: OptimizerConfig,
              batches_per_epoch: int | None) -> tuple[TrainSettings, OptimizerConfig]:
    """Epoch-based lengths (``epochs``, ``warmup_epochs``) turned into optimiser steps (``batches_per_epoch``:
    optimiser steps per pass; None for a stream, which has no passes)."""
    if settings.epochs < 0 or settings.warmup_epochs < 0 or settings.gradient_clip < 0:
        raise ValueError("epochs, warmup_epochs and gradient_clip must be >= 0")
    if settings.warmup_epochs > 0 and optim.warmup_ratio > 0:
        raise ValueError("give one warm-up length: train.warmup_epochs or optim.warmup_ratio, not both")
    if settings.epochs > 0:
        settings = dataclasses.replace(settings, max_steps=max(1, math.ceil(settings.epochs * batches_per_epoch)))
    if settings.warmup_epochs > 0:
        optim = dataclasses.replace(optim, warmup_steps=math.ceil(settings.warmup_epochs * batches_per_epoch))
    return settings, optim


def _twin_eval_callback(config, tokenizer, settings: TrainSettings):
    if settings.twin_eval_every <= 0:
        return None
    from robovlms_twin.tasks import TASKS

    from .twin_eval import TwinEvalCallback
    return TwinEvalCallback(lambda model: VLAPolicy(model, config, tokenizer), list(TASKS),
                            settings.twin_eval_every, settings.twin_eval_episodes)


def quiet_lightning() -> None:
    """Lightning's start-up banners and data-loader tips are noise for a CLI; real problems still print."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=PossibleUserWarning)
    # lightning 2.6 still uses torch's deprecated pytree LeafSpec; harmless, and not the user's to fix.
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
