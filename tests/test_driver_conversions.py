"""Pure conversion functions of the Kinova driver: validation, delta->twist, frames, clamps, workspace box,
gripper hysteresis and Kortex unit conventions."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robovlms_drivers.kinova.conversions import (
    CommandRejected,
    Frame,
    GRIPPER_UNCHANGED,
    GripperHysteresis,
    MotionLimits,
    WorkspaceBox,
    base_to_tool,
    clamp_norm,
    command_to_base_twist,
    delta_to_twist,
    kortex_euler_deg_to_quaternion,
    kortex_joint_deg_to_rad,
    limit_to_workspace,
    quaternion_multiply,
    quaternion_to_matrix,
    quaternion_to_rotation_vector,
    robotiq_percent_to_knuckle,
    rotation_vector_to_quaternion,
    to_kortex_twist,
    tool_to_base,
    validate_command,
)

LIMITS = MotionLimits(max_linear_speed=0.1, max_angular_speed=0.5, refuse_factor=10.0, max_period=1.0)
BOX = WorkspaceBox((0.2, -0.4, 0.05), (0.7, 0.4, 0.6))
finite = st.floats(-1.0, 1.0, allow_nan=False)
vectors = st.tuples(finite, finite, finite).map(np.array)


def test_delta_to_twist_divides_by_period():
    linear, angular = delta_to_twist([0.01, -0.02, 0.005], [0.0, 0.0, 0.05], 0.1)
    np.testing.assert_allclose(linear, [0.1, -0.2, 0.05])
    np.testing.assert_allclose(angular, [0.0, 0.0, 0.5])


def test_kortex_twist_units_are_mps_and_degps():
    linear, angular = to_kortex_twist([0.1, 0.0, -0.05], [math.pi, 0.0, -0.5])
    assert linear == pytest.approx([0.1, 0.0, -0.05])
    assert angular == pytest.approx([180.0, 0.0, -math.degrees(0.5)])


@pytest.mark.parametrize("frame_id, expected", [("base_link", Frame.BASE), ("", Frame.BASE),
                                                ("tool_frame", Frame.TOOL)])
def test_known_frames_are_accepted(frame_id, expected):
    assert validate_command([0.001, 0, 0], [0, 0, 0], 0.0, 0.1, frame_id, LIMITS).frame is expected


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(dp=[math.nan, 0, 0]), "non-finite"),
    (dict(dr=[0, math.inf, 0]), "non-finite"),
    (dict(gripper=math.nan), "non-finite"),
    (dict(period=0.0), "period"),
    (dict(period=-0.1), "period"),
    (dict(period=1.5), "period"),
    (dict(frame_id="world"), "unknown frame_id"),
    (dict(frame_id="x" * 10_000), "unknown frame_id"),
    (dict(gripper=1.5), "gripper"),
    (dict(gripper=-0.2), "gripper"),
    (dict(dp=[0.2, 0, 0]), "linear speed"),   # 2 m/s > 10 x 0.1 m/s
    (dict(dr=[0, 0, 0.6]), "angular speed"),  # 6 rad/s > 10 x 0.5 rad/s
])
def test_bad_commands_are_refused_with_reason(kwargs, fragment):
    args = dict(dp=[0.001, 0, 0], dr=[0, 0, 0], gripper=0.5, period=0.1, frame_id="base_link")
    args.update(kwargs)
    with pytest.raises(CommandRejected, match=fragment) as err:
        validate_command(args["dp"], args["dr"], args["gripper"], args["period"], args["frame_id"], LIMITS)
    assert len(str(err.value)) < 200  # huge frame ids are truncated in the reason


def test_moderately_fast_command_is_clamped_not_refused():
    command = validate_command([0.05, 0, 0], [0, 0, 0.2], 0.0, 0.1, "base_link", LIMITS)  # 0.5 m/s, 2 rad/s
    linear, angular = command_to_base_twist(command, [0, 0, 0, 1], LIMITS)
    np.testing.assert_allclose(linear, [0.1, 0, 0])
    np.testing.assert_allclose(angular, [0, 0, 0.5])


@given(vectors, st.floats(0.01, 2.0))
def test_clamp_norm_keeps_direction_and_bounds_norm(v, max_norm):
    out = clamp_norm(v, max_norm)
    assert np.linalg.norm(out) <= max_norm + 1e-9
    if np.linalg.norm(v) > 1e-9:
        assert np.dot(out, v) >= 0
        np.testing.assert_allclose(np.cross(out, v), 0, atol=1e-9)
    if np.linalg.norm(v) <= max_norm:
        np.testing.assert_allclose(out, v)


def test_tool_frame_command_is_rotated_into_base():
    # Tool rotated 90 deg about base z: tool x points along base y.
    quaternion = rotation_vector_to_quaternion([0, 0, math.pi / 2])
    command = validate_command([0.005, 0, 0], [0.01, 0, 0], 0.0, 0.1, "tool_frame", LIMITS)
    linear, angular = command_to_base_twist(command, quaternion, LIMITS)
    np.testing.assert_allclose(linear, [0, 0.05, 0], atol=1e-12)
    np.testing.assert_allclose(angular, [0, 0.1, 0], atol=1e-12)
    base = validate_command([0.005, 0, 0], [0.01, 0, 0], 0.0, 0.1, "base_link", LIMITS)
    linear, angular = command_to_base_twist(base, quaternion, LIMITS)  # base deltas ignore the EE orientation
    np.testing.assert_allclose(linear, [0.05, 0, 0], atol=1e-12)


@settings(max_examples=50)
@given(vectors, vectors)
def test_tool_base_round_trip(v, rotation):
    q = rotation_vector_to_quaternion(rotation * 3)
    np.testing.assert_allclose(base_to_tool(tool_to_base(v, q), q), v, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(tool_to_base(v, q)), np.linalg.norm(v), atol=1e-9)


@settings(max_examples=50)
@given(vectors)
def test_rotation_vector_quaternion_round_trip(rotation):
    rv = rotation * 3.0  # up to ~5.2 rad norm; compare as rotations (shortest representation)
    q = rotation_vector_to_quaternion(rv)
    np.testing.assert_allclose(quaternion_to_matrix(rotation_vector_to_quaternion(
        quaternion_to_rotation_vector(q))), quaternion_to_matrix(q), atol=1e-9)


def test_tool_frame_rotation_composes_on_the_right():
    """A tool-frame rotation vector r, turned into base angular velocity w, gives R_new = exp(w) R = R exp(r)."""
    q_ee = rotation_vector_to_quaternion([0.3, -0.2, 1.0])
    r_tool = np.array([0.05, 0.02, -0.04])
    w_base = tool_to_base(r_tool, q_ee)
    left = quaternion_multiply(rotation_vector_to_quaternion(w_base), q_ee)
    right = quaternion_multiply(q_ee, rotation_vector_to_quaternion(r_tool))
    np.testing.assert_allclose(quaternion_to_matrix(left), quaternion_to_matrix(right), atol=1e-12)


def test_workspace_zeroes_only_outward_components():
    at_upper_x = np.array([0.7, 0.0, 0.3])
    out = limit_to_workspace([0.1, 0.05, -0.05], at_upper_x, BOX, lookahead=0.02)
    np.testing.assert_allclose(out, [0.0, 0.05, -0.05])
    inward = limit_to_workspace([-0.1, 0.0, 0.0], at_upper_x, BOX, lookahead=0.02)
    np.testing.assert_allclose(inward, [-0.1, 0.0, 0.0])
    near_floor = np.array([0.4, 0.0, 0.051])  # 1 mm above the floor: 0.1 m/s * 0.02 s would cross it
    np.testing.assert_allclose(limit_to_workspace([0, 0, -0.1], near_floor, BOX, 0.02), [0, 0, 0])
    outside = np.array([0.8, -0.5, 0.7])  # already outside: may only move back in
    np.testing.assert_allclose(limit_to_workspace([0.1, -0.1, 0.1], outside, BOX, 0.02), [0, 0, 0])
    np.testing.assert_allclose(limit_to_workspace([-0.1, 0.1, -0.1], outside, BOX, 0.02), [-0.1, 0.1, -0.1])


@settings(max_examples=100)
@given(st.tuples(st.floats(0.2, 0.7), st.floats(-0.4, 0.4), st.floats(0.05, 0.6)).map(np.array), vectors)
def test_workspace_never_predicts_leaving_the_box(position, velocity):
    v = limit_to_workspace(velocity * 0.1, position, BOX, 0.02)
    predicted = position + v * 0.02
    assert np.all(predicted <= np.array(BOX.upper) + 1e-12)
    assert np.all(predicted >= np.array(BOX.lower) - 1e-12)


def test_workspace_box_rejects_inverted_bounds():
    with pytest.raises(ValueError):
        WorkspaceBox((0.5, 0, 0), (0.4, 1, 1))


def test_gripper_unchanged_is_accepted_and_leaves_the_gripper_alone():
    command = validate_command([0.0, 0, 0], [0, 0, 0], GRIPPER_UNCHANGED, 0.1, "base_link", LIMITS)
    assert command.gripper is None
    assert validate_command([0.0, 0, 0], [0, 0, 0], -0.0005, 0.1, "base_link", LIMITS).gripper == 0.0


def test_gripper_hysteresis_reports_changes_only():
    gripper = GripperHysteresis(close_threshold=0.6, open_threshold=0.4)
    assert gripper.update(0.1) is False        # first command sets the state (open)
    assert gripper.update(0.0) is None
    assert gripper.update(0.55) is None        # inside the band: stays open
    assert gripper.update(0.61) is True        # closes
    assert gripper.update(0.45) is None        # inside the band: stays closed
    assert gripper.update(0.9) is None
    assert gripper.update(0.39) is False       # opens
    sequence = [0.0, 0.7, 0.5, 0.45, 0.55, 0.3, 0.41, 0.62]
    g = GripperHysteresis(0.6, 0.4)
    assert [g.update(x) for x in sequence] == [False, True, None, None, None, False, None, True]


def test_gripper_hysteresis_rejects_bad_thresholds():
    with pytest.raises(ValueError):
        GripperHysteresis(close_threshold=0.4, open_threshold=0.6)


def test_kortex_euler_matches_fixed_axis_xyz():
    # theta_z alone is a yaw about base z.
    q = kortex_euler_deg_to_quaternion(0, 0, 90)
    np.testing.assert_allclose(quaternion_to_matrix(q) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    # Fixed-axis X-Y-Z: R = Rz(c) Ry(b) Rx(a).
    a, b, c = 30.0, -20.0, 50.0
    rx = quaternion_to_matrix(rotation_vector_to_quaternion([math.radians(a), 0, 0]))
    ry = quaternion_to_matrix(rotation_vector_to_quaternion([0, math.radians(b), 0]))
    rz = quaternion_to_matrix(rotation_vector_to_quaternion([0, 0, math.radians(c)]))
    np.testing.assert_allclose(quaternion_to_matrix(kortex_euler_deg_to_quaternion(a, b, c)), rz @ ry @ rx,
                               atol=1e-12)
    # Gen3 home tool pose (theta_x = 90, theta_y = 0, theta_z = 90): tool z (approach) points along base x.
    home = quaternion_to_matrix(kortex_euler_deg_to_quaternion(90, 0, 90))
    np.testing.assert_allclose(home @ [0, 0, 1], [1, 0, 0], atol=1e-12)


def test_kortex_joint_angles_wrap_to_urdf_range():
    np.testing.assert_allclose(kortex_joint_deg_to_rad([0, 90, 180, 270, 359, 360, -90]),
                               [0, math.pi / 2, math.pi, -math.pi / 2, math.radians(-1), 0, -math.pi / 2],
                               atol=1e-12)


def test_robotiq_feedback_maps_to_knuckle_angle():
    assert robotiq_percent_to_knuckle(0) == 0.0
    assert robotiq_percent_to_knuckle(100) == pytest.approx(0.8)
    assert robotiq_percent_to_knuckle(150) == pytest.approx(0.8)
    assert robotiq_percent_to_knuckle(-5) == 0.0
