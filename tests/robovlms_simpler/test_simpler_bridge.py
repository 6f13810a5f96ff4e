"""simpler_bridge + the Kinova driver (simpler backend) over real DDS, on a small in-test env with the bridge's
env interface: the benchmark camera as the real cell publishes it, commands through the driver's safety layer
into SimplerEnv actions, reset_episode's checks, the step limit with the verdict at the last step, and episodes
driven by the ROS runner of robovlms-simpler-eval. Also: without SimplerEnv the cell exits with the reason."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from rclpy.parameter import Parameter

from robovlms_io import names, qos
from robovlms_io.commands import end_effector_command, period_duration
from robovlms_io.images import image_msg_to_rgb
from robovlms_msgs.msg import EndEffectorCommand
from robovlms_msgs.srv import ResetEpisode
from robovlms_policy.trials.operator import OperatorGraph
from robovlms_simpler.composition import compose_simpler_cell
from robovlms_simpler.protocol import plan_episodes, run_episodes
from robovlms_simpler.simpler_cell import SimplerCell
from robovlms_simpler.simpler_eval import RosEpisodeRunner
from robovlms_simpler.simpler_setup import vulkan_problem
from robovlms_simpler.tasks import ROBOTS, WIDOWX, select_tasks
from sensor_msgs.msg import CameraInfo, Image
from small_simpler_env import SmallSimplerEnv
from polling import wait_until

pytestmark = pytest.mark.ros
MAX_STEPS = 6


@pytest.fixture
def graph(ros_context):
    env = SmallSimplerEnv(lift=0.02)
    cell = SimplerCell(env, ROBOTS[WIDOWX])
    nodes = compose_simpler_cell(ros_context, cell=cell, bridge_parameters=[
        Parameter("robot", value=WIDOWX), Parameter("max_steps", value=MAX_STEPS)],
        driver_parameters=[Parameter("watchdog_timeout", value=0.5), Parameter("max_linear_speed", value=0.6)])
    g = OperatorGraph(ros_context, nodes.nodes, {names.RESET_EPISODE_SERVICE: ResetEpisode})
    g.env = env
    g.received = {topic: [] for topic in ("/rgb/image_raw", "/rgb/camera_info")}
    for topic in g.received:
        kind = CameraInfo if topic.endswith("camera_info") else Image
        g.operator.create_subscription(kind, topic, g.received[topic].append, qos.SENSOR_SUBSCRIPTION)
    g.start()
    yield g
    g.close()


def reset(graph, task, seed, variation=""):
    return graph.call(names.RESET_EPISODE_SERVICE, ResetEpisode.Request(task=task, seed=seed, variation=variation))


def test_the_benchmark_camera_on_the_static_topics(graph):
    assert wait_until(lambda: all(graph.received.values()), 10.0)
    image = graph.received["/rgb/image_raw"][-1]
    assert (image.encoding, image.width, image.height) == ("bgra8", 640, 480)
    assert image.header.frame_id == names.STATIC_CAMERA.frame_id and image_msg_to_rgb(image).shape == (480, 640, 3)
    assert graph.received["/rgb/camera_info"][-1].k[0] == pytest.approx(425.0)


def test_reset_checks_and_the_step_limit(graph):
    assert not reset(graph, "google_robot_move_near", 0).success  # another robot's task
    assert not reset(graph, "widowx_stack_cube", 24).success and not reset(graph, "widowx_stack_cube", 1, "x").success
    answer = reset(graph, "widowx_stack_cube", 3)
    assert answer.success and answer.instruction == "do widowx_stack_cube" and graph.env.resets[-1].index == 3
    assert wait_until(lambda: graph.latest_info is not None and graph.latest_info.step >= MAX_STEPS, 10.0)
    stepped = len(graph.env.actions)
    assert not wait_until(lambda: len(graph.env.actions) > stepped, 0.6)  # a finished episode waits
    info = graph.latest_info
    assert (info.task, info.seed, info.variation, info.step) == ("widowx_stack_cube", 3, "visual_matching", MAX_STEPS)


def test_commands_reach_the_env_through_the_driver(graph):
    assert reset(graph, "widowx_carrot_on_plate", 0).success
    publisher = graph.operator.create_publisher(EndEffectorCommand, names.COMMAND_TOPIC, qos.COMMAND)
    first = len(graph.env.actions)

    def send():
        stamp = graph.operator.get_clock().now().to_msg()
        publisher.publish(end_effector_command([0.01, 0, 0, 0, 0, 0.05], 1.0, names.BASE_FRAME, stamp,
                                               period_duration(0.2)))
        return len(graph.env.actions) > first + 2 and graph.env.actions[-1][0] > 0.005

    assert wait_until(send, 10.0)
    # 0.01 m and 0.05 rad per 0.2 s, held over the bridge's 0.2 s step (5 Hz); gripper closed: WidowX's -1.
    np.testing.assert_allclose(graph.env.actions[-1], [0.01, 0, 0, 0, 0, 0.05, -1.0], atol=2e-3)


def test_episodes_through_ros_are_judged_at_their_last_step(graph):
    plan = plan_episodes(select_tasks("widowx_spoon_on_towel", WIDOWX), 2)
    results = run_episodes(RosEpisodeRunner(graph, recording=False, max_steps=MAX_STEPS), plan)
    # No command: the arm stays, so nothing rises 2 cm.
    assert [(r.seed, r.outcome, r.steps) for r in results] == [(0, "failure", MAX_STEPS), (23, "failure", MAX_STEPS)]
    assert [e.index for e in graph.env.resets[-2:]] == [0, 23]


def test_vulkan_check_names_the_reason(tmp_path):
    assert "no Vulkan driver is installed" in vulkan_problem([str(tmp_path)], {})
    (tmp_path / "lvp_icd.x86_64.json").write_text("{}")
    assert "only a CPU Vulkan driver" in vulkan_problem([str(tmp_path)], {})
    (tmp_path / "nvidia_icd.json").write_text("{}")
    assert vulkan_problem([str(tmp_path)], {}) == ""
    assert "only a CPU" in vulkan_problem([], {"VK_ICD_FILENAMES": str(tmp_path / "lvp_icd.x86_64.json")})


def test_without_simplerenv_the_cell_exits_with_the_reason_and_setup_steps():
    done = subprocess.run([sys.executable, "-m", "robovlms_simpler.composition"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "VK_ICD_FILENAMES": "/nonexistent/lvp_icd.json"})
    output = done.stderr + done.stdout
    assert done.returncode == 1 and "simpler_cell: only a CPU Vulkan driver" in output
    assert "git clone https://github.com/simpler-env/SimplerEnv" in output
