"""Training rows streamed from datasets too big for memory (Open X-Embodiment mixtures), and their action
statistics from one pass over the actions alone.

A source is any callable ``source(part, parts)`` that yields Episodes lazily and reads only its ``part`` of
``parts`` (``RLDSSource`` takes every ``parts``-th shard file, ``LeRobotSource`` every ``parts``-th episode).
``StreamingWindowDataset`` gives each DataLoader worker of each distributed rank its own part, so no two read
the same files; per episode it picks a source by weight (a seeded numpy Generator), turns the episode into
rows with ``WindowDataset`` (the same rows, history and masks as in-memory training) and passes them through a
shuffle buffer, since rows of one episode arrive together.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from robovlms_policy.vla.action_codec import ActionStatistics
from robovlms_policy.vla.embodiments import command_to_dataset_units, get_embodiment
from robovlms_policy.vla.proprio import ProprioNormalizer

from ..dataset import WindowDataset
from ..episodes import Episode

EpisodeSource = Callable[[int, int], Iterable[Episode]]


class ActionSource(Protocol):
    """What ``dataset_action_statistics`` reads: the embodiment and every episode's command-unit actions."""

    embodiment: str

    def actions(self) -> Iterable[np.ndarray]: ...


def worker_part(placement: tuple[int, int] | None = None) -> tuple[int, int]:
    """(part, parts) of this process: its DataLoader worker within its distributed rank. ``placement`` (rank,
    world size), set in the main process, wins: a spawned worker has no process group to ask."""
    info = get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    if placement is None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        placement = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if distributed else (0, 1)
    rank, world = placement
    return rank * workers + worker, world * workers


class StreamPlacement(L.Callback):
    """Tells the training stream its rank and where training stands, before each epoch's loader workers start:
    spawned workers then still read their rank's shards, and a resumed run does not replay the stream's start."""

    def on_train_epoch_start(self, trainer, module) -> None:
        dataset = trainer.train_dataloader.dataset
        if isinstance(dataset, StreamingWindowDataset):
            dataset.placement = (trainer.global_rank, trainer.world_size)
            dataset.start_step = trainer.global_step


class StreamingWindowDataset(IterableDataset):
    """Rows of ``WindowDataset`` from weighted lazy sources, shuffled through a buffer and sharded by worker.

    ``codec`` goes to ``WindowDataset`` as it is (one codec, or whatever per-embodiment form it accepts).
    Without ``repeat`` a pass ends when every source is exhausted (exhausted sources drop out and the
    others keep their relative weights); with ``repeat`` a source starts over when it runs out, so the weights
    hold over an endless stream (train by steps then). ``set_epoch`` changes the shuffling of the next pass."""

    def __init__(self, sources: Sequence[tuple[EpisodeSource, float]], codec: Any, camera_names: Sequence[str],
                 image_size: int, window: int, chunk: int, segment: int = 16,
                 proprio: ProprioNormalizer | None = None, shuffle_buffer: int = 1000, seed: int = 0,
                 repeat: bool = False) -> None:
        if not sources:
            raise ValueError("no sources to stream from")
        weights = [float(w) for _, w in sources]
        if not all(math.isfinite(w) and w > 0 for w in weights):
            raise ValueError(f"source weights must be finite and > 0, got {weights}")
        if shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be >= 1, got {shuffle_buffer}")
        self.sources = [source for source, _ in sources]
        self.weights = np.asarray(weights)
        self.codec, self.camera_names, self.image_size = codec, list(camera_names), image_size
        self.window, self.chunk, self.segment, self.proprio = window, chunk, segment, proprio
        self.shuffle_buffer, self.seed, self.repeat = shuffle_buffer, seed, repeat
        self.epoch = 0
        self.placement: tuple[int, int] | None = None  # (rank, world size), see StreamPlacement
        self.start_step = 0  # optimiser steps already trained: seeds a resumed run's stream afresh

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def episodes(self, rng: np.random.Generator, part: int, parts: int) -> Iterator[Episode]:
        """This part's episodes, the source of each drawn by weight among the sources not yet exhausted."""
        iterators = [iter(source(part, parts)) for source in self.sources]
        produced = [False] * len(iterators)
        active = list(range(len(iterators)))
        while active:
            weights = self.weights[active]
            chosen = active[int(rng.choice(len(active), p=weights / weights.sum()))]
            episode = next(iterators[chosen], None)
            if episode is not None:
                produced[chosen] = True
                yield episode
            elif self.repeat and produced[chosen]:
                iterators[chosen], produced[chosen] = iter(self.sources[chosen](part, parts)), False
            else:
                active.remove(chosen)  # exhausted (or empty for this part, which repeating cannot change)

    def rows(self, episodes: Iterable[Episode]) -> Iterator[dict[str, torch.Tensor | str]]:
        """Every row of each episode, in order."""
        for episode in episodes:
            rows = WindowDataset([episode], self.codec, self.camera_names, self.image_size, self.window,
                                 self.chunk, self.segment, self.proprio)
            for index in range(len(rows)):
                yield rows[index]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor | str]]:
        part, parts = worker_part(self.placement)
        rng = np.random.default_rng([self.seed, self.epoch, self.start_step, part])
        buffer: list[dict[str, torch.Tensor | str]] = []
        for row in self.rows(self.episodes(rng, part, parts)):
            if len(buffer) < self.shuffle_buffer:
                buffer.append(row)
                continue
            slot = int(rng.integers(len(buffer)))
            yield buffer[slot]
            buffer[slot] = row
        for slot in rng.permutation(len(buffer)):
            yield buffer[slot]


def dataset_action_statistics(source: ActionSource | Sequence[ActionSource], lower: float = 1.0,
                              upper: float = 99.0, min_range: float | Sequence[float] = 0.0) -> ActionStatistics:
    """Percentile bounds of one dataset's (or several datasets' of one embodiment) actions in the embodiment's
    dataset units (what a codec for that embodiment stores), from one pass over ``actions()``: no image is
    decoded."""
    sources = list(source) if isinstance(source, Sequence) else [source]
    names = {s.embodiment for s in sources}
    if len(names) != 1:
        raise ValueError(f"statistics are per embodiment; {sources!r} are {sorted(names)}")
    embodiment = get_embodiment(names.pop())
    actions = [command_to_dataset_units(embodiment, a) for s in sources for a in s.actions()]
    if not actions:
        raise ValueError(f"{sources!r} yield no actions to compute statistics from")
    return ActionStatistics.from_actions(np.concatenate(actions), lower, upper, min_range)


def lazy_source(path: str | Path):
    """The streaming source of a directory: an RLDS builder (its dataset spec from dataset_info.json) or a
    LeRobot v3 dataset (read as this suite's exports)."""
    from .lerobot_reader import LeRobotSource, is_lerobot_dataset, suite_export_config
    from .mixtures import RLDSSource
    from .rlds import OXEDataError, is_rlds_builder

    if is_rlds_builder(path):
        return RLDSSource(path)
    if is_lerobot_dataset(path):
        return LeRobotSource(path, suite_export_config(path))
    raise OXEDataError(f"{path}: streaming reads RLDS (TFDS builder) and LeRobot v3 directories; load other "
                       f"sources in memory (train.streaming: false)")
