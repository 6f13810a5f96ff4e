"""The Kinova driver's ``simpler`` backend: the driver's safety layer (clamps, workspace box, watchdog, e-stop)
in front of a SimplerEnv robot (Google Robot or WidowX). It only holds commands and reads state; the
simpler_bridge node steps the env. Registered as a robovlms_drivers backend plug-in by this package's setup.py."""
from __future__ import annotations

import numpy as np

from robovlms_drivers.kinova.backend import ArmBackend, ArmState, BackendUnavailable, Frame
from robovlms_io.names import ARM_JOINTS, KNUCKLE_CLOSED_RAD
from robovlms_io.rotations import quaternion_to_matrix


class SimplerBackend(ArmBackend):
    """Drives the SimplerCell hosted by the simpler_bridge in the same process (simpler_cell executable)."""

    name = "simpler"

    def __init__(self, cell) -> None:
        self.cell = cell

    @classmethod
    def from_parameters(cls, params) -> "SimplerBackend":
        raise BackendUnavailable("the simpler backend runs next to the simpler_bridge in one process: start "
                                 "`ros2 run robovlms_simpler simpler_cell` (or simpler.launch.py), not the driver alone")

    def connect(self) -> None:
        """The env is already up (the bridge built it)."""

    def send_twist(self, linear: np.ndarray, angular: np.ndarray, frame: Frame = Frame.BASE) -> None:
        linear, angular = np.asarray(linear, float), np.asarray(angular, float)
        with self.cell.lock:
            if frame is Frame.TOOL:  # the env's actions are along the robot base's axes
                rotation = quaternion_to_matrix(self.cell.observation.tcp_quaternion)
                linear, angular = rotation @ linear, rotation @ angular
            self.cell.set_twist(linear, angular)

    def send_gripper(self, closure: float) -> None:
        with self.cell.lock:
            self.cell.set_gripper(closure)

    def stop(self) -> None:
        with self.cell.lock:
            self.cell.set_twist(np.zeros(3), np.zeros(3))

    def clear_faults(self) -> None:
        """SimplerEnv has no controller faults."""

    def read_state(self) -> ArmState:
        with self.cell.lock:
            obs = self.cell.observation
        # joint_states names the Gen3's 7 arm joints: the Google Robot's 7, the WidowX's 6 padded with 0. The
        # gripper closedness goes out as the suite's gripper joint.
        joints = np.zeros(len(ARM_JOINTS))
        arm = np.ravel(obs.joints)[:len(ARM_JOINTS)]
        joints[:len(arm)] = arm
        return ArmState(joint_positions=joints, gripper_position=obs.gripper_closure * KNUCKLE_CLOSED_RAD,
                        ee_position=obs.tcp_position, ee_quaternion=obs.tcp_quaternion)

    def close(self) -> None:
        self.stop()
