"""The data of one training run: rows in memory (a split by seed, sources weighted by a sampler) or streamed
from RLDS / LeRobot directories through a shuffle buffer, with the checkpoint's statistics set from the
training data (per embodiment where the data mixes embodiments)."""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from robovlms_policy.vla.action_codec import ActionCodec, ActionStatistics
from robovlms_policy.vla.config import VLAConfig
from robovlms_policy.vla.embodiments import get_embodiment
from robovlms_policy.vla.proprio import ProprioNormalizer

from .dataset import WindowCollator, WindowDataset, action_statistics, proprio_statistics, split_by_seed
from .episodes import Episode
from .sources import default_topics, read_sources

if TYPE_CHECKING:
    from .train import TrainSettings


@dataclass
class RunData:
    config: VLAConfig  # the initial checkpoint's, with the training data's statistics
    loader: DataLoader
    val_loader: DataLoader | None
    episodes: int  # training episodes (0 when streamed: not counted)
    rows: int  # training rows (0 when streamed)
    streamed: bool = False

    def batches_per_epoch(self, replicas: int) -> int | None:
        """Batches each replica sees per pass (None: a stream has no passes)."""
        return None if self.streamed else max(1, len(self.loader) // replicas)


def run_data(data: Sequence[str | Path], weights: Sequence[float] | None, config: VLAConfig, tokenizer,
             settings: "TrainSettings") -> RunData:
    topics = settings.camera_topics or default_topics(config.camera_names)

    def read(paths: Sequence[str | Path], scenes: Sequence[str] | None = None) -> list[Episode]:
        episodes = read_sources(paths, settings.include_failures, topics, scenes, settings.progress_bar)
        for episode in episodes:
            episode.info.setdefault("embodiment", config.embodiment)  # recordings without one: the checkpoint's
        return episodes

    collate = WindowCollator(tokenizer, config.max_instruction_tokens, settings.augment)
    L.seed_everything(settings.seed, workers=True, verbose=False)
    generator = torch.Generator().manual_seed(settings.seed)
    if settings.streaming:
        config, train_set = _streamed(data, weights, config, settings)
        val_episodes = read(settings.validation_data) if settings.validation_data else []
        loader = DataLoader(train_set, batch_size=settings.batch_size, num_workers=settings.num_workers,
                            collate_fn=collate, drop_last=True)
        episodes = rows = 0
    else:
        per_source = [read([path], settings.calvin_scenes) for path in data]
        source_of = {id(e): index for index, group in enumerate(per_source) for e in group}
        everything = [e for group in per_source for e in group]
        if settings.validation_data:  # the scene choice is the training data's (CALVIN validates on scene D)
            train_episodes, val_episodes = everything, read(settings.validation_data)
        else:
            train_episodes, val_episodes = split_by_seed(everything, settings.validation_fraction)
        config = with_statistics(config, train_episodes, settings)
        train_set = _windows(train_episodes, config, settings)
        sampler = weighted_sampler([source_of[id(e)] for e in train_set.episodes], train_set, weights, generator)
        loader = DataLoader(train_set, batch_size=settings.batch_size, shuffle=sampler is None, sampler=sampler,
                            num_workers=settings.num_workers, collate_fn=collate, generator=generator,
                            drop_last=len(train_set) > settings.batch_size)
        episodes, rows = len(train_set.episodes), len(train_set)
    plain = WindowCollator(tokenizer, config.max_instruction_tokens)  # validation: the instructions as recorded
    val_loader = DataLoader(_windows(val_episodes, config, settings), batch_size=settings.batch_size,
                            collate_fn=plain) if val_episodes else None
    return RunData(config, loader, val_loader, episodes, rows, settings.streaming)


def _windows(episodes: list[Episode], config: VLAConfig, settings: "TrainSettings") -> WindowDataset:
    proprio = ProprioNormalizer.from_dict(config.proprio_stats) if config.proprio_stats else None
    return WindowDataset(episodes, codecs(config), config.camera_names, config.image_size, config.window,
                         config.chunk, settings.segment, proprio)


def _streamed(data: Sequence[str | Path], weights: Sequence[float] | None, config: VLAConfig,
              settings: "TrainSettings"):
    """A StreamingWindowDataset over the sources, and the config with statistics from one actions-only pass."""
    from .oxe.streaming import StreamingWindowDataset, dataset_action_statistics, lazy_source

    if settings.epochs or settings.warmup_epochs:
        raise ValueError("streamed data has no passes: give train.max_steps (and optim warm-up in steps or "
                         "as a ratio), not epochs")
    if settings.validation_fraction > 0 and not settings.validation_data:
        raise ValueError("streamed data is not split by seed: set train.validation_fraction: 0 and give held-out "
                         "episodes as train.validation_data (an episode store or a small builder), or none")
    if settings.calvin_scenes:
        raise ValueError("train.calvin_scenes selects CALVIN annotations; streaming reads RLDS / LeRobot only")
    if config.proprio_dim:
        raise ValueError("streamed RLDS / LeRobot sources carry no proprioception in this suite's layout; "
                         "train a checkpoint without it (init.create.proprio_layout: '')")
    sources = [lazy_source(path) for path in data]
    by_embodiment: dict[str, list] = {}
    for source in sources:
        by_embodiment.setdefault(source.embodiment, []).append(source)
    if config.embodiment not in by_embodiment:
        raise ValueError(_embodiment_mismatch(config.embodiment, by_embodiment))
    if settings.keep_statistics:
        missing = sorted(set(by_embodiment) - set(codecs(config)))
        if missing:
            raise ValueError(f"keep_statistics: the initial checkpoint has no statistics for {missing}")
    else:  # one actions-only pass per start (a resume too)
        stats = {name: dataset_action_statistics(group, min_range=settings.min_range).to_dict()
                 for name, group in sorted(by_embodiment.items())}
        config = dataclasses.replace(config, action_stats=stats[config.embodiment],
                                     embodiment_stats=stats if len(stats) > 1 else None)
    weighted = list(zip(sources, weights or [1.0] * len(sources)))
    return config, StreamingWindowDataset(weighted, codecs(config), config.camera_names, config.image_size,
                                          config.window, config.chunk, settings.segment,
                                          shuffle_buffer=settings.shuffle_buffer, seed=settings.seed, repeat=True)


def with_statistics(config: VLAConfig, episodes: list[Episode], settings: "TrainSettings") -> VLAConfig:
    """The config with action statistics per embodiment of the training data (the acting embodiment's as
    ``action_stats``; all of them in ``embodiment_stats`` when the data mixes embodiments) and proprioception
    statistics, unless kept."""
    if settings.keep_statistics:
        if config.proprio_dim and not config.proprio_stats:
            raise ValueError("keep_statistics: the initial checkpoint has no proprioception statistics")
        return config
    groups: dict[str, list[Episode]] = {}
    for episode in episodes:
        groups.setdefault(episode.info.get("embodiment", config.embodiment), []).append(episode)
    if config.embodiment not in groups:
        raise ValueError(_embodiment_mismatch(config.embodiment, groups))
    stats = {name: action_statistics(group, get_embodiment(name), min_range=settings.min_range).to_dict()
             for name, group in sorted(groups.items())}
    changes = {"action_stats": stats[config.embodiment], "embodiment_stats": stats if len(stats) > 1 else None}
    if config.proprio_dim:
        changes["proprio_stats"] = proprio_statistics(episodes).to_dict()
    return dataclasses.replace(config, **changes)


def _embodiment_mismatch(acting: str, found) -> str:
    return (f"the checkpoint acts as {acting!r} but the training data is {sorted(found)}: fine-tune it (a "
            f"recipe's finetune.embodiment) or create one for that embodiment")


def codecs(config: VLAConfig) -> dict[str, ActionCodec]:
    """One codec per embodiment the checkpoint holds statistics for."""
    stats = config.embodiment_stats or {config.embodiment: config.action_stats}
    return {name: ActionCodec(ActionStatistics.from_dict(s), name, config.n_bins) for name, s in stats.items()}


def weighted_sampler(episode_sources: list[int], train_set: WindowDataset, weights: Sequence[float] | None,
                     generator: torch.Generator) -> WeightedRandomSampler | None:
    """Rows drawn with probability (source weight / that source's rows); None where every weight is equal."""
    if weights is None or len(set(weights)) == 1:
        return None
    sources = [episode_sources[i] for i in train_set.row_episodes]
    rows = Counter(sources)
    row_weights = [weights[source] / rows[source] for source in sources]
    return WeightedRandomSampler(row_weights, num_samples=len(row_weights), replacement=True, generator=generator)
