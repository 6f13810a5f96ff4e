"""KosMos-2: CLIP-like vision model -> latent-query resampler -> KosMos-2 text decoder.

Kosmos2ForConditionalGeneration has no get_image_features, so images are encoded by hand the way Kosmos2Model
does it: post-layernorm over all patch states, L2-normalise, then the image-to-text projection."""
import torch
from torch import nn
from torch.nn import functional as F
from transformers import Kosmos2Config, Kosmos2ForConditionalGeneration

from .base import BaseRoboVLM


class Kosmos2Backbone(BaseRoboVLM):
    name = "kosmos2"
    model_class = Kosmos2ForConditionalGeneration
    config_class = Kosmos2Config
    image_marker_tokens = ("<image>", "</image>")

    @property
    def hidden_size(self) -> int:
        return int(self.text_config.embed_dim)

    @property
    def lm_head(self) -> nn.Module:
        return self.model.text_model.lm_head

    @property
    def text_tower(self) -> nn.Module:
        return self.model.text_model.model

    @property
    def vision_tower(self) -> nn.Module:
        return self.model.vision_model

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        states = self.model.vision_model(pixel_values=pixels).last_hidden_state
        states = F.normalize(self.model.vision_model.model.post_layernorm(states), dim=-1)
        return self.model.image_to_text_projection(states)[0]

    def language_forward(self, embeds, attention_mask, position_ids, vision=None, past=None, use_cache=False):
        # The sinusoidal table reserves its first padding_idx + 1 rows, so positions start after them.
        offset = self.text_tower.embed_positions.padding_idx + 1
        return super().language_forward(embeds, attention_mask, position_ids + offset, vision, past, use_cache)
