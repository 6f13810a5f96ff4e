"""PaliGemma: SigLIP vision tower -> linear projector -> Gemma, vision tokens placed in the sequence.

PaliGemma's Gemma attends bidirectionally (a prefix LM). The VLA structures need a causal LM (an [LRN] must not
see later frames, greedy decoding uses a KV cache), so the adapter switches the text tower to causal attention."""
import torch
from torch import nn
from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

from .base import HALF, BaseRoboVLM


class PaliGemmaBackbone(BaseRoboVLM):
    name = "paligemma"
    model_class = PaliGemmaForConditionalGeneration
    config_class = PaliGemmaConfig
    image_mean = HALF
    image_std = HALF

    def __init__(self, model: PaliGemmaForConditionalGeneration, image_start_id=None, image_end_id=None) -> None:
        super().__init__(model, image_start_id, image_end_id)
        self.text_config.use_bidirectional_attention = False
        for layer in self.text_tower.layers:
            layer.self_attn.is_causal = True

    @property
    def text_tower(self) -> nn.Module:
        return self.model.model.language_model

    @property
    def vision_tower(self) -> nn.Module:
        return self.model.model.vision_tower

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.model.get_image_features(pixel_values=pixels).pooler_output
