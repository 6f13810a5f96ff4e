"""twin_bridge: steps the MuJoCo twin at the control rate and publishes it like the real cell.

Cameras go out on the real drivers' topics, encodings and frame ids (Azure Kinect: bgra8 on
/rgb/image_raw; RealSense: rgb8 on /camera/camera/color/image_raw), joints on joint_states, the
episode on episode_info; reset_episode starts a new seeded episode. The node can wrap an existing
KinovaCell so the driver's sim backend and this bridge share one simulation in one process; every
cell call holds ``cell.lock``. This node owns physics stepping; the driver only sets commands.
"""
from __future__ import annotations

import math
import random

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from robovlms_msgs.msg import EpisodeInfo
from robovlms_msgs.srv import ResetEpisode
from sensor_msgs.msg import CameraInfo, Image, JointState

from robovlms_policy.node.image_conversion import rgb_to_image_msg
from robovlms_twin.cell import CellConfig, KinovaCell
from robovlms_twin.model_builder import ARM_JOINTS

GRIPPER_JOINT = "robotiq_85_left_knuckle_joint"
MAX_NAME_LENGTH = 256
# camera -> (image topic parameter default, info topic default, encoding, frame id)
CAMERA_OUTPUTS = {
    "static": ("/rgb/image_raw", "/rgb/camera_info", "bgra8", "rgb_camera_link"),
    "wrist": ("/camera/camera/color/image_raw", "/camera/camera/color/camera_info", "rgb8",
              "camera_color_optical_frame"),
}
SENSOR_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=5)
STATE_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=10)


def camera_info_message(matrix: np.ndarray, width: int, height: int) -> CameraInfo:
    """Distortion-free CameraInfo for a pinhole camera matrix."""
    fx, fy, cx, cy = matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2]
    return CameraInfo(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[float(v) for v in matrix.ravel()], r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0])


class TwinBridge(Node):
    """ROS face of a KinovaCell (creates its own unless ``cell`` is given)."""

    def __init__(self, cell: KinovaCell | None = None, **node_kwargs):
        super().__init__(node_kwargs.pop("node_name", "twin_bridge"), **node_kwargs)
        self._declare_parameters()
        p = {name: self.get_parameter(name).value for name in self._parameter_names}
        self._validate(p)
        self.control_period = 1.0 / p["control_rate"]
        if cell is None:
            cell = KinovaCell(CellConfig(image_size=p["image_size"], image_width=p["image_width"] or None,
                                         image_height=p["image_height"] or None,
                                         control_period=self.control_period))
        self.cell = cell
        self._step = 0
        self._task_cursor = 0
        self._seed_source = random.SystemRandom()
        with self.cell.lock:
            self._spec = self.cell.reset(p["task"], p["seed"], p["variation"])
            self._task_names = self.cell.task_names
            self._infos = {cam: camera_info_message(self.cell.camera_matrix(cam), self.cell.config.width,
                                                    self.cell.config.height) for cam in CAMERA_OUTPUTS}
        self._episode_id = 1

        self._joint_pub = self.create_publisher(JointState, p["joint_states_topic"], STATE_QOS) \
            if p["publish_joint_states"] else None
        self._episode_pub = self.create_publisher(EpisodeInfo, p["episode_info_topic"], STATE_QOS)
        self._camera_pubs = {}
        if p["publish_cameras"]:
            for cam, (image_default, info_default, encoding, frame) in CAMERA_OUTPUTS.items():
                self._camera_pubs[cam] = (
                    self.create_publisher(Image, p[f"{cam}_image_topic"], SENSOR_QOS),
                    self.create_publisher(CameraInfo, p[f"{cam}_info_topic"], SENSOR_QOS), encoding, frame)
            self._camera_timer = self.create_timer(1.0 / p["camera_rate"], self._on_camera_tick)
        self.create_service(ResetEpisode, p["reset_service"], self._on_reset)
        self.create_timer(self.control_period, self._on_control_tick)
        self.get_logger().info(
            f"twin ready: task {self._spec.task!r} ({self._spec.instruction!r}), control {p['control_rate']} Hz, "
            f"cameras {'on at ' + str(p['camera_rate']) + ' Hz' if p['publish_cameras'] else 'off'}")

    # --- parameters ----------------------------------------------------------------------------
    def _declare_parameters(self) -> None:
        specs = {
            "control_rate": (10.0, "Physics is advanced by 1/control_rate s per tick (Hz), like the real driver."),
            "camera_rate": (10.0, "Rate at which both cameras are rendered and published (Hz)."),
            "image_size": (224, "Side of the square rendered images (pixels), unless width/height are set."),
            "image_width": (0, "Rendered image width in pixels; 0 = image_size."),
            "image_height": (0, "Rendered image height in pixels; 0 = image_size."),
            "task": ("open_drawer", "Task of the first episode (see reset_episode for the list)."),
            "seed": (0, "Seed of the first episode's randomised initial state."),
            "variation": ("default",
                          "Variation of the first episode: default, unseen_colors, distractors, paraphrase."),
            "publish_cameras": (True, "Render and publish the Kinect and wrist RealSense images."),
            "publish_joint_states": (True, "Publish joint_states (disable when the driver's sim backend does)."),
            "joint_states_topic": ("joint_states", "JointState output topic."),
            "episode_info_topic": ("episode_info", "EpisodeInfo output topic (one message per control tick)."),
            "reset_service": ("reset_episode", "ResetEpisode service name."),
        }
        for cam, (image_topic, info_topic, encoding, _) in CAMERA_OUTPUTS.items():
            specs[f"{cam}_image_topic"] = (image_topic, f"{cam} camera image topic ({encoding}).")
            specs[f"{cam}_info_topic"] = (info_topic, f"{cam} camera CameraInfo topic.")
        for name, (default, description) in specs.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
        self._parameter_names = list(specs)

    def _validate(self, p: dict) -> None:
        for rate in ("control_rate", "camera_rate"):
            if not (math.isfinite(p[rate]) and 0.0 < p[rate] <= 1000.0):
                raise ValueError(f"parameter {rate} must be in (0, 1000] Hz, got {p[rate]}")
        for size in ("image_size", "image_width", "image_height"):
            minimum = 1 if size == "image_size" else 0
            if not minimum <= p[size] <= 4096:
                raise ValueError(f"parameter {size} must be in [{minimum}, 4096], got {p[size]}")

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
            msg = JointState(name=list(ARM_JOINTS) + [GRIPPER_JOINT],
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
        for cam, (image_pub, info_pub, encoding, frame) in self._camera_pubs.items():
            image = rgb_to_image_msg(images[cam], encoding, frame, stamp)
            info = self._infos[cam]
            info.header.stamp, info.header.frame_id = stamp, frame
            image_pub.publish(image)
            info_pub.publish(info)

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


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = TwinBridge()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as error:
        # Bad parameters: say which and exit non-zero instead of printing a traceback.
        rclpy.logging.get_logger("twin_bridge").fatal(str(error))
        raise SystemExit(1) from error
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    main()
