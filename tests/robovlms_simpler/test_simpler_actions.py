"""The command -> SimplerEnv action conversions against worked examples derived from SimplerEnv's source
(simpler_env/policies/octo/octo_model.py and rt1/rt1_model.py: transforms3d euler2axangle, the Google Robot's
relative sticky gripper, WidowX's binarised absolute gripper) and ManiSkill's pose conventions."""
from __future__ import annotations

import math

import numpy as np
import pytest

from robovlms_simpler.actions import (STICKY_GRIPPER_STEPS, RelativeGripper, absolute_gripper, command_to_simpler,
                                      pose_in_base, rotation_to_axangle)


def test_euler_increments_become_axis_angle_as_euler2axangle():
    # A pure yaw: euler2axangle(0, 0, 0.3) = axis (0, 0, 1), angle 0.3.
    np.testing.assert_allclose(rotation_to_axangle([0, 0, 0.3], "euler"), [0, 0, 0.3], atol=1e-12)
    # Roll then pitch about the fixed axes (sxyz): R = Ry(0.2) Rx(0.1). Worked by hand: its quaternion is
    # qy * qx = (cos.1 cos.05, cos.1 sin.05, sin.1 cos.05, -sin.1 sin.05) (w, x, y, z).
    w, x, y, z = (math.cos(0.1) * math.cos(0.05), math.cos(0.1) * math.sin(0.05), math.sin(0.1) * math.cos(0.05),
                  -math.sin(0.1) * math.sin(0.05))
    angle = 2 * math.acos(w)
    expected = np.array([x, y, z]) / math.sin(angle / 2) * angle
    np.testing.assert_allclose(rotation_to_axangle([0.1, 0.2, 0.0], "euler"), expected, atol=1e-12)
    # Small increments: axis-angle ~ the increments themselves (why an unconverted policy still roughly works).
    np.testing.assert_allclose(rotation_to_axangle([0.01, -0.02, 0.015], "euler"), [0.01, -0.02, 0.015], atol=5e-4)


def test_rotation_vectors_pass_through_and_bad_formats_are_refused():
    np.testing.assert_array_equal(rotation_to_axangle([0.1, 0.2, 0.3]), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="rotation must be one of"):
        rotation_to_axangle([0, 0, 0], "quaternion")


def test_widowx_gripper_is_absolute_and_binarised():
    assert [absolute_gripper(c) for c in (0.0, 0.3, 0.5, 0.9, 1.0)] == [1.0, 1.0, -1.0, -1.0, -1.0]


def test_google_robot_gripper_is_relative_and_sticky():
    gripper = RelativeGripper()
    closures = [0.0, 0.0, 1.0] + [1.0] * 20 + [0.0] * 3
    sent = [gripper(c) for c in closures]
    # First step 0; the close (+1) at step 2 is held for 15 steps, then 0 while the closure stays;
    # the open at step 23 sends -1 (held again).
    assert sent[:2] == [0.0, 0.0]
    assert sent[2:2 + STICKY_GRIPPER_STEPS] == [1.0] * STICKY_GRIPPER_STEPS
    assert sent[2 + STICKY_GRIPPER_STEPS:23] == [0.0] * (21 - STICKY_GRIPPER_STEPS)
    assert sent[23:] == [-1.0, -1.0, -1.0]
    gripper.reset()
    assert gripper(1.0) == 0.0  # an episode starts from "no change"


def test_a_change_during_a_sticky_hold_is_ignored():
    gripper = RelativeGripper(sticky_steps=4)
    assert [gripper(c) for c in (0.0, 1.0, 0.0, 1.0, 1.0, 1.0)] == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_command_becomes_the_7d_action_and_nan_is_refused():
    action = command_to_simpler([0.01, -0.02, 0.03], [0.0, 0.0, 0.1], -1.0)
    np.testing.assert_allclose(action, [0.01, -0.02, 0.03, 0, 0, 0.1, -1.0])
    with pytest.raises(ValueError, match="non-finite"):
        command_to_simpler([np.nan, 0, 0], [0, 0, 0], 1.0)


def test_tcp_pose_in_the_robot_base_frame():
    # Base at (1, 2, 0) turned 90 degrees about z (w, x, y, z); TCP 0.5 m ahead of it along the world's y.
    base = np.array([1.0, 2.0, 0.0, math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])
    tcp = np.array([1.0, 2.5, 0.3, 1.0, 0.0, 0.0, 0.0])
    position, quaternion = pose_in_base(base, tcp)
    np.testing.assert_allclose(position, [0.5, 0.0, 0.3], atol=1e-12)  # ahead along the base's own x
    np.testing.assert_allclose(np.abs(quaternion), [0, 0, math.sin(math.pi / 4), math.cos(math.pi / 4)], atol=1e-12)
