"""Training throughput of the default recipe's model: the data loader alone (rows, collation, augmentation)
and whole optimiser steps, in supervised steps per second (one supervised step = one episode step trained with
its history; a batch row holds ``segment`` of them). Prints a markdown table for the README.

    python benchmarks/bench_training.py                    # collects a small episode store first (about 1 min)
    python benchmarks/bench_training.py --data STORE --steps 20

The loader must never be the bottleneck: its rate should stay well above the training rate.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from robovlms_policy.vla.action_codec import ActionCodec, ActionStatistics
from robovlms_policy.vla.checkpoint import load_checkpoint
from robovlms_policy.vla.proprio import ProprioNormalizer
from robovlms_training.augment import AugmentConfig, FrameProcessor
from robovlms_training.dataset import WindowCollator, WindowDataset
from robovlms_training.fit import create_checkpoint_from
from robovlms_training.recipe import load_recipe
from robovlms_training.episode_store import load_store
from robovlms_training.run_data import with_statistics
from robovlms_training.train import TrainSettings
from robovlms_training.twin_collect import CollectConfig, Job, collect, seeds_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="episode store (default: collect 4 episodes per task)")
    parser.add_argument("--steps", type=int, default=20, help="optimiser steps timed")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_training_"))
    if args.data is None:
        from robovlms_twin.tasks import TASKS

        args.data = work / "store"
        collect(args.data, [Job(t, s, "expert") for t, s in seeds_for(list(TASKS), 4)], CollectConfig(),
                progress=False)
    recipe = load_recipe("twin_tiny")
    create_checkpoint_from(recipe.init.create, work / "init")
    model, config, tokenizer = load_checkpoint(work / "init")
    episodes = load_store([args.data])
    config = with_statistics(config, episodes, TrainSettings())
    codec = ActionCodec(ActionStatistics.from_dict(config.action_stats), config.embodiment)
    dataset = WindowDataset(episodes, codec, config.camera_names, config.image_size, config.window, config.chunk,
                            recipe.train.segment, ProprioNormalizer.from_dict(config.proprio_stats))
    loader = DataLoader(dataset, batch_size=recipe.train.batch_size, shuffle=True, drop_last=True,
                        collate_fn=WindowCollator(tokenizer, config.max_instruction_tokens))
    frames = FrameProcessor(config.image_mean, config.image_std, AugmentConfig())

    def batches():
        while True:
            yield from loader

    stream = batches()
    start, supervised = time.perf_counter(), 0
    for _ in range(args.steps):
        batch = next(stream)
        frames(batch["frames"], train=True)
        supervised += int(batch["action_mask"][..., 0].sum())
    loader_rate = supervised / (time.perf_counter() - start)

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for step in range(args.steps + 2):
        if step == 2:  # the first steps pay for lazy initialisation
            start, supervised = time.perf_counter(), 0
        batch = next(stream)
        batch["pixels"] = frames(batch.pop("frames"), train=True)
        loss = model.compute_loss(batch, recipe.optim.gripper_weight)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        supervised += int(batch["action_mask"][..., 0].sum())
    train_rate = supervised / (time.perf_counter() - start)
    params = sum(p.numel() for p in model.parameters())
    print(f"\nDefault recipe model ({params / 1e6:.2f} M parameters, {config.image_size} px, window {config.window}, "
          f"batch {recipe.train.batch_size} x {recipe.train.segment} steps), {args.threads} torch threads\n")
    print("| stage | supervised steps/s |")
    print("|---|---:|")
    print(f"| data loader (rows, collation, augmentation) | {loader_rate:.0f} |")
    print(f"| training step (forward, backward, AdamW) | {train_rate:.0f} |")


if __name__ == "__main__":
    main()
