"""Qwen2-VL / Qwen2.5-VL (the seeds' Qwen-VL): a ViT over 2x2-merged patches -> Qwen2 LM, tokens in the sequence.

The vision tower takes flattened patches plus a (t, h, w) grid instead of an image batch, so pixels are patchified
here in the layout the Qwen2-VL processor produces (a still image is repeated over the temporal patch).
The LM sees sequential positions on all three M-RoPE axes (vision tokens included), not the processor's 2-D grid
positions: one position scheme for every structure and for the cached per-frame tokens."""
import torch
from torch import nn
from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLConfig,
                          Qwen2VLForConditionalGeneration)

from .base import BaseRoboVLM


class Qwen2VLBackbone(BaseRoboVLM):
    name = "qwen2vl"
    model_class = Qwen2VLForConditionalGeneration
    config_class = Qwen2VLConfig
    image_marker_tokens = ("<|vision_start|>", "<|vision_end|>")

    @property
    def text_tower(self) -> nn.Module:
        return self.model.model.language_model

    @property
    def vision_tower(self) -> nn.Module:
        return self.model.model.visual

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        vision = self.model.config.vision_config
        patch, merge, temporal = vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size
        n, c, h, w = pixels.shape
        gh, gw = h // patch, w // patch
        grid = pixels.reshape(n, c, gh // merge, merge, patch, gw // merge, merge, patch)
        grid = grid.permute(0, 2, 5, 3, 6, 1, 4, 7).unsqueeze(6)
        flat = grid.expand(-1, -1, -1, -1, -1, -1, temporal, -1, -1).reshape(n * gh * gw, -1)
        thw = torch.tensor([[1, gh, gw]] * n, device=pixels.device)
        merged = self.vision_tower(flat, grid_thw=thw).pooler_output
        return merged.reshape(n, gh * gw // merge**2, -1)


class Qwen25VLBackbone(Qwen2VLBackbone):
    name = "qwen2_5vl"
    model_class = Qwen2_5_VLForConditionalGeneration
    config_class = Qwen2_5_VLConfig
