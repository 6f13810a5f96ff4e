"""robovlms-init-checkpoint: write a randomly initialised (--tiny) or pretrained-initialised VLA checkpoint.

Used by tests, dry runs and the policy node before a trained checkpoint exists. --pretrained DIR takes the
backbone's architecture, weights, tokenizer and image preprocessing from a local directory; nothing downloads."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer

from .backbones.base import BackboneLoadError
from .backbones.registry import BACKBONES, get_backbone_class
from .backbones.tiny import TINY_IMAGE_SIZE, tiny_backbone_config
from .checkpoint import build_model, save_checkpoint
from .config import POLICY_HEADS, STRUCTURES, ConfigError, VLAConfig
from .structures import build_structure
from .tokenizer import build_tiny_tokenizer, copy_pretrained_tokenizer, load_tokenizer, marker_id

# Kinova actions are metres / radians per control period: a random policy should only nudge the arm.
DEFAULT_STATS = {"low": [-0.01] * 3 + [-0.05] * 3, "high": [0.01] * 3 + [0.05] * 3}


def _pretrained_preprocessing(directory: Path, backbone_class, hf_config: dict) -> dict:
    """image_size / mean / std from preprocessor_config.json where present, else the backbone's defaults."""
    size = hf_config.get("vision_config", {}).get("image_size")
    mean, std = list(backbone_class.image_mean), list(backbone_class.image_std)
    pre = directory / "preprocessor_config.json"
    if pre.is_file():
        data = json.loads(pre.read_text())
        mean, std = data.get("image_mean", mean), data.get("image_std", std)
        declared = data.get("image_size") or data.get("crop_size") or data.get("size") or size
        if isinstance(declared, dict):  # {"height": h, "width": w} or {"shortest_edge": s}
            declared = declared.get("height") or declared.get("shortest_edge")
        size = declared
    if not isinstance(size, int):
        raise BackboneLoadError(f"{directory}: cannot tell the image size (no preprocessor_config.json size)")
    return {"image_size": size, "image_mean": list(mean), "image_std": list(std)}


def _check_image_size(model, size: int) -> None:
    """Vision towers with fixed position tables accept one image size only: fail now, not on the robot."""
    try:
        with torch.no_grad():
            model.backbone.encode_images(torch.zeros(1, 3, size, size))
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"image_size {size} does not fit the {model.config.backbone} vision tower: {err}") from err


def _merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` applied key by key, recursing into nested dicts; an unknown key is an error."""
    merged = dict(base)
    for key, value in changes.items():
        if key not in merged:
            raise ConfigError(f"backbone config has no field {key!r}; fields: {sorted(merged)}")
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) else value
    return merged


def create_checkpoint(out_dir: str | Path, backbone: str, structure: str, tiny: bool = True,
                      pretrained: str | Path | None = None, seed: int = 0,
                      backbone_changes: dict | None = None, tokenizer: Tokenizer | None = None,
                      **overrides) -> VLAConfig:
    """Build and save a checkpoint; overrides are VLAConfig fields (window, chunk, camera_names, ...).
    ``backbone_changes`` resize a tiny backbone (e.g. {"text_config": {"num_hidden_layers": 4}}); ``tokenizer``
    replaces the tiny byte-level one (the tiny vocabulary is sized to it)."""
    backbone_class = get_backbone_class(backbone)
    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    common = dict(backbone=backbone, structure=structure, action_stats=DEFAULT_STATS, **overrides)
    if pretrained is None:
        if not tiny:
            raise ValueError("a full-size checkpoint needs --pretrained DIR (nothing is downloaded); use --tiny")
        tokenizer = tokenizer or build_tiny_tokenizer()
        start, end = (marker_id(tokenizer, t) for t in backbone_class.image_marker_tokens)
        common.setdefault("image_size", TINY_IMAGE_SIZE)
        backbone_config = _merged(tiny_backbone_config(backbone, common["image_size"], tokenizer.get_vocab_size()),
                                  backbone_changes or {})
        config = VLAConfig(backbone_config=backbone_config, image_start_id=start,
                           image_end_id=end, image_mean=list(backbone_class.image_mean),
                           image_std=list(backbone_class.image_std), **common)
        model = build_model(config)
    else:
        if backbone_changes or tokenizer is not None:
            raise ValueError("backbone_changes and tokenizer are for tiny backbones; a pretrained one keeps its "
                             "architecture and tokenizer")
        pretrained = Path(pretrained)
        vlm = backbone_class.from_pretrained(pretrained)
        copy_pretrained_tokenizer(pretrained, out_dir)
        tokenizer = load_tokenizer(out_dir)
        vlm.image_start_id, vlm.image_end_id = (marker_id(tokenizer, t) for t in backbone_class.image_marker_tokens)
        hf_config = vlm.config_dict()
        for key, value in _pretrained_preprocessing(pretrained, backbone_class, hf_config).items():
            common.setdefault(key, value)
        config = VLAConfig(backbone_config=hf_config, image_start_id=vlm.image_start_id,
                           image_end_id=vlm.image_end_id, **common)
        model = build_structure(config, vlm)
    _check_image_size(model, config.image_size)
    save_checkpoint(model, config, tokenizer, out_dir)
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robovlms-init-checkpoint", description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", required=True, choices=sorted(BACKBONES))
    parser.add_argument("--structure", required=True, choices=STRUCTURES)
    parser.add_argument("--tiny", action="store_true", help="tiny random backbone (LM hidden 64, 2 layers)")
    parser.add_argument("--pretrained", type=Path, help="local directory with the VLM's weights and tokenizer")
    parser.add_argument("--policy-head", default="lstm", choices=POLICY_HEADS)
    parser.add_argument("--embodiment", default="kinova")
    parser.add_argument("--cameras", nargs="+", default=["static", "wrist"])
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--image-size", type=int, help="default: the backbone's (32 for --tiny)")
    parser.add_argument("--proprio-dim", type=int, default=0)
    parser.add_argument("--image-readout", type=int, default=0,
                        help="policy_head: the head also reads the LM outputs at the image tokens, each projected "
                             "to this many values (0: [LRN] only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("out", type=Path, help="checkpoint directory to write")
    args = parser.parse_args(argv)
    overrides = dict(policy_head=args.policy_head, embodiment=args.embodiment, camera_names=args.cameras,
                     window=args.window, chunk=args.chunk, proprio_dim=args.proprio_dim,
                     image_readout=args.image_readout)
    if args.image_size is not None:
        overrides["image_size"] = args.image_size
    try:
        config = create_checkpoint(args.out, args.backbone, args.structure, tiny=args.tiny,
                                   pretrained=args.pretrained, seed=args.seed, **overrides)
    except (BackboneLoadError, ConfigError, FileNotFoundError, KeyError, ValueError) as err:
        print(f"robovlms-init-checkpoint: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {config.structure} / {config.backbone} checkpoint to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
