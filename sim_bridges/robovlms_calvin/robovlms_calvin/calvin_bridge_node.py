"""calvin_bridge: CALVIN's playtable (calvin_env, from the user's checkout) published like the real cell.

rgb_static (200x200) goes out as the Azure Kinect view (bgra8 on /rgb/image_raw), rgb_gripper (84x84) as
the wrist RealSense (rgb8), each with CameraInfo from the CALVIN camera's field of view; the driver next to
it (``calvin`` backend) publishes joint_states and ee_pose from robot_obs and takes the policy's commands
through its safety layer. Each control tick of an active subtask steps the env once with the command held;
a subtask ends at CALVIN's oracle success or after ``max_subtask_steps`` steps, and the env then waits.

reset_episode (robovlms_msgs/ResetEpisode) drives the protocol: ``seed`` = chain index (into CALVIN's 1000),
``variation`` "chain" (default) resets the scene to the chain's initial state and starts ``task`` (empty: the
chain's first subtask); "continue" keeps the scene and starts ``task``, as CALVIN does within a chain.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.node import Node
from robovlms_msgs.msg import EpisodeInfo
from robovlms_msgs.srv import ResetEpisode
from sensor_msgs.msg import CameraInfo, Image

from robovlms_calvin.actions import BaseFrame
from robovlms_calvin.calvin_cell import CalvinCell
from robovlms_calvin.calvin_setup import CalvinPaths, load_instructions, make_env, make_task_oracle
from robovlms_calvin.sequences import NUM_CHAINS, evaluation_chains
from robovlms_io import names, qos
from robovlms_io.images import Intrinsics, camera_info_msg, rgb_to_image_msg
from robovlms_io.params import declare_params, param
from robovlms_io.rotations import quaternion_to_matrix
from robovlms_io.spin import run_nodes

MAX_SUBTASK_STEPS = 360  # CALVIN's EP_LEN
START_CHAIN, CONTINUE_CHAIN = "chain", "continue"
ENV_CAMERA = {"static": "static", "wrist": "gripper"}  # suite camera -> calvin_env camera name


@dataclass(frozen=True)
class CalvinBridgeParams:
    """Parameters of `calvin_bridge`."""

    calvin_env_dir: str = param("", "calvin_env git checkout (with data/ and conf/); empty: $CALVIN_ENV_DIR.")
    calvin_dir: str = param("", "mees/calvin checkout, for the validation instructions; empty: $CALVIN_DIR.")
    dataset_dir: str = param("", "Optional CALVIN dataset (task_D_D, ...): its validation env config is used.")
    use_egl: bool = param(False, "Render with pybullet's EGL plug-in (GPU) instead of the CPU tiny renderer.")
    control_rate: float = param(10.0, "Env steps per second while a subtask runs; match the policy node's "
                                      "rate so that one command is one CALVIN step.", positive=True, high=1000.0)
    max_subtask_steps: int = param(MAX_SUBTASK_STEPS, "Steps after which a subtask has failed (CALVIN: 360).",
                                   low=1, high=100000)
    episode_info_topic: str = param(names.EPISODE_INFO_TOPIC, "EpisodeInfo output topic (one per tick).")
    reset_service: str = param(names.RESET_EPISODE_SERVICE, "ResetEpisode service name.")
    static_image_topic: str = param(names.STATIC_CAMERA.image_topic,
                                    f"rgb_static image topic ({names.STATIC_CAMERA.encoding}).")
    static_info_topic: str = param(names.STATIC_CAMERA.info_topic, "rgb_static CameraInfo topic.")
    wrist_image_topic: str = param(names.WRIST_CAMERA.image_topic,
                                   f"rgb_gripper image topic ({names.WRIST_CAMERA.encoding}).")
    wrist_info_topic: str = param(names.WRIST_CAMERA.info_topic, "rgb_gripper CameraInfo topic.")


def paths_from(p: CalvinBridgeParams, environ) -> CalvinPaths:
    calvin_env = p.calvin_env_dir or environ.get("CALVIN_ENV_DIR", "")
    calvin = p.calvin_dir or environ.get("CALVIN_DIR", "")
    return CalvinPaths(Path(calvin_env).expanduser(), Path(calvin).expanduser() if calvin else None,
                       Path(p.dataset_dir).expanduser() if p.dataset_dir else None)


def intrinsics_of(camera) -> Intrinsics:
    """A calvin_env camera (vertical fov in degrees, square pixels, centred) as pinhole intrinsics."""
    focal = camera.height / (2.0 * math.tan(math.radians(camera.fov) / 2.0))
    return Intrinsics(camera.width, camera.height, focal, focal, camera.width // 2, camera.height // 2)


def make_cell(paths: CalvinPaths, use_egl: bool) -> CalvinCell:
    env = make_env(paths, use_egl)
    # calvin_env's Robot keeps the scene's base position and its orientation as a quaternion (x, y, z, w).
    base = BaseFrame(np.asarray(env.robot.base_position, float), quaternion_to_matrix(env.robot.base_orientation))
    return CalvinCell(env, make_task_oracle(paths), base)


class CalvinBridge(Node):
    """ROS face of a CalvinCell (built from the parameters unless ``cell`` is given)."""

    def __init__(self, cell: CalvinCell | None = None, instructions: dict[str, str] | None = None,
                 environ=None, **node_kwargs):
        super().__init__(node_kwargs.pop("node_name", "calvin_bridge"), **node_kwargs)
        p = self.params = declare_params(self, CalvinBridgeParams)
        paths = paths_from(p, os.environ if environ is None else environ)
        self.cell = cell if cell is not None else make_cell(paths, p.use_egl)
        self.instructions = instructions if instructions is not None else load_instructions(paths)
        self.period = 1.0 / p.control_rate
        # Up front (once per machine ~1 min, then a cached file), not in the first reset_episode call.
        self._chains = evaluation_chains(NUM_CHAINS)
        self._chain_index, self._episode_id, self._done, self._success = -1, 0, True, False
        self._instruction = ""
        cameras = {c.name: c for c in getattr(self.cell.env, "cameras", [])}
        self._cameras = {}
        for name, camera in names.CAMERAS.items():
            intrinsics = intrinsics_of(cameras[ENV_CAMERA[name]]) if ENV_CAMERA[name] in cameras else None
            self._cameras[name] = (
                self.create_publisher(Image, getattr(p, f"{name}_image_topic"), qos.SENSOR_PUBLICATION),
                self.create_publisher(CameraInfo, getattr(p, f"{name}_info_topic"), qos.SENSOR_PUBLICATION),
                camera, intrinsics)
        self._episode_pub = self.create_publisher(EpisodeInfo, p.episode_info_topic, qos.RELIABLE)
        self.create_service(ResetEpisode, p.reset_service, self._on_reset)
        self.create_timer(self.period, self._on_tick)
        self.get_logger().info(f"CALVIN ready: {len(self.instructions)} subtask instructions, {p.control_rate} Hz, "
                               f"at most {p.max_subtask_steps} steps per subtask")

    def _on_tick(self) -> None:
        with self.cell.lock:
            if not self._done:
                self.cell.step(self.period)
                self._success = self.cell.success()
                self._done = self._success or self.cell.steps >= self.params.max_subtask_steps
            images = {name: self.cell.image(name) for name in self._cameras}
            success, steps, subtask = self._success, self.cell.steps, self.cell.subtask
        stamp = self.get_clock().now().to_msg()
        for name, (image_pub, info_pub, camera, intrinsics) in self._cameras.items():
            image_pub.publish(rgb_to_image_msg(images[name], camera.encoding, camera.frame_id, stamp))
            if intrinsics is not None:
                info_pub.publish(camera_info_msg(intrinsics, camera.frame_id, stamp))
        info = EpisodeInfo(episode_id=self._episode_id, task=subtask, instruction=self._instruction,
                           variation=START_CHAIN, seed=max(self._chain_index, 0), step=steps, success=success)
        info.header.stamp = stamp
        self._episode_pub.publish(info)

    def _on_reset(self, request: ResetEpisode.Request, response: ResetEpisode.Response) -> ResetEpisode.Response:
        variation = request.variation or START_CHAIN
        try:
            if variation not in (START_CHAIN, CONTINUE_CHAIN):
                raise ValueError(f"variation must be {START_CHAIN!r} or {CONTINUE_CHAIN!r}, not {variation[:64]!r}")
            if not 0 <= request.seed < NUM_CHAINS:
                raise ValueError(f"seed is the chain index, 0..{NUM_CHAINS - 1}; got {request.seed}")
            if variation == CONTINUE_CHAIN and request.seed != self._chain_index:
                raise ValueError(f"chain {request.seed} was not started (current: {self._chain_index})")
            chain = self._chains[request.seed]
            subtask = request.task or chain.subtasks[0]
            if subtask not in self.instructions:
                raise ValueError(f"no validation instruction for subtask {subtask[:64]!r}")
            with self.cell.lock:
                if variation == START_CHAIN:
                    self.cell.reset_chain(chain)
                self.cell.start_subtask(subtask)
                self._done, self._success = False, False
        except ValueError as error:
            response.success, response.message = False, str(error)
            self.get_logger().warning(f"reset_episode rejected: {error}")
            return response
        self._chain_index, self._instruction = request.seed, self.instructions[subtask]
        self._episode_id += 1
        response.success, response.task, response.seed = True, subtask, request.seed
        response.instruction = self._instruction
        response.message = f"chain {request.seed}: {subtask} ({variation})"
        return response

    def destroy_node(self) -> None:
        cell = getattr(self, "cell", None)
        if cell is not None:
            with cell.lock:
                cell.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_nodes("calvin_bridge", CalvinBridge, args)


if __name__ == "__main__":
    sys.exit(main())
