"""Inference runtimes on tiny checkpoints of every structure: each runtime a structure supports stays within a
bound of eager fp32 on the same inputs (its own history, chunk by chunk); those it does not, and CUDA-only ones on
this CPU, are refused at load with the reason; ONNX graphs are tied to their weights; the policy node takes the
runtime parameter."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_prefix

from robovlms_policy.vla.checkpoint import load_checkpoint, save_checkpoint
from robovlms_policy.vla.init_checkpoint import create_checkpoint
from robovlms_policy.vla.onnx_export import main as export_main
from robovlms_policy.vla.policy import VLAPolicy
from robovlms_policy.vla.runtime_check import compare
from robovlms_policy.vla.runtimes import RuntimeUnsupported
from vla_helpers import grow_readout

STRUCTURES = ("policy_head", "one_step_continuous", "one_step_discrete", "interleaved")
# Bounds in the codec's normalised units ([-1, 1] spans the arm's 1st..99th percentile range).
BOUNDS = {"int8": 0.05, "compile": 1e-4, "onnx": 1e-4}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runtimes")
    made = {}
    for structure in STRUCTURES:
        made[structure] = root / structure
        create_checkpoint(made[structure], "paligemma", structure, window=4, chunk=3)
    for head in ("gpt", "mlp"):  # the other policy heads (lstm is the default)
        made[head] = root / head
        create_checkpoint(made[head], "paligemma", "policy_head", policy_head=head, window=4, chunk=3)
    made["proprio"] = root / "proprio"
    create_checkpoint(made["proprio"], "kosmos2", "policy_head", window=4, chunk=3, proprio_dim=10,
                      proprio_layout="ee_pose_gripper")
    made["readout"] = root / "readout"  # the head also reads the LM's image-token outputs
    create_checkpoint(made["readout"], "paligemma", "policy_head", window=4, chunk=3, image_readout=4)
    model, config, tokenizer = load_checkpoint(made["readout"])  # a trained readout's output map is not zero
    save_checkpoint(grow_readout(model), config, tokenizer, made["readout"])
    return made


def assert_close_to_eager(path: Path, runtime: str, reference: Path | None = None) -> None:
    eager, candidate = VLAPolicy.from_checkpoint(reference or path), VLAPolicy.from_checkpoint(path, runtime=runtime)
    for instruction in ("open the drawer", "pick up the red block and put it down left of the blue one"):
        difference = compare(eager, candidate, instruction)
        assert difference.steps == 5 and difference.max_arm_error_normalised < BOUNDS[runtime], difference
        assert difference.gripper_agreement >= 0.95, difference


@pytest.mark.parametrize("structure", STRUCTURES)
def test_int8_on_every_structure(checkpoints, structure):
    assert_close_to_eager(checkpoints[structure], "int8")


@pytest.mark.parametrize("structure", STRUCTURES)
def test_compile_matches_eager(checkpoints, structure):
    # torch.compile (inductor, through the C++ toolchain): ~40 s per structure on two cores.
    assert_close_to_eager(checkpoints[structure], "compile")


@pytest.mark.parametrize("name", ["policy_head", "gpt", "mlp", "proprio", "readout"])
def test_onnx_export_reproduces_eager_and_is_tied_to_its_weights(checkpoints, tmp_path, name, capsys):
    out = tmp_path / "onnx"
    assert export_main([str(checkpoints[name]), "--runtime", "onnx", str(out)]) == 0
    record = json.loads((out / "onnx" / "export.json").read_text())
    assert max(record["check"].values()) < 1e-4 and (out / "onnx" / "head.onnx").is_file()
    assert_close_to_eager(out, "onnx", reference=checkpoints[name])
    other = checkpoints["policy_head" if name == "proprio" else "proprio"]
    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    shutil.copyfile(other / "model.safetensors", tampered / "model.safetensors")
    shutil.copyfile(other / "config.json", tampered / "config.json")
    with pytest.raises(RuntimeUnsupported, match="exported from other weights"):
        VLAPolicy.from_checkpoint(tampered, runtime="onnx")


def test_refusals_name_the_reason(checkpoints, tmp_path, capsys):
    with pytest.raises(RuntimeUnsupported, match="policy_head structure only"):
        VLAPolicy.from_checkpoint(checkpoints["interleaved"], runtime="onnx")
    assert export_main([str(checkpoints["one_step_continuous"]), "--runtime", "onnx", str(tmp_path / "x")]) == 1
    assert "policy_head structure only" in capsys.readouterr().err
    with pytest.raises(RuntimeUnsupported, match="robovlms-export"):
        VLAPolicy.from_checkpoint(checkpoints["policy_head"], runtime="onnx")  # no graphs exported beside it
    for runtime in ("bf16", "cuda_graph"):
        with pytest.raises(RuntimeUnsupported, match="CUDA devices only"):
            VLAPolicy.from_checkpoint(checkpoints["policy_head"], runtime=runtime)
    with pytest.raises(RuntimeUnsupported, match="unknown runtime"):
        VLAPolicy.from_checkpoint(checkpoints["policy_head"], runtime="tensorrt")


def test_the_policy_node_runs_the_chosen_runtime(ros_context, checkpoints, tmp_path):
    from rclpy.parameter import Parameter

    from robovlms_policy.node.policy_node import PolicyNode

    node = PolicyNode(context=ros_context, parameter_overrides=[
        Parameter("checkpoint", value=str(checkpoints["policy_head"])), Parameter("runtime", value="int8")])
    try:
        assert node._policy.runtime == "int8"
    finally:
        node.destroy_node()
    executable = Path(get_package_prefix("robovlms_policy")) / "lib" / "robovlms_policy" / "policy_node"
    for runtime, message in (("bf16", "CUDA devices only"), ("tensorrt", "runtime")):
        result = subprocess.run([str(executable), "--ros-args", "-p", f"checkpoint:={checkpoints['policy_head']}",
                                 "-p", f"runtime:={runtime}"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr, \
            result.stderr[-1500:]
