"""twin_bridge: steps the MuJoCo twin at the control rate and publishes it like the real cell.

Cameras go out on the real drivers' topics, encodings and frame ids (Azure Kinect: bgra8 on
/rgb/image_raw; RealSense: rgb8 on /camera/camera/color/image_raw), joints on joint_states, the
episode on episode_info; reset_episode starts a new seeded episode. The node can wrap an existing
KinovaCell so the driver's sim backend and this bridge share one simulation in one process; every
cell call holds ``cell.lock``. This node owns physics stepping; the driver only sets commands.
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass

from rclpy.node import Node
from robovlms_msgs.msg import EpisodeInfo
from robovlms_msgs.srv import ResetEpisode
from sensor_msgs.msg import CameraInfo, Image, JointState

from robovlms_io import names, qos
from robovlms_io.images import Intrinsics, camera_info_msg, rgb_to_image_msg
from robovlms_io.params import declare_params, param
from robovlms_io.spin import run_nodes
from robovlms_twin.cell import CellConfig, KinovaCell
from robovlms_twin.tasks import TASKS, VARIATIONS

MAX_NAME_LENGTH = 256


@dataclass(frozen=True)
class TwinBridgeParams:
    """Parameters of `twin_bridge`."""

    control_rate: float = param(10.0, "Physics is advanced by 1/control_rate s per tick (Hz), like the real "
                                      "driver.", positive=True, high=1000.0)
    camera_rate: float = param(10.0, "Rate at which both cameras are rendered and published (Hz).",
                               positive=True, high=1000.0)
    image_size: int = param(224, "Side of the square rendered images (pixels), unless width/height are set.",
                            low=1, high=4096)
    image_width: int = param(0, "Rendered image width in pixels; 0 = image_size.", low=0, high=4096)
    image_height: int = param(0, "Rendered image height in pixels; 0 = image_size.", low=0, high=4096)
    # Task and variation names are checked where every request is (tasks.check_request), with the valid names.
    task: str = param("open_drawer", f"Task of the first episode: {', '.join(TASKS)}.")
    seed: int = param(0, "Seed of the first episode's randomised initial state.")
    variation: str = param("default", f"Variation of the first episode: {', '.join(VARIATIONS)}.")
    publish_cameras: bool = param(True, "Render and publish the Kinect and wrist RealSense images.")
    publish_joint_states: bool = param(True, "Publish joint_states (disable when the driver's sim backend does).")
    joint_states_topic: str = param(names.JOINT_STATES_TOPIC, "JointState output topic.")
    episode_info_topic: str = param(names.EPISODE_INFO_TOPIC, "EpisodeInfo output topic (one message per control "
                                                              "tick).")
    reset_service: str = param(names.RESET_EPISODE_SERVICE, "ResetEpisode service name.")
    static_image_topic: str = param(names.STATIC_CAMERA.image_topic,
                                    f"static camera image topic ({names.STATIC_CAMERA.encoding}).")
    static_info_topic: str = param(names.STATIC_CAMERA.info_topic, "static camera CameraInfo topic.")
    wrist_image_topic: str = param(names.WRIST_CAMERA.image_topic,
                                   f"wrist camera image topic ({names.WRIST_CAMERA.encoding}).")
    wrist_info_topic: str = param(names.WRIST_CAMERA.info_topic, "wrist camera CameraInfo topic.")


class TwinBridge(Node):
    """ROS face of a KinovaCell (creates its own unless ``cell`` is given)."""

    def __init__(self, cell: KinovaCell | None = None, **node_kwargs):
        super().__init__(node_kwargs.pop("node_name", "twin_bridge"), **node_kwargs)
        p = self.params = declare_params(self, TwinBridgeParams)
        self.control_period = 1.0 / p.control_rate
        if cell is None:
            cell = KinovaCell(CellConfig(image_size=p.image_size, image_width=p.image_width or None,
                                         image_height=p.image_height or None, control_period=self.control_period))
        self.cell = cell
        self._step = 0
        self._task_cursor = 0
        self._seed_source = random.SystemRandom()
        with self.cell.lock:
            self._spec = self.cell.reset(p.task, p.seed, p.variation)
            self._task_names = self.cell.task_names
            self._intrinsics = {cam: Intrinsics.from_matrix(self.cell.camera_matrix(cam), self.cell.config.width,
                                                            self.cell.config.height) for cam in names.CAMERAS}
        self._episode_id = 1

        self._joint_pub = self.create_publisher(JointState, p.joint_states_topic, qos.RELIABLE) \
            if p.publish_joint_states else None
        self._episode_pub = self.create_publisher(EpisodeInfo, p.episode_info_topic, qos.RELIABLE)
        self._camera_pubs = {}
        if p.publish_cameras:
            for cam, camera in names.CAMERAS.items():
                self._camera_pubs[cam] = (
                    self.create_publisher(Image, getattr(p, f"{cam}_image_topic"), qos.SENSOR_PUBLICATION),
                    self.create_publisher(CameraInfo, getattr(p, f"{cam}_info_topic"), qos.SENSOR_PUBLICATION),
                    camera)
            self._camera_timer = self.create_timer(1.0 / p.camera_rate, self._on_camera_tick)
        self.create_service(ResetEpisode, p.reset_service, self._on_reset)
        self.create_timer(self.control_period, self._on_control_tick)
        self.get_logger().info(
            f"twin ready: task {self._spec.task!r} ({self._spec.instruction!r}), control {p.control_rate} Hz, "
            f"cameras {'on at ' + str(p.camera_rate) + ' Hz' if p.publish_cameras else 'off'}")

    # --- ticks ---------------------------------------------------------------------------------
    def _on_control_tick(self) -> None:
        with self.cell.lock:
            self.cell.step(self.control_period)
            joints = self.cell.joint_positions()
            velocities = self.cell.joint_velocities()
            knuckle = self.cell.gripper_joint_position()
            success = self.cell.success()
        self._step += 1
        stamp = self.get_clock().now().to_msg()
        if self._joint_pub is not None:
            msg = JointState(name=list(names.ARM_JOINTS) + [names.GRIPPER_JOINT],
                             position=[float(v) for v in joints] + [knuckle],
                             velocity=[float(v) for v in velocities] + [0.0])
            msg.header.stamp = stamp
            self._joint_pub.publish(msg)
        info = EpisodeInfo(episode_id=self._episode_id, task=self._spec.task, instruction=self._spec.instruction,
                           variation=self._spec.variation, seed=self._spec.seed, step=self._step,
                           success=success)
        info.header.stamp = stamp
        self._episode_pub.publish(info)

    def _on_camera_tick(self) -> None:
        try:
            with self.cell.lock:
                images = {cam: self.cell.render(cam) for cam in self._camera_pubs}
        except RuntimeError as error:
            # No usable OpenGL: keep simulating and publishing state, without images.
            self.get_logger().error(f"camera rendering failed, cameras disabled: {error}")
            self._camera_timer.cancel()
            return
        stamp = self.get_clock().now().to_msg()
        for cam, (image_pub, info_pub, camera) in self._camera_pubs.items():
            image_pub.publish(rgb_to_image_msg(images[cam], camera.encoding, camera.frame_id, stamp))
            info_pub.publish(camera_info_msg(self._intrinsics[cam], camera.frame_id, stamp))

    # --- service -------------------------------------------------------------------------------
    def _on_reset(self, request: ResetEpisode.Request, response: ResetEpisode.Response) -> ResetEpisode.Response:
        if len(request.task) > MAX_NAME_LENGTH or len(request.variation) > MAX_NAME_LENGTH:
            response.success = False
            response.message = f"task/variation names longer than {MAX_NAME_LENGTH} characters are rejected"
            return response
        task = request.task
        if not task:
            task = self._task_names[self._task_cursor % len(self._task_names)]
            self._task_cursor += 1
        variation = request.variation or "default"
        seed = request.seed if request.seed >= 0 else self._seed_source.randrange(2**31)
        try:
            with self.cell.lock:
                spec = self.cell.reset(task, seed, variation)
        except ValueError as error:
            response.success = False
            response.message = str(error)
            self.get_logger().warning(f"reset_episode rejected: {error}")
            return response
        self._spec, self._step = spec, 0
        self._episode_id += 1
        response.success = True
        response.message = f"episode {self._episode_id}: {spec.task} ({spec.variation}), seed {spec.seed}"
        response.task, response.instruction, response.seed = spec.task, spec.instruction, spec.seed
        return response

    def destroy_node(self) -> None:
        cell = getattr(self, "cell", None)  # absent when construction failed on bad parameters
        if cell is not None:
            with cell.lock:
                cell.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_nodes("twin_bridge", TwinBridge, args)


if __name__ == "__main__":
    sys.exit(main())
