"""The backbone contract every VLM adapter fulfils (the seeds' BaseRoboVLM).

A backbone wraps one transformers vision-language model and exposes the parts a VLA structure needs: the word
embedding, the text tower, the vision tower, ``encode_images`` (pixels -> vision tokens) and the LM head. Vision
tokens either go into the token sequence (most VLMs) or, for Flamingo-style models, are attended to through gated
cross-attention (``cross_attention = True``).
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)


class BackboneLoadError(RuntimeError):
    """A pretrained directory is missing or does not match the backbone it is loaded as."""


@dataclass
class VisionContext:
    """Images a cross-attention backbone attends to: tokens (B, n_images, T, D) and which images each sequence
    position may see, mask (B, L, n_images)."""

    tokens: torch.Tensor
    mask: torch.Tensor


class BaseRoboVLM(nn.Module, ABC):
    """A pretrained VLM seen as a VLA backbone. Subclasses are small: they name the transformers class and say
    where the towers live and how images become tokens."""

    name: ClassVar[str]
    model_class: ClassVar[type[PreTrainedModel]]
    config_class: ClassVar[type[PretrainedConfig]]
    image_mean: ClassVar[tuple[float, float, float]] = CLIP_MEAN
    image_std: ClassVar[tuple[float, float, float]] = CLIP_STD
    cross_attention: ClassVar[bool] = False
    # Tokens wrapped around each image's vision tokens (looked up in the tokenizer), None where the VLM has none.
    image_marker_tokens: ClassVar[tuple[str | None, str | None]] = (None, None)

    def __init__(self, model: PreTrainedModel, image_start_id: int | None = None,
                 image_end_id: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.image_start_id = image_start_id
        self.image_end_id = image_end_id

    # --- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_config_dict(cls, config: dict[str, Any], image_start_id: int | None = None,
                         image_end_id: int | None = None) -> "BaseRoboVLM":
        """Randomly initialised backbone from a transformers config dict (as stored in a checkpoint)."""
        hf_config = cls.config_class.from_dict(dict(config))
        return cls(cls.model_class._from_config(hf_config), image_start_id, image_end_id)

    @classmethod
    def from_pretrained(cls, directory: str | Path, image_start_id: int | None = None,
                        image_end_id: int | None = None) -> "BaseRoboVLM":
        """Real weights from a local directory; never downloads."""
        directory = Path(directory)
        if not directory.is_dir():
            raise BackboneLoadError(f"pretrained directory {directory} does not exist")
        config_file = directory / "config.json"
        if not config_file.is_file():
            raise BackboneLoadError(f"pretrained directory {directory} has no config.json")
        model_type = json.loads(config_file.read_text()).get("model_type")
        if model_type != cls.config_class.model_type:
            raise BackboneLoadError(
                f"{config_file}: model_type {model_type!r} does not match backbone {cls.name!r} "
                f"(expects {cls.config_class.model_type!r})")
        if not any(directory.glob("*.safetensors")):
            raise BackboneLoadError(f"pretrained directory {directory} has no *.safetensors weights")
        model = cls.model_class.from_pretrained(directory, local_files_only=True, dtype=torch.float32)
        return cls(model, image_start_id, image_end_id)

    def config_dict(self) -> dict[str, Any]:
        """JSON-safe transformers config, enough to rebuild the architecture without the pretrained directory."""
        return self.model.config.to_dict()

    # --- the parts ----------------------------------------------------------------------------------------------
    @property
    def text_config(self) -> PretrainedConfig:
        return self.model.config.get_text_config()

    @property
    def hidden_size(self) -> int:
        return int(self.text_config.hidden_size)

    @property
    def vocab_size(self) -> int:
        return int(self.lm_head.weight.shape[0])

    @property
    def word_embedding(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def lm_head(self) -> nn.Module:
        return self.model.lm_head

    @property
    @abstractmethod
    def text_tower(self) -> nn.Module:
        """The decoder-only language model (takes inputs_embeds, returns last_hidden_state)."""

    @property
    @abstractmethod
    def vision_tower(self) -> nn.Module:
        """The image encoder."""

    @abstractmethod
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (N, 3, S, S) -> vision tokens (N, T, D); D is the LM hidden size unless the
        backbone cross-attends, where it is the vision width the cross-attention layers expect."""

    def image_marker_embeddings(self, device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Embeddings (D,) of the image start/end tokens, or None where the VLM has none."""
        def embed(token_id: int | None) -> torch.Tensor | None:
            if token_id is None:
                return None
            return self.word_embedding(torch.tensor([token_id], device=device))[0]
        return embed(self.image_start_id), embed(self.image_end_id)

    def language_forward(self, embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                         vision: VisionContext | None = None, past: Any = None,
                         use_cache: bool = False) -> tuple[torch.Tensor, Any]:
        """Run the text tower on a sequence of embeddings; returns (last hidden states (B, L, H), KV cache)."""
        out = self.text_tower(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                              past_key_values=past, use_cache=use_cache)
        return out.last_hidden_state, out.past_key_values
