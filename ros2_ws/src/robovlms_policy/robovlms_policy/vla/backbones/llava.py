"""LLaVA: CLIP (or SigLIP) vision tower -> MLP projector -> Llama-family LM, vision tokens in the sequence."""
import torch
from torch import nn
from transformers import LlavaConfig, LlavaForConditionalGeneration

from .base import BaseRoboVLM


class LlavaBackbone(BaseRoboVLM):
    name = "llava"
    model_class = LlavaForConditionalGeneration
    config_class = LlavaConfig

    @property
    def text_tower(self) -> nn.Module:
        return self.model.model.language_model

    @property
    def vision_tower(self) -> nn.Module:
        return self.model.model.vision_tower

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        config = self.model.config
        features = self.model.model.get_image_features(
            pixel_values=pixels, vision_feature_layer=config.vision_feature_layer,
            vision_feature_select_strategy=config.vision_feature_select_strategy).pooler_output
        return torch.stack(list(features))
