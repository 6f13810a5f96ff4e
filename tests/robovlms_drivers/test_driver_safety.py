"""The driver's pure safety rules: validation, command -> clamped base twist, workspace box, gripper hysteresis."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robovlms_drivers.kinova.backend import Frame
from robovlms_drivers.kinova.safety import (
    CommandRejected,
    GripperHysteresis,
    InFlight,
    MotionLimits,
    WorkspaceBox,
    clamp_norm,
    limit_to_workspace,
    to_safe_twist,
    validate_command,
)
from robovlms_io.commands import GRIPPER_UNCHANGED, Command
from robovlms_io.rotations import rotvec_to_quaternion


def cmd(dp, dr, gripper, period, frame_id) -> Command:
    return Command(np.asarray(dp, float), np.asarray(dr, float), gripper, period, frame_id)


LIMITS = MotionLimits(max_linear_speed=0.1, max_angular_speed=0.5, refuse_factor=10.0, max_period=1.0)
BOX = WorkspaceBox((0.2, -0.4, 0.05), (0.7, 0.4, 0.6))
finite = st.floats(-1.0, 1.0, allow_nan=False)
vectors = st.tuples(finite, finite, finite).map(np.array)


def test_delta_to_twist_divides_by_period():
    twist = to_safe_twist(cmd([0.01, -0.02, 0.005], [0.0, 0.0, 0.05], 0.0, 0.1, "base_link"), [0, 0, 0, 1],
                          MotionLimits(1.0, 1.0))
    np.testing.assert_allclose(twist.linear, [0.1, -0.2, 0.05])
    np.testing.assert_allclose(twist.angular, [0.0, 0.0, 0.5])


@pytest.mark.parametrize("frame_id, expected", [("base_link", Frame.BASE), ("", Frame.BASE),
                                                ("tool_frame", Frame.TOOL)])
def test_known_frames_are_accepted(frame_id, expected):
    assert validate_command(cmd([0.001, 0, 0], [0, 0, 0], 0.0, 0.1, frame_id), LIMITS).frame is expected


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
        validate_command(cmd(args["dp"], args["dr"], args["gripper"], args["period"], args["frame_id"]), LIMITS)
    assert len(str(err.value)) < 200  # huge frame ids are truncated in the reason


def test_moderately_fast_command_is_clamped_not_refused():
    twist = to_safe_twist(cmd([0.05, 0, 0], [0, 0, 0.2], 0.0, 0.1, "base_link"), [0, 0, 0, 1], LIMITS)  # 0.5 m/s
    np.testing.assert_allclose(twist.linear, [0.1, 0, 0])
    np.testing.assert_allclose(twist.angular, [0, 0, 0.5])


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
    quaternion = rotvec_to_quaternion([0, 0, math.pi / 2])
    twist = to_safe_twist(cmd([0.005, 0, 0], [0.01, 0, 0], 0.0, 0.1, "tool_frame"), quaternion, LIMITS)
    np.testing.assert_allclose(twist.linear, [0, 0.05, 0], atol=1e-12)
    np.testing.assert_allclose(twist.angular, [0, 0.1, 0], atol=1e-12)
    base = to_safe_twist(cmd([0.005, 0, 0], [0.01, 0, 0], 0.0, 0.1, "base_link"), quaternion, LIMITS)
    np.testing.assert_allclose(base.linear, [0.05, 0, 0], atol=1e-12)  # base deltas ignore the EE orientation


def test_workspace_zeroes_only_outward_components():
    at_upper_x = np.array([0.7, 0.0, 0.3])
    out = limit_to_workspace([0.1, 0.05, -0.05], at_upper_x, BOX, lookahead=0.02)
    np.testing.assert_allclose(out, [0.0, 0.05, -0.05])
    inward = limit_to_workspace([-0.1, 0.0, 0.0], at_upper_x, BOX, lookahead=0.02)
    np.testing.assert_allclose(inward, [-0.1, 0.0, 0.0])
    near_floor = np.array([0.4, 0.0, 0.051])  # 1 mm above the floor: only a crawl is left towards it
    crawl = -limit_to_workspace([0, 0, -0.1], near_floor, BOX, 0.02)[2]
    assert 0 < crawl < 0.05 and crawl * 0.02 + crawl ** 2 / (2 * BOX.deceleration) <= 0.001 + 1e-12
    # motion still in flight (the lagging arm has 1 mm more to go) leaves nothing
    np.testing.assert_allclose(limit_to_workspace([0, 0, -0.1], near_floor, BOX, 0.02, [0, 0, -0.001]), [0, 0, 0])
    at_floor = np.array([0.4, 0.0, 0.05])
    np.testing.assert_allclose(limit_to_workspace([0, 0, -0.1], at_floor, BOX, 0.02), [0, 0, 0])
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


@settings(max_examples=50, deadline=None)
@given(st.floats(0.01, 0.3), st.floats(0.0, 0.5), st.floats(1.0, 4.0))
def test_an_arm_with_the_modelled_lag_and_braking_stops_before_the_face(speed, lag_fraction, brake_factor):
    """A point TCP that executes the limited commands late by up to half ``box.lag`` (the parameter doubles the
    measured lag) and brakes at least at ``box.deceleration`` (speeding up is instant) never passes the face, from
    any commanded speed up to the clamp, when the driver accounts for the motion it has sent but the arm has not
    made yet (InFlight)."""
    box = WorkspaceBox((0.0, -1, -1), (1.0, 1, 1), lag=0.1, deceleration=1.0)
    dt, tick = 0.001, 0.02
    in_flight = InFlight(box.lag, tick)
    delay = int(round(box.lag * lag_fraction / dt))
    position, velocity, commands, command = 0.3, 0.0, [0.0] * delay, 0.0  # velocities towards x_min
    for step in range(int(3.0 / dt)):
        now = step * dt
        if step % int(tick / dt) == 0:  # the driver re-limits once per tick, from the measured position
            linear = limit_to_workspace([-speed, 0, 0], [position, 0, 0], box, tick, in_flight.displacement(now))
            in_flight.record(now, linear)
            command = -linear[0]
        commands.append(command)
        lagged = commands.pop(0)
        velocity = lagged if lagged >= velocity else max(lagged, velocity - brake_factor * box.deceleration * dt)
        position -= velocity * dt
        # 0.1 mm: the 1 ms Euler integration's own error (the goal is 1 mm)
        assert position >= box.lower[0] - 1e-4, (step, position)


def test_workspace_box_rejects_inverted_bounds():
    with pytest.raises(ValueError):
        WorkspaceBox((0.5, 0, 0), (0.4, 1, 1))


def test_gripper_unchanged_is_accepted_and_leaves_the_gripper_alone():
    command = validate_command(cmd([0.0, 0, 0], [0, 0, 0], GRIPPER_UNCHANGED, 0.1, "base_link"), LIMITS)
    assert command.gripper is None
    assert validate_command(cmd([0.0, 0, 0], [0, 0, 0], -0.0005, 0.1, "base_link"), LIMITS).gripper == 0.0


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
