"""Bringup package checks without the `launch` package (not installable here): the launch files are parsed
with `ast`; every Node's package/executable must exist as a console script, every parameter file must
exist, and the YAMLs must load into the nodes that use them (real rclpy parameter-file handling)."""
from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "ros2_ws" / "src"
BRINGUP = SRC / "robovlms_bringup"
PACKAGE_DIRS = {
    "robovlms_drivers": SRC / "robovlms_drivers",
    "robovlms_policy": SRC / "robovlms_policy",
    "robovlms_twin": REPO / "sim_bridges" / "robovlms_twin",
    "robovlms_calvin": REPO / "sim_bridges" / "robovlms_calvin",
    "robovlms_simpler": REPO / "sim_bridges" / "robovlms_simpler",
}
# Official camera drivers: not part of this suite, only started with use_official_camera_drivers:=true.
OFFICIAL_NODES = {("realsense2_camera", "realsense2_camera_node"), ("azure_kinect_ros_driver", "node")}
# The benchmark bridges' evaluations read bringup's parameter files (they depend on bringup), so bringup cannot
# depend back on them; their launch files are for users who installed them.
BENCHMARK_CELLS = {("robovlms_calvin", "calvin_cell"), ("robovlms_simpler", "simpler_cell")}
LAUNCH_FILES = ["kinova_real.launch.py", "kinova_sim.launch.py", "calvin.launch.py", "simpler.launch.py"]


