"""Action codec: dataset actions <-> normalised actions <-> discrete bins <-> language-model token ids.

Layout of a normalised action (last axis, 7 values):
    [0:6]  arm dimensions, clamped to the dataset's [low, high] statistics and mapped linearly to [-1, 1]
    [6]    gripper closure, 0 = open, 1 = closed (see ``embodiments``), binary after ``normalize``

Discretisation (for discrete / autoregressive heads), ``n_bins`` = B uniform bins:
    arm:     [-1, 1] is cut into B equal bins; bin b covers [-1 + 2b/B, -1 + 2(b+1)/B) (1.0 falls in bin
             B-1); ``undiscretize`` returns the bin centre, so the round trip error is at most 1/B
             (half a bin).
    gripper: binary, closure <= 0.5 -> bin 0, closure > 0.5 -> bin B-1; ``undiscretize`` maps bins
             below B/2 to closure 0 and the others to 1, so {0, 1} round-trips exactly.
Token mapping: the B LAST ids of the LM vocabulary, ``token_id = vocab_size - B + bin`` (a bijection
between [0, B) and [vocab_size - B, vocab_size)).

Degenerate statistics rule: an arm dimension whose data range ``high - low`` is below
``MIN_RANGE`` (e.g. a dimension that is constant in the data) normalises to 0 and denormalises to the
centre ``(low + high) / 2``; nothing divides by zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robovlms_policy.vla.embodiments import (ARM_DIMS, Embodiment, arm_to_command_units, closure_to_gripper,
                                             get_embodiment, gripper_to_closure)

ACTION_DIMS = ARM_DIMS + 1
MIN_RANGE = 1e-8


def _finite_array(values: Any, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or inf")
    return array


def _action_array(values: Any, what: str) -> np.ndarray:
    array = _finite_array(values, what)
    if array.ndim == 0 or array.shape[-1] != ACTION_DIMS:
        raise ValueError(f"{what} must have shape (..., {ACTION_DIMS}), got {array.shape}")
    return array


@dataclass
class ActionStatistics:
    """Per-dimension bounds of the 6 arm dimensions, in dataset units."""

    low: np.ndarray
    high: np.ndarray

    def __post_init__(self) -> None:
        self.low = _finite_array(self.low, "statistics low")
        self.high = _finite_array(self.high, "statistics high")
        if self.low.shape != (ARM_DIMS,) or self.high.shape != (ARM_DIMS,):
            raise ValueError(f"statistics need shape ({ARM_DIMS},), got {self.low.shape} and {self.high.shape}")
        if np.any(self.low > self.high):
            raise ValueError(f"statistics low must be <= high, got low={self.low} high={self.high}")

    @classmethod
    def from_actions(
        cls, actions: np.ndarray, lower_percentile: float = 1.0, upper_percentile: float = 99.0,
        min_range: Any = 0.0,
    ) -> ActionStatistics:
        """Percentile bounds of the first 6 columns of ``actions`` (N, >= 6); outliers beyond them clamp.

        ``min_range`` (a number or one per arm dimension, dataset units) floors each dimension's
        ``high - low`` about its midpoint: a dimension the demonstrations barely use (tilt corrections of
        a few milliradians) then normalises to small values instead of being stretched to [-1, 1], where
        its noise would take a sixth of the regression loss."""
        array = _finite_array(actions, "actions")
        if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < ARM_DIMS:
            raise ValueError(f"actions must have shape (N >= 1, >= {ARM_DIMS}), got {array.shape}")
        if not 0.0 <= lower_percentile < upper_percentile <= 100.0:
            raise ValueError(
                f"need 0 <= lower_percentile < upper_percentile <= 100, got {lower_percentile}, {upper_percentile}"
            )
        floor = np.broadcast_to(_finite_array(min_range, "min_range"), (ARM_DIMS,))
        if np.any(floor < 0):
            raise ValueError(f"min_range must be >= 0, got {floor}")
        arm = array[:, :ARM_DIMS]
        low, high = np.percentile(arm, lower_percentile, axis=0), np.percentile(arm, upper_percentile, axis=0)
        narrow = high - low < floor
        centre = (low + high) / 2.0
        low = np.where(narrow, centre - floor / 2.0, low)
        high = np.where(narrow, centre + floor / 2.0, high)
        return cls(low, high)

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-safe form; Python floats round-trip exactly through JSON."""
        return {"low": [float(v) for v in self.low], "high": [float(v) for v in self.high]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionStatistics:
        missing = {"low", "high"} - set(data)
        if missing:
            raise ValueError(f"action statistics are missing keys {sorted(missing)}")
        return cls(np.asarray(data["low"], dtype=np.float64), np.asarray(data["high"], dtype=np.float64))


class ActionCodec:
    """Converts between dataset actions, normalised actions, bins and token ids (see module docstring)."""

    def __init__(self, stats: ActionStatistics, embodiment: Embodiment | str, n_bins: int = 256) -> None:
        if int(n_bins) != n_bins or n_bins < 2:
            raise ValueError(f"n_bins must be an integer >= 2, got {n_bins}")
        self.stats = stats
        self.embodiment = get_embodiment(embodiment) if isinstance(embodiment, str) else embodiment
        self.n_bins = int(n_bins)
        self._centre = (stats.low + stats.high) / 2.0
        self._half_range = (stats.high - stats.low) / 2.0
        self._degenerate = (stats.high - stats.low) < MIN_RANGE
        # Degenerate dimensions divide by 1 and are then zeroed, so no division by zero happens.
        self._divisor = np.where(self._degenerate, 1.0, self._half_range)

    def normalize(self, actions: np.ndarray) -> np.ndarray:
        """Dataset-unit actions (..., 7) -> arm clamped and scaled to [-1, 1], gripper closure in {0, 1}."""
        array = _action_array(actions, "actions")
        arm = np.clip(array[..., :ARM_DIMS], self.stats.low, self.stats.high)
        norm_arm = np.where(self._degenerate, 0.0, (arm - self._centre) / self._divisor)
        # Ambiguous grippers (closure exactly 0.5) count as open: never grasp on unclear data.
        closed = gripper_to_closure(self.embodiment, array[..., ARM_DIMS]) > 0.5
        return np.concatenate([np.clip(norm_arm, -1.0, 1.0), closed[..., None].astype(np.float64)], axis=-1)

    def denormalize(self, norm: np.ndarray) -> np.ndarray:
        """Normalised actions (..., 7) -> dataset units; arm values outside [-1, 1] clamp first."""
        array = _action_array(norm, "normalised actions")
        arm = self._centre + np.clip(array[..., :ARM_DIMS], -1.0, 1.0) * self._half_range
        gripper = closure_to_gripper(self.embodiment, array[..., ARM_DIMS])
        return np.concatenate([arm, gripper[..., None]], axis=-1)

    def discretize(self, norm: np.ndarray) -> np.ndarray:
        """Normalised actions (..., 7) -> int64 bins (..., 7) in [0, n_bins)."""
        array = _action_array(norm, "normalised actions")
        arm = np.clip(array[..., :ARM_DIMS], -1.0, 1.0)
        arm_bins = np.minimum(np.floor((arm + 1.0) / 2.0 * self.n_bins), self.n_bins - 1)
        gripper_bins = np.where(array[..., ARM_DIMS] > 0.5, self.n_bins - 1, 0)
        return np.concatenate([arm_bins, gripper_bins[..., None]], axis=-1).astype(np.int64)

    def undiscretize(self, bins: np.ndarray) -> np.ndarray:
        """Bins (..., 7) -> normalised actions: arm bin centres, gripper closure in {0, 1}."""
        array = self._check_bins(bins)
        arm = -1.0 + (array[..., :ARM_DIMS] + 0.5) * (2.0 / self.n_bins)
        gripper = (array[..., ARM_DIMS] >= self.n_bins // 2).astype(np.float64)
        return np.concatenate([arm, gripper[..., None]], axis=-1)

    def bins_to_token_ids(self, bins: np.ndarray, vocab_size: int) -> np.ndarray:
        """Bins -> ids of the n_bins last tokens of a vocabulary of ``vocab_size`` (any shape)."""
        self._check_vocab(vocab_size)
        return self._check_bins(bins, need_action_axis=False) + (vocab_size - self.n_bins)

    def token_ids_to_bins(self, ids: np.ndarray, vocab_size: int) -> np.ndarray:
        """Inverse of ``bins_to_token_ids``; ids outside the action range raise ValueError."""
        self._check_vocab(vocab_size)
        array = np.asarray(ids)
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"token ids must be integers, got dtype {array.dtype}")
        first = vocab_size - self.n_bins
        if array.size and (array.min() < first or array.max() >= vocab_size):
            raise ValueError(
                f"token ids must lie in [{first}, {vocab_size}) (the action tokens), got [{array.min()}, {array.max()}]"
            )
        return array.astype(np.int64) - first

    def to_units(self, norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised actions (..., 7) -> (arm in metres / radians per step (..., 6), closure (...,))."""
        array = _action_array(norm, "normalised actions")
        arm = arm_to_command_units(self.embodiment, self.denormalize(array)[..., :ARM_DIMS])
        return arm, np.clip(array[..., ARM_DIMS], 0.0, 1.0)

    def _check_bins(self, bins: np.ndarray, need_action_axis: bool = True) -> np.ndarray:
        array = np.asarray(bins)
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"bins must be integers, got dtype {array.dtype}")
        if need_action_axis and (array.ndim == 0 or array.shape[-1] != ACTION_DIMS):
            raise ValueError(f"bins must have shape (..., {ACTION_DIMS}), got {array.shape}")
        if array.size and (array.min() < 0 or array.max() >= self.n_bins):
            raise ValueError(f"bins must lie in [0, {self.n_bins}), got [{array.min()}, {array.max()}]")
        return array.astype(np.int64)

    def _check_vocab(self, vocab_size: int) -> None:
        if int(vocab_size) != vocab_size or vocab_size < self.n_bins:
            raise ValueError(f"vocab_size must be an integer >= n_bins ({self.n_bins}), got {vocab_size}")
