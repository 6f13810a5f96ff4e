"""Simulated cell: the MuJoCo twin and the Kinova driver on the sim backend share one simulator in one
process (`kinova_sim_cell`, from robovlms_twin), plus the policy node and, with record:=true, the trial recorder.
The twin publishes the camera images on the real cameras' topics, so the policy node is configured identically.

    ros2 launch robovlms_bringup kinova_sim.launch.py                      # the shipped twin_default policy
    ros2 launch robovlms_bringup kinova_sim.launch.py checkpoint:=/path/to/ckpt record:=true

Arguments are checked before any process starts (see kinova_real.launch.py).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from robovlms_io.launch_support import BOOLEAN_CHOICES, checkpoint_problem, string_parameters_file
from robovlms_policy.vla.runtimes import RUNTIMES


def generate_launch_description() -> LaunchDescription:
    default_checkpoint = PathJoinSubstitution([FindPackageShare("robovlms_policy"), "checkpoints", "twin_default"])
    arguments = [
        DeclareLaunchArgument("checkpoint", default_value=default_checkpoint,
                              description="Policy checkpoint directory (default: the shipped twin_default)."),
        DeclareLaunchArgument("runtime", default_value="eager", choices=list(RUNTIMES),
                              description="Policy inference runtime (onnx: a checkpoint written by robovlms-export)."),
        DeclareLaunchArgument("record", default_value="false", choices=list(BOOLEAN_CHOICES),
                              description="Also start the trial recorder."),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])


def _nodes(context):
    checkpoint = LaunchConfiguration("checkpoint").perform(context)
    runtime = LaunchConfiguration("runtime").perform(context)
    problem = checkpoint_problem(checkpoint)
    if problem:
        raise RuntimeError(f"kinova_sim.launch.py: {problem}")
    config_dir = PathJoinSubstitution([FindPackageShare("robovlms_bringup"), "config"])
    twin_yaml = PathJoinSubstitution([config_dir, "twin.yaml"])
    driver_yaml = PathJoinSubstitution([config_dir, "kinova_driver.yaml"])
    policy_yaml = PathJoinSubstitution([config_dir, "policy_node.yaml"])
    recorder_yaml = PathJoinSubstitution([config_dir, "trial_recorder.yaml"])
    return [
        # One process hosts the twin bridge node and the driver node (sim backend) on one KinovaCell. No `name`
        # here: it would rename both nodes of the process; the YAMLs address each node by its own name.
        Node(package="robovlms_twin", executable="kinova_sim_cell", output="screen",
             parameters=[driver_yaml, twin_yaml]),  # twin.yaml's driver section (sim speeds) wins
        Node(package="robovlms_policy", executable="policy_node", name="policy_node", output="screen",
             parameters=[policy_yaml, string_parameters_file("policy_node", {"checkpoint": checkpoint,
                                                                              "runtime": runtime})]),
        Node(package="robovlms_policy", executable="trial_recorder", name="trial_recorder", output="screen",
             parameters=[recorder_yaml], condition=IfCondition(LaunchConfiguration("record"))),
    ]
