"""robovlms-train: train a VLA checkpoint on recorded trials, episode stores, CALVIN splits or Open X-Embodiment
data, and write a checkpoint the policy node loads.

    robovlms-train fit --config twin_tiny --out runs/tiny [--override train.max_steps=100 ...]
    robovlms-train fit --resume runs/tiny                  continue a run from its last training state
    robovlms-train sweep --config twin_tiny --out runs/sweep --grid optim.lr=1e-4,2e-5 --grid train.batch_size=8,16
    robovlms-train --init CKPT --data RUN... --out DIR     the quick form: flags instead of a recipe

Recipes are YAML files (training/recipes/, or any path); see robovlms_training.recipe for the sections.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .augment import AugmentConfig
from .module import OptimizerConfig
from .train import DEFAULT_MIN_RANGE, USER_ERRORS, TrainSettings, quiet_lightning, train



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robovlms-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument("--arm-weights", type=float, nargs=6, default=None, metavar=("X", "Y", "Z", "RX", "RY", "RZ"),
                        help="relative arm loss weight of each dimension (default: equal)")
    parser.add_argument("--final-position-weight", type=float, default=0.0,
                        help="weight of the auxiliary loss regressing the episode's final TCP position from the "
                             "[LRN] features (policy_head with proprioception; default 0: off)")
    parser.add_argument("--vision-lr-scale", type=float, default=1.0,
                        help="the vision tower's learning rate as a fraction of --lr (0: frozen)")
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


def _flags_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        optim = OptimizerConfig(lr=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
                                min_lr_ratio=args.min_lr_ratio, gripper_weight=args.gripper_weight,
                                arm_weights=args.arm_weights, final_position_weight=args.final_position_weight,
                                vision_lr_scale=args.vision_lr_scale)
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
            progress_bar=args.progress_bar,
            camera_topics=_camera_topics(args.camera_topic), twin_eval_every=args.twin_eval_every)
        summary = train(args.init, args.data, args.out, settings, optim)
    except USER_ERRORS as err:
        print(f"robovlms-train: error: {err}", file=sys.stderr)
        return 1
    print(summary.describe())
    return 0


def _fit_main(argv: list[str]) -> int:
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from .fit import fit, resume_recipe
    from .recipe import load_recipe

    parser = argparse.ArgumentParser(prog="robovlms-train fit", description="train one recipe into a run directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="recipe YAML (a path, or a name under training/recipes/)")
    source.add_argument("--resume", type=Path, metavar="RUN", help="continue this run from RUN/checkpoint/resume")
    parser.add_argument("--out", type=Path, help="new run directory (with --config)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="set one recipe value, parsed as YAML (repeatable), e.g. train.max_steps=100")
    args = parser.parse_args(argv)
    if args.config and args.out is None:
        parser.error("--config needs --out RUN")
    if args.resume and args.out is not None:
        parser.error("--resume continues the run in its own directory: drop --out")
    try:
        recipe = resume_recipe(args.resume, args.override) if args.resume else load_recipe(args.config, args.override)
        summary = fit(recipe, args.resume or args.out, resume=args.resume is not None)
    except USER_ERRORS as err:
        print(f"robovlms-train: error: {err}", file=sys.stderr)
        return 1
    if rank_zero_only.rank == 0:
        print(summary.describe())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_lightning()
    if argv[:1] == ["fit"]:
        return _fit_main(argv[1:])
    if argv[:1] == ["sweep"]:
        from .sweep import main as sweep_main
        return sweep_main(argv[1:])
    return _flags_main(argv)


if __name__ == "__main__":
    sys.exit(main())
