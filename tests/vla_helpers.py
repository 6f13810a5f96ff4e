"""Shared builders for the VLA tests: tiny models, fixed batches and checkpoints (real tiny models, no fakes)."""
from __future__ import annotations

import torch

from robovlms_policy.vla.backbones.registry import get_backbone_class
from robovlms_policy.vla.backbones.tiny import TINY_IMAGE_SIZE, tiny_backbone_config
from robovlms_policy.vla.checkpoint import build_model
from robovlms_policy.vla.config import VLAConfig
from robovlms_policy.vla.init_checkpoint import DEFAULT_STATS
from robovlms_policy.vla.structures import Prompt, VLAStructure
from robovlms_policy.vla.tokenizer import build_tiny_tokenizer, encode_instructions, marker_id

BACKBONES = ("paligemma", "kosmos2", "llava", "qwen2vl", "idefics", "moondream")
STRUCTURES = ("one_step_continuous", "one_step_discrete", "interleaved", "policy_head")
CAMERAS = 2


def tiny_config(backbone: str, structure: str, window: int = 3, chunk: int = 2, **overrides) -> VLAConfig:
    cls = get_backbone_class(backbone)
    tokenizer = build_tiny_tokenizer()
    start, end = (marker_id(tokenizer, t) for t in cls.image_marker_tokens)
    return VLAConfig(backbone=backbone, backbone_config=tiny_backbone_config(backbone), action_stats=DEFAULT_STATS,
                     structure=structure, image_size=TINY_IMAGE_SIZE, window=window, chunk=chunk,
                     image_mean=list(cls.image_mean), image_std=list(cls.image_std), image_start_id=start,
                     image_end_id=end, **overrides)


def tiny_model(backbone: str, structure: str, seed: int = 0, **overrides) -> VLAStructure:
    torch.manual_seed(seed)
    return build_model(tiny_config(backbone, structure, **overrides)).eval()


def grow_readout(model: VLAStructure, seed: int = 0) -> VLAStructure:
    """Give a new (zero-initialised) image readout the non-zero output map a trained one has."""
    with torch.no_grad():
        model.image_readout.mix.weight.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(seed))
    return model


def prompt(texts: list[str]) -> Prompt:
    """Right-padded prompt batch from the tiny tokenizer."""
    return Prompt(*encode_instructions(build_tiny_tokenizer(), texts, max_tokens=64))


def fixed_batch(config: VLAConfig, batch: int = 2, window: int | None = None, seed: int = 1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    w = window or config.window
    s = config.image_size
    actions = torch.rand(batch, w, config.chunk, 7, generator=generator) * 2 - 1
    actions[..., 6] = (actions[..., 6] > 0).float()
    action_mask = torch.ones(batch, w, config.chunk, dtype=torch.bool)
    action_mask[0, -1, -1] = False  # the end of an episode: no target for the last step
    texts = ["pick up the red block", "open the drawer"][:batch]
    p = prompt(texts)
    return {"pixels": torch.randn(batch, w, CAMERAS, 3, s, s, generator=generator),
            "instruction_ids": p.ids, "instruction_mask": p.mask, "actions": actions, "action_mask": action_mask}
