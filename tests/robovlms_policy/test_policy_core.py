"""PolicyCore without ROS: instructions, staleness of cameras and robot state, the tick schedule, the model's
error latch. Every hold names its reason; nothing is acted on without fresh inputs."""
from __future__ import annotations

import math

import numpy as np

from robovlms_msgs.msg import PolicyStatus
from robovlms_policy.runtime import policy_core as core_module
from robovlms_policy.runtime.policy_core import CameraInput, PolicyCore, RobotStateInput

PERIOD = 0.1
UP = np.array([1.0, 0.0, 0.0, 0.0])  # tool pointing down: a half turn about x


def make_core(with_state: bool = False) -> PolicyCore:
    cameras = [CameraInput("static", "/rgb/image_raw"), CameraInput("wrist", "/camera/camera/color/image_raw")]
    return PolicyCore(cameras, PERIOD, max_frame_age_s=0.3, max_instruction_length=20,
                      robot_state=RobotStateInput(0.3) if with_state else None)


class Model:
    """Records what the core asks for and answers with a fixed action."""

    def __init__(self, action=(np.full(6, 0.01), 0.5, 0)) -> None:
        self.action, self.calls = action, []

    def __call__(self, tick, frames, proprio):
        self.calls.append((tick, frames, proprio))
        return self.action


def feed(core: PolicyCore, now: float) -> None:
    for name in core.cameras:
        core.frame(name, f"{name}@{now}", now)


def test_state_constants_are_the_messages():
    assert (core_module.STATE_IDLE, core_module.STATE_RUNNING, core_module.STATE_HOLDING, core_module.STATE_ERROR) \
        == (PolicyStatus.STATE_IDLE, PolicyStatus.STATE_RUNNING, PolicyStatus.STATE_HOLDING, PolicyStatus.STATE_ERROR)


def test_idle_without_instruction_then_runs_on_fresh_frames():
    core, model = make_core(), Model()
    feed(core, 0.0)
    decision = core.tick(0.0, model)
    assert decision.state == PolicyStatus.STATE_IDLE and decision.action is None and not model.calls
    update = core.new_instruction("  open\n the   drawer ")
    assert update.instruction == "open the drawer" and update.reason == ""
    decision = core.tick(0.1, model)
    assert decision.state == PolicyStatus.STATE_RUNNING and decision.action is model.action
    assert model.calls[-1][0] == 1 and model.calls[-1][1] == {"static": "static@0.0", "wrist": "wrist@0.0"}


def test_repeated_instruction_changes_nothing_and_long_ones_idle():
    core = make_core()
    assert core.new_instruction("open the drawer") is not None
    assert core.new_instruction("open the  drawer") is None  # the same text after normalisation
    update = core.new_instruction("x" * 21)
    assert update.instruction == "" and "21 > 20" in update.reason
    feed(core, 0.0)
    decision = core.tick(0.0, Model())
    assert decision.state == PolicyStatus.STATE_IDLE and "rejected" in decision.reason
    assert core.new_instruction("") is None  # already idle


def test_stale_or_missing_frames_hold_with_reasons():
    core, model = make_core(), Model()
    core.new_instruction("press the button")
    core.frame_rejected("wrist")
    core.frame("static", "s", 0.0)
    decision = core.tick(0.0, model)
    assert decision.state == PolicyStatus.STATE_HOLDING and decision.action is None
    assert "no frame yet from wrist (/camera/camera/color/image_raw) (1 rejected)" in decision.reason
    core.frame("wrist", "w", 0.0)
    assert core.tick(0.1, model).state == PolicyStatus.STATE_RUNNING
    decision = core.tick(0.5, model)  # frames now 0.5 s old
    assert decision.state == PolicyStatus.STATE_HOLDING and "static frame is 0.50 s old" in decision.reason
    assert len(model.calls) == 1
    assert core.frame_ages(0.5) == [0.5, 0.5]


def test_robot_state_is_required_fresh_and_valid():
    core, model = make_core(with_state=True), Model()
    core.new_instruction("lift the red block")
    feed(core, 0.0)
    assert "no ee_pose yet" in core.tick(0.0, model).reason
    state = core.robot_state
    assert "frame 'world'" in state.pose(np.array([0.4, 0, 0.2]), UP, "world", 0.0)
    assert "unit quaternion" in state.pose(np.array([0.4, 0, 0.2]), np.zeros(4), "base_link", 0.0)
    assert "non-finite" in state.pose(np.array([math.nan, 0, 0.2]), UP, "base_link", 0.0)
    assert state.pose(np.array([0.4, 0, 0.2]), UP, "base_link", 0.0) == ""
    assert "no gripper joint state yet" in core.tick(0.05, model).reason
    assert "non-finite" in state.gripper(math.inf, 0.05)
    assert state.gripper(0.4, 0.05) == ""
    decision = core.tick(0.1, model)
    assert decision.state == PolicyStatus.STATE_RUNNING
    proprio = model.calls[-1][2]
    np.testing.assert_allclose(proprio[:3], [0.4, 0, 0.2])
    assert proprio[9] == 0.5  # knuckle 0.4 of 0.8 rad
    feed(core, 0.6)
    assert "ee_pose is 0.60 s old" in core.tick(0.6, model).reason


def test_model_errors_latch_until_a_new_instruction():
    core = make_core()
    core.new_instruction("open the drawer")
    feed(core, 0.0)
    core.latch_model_error("policy step failed: boom")
    decision = core.tick(0.0, Model())
    assert decision.state == PolicyStatus.STATE_ERROR and decision.reason == "policy step failed: boom"
    assert core.new_instruction("open the drawer") is not None  # the same instruction clears the latch
    assert core.tick(0.1, Model()).state == PolicyStatus.STATE_RUNNING
    bad = Model((np.array([math.nan] * 6), 0.5, 0))
    decision = core.tick(0.2, bad)
    assert decision.state == PolicyStatus.STATE_ERROR and decision.action is None
    assert core.tick(0.3, Model()).state == PolicyStatus.STATE_ERROR  # latched


def test_waiting_for_the_first_chunk_holds():
    core = make_core()
    core.new_instruction("open the drawer")
    feed(core, 0.0)
    decision = core.tick(0.0, lambda tick, frames, proprio: None)
    assert decision.state == PolicyStatus.STATE_HOLDING and decision.reason == "waiting for the model's first chunk"


def test_tick_schedule_counts_missed_ticks():
    core = make_core()
    ticks = [core.tick(t, Model()) for t in (0.0, 0.1, 0.2, 0.55, 0.61)]
    assert [d.tick for d in ticks] == [0, 1, 2, 6, 7]  # 0.55 s is tick 6 (ticks 3-5 missed), 0.61 s the next
    assert ticks[-1].missed_ticks == 3
    assert ticks[0].tick_period == 0.0 and abs(ticks[3].tick_period - 0.35) < 1e-9
