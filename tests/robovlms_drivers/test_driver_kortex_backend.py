"""KortexBackend against the kortex_api FAKE (tests/fake_kortex_api.py): what reaches the robot API —
single-level servoing, twists in deg/s with an explicit reference frame, position-mode gripper commands,
feedback converted to radians / quaternions / knuckle angle, faults reported."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import fake_kortex_api as fake
from robovlms_drivers.kinova.backend import BackendUnavailable, Frame
from robovlms_drivers.kinova.kortex_backend import (KortexBackend, KortexConfig, kortex_euler_deg_to_quaternion,
                                                    kortex_joint_deg_to_rad, robotiq_percent_to_knuckle,
                                                    to_kortex_twist)
from robovlms_io.rotations import quaternion_to_matrix, rotvec_to_quaternion


@pytest.fixture
def backend():
    fake.install()
    b = KortexBackend(KortexConfig(robot_ip="10.0.0.7"))
    b.connect()
    yield b
    fake.uninstall()


def calls(name: str) -> list:
    return [arg for call, arg in fake.CALLS if call == name]


def test_connect_opens_session_and_selects_single_level_servoing(backend):
    assert calls("connect") == ["10.0.0.7"]
    session = calls("CreateSession")[0]
    assert session.username == "admin" and session.connection_inactivity_timeout == 2000
    assert calls("SetServoingMode")[0].servoing_mode == fake.SINGLE_LEVEL_SERVOING


def test_twist_is_sent_in_degrees_per_second_with_explicit_frame(backend):
    backend.send_twist(np.array([0.05, 0.0, -0.02]), np.array([0.0, 0.0, math.pi / 4]), Frame.BASE)
    backend.send_twist(np.zeros(3), np.array([0.1, 0.0, 0.0]), Frame.TOOL)
    base, tool = calls("SendTwistCommand")
    assert base.reference_frame == fake.CARTESIAN_REFERENCE_FRAME_BASE and base.duration == 0
    assert (base.twist.linear_x, base.twist.linear_z) == pytest.approx((0.05, -0.02))
    assert base.twist.angular_z == pytest.approx(45.0)
    assert tool.reference_frame == fake.CARTESIAN_REFERENCE_FRAME_TOOL
    assert tool.twist.angular_x == pytest.approx(math.degrees(0.1))


def test_gripper_uses_position_mode(backend):
    backend.send_gripper(1.3)
    command = calls("SendGripperCommand")[0]
    assert command.mode == fake.GRIPPER_POSITION
    assert [(f.finger_identifier, f.value) for f in command.gripper.finger] == [(1, 1.0)]


def test_stop_clear_faults_and_close(backend):
    backend.stop()
    backend.clear_faults()
    backend.close()
    assert [c for c, _ in fake.CALLS if c in ("Stop", "ClearFaults", "CloseSession", "disconnect")] == [
        "Stop", "ClearFaults", "Stop", "CloseSession", "disconnect"]


def test_feedback_is_converted(backend):
    fake.FEEDBACK.value = SimpleNamespace(
        actuators=[SimpleNamespace(position=p) for p in (0, 15, 180, 230, 0, 55, 90)],
        base=SimpleNamespace(tool_pose_x=0.45, tool_pose_y=0.0, tool_pose_z=0.3, tool_pose_theta_x=180.0,
                             tool_pose_theta_y=0.0, tool_pose_theta_z=90.0, active_state=fake.ARMSTATE_IN_FAULT,
                             fault_bank_a=0, fault_bank_b=0),
        interconnect=SimpleNamespace(oneof_tool_feedback=SimpleNamespace(
            gripper_feedback=[SimpleNamespace(motor=[SimpleNamespace(position=50.0)])])))
    state = backend.read_state()
    np.testing.assert_allclose(state.joint_positions, np.radians([0, 15, 180, -130, 0, 55, 90]), atol=1e-9)
    np.testing.assert_allclose(state.ee_position, [0.45, 0.0, 0.3])
    np.testing.assert_allclose(quaternion_to_matrix(state.ee_quaternion) @ [0, 0, 1], [0, 0, -1], atol=1e-9)
    assert state.gripper_position == pytest.approx(0.4)
    assert "fault" in state.fault


def test_fault_banks_report_a_fault_even_in_another_arm_state(backend):
    fake.FEEDBACK.value = SimpleNamespace(
        actuators=[SimpleNamespace(position=0.0) for _ in range(7)],
        base=SimpleNamespace(tool_pose_x=0.45, tool_pose_y=0.0, tool_pose_z=0.3, tool_pose_theta_x=180.0,
                             tool_pose_theta_y=0.0, tool_pose_theta_z=0.0, active_state=2,
                             fault_bank_a=0x10, fault_bank_b=0),
        interconnect=SimpleNamespace(oneof_tool_feedback=SimpleNamespace(gripper_feedback=[])))
    assert "0x10" in backend.read_state().fault


@pytest.mark.parametrize("failing", ["connect", "CreateSession", "SetServoingMode"])
def test_failed_connect_releases_what_was_opened(failing):
    fake.install()
    fake.FAILING.add(failing)
    try:
        backend = KortexBackend(KortexConfig(robot_ip="10.0.0.2"))
        with pytest.raises(BackendUnavailable, match="cannot open a Kortex session to 10.0.0.2"):
            backend.connect()
        calls = [name for name, _ in fake.CALLS]
        assert calls[-1] == "disconnect", calls  # the socket is always released last
        if failing != "connect":
            assert "CloseSession" in calls
    finally:
        fake.uninstall()


def test_close_releases_everything_even_when_stop_fails(backend):
    fake.FAILING.add("Stop")
    with pytest.raises(BackendUnavailable, match="Stop"):
        backend.close()
    assert [c for c, _ in fake.CALLS][-2:] == ["CloseSession", "disconnect"]


def test_kortex_twist_units_are_mps_and_degps():
    linear, angular = to_kortex_twist([0.1, 0.0, -0.05], [math.pi, 0.0, -0.5])
    assert linear == pytest.approx([0.1, 0.0, -0.05])
    assert angular == pytest.approx([180.0, 0.0, -math.degrees(0.5)])


def test_kortex_euler_matches_fixed_axis_xyz():
    # theta_z alone is a yaw about base z.
    q = kortex_euler_deg_to_quaternion(0, 0, 90)
    np.testing.assert_allclose(quaternion_to_matrix(q) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    # Fixed-axis X-Y-Z: R = Rz(c) Ry(b) Rx(a).
    a, b, c = 30.0, -20.0, 50.0
    rx = quaternion_to_matrix(rotvec_to_quaternion([math.radians(a), 0, 0]))
    ry = quaternion_to_matrix(rotvec_to_quaternion([0, math.radians(b), 0]))
    rz = quaternion_to_matrix(rotvec_to_quaternion([0, 0, math.radians(c)]))
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
