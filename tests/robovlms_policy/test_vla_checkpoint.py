"""Checkpoint format: the init command, corrupt/incompatible checkpoints and local pretrained directories."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from robovlms_policy.vla.backbones.base import BackboneLoadError
from robovlms_policy.vla.backbones.registry import get_backbone_class
from robovlms_policy.vla.backbones.tiny import tiny_backbone_config
from robovlms_policy.vla.checkpoint import CONFIG_FILE, WEIGHTS_FILE, CheckpointError, load_checkpoint
from robovlms_policy.vla.config import FORMAT_VERSION
from robovlms_policy.vla.init_checkpoint import create_checkpoint, main
from robovlms_policy.vla.policy import VLAPolicy
from robovlms_policy.vla.tokenizer import TOKENIZER_FILE, build_tiny_tokenizer, marker_id

SRC = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "robovlms_policy"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    assert main(["--backbone", "paligemma", "--structure", "policy_head", "--tiny", str(out)]) == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _edit_config(directory: Path, edit) -> None:
    data = json.loads((directory / CONFIG_FILE).read_text())
    edit(data)
    (directory / CONFIG_FILE).write_text(json.dumps(data))


def test_init_command_writes_a_self_contained_checkpoint(checkpoint):
    assert {p.name for p in checkpoint.iterdir()} == {CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE}
    config = json.loads((checkpoint / CONFIG_FILE).read_text())
    assert config["format_version"] == FORMAT_VERSION
    assert (config["structure"], config["backbone"], config["window"], config["chunk"]) == (
        "policy_head", "paligemma", 16, 10)
    assert config["backbone_config"]["text_config"]["hidden_size"] == 64
    assert config["backbone_config"]["text_config"]["num_hidden_layers"] == 2
    model, loaded, _ = load_checkpoint(checkpoint)
    assert loaded.camera_names == ["static", "wrist"]
    assert not any(p.name.endswith((".pt", ".pkl", ".bin")) for p in checkpoint.iterdir())


def test_init_command_runs_as_a_module_and_rejects_bad_arguments(tmp_path):
    # Only the policy package and the shared package's pure modules: the VLA core needs no ROS environment.
    env_path = os.pathsep.join([str(SRC), str(SRC.parent / "robovlms_io")])
    run = subprocess.run([sys.executable, "-m", "robovlms_policy.vla.init_checkpoint", "--backbone", "idefics",
                          "--structure", "one_step_discrete", "--tiny", "--chunk", "2", str(tmp_path / "a")],
                         capture_output=True, text=True, env={"PYTHONPATH": env_path, "OMP_NUM_THREADS": "1"},
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert load_checkpoint(tmp_path / "a")[1].chunk == 2
    with pytest.raises(SystemExit):
        main(["--backbone", "gpt5", "--structure", "policy_head", "--tiny", str(tmp_path / "b")])
    # neither --tiny nor --pretrained: refuses rather than downloading anything
    assert main(["--backbone", "llava", "--structure", "policy_head", str(tmp_path / "c")]) == 2
    assert main(["--backbone", "llava", "--structure", "policy_head", "--tiny", "--window", "0",
                 str(tmp_path / "d")]) == 2
    assert main(["--backbone", "paligemma", "--structure", "policy_head", "--tiny", "--image-size", "44",
                 str(tmp_path / "e")]) == 2  # not a multiple of the 8 px patch


@pytest.mark.parametrize("backbone", ["paligemma", "kosmos2", "llava", "moondream", "idefics", "qwen2vl"])
@pytest.mark.parametrize("size", [48, 64])
def test_tiny_backbones_take_any_multiple_of_the_patch(backbone, size, tmp_path):
    """The tiny vision towers are built for the requested size (their position tables cover every patch)."""
    assert main(["--backbone", backbone, "--structure", "policy_head", "--tiny", "--image-size", str(size),
                 "--window", "2", "--chunk", "2", str(tmp_path / "ckpt")]) == 0
    policy = VLAPolicy.from_checkpoint(tmp_path / "ckpt")
    assert policy.image_size == size
    policy.reset("open the drawer")
    image = np.zeros((100, 120, 3), np.uint8)
    assert policy.step({"static": image, "wrist": image}).arm.shape == (2, 6)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(format_version=99), "format_version"),
    (lambda d: d.pop("backbone_config"), "backbone_config"),
    (lambda d: d.pop("format_version"), "format_version"),
    (lambda d: d.update(surprise=1), "surprise"),
    (lambda d: d.update(structure="two_step"), "structure"),
    (lambda d: d.update(embodiment="spot"), "embodiment"),
    (lambda d: d.update(window=0), "window"),
    (lambda d: d.update(camera_names=[]), "camera_names"),
    (lambda d: d.update(action_stats={"low": [0.0] * 6}), "action_stats"),
    (lambda d: d["backbone_config"]["text_config"].update(hidden_size=96), "tensor"),
])
def test_incompatible_config_fails_naming_the_field(checkpoint, tmp_path, edit, message):
    broken = _copy(checkpoint, tmp_path / "broken")
    _edit_config(broken, edit)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(broken)


def test_corrupt_json_and_missing_files(checkpoint, tmp_path):
    broken = _copy(checkpoint, tmp_path / "json")
    (broken / CONFIG_FILE).write_text('{"backbone": ')
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(broken)
    for name in (WEIGHTS_FILE, TOKENIZER_FILE, CONFIG_FILE):
        missing = _copy(checkpoint, tmp_path / f"no-{name}")
        (missing / name).unlink()
        with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
            load_checkpoint(missing)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")


def _rewrite_weights(directory: Path, edit) -> None:
    with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    edit(tensors)
    save_file(tensors, str(directory / WEIGHTS_FILE))


def test_missing_misshaped_and_nonfinite_tensors_are_named(checkpoint, tmp_path):
    name = "head.out.net.0.weight"
    cases = {
        "missing": (lambda t: t.pop(name), name),
        "shape": (lambda t: t.__setitem__(name, torch.zeros(3, 3)), rf"{name} has shape \(3, 3\)"),
        "nan": (lambda t: t[name].__setitem__((0, 0), float("nan")), f"{name} holds NaN"),
        "extra": (lambda t: t.__setitem__("stray.weight", torch.zeros(2)), "unexpected tensor stray.weight"),
    }
    for case, (edit, message) in cases.items():
        broken = _copy(checkpoint, tmp_path / case)
        _rewrite_weights(broken, edit)
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(broken)
    garbage = _copy(checkpoint, tmp_path / "garbage")
    (garbage / WEIGHTS_FILE).write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="safetensors"):
        load_checkpoint(garbage)


def _save_pretrained_dir(backbone: str, directory: Path) -> torch.nn.Module:
    """A local 'pretrained' directory as a user would have it: save_pretrained weights + a fast tokenizer."""
    cls = get_backbone_class(backbone)
    torch.manual_seed(11)
    vlm = cls.from_config_dict(tiny_backbone_config(backbone))
    vlm.model.save_pretrained(directory)
    build_tiny_tokenizer().save(str(directory / TOKENIZER_FILE))
    return vlm


@pytest.mark.parametrize("backbone", ["paligemma", "kosmos2", "llava"])
def test_checkpoint_from_a_local_pretrained_directory_keeps_its_weights(backbone, tmp_path):
    vlm = _save_pretrained_dir(backbone, tmp_path / "pretrained")
    create_checkpoint(tmp_path / "out", backbone, "one_step_continuous", tiny=False, pretrained=tmp_path / "pretrained")
    model, config, _ = load_checkpoint(tmp_path / "out")
    markers = get_backbone_class(backbone).image_marker_tokens
    assert config.image_size == 32
    assert config.image_start_id == marker_id(build_tiny_tokenizer(), markers[0])  # looked up in its tokenizer
    reference = vlm.model.state_dict()
    loaded = model.backbone.model.state_dict()
    assert reference.keys() == loaded.keys()
    assert all(torch.equal(reference[k], loaded[k]) for k in reference)


def test_bad_pretrained_directories_fail_naming_what_is_missing(tmp_path):
    cls = get_backbone_class("llava")
    with pytest.raises(BackboneLoadError, match="does not exist"):
        cls.from_pretrained(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneLoadError, match="config.json"):
        cls.from_pretrained(tmp_path / "empty")
    _save_pretrained_dir("paligemma", tmp_path / "pali")
    with pytest.raises(BackboneLoadError, match="model_type 'paligemma'"):
        cls.from_pretrained(tmp_path / "pali")
    (tmp_path / "pali" / "model.safetensors").unlink()
    with pytest.raises(BackboneLoadError, match="safetensors"):
        get_backbone_class("paligemma").from_pretrained(tmp_path / "pali")
    assert main(["--backbone", "llava", "--structure", "policy_head", "--pretrained", str(tmp_path / "absent"),
                 str(tmp_path / "out")]) == 2


def test_moondream_loads_a_llava_layout_directory(tmp_path):
    vlm = _save_pretrained_dir("moondream", tmp_path / "md")
    loaded = get_backbone_class("moondream").from_pretrained(tmp_path / "md")
    assert loaded.model.config.text_config.model_type == "phi"
    assert loaded.model.config.vision_config.model_type == "siglip_vision_model"
    assert all(torch.equal(a, b) for a, b in zip(vlm.state_dict().values(), loaded.state_dict().values()))
    # The same weights under an auto_map are not a MoonDream release (see test_vla_moondream_release.py).
    config = json.loads((tmp_path / "md" / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "hf_moondream.HfMoondream"}
    (tmp_path / "md" / "config.json").write_text(json.dumps(config))
    with pytest.raises(BackboneLoadError, match="trust_remote_code checkpoint, but not in the MoonDream 2 layout"):
        get_backbone_class("moondream").from_pretrained(tmp_path / "md")
