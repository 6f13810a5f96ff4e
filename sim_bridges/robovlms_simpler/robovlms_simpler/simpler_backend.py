"""The Kinova driver's ``simpler`` backend: the driver's safety layer in front of a SimplerEnv robot (Google
Robot or WidowX) that the simpler_bridge hosts and steps. Registered as a robovlms_drivers backend plug-in by
this package's setup.py."""
from __future__ import annotations

import numpy as np

from robovlms_drivers.kinova.backend import ArmState
from robovlms_drivers.kinova.hosted_cell import HostedCellBackend
from robovlms_io.names import ARM_JOINTS, KNUCKLE_CLOSED_RAD
from robovlms_io.rotations import quaternion_to_matrix


class SimplerBackend(HostedCellBackend):
    """Drives the SimplerCell hosted by the simpler_bridge in the same process (simpler_cell executable)."""

    name = "simpler"
    cell_executable = "ros2 run robovlms_simpler simpler_cell"
    launch_file = "simpler.launch.py"

    def tool_rotation(self) -> np.ndarray:
        return quaternion_to_matrix(self.cell.observation.tcp_quaternion)

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
