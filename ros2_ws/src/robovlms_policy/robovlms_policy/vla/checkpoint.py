"""Checkpoint directory: config.json (VLAConfig), model.safetensors (all weights), tokenizer.json. No pickle.

Weights go through safetensors.torch.save_model/load_model because tied embeddings share storage, which
save_file refuses. Every load failure is a CheckpointError naming the file, field or tensor at fault."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from tokenizers import Tokenizer

from .backbones.registry import get_backbone_class
from .config import ConfigError, VLAConfig
from .structures import VLAStructure, build_structure
from .tokenizer import TOKENIZER_FILE, load_tokenizer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or incompatible with this code."""


def build_model(config: VLAConfig) -> VLAStructure:
    """A randomly initialised VLA with the architecture the config describes."""
    backbone_class = get_backbone_class(config.backbone)
    try:
        backbone = backbone_class.from_config_dict(config.backbone_config, config.image_start_id, config.image_end_id)
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"backbone_config does not describe a valid {config.backbone} model: {err}") from err
    return build_structure(config, backbone)


def save_checkpoint(model: VLAStructure, config: VLAConfig, tokenizer: Tokenizer, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2))
    tokenizer.save(str(out_dir / TOKENIZER_FILE))
    save_model(model, str(out_dir / WEIGHTS_FILE))
    return out_dir


def load_config(directory: str | Path) -> VLAConfig:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"checkpoint {directory} has no {CONFIG_FILE}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from err
    try:
        return VLAConfig.from_dict(data)
    except ConfigError as err:
        raise CheckpointError(f"{path}: {err}") from err


def load_checkpoint(directory: str | Path, device: str = "cpu",
                    dtype: torch.dtype | None = None) -> tuple[VLAStructure, VLAConfig, Tokenizer]:
    """Rebuild the model from config.json, load and check the weights, load the tokenizer."""
    directory = Path(directory)
    config = load_config(directory)
    for name in (WEIGHTS_FILE, TOKENIZER_FILE):
        if not (directory / name).is_file():
            raise CheckpointError(f"checkpoint {directory} has no {name}")
    try:
        tokenizer = load_tokenizer(directory)
    except Exception as err:  # the tokenizers library raises bare Exception subclasses on bad JSON
        raise CheckpointError(f"{directory / TOKENIZER_FILE} cannot be read: {err}") from err
    model = build_model(config)
    weights = directory / WEIGHTS_FILE
    _check_tensor_shapes(model, weights)
    try:
        load_model(model, str(weights), strict=True)
    except (RuntimeError, SafetensorError) as err:
        raise CheckpointError(f"{weights} does not match the config's model: {err}") from err
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{weights}: tensor {name} holds NaN or inf")
    model = model.to(device=device, dtype=dtype).eval()
    return model, config, tokenizer


def _check_tensor_shapes(model: VLAStructure, weights: Path) -> None:
    """Name the first stored tensor whose shape differs from the model's (load_model's message is long)."""
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    try:
        with safe_open(str(weights), framework="pt") as handle:
            for name in handle.keys():
                shape = tuple(handle.get_slice(name).get_shape())
                if name not in expected:
                    raise CheckpointError(f"{weights}: unexpected tensor {name}")
                if shape != expected[name]:
                    raise CheckpointError(
                        f"{weights}: tensor {name} has shape {shape}, the config needs {expected[name]}")
    except SafetensorError as err:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {err}") from err
