"""The real SimplerEnv, when it is installed and a Vulkan GPU is present: an episode of each robot built and
reset as the bridge builds it, the benchmark camera's image, and commands moving the TCP along the base axes.
Skipped otherwise (CI has neither; SAPIEN finds no rendering device on a CPU machine)."""
from __future__ import annotations

import numpy as np
import pytest

from robovlms_simpler.simpler_cell import SimplerCell
from robovlms_simpler.simpler_setup import MANISKILL2, SimplerUnavailable, make_env
from robovlms_simpler.tasks import GOOGLE_ROBOT, ROBOTS, TASKS, WIDOWX

try:
    make_env(WIDOWX, MANISKILL2).close()
    MISSING = ""
except SimplerUnavailable as error:
    MISSING = str(error).splitlines()[0]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(MISSING), reason=f"no SimplerEnv: {MISSING}")]


@pytest.mark.parametrize("robot, task, shape", [(WIDOWX, "widowx_carrot_on_plate", (480, 640, 3)),
                                                (GOOGLE_ROBOT, "google_robot_pick_horizontal_coke_can", (512, 640, 3))])
def test_an_episode_moves_the_tcp_along_base_x(robot, task, shape):
    cell = SimplerCell(make_env(robot, MANISKILL2), ROBOTS[robot])
    try:
        obs = cell.reset_episode(TASKS[task].episode(0))
        assert obs.image.shape == shape and obs.instruction
        start = obs.tcp_position.copy()
        period = 1.0 / ROBOTS[robot].control_freq
        cell.set_twist(np.array([0.01 / period, 0.0, 0.0]), np.zeros(3))  # 1 cm per step along base x
        for _ in range(5):
            cell.step(period)
        moved = cell.observation.tcp_position - start
        print(f"{task}: moved {moved.round(4)} in 5 steps")
        assert moved[0] > 0.02 and abs(moved[1]) < 0.02
    finally:
        cell.close()
