"""ROS 2 node `kinova_driver`: end-effector commands in; joint states, end-effector pose and driver status
out; e-stop and fault services. All decisions are made by DriverCore; this module is ROS plumbing."""
from __future__ import annotations

import sys
from dataclasses import dataclass

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from robovlms_drivers.kinova.backend import ArmBackend, load_backend
from robovlms_drivers.kinova.driver_core import DriverCore, SafetyConfig
from robovlms_drivers.kinova.safety import MotionLimits, WorkspaceBox
from robovlms_io import names, qos
from robovlms_io.commands import parse_command
from robovlms_io.params import declare_params, param
from robovlms_io.spin import run_nodes
from robovlms_msgs.msg import DriverStatus, EndEffectorCommand

MIN_CONTROL_RATE = 50.0  # Hz; the watchdog must resolve well below its 0.2 s default


@dataclass(frozen=True)
class DriverParams:
    """Parameters of `kinova_driver`."""

    backend: str = param("sim", "Arm backend plug-in: 'kortex' (real Gen3 via kortex_api), 'sim' (the MuJoCo "
                                "twin, installed with robovlms_twin), 'calvin' (robovlms_calvin's calvin_cell) or "
                                "'simpler' (robovlms_simpler's simpler_cell).")
    robot_ip: str = param("192.168.1.10", "Kortex backend: IP address of the Gen3 arm.")
    robot_port: int = param(10000, "Kortex backend: TCP port of the Kortex API.", low=1, high=65535)
    username: str = param("admin", "Kortex backend: session user name.")
    password: str = param("admin", "Kortex backend: session password.")
    control_rate: float = param(50.0, "Hz of the control/watchdog/feedback loop.", low=MIN_CONTROL_RATE)
    watchdog_timeout: float = param(0.2, "s without a valid command before the arm is stopped (WATCHDOG).",
                                    positive=True, high=1.0)
    max_linear_speed: float = param(0.1, "m/s clamp on the end-effector linear speed (norm).", positive=True)
    max_angular_speed: float = param(0.5, "rad/s clamp on the end-effector angular speed (norm).", positive=True)
    refuse_factor: float = param(10.0, "Commands faster than this many times a clamp are refused, not clamped.",
                                 check=(lambda v: v > 1.0, "> 1"))
    max_period: float = param(1.0, "s; commands whose period is <= 0 or above this are refused.", positive=True)
    workspace_min: tuple = param((0.15, -0.50, 0.01), "m; lower x, y, z corner of the allowed TCP box in base_link.")
    workspace_max: tuple = param((0.80, 0.50, 0.60), "m; upper x, y, z corner of the allowed TCP box in base_link.")
    workspace_lag: float = param(0.1, "s the arm may lag its commands (twice the 45-50 ms measured on the Gen3 and "
                                      "the twin); faces of the box are approached slowly enough to stop in time "
                                      "despite it.", low=0.0)
    workspace_deceleration: float = param(1.0, "m/s^2 the arm decelerates at when approaching a face of the box.",
                                          positive=True)
    gripper_close_threshold: float = param(0.6, "Closure above which an open gripper is commanded closed.",
                                           low=0.0, high=1.0)
    gripper_open_threshold: float = param(0.4, "Closure below which a closed gripper is commanded open.",
                                          low=0.0, high=1.0)
    gripper_open_position: float = param(0.0, "Robotiq position (0..1) sent to open the gripper.", low=0.0, high=1.0)
    gripper_closed_position: float = param(1.0, "Robotiq position (0..1) sent to close the gripper.",
                                           low=0.0, high=1.0)
    base_frame_id: str = param(names.BASE_FRAME, "frame_id of the published end-effector pose.")
    command_topic: str = param(names.COMMAND_TOPIC, "EndEffectorCommand input topic.")
    joint_states_topic: str = param(names.JOINT_STATES_TOPIC, "sensor_msgs/JointState output topic.")
    ee_pose_topic: str = param(names.EE_POSE_TOPIC, "geometry_msgs/PoseStamped output topic (base_link).")
    status_topic: str = param(names.DRIVER_STATUS_TOPIC, "robovlms_msgs/DriverStatus output topic.")
    estop_topic: str = param(names.ESTOP_TOPIC, "std_msgs/Bool latched e-stop input; true latches, false is "
                                                "ignored.")

    def safety(self) -> SafetyConfig:
        """The safety layer's configuration; ValueError when the limits contradict each other."""
        return SafetyConfig(
            limits=MotionLimits(self.max_linear_speed, self.max_angular_speed, self.refuse_factor, self.max_period),
            workspace=WorkspaceBox(tuple(self.workspace_min), tuple(self.workspace_max), self.workspace_lag,
                                   self.workspace_deceleration),
            watchdog_timeout=self.watchdog_timeout,
            tick_period=1.0 / self.control_rate,
            gripper_close_threshold=self.gripper_close_threshold,
            gripper_open_threshold=self.gripper_open_threshold,
            gripper_open_position=self.gripper_open_position,
            gripper_closed_position=self.gripper_closed_position,
        )


