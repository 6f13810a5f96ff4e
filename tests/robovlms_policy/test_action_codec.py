"""Action codec and embodiment conventions: property-based round trips, statistics, token mapping."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from robovlms_policy.vla.action_codec import ActionCodec, ActionStatistics
from robovlms_policy.vla.embodiments import (
    EMBODIMENTS,
    Embodiment,
    arm_to_command_units,
    closure_to_gripper,
    command_to_dataset_units,
    get_embodiment,
    gripper_to_closure,
)

LOW = np.array([-0.02, -0.03, -0.01, -0.1, -0.2, -0.3])
HIGH = np.array([0.02, 0.01, 0.05, 0.1, 0.4, 0.3])
STATS = ActionStatistics(LOW, HIGH)
unit = st.floats(0.0, 1.0, allow_nan=False)


def kinova_codec(n_bins: int = 256) -> ActionCodec:
    return ActionCodec(STATS, "kinova", n_bins=n_bins)


@st.composite
def in_range_actions(draw, n: int = 5) -> np.ndarray:
    fractions = draw(hnp.arrays(np.float64, (n, 6), elements=unit))
    arm = LOW + fractions * (HIGH - LOW)
    gripper = draw(hnp.arrays(np.float64, (n, 1), elements=st.sampled_from([0.0, 1.0])))
    return np.concatenate([arm, gripper], axis=1)


@given(in_range_actions())
def test_normalize_denormalize_is_exact_for_in_range_values(actions):
    codec = kinova_codec()
    norm = codec.normalize(actions)
    assert np.all(np.abs(norm[:, :6]) <= 1.0)
    np.testing.assert_allclose(codec.denormalize(norm), actions, rtol=0, atol=1e-15)


def test_normalize_maps_bounds_to_minus_one_and_one():
    codec = kinova_codec()
    ones = np.ones((1, 1))
    norm = codec.normalize(np.concatenate([np.stack([LOW, HIGH, (LOW + HIGH) / 2]), ones.repeat(3, 0)], axis=1))
    np.testing.assert_allclose(norm[:, :6], [[-1] * 6, [1] * 6, [0] * 6], atol=1e-12)


@given(hnp.arrays(np.float64, (4, 7), elements=st.floats(-1.0, 1.0)))
def test_discretize_undiscretize_within_half_a_bin(norm):
    norm[:, 6] = (norm[:, 6] > 0).astype(float)
    for n_bins in (256, 7):
        codec = kinova_codec(n_bins)
        bins = codec.discretize(norm)
        assert bins.dtype == np.int64 and bins.min() >= 0 and bins.max() < n_bins
        back = codec.undiscretize(bins)
        assert np.all(np.abs(back[:, :6] - norm[:, :6]) <= 1.0 / n_bins + 1e-12)
        np.testing.assert_array_equal(back[:, 6], norm[:, 6])


def test_bin_edges_are_documented_values():
    codec = kinova_codec(256)
    norm = np.array([[-1.0, 1.0, 0.0, -1.0 + 2 / 256, -1e-9, 0.999, 1.0]])
    np.testing.assert_array_equal(codec.discretize(norm), [[0, 255, 128, 1, 127, 255, 255]])
    centres = codec.undiscretize(np.array([[0, 255, 128, 1, 127, 255, 0]]))
    np.testing.assert_allclose(centres[0, :2], [-1 + 1 / 256, 1 - 1 / 256])


@given(st.integers(256, 200_000))
@settings(max_examples=50)
def test_token_mapping_is_a_bijection_onto_the_last_ids(vocab_size):
    codec = kinova_codec()
    bins = np.arange(256)
    ids = codec.bins_to_token_ids(bins, vocab_size)
    np.testing.assert_array_equal(ids, np.arange(vocab_size - 256, vocab_size))
    np.testing.assert_array_equal(codec.token_ids_to_bins(ids, vocab_size), bins)


def test_token_mapping_rejects_out_of_range_ids_and_bins():
    codec = kinova_codec()
    with pytest.raises(ValueError, match="action tokens"):
        codec.token_ids_to_bins(np.array([1000 - 257]), 1000)
    with pytest.raises(ValueError, match="action tokens"):
        codec.token_ids_to_bins(np.array([1000]), 1000)
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        codec.bins_to_token_ids(np.array([256]), 1000)
    with pytest.raises(ValueError, match="vocab_size"):
        codec.bins_to_token_ids(np.array([3]), 100)
    with pytest.raises(ValueError, match="integers"):
        codec.bins_to_token_ids(np.array([3.0]), 1000)


@given(hnp.arrays(np.float64, (3, 6), elements=st.floats(-100.0, 100.0)))
def test_out_of_range_values_clamp(arm):
    codec = kinova_codec()
    actions = np.concatenate([arm, np.zeros((3, 1))], axis=1)
    norm = codec.normalize(actions)
    assert np.all(np.abs(norm[:, :6]) <= 1.0)
    np.testing.assert_allclose(codec.denormalize(norm)[:, :6], np.clip(arm, LOW, HIGH), atol=1e-15)
    np.testing.assert_allclose(codec.denormalize(np.full((1, 7), 5.0))[0, :6], HIGH, atol=1e-15)


@pytest.mark.parametrize(
    "name, open_value, closed_value",
    [("calvin", 1.0, -1.0), ("bridge", 1.0, 0.0), ("google_robot", -1.0, 1.0), ("kinova", 0.0, 1.0)],
)
def test_gripper_conventions(name, open_value, closed_value):
    emb = get_embodiment(name)
    assert (emb.gripper_open_value, emb.gripper_closed_value) == (open_value, closed_value)
    np.testing.assert_array_equal(gripper_to_closure(emb, [open_value, closed_value]), [0.0, 1.0])
    np.testing.assert_array_equal(closure_to_gripper(emb, [0.0, 1.0]), [open_value, closed_value])
    codec = ActionCodec(STATS, emb)
    actions = np.zeros((2, 7))
    actions[:, 6] = [open_value, closed_value]
    norm = codec.normalize(actions)
    np.testing.assert_array_equal(norm[:, 6], [0.0, 1.0])
    np.testing.assert_array_equal(codec.denormalize(norm)[:, 6], [open_value, closed_value])
    # Halfway is ambiguous and counts as open.
    assert codec.normalize(np.array([[0, 0, 0, 0, 0, 0, (open_value + closed_value) / 2]]))[0, 6] == 0.0


def test_embodiment_registry_and_units():
    assert set(EMBODIMENTS) == {"calvin", "bridge", "google_robot", "kinova"}
    with pytest.raises(KeyError, match="known.*bridge"):
        get_embodiment("ur5")
    calvin = ActionCodec(ActionStatistics(-np.ones(6), np.ones(6)), "calvin")
    arm, closure = calvin.to_units(np.array([[1.0, -0.5, 0, 1.0, 0, -1.0, 1.0]]))
    np.testing.assert_allclose(arm, [[0.02, -0.01, 0, 0.05, 0, -0.05]])
    np.testing.assert_array_equal(closure, [1.0])
    with pytest.raises(ValueError, match="arm_scale"):
        Embodiment("bad", 0.0, 1.0, (1.0,) * 5, "")
    with pytest.raises(ValueError, match="differ"):
        Embodiment("bad", 1.0, 1.0, (1.0,) * 6, "")


def test_statistics_from_data_are_percentiles():
    rng = np.random.default_rng(0)
    actions = rng.normal(size=(1000, 7))
    stats = ActionStatistics.from_actions(actions)
    np.testing.assert_allclose(stats.low, np.percentile(actions[:, :6], 1, axis=0))
    np.testing.assert_allclose(stats.high, np.percentile(actions[:, :6], 99, axis=0))
    wide = ActionStatistics.from_actions(actions, 0.0, 100.0)
    np.testing.assert_array_equal(wide.low, actions[:, :6].min(axis=0))
    with pytest.raises(ValueError, match="percentile"):
        ActionStatistics.from_actions(actions, 50.0, 50.0)
    with pytest.raises(ValueError, match="shape"):
        ActionStatistics.from_actions(actions[:, :5])


def test_constant_dimension_normalises_to_zero_and_back_to_its_value():
    actions = np.random.default_rng(1).uniform(-1, 1, size=(50, 7))
    actions[:, 2] = 0.25
    stats = ActionStatistics.from_actions(actions)
    assert stats.low[2] == stats.high[2] == 0.25
    codec = ActionCodec(stats, "kinova")
    with np.errstate(all="raise"):  # any division by zero would raise here
        norm = codec.normalize(actions)
        assert np.all(norm[:, 2] == 0.0)
        assert np.all(codec.denormalize(norm)[:, 2] == 0.25)
        assert np.all(codec.denormalize(np.full((1, 7), 0.7))[:, 2] == 0.25)


def test_statistics_json_round_trip():
    stats = ActionStatistics.from_actions(np.random.default_rng(2).normal(size=(100, 7)) / 3)
    restored = ActionStatistics.from_dict(json.loads(json.dumps(stats.to_dict())))
    np.testing.assert_array_equal(restored.low, stats.low)
    np.testing.assert_array_equal(restored.high, stats.high)
    with pytest.raises(ValueError, match="missing"):
        ActionStatistics.from_dict({"low": [0.0] * 6})
    with pytest.raises(ValueError, match="low must be <= high"):
        ActionStatistics(np.ones(6), np.zeros(6))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_rejected(bad):
    codec = kinova_codec()
    action = np.zeros((2, 7))
    action[1, 3] = bad
    for call in (codec.normalize, codec.denormalize, codec.discretize, codec.to_units):
        with pytest.raises(ValueError, match="NaN or inf"):
            call(action)
    with pytest.raises(ValueError, match="NaN or inf"):
        ActionStatistics.from_actions(action)
    with pytest.raises(ValueError, match="NaN or inf"):
        gripper_to_closure(get_embodiment("bridge"), [bad])
    with pytest.raises(ValueError, match=r"\(\.\.\., 7\)"):
        codec.normalize(np.zeros((2, 6)))


@pytest.mark.parametrize("name", sorted(EMBODIMENTS))
def test_command_units_round_trip_through_dataset_units(name):
    emb = EMBODIMENTS[name]
    commanded = np.array([[0.01, -0.02, 0.005, 0.1, -0.05, 0.0, 1.0], [0.0, 0.0, -0.01, 0.0, 0.2, -0.1, 0.0]])
    dataset = command_to_dataset_units(emb, commanded)
    np.testing.assert_allclose(arm_to_command_units(emb, dataset[:, :6]), commanded[:, :6], atol=1e-12)
    np.testing.assert_allclose(gripper_to_closure(emb, dataset[:, 6]), commanded[:, 6])
    with pytest.raises(ValueError, match="NaN or inf"):
        command_to_dataset_units(emb, np.full((1, 7), np.nan))
