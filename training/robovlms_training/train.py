"""robovlms-train: fine-tune a VLA checkpoint on recorded trials and write a new checkpoint the policy node loads.

Data: trial run directories recorded as rosbags (``make demo``, the trial recorder), episode stores written by
``robovlms-twin-collect`` and CALVIN split directories (``task_ABC_D/training``), in any mix. Action statistics (1st
/ 99th percentiles, with a floor on each dimension's range) and, for checkpoints with proprioception, its mean / std
replace the initial checkpoint's unless ``keep_statistics`` (continuing from a trained checkpoint). A validation
split by seed (or the given validation data, e.g. CALVIN's validation split) is scored every ``val_every`` steps;
the best and the periodic checkpoints are written under OUT_DIR/checkpoints, the final one to OUT_DIR. Logs (CSV and
TensorBoard) stay under OUT_DIR/train_logs; nothing is downloaded.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch.utils.data import DataLoader

from robovlms_policy.vla.action_codec import ActionCodec, ActionStatistics
from robovlms_policy.vla.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from robovlms_policy.vla.policy import VLAPolicy
from robovlms_policy.vla.proprio import ProprioNormalizer

from .augment import AugmentConfig, FrameProcessor
from .dataset import WindowCollator, WindowDataset, action_statistics, proprio_statistics, split_by_seed
from .episodes import Episode, EpisodeError
from .sources import default_topics, read_sources
from .module import OptimizerConfig, VLAFineTuner

LOG_DIR = "train_logs"
CHECKPOINT_DIR = "checkpoints"
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
    validation_data: list[str | Path] | None = None  # validation episodes from here instead of a split
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
    progress_bar: bool = False
    camera_topics: dict[str, str] | None = None
    twin_eval_every: int = 0  # optimiser steps between closed-loop twin evaluations (0: none)
    twin_eval_episodes: int = 2  # per task


@dataclass
class TrainSummary:
    out_dir: Path
    episodes: int
    samples: int  # batch rows in the training set
    steps: int
    samples_seen: int  # rows the optimiser processed
    frames_seen: int  # supervised steps the optimiser processed
    losses: list[float]
    seconds: float
    validation: dict[str, float]

    @property
    def samples_per_second(self) -> float:
        return self.frames_seen / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        first, last = (self.losses[0], self.losses[-1]) if self.losses else (float("nan"), float("nan"))
        val = ", ".join(f"{k} {v:.4f}" for k, v in self.validation.items())
        return (f"trained {self.steps} steps on {self.samples} rows from {self.episodes} episode(s) in "
                f"{self.seconds:.1f} s ({self.samples_per_second:.1f} supervised steps/s); loss {first:.4f} -> "
                f"{last:.4f}" + (f"; validation: {val}" if val else "") + f"; checkpoint: {self.out_dir}")


class CheckpointWriter(L.Callback):
    """Writes the model in the checkpoint format: every ``every`` steps and whenever val/loss improves."""

    def __init__(self, out: Path, config, tokenizer, every: int) -> None:
        self.out, self.config, self.tokenizer, self.every = out, config, tokenizer, every
        self.best = math.inf
        self.best_step = -1

    def _save(self, module, name: str) -> None:
        was_training = module.model.training
        save_checkpoint(module.model.eval(), self.config, self.tokenizer, self.out / CHECKPOINT_DIR / name)
        module.model.train(was_training)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.every > 0 and trainer.global_step % self.every == 0:
            self._save(module, f"step_{trainer.global_step:06d}")

    def on_validation_end(self, trainer, module) -> None:
        loss = trainer.callback_metrics.get("val/loss")
        if loss is not None and float(loss) < self.best and not trainer.sanity_checking:
            self.best, self.best_step = float(loss), trainer.global_step
            self._save(module, "best")


def train(init: str | Path, data: Sequence[str | Path], out: str | Path, settings: TrainSettings | None = None,
          optim: OptimizerConfig | None = None) -> TrainSummary:
    """Load episodes and the initial checkpoint, set the statistics, train, save to ``out``."""
    settings = settings or TrainSettings()
    optim = optim or OptimizerConfig()
    out = Path(out)
    if settings.max_steps < 1 or settings.batch_size < 1:
        raise ValueError(f"max_steps and batch_size must be >= 1, got {settings.max_steps} and {settings.batch_size}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"output {out} already exists and is not empty; choose a new directory")
    model, config, tokenizer = load_checkpoint(init)
    topics = settings.camera_topics or default_topics(config.camera_names)

    def read(paths: Sequence[str | Path], scenes: Sequence[str] | None = None) -> list[Episode]:
        return read_sources(paths, settings.include_failures, topics, scenes, settings.progress_bar)

    if settings.validation_data:  # the scene choice is the training data's (CALVIN validates on its own scene)
        train_episodes = read(data, settings.calvin_scenes)
        val_episodes = read(settings.validation_data)
    else:
        train_episodes, val_episodes = split_by_seed(read(data, settings.calvin_scenes), settings.validation_fraction)
    config = _statistics(config, train_episodes, settings)
    codec = ActionCodec(ActionStatistics.from_dict(config.action_stats), config.embodiment, config.n_bins)
    proprio = ProprioNormalizer.from_dict(config.proprio_stats) if config.proprio_stats else None

    def dataset(subset: list[Episode]) -> WindowDataset:
        return WindowDataset(subset, codec, config.camera_names, config.image_size, config.window, config.chunk,
                             settings.segment, proprio)

    train_set = dataset(train_episodes)
    collate = WindowCollator(tokenizer, config.max_instruction_tokens)
    L.seed_everything(settings.seed, workers=True, verbose=False)
    loader = DataLoader(train_set, batch_size=settings.batch_size, shuffle=True, num_workers=settings.num_workers,
                        collate_fn=collate, generator=torch.Generator().manual_seed(settings.seed), drop_last=True
                        if len(train_set) > settings.batch_size else False)
    val_loader = DataLoader(dataset(val_episodes), batch_size=settings.batch_size, collate_fn=collate) \
        if val_episodes else None
    frames = FrameProcessor(config.image_mean, config.image_std, settings.augment)
    settings, optim = _schedule(settings, optim, len(loader))
    if optim.total_steps == 0:
        optim = dataclasses.replace(optim, total_steps=settings.max_steps)
    # Checkpoints load in eval mode, and Lightning keeps a module's mode: switch dropout on for training.
    module = VLAFineTuner(model.train(), optim, frames)
    out.mkdir(parents=True, exist_ok=True)
    writer = CheckpointWriter(out, config, tokenizer, settings.save_every)
    callbacks: list[L.Callback] = [writer]
    twin_eval = _twin_eval_callback(config, tokenizer, settings)
    if twin_eval is not None:
        callbacks.append(twin_eval)
    loggers = [CSVLogger(out, name=LOG_DIR, version=""), TensorBoardLogger(out, name=LOG_DIR, version="tensorboard")]
    val_every = settings.val_every or settings.max_steps
    trainer = L.Trainer(max_steps=settings.max_steps, max_epochs=-1, accelerator=settings.accelerator, devices=1,
                        precision=settings.precision, gradient_clip_val=settings.gradient_clip or None,
                        default_root_dir=out, logger=loggers, callbacks=callbacks, enable_checkpointing=False,
                        enable_progress_bar=settings.progress_bar, enable_model_summary=False,
                        log_every_n_steps=1, val_check_interval=val_every if val_loader else None,
                        check_val_every_n_epoch=None, num_sanity_val_steps=0,
                        limit_val_batches=1.0 if val_loader else 0)
    start = time.perf_counter()
    trainer.fit(module, loader, val_loader)
    seconds = time.perf_counter() - start
    save_checkpoint(module.model.cpu().eval(), config, tokenizer, out)
    if twin_eval is not None:
        from .twin_eval import evaluation_table
        evaluation_table(out / "twin_eval.csv", twin_eval.history)
    validation = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    return TrainSummary(out, len(train_set.episodes), len(train_set), trainer.global_step, module.samples_seen,
                        module.steps_seen, module.loss_history, seconds, validation)


def _schedule(settings: TrainSettings, optim: OptimizerConfig,
              batches_per_epoch: int) -> tuple[TrainSettings, OptimizerConfig]:
    """Epoch-based lengths (``epochs``, ``warmup_epochs``) turned into optimiser steps."""
    if settings.epochs < 0 or settings.warmup_epochs < 0 or settings.gradient_clip < 0:
        raise ValueError("epochs, warmup_epochs and gradient_clip must be >= 0")
    if settings.epochs > 0:
        settings = dataclasses.replace(settings, max_steps=max(1, math.ceil(settings.epochs * batches_per_epoch)))
    if settings.warmup_epochs > 0:
        optim = dataclasses.replace(optim, warmup_steps=math.ceil(settings.warmup_epochs * batches_per_epoch))
    return settings, optim


def _statistics(config, episodes: list[Episode], settings: TrainSettings):
    """The config with action (and proprioception) statistics of the training data, unless kept."""
    if settings.keep_statistics:
        if config.proprio_dim and not config.proprio_stats:
            raise ValueError("keep_statistics: the initial checkpoint has no proprioception statistics")
        return config
    embodiment = ActionCodec(ActionStatistics.from_dict(config.action_stats), config.embodiment).embodiment
    stats = action_statistics(episodes, embodiment, min_range=settings.min_range)
    changes = {"action_stats": stats.to_dict()}
    if config.proprio_dim:
        changes["proprio_stats"] = proprio_statistics(episodes).to_dict()
    return dataclasses.replace(config, **changes)


def _twin_eval_callback(config, tokenizer, settings: TrainSettings):
    if settings.twin_eval_every <= 0:
        return None
    from robovlms_twin.tasks import TASKS

    from .twin_eval import TwinEvalCallback
    return TwinEvalCallback(lambda model: VLAPolicy(model, config, tokenizer), list(TASKS),
                            settings.twin_eval_every, settings.twin_eval_episodes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robovlms-train", description=__doc__.splitlines()[0])
    parser.add_argument("--init", required=True, type=Path, help="checkpoint directory to start from")
    parser.add_argument("--data", required=True, nargs="+", type=Path,
                        help="run or trial directories (rosbags) and/or episode stores (robovlms-twin-collect)")
    parser.add_argument("--out", required=True, type=Path, help="new (empty) checkpoint directory")
    parser.add_argument("--val-data", nargs="+", type=Path,
                        help="validation episodes from these sources instead of a split by seed")
    parser.add_argument("--calvin-scenes", nargs="+", metavar="SCENE",
                        help="CALVIN annotations of these scenes only (e.g. A B C of task_ABCD_D)")
    parser.add_argument("--max-steps", type=int, default=200, help="optimiser steps")
    parser.add_argument("--epochs", type=float, default=0.0, help="passes over the training rows (replaces "
                        "--max-steps)")
    parser.add_argument("--batch-size", type=int, default=8, help="rows per batch")
    parser.add_argument("--segment", type=int, default=16, help="supervised steps per row")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-steps", type=int, default=0, help="linear learning-rate warm-up")
    parser.add_argument("--warmup-epochs", type=float, default=0.0, help="warm-up in passes (replaces "
                        "--warmup-steps)")
    parser.add_argument("--gradient-clip", type=float, default=0.0, help="gradient-norm clip (0: none)")
    parser.add_argument("--precision", default="32-true", help="Lightning precision (32-true, bf16-mixed, ...)")
    parser.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine decay ends at this x lr")
    parser.add_argument("--gripper-weight", type=float, default=OptimizerConfig.gripper_weight,
                        help="weight of the gripper loss next to the arm's")
    parser.add_argument("--validation-fraction", type=float, default=0.1, help="episodes held out, by seed")
    parser.add_argument("--min-range", type=float, nargs=2, default=(DEFAULT_MIN_RANGE[0], DEFAULT_MIN_RANGE[3]),
                        metavar=("TRANSLATION", "ROTATION"),
                        help="floor on each arm dimension's normalisation range (dataset units: m and rad for kinova)")
    parser.add_argument("--val-every", type=int, default=0, help="steps between validations (0: at the end)")
    parser.add_argument("--save-every", type=int, default=0, help="steps between kept checkpoints")
    parser.add_argument("--twin-eval-every", type=int, default=0,
                        help="steps between closed-loop evaluations on the twin (0: none)")
    parser.add_argument("--no-augment", action="store_true", help="no random shift / colour jitter")
    parser.add_argument("--keep-statistics", action="store_true",
                        help="keep the initial checkpoint's action / proprioception statistics")
    parser.add_argument("--include-failures", action="store_true", help="also train on failed / unlabelled trials")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (GPU when available)")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--camera-topic", action="append", default=[], metavar="NAME=TOPIC",
                        help="camera name <- bag topic (repeatable; default static=/rgb/image_raw, "
                             "wrist=/camera/camera/color/image_raw)")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress-bar", dest="progress_bar", action="store_true", default=None,
                          help="show a progress bar (default: when stderr is a terminal)")
    progress.add_argument("--no-progress-bar", dest="progress_bar", action="store_false")
    return parser


def _camera_topics(entries: list[str]) -> dict[str, str] | None:
    if not entries:
        return None
    topics = {}
    for entry in entries:
        name, sep, topic = entry.partition("=")
        if not sep or not name.strip() or not topic.strip():
            raise ValueError(f"--camera-topic {entry!r} is not NAME=TOPIC")
        topics[name.strip()] = topic.strip()
    return topics


def quiet_lightning() -> None:
    """Lightning's start-up banners and data-loader tips are noise for a CLI; real problems still print."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=PossibleUserWarning)
    # lightning 2.6 still uses torch's deprecated pytree LeafSpec; harmless, and not the user's to fix.
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_lightning()
    try:
        optim = OptimizerConfig(args.lr, args.weight_decay, args.warmup_steps, 0, args.min_lr_ratio,
                                args.gripper_weight)
        settings = TrainSettings(
            max_steps=args.max_steps, epochs=args.epochs, warmup_epochs=args.warmup_epochs,
            batch_size=args.batch_size, segment=args.segment, validation_fraction=args.validation_fraction,
            validation_data=args.val_data, calvin_scenes=tuple(args.calvin_scenes) if args.calvin_scenes else None,
            val_every=args.val_every, save_every=args.save_every,
            include_failures=args.include_failures, keep_statistics=args.keep_statistics,
            min_range=(args.min_range[0],) * 3 + (args.min_range[1],) * 3,
            augment=None if args.no_augment else AugmentConfig(), accelerator=args.accelerator,
            precision=args.precision, gradient_clip=args.gradient_clip, seed=args.seed,
            num_workers=args.num_workers,
            progress_bar=sys.stderr.isatty() if args.progress_bar is None else args.progress_bar,
            camera_topics=_camera_topics(args.camera_topic), twin_eval_every=args.twin_eval_every)
        summary = train(args.init, args.data, args.out, settings, optim)
    except (EpisodeError, CheckpointError, ValueError, OSError, FloatingPointError) as err:
        print(f"robovlms-train: error: {err}", file=sys.stderr)
        return 1
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
