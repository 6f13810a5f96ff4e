"""Small episode stores and recipes written by tests: random frames, smooth bounded actions, per embodiment."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from robovlms_training.episode_store import EpisodeStore
from robovlms_training.episodes import Episode


def write_store(root: Path, episodes: int = 6, steps: int = 10, embodiment: str = "kinova", seed: int = 0,
                size: int = 32) -> Path:
    """An episode store of ``episodes`` random episodes (both cameras, proprioception)."""
    rng = np.random.default_rng(seed)
    store = EpisodeStore(root)
    for index in range(episodes):
        arm = np.cumsum(rng.normal(0, 0.002, (steps, 6)), axis=0).clip(-0.02, 0.02)
        gripper = (np.arange(steps) > steps // 2).astype(float)[:, None]
        frames = {camera: rng.integers(0, 255, (steps, size, size, 3), dtype=np.uint8)
                  for camera in ("static", "wrist")}
        episode = Episode(root / f"ep{index}", "pick up the red block", "pick_red_block", True, frames,
                          np.hstack([arm, gripper]), rng.normal(0, 0.1, (steps, 10)),
                          info={"seed": seed * 1000 + index, "embodiment": embodiment})
        store.add(episode)
    store.flush()
    return root


def tiny_recipe(path: Path, data: list[str | Path | dict], **sections) -> Path:
    """A recipe YAML training a tiny PaliGemma policy head for a few steps on ``data`` (paths, or source
    mappings with a weight); ``sections`` update train / optim
    and replace the others."""
    recipe = {
        "init": {"create": {"backbone": "paligemma", "structure": "policy_head", "tiny": True, "image_size": 32,
                            "window": 2, "chunk": 2, "proprio_layout": "ee_pose_gripper"}},
        "data": [p if isinstance(p, dict) else {"path": str(p)} for p in data],
        "train": {"max_steps": 3, "batch_size": 2, "segment": 4, "validation_fraction": 0.3, "accelerator": "cpu",
                  "progress_bar": False},
        "optim": {"lr": 1.0e-3},
    }
    for name, values in sections.items():
        recipe[name] = {**recipe[name], **values} if name in ("train", "optim") else values
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path
