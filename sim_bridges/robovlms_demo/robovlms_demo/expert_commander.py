"""Scripted-expert commander: publishes the twin's expert actions where the policy node would.

It follows the policy node's protocol: it acts while an instruction is set on /instruction and idles when the
instruction is empty, publishing one EndEffectorCommand per control period on the same topic. The expert reads
privileged simulator state, so it only exists next to the twin (in the demo's process).
"""
from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from robovlms_msgs.msg import EndEffectorCommand
from robovlms_policy.node.commands import end_effector_command, period_duration
from robovlms_twin.cell import KinovaCell

COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


class ExpertCommander(Node):
    """Publishes ``cell.expert_action()`` at the control rate while an instruction is active."""

    def __init__(self, cell: KinovaCell, control_rate_hz: float = 10.0, **node_kwargs) -> None:
        super().__init__("expert_commander", **node_kwargs)
        self._cell = cell
        self._period = 1.0 / control_rate_hz
        self._period_msg = period_duration(self._period)
        self._active = False
        self._publisher = self.create_publisher(EndEffectorCommand, "ee_command", COMMAND_QOS)
        self.create_subscription(String, "/instruction", self._on_instruction, 10)
        self.create_timer(self._period, self._on_tick)

    def _on_instruction(self, msg: String) -> None:
        self._active = bool(msg.data.strip())

    def _on_tick(self) -> None:
        if not self._active:
            return
        with self._cell.lock:
            delta_position, delta_rotation, gripper = self._cell.expert_action()
        self._publisher.publish(end_effector_command([*delta_position, *delta_rotation], gripper, "base_link",
                                                     self.get_clock().now().to_msg(), self._period_msg))
