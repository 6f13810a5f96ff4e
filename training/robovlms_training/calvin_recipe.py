"""robovlms-train-calvin: the RoboVLMs paper's headline CALVIN model, a KosMos-2 policy head trained ABC -> D.

    robovlms-train-calvin --dataset ~/calvin/dataset/task_ABC_D --pretrained ~/models/kosmos-2-patch14-224 \\
        --out runs/calvin-kosmos2 --accelerator gpu

Stages (each skipped when its output exists, so an interrupted run resumes from the last finished stage):
  1. init   a KosMos-2 policy-head checkpoint from the local pretrained directory (nothing downloads): LSTM
            head over the window of per-frame [LRN] features, both cameras, window 16, chunk 10, 224 px,
            the calvin embodiment (actions in CALVIN's units: 0.02 m, 0.05 rad)
  2. train  on the split's training directory (scenes A, B, C; ``--split ABCD`` adds D) with its validation
            directory (scene D) as the validation set, the optimiser settings of RoboVLMs' CALVIN KosMos-2
            configuration (below), random shift as its rgb_pad / gripper_pad.

Evaluate the result with ``robovlms-calvin-eval run --checkpoint OUT/checkpoint``. ``--tiny`` swaps in the
tiny random KosMos-2 at 32 px for a CPU dry run of the whole recipe on any CALVIN-format directory.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from robovlms_policy.vla.backbones.base import BackboneLoadError
from robovlms_policy.vla.checkpoint import CheckpointError

from .augment import AugmentConfig
from .episodes import EpisodeError
from .module import OptimizerConfig
from .train import TrainSettings, quiet_lightning, train

SPLIT_SCENES = {"ABC": ("A", "B", "C"), "ABCD": ("A", "B", "C", "D"), "D": ("D",)}
RECIPE_FILE = "recipe.json"


@dataclass(frozen=True)
class CalvinRecipe:
    # RoboVLMs' CALVIN fine-tuning of KosMos-2 (policy head, continuous actions).
    window: int = 16
    chunk: int = 10
    image_size: int = 224
    lr: float = 2e-5
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.0
    epochs: float = 5.0
    warmup_epochs: float = 0.25
    gripper_weight: float = 0.01  # arm loss + 0.01 x gripper loss
    gradient_clip: float = 1.0
    precision: str = "bf16-mixed"
    batch_size: int = 4  # rows per device, each 16 supervised steps with their history
    segment: int = 16
    shift_fraction: float = 0.05  # 10 px of the 200 px static view, 4 of the 84 px gripper view
    val_every: int = 2000
    save_every: int = 5000
    seed: int = 123


RECIPE = CalvinRecipe()
# A dry run: the same stages on the tiny random KosMos-2 (fp32: bf16 is slow on CPUs).
TINY_RECIPE = replace(RECIPE, image_size=32, lr=1e-4, precision="32-true", val_every=0, save_every=0)


def run(dataset: Path, out: Path, pretrained: Path | None, split: str = "ABC", recipe: CalvinRecipe = RECIPE,
        accelerator: str = "auto", max_steps: int = 0, progress: bool = True) -> Path:
    """Both stages; returns the trained checkpoint directory (OUT/checkpoint)."""
    from robovlms_policy.vla.init_checkpoint import create_checkpoint

    if split not in SPLIT_SCENES:
        raise ValueError(f"split {split!r} is not one of {sorted(SPLIT_SCENES)}")
    out.mkdir(parents=True, exist_ok=True)
    (out / RECIPE_FILE).write_text(json.dumps({"split": split, "dataset": str(dataset), "pretrained":
                                               str(pretrained) if pretrained else None, **asdict(recipe)}, indent=2))
    init, target = out / "init", out / "checkpoint"
    if not (init / "config.json").is_file():
        create_checkpoint(init, "kosmos2", "policy_head", tiny=pretrained is None, pretrained=pretrained,
                          seed=recipe.seed, policy_head="lstm", embodiment="calvin", camera_names=["static", "wrist"],
                          window=recipe.window, chunk=recipe.chunk, image_size=recipe.image_size)
    if (target / "config.json").is_file():
        print(f"[train-calvin] already trained: {target}", flush=True)
        return target
    settings = TrainSettings(
        max_steps=max_steps or 1, epochs=0.0 if max_steps else recipe.epochs, warmup_epochs=recipe.warmup_epochs,
        batch_size=recipe.batch_size, segment=recipe.segment, validation_data=[dataset / "validation"],
        calvin_scenes=SPLIT_SCENES[split], val_every=recipe.val_every, save_every=recipe.save_every,
        augment=AugmentConfig(shift_fraction=recipe.shift_fraction), accelerator=accelerator,
        precision=recipe.precision, gradient_clip=recipe.gradient_clip, seed=recipe.seed, progress_bar=progress)
    optim = OptimizerConfig(lr=recipe.lr, weight_decay=recipe.weight_decay, min_lr_ratio=recipe.min_lr_ratio,
                            gripper_weight=recipe.gripper_weight)
    summary = train(init, [dataset / "training"], target, settings, optim)
    print(summary.describe(), flush=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robovlms-train-calvin", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, type=Path, help="CALVIN dataset root (task_ABC_D, ...) "
                        "with training/ and validation/")
    parser.add_argument("--split", default="ABC", choices=sorted(SPLIT_SCENES), help="training scenes")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--pretrained", type=Path, help="local KosMos-2 directory (weights, tokenizer)")
    model.add_argument("--tiny", action="store_true", help="tiny random KosMos-2, 32 px: a CPU dry run")
    parser.add_argument("--out", required=True, type=Path, help="run directory (reused to resume)")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu or auto")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (default: the "
                        "recipe's epochs)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    quiet_lightning()
    try:
        run(args.dataset, args.out, args.pretrained, args.split, TINY_RECIPE if args.tiny else RECIPE,
            args.accelerator, args.max_steps, not args.no_progress)
    except (EpisodeError, BackboneLoadError, CheckpointError, ValueError, OSError) as err:
        print(f"robovlms-train-calvin: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
