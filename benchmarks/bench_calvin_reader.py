"""CALVIN dataset reader throughput: indexing a split (each frame's rel_actions and robot_obs) and training rows
read lazily from the frame files (window 16, segment 16, both cameras resized to the checkpoint's size), in
frames and supervised steps per second for one loader process. Prints a markdown table for the README.

    python benchmarks/bench_calvin_reader.py                       # a synthetic split in CALVIN's layout
    python benchmarks/bench_calvin_reader.py --split ~/calvin/dataset/task_ABC_D/training --limit 200

A training step of the KosMos-2 recipe takes far longer than reading its rows; with --num-workers N the
loader's rate scales with N.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from robovlms_policy.vla.action_codec import ActionCodec
from robovlms_policy.vla.embodiments import get_embodiment
from robovlms_training.calvin_dataset import load_calvin_split
from robovlms_training.dataset import WindowDataset, action_statistics

FRAMES, ANNOTATION = 640, 64  # CALVIN's language annotations span 64 frames


def synthetic_split(root: Path) -> Path:
    """Random images at CALVIN's sizes and every key a CALVIN frame file has, 10 annotations of 64 frames."""
    rng = np.random.default_rng(0)
    (root / "lang_annotations").mkdir(parents=True)
    for frame in range(FRAMES):
        np.savez(root / f"episode_{frame:07d}.npz", rgb_static=rng.integers(0, 256, (200, 200, 3), np.uint8),
                 rgb_gripper=rng.integers(0, 256, (84, 84, 3), np.uint8),
                 rgb_tactile=np.zeros((160, 120, 6), np.uint8), depth_static=np.zeros((200, 200), np.float32),
                 depth_gripper=np.zeros((84, 84), np.float32), depth_tactile=np.zeros((160, 120, 2), np.float32),
                 actions=np.zeros(7, np.float32), rel_actions=rng.uniform(-1, 1, 7).astype(np.float32),
                 robot_obs=np.r_[0.0, 0.0, 0.5, np.pi, 0.0, 0.0, 0.04, np.zeros(8)].astype(np.float32),
                 scene_obs=np.zeros(24, np.float32))
    spans = [(s, s + ANNOTATION - 1) for s in range(0, FRAMES, ANNOTATION)]
    lang = {"language": {"ann": ["open the drawer"] * len(spans), "task": ["open_drawer"] * len(spans)},
            "info": {"indx": spans}}
    np.save(root / "lang_annotations" / "auto_lang_ann.npy", lang, allow_pickle=True)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, help="CALVIN split directory (default: a synthetic one)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rows", type=int, default=40, help="training rows read")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_calvin_") as work:
        measure(args.split or synthetic_split(Path(work) / "training"), args.image_size, args.rows, args.split is None)


def measure(split: Path, image_size: int, rows: int, synthetic: bool) -> None:
    start = time.perf_counter()
    episodes = load_calvin_split(split)
    index_s = time.perf_counter() - start
    frames = sum(len(e) for e in episodes)
    codec = ActionCodec(action_statistics(episodes, get_embodiment("calvin")), "calvin")
    dataset = WindowDataset(episodes, codec, ["static", "wrist"], image_size, window=16, chunk=10, segment=16)
    order = np.random.default_rng(0).permutation(len(dataset))[:rows]
    start = time.perf_counter()
    supervised = sum(int(dataset[int(i)]["action_mask"][:, 0].sum()) for i in order)
    rows_s = time.perf_counter() - start
    print(f"| CALVIN reader ({'synthetic split' if synthetic else split}, {len(episodes)} annotations) "
          "| figure |\n|---|---:|")
    print(f"| indexing: frames/s (rel_actions + robot_obs per file) | {frames / index_s:,.0f} |")
    print(f"| rows at {image_size} px, both cameras: rows/s, one process | {len(order) / rows_s:.1f} |")
    print(f"| the same in supervised steps/s | {supervised / rows_s:.0f} |")


if __name__ == "__main__":
    main()
