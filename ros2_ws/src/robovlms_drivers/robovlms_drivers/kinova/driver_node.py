"""ROS 2 node `kinova_driver`: end-effector commands in; joint states, end-effector pose and driver status
out; e-stop and fault services. All decisions are made by DriverCore; this module is ROS plumbing."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, HistoryPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from robovlms_drivers.kinova.backend import GRIPPER_JOINT_NAME, JOINT_NAMES, ArmBackend, BackendUnavailable
from robovlms_drivers.kinova.conversions import MotionLimits, WorkspaceBox
from robovlms_drivers.kinova.driver_core import DriverCore, SafetyConfig
from robovlms_drivers.params import declare_config, describe
from robovlms_msgs.msg import DriverStatus, EndEffectorCommand

BACKENDS = ("kortex", "sim")
MIN_CONTROL_RATE = 50.0  # Hz; the watchdog must resolve well below its 0.2 s default


@dataclass
class DriverConfig:
    """Parameters of `kinova_driver` (names, defaults and descriptions are the ROS parameters)."""

    backend: str = describe("sim", "Arm backend: 'kortex' (real Gen3 via kortex_api) or 'sim' (MuJoCo twin).")
    robot_ip: str = describe("192.168.1.10", "Kortex backend: IP address of the Gen3 arm.")
    robot_port: int = describe(10000, "Kortex backend: TCP port of the Kortex API.")
    username: str = describe("admin", "Kortex backend: session user name.")
    password: str = describe("admin", "Kortex backend: session password.")
    control_rate: float = describe(50.0, "Hz of the control/watchdog/feedback loop (>= 50).")
    watchdog_timeout: float = describe(0.2, "s without a valid command before the arm is stopped (WATCHDOG).")
    max_linear_speed: float = describe(0.1, "m/s clamp on the end-effector linear speed (norm).")
    max_angular_speed: float = describe(0.5, "rad/s clamp on the end-effector angular speed (norm).")
    refuse_factor: float = describe(10.0, "Commands faster than this many times a clamp are refused, not clamped.")
    max_period: float = describe(1.0, "s; commands whose period is <= 0 or above this are refused.")
    workspace_min: tuple = describe((0.15, -0.50, 0.01), "m; lower x, y, z corner of the allowed EE box in base_link.")
    workspace_max: tuple = describe((0.80, 0.50, 0.60), "m; upper x, y, z corner of the allowed EE box in base_link.")
    gripper_close_threshold: float = describe(0.6, "Closure above which an open gripper is commanded closed.")
    gripper_open_threshold: float = describe(0.4, "Closure below which a closed gripper is commanded open.")
    gripper_open_position: float = describe(0.0, "Robotiq position (0..1) sent to open the gripper.")
    gripper_closed_position: float = describe(1.0, "Robotiq position (0..1) sent to close the gripper.")
    base_frame_id: str = describe("base_link", "frame_id of the published end-effector pose.")
    command_topic: str = describe("ee_command", "EndEffectorCommand input topic.")
    joint_states_topic: str = describe("joint_states", "sensor_msgs/JointState output topic.")
    ee_pose_topic: str = describe("ee_pose", "geometry_msgs/PoseStamped output topic (base_link).")
    status_topic: str = describe("driver_status", "robovlms_msgs/DriverStatus output topic.")
    estop_topic: str = describe("estop", "std_msgs/Bool latched e-stop input; true latches, false is ignored.")

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.control_rate < MIN_CONTROL_RATE:
            raise ValueError(f"control_rate must be >= {MIN_CONTROL_RATE} Hz, got {self.control_rate}")
        if not 0.0 < self.watchdog_timeout <= 1.0:
            raise ValueError(f"watchdog_timeout must be in (0, 1] s, got {self.watchdog_timeout}")
        if min(self.max_linear_speed, self.max_angular_speed, self.refuse_factor - 1.0, self.max_period) <= 0:
            raise ValueError("speed clamps and max_period must be > 0 and refuse_factor > 1")

    def safety(self) -> SafetyConfig:
        return SafetyConfig(
            limits=MotionLimits(self.max_linear_speed, self.max_angular_speed, self.refuse_factor, self.max_period),
            workspace=WorkspaceBox(tuple(self.workspace_min), tuple(self.workspace_max)),
            watchdog_timeout=self.watchdog_timeout,
            tick_period=1.0 / self.control_rate,
            gripper_close_threshold=self.gripper_close_threshold,
            gripper_open_threshold=self.gripper_open_threshold,
            gripper_open_position=self.gripper_open_position,
            gripper_closed_position=self.gripper_closed_position,
        )


def build_backend(config: DriverConfig) -> ArmBackend:
    """Construct (not connect) the backend named by the `backend` parameter."""
    if config.backend == "kortex":
        from robovlms_drivers.kinova.kortex_backend import KortexBackend, KortexConfig

        return KortexBackend(KortexConfig(config.robot_ip, config.robot_port, config.username, config.password))
    from robovlms_drivers.kinova.sim_backend import SimBackend

    return SimBackend(control_rate=config.control_rate)


class KinovaDriverNode(Node):
    """Drives a Kinova Gen3 + Robotiq 2F-85 through an ArmBackend (injected, or built from `backend`)."""

    def __init__(self, backend: ArmBackend | None = None, node_name: str = "kinova_driver", **node_kwargs) -> None:
        super().__init__(node_name, **node_kwargs)
        self.config = declare_config(self, DriverConfig)
        self.config.validate()
        safety = self.config.safety()  # before connecting: bad limits must not leave a backend running
        self.backend = backend if backend is not None else build_backend(self.config)
        self.backend.connect()
        self.core = DriverCore(self.backend, safety)
        self.core.tick(self._now())  # read the arm once before any command can arrive

        cfg = self.config
        command_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
        latched_qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(EndEffectorCommand, cfg.command_topic, self._on_command, command_qos)
        self.create_subscription(Bool, cfg.estop_topic, self._on_estop_topic, latched_qos)
        self._joint_pub = self.create_publisher(JointState, cfg.joint_states_topic, 10)
        self._pose_pub = self.create_publisher(PoseStamped, cfg.ee_pose_topic, 10)
        self._status_pub = self.create_publisher(DriverStatus, cfg.status_topic, 10)
        self.create_service(Trigger, "driver/estop", self._on_estop_service)
        self.create_service(Trigger, "driver/reset_estop", self._on_reset_estop)
        self.create_service(Trigger, "driver/clear_faults", self._on_clear_faults)
        self.create_timer(1.0 / cfg.control_rate, self._on_tick)
        self.get_logger().info(f"kinova_driver up: backend={self.backend.name}, {cfg.control_rate:g} Hz, "
                               f"watchdog {cfg.watchdog_timeout:g} s")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_command(self, msg: EndEffectorCommand) -> None:
        period = msg.period.sec + msg.period.nanosec * 1e-9
        reason = self.core.handle_command(
            (msg.delta_position.x, msg.delta_position.y, msg.delta_position.z),
            (msg.delta_rotation.x, msg.delta_rotation.y, msg.delta_rotation.z),
            msg.gripper, period, msg.header.frame_id, self._now())
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
        joints.name = [*JOINT_NAMES, GRIPPER_JOINT_NAME]
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
    rclpy.init(args=args)
    node = None
    try:
        node = KinovaDriverNode()
        rclpy.spin(node)
    except (BackendUnavailable, ValueError) as err:
        print(f"kinova_driver: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
