"""simpler_bridge: SimplerEnv's visual-matching tasks (from the user's install) published like the real cell.

The benchmark's camera (Google Robot: overhead_camera 640x512, WidowX: 3rd_view_camera 640x480, with the real
image overlaid as SimplerEnv does) goes out as the Azure Kinect view (bgra8 on /rgb/image_raw) with its
CameraInfo; the driver next to it (``simpler`` backend) publishes joint_states and ee_pose and takes the
policy's commands through its safety layer. At the robot's control frequency (3 Hz / 5 Hz) each tick of a
running episode steps the env once with the command held; an episode ends after the task's step count (80,
113, 200 or 60, 120 for WidowX) and its outcome is the env's info["success"] at that last step, as in
SimplerEnv's evaluator. The env then waits for the next reset.

reset_episode (robovlms_msgs/ResetEpisode): ``task`` is a SimplerEnv task name of the bridge's robot, ``seed``
the episode index in the task's set (robovlms_simpler.tasks); ``variation`` must be empty (the index picks the
URDF / overlay variant, reported back in episode_info.variation).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from robovlms_msgs.msg import EpisodeInfo
from robovlms_msgs.srv import ResetEpisode
from sensor_msgs.msg import CameraInfo, Image

from robovlms_simpler.actions import ROTATION_FORMATS
from robovlms_simpler.simpler_cell import SimplerCell
from robovlms_simpler.simpler_setup import BACKENDS, MANISKILL2, make_env
from robovlms_simpler.tasks import ROBOTS, TASKS, WIDOWX, tasks_of
from robovlms_io import names, qos
from robovlms_io.images import Intrinsics, camera_info_msg, rgb_to_image_msg
from robovlms_io.params import declare_params, param
from robovlms_io.spin import run_nodes


@dataclass(frozen=True)
class SimplerBridgeParams:
    """Parameters of `simpler_bridge`."""

    robot: str = param(WIDOWX, "SimplerEnv robot: google_robot (3 Hz) or widowx (5 Hz); its tasks only.",
                       choices=tuple(ROBOTS))
    backend: str = param(MANISKILL2, "maniskill2 (SimplerEnv's ManiSkill2_real2sim) or maniskill3 (mani_skill; "
                                     "WidowX tasks only).", choices=BACKENDS)
    rotation: str = param("rotvec", "What the commands' delta_rotation holds: rotvec (the message's definition) or "
                                    "euler (roll/pitch/yaw increments of a checkpoint trained on raw OXE actions; "
                                    "converted to axis-angle as SimplerEnv's policy wrappers do).",
                          choices=ROTATION_FORMATS)
    max_steps: int = param(0, "Steps per episode; 0: the task's own (SimplerEnv's max_episode_steps).", low=0,
                           high=100000)
    episode_info_topic: str = param(names.EPISODE_INFO_TOPIC, "EpisodeInfo output topic (one per tick).")
    reset_service: str = param(names.RESET_EPISODE_SERVICE, "ResetEpisode service name.")
    static_image_topic: str = param(names.STATIC_CAMERA.image_topic,
                                    f"The benchmark camera's image topic ({names.STATIC_CAMERA.encoding}).")
    static_info_topic: str = param(names.STATIC_CAMERA.info_topic, "The benchmark camera's CameraInfo topic.")


def intrinsics_of(matrix: np.ndarray, width: int, height: int) -> Intrinsics:
    k = np.asarray(matrix, float).reshape(3, 3)
    return Intrinsics(width, height, k[0, 0], k[1, 1], k[0, 2], k[1, 2])


class SimplerBridge(Node):
    """ROS face of a SimplerCell (built from the parameters unless ``cell`` is given)."""

    def __init__(self, cell: SimplerCell | None = None, **node_kwargs):
        super().__init__(node_kwargs.pop("node_name", "simpler_bridge"), **node_kwargs)
        p = self.params = declare_params(self, SimplerBridgeParams)
        self.robot = ROBOTS[p.robot]
        self.cell = cell if cell is not None else SimplerCell(make_env(p.robot, p.backend), self.robot, p.rotation)
        self.period = 1.0 / self.robot.control_freq
        self._episode_id, self._done, self._max_steps = 0, True, 0
        # Up front, so a missing renderer or asset fails at start and the driver has a state to publish.
        first = TASKS[tasks_of(p.robot)[0]].episode(0)
        with self.cell.lock:
            self.cell.reset_episode(first)
        self._image_pub = self.create_publisher(Image, p.static_image_topic, qos.SENSOR_PUBLICATION)
        self._info_pub = self.create_publisher(CameraInfo, p.static_info_topic, qos.SENSOR_PUBLICATION)
        self._episode_pub = self.create_publisher(EpisodeInfo, p.episode_info_topic, qos.RELIABLE)
        self.create_service(ResetEpisode, p.reset_service, self._on_reset)
        self.create_timer(self.period, self._on_tick)
        self.get_logger().info(f"SimplerEnv ready: {p.robot} on {p.backend}, {len(tasks_of(p.robot))} tasks, "
                               f"{self.robot.control_freq:g} Hz")

    def _on_tick(self) -> None:
        with self.cell.lock:
            if not self._done:
                self.cell.step(self.period)
                self._done = self.cell.steps >= self._max_steps
            obs, steps, episode = self.cell.observation, self.cell.steps, self.cell.episode
        stamp = self.get_clock().now().to_msg()
        camera = names.STATIC_CAMERA
        self._image_pub.publish(rgb_to_image_msg(obs.image, camera.encoding, camera.frame_id, stamp))
        if obs.intrinsic is not None:
            height, width = obs.image.shape[:2]
            self._info_pub.publish(camera_info_msg(intrinsics_of(obs.intrinsic, width, height), camera.frame_id,
                                                   stamp))
        info = EpisodeInfo(episode_id=self._episode_id, task=episode.task, instruction=obs.instruction,
                           variation=episode.variant, seed=int(episode.index), step=int(steps),
                           success=bool(obs.success))  # an env's numpy bool would abort the message conversion
        info.header.stamp = stamp
        self._episode_pub.publish(info)

    def _on_reset(self, request: ResetEpisode.Request, response: ResetEpisode.Response) -> ResetEpisode.Response:
        try:
            task = TASKS.get(request.task)
            if task is None or task.robot != self.robot.name:
                raise ValueError(f"task must be one of the {self.robot.name} tasks ({', '.join(tasks_of(self.robot.name))}),"
                                 f" not {request.task[:64]!r}")
            if request.variation:
                raise ValueError("variation must be empty: the episode index (seed) picks the visual-matching variant")
            episode = task.episode(request.seed)
            with self.cell.lock:
                obs = self.cell.reset_episode(episode)
                self._max_steps = self.params.max_steps or task.max_steps
                self._done = False
        except ValueError as error:
            response.success, response.message = False, str(error)
            self.get_logger().warning(f"reset_episode rejected: {error}")
            return response
        self._episode_id += 1
        response.success, response.task, response.seed = True, task.name, episode.index
        response.instruction = obs.instruction
        response.message = f"{task.name} episode {episode.index} ({episode.variant}), {self._max_steps} steps"
        return response

    def destroy_node(self) -> None:
        cell = getattr(self, "cell", None)
        if cell is not None:
            with cell.lock:
                cell.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_nodes("simpler_bridge", SimplerBridge, args)


if __name__ == "__main__":
    sys.exit(main())
