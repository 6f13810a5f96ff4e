"""calvin_bridge + the Kinova driver (calvin backend) over real DDS, on a small in-test env with calvin_env's
interface: cameras as the real cell publishes them, commands through the driver's safety layer into CALVIN
actions, reset_episode's chain semantics, the subtask step limit, and the whole protocol driven by the ROS
runner of robovlms-calvin-eval."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
from rclpy.parameter import Parameter

from robovlms_calvin.actions import IDENTITY_BASE
from robovlms_calvin.calvin_cell import CalvinCell
from robovlms_calvin.calvin_eval import RosSubtaskRunner
from robovlms_calvin.composition import compose_calvin_cell
from robovlms_calvin.protocol import evaluate, summary
from robovlms_calvin.sequences import evaluation_chains, initial_scene
from robovlms_policy.trials.operator import OperatorGraph
from robovlms_io import names, qos
from robovlms_io.commands import end_effector_command, period_duration
from robovlms_io.images import image_msg_to_rgb
from robovlms_msgs.msg import EndEffectorCommand
from robovlms_msgs.srv import ResetEpisode
from sensor_msgs.msg import CameraInfo, Image
from small_calvin_env import INSTRUCTIONS, SmallCalvinEnv, StepCountOracle
from polling import wait_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]  # the 1000 chains are computed once per machine (~1 min)

MAX_STEPS = 12


@pytest.fixture
def graph(ros_context):
    env = SmallCalvinEnv()
    oracle = StepCountOracle({})
    cell = CalvinCell(env, oracle, IDENTITY_BASE)
    nodes = compose_calvin_cell(ros_context, cell=cell, instructions=INSTRUCTIONS, bridge_parameters=[
        Parameter("control_rate", value=20.0), Parameter("max_subtask_steps", value=MAX_STEPS)])
    g = OperatorGraph(ros_context, nodes.nodes, {names.RESET_EPISODE_SERVICE: ResetEpisode})
    g.env, g.oracle = env, oracle
    g.received = {topic: [] for topic in ("/rgb/image_raw", "/camera/camera/color/image_raw", "/rgb/camera_info")}
    for topic in g.received:
        kind = CameraInfo if topic.endswith("camera_info") else Image
        g.operator.create_subscription(kind, topic, g.received[topic].append, qos.SENSOR_SUBSCRIPTION)
    g.start()
    yield g
    g.close()


def reset(graph, seed, task="", variation=""):
    return graph.call(names.RESET_EPISODE_SERVICE, ResetEpisode.Request(task=task, seed=seed, variation=variation))


def test_cameras_as_the_real_cell(graph):
    assert wait_until(lambda: all(graph.received.values()), 10.0)
    static, wrist = graph.received["/rgb/image_raw"][-1], graph.received["/camera/camera/color/image_raw"][-1]
    assert (static.encoding, static.width, static.header.frame_id) == ("bgra8", 200, names.STATIC_CAMERA.frame_id)
    assert (wrist.encoding, wrist.width, wrist.height) == ("rgb8", 84, 84)
    assert image_msg_to_rgb(static).shape == (200, 200, 3)
    info = graph.received["/rgb/camera_info"][-1]
    assert info.k[0] == pytest.approx(100 / np.tan(np.radians(5.0)))  # 200 px over CALVIN's 10 degree fov


def test_reset_semantics_and_the_step_limit(graph):
    chain = evaluation_chains(1000)[3]
    assert not reset(graph, 3, variation="continue").success  # the chain was not started
    assert not reset(graph, 1000).success and not reset(graph, 3, variation="sideways").success
    assert not reset(graph, 3, task="fly_to_the_moon").success
    answer = reset(graph, 3)
    assert answer.success and answer.task == chain.subtasks[0] and answer.instruction == INSTRUCTIONS[answer.task]
    np.testing.assert_allclose(graph.env.resets[-1][1], initial_scene(chain.initial_state)[1])
    assert wait_until(lambda: graph.latest_info is not None and graph.latest_info.step >= MAX_STEPS, 10.0)
    stepped = len(graph.env.actions)
    time.sleep(0.5)
    assert len(graph.env.actions) == stepped  # a finished subtask waits for the next reset
    assert graph.latest_info.step == MAX_STEPS and not graph.latest_info.success
    resets = len(graph.env.resets)
    assert reset(graph, 3, task=chain.subtasks[1], variation="continue").success
    assert len(graph.env.resets) == resets  # continuing keeps the scene


def test_commands_reach_calvin_through_the_driver(graph):
    assert reset(graph, 0).success
    publisher = graph.operator.create_publisher(EndEffectorCommand, names.COMMAND_TOPIC, qos.COMMAND)
    first = len(graph.env.actions)

    def send():
        stamp = graph.operator.get_clock().now().to_msg()
        publisher.publish(end_effector_command([0.005, 0, 0, 0, 0, 0], 1.0, names.BASE_FRAME, stamp,
                                               period_duration(0.1)))
        return len(graph.env.actions) > first + 3 and graph.env.actions[-1][0] > 0.1

    assert wait_until(send, 10.0)
    action = graph.env.actions[-1]
    # 0.005 m per 0.1 s = 0.05 m/s held over the bridge's 0.05 s step: 2.5 mm = 0.125 CALVIN units; gripper closed
    assert action[0] == pytest.approx(0.125, abs=0.01) and abs(action[1]) < 1e-6 and action[6] == -1.0


def test_the_protocol_through_ros(graph):
    chains = evaluation_chains(1000)[:3]
    graph.oracle.steps_to_success.update({t: 3 for c in chains for t in c.subtasks})
    failing = chains[1].subtasks[2]
    del graph.oracle.steps_to_success[failing]
    results = evaluate(RosSubtaskRunner(graph, None, MAX_STEPS), chains)
    assert [r.completed for r in results] == [5, 2, 5 if failing not in chains[2].subtasks else
                                              chains[2].subtasks.index(failing)]
    assert results[1].outcomes[-1].steps == MAX_STEPS and not results[1].outcomes[-1].success
    assert all(o.steps == 3 for o in results[0].outcomes)
    assert summary(results)["success_rate"]["1"] == 1.0
    assert len(graph.env.resets) == 3  # one scene reset per chain


def test_without_calvin_env_the_cell_exits_with_the_setup_steps(tmp_path):
    import subprocess
    import sys

    environment = {**os.environ, "CALVIN_ENV_DIR": str(tmp_path / "nowhere"), "CALVIN_DIR": ""}
    done = subprocess.run([sys.executable, "-m", "robovlms_calvin.composition"], capture_output=True, text=True,
                          timeout=60, env=environment)
    assert done.returncode != 0
    assert "is not a calvin_env checkout" in done.stderr + done.stdout
    assert "git clone --recursive https://github.com/mees/calvin_env.git" in done.stderr + done.stdout
