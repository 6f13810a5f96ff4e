"""Suite command <-> CALVIN relative action: worked examples, the frame of the deltas, round trips."""
import math

import numpy as np
import pytest

from robovlms_calvin.actions import (GRIPPER_CLOSE, GRIPPER_OPEN, MAX_REL_ORN, MAX_REL_POS, BaseFrame, RobotObs,
                                     calvin_to_command, command_to_calvin)
from robovlms_calvin.sequences import ROBOT_OBS_START
from robovlms_io.rotations import euler_to_matrix, matrix_to_euler, rotvec_to_matrix

HOME_EULER = ROBOT_OBS_START[3:6]  # CALVIN's evaluation start: gripper pointing down (roll ~ pi)


def test_euler_convention_is_fixed_axis_xyz():
    roll, pitch, yaw = 0.3, -0.2, 1.1
    expected = rotvec_to_matrix([0, 0, yaw]) @ rotvec_to_matrix([0, pitch, 0]) @ rotvec_to_matrix([roll, 0, 0])
    np.testing.assert_allclose(euler_to_matrix([roll, pitch, yaw]), expected, atol=1e-12)
    np.testing.assert_allclose(matrix_to_euler(expected), [roll, pitch, yaw], atol=1e-12)


def test_translation_scale_and_clipping():
    action = command_to_calvin([0.01, -0.02, 0.05], [0, 0, 0], 0.0, HOME_EULER)
    np.testing.assert_allclose(action[:3], [0.5, -1.0, 1.0])  # 0.05 m is past CALVIN's range: clipped
    np.testing.assert_allclose(action[3:6], 0.0, atol=1e-12)
    assert action[6] == GRIPPER_OPEN


def test_yaw_about_world_z_is_a_yaw_increment_at_home():
    action = command_to_calvin([0, 0, 0], [0, 0, 0.025], 0.0, HOME_EULER)
    assert action[5] == pytest.approx(0.5, abs=0.02)  # 0.025 rad = half of 0.05 rad per unit
    assert abs(action[3]) < 0.05 and abs(action[4]) < 0.05


def test_rotation_vector_becomes_the_euler_increment_that_reaches_the_same_orientation():
    rotvec = np.array([0.02, -0.03, 0.01])
    action = command_to_calvin([0, 0, 0], rotvec, 1.0, HOME_EULER)
    reached = euler_to_matrix(HOME_EULER + action[3:6] * MAX_REL_ORN)
    np.testing.assert_allclose(reached, rotvec_to_matrix(rotvec) @ euler_to_matrix(HOME_EULER), atol=1e-9)
    assert action[6] == GRIPPER_CLOSE


def test_base_frame_rotation_applies_to_the_deltas():
    quarter_turn = BaseFrame(np.array([1.0, 2.0, 3.0]), rotvec_to_matrix([0, 0, math.pi / 2]))
    action = command_to_calvin([0.01, 0, 0], [0, 0, 0], 0.0, HOME_EULER, base=quarter_turn)
    np.testing.assert_allclose(action[:3], [0.0, 0.5, 0.0], atol=1e-12)  # base x is world y


@pytest.mark.parametrize("closure, previous, expected", [
    (0.0, GRIPPER_CLOSE, GRIPPER_OPEN), (0.49, GRIPPER_CLOSE, GRIPPER_OPEN), (0.5, GRIPPER_OPEN, GRIPPER_CLOSE),
    (1.0, GRIPPER_OPEN, GRIPPER_CLOSE), (None, GRIPPER_CLOSE, GRIPPER_CLOSE), (None, GRIPPER_OPEN, GRIPPER_OPEN)])
def test_gripper(closure, previous, expected):
    assert command_to_calvin([0, 0, 0], [0, 0, 0], closure, HOME_EULER, previous)[6] == expected


def test_non_finite_commands_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        command_to_calvin([math.nan, 0, 0], [0, 0, 0], 0.0, HOME_EULER)


def test_round_trip_calvin_to_command_to_calvin():
    rng = np.random.default_rng(0)
    for _ in range(200):
        euler = HOME_EULER + rng.uniform(-0.4, 0.4, 3)
        rel = np.concatenate([rng.uniform(-1, 1, 6), [rng.choice([-1.0, 1.0])]])
        command = calvin_to_command(rel, euler)
        again = command_to_calvin(command[:3], command[3:6], command[6], euler)
        np.testing.assert_allclose(again, rel, atol=1e-9)
    np.testing.assert_allclose(calvin_to_command([1, 0, 0, 0, 0, 0, 1], HOME_EULER)[:3], [MAX_REL_POS, 0, 0])


def test_robot_obs_layout_and_base_pose():
    robot = RobotObs.parse(ROBOT_OBS_START)
    assert robot.opening_width == pytest.approx(0.08, abs=1e-5) and robot.closure == pytest.approx(0.0, abs=1e-3)
    base = BaseFrame(np.array([-0.34, -0.46, 0.24]), np.eye(3))
    position, quaternion = robot.pose_in_base(base)
    np.testing.assert_allclose(position, ROBOT_OBS_START[:3] - [-0.34, -0.46, 0.24])
    assert np.linalg.norm(quaternion) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="15"):
        RobotObs.parse(np.zeros(16))
