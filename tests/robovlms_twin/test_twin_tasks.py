"""Twin tasks: scripted experts, success oracles at their thresholds, seeded resets, variations."""
from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robovlms_twin import tasks as T
from robovlms_twin.cell import KinovaCell
from robovlms_twin.model_builder import BLOCK_HALF
from robovlms_twin.scene import BUTTON_PRESSED

EXPERT_SEEDS = 20
MAX_STEPS = 60  # 6 s of control at 10 Hz


@pytest.fixture(scope="module")
def cell():
    cell = KinovaCell()
    yield cell
    cell.close()


def run_expert(cell: KinovaCell, max_steps: int = MAX_STEPS) -> bool:
    """Roll the scripted expert out (no rendering) until the oracle fires."""
    for _ in range(max_steps):
        cell.act(*cell.expert_action())
        if cell.success():
            return True
    return False


def forward(cell: KinovaCell) -> None:
    mujoco.mj_forward(cell.model, cell.data)


def test_at_least_six_tasks_with_instructions(cell):
    assert len(cell.task_names) >= 6
    for name in cell.task_names:
        task = T.TASKS[name]
        assert task.instructions and task.paraphrases
        assert not set(task.instructions) & set(task.paraphrases)


@pytest.mark.parametrize("task", list(T.TASKS))
def test_expert_solves_task_in_95_percent_of_seeds(cell, task):
    solved = 0
    for seed in range(EXPERT_SEEDS):
        cell.reset(task, seed)
        assert not cell.success(), f"{task} seed {seed} is solved before the expert moves"
        solved += run_expert(cell)
    assert solved >= 0.95 * EXPERT_SEEDS, f"{task}: {solved}/{EXPERT_SEEDS}"


@pytest.mark.parametrize("variation", ["distractors", "unseen_colors"])
@pytest.mark.parametrize("task", list(T.TASKS))
def test_expert_solves_held_out_variations(cell, task, variation):
    solved = 0
    for seed in range(100, 103):
        cell.reset(task, seed, variation)
        solved += run_expert(cell)
    assert solved >= 2


def test_expert_actions_have_policy_scale(cell):
    cell.reset("open_drawer", 1)
    for _ in range(40):
        dp, dr, grip = cell.expert_action()
        assert np.linalg.norm(dp) <= 0.03 + 1e-9 and np.linalg.norm(dr) <= 0.2 + 1e-9 and 0.0 <= grip <= 1.0
        cell.act(dp, dr, grip)


def test_lift_really_holds_the_block(cell):
    cell.reset("lift_red_block", 3)
    assert run_expert(cell)
    for _ in range(10):  # expert keeps holding at the safe height
        cell.act(*cell.expert_action())
    block = cell.scene.body_position("red_block")
    assert block[2] > 0.1
    for _ in range(3):  # carry it sideways: it must move with the fingers, not sit on them
        cell.act([0.0, 0.03, 0.0], np.zeros(3), 1.0)
    cell.step(0.3)
    carried = cell.scene.body_position("red_block")
    assert carried[1] - block[1] == pytest.approx(0.09, abs=0.01)
    assert np.linalg.norm(carried - cell.ee_pose()[0]) < 0.02
    cell.act(np.zeros(3), np.zeros(3), 0.0)  # open: gravity takes over
    cell.step(1.0)
    assert cell.scene.body_position("red_block")[2] < BLOCK_HALF + 0.01


EPS = 1e-3


def _set_block_height(cell, z):
    xy = cell.scene.body_position("red_block")[:2]
    cell.scene.set_free_body("red_block", xy, 0.0, z=z)


def _set_blue_offset(cell, dy):
    start = cell.scene.initial["blue_block"]
    cell.scene.set_free_body("blue_block", start[:2] + (0.0, dy), 0.0)


ORACLE_CASES = {
    # task: (setter(cell, value), value just before success, value just past it)
    "open_drawer": (lambda c, v: c.scene.set_drawer_opening(v), T.DRAWER_OPEN - EPS, T.DRAWER_OPEN + EPS),
    "close_drawer": (lambda c, v: c.scene.set_drawer_opening(v), T.DRAWER_CLOSED + EPS, T.DRAWER_CLOSED - EPS),
    "press_button": (lambda c, v: c.scene.set_button_depression(v), BUTTON_PRESSED - EPS, BUTTON_PRESSED + EPS),
    "lift_red_block": (_set_block_height, BLOCK_HALF + T.LIFT_HEIGHT - EPS, BLOCK_HALF + T.LIFT_HEIGHT + EPS),
    "push_blue_block_left": (_set_blue_offset, T.PUSH_DISTANCE - EPS, T.PUSH_DISTANCE + EPS),
    "move_slider_right": (lambda c, v: c.scene.set_slider_position(v), -T.SLIDER_MOVED + EPS, -T.SLIDER_MOVED - EPS),
    "move_slider_left": (lambda c, v: c.scene.set_slider_position(v), T.SLIDER_MOVED - EPS, T.SLIDER_MOVED + EPS),
}


