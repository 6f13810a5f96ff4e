"""Aligned episodes -> training rows in the format of ``VLAStructure.compute_loss``.

Every step of every episode is trained, with the history the policy has at run time: a row is a run of
``segment`` consecutive supervised steps preceded by up to ``window - 1`` context frames (fewer at the start
of an episode, where the history is short, exactly as the policy's is after a reset). The structure predicts
each supervised step from the ``window`` frames ending at it. Each step t carries the ``chunk`` actions
t..t+chunk-1; actions past the episode end are zero and masked out, as are context and padding positions
(rows are padded at the end to one length).

Frames are kept as uint8 at the checkpoint's image size (resized exactly as the policy resizes,
``vla.policy.resize_rgb``; frames read lazily from disk, as a CALVIN split's, are resized per row);
``FrameProcessor`` turns a batch of them into normalised pixels, with random-shift
and colour-jitter augmentation when training. Actions are converted to the embodiment's dataset units and
normalised with the checkpoint's ActionCodec; proprioception is standardised with its statistics. With
proprioception a row also carries ``final_position``, the standardised TCP position at the episode's end (where
the task was done: the grasped block, the pressed button), the target of the optional auxiliary loss
(``OptimizerConfig.final_position_weight``).
"""
from __future__ import annotations

import zlib
from typing import Mapping, Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from torch.utils.data import Dataset

from robovlms_policy.vla.action_codec import ActionCodec, ActionStatistics
from robovlms_policy.vla.embodiments import Embodiment, command_to_dataset_units
from robovlms_policy.vla.policy import resize_rgb
from robovlms_policy.vla.proprio import TCP_POSITION, ProprioNormalizer
from robovlms_policy.vla.tokenizer import encode_instructions

from .augment import AugmentConfig, noisy_instruction
from .episodes import Episode


def action_statistics(episodes: Sequence[Episode], embodiment: Embodiment, lower: float = 1.0,
                      upper: float = 99.0, min_range: float | Sequence[float] = 0.0) -> ActionStatistics:
    """Percentile bounds over every action of ``episodes``, in dataset units (what the config stores)."""
    if not episodes:
        raise ValueError("no episodes to compute action statistics from")
    actions = np.concatenate([command_to_dataset_units(embodiment, e.actions) for e in episodes])
    return ActionStatistics.from_actions(actions, lower, upper, min_range)


def proprio_statistics(episodes: Sequence[Episode]) -> ProprioNormalizer:
    missing = [str(e.trial_dir) for e in episodes if e.proprio is None]
    if missing:
        raise ValueError(f"{len(missing)} episode(s) have no recorded robot state (ee_pose + joint_states), "
                         f"e.g. {missing[0]}; a checkpoint with proprioception cannot train on them")
    return ProprioNormalizer.from_data(np.concatenate([e.proprio for e in episodes]))