class KinovaDriverNode(Node):
    """Drives a Kinova Gen3 + Robotiq 2F-85 through an ArmBackend (injected, or built from `backend`)."""

    def __init__(self, backend: ArmBackend | None = None, node_name: str = "kinova_driver", **node_kwargs) -> None:
        super().__init__(node_name, **node_kwargs)
        self.config = declare_params(self, DriverParams)
        safety = self.config.safety()  # before connecting: bad limits must not leave a backend running
        self.backend = backend if backend is not None else load_backend(self.config.backend).from_parameters(
            self.config)
        self.backend.connect()
        self.core = DriverCore(self.backend, safety)
        self.core.tick(self._now())  # read the arm once before any command can arrive

        cfg = self.config
        self.create_subscription(EndEffectorCommand, cfg.command_topic, self._on_command, qos.COMMAND)
        self.create_subscription(Bool, cfg.estop_topic, self._on_estop_topic, qos.LATCHED)
        self._joint_pub = self.create_publisher(JointState, cfg.joint_states_topic, qos.RELIABLE)
        self._pose_pub = self.create_publisher(PoseStamped, cfg.ee_pose_topic, qos.RELIABLE)
        self._status_pub = self.create_publisher(DriverStatus, cfg.status_topic, qos.RELIABLE)
        self.create_service(Trigger, "driver/estop", self._on_estop_service)
        self.create_service(Trigger, "driver/reset_estop", self._on_reset_estop)
        self.create_service(Trigger, "driver/clear_faults", self._on_clear_faults)
        self.create_timer(1.0 / cfg.control_rate, self._on_tick)
        self.get_logger().info(f"kinova_driver up: backend={self.backend.name}, {cfg.control_rate:g} Hz, "
                               f"watchdog {cfg.watchdog_timeout:g} s")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_command(self, msg: EndEffectorCommand) -> None:
        reason = self.core.handle_command(parse_command(msg), self._now())
        if reason is not None:
            self.get_logger().warning(f"command refused, arm holds: {reason}", throttle_duration_sec=1.0)

    def _on_estop_topic(self, msg: Bool) -> None:
        if msg.data:
            self.core.trigger_estop()
            self.get_logger().error("E-STOP latched from topic; call driver/reset_estop to resume")
        else:
            self.get_logger().info("estop=false ignored: only driver/reset_estop unlatches", once=True)

    def _on_estop_service(self, _request, response):
        self.core.trigger_estop()
        self.get_logger().error("E-STOP latched from service; call driver/reset_estop to resume")
        response.success, response.message = True, "e-stop latched"
        return response

    def _on_reset_estop(self, _request, response):
        response.message = self.core.reset_estop()
        response.success = True
        self.get_logger().info(response.message)
        return response

    def _on_clear_faults(self, _request, response):
        response.success, response.message = self.core.clear_faults()
        return response

    def _on_tick(self) -> None:
        now = self.get_clock().now()
        self.core.tick(now.nanoseconds * 1e-9)
        self._publish_feedback(now.to_msg(), now.nanoseconds * 1e-9)

    def _publish_feedback(self, stamp, now_s: float) -> None:
        arm = self.core.arm_state
        joints = JointState()
        joints.header.stamp = stamp
        joints.name = [*names.ARM_JOINTS, names.GRIPPER_JOINT]
        joints.position = [float(q) for q in arm.joint_positions] + [float(arm.gripper_position)]
        self._joint_pub.publish(joints)

        pose = PoseStamped()
        pose.header.stamp = stamp
        pose.header.frame_id = self.config.base_frame_id
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in arm.ee_position)
        o = pose.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in arm.ee_quaternion)
        self._pose_pub.publish(pose)

        snap = self.core.status(now_s)
        status = DriverStatus()
        status.header.stamp = stamp
        status.state = snap.state
        status.backend = self.backend.name
        status.command_age = float(snap.command_age)
        status.estop_latched = snap.estop_latched
        status.rejected_commands = snap.rejected_commands
        status.last_rejection = snap.last_rejection
        status.fault = snap.fault
        status.gripper_closed = snap.gripper_closed
        self._status_pub.publish(status)

    def destroy_node(self) -> None:
        self.backend.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_nodes("kinova_driver", KinovaDriverNode, args)


if __name__ == "__main__":
    sys.exit(main())
