"""Action-chunk strategies of the policy node (how chunks become one action per tick): pure, clock-free,
ROS-free.

Time is the control tick index (an int that grows by one per control period). A chunk computed from
the observation taken at tick ``t`` holds the actions meant for ticks ``t, t+1, ..., t+C-1``; its
action for tick ``k`` is ``chunk[k - t]``. Inference latency is thereby compensated: a chunk that
arrives two ticks late starts at its action 2. When no chunk has an action for the tick, a strategy
returns None and the node holds the arm.

Strategies (``make_strategy(name, **params)``):
    replan             newest chunk only, action ``tick - chunk_tick`` (RoboVLMs' evaluation loop).
    open_loop_k        a chunk, once adopted, is followed for ``k`` ticks before the newest chunk
                       replaces it (a chunk still within its horizon keeps running if no newer one exists).
    temporal_ensemble  ACT-style average over every chunk with an action for the tick, with weights
                       ``w_i = exp(-m * i)``, i = 0 the OLDEST prediction (ACT's convention: m > 0
                       favours older predictions, m = 0 is a plain mean, m < 0 favours newer ones).
                       The gripper closure is averaged too and stays continuous in [0, 1].

The reported ``chunk_index`` is the index inside the chunk of the returned action (for the ensemble:
inside the newest contributing chunk), i.e. PolicyStatus.chunk_index.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass, fields
from typing import NamedTuple, Protocol

import numpy as np


class ChunkLike(Protocol):
    """Anything with a chunk of actions, e.g. ``vla.policy.PolicyOutput``."""

    arm: np.ndarray  # (C, 6) metres / radians per control period
    gripper: np.ndarray  # (C,) closure in [0, 1]


class ChunkAction(NamedTuple):
    arm: np.ndarray  # (6,)
    gripper: float  # closure in [0, 1]
    chunk_index: int


@dataclass(frozen=True)
class _Chunk:
    tick: int
    arm: np.ndarray
    gripper: np.ndarray

    def covers(self, tick: int) -> bool:
        return 0 <= tick - self.tick < len(self.arm)


class ChunkStrategy(abc.ABC):
    """Turns the chunks produced by inference into one action per control tick."""

    def __init__(self) -> None:
        self._chunks: list[_Chunk] = []  # ascending tick

    def reset(self) -> None:
        """Forget every chunk (a new instruction or episode starts)."""
        self._chunks.clear()

    def submit(self, chunk: ChunkLike, tick: int) -> None:
        """Add the chunk computed from the observation of ``tick``.

        Raises ValueError for a malformed or non-finite chunk, a gripper outside [0, 1], or a tick older
        than the newest chunk's (inference runs in order). A chunk with the newest chunk's tick replaces it.
        """
        arm = np.array(chunk.arm, dtype=np.float64)
        gripper = np.array(chunk.gripper, dtype=np.float64)
        if arm.ndim != 2 or arm.shape[1] != 6 or arm.shape[0] == 0 or gripper.shape != arm.shape[:1]:
            raise ValueError(f"chunk needs arm (C>=1, 6) and gripper (C,), got {arm.shape} and {gripper.shape}")
        if not (np.all(np.isfinite(arm)) and np.all(np.isfinite(gripper))):
            raise ValueError("chunk contains non-finite values (NaN or inf)")
        if np.any((gripper < 0.0) | (gripper > 1.0)):
            raise ValueError(f"chunk gripper closure must lie in [0, 1], got [{gripper.min()}, {gripper.max()}]")
        if int(tick) != tick or tick < 0:
            raise ValueError(f"tick must be a non-negative integer, got {tick}")
        if self._chunks and tick < self._chunks[-1].tick:
            raise ValueError(f"chunk for tick {tick} is older than the newest chunk (tick {self._chunks[-1].tick})")
        self._check_chunk_length(len(arm))
        if self._chunks and tick == self._chunks[-1].tick:
            self._chunks.pop()
        self._chunks.append(_Chunk(int(tick), arm, gripper))

    @abc.abstractmethod
    def action_for(self, tick: int) -> ChunkAction | None:
        """The action to publish at ``tick`` (non-decreasing between calls), or None to hold."""

    def _check_chunk_length(self, length: int) -> None:
        """Hook for strategies with a constraint on the chunk length."""

    def _drop_expired(self, tick: int) -> None:
        self._chunks = [c for c in self._chunks if tick - c.tick < len(c.arm)]


@dataclass(frozen=True)
class ReplanConfig:
    """Replanning has no parameters."""


class ReplanStrategy(ChunkStrategy):
    """Use only the newest chunk, at the offset of the current tick."""

    def __init__(self, config: ReplanConfig | None = None) -> None:
        super().__init__()
        self.config = config or ReplanConfig()

    def action_for(self, tick: int) -> ChunkAction | None:
        if not self._chunks:
            return None
        newest = self._chunks[-1]
        del self._chunks[:-1]  # older chunks are never used again
        if not newest.covers(tick):
            return None
        index = tick - newest.tick
        return ChunkAction(newest.arm[index].copy(), float(newest.gripper[index]), index)


@dataclass(frozen=True)
class OpenLoopConfig:
    k: int = 1  # ticks each adopted chunk is followed before a newer one may replace it

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 1:
            raise ValueError(f"open_loop_k needs an integer k >= 1, got {self.k!r}")


class OpenLoopStrategy(ChunkStrategy):
    """Follow each adopted chunk for k ticks, then switch to the newest chunk."""

    def __init__(self, config: OpenLoopConfig | None = None) -> None:
        super().__init__()
        self.config = config or OpenLoopConfig()
        self._active: _Chunk | None = None
        self._adopted_at = 0

    def reset(self) -> None:
        super().reset()
        self._active = None

    def _check_chunk_length(self, length: int) -> None:
        if length < self.config.k:
            raise ValueError(f"open_loop_k has k={self.config.k} but the chunk holds only {length} actions")

    def action_for(self, tick: int) -> ChunkAction | None:
        newest = self._chunks[-1] if self._chunks else None
        active_done = self._active is None or tick - self._adopted_at >= self.config.k or not self._active.covers(tick)
        if active_done and newest is not None and newest is not self._active and newest.covers(tick):
            self._active, self._adopted_at = newest, tick
        del self._chunks[:-1]  # only the newest can be adopted next
        if self._active is None or not self._active.covers(tick):
            return None
        index = tick - self._active.tick
        return ChunkAction(self._active.arm[index].copy(), float(self._active.gripper[index]), index)


@dataclass(frozen=True)
class TemporalEnsembleConfig:
    m: float = 0.01  # ACT's default; see the module docstring for the weight convention

    def __post_init__(self) -> None:
        if isinstance(self.m, bool) or not isinstance(self.m, (int, float)) or not math.isfinite(self.m):
            raise ValueError(f"temporal_ensemble needs a finite number m, got {self.m!r}")


class TemporalEnsembleStrategy(ChunkStrategy):
    """Exponentially weighted average of every chunk's prediction for the tick."""

    def __init__(self, config: TemporalEnsembleConfig | None = None) -> None:
        super().__init__()
        self.config = config or TemporalEnsembleConfig()

    def action_for(self, tick: int) -> ChunkAction | None:
        self._drop_expired(tick)
        covering = [c for c in self._chunks if c.covers(tick)]  # oldest first
        if not covering:
            return None
        weights = np.exp(-self.config.m * np.arange(len(covering)))
        weights /= weights.sum()
        arm = sum(w * c.arm[tick - c.tick] for w, c in zip(weights, covering))
        gripper = float(sum(w * c.gripper[tick - c.tick] for w, c in zip(weights, covering)))
        return ChunkAction(np.asarray(arm), min(max(gripper, 0.0), 1.0), tick - covering[-1].tick)


_STRATEGIES = {
    "replan": (ReplanStrategy, ReplanConfig),
    "open_loop_k": (OpenLoopStrategy, OpenLoopConfig),
    "temporal_ensemble": (TemporalEnsembleStrategy, TemporalEnsembleConfig),
}


STRATEGIES = tuple(_STRATEGIES)


def make_strategy(name: str, **params: float | int) -> ChunkStrategy:
    """Build the strategy ``name`` with its parameters; ValueError for unknown names or parameters."""
    if name not in _STRATEGIES:
        raise ValueError(f"unknown chunk execution strategy {name!r}; known: {sorted(_STRATEGIES)}")
    strategy_cls, config_cls = _STRATEGIES[name]
    accepted = {f.name for f in fields(config_cls)}
    unknown = set(params) - accepted
    if unknown:
        accepts = sorted(accepted) or "no parameters"
        raise ValueError(f"strategy {name!r} does not take {sorted(unknown)}; it accepts {accepts}")
    return strategy_cls(config_cls(**params))