def console_scripts(setup_py: Path) -> set[str]:
    """Executable names from a setup.py's entry_points={"console_scripts": [...]}, read with ast."""
    tree = ast.parse(setup_py.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            entry_points = ast.literal_eval(node.value)
            return {line.split("=")[0].strip() for line in entry_points.get("console_scripts", [])}
    return set()


def launch_nodes(path: Path) -> list[dict]:
    """Each Node(...) call: its constant keyword arguments plus whether it has a condition."""
    nodes = []
    for call in ast.walk(ast.parse(path.read_text())):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node":
            info = {kw.arg: kw.value.value for kw in call.keywords if isinstance(kw.value, ast.Constant)}
            info["condition"] = next((ast.unparse(kw.value) for kw in call.keywords if kw.arg == "condition"), None)
            nodes.append(info)
    return nodes


def string_constants(path: Path) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def call_first_args(path: Path, function: str) -> set[str]:
    return {c.args[0].value for c in ast.walk(ast.parse(path.read_text()))
            if isinstance(c, ast.Call) and getattr(c.func, "id", None) == function and c.args
            and isinstance(c.args[0], ast.Constant)}


@pytest.mark.parametrize("launch_file", LAUNCH_FILES)
def test_launch_nodes_exist_as_executables(launch_file):
    nodes = launch_nodes(BRINGUP / "launch" / launch_file)
    assert nodes
    for node in nodes:
        key = (node["package"], node["executable"])
        if key in OFFICIAL_NODES:
            assert "use_official_camera_drivers" in node["condition"] or node["condition"].startswith("IfCondition")
            continue
        assert node["package"] in PACKAGE_DIRS, f"unknown package {node['package']}"
        scripts = console_scripts(PACKAGE_DIRS[node["package"]] / "setup.py")
        assert node["executable"] in scripts, f"{key} is not a console script of {node['package']}"


@pytest.mark.parametrize("launch_file", LAUNCH_FILES)
def test_launch_arguments_are_declared_and_parameter_files_exist(launch_file):
    path = BRINGUP / "launch" / launch_file
    declared = call_first_args(path, "DeclareLaunchArgument")
    used = call_first_args(path, "LaunchConfiguration")
    assert used <= declared, f"undeclared launch arguments: {used - declared}"
    for yaml_name in {s for s in string_constants(path) if s.endswith(".yaml")}:
        assert (BRINGUP / "config" / yaml_name).is_file(), f"{launch_file} references missing config/{yaml_name}"


def test_real_launch_arguments():
    declared = call_first_args(BRINGUP / "launch" / "kinova_real.launch.py", "DeclareLaunchArgument")
    assert {"robot_ip", "checkpoint", "realsense_serial", "azure_kinect_serial", "use_official_camera_drivers",
            "record"} <= declared
    executables = {n["executable"] for n in launch_nodes(BRINGUP / "launch" / "kinova_real.launch.py")}
    assert {"realsense_camera", "azure_kinect_camera", "kinova_driver", "policy_node", "trial_recorder"} <= executables
    sim = {n["executable"] for n in launch_nodes(BRINGUP / "launch" / "kinova_sim.launch.py")}
    assert {"kinova_sim_cell", "policy_node"} <= sim


def test_bringup_package_metadata():
    root = ET.parse(BRINGUP / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("license") == "Apache-2.0"
    depends = {e.text for e in root.iter("exec_depend")}
    for launch_file in LAUNCH_FILES:
        for node in launch_nodes(BRINGUP / "launch" / launch_file):
            if (node["package"], node["executable"]) not in OFFICIAL_NODES | BENCHMARK_CELLS:
                assert node["package"] in depends
    assert {"launch", "launch_ros"} <= depends
    setup_text = (BRINGUP / "setup.py").read_text()
    assert "launch/*.launch.py" in setup_text and "config/*.yaml" in setup_text


def _load_config(ros_context_args, node_name: str, config_cls):
    """Declare a node's parameters in a context started with --params-file and return the parsed config."""
    import rclpy
    from rclpy.node import Node

    from robovlms_io.params import declare_params

    context = rclpy.Context()
    rclpy.init(context=context, args=ros_context_args)
    try:
        node = Node(node_name, context=context)
        try:
            return declare_params(node, config_cls)
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.ros
@pytest.mark.parametrize("yaml_name, node_name, config_path", [
    ("kinova_driver.yaml", "kinova_driver", "robovlms_drivers.kinova.driver_node:DriverParams"),
    ("twin.yaml", "kinova_driver", "robovlms_drivers.kinova.driver_node:DriverParams"),
    ("cameras.yaml", "realsense_camera", "robovlms_drivers.cameras.realsense_node:RealSenseParams"),
    ("cameras.yaml", "azure_kinect_camera", "robovlms_drivers.cameras.azure_kinect_node:AzureKinectParams"),
    ("policy_node.yaml", "policy_node", "robovlms_policy.node.policy_node:PolicyNodeParams"),
    ("trial_recorder.yaml", "trial_recorder", "robovlms_policy.trials.trial_recorder_node:TrialRecorderParams"),
    ("twin.yaml", "twin_bridge", "robovlms_twin.twin_bridge_node:TwinBridgeParams"),
    ("calvin.yaml", "calvin_bridge", "robovlms_calvin.calvin_bridge_node:CalvinBridgeParams"),
    ("calvin.yaml", "kinova_driver", "robovlms_drivers.kinova.driver_node:DriverParams"),
    ("simpler.yaml", "simpler_bridge", "robovlms_simpler.simpler_bridge_node:SimplerBridgeParams"),
    ("simpler.yaml", "kinova_driver", "robovlms_drivers.kinova.driver_node:DriverParams"),
    ("simpler.yaml", "policy_node", "robovlms_policy.node.policy_node:PolicyNodeParams"),
])
def test_yaml_keys_match_declared_parameters(yaml_name, node_name, config_path):
    import importlib

    from robovlms_io.params import parameter_defaults

    module_name, class_name = config_path.split(":")
    config_cls = getattr(importlib.import_module(module_name), class_name)
    path = BRINGUP / "config" / yaml_name
    document = yaml.safe_load(path.read_text())
    sections = {key: value["ros__parameters"] for key, value in document.items()
                if key.rstrip("/").split("/")[-1] == node_name or key == "/**"}
    assert sections, f"{yaml_name} has no section for {node_name}"
    keys = set().union(*(s.keys() for s in sections.values()))
    unknown = keys - set(parameter_defaults(config_cls))
    assert not unknown, f"{yaml_name} sets parameters {node_name} does not declare: {unknown}"

    config = _load_config(["--ros-args", "--params-file", str(path)], node_name, config_cls)
    for section in sections.values():  # the node really receives the file's values, with the right types
        for key, value in section.items():
            got = getattr(config, key)
            assert (list(got) if isinstance(got, tuple) else got) == value, key
    if hasattr(config, "safety"):
        config.safety()


@pytest.mark.ros
@pytest.mark.parametrize("yaml_name, node_name", [("kinova_driver.yaml", "kinova_driver"),
                                                  ("cameras.yaml", "realsense_camera"),
                                                  ("cameras.yaml", "azure_kinect_camera")])
def test_yaml_section_names_reach_the_node(tmp_path, yaml_name, node_name):
    """The files mostly restate defaults, so prove their section keys address the node: change one
    string value in a copy and check the node receives it."""
    from robovlms_io.params import param

    document = yaml.safe_load((BRINGUP / "config" / yaml_name).read_text())
    key = next(k for k in document if k.rstrip("/").split("/")[-1] == node_name)
    section = document[key]["ros__parameters"]
    probe = next(name for name, value in section.items() if isinstance(value, str) and value)
    copy = tmp_path / yaml_name
    copy.write_text(yaml.safe_dump({key: {"ros__parameters": {**section, probe: "probe-value"}}}))
    import dataclasses

    probe_cls = dataclasses.make_dataclass("Probe", [(probe, str, param("", "probe"))])
    assert getattr(_load_config(["--ros-args", "--params-file", str(copy)], node_name, probe_cls),
                   probe) == "probe-value"


@pytest.mark.ros
def test_twin_yaml_matches_twin_bridge_parameters():
    import rclpy

    from robovlms_twin.twin_bridge_node import TwinBridge

    path = BRINGUP / "config" / "twin.yaml"
    document = yaml.safe_load(path.read_text())
    (key, section), = ((k, v["ros__parameters"]) for k, v in document.items() if k.endswith("twin_bridge"))
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "--params-file", str(path)])
    try:
        bridge = TwinBridge(context=context)
        try:
            for name, value in section.items():
                assert bridge.has_parameter(name), f"twin_bridge does not declare {name}"
                assert bridge.get_parameter(name).value == value, name
        finally:
            bridge.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def launch_arguments(path: Path) -> dict[str, dict]:
    """Each DeclareLaunchArgument: its default (constant, or None) and its choices (or None)."""
    found = {}
    for call in ast.walk(ast.parse(path.read_text())):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "DeclareLaunchArgument":
            keywords = {kw.arg: kw.value for kw in call.keywords}
            default = keywords.get("default_value")
            found[call.args[0].value] = {
                "default": default.value if isinstance(default, ast.Constant) else None,
                "choices": ast.unparse(keywords["choices"]) if "choices" in keywords else None}
    return found


