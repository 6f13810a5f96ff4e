"""The evaluation chains and initial scenes equal CALVIN's. Reference values were computed by running
CALVIN's own get_sequences(1000) (calvin_agent/evaluation/multistep_sequences.py, mees/calvin fa03f01) and
get_env_state_for_initial_condition with pyhash 0.9.3."""
import hashlib
import json

import numpy as np
import pytest

from robovlms_calvin.sequences import (CHAIN_LENGTH, TASK_NAMES, compute_chains, evaluation_chains, fnv1_32,
                                       initial_scene, initial_states, is_valid_chain, state_seed)

CALVIN_SHA256 = "abc87d49136ac04f7343805fda2cf87dc46ffa8f2546b9891e0e7d3cd2ea42e3"  # of the chains' JSON, sorted keys
FIRST_CHAINS = [
    ({"led": 1, "lightbulb": 1, "slider": "left", "drawer": "open", "red_block": "slider_left",
      "blue_block": "table", "pink_block": "slider_right", "grasped": 0},
     ("rotate_blue_block_right", "move_slider_right", "lift_red_block_slider", "place_in_slider",
      "turn_off_lightbulb")),
    ({"led": 1, "lightbulb": 1, "slider": "right", "drawer": "open", "red_block": "slider_right",
      "blue_block": "table", "pink_block": "slider_left", "grasped": 0},
     ("turn_off_led", "push_into_drawer", "lift_blue_block_drawer", "place_in_slider", "close_drawer")),
    ({"led": 0, "lightbulb": 1, "slider": "right", "drawer": "closed", "red_block": "table",
      "blue_block": "slider_right", "pink_block": "slider_left", "grasped": 0},
     ("lift_pink_block_slider", "place_in_slider", "open_drawer", "rotate_red_block_right", "lift_red_block_table")),
]
SCENES = {  # scene_obs of chains 0 and 999 from CALVIN's code
    0: [0.28, 0.22, 0.0, 0.088, 1.0, 1.0, -0.240851662, 0.0924044687, 0.460990009, 0.0, 0.0, 1.8859410064104645,
        0.229995412, -0.11999514, 0.45999001, 0.0, 0.0, 1.488143437705632, 0.070341633, 0.0924044687, 0.460990009,
        0.0, 0.0, 1.4683986863194542],
    999: [0.28, 0.0, 0.0, 0.0, 0.0, 1.0, 0.070341633, 0.0924044687, 0.460990009, 0.0, 0.0, 1.857736601959671,
          -0.240851662, 0.0924044687, 0.460990009, 0.0, 0.0, 1.6415661637379568, 0.229995412, -0.11999514,
          0.45999001, 0.0, 0.0, 1.3918446359693568],
}


def test_fnv1_32_matches_pyhash():
    assert fnv1_32(b"hello world") == 2805756500  # pyhash's README example (seed 0)
    assert state_seed({"led": 0, "lightbulb": 1, "slider": "right"}) == 2419715129  # pyhash on the str, py3


def test_initial_states():
    states = initial_states()
    assert len(states) == 192
    for state in states:
        blocks = [state[f"{c}_block"] for c in ("red", "blue", "pink")]
        assert blocks.count("table") in (1, 2) and blocks.count("slider_left") < 2


def test_a_chain_must_apply_in_exactly_one_way_with_distinct_categories():
    state = FIRST_CHAINS[0][0]
    assert is_valid_chain(state, FIRST_CHAINS[0][1])
    assert not is_valid_chain(state, ("open_drawer",) * 5)  # the drawer is open already
    assert not is_valid_chain(state, ("move_slider_right", "move_slider_left", "turn_on_led", "turn_off_led",
                                      "close_drawer"))  # slider category twice
    assert len(TASK_NAMES) == 34


@pytest.mark.slow
def test_the_1000_chains_are_calvins():
    chains = compute_chains(1000)
    for chain, (state, subtasks) in zip(chains, FIRST_CHAINS):
        assert chain.initial_state == state and chain.subtasks == subtasks
    document = json.dumps([{"initial_state": c.initial_state, "subtasks": list(c.subtasks)} for c in chains],
                          sort_keys=True)
    assert hashlib.sha256(document.encode()).hexdigest() == CALVIN_SHA256
    assert all(len(c.subtasks) == CHAIN_LENGTH and is_valid_chain(c.initial_state, c.subtasks) for c in chains)
    for index, scene in SCENES.items():
        robot_obs, scene_obs = initial_scene(chains[index].initial_state)
        np.testing.assert_allclose(scene_obs, scene, rtol=0, atol=1e-12)
        assert robot_obs.shape == (15,) and robot_obs[-1] == 1.0


def test_the_cached_chains_read_back_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    evaluation_chains.cache_clear()
    try:
        chains = evaluation_chains(20)
        assert chains == compute_chains(20) and len(list(tmp_path.rglob("calvin_chains_20_*.json"))) == 1
        evaluation_chains.cache_clear()
        assert evaluation_chains(20) == chains  # from the file this time
        next(tmp_path.rglob("calvin_chains_20_*.json")).write_text("{broken")
        evaluation_chains.cache_clear()
        assert evaluation_chains(20) == chains  # a broken cache is recomputed
    finally:
        evaluation_chains.cache_clear()


def test_initial_scene_of_a_state():
    robot_obs, scene_obs = initial_scene(FIRST_CHAINS[0][0])
    np.testing.assert_allclose(scene_obs, SCENES[0], atol=1e-12)