def test_every_task_has_an_oracle_case():
    assert set(ORACLE_CASES) == set(T.TASKS)


@pytest.mark.parametrize("task", list(ORACLE_CASES))
def test_oracle_flips_exactly_at_threshold(cell, task):
    setter, before, after = ORACLE_CASES[task]
    cell.reset(task, 7)
    setter(cell, before)
    forward(cell)
    assert not cell.success()
    setter(cell, after)
    forward(cell)
    assert cell.success()
    setter(cell, before)
    forward(cell)
    assert not cell.success()  # no physics stepped in between, so the button's lamp has not latched


def test_button_lamp_latches_and_lights_up(cell):
    cell.reset("press_button", 2)
    lamp = cell.scene.geom_rgba("button_light").copy()
    cell.scene.set_button_depression(BUTTON_PRESSED + 0.002)
    cell.step(0.002)
    cell.step(0.5)  # the spring pushes the cap back out
    assert cell.scene.button_depression() < BUTTON_PRESSED
    assert cell.success()
    assert cell.scene.geom_rgba("button_light")[0] > lamp[0] + 0.3
    cell.reset("press_button", 2)
    assert not cell.success()


def test_same_seed_same_state_different_seed_different_state(cell):
    first = cell.reset("push_blue_block_left", 5)
    qpos = cell.data.qpos.copy()
    cell.reset("open_drawer", 9, "unseen_colors")  # an unrelated episode in between leaks nothing
    again = cell.reset("push_blue_block_left", 5)
    assert again == first
    np.testing.assert_array_equal(cell.data.qpos, qpos)
    cell.reset("push_blue_block_left", 6)
    assert np.max(np.abs(cell.data.qpos - qpos)) > 0.005


def test_initial_states_are_randomised_within_reach(cell):
    positions = []
    for seed in range(10):
        cell.reset("lift_red_block", seed)
        block = cell.scene.body_position("red_block")
        assert 0.35 <= block[0] <= 0.65 and block[2] == pytest.approx(BLOCK_HALF, abs=0.002)
        positions.append(block)
    assert np.std(np.array(positions)[:, :2], axis=0).min() > 0.02


def test_variations(cell):
    cell.reset("lift_red_block", 4)
    default_rgba = cell.scene.geom_rgba("red_block").copy()
    default_cabinet = cell.scene.geom_rgba("cabinet_top").copy()
    assert cell.scene.body_position("distractor_0")[2] < -0.5  # parked under the table
    spec = cell.reset("lift_red_block", 4, "unseen_colors")
    red = cell.scene.geom_rgba("red_block")
    assert not np.allclose(red, default_rgba) and red[0] > red[1] + 0.3 and red[0] > red[2] + 0.3
    assert not np.allclose(cell.scene.geom_rgba("cabinet_top"), default_cabinet)
    assert spec.instruction in T.TASKS["lift_red_block"].instructions
    cell.reset("lift_red_block", 4, "distractors")
    for i in range(2):
        d = cell.scene.body_position(f"distractor_{i}")
        assert d[2] == pytest.approx(BLOCK_HALF, abs=0.003) and 0.3 < d[0] < 0.7
        for color in ("red", "blue", "green"):
            assert np.linalg.norm(d[:2] - cell.scene.body_position(f"{color}_block")[:2]) > 0.08
    held_out = {cell.reset("open_drawer", s, "paraphrase").instruction for s in range(8)}
    assert held_out <= set(T.TASKS["open_drawer"].paraphrases) and len(held_out) > 1


@pytest.mark.parametrize("task,variation,expected", [
    ("fly_to_moon", "default", "valid tasks: open_drawer"),
    ("open_drawer", "neon", "valid variations: default, unseen_colors"),
    ("x" * 100_000, "default", "valid tasks"),
])
def test_unknown_names_are_rejected_with_valid_choices(cell, task, variation, expected):
    with pytest.raises(ValueError, match=expected) as error:
        cell.reset(task, 0, variation)
    assert len(str(error.value)) < 500


def test_expert_needs_an_episode():
    with pytest.raises(RuntimeError, match="reset"):
        KinovaCell().expert_action()


def test_a_command_line_task_list_is_parsed_or_refused_by_name():
    assert T.parse_tasks("all") == list(T.TASKS)
    assert T.parse_tasks(" lift_red_block, press_button ,") == ["lift_red_block", "press_button"]
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['fly'\]; known: open_drawer"):
        T.parse_tasks("press_button,fly")
    with pytest.raises(ValueError, match=r"unknown task\(s\) ' , '"):
        T.parse_tasks(" , ")
