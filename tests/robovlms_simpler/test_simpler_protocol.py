"""SimplerEnv's episode sets and the protocol's bookkeeping (plan, shards, success at the last step, the trial
report format, merging shards) through the cell on a small in-test env."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from robovlms_policy.trials.report import TrialResult
from robovlms_policy.trials.shards import take_shard
from robovlms_simpler.protocol import merge_runs, plan_episodes, run_episodes, success_rates, write_run
from robovlms_simpler.simpler_cell import SimplerCell
from robovlms_simpler.tasks import GOOGLE_ROBOT, ROBOTS, TASKS, WIDOWX, robot_quat, select_tasks, tasks_of
from small_simpler_env import SmallSimplerEnv


def test_the_benchmarks_task_lists_and_episode_sets():
    assert len(tasks_of(GOOGLE_ROBOT)) == 11 and len(tasks_of(WIDOWX)) == 4
    counts = {name: task.episode_count for name, task in TASKS.items()}
    assert counts["google_robot_pick_horizontal_coke_can"] == 100  # 5 x 5 positions x 4 URDF variants
    assert counts["google_robot_move_near"] == 240 and counts["google_robot_open_top_drawer"] == 36
    assert counts["google_robot_place_apple_in_closed_top_drawer"] == 108
    assert all(counts[name] == 24 for name in tasks_of(WIDOWX))
    assert {TASKS[n].max_steps for n in tasks_of(WIDOWX)} == {60, 120}
    assert ROBOTS[GOOGLE_ROBOT].control_freq == 3 and ROBOTS[WIDOWX].control_freq == 5
    assert all(TASKS[n].maniskill3_id for n in tasks_of(WIDOWX))


def test_episodes_reset_as_simplerenvs_evaluator_does():
    can = TASKS["google_robot_pick_vertical_coke_can"].episode(99)
    assert can.build_kwargs()["laid_vertically"] is True
    assert can.build_kwargs()["urdf_version"] == "recolor_cabinet_visual_matching_1" and can.variant == "cabinet_1"
    options = can.reset_options()
    np.testing.assert_allclose(options["obj_init_options"]["init_xy"], [-0.12, 0.42])
    np.testing.assert_allclose(options["robot_init_options"]["init_xy"], [0.35, 0.20])
    drawer = TASKS["google_robot_close_middle_drawer"].episode(2)
    assert drawer.build_kwargs()["rgb_overlay"] == "open_drawer_a2.png" and drawer.build_kwargs()["shader_dir"] == "rt"
    # Pose(q=euler2quat(0, 0, -0.06)) * Pose(q=[0, 0, 0, 1]) = a turn of pi - 0.06 about z (w, x, y, z).
    np.testing.assert_allclose(drawer.robot_quat, [math.sin(0.03), 0, 0, math.cos(0.03)], atol=1e-12)
    np.testing.assert_allclose(robot_quat(0.0), [0, 0, 0, 1])
    eggplant = TASKS["widowx_put_eggplant_in_basket"].episode(5)
    assert eggplant.reset_options()["obj_init_options"] == {"episode_id": 5}
    assert eggplant.build_kwargs()["robot"] == "widowx_sink_camera_setup"
    with pytest.raises(ValueError, match="episodes 0..23"):
        TASKS["widowx_stack_cube"].episode(24)


def test_task_selection_keeps_one_robot():
    assert [t.name for t in select_tasks("", WIDOWX)] == tasks_of(WIDOWX)
    with pytest.raises(ValueError, match="unknown SimplerEnv task"):
        select_tasks("widowx_fly", WIDOWX)
    with pytest.raises(ValueError, match="run each robot's tasks separately"):
        select_tasks("widowx_stack_cube,google_robot_move_near", WIDOWX)


def test_plan_spreads_episodes_over_the_set_and_shards_cover_it_once():
    tasks = select_tasks("google_robot_pick_standing_coke_can,google_robot_open_top_drawer", GOOGLE_ROBOT)
    plan = plan_episodes(tasks, 4)
    assert [e.index for e in plan if e.task == "google_robot_pick_standing_coke_can"] == [0, 33, 66, 99]
    assert len({e.variant.split("/")[0] for e in plan}) == 4  # all four URDF variants
    assert len(plan_episodes(tasks)) == 136
    parts = [take_shard(plan, i, 3) for i in range(3)]
    assert sum(parts, []) == plan and [len(p) for p in parts] == [3, 3, 2]
    with pytest.raises(ValueError):
        plan_episodes(tasks, 0)


class CellRunner:
    """Runs episodes on the cell directly, rising 1 cm per step (success once 2 cm up), with the given closure."""

    def __init__(self, cell: SimplerCell, steps: int, rise: float = 0.01) -> None:
        self.cell, self.steps, self.rise = cell, steps, rise

    def run_episode(self, episode):
        self.cell.reset_episode(episode)
        period = 1.0 / self.cell.robot.control_freq
        self.cell.set_twist(np.array([0.0, 0.0, self.rise / period]), np.zeros(3))
        for _ in range(self.steps):
            self.cell.step(period)
        obs = self.cell.observation
        return TrialResult("", episode.task, episode.variant, obs.instruction,
                           "success" if obs.success else "failure", self.steps, 0.0, seed=episode.index)


def test_success_is_judged_at_the_last_step(tmp_path):
    env = SmallSimplerEnv(lift=0.02)
    cell = SimplerCell(env, ROBOTS[WIDOWX])
    plan = plan_episodes(select_tasks("widowx_stack_cube,widowx_carrot_on_plate", WIDOWX), 2)
    rising = run_episodes(CellRunner(cell, 3), plan)
    assert all(r.success for r in rising)
    sinking = run_episodes(CellRunner(cell, 3, rise=-0.01), plan[:1])
    assert not sinking[0].success
    rates = success_rates(rising + sinking)
    assert rates["tasks"]["widowx_stack_cube"] == {"success": 2, "total": 3, "rate": 2 / 3}
    assert rates["mean_task_rate"] == pytest.approx((2 / 3 + 1) / 2)
    np.testing.assert_allclose(env.actions[0], [0, 0, 0.01, 0, 0, 0, 1.0])  # open: WidowX's +1


def test_run_reports_in_the_trial_format_and_shards_merge(tmp_path):
    cell = SimplerCell(SmallSimplerEnv(), ROBOTS[WIDOWX])
    plan = plan_episodes(select_tasks("widowx_spoon_on_towel", WIDOWX), 4)
    meta = {"robot": WIDOWX, "backend": "maniskill2", "checkpoint": "ckpt", "rotation": "rotvec"}
    for shard in range(2):
        results = run_episodes(CellRunner(cell, 2 + shard), take_shard(plan, shard, 2))
        write_run(tmp_path / f"s{shard}", results, {**meta, "shard": f"{shard}/2"}, "shard", plots=False)
    document = json.loads((tmp_path / "s0" / "results.json").read_text())
    assert document["meta"]["benchmark"] == "simpler" and len(document["episodes"]) == 2
    assert (tmp_path / "s0" / "results.csv").is_file() and "| widowx_spoon_on_towel |" in \
        (tmp_path / "s0" / "report.md").read_text()
    merged_meta, merged = merge_runs([tmp_path / "s0", tmp_path / "s1"])
    assert sorted(r.seed for r in merged) == [e.index for e in plan] and len(merged_meta["shards"]) == 2
    # Shard 0 ran 2 steps (2 cm: success), shard 1 three.
    assert success_rates(merged)["tasks"]["widowx_spoon_on_towel"]["success"] == 4
    with pytest.raises(ValueError, match="already in another shard"):
        merge_runs([tmp_path / "s0", tmp_path / "s0"])
    write_run(tmp_path / "other", merged[:1], {**meta, "checkpoint": "other"}, "other", plots=False)
    with pytest.raises(ValueError, match="checkpoint"):
        merge_runs([tmp_path / "s0", tmp_path / "other"])
