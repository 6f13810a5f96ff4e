"""CALVIN cell: calvin_bridge and the Kinova driver on the calvin backend in one process (`calvin_cell`, from
robovlms_calvin), plus the policy node and, with record:=true, the trial recorder. The bridge publishes CALVIN's
cameras on the real cameras' topics, so the policy node is configured as for the real cell.

    ros2 launch robovlms_bringup calvin.launch.py checkpoint:=/path/to/calvin_ckpt \
        calvin_env_dir:=$HOME/calvin_env calvin_dir:=$HOME/calvin

The protocol (chains of 5 subtasks) is driven through reset_episode; `robovlms-calvin-eval run` does that.
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
    arguments = [
        DeclareLaunchArgument("checkpoint", description="CALVIN-trained policy checkpoint directory."),
        DeclareLaunchArgument("calvin_env_dir", default_value="", description="calvin_env checkout (data/, conf/)."),
        DeclareLaunchArgument("runtime", default_value="eager", choices=list(RUNTIMES),
                              description="Policy inference runtime (onnx: a checkpoint written by robovlms-export)."),
        DeclareLaunchArgument("calvin_dir", default_value="", description="mees/calvin checkout (instructions)."),
        DeclareLaunchArgument("record", default_value="false", choices=list(BOOLEAN_CHOICES),
                              description="Also start the trial recorder."),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])


def _nodes(context):
    checkpoint = LaunchConfiguration("checkpoint").perform(context)
    runtime = LaunchConfiguration("runtime").perform(context)
    problem = checkpoint_problem(checkpoint)
    if problem:
        raise RuntimeError(f"calvin.launch.py: {problem}")
    config_dir = PathJoinSubstitution([FindPackageShare("robovlms_bringup"), "config"])
    paths = {name: LaunchConfiguration(name).perform(context) for name in ("calvin_env_dir", "calvin_dir")}
    return [
        # No `name`: it would rename both nodes of the process; the YAMLs address each node by its own name.
        Node(package="robovlms_calvin", executable="calvin_cell", output="screen",
             parameters=[PathJoinSubstitution([config_dir, "kinova_driver.yaml"]),
                         PathJoinSubstitution([config_dir, "calvin.yaml"]),
                         string_parameters_file("calvin_bridge", {k: v for k, v in paths.items() if v})]),
        Node(package="robovlms_policy", executable="policy_node", name="policy_node", output="screen",
             parameters=[PathJoinSubstitution([config_dir, "policy_node.yaml"]),
                         string_parameters_file("policy_node", {"checkpoint": checkpoint, "runtime": runtime})]),
        Node(package="robovlms_policy", executable="trial_recorder", name="trial_recorder", output="screen",
             parameters=[PathJoinSubstitution([config_dir, "trial_recorder.yaml"])],
             condition=IfCondition(LaunchConfiguration("record"))),
    ]
