"""Differential IK of the MuJoCo twin: commanded end-effector deltas are tracked (no ROS needed)."""
from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robovlms_twin.cell import KinovaCell
from robovlms_io.rotations import matrix_to_rotvec, rotvec_to_matrix


@pytest.fixture(scope="module")
def cell():
    cell = KinovaCell()
    yield cell
    cell.close()


@pytest.fixture
def fresh(cell):
    cell.reset("lift_red_block", seed=0)
    return cell


def tcp_rotation(cell: KinovaCell) -> np.ndarray:
    x, y, z, w = cell.ee_pose()[1]
    matrix = np.empty(9)
    mujoco.mju_quat2Mat(matrix, np.array([w, x, y, z]))
    return matrix.reshape(3, 3)


@pytest.mark.parametrize("delta", [(0.05, 0, 0), (-0.05, 0, 0), (0, 0.05, 0), (0, -0.05, 0), (0, 0, 0.05),
                                   (0, 0, -0.05), (0.03, -0.03, 0.02)])
def test_five_cm_move_is_tracked_within_2_mm(fresh, delta):
    start, rot0 = fresh.ee_pose()[0], tcp_rotation(fresh)
    fresh.apply_delta(delta, np.zeros(3), 0.0, period=0.1)
    fresh.step(0.1)
    fresh.step(0.4)  # the command has expired: the arm settles on the target
    error = fresh.ee_pose()[0] - (start + np.asarray(delta))
    assert np.linalg.norm(error) < 0.002, f"tracking error {error}"
    assert np.linalg.norm(matrix_to_rotvec(tcp_rotation(fresh) @ rot0.T)) < 0.01


@pytest.mark.parametrize("rotvec", [(0, 0, 0.2), (0.2, 0, 0), (0, -0.15, 0.1), (0.1, 0.1, -0.1)])
def test_rotation_delta_is_tracked(fresh, rotvec):
    start, rot0 = fresh.ee_pose()[0], tcp_rotation(fresh)
    fresh.act(np.zeros(3), rotvec, 0.0)
    fresh.step(0.4)
    expected = rotvec_to_matrix(np.asarray(rotvec)) @ rot0  # base-frame rotation vector
    assert np.linalg.norm(matrix_to_rotvec(tcp_rotation(fresh) @ expected.T)) < 0.01
    assert np.linalg.norm(fresh.ee_pose()[0] - start) < 0.002  # rotates about the TCP


def test_velocity_is_held_until_changed_then_stop_halts(fresh):
    start = fresh.ee_pose()[0]
    fresh.set_ee_velocity([0.0, 0.1, 0.0], [0.0, 0.0, 0.0])
    fresh.step(0.3)
    fresh.stop()
    fresh.step(0.4)
    moved = fresh.ee_pose()[0] - start
    np.testing.assert_allclose(moved, [0.0, 0.03, 0.0], atol=0.002)
    fresh.step(0.5)
    np.testing.assert_allclose(fresh.ee_pose()[0] - start, moved, atol=0.001)


def test_apply_delta_expires_after_one_period(fresh):
    start = fresh.ee_pose()[0]
    fresh.apply_delta([0.0, 0.0, 0.02], [0.0, 0.0, 0.0], 0.0, period=0.1)
    fresh.step(1.0)  # ten periods of physics, but the command covers only one
    np.testing.assert_allclose(fresh.ee_pose()[0] - start, [0.0, 0.0, 0.02], atol=0.002)


def test_too_fast_commands_are_scaled_down(fresh):
    start = fresh.ee_pose()[0]
    fresh.act([0.0, 0.2, 0.0], np.zeros(3), 0.0)  # 2 m/s requested
    fresh.step(0.4)
    moved = np.linalg.norm(fresh.ee_pose()[0] - start)
    assert moved == pytest.approx(fresh.config.max_linear_speed * 0.1, abs=0.003)


@pytest.mark.parametrize("call", [
    lambda c: c.set_ee_velocity([np.nan, 0, 0], [0, 0, 0]),
    lambda c: c.set_ee_velocity([0, 0], [0, 0, 0]),
    lambda c: c.apply_delta([0.01, 0, 0], [0, np.inf, 0], 0.0, 0.1),
    lambda c: c.apply_delta([0.01, 0, 0], [0, 0, 0], 0.0, 0.0),
    lambda c: c.set_gripper(float("nan")),
])
def test_bad_commands_raise_and_do_not_move_the_arm(fresh, call):
    start = fresh.ee_pose()[0]
    with pytest.raises(ValueError):
        call(fresh)
    fresh.step(0.3)
    assert np.linalg.norm(fresh.ee_pose()[0] - start) < 0.001


def test_gripper_closes_and_opens(fresh):
    fresh.set_gripper(1.0)
    fresh.step(0.5)
    assert fresh.gripper_joint_position() == pytest.approx(0.8, abs=0.02)
    fresh.set_gripper(0.0)
    fresh.step(0.5)
    assert fresh.gripper_joint_position() == pytest.approx(0.0, abs=0.02)


def test_limited_joints_stay_within_kinova_limits(fresh):
    for _ in range(30):  # drive far out of reach: IK must saturate, not break the limits
        fresh.act([0.03, 0.0, 0.03], np.zeros(3), 0.0)
    q = fresh.joint_positions()
    assert np.all(np.isfinite(q))
    assert abs(q[1]) <= 2.41 + 1e-3 and abs(q[3]) <= 2.66 + 1e-3 and abs(q[5]) <= 2.23 + 1e-3