def split_by_seed(episodes: Sequence[Episode], validation_fraction: float) -> tuple[list[Episode], list[Episode]]:
    """Deterministic train / validation split by episode seed (trial name where no seed was recorded), so a
    validation episode's start state never appears in training. A split that would leave nothing to train on
    (a handful of recordings) trains on everything and validates on nothing."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {validation_fraction}")
    train, validation = [], []
    for episode in episodes:
        key = str(episode.info.get("seed", episode.trial_dir.name)).encode()
        (validation if zlib.crc32(key) % 1000 < validation_fraction * 1000 else train).append(episode)
    if not train:
        return list(episodes), []
    return train, validation


class WindowDataset(Dataset):
    """Rows of ``segment`` supervised steps with their history; items are dicts of tensors plus the text."""

    def __init__(self, episodes: Sequence[Episode], codec: ActionCodec | Mapping[str, ActionCodec],
                 camera_names: Sequence[str],
                 image_size: int, window: int, chunk: int, segment: int = 16,
                 proprio: ProprioNormalizer | None = None) -> None:
        if window < 1 or chunk < 1 or segment < 1:
            raise ValueError(f"window, chunk and segment must be >= 1, got {window}, {chunk}, {segment}")
        if not episodes:
            raise ValueError("no episodes to train on")
        for episode in episodes:
            missing = [c for c in camera_names if c not in episode.frames]
            if missing:
                raise ValueError(f"{episode.trial_dir}: no frames for camera(s) {missing}; "
                                 f"recorded cameras: {sorted(episode.frames)}")
        self.camera_names = list(camera_names)
        self.window, self.chunk, self.segment = window, chunk, segment
        self.episodes = list(episodes)
        # (T, cameras, S, S, 3) uint8, indexable by an array of steps
        self._frames = [_camera_stack(e.frames, self.camera_names, image_size) for e in self.episodes]
        self._actions = [_normalized_actions(e, codec) for e in self.episodes]
        self._proprio = None if proprio is None else [proprio.normalize(e.proprio).astype(np.float32)
                                                       for e in self.episodes]
        self._index = [(i, start) for i, e in enumerate(self.episodes) for start in range(0, len(e), segment)]

    @property
    def row_episodes(self) -> list[int]:
        """The episode index of every row."""
        return [episode for episode, _ in self._index]

    @property
    def steps(self) -> int:
        """Supervised steps (every step of every episode)."""
        return sum(len(e) for e in self.episodes)

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor | str]:
        episode_idx, start = self._index[item]
        frames, norm = self._frames[episode_idx], self._actions[episode_idx]
        steps = len(norm)
        first = max(0, start - self.window + 1)
        stop = min(steps, start + self.segment)
        length = self.window - 1 + self.segment
        rows = np.minimum(np.arange(first, first + length), stop - 1)  # padding repeats the last frame
        actions = np.zeros((length, self.chunk, norm.shape[1]), dtype=np.float32)
        mask = np.zeros((length, self.chunk), dtype=bool)
        for row, t in enumerate(range(first, stop)):
            if t < start:
                continue  # context frame: history only
            valid = norm[t:t + self.chunk]
            actions[row, :len(valid)] = valid
            mask[row, :len(valid)] = True
        sample = {"frames": torch.from_numpy(frames[rows]), "actions": torch.from_numpy(actions),
                  "action_mask": torch.from_numpy(mask), "instruction": self.episodes[episode_idx].instruction}
        if self._proprio is not None:
            proprio = self._proprio[episode_idx]
            sample["proprio"] = torch.from_numpy(proprio[rows])
            sample["final_position"] = torch.from_numpy(proprio[-1, TCP_POSITION].copy())
        return sample


def _normalized_actions(episode: Episode, codec: ActionCodec | Mapping[str, ActionCodec]) -> np.ndarray:
    """The episode's actions in its embodiment's dataset units, normalised by that embodiment's codec (a mixture
    of embodiments passes one codec per embodiment; episodes without one are the codec's own)."""
    if isinstance(codec, Mapping):
        name = episode.info.get("embodiment")
        if name is None and len(codec) == 1:
            name = next(iter(codec))
        if name not in codec:
            raise ValueError(f"{episode.trial_dir}: no action statistics for embodiment {name!r} "
                             f"(have {sorted(codec)})")
        codec = codec[name]
    return codec.normalize(command_to_dataset_units(codec.embodiment, episode.actions)).astype(np.float32)


def _at_size(frames: np.ndarray, size: int) -> np.ndarray:
    if frames.shape[1:3] == (size, size):
        return frames
    return np.stack([resize_rgb(f, size) for f in frames])


class _LazyCameraStack:
    """The cameras' frames of an episode read from disk (e.g. a CALVIN split) only for the rows used."""

    def __init__(self, frames: dict, camera_names: list[str], size: int) -> None:
        self.frames, self.camera_names, self.size = frames, camera_names, size

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return np.stack([_at_size(self.frames[c][rows], self.size) for c in self.camera_names], axis=1)


def _camera_stack(frames: dict, camera_names: list[str], size: int) -> np.ndarray | _LazyCameraStack:
    """In-memory recordings are resized once up front; lazily read ones per row."""
    if all(isinstance(frames[c], np.ndarray) for c in camera_names):
        return np.stack([_at_size(frames[c], size) for c in camera_names], axis=1)
    return _LazyCameraStack(frames, camera_names, size)


class WindowCollator:
    """Stacks samples and tokenises their instructions the way the policy does at run time, made noisy first
    (``augment.noisy_instruction``) when ``augment`` asks for it: the training loader's, never validation's."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int, augment: AugmentConfig | None = None) -> None:
        self.tokenizer, self.max_tokens = tokenizer, max_tokens
        self.augment = augment if augment is not None and augment.changes_instructions else None
        self._rng: np.random.Generator | None = None

    def _generator(self) -> np.random.Generator:
        # Made in the process that collates, from torch's seed there: a loader worker's is drawn afresh each epoch
        # from the run's seeded generator, so the words differ per worker and per epoch and repeat per run.
        if self._rng is None:
            self._rng = np.random.default_rng(torch.initial_seed())
        return self._rng

    def __call__(self, samples: list[dict[str, torch.Tensor | str]]) -> dict[str, torch.Tensor]:
        texts = [s["instruction"] for s in samples]
        if self.augment is not None:
            texts = [noisy_instruction(t, self.augment, self._generator()) for t in texts]
        ids, mask = encode_instructions(self.tokenizer, texts, self.max_tokens)
        keys = [k for k in ("frames", "actions", "action_mask", "proprio", "final_position") if k in samples[0]]
        batch = {key: torch.stack([s[key] for s in samples]) for key in keys}
        return {**batch, "instruction_ids": ids, "instruction_mask": mask}