@pytest.mark.parametrize("launch_file", LAUNCH_FILES)
def test_boolean_launch_arguments_are_validated_before_anything_starts(launch_file):
    """`record:=yes` must abort the launch at its argument, before a node starts: every boolean argument has
    choices, and every node is created by the one OpaqueFunction that runs after all arguments."""
    path = BRINGUP / "launch" / launch_file
    for name, argument in launch_arguments(path).items():
        if argument["default"] in ("true", "false"):
            assert argument["choices"] == "list(BOOLEAN_CHOICES)", f"{launch_file}: {name} accepts anything"
    tree = ast.parse(path.read_text())
    describe = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "generate_launch_description")
    assert not [c for c in ast.walk(describe) if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "Node"]
    assert "OpaqueFunction(function=_nodes)" in ast.unparse(describe)
    nodes_function = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "_nodes")
    assert "checkpoint_problem" in ast.unparse(nodes_function)  # the checkpoint is checked before the nodes


def test_launch_support_checks_the_checkpoint(tmp_path):
    from robovlms_io.launch_support import checkpoint_problem

    assert "no checkpoint given" in checkpoint_problem("")
    assert "is not a directory" in checkpoint_problem(str(tmp_path / "none"))
    (tmp_path / "config.json").write_text("{}")
    assert "lacks model.safetensors, tokenizer.json" in checkpoint_problem(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "tokenizer.json").write_text("{}")
    assert checkpoint_problem(str(tmp_path)) == ""


SERIALS = ["000489192412", "1234", "0.5", "1e3", "true", "", "serial with spaces"]


@pytest.mark.ros
@pytest.mark.parametrize("serial", SERIALS)
def test_string_parameters_arrive_as_typed(tmp_path, serial):
    """The launch files' parameter path for camera serials (and the robot IP, the checkpoint): the file written
    by string_parameters_file, after cameras.yaml, gives the camera node exactly the typed string."""
    from robovlms_drivers.cameras.azure_kinect_node import AzureKinectParams
    from robovlms_drivers.cameras.realsense_node import RealSenseParams
    from robovlms_io.launch_support import string_parameters_file

    for node_name, params_cls in (("realsense_camera", RealSenseParams), ("azure_kinect_camera", AzureKinectParams)):
        path = string_parameters_file(node_name, {"serial_number": serial}, str(tmp_path))
        config = _load_config(["--ros-args", "--params-file", str(BRINGUP / "config" / "cameras.yaml"),
                               "--params-file", path], node_name, params_cls)
        assert config.serial_number == serial and isinstance(config.serial_number, str)


@pytest.mark.ros
def test_unquoted_parameter_files_retype_serials(tmp_path):
    """Why the launch files do not hand serials to launch_ros: it dumps parameter dictionaries with PyYAML,
    unquoted, and the ROS YAML parser then reads a serial of digits as a number (the node refuses it)."""
    from robovlms_drivers.cameras.azure_kinect_node import AzureKinectParams

    path = tmp_path / "launch_ros_style.yaml"
    path.write_text(yaml.dump({"/**/azure_kinect_camera": {"ros__parameters": {"serial_number": "000489192412"}}}))
    with pytest.raises(ValueError, match="parameter 'serial_number' must be a str, got 489192412"):
        _load_config(["--ros-args", "--params-file", str(path)], "azure_kinect_camera", AzureKinectParams)
