"""Scripted-expert commander: publishes the twin's expert actions where the policy node would.

It follows the policy node's protocol: it acts while an instruction is set on /instruction (volatile or the
trial recorder's latched one) and idles when the instruction is empty, publishing one EndEffectorCommand and
one PolicyStatus per control period on the same topics. The expert reads privileged simulator state, so it only
exists next to the twin (in the demo's process).
"""
from __future__ import annotations

from rclpy.node import Node
from std_msgs.msg import String

from robovlms_io import names, qos
from robovlms_io.commands import end_effector_command, period_duration
from robovlms_io.instructions import normalize_instruction
from robovlms_msgs.msg import EndEffectorCommand, PolicyStatus
from robovlms_twin.cell import KinovaCell


class ExpertCommander(Node):
    """Publishes ``cell.expert_action()`` at the control rate while an instruction is active."""

    def __init__(self, cell: KinovaCell, control_rate_hz: float = 10.0, **node_kwargs) -> None:
        super().__init__("expert_commander", **node_kwargs)
        self._cell = cell
        self._period = 1.0 / control_rate_hz
        self._period_msg = period_duration(self._period)
        self._instruction = ""
        self._last_tick: float | None = None
        self._publisher = self.create_publisher(EndEffectorCommand, names.COMMAND_TOPIC, qos.COMMAND)
        self._status = self.create_publisher(PolicyStatus, names.POLICY_STATUS_TOPIC, qos.RELIABLE)
        for instruction_qos in (qos.RELIABLE, qos.LATCHED):
            self.create_subscription(String, names.INSTRUCTION_TOPIC, self._on_instruction, instruction_qos)
        self.create_timer(self._period, self._on_tick)

    def _on_instruction(self, msg: String) -> None:
        self._instruction = normalize_instruction(msg.data)

    def _on_tick(self) -> None:
        now = self.get_clock().now()
        tick_period = 0.0 if self._last_tick is None else (now.nanoseconds - self._last_tick) / 1e9
        self._last_tick = now.nanoseconds
        status = PolicyStatus(state=PolicyStatus.STATE_RUNNING if self._instruction else PolicyStatus.STATE_IDLE,
                              instruction=self._instruction, target_period=self._period, tick_period=tick_period)
        status.header.stamp = now.to_msg()
        self._status.publish(status)
        if not self._instruction:
            return
        with self._cell.lock:
            delta_position, delta_rotation, gripper = self._cell.expert_action()
        self._publisher.publish(end_effector_command([*delta_position, *delta_rotation], gripper, names.BASE_FRAME,
                                                     self.get_clock().now().to_msg(), self._period_msg))
