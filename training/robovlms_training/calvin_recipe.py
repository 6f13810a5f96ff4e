"""robovlms-train-calvin: the RoboVLMs paper's headline CALVIN model, a KosMos-2 policy head trained ABC -> D.

    robovlms-train-calvin --dataset ~/calvin/dataset/task_ABC_D --pretrained ~/models/kosmos-2-patch14-224 \\
        --out runs/calvin-kosmos2 --accelerator gpu

The recipe is training/recipes/calvin_abc_d_kosmos2.yaml (RoboVLMs' CALVIN KosMos-2 configuration: LSTM head
over the window of per-frame [LRN] features, both cameras, window 16, chunk 10, 224 px, the calvin embodiment);
this command fills in the dataset's directories and the split's scenes (``--split ABCD`` adds D) and runs
``robovlms-train fit`` on it. ``robovlms-train fit --config calvin_abc_d_kosmos2 --override ...`` is the same
run with every setting open. A rerun resumes: a finished run is left alone, an interrupted one continues
from its last training state.

Evaluate the result with ``robovlms-calvin-eval run --checkpoint OUT/checkpoint``. ``--tiny`` swaps in the
tiny random KosMos-2 at 32 px (fp32, one device) for a CPU dry run of the whole recipe on any CALVIN-format
directory.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .fit import POLICY_DIR, fit, resume_recipe
from .recipe import Recipe, RecipeError, load_recipe
from .train import USER_ERRORS, quiet_lightning, resume_state

RECIPE = "calvin_abc_d_kosmos2"
SPLIT_SCENES = {"ABC": ["A", "B", "C"], "ABCD": ["A", "B", "C", "D"], "D": ["D"]}
# A dry run: the same stages on the tiny random KosMos-2 (fp32 on one device: bf16 is slow on CPUs).
TINY_OVERRIDES = ("init.create.tiny=true", "init.create.pretrained=null", "init.create.image_size=32",
                  "train.precision=32-true", "train.strategy=auto", "train.devices=1", "train.num_workers=0",
                  "train.gradient_checkpointing=false", "train.val_every=0", "train.save_every=0", "optim.lr=1e-4")


def calvin_recipe(dataset: Path, pretrained: Path | None, split: str = "ABC", accelerator: str = "auto",
                  max_steps: int = 0, progress: bool = True) -> Recipe:
    """The CALVIN recipe on ``dataset``'s training / validation directories (tiny when no ``pretrained``)."""
    if split not in SPLIT_SCENES:
        raise RecipeError(f"split {split!r} is not one of {sorted(SPLIT_SCENES)}")
    values = {"data": [{"path": str(dataset / "training")}],
              "train.validation_data": [str(dataset / "validation")], "train.calvin_scenes": SPLIT_SCENES[split],
              "train.accelerator": accelerator, "train.progress_bar": progress}
    if pretrained is not None:
        values["init.create.pretrained"] = str(pretrained)
    if max_steps:
        values.update({"train.max_steps": max_steps, "train.epochs": 0.0})
    return load_recipe(RECIPE, () if pretrained is not None else TINY_OVERRIDES, values)


def run(out: Path, recipe: Recipe) -> Path:
    """Train (or resume) the run in ``out``; returns its checkpoint directory (OUT/checkpoint)."""
    target = out / POLICY_DIR
    if (target / "config.json").is_file():
        print(f"[train-calvin] already trained: {target}", flush=True)
        return target
    resume = resume_state(target).exists()
    summary = fit(resume_recipe(out) if resume else recipe, out, resume=resume)
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
        run(args.out, calvin_recipe(args.dataset, args.pretrained, args.split, args.accelerator, args.max_steps,
                                    not args.no_progress))
    except USER_ERRORS as err:
        print(f"robovlms-train-calvin: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
