"""robovlms-train: fine-tune a VLA checkpoint on recorded trials and write a new checkpoint the policy node loads.

Action statistics (1st / 99th percentiles of the training actions) replace the initial checkpoint's, so the
new checkpoint normalises and denormalises with the data it was trained on. Everything Lightning writes
(CSV log) stays under OUT_DIR; nothing is downloaded.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch.utils.data import DataLoader

from robovlms_policy.vla.action_codec import ActionCodec
from robovlms_policy.vla.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from robovlms_policy.vla.policy import VLAPolicy

from .dataset import WindowCollator, WindowDataset, action_statistics, usable_episodes
from .episodes import DEFAULT_CAMERA_TOPICS, EpisodeError, load_episodes
from .module import OptimizerConfig, VLAFineTuner

LOG_DIR = "train_logs"


@dataclass
class TrainSummary:
    out_dir: Path
    episodes: int
    samples: int  # windows in the dataset
    steps: int
    samples_seen: int  # windows the optimiser processed
    losses: list[float]
    seconds: float

    @property
    def samples_per_second(self) -> float:
        return self.samples_seen / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        first, last = (self.losses[0], self.losses[-1]) if self.losses else (float("nan"), float("nan"))
        return (f"trained {self.steps} steps on {self.samples} windows from {self.episodes} episode(s) in "
                f"{self.seconds:.1f} s ({self.samples_per_second:.1f} samples/s); loss {first:.4f} -> {last:.4f}; "
                f"checkpoint: {self.out_dir}")


def train(init: str | Path, data: Sequence[str | Path], out: str | Path, max_steps: int = 200, batch_size: int = 8,
          optim: OptimizerConfig | None = None, include_failures: bool = False, accelerator: str = "auto",
          seed: int = 0, num_workers: int = 0, progress_bar: bool = False,
          camera_topics: dict[str, str] | None = None) -> TrainSummary:
    """Load episodes and the initial checkpoint, set the action statistics, train, save to ``out``."""
    out = Path(out)
    if max_steps < 1 or batch_size < 1:
        raise ValueError(f"max_steps and batch_size must be >= 1, got {max_steps} and {batch_size}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"output {out} already exists and is not empty; choose a new directory")
    model, config, tokenizer = load_checkpoint(init)
    episodes = load_episodes(data, include_failures, camera_topics or _default_topics(config.camera_names))
    policy = VLAPolicy(model, config, tokenizer)  # validates the config; its preprocess is reused below
    stats = action_statistics(usable_episodes(episodes, config.window), policy.codec.embodiment)
    config = dataclasses.replace(config, action_stats=stats.to_dict())
    codec = ActionCodec(stats, config.embodiment, config.n_bins)
    dataset = WindowDataset(episodes, codec, policy.preprocess, config.camera_names, config.window, config.chunk)

    L.seed_everything(seed, workers=True, verbose=False)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                        collate_fn=WindowCollator(tokenizer, config.max_instruction_tokens),
                        generator=torch.Generator().manual_seed(seed))
    module = VLAFineTuner(model, optim or OptimizerConfig())
    out.mkdir(parents=True, exist_ok=True)
    trainer = L.Trainer(max_steps=max_steps, max_epochs=-1, accelerator=accelerator, devices=1,
                        default_root_dir=out, logger=CSVLogger(out, name=LOG_DIR, version=""),
                        enable_checkpointing=False, enable_progress_bar=progress_bar, enable_model_summary=False,
                        log_every_n_steps=1)
    start = time.perf_counter()
    trainer.fit(module, loader)
    seconds = time.perf_counter() - start
    save_checkpoint(module.model.cpu().eval(), config, tokenizer, out)
    return TrainSummary(out, len(dataset.episodes), len(dataset), trainer.global_step, module.samples_seen,
                        module.loss_history, seconds)


def _default_topics(camera_names: Sequence[str]) -> dict[str, str]:
    """Bag topics of the checkpoint's cameras under the suite's default mapping (only those are read)."""
    unknown = [name for name in camera_names if name not in DEFAULT_CAMERA_TOPICS]
    if unknown:
        raise ValueError(f"checkpoint camera(s) {unknown} have no default topic; give --camera-topic NAME=TOPIC")
    return {name: DEFAULT_CAMERA_TOPICS[name] for name in camera_names}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robovlms-train", description=__doc__.splitlines()[0])
    parser.add_argument("--init", required=True, type=Path, help="checkpoint directory to start from")
    parser.add_argument("--data", required=True, nargs="+", type=Path, help="run or trial directories")
    parser.add_argument("--out", required=True, type=Path, help="new (empty) checkpoint directory")
    parser.add_argument("--max-steps", type=int, default=200, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-steps", type=int, default=0, help="linear learning-rate warm-up")
    parser.add_argument("--include-failures", action="store_true", help="also train on failed / unlabelled trials")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (GPU when available)")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--camera-topic", action="append", default=[], metavar="NAME=TOPIC",
                        help="camera name <- bag topic (repeatable; default static=/rgb/image_raw, "
                             "wrist=/camera/camera/color/image_raw)")
    parser.add_argument("--progress-bar", action="store_true")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Lightning's start-up banners and data-loader tips are noise for a CLI; real problems still print.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=PossibleUserWarning)
    # lightning 2.6 still uses torch's deprecated pytree LeafSpec; harmless, and not the user's to fix.
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    try:
        optim = OptimizerConfig(args.lr, args.weight_decay, args.warmup_steps)
        summary = train(args.init, args.data, args.out, args.max_steps, args.batch_size, optim,
                        args.include_failures, args.accelerator, args.seed, args.num_workers, args.progress_bar,
                        _camera_topics(args.camera_topic))
    except (EpisodeError, CheckpointError, ValueError, OSError, FloatingPointError) as err:
        print(f"robovlms-train: error: {err}", file=sys.stderr)
        return 1
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
