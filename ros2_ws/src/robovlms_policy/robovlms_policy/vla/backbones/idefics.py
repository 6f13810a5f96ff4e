"""Flamingo-style gated cross-attention through IDEFICS v1 (transformers has no OpenFlamingo).

Vision tokens (CLIP patches, optionally through the perceiver resampler) stay out of the sequence; a single
"<image>" token marks each image there and the LM's gated cross-attention layers attend to the images each
position is allowed to see (VisionContext.mask)."""
import torch
from torch import nn
from transformers import IdeficsConfig, IdeficsForVisionText2Text

from .base import BaseRoboVLM


class IdeficsBackbone(BaseRoboVLM):
    name = "idefics"
    model_class = IdeficsForVisionText2Text
    config_class = IdeficsConfig
    cross_attention = True
    image_marker_tokens = ("<image>", None)

    @property
    def text_tower(self) -> nn.Module:
        return self.model.model

    @property
    def vision_tower(self) -> nn.Module:
        return self.model.model.vision_model

    @property
    def vocab_size(self) -> int:
        return self.lm_head.out_features + self.lm_head.out_additional_features

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        states = self.vision_tower(pixel_values=pixels).last_hidden_state
        if self.model.config.use_resampler:
            states = self.model.model.perceiver_resampler(states)
        return states

    def language_forward(self, embeds, attention_mask, position_ids, vision=None, past=None, use_cache=False):
        if vision is None:
            raise ValueError("idefics attends to images through cross-attention: a VisionContext is required")
        key = "perceiver_embeddings" if self.model.config.use_resampler else "image_encoder_embeddings"
        out = self.text_tower(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                              past_key_values=past, use_cache=use_cache, image_attention_mask=vision.mask,
                              **{key: vision.tokens})
        return out.last_hidden_state, out.past_key_values
