"""Windows of aligned episodes -> training batches in the exact format of ``VLAStructure.compute_loss``.

A sample is ``window`` consecutive steps t0..t0+W-1 of one episode (every start t0 with a full window; episodes
shorter than the window give none). Each step t carries its camera frames and the ``chunk`` actions
t..t+chunk-1; actions past the episode end are zero and masked out. Actions are converted to the checkpoint
embodiment's dataset units and normalised with its ActionCodec; pixels go through the policy's own
preprocessing (``VLAPolicy.preprocess``), so training sees exactly what the robot's policy sees.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from torch.utils.data import Dataset

from robovlms_policy.vla.action_codec import ActionCodec, ActionStatistics
from robovlms_policy.vla.embodiments import Embodiment, command_to_dataset_units
from robovlms_policy.vla.tokenizer import encode_instructions

from .episodes import Episode

# Images of every camera for one step (name -> uint8 HxWx3) -> normalised pixels (1, cameras, 3, S, S).
Preprocess = Callable[[dict[str, np.ndarray]], torch.Tensor]


def usable_episodes(episodes: Sequence[Episode], window: int) -> list[Episode]:
    """The episodes long enough for at least one full window; ValueError when there are none."""
    usable = [e for e in episodes if len(e) >= window]
    if not usable:
        lengths = sorted(len(e) for e in episodes)
        raise ValueError(f"no episode has the {window} steps one window needs (episode lengths: {lengths})")
    return usable


def action_statistics(episodes: Sequence[Episode], embodiment: Embodiment,
                      lower: float = 1.0, upper: float = 99.0) -> ActionStatistics:
    """Percentile bounds over every action of ``episodes``, in dataset units (what the config stores)."""
    if not episodes:
        raise ValueError("no episodes to compute action statistics from")
    actions = np.concatenate([command_to_dataset_units(embodiment, e.actions) for e in episodes])
    return ActionStatistics.from_actions(actions, lower, upper)


class WindowDataset(Dataset):
    """Every full window of every episode; items are dicts of tensors plus the instruction text."""

    def __init__(self, episodes: Sequence[Episode], codec: ActionCodec, preprocess: Preprocess,
                 camera_names: Sequence[str], window: int, chunk: int) -> None:
        if window < 1 or chunk < 1:
            raise ValueError(f"window and chunk must be >= 1, got {window} and {chunk}")
        self.episodes = usable_episodes(episodes, window)
        for episode in self.episodes:
            missing = [c for c in camera_names if c not in episode.frames]
            if missing:
                raise ValueError(f"{episode.trial_dir}: no frames for camera(s) {missing}; "
                                 f"recorded cameras: {sorted(episode.frames)}")
        self.camera_names = list(camera_names)
        self.window, self.chunk = window, chunk
        self._preprocess = preprocess
        self._norm_actions = [
            codec.normalize(command_to_dataset_units(codec.embodiment, e.actions)).astype(np.float32)
            for e in self.episodes]
        self._index = [(i, start) for i, e in enumerate(self.episodes) for start in range(len(e) - window + 1)]

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor | str]:
        episode_idx, start = self._index[item]
        episode, norm = self.episodes[episode_idx], self._norm_actions[episode_idx]
        steps = range(start, start + self.window)
        pixels = torch.stack([
            self._preprocess({name: episode.frames[name][t] for name in self.camera_names})[0].float().cpu()
            for t in steps])
        actions = np.zeros((self.window, self.chunk, norm.shape[1]), dtype=np.float32)
        mask = np.zeros((self.window, self.chunk), dtype=bool)
        for row, t in enumerate(steps):
            valid = norm[t:t + self.chunk]
            actions[row, :len(valid)] = valid
            mask[row, :len(valid)] = True
        return {"pixels": pixels, "actions": torch.from_numpy(actions), "action_mask": torch.from_numpy(mask),
                "instruction": episode.instruction}


class WindowCollator:
    """Stacks samples and tokenises their instructions the way the policy does at run time."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int) -> None:
        self.tokenizer, self.max_tokens = tokenizer, max_tokens

    def __call__(self, samples: list[dict[str, torch.Tensor | str]]) -> dict[str, torch.Tensor]:
        ids, mask = encode_instructions(self.tokenizer, [s["instruction"] for s in samples], self.max_tokens)
        batch = {key: torch.stack([s[key] for s in samples]) for key in ("pixels", "actions", "action_mask")}
        return {**batch, "instruction_ids": ids, "instruction_mask": mask}
