"""Chunk execution strategies: hand-computed actions, horizons, open-loop boundaries, reset, bad input."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from robovlms_policy.runtime.chunk_strategies import (
    ChunkStrategy,
    OpenLoopStrategy,
    ReplanStrategy,
    TemporalEnsembleStrategy,
    make_strategy,
)


@dataclass
class Chunk:
    arm: np.ndarray
    gripper: np.ndarray


def chunk(base: float, length: int = 4, gripper: float = 0.0) -> Chunk:
    """Action i of the chunk has every arm value base + i, so the expected action is easy to read."""
    arm = np.repeat((base + np.arange(length, dtype=float))[:, None], 6, axis=1)
    return Chunk(arm, np.full(length, gripper))


def arm_value(action) -> float:
    assert action is not None
    assert np.all(action.arm == action.arm[0]) and action.arm.shape == (6,)
    return float(action.arm[0])


def test_make_strategy_builds_each_strategy_and_rejects_bad_names_and_params():
    assert isinstance(make_strategy("replan"), ReplanStrategy)
    assert make_strategy("open_loop_k", k=3).config.k == 3
    assert isinstance(make_strategy("temporal_ensemble", m=0.5), TemporalEnsembleStrategy)
    assert make_strategy("temporal_ensemble", m=0.5).config.m == 0.5
    assert all(isinstance(make_strategy(n), ChunkStrategy) for n in ("replan", "open_loop_k", "temporal_ensemble"))
    with pytest.raises(ValueError, match=r"unknown chunk execution strategy 'act'.*replan"):
        make_strategy("act")
    with pytest.raises(ValueError, match=r"does not take \['m'\]; it accepts \['k'\]"):
        make_strategy("open_loop_k", m=1.0)
    with pytest.raises(ValueError, match="no parameters"):
        make_strategy("replan", k=2)
    for bad_k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k >= 1"):
            make_strategy("open_loop_k", k=bad_k)
    for bad_m in (math.nan, math.inf, "0.1"):
        with pytest.raises(ValueError, match="finite number m"):
            make_strategy("temporal_ensemble", m=bad_m)


def test_no_chunk_means_hold():
    for name in ("replan", "open_loop_k", "temporal_ensemble"):
        assert make_strategy(name).action_for(0) is None


def test_replan_uses_newest_chunk_at_the_tick_offset():
    ex = make_strategy("replan")
    ex.submit(chunk(0.0, gripper=1.0), tick=10)
    action = ex.action_for(10)
    assert arm_value(action) == 0.0 and action.gripper == 1.0 and action.chunk_index == 0
    assert arm_value(ex.action_for(12)) == 2.0  # two ticks of latency -> action 2
    ex.submit(chunk(100.0), tick=12)
    action = ex.action_for(13)
    assert arm_value(action) == 101.0 and action.chunk_index == 1
    assert ex.action_for(15) is not None
    assert ex.action_for(16) is None  # chunk of 4 from tick 12 ends at tick 15
    assert ex.action_for(11) is None  # before the chunk's observation


def test_open_loop_follows_each_chunk_for_k_ticks():
    ex = make_strategy("open_loop_k", k=2)
    ex.submit(chunk(0.0), tick=0)
    assert arm_value(ex.action_for(0)) == 0.0
    ex.submit(chunk(100.0), tick=1)  # arrives mid-way: must wait until 2 actions ran
    assert arm_value(ex.action_for(1)) == 1.0
    action = ex.action_for(2)
    assert arm_value(action) == 101.0 and action.chunk_index == 1  # adopted at its tick offset
    assert arm_value(ex.action_for(3)) == 102.0
    # No newer chunk: the active one keeps running until its horizon, then hold.
    assert arm_value(ex.action_for(4)) == 103.0
    assert ex.action_for(5) is None
    ex.submit(chunk(200.0), tick=5)
    assert arm_value(ex.action_for(5)) == 200.0


def test_open_loop_counts_ticks_not_calls_and_skips_to_the_newest():
    ex = make_strategy("open_loop_k", k=3)
    ex.submit(chunk(0.0, length=5), tick=0)
    assert arm_value(ex.action_for(0)) == 0.0
    ex.submit(chunk(10.0, length=5), tick=1)
    ex.submit(chunk(20.0, length=5), tick=2)
    assert arm_value(ex.action_for(2)) == 2.0  # tick 1 was missed; still inside the k=3 window
    assert arm_value(ex.action_for(3)) == 21.0  # window over: newest chunk (tick 2), offset 1


def test_open_loop_rejects_chunks_shorter_than_k():
    ex = make_strategy("open_loop_k", k=5)
    assert isinstance(ex, OpenLoopStrategy)
    with pytest.raises(ValueError, match="k=5 but the chunk holds only 4"):
        ex.submit(chunk(0.0, length=4), tick=0)


def test_temporal_ensemble_of_two_known_chunks():
    m = 0.5
    ex = make_strategy("temporal_ensemble", m=m)
    ex.submit(chunk(0.0, gripper=0.0), tick=0)  # predicts 0,1,2,3 for ticks 0..3
    ex.submit(chunk(10.0, gripper=1.0), tick=2)  # predicts 10,11,12,13 for ticks 2..5
    assert arm_value(ex.action_for(1)) == 1.0
    w_old, w_new = 1.0, math.exp(-m)  # i = 0 is the oldest prediction
    action = ex.action_for(2)
    expected = (w_old * 2.0 + w_new * 10.0) / (w_old + w_new)
    assert arm_value(action) == pytest.approx(expected)
    assert action.gripper == pytest.approx(w_new / (w_old + w_new))  # continuous closure
    assert action.chunk_index == 0  # index inside the newest contributing chunk
    assert arm_value(ex.action_for(3)) == pytest.approx((w_old * 3.0 + w_new * 11.0) / (w_old + w_new))
    action = ex.action_for(4)  # the old chunk's horizon is over
    assert arm_value(action) == 12.0 and action.chunk_index == 2
    assert ex.action_for(6) is None


def test_temporal_ensemble_weight_convention():
    mean = make_strategy("temporal_ensemble", m=0.0)
    favour_new = make_strategy("temporal_ensemble", m=-50.0)
    for ex in (mean, favour_new):
        ex.submit(chunk(0.0), tick=0)
        ex.submit(chunk(10.0), tick=1)
        ex.submit(chunk(20.0), tick=2)
    assert arm_value(mean.action_for(2)) == pytest.approx((2.0 + 11.0 + 20.0) / 3)
    assert arm_value(favour_new.action_for(2)) == pytest.approx(20.0)


def test_stale_chunks_beyond_their_horizon_give_none():
    for name in ("replan", "open_loop_k", "temporal_ensemble"):
        ex = make_strategy(name)
        ex.submit(chunk(0.0, length=3), tick=0)
        assert ex.action_for(2) is not None, name
        assert ex.action_for(3) is None, name
        assert ex.action_for(50) is None, name


def test_reset_clears_everything():
    for name in ("replan", "open_loop_k", "temporal_ensemble"):
        ex = make_strategy(name)
        ex.submit(chunk(0.0), tick=5)
        assert ex.action_for(5) is not None
        ex.reset()
        assert ex.action_for(6) is None, name
        ex.submit(chunk(50.0), tick=0)  # after a reset, ticks may start again from 0
        assert arm_value(ex.action_for(1)) == 51.0, name


@pytest.mark.parametrize("name", ["replan", "open_loop_k", "temporal_ensemble"])
def test_bad_chunks_are_rejected_at_submit(name):
    ex = make_strategy(name)
    good = chunk(0.0)
    for bad_value in (math.nan, math.inf):
        bad = chunk(0.0)
        bad.arm[2, 4] = bad_value
        with pytest.raises(ValueError, match="NaN or inf"):
            ex.submit(bad, tick=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        ex.submit(Chunk(good.arm, np.array([0.0, math.nan, 0.0, 0.0])), tick=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ex.submit(Chunk(good.arm, np.array([0.0, 1.5, 0.0, 0.0])), tick=0)
    with pytest.raises(ValueError, match=r"arm \(C>=1, 6\)"):
        ex.submit(Chunk(good.arm[:, :3], good.gripper), tick=0)
    with pytest.raises(ValueError, match=r"arm \(C>=1, 6\)"):
        ex.submit(Chunk(good.arm, good.gripper[:2]), tick=0)
    with pytest.raises(ValueError, match="non-negative integer"):
        ex.submit(good, tick=-1)
    assert ex.action_for(0) is None  # nothing bad was stored
    ex.submit(good, tick=4)
    with pytest.raises(ValueError, match="older than the newest"):
        ex.submit(good, tick=3)
    ex.submit(chunk(7.0), tick=4)  # same tick: replaces
    assert arm_value(ex.action_for(4)) == 7.0


def test_submitted_chunk_is_copied():
    ex = make_strategy("replan")
    source = chunk(0.0)
    ex.submit(source, tick=0)
    source.arm[:] = 99.0
    assert arm_value(ex.action_for(0)) == 0.0
