"""DriverCore safety on a real twin backend with injected failures: bad feedback, commands before feedback,
a backend that faults mid-command. The arm (the MuJoCo twin's end effector) must not move in any of them."""
from __future__ import annotations

import numpy as np
import pytest

from robovlms_drivers.kinova.backend import ArmState
from robovlms_drivers.kinova.safety import MotionLimits, WorkspaceBox
from robovlms_drivers.kinova.driver_core import (STATE_FAULT, STATE_MOVING, STATE_READY, DriverCore, SafetyConfig,
                                                 feedback_problem)
from robovlms_io.commands import Command
from robovlms_twin.sim_backend import SimBackend

SAFETY = SafetyConfig(limits=MotionLimits(max_linear_speed=0.3, max_angular_speed=2.0, refuse_factor=10.0,
                                          max_period=1.0),
                      workspace=WorkspaceBox(lower=(0.15, -0.5, 0.01), upper=(0.8, 0.5, 0.6)))
PERIOD = 0.02


class FaultInjectingBackend(SimBackend):
    """The twin's real sim backend, with feedback corruption and gripper failures switchable per test."""

    def __init__(self) -> None:
        super().__init__(task="lift_red_block", seed=1, steps_cell=False)
        self.corrupt: dict[str, object] = {}
        self.gripper_fails = False

    def read_state(self) -> ArmState:
        state = super().read_state()
        for name, value in self.corrupt.items():
            setattr(state, name, value)
        return state

    def send_gripper(self, closure: float) -> None:
        if self.gripper_fails:
            raise RuntimeError("gripper not responding")
        super().send_gripper(closure)


@pytest.fixture
def rig():
    backend = FaultInjectingBackend()
    backend.connect()
    yield backend, DriverCore(backend, SAFETY)
    backend.close()


def run(backend: FaultInjectingBackend, core: DriverCore, start: float, seconds: float,
        command=None) -> float:
    """Tick the core and step physics for ``seconds``, sending ``command`` (kwargs) every 0.1 s."""
    now = start
    for i in range(int(round(seconds / PERIOD))):
        if command is not None and i % 5 == 0:
            core.handle_command(Command(**command), now=now)
        core.tick(now)
        with backend.cell.lock:
            backend.cell.step(PERIOD)
        now += PERIOD
    return now


def tcp(backend: FaultInjectingBackend) -> np.ndarray:
    with backend.cell.lock:
        return backend.cell.ee_pose()[0].copy()


MOVE_UP = dict(delta_position=[0.0, 0.0, 0.02], delta_rotation=[0.0, 0.0, 0.0], gripper=0.0, period=0.1,
               frame_id="base_link")


def test_commands_before_any_feedback_are_refused(rig):
    backend, core = rig
    start = tcp(backend)
    assert core.handle_command(Command(**MOVE_UP), now=0.0) == "no valid arm feedback yet"
    with backend.cell.lock:
        backend.cell.step(0.3)
    assert np.linalg.norm(tcp(backend) - start) < 0.001
    core.tick(0.0)
    assert core.handle_command(Command(**MOVE_UP), now=0.0) is None  # accepted once the arm has been read


@pytest.mark.parametrize("field,value", [
    ("ee_position", np.array([np.nan, 0.0, 0.3])),
    ("ee_quaternion", np.zeros(4)),
    ("joint_positions", np.full(7, np.inf)),
])
def test_invalid_feedback_faults_and_the_arm_does_not_move(rig, field, value):
    backend, core = rig
    now = run(backend, core, 0.0, 0.2)
    backend.corrupt[field] = value
    start = tcp(backend)
    now = run(backend, core, now, 1.0, command=MOVE_UP)
    assert core.status(now).state == STATE_FAULT and "invalid arm feedback" in core.fault
    assert np.linalg.norm(tcp(backend) - start) < 0.002
    assert core.rejected_commands >= 1


def test_backend_fault_during_a_command_sends_no_twist(rig):
    backend, core = rig
    now = run(backend, core, 0.0, 0.2)
    backend.gripper_fails = True
    start = tcp(backend)
    close_and_rise = dict(MOVE_UP, gripper=1.0)
    core.handle_command(Command(**close_and_rise), now=now)
    assert "gripper not responding" in core.fault
    run(backend, core, now, 0.5)
    assert np.linalg.norm(tcp(backend) - start) < 0.002


def test_feedback_checks():
    assert feedback_problem(ArmState()) == ""
    assert "unit quaternion" in feedback_problem(ArmState(ee_quaternion=np.array([0.0, 0.0, 0.0, 2.0])))
    assert "non-finite" in feedback_problem(ArmState(gripper_position=float("nan")))


def test_status_is_ready_while_hold_commands_arrive_and_moving_while_the_arm_moves(rig):
    """READY means the arm is still: the idle policy's hold commands (zero deltas, gripper unchanged) must not
    read as MOVING."""
    backend, core = rig
    hold = dict(MOVE_UP, delta_position=[0.0, 0.0, 0.0], gripper=-1.0)
    now = run(backend, core, 0.0, 0.5, command=hold)
    assert core.status(now).state == STATE_READY
    now = run(backend, core, now, 0.3, command=MOVE_UP)
    assert core.status(now - 0.02).state == STATE_MOVING
    now = run(backend, core, now, 0.5, command=hold)
    assert core.status(now).state == STATE_READY
