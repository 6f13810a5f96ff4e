"""MoonDream: a SigLIP vision tower -> GELU MLP projector -> Phi LM. transformers has no MoonDream class, so the
composition is built through the LLaVA class. Two loading paths:

* a LLaVA-layout directory (model_type "llava", e.g. a converted checkpoint) loads as-is;
* a MoonDream 2 release directory, which is normally loaded with trust_remote_code (config.json with
  "auto_map"), is read by moondream_release. Its tensors are mapped and its Python files are never imported.

MoonDream's projector is wider than LLaVA's (its hidden width is not the LM's) and its LM head has a bias. A
converted release records both in the config (projector_intermediate_size, lm_head_bias) so that checkpoints
rebuild the same modules."""
import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.initialization import no_init_weights

from .base import HALF, BackboneLoadError
from .llava import LlavaBackbone
from .moondream_release import convert_release, release_config


class MoondreamProjector(nn.Module):
    """LLaVA's projector (same parameter names) with a hidden width of its own."""

    def __init__(self, vision_width: int, hidden_width: int, text_width: int, activation: str) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(vision_width, hidden_width)
        self.act = ACT2FN[activation]
        self.linear_2 = nn.Linear(hidden_width, text_width)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(features)))


class MoondreamBackbone(LlavaBackbone):
    name = "moondream"
    image_mean = HALF
    image_std = HALF

    def __init__(self, model, image_start_id=None, image_end_id=None) -> None:
        super().__init__(model, image_start_id, image_end_id)
        config = model.config
        text_width = config.text_config.hidden_size
        hidden_width = getattr(config, "projector_intermediate_size", None)
        if hidden_width is not None:
            model.model.multi_modal_projector = MoondreamProjector(
                config.vision_config.hidden_size, hidden_width, text_width, config.projector_hidden_act)
        if getattr(config, "lm_head_bias", False):
            model.lm_head = nn.Linear(text_width, config.text_config.vocab_size, bias=True)

    @classmethod
    def from_pretrained(cls, directory, image_start_id=None, image_end_id=None):
        raw = release_config(directory)
        if raw is None:
            return super().from_pretrained(directory, image_start_id, image_end_id)
        config, state = convert_release(directory, raw)
        with no_init_weights():  # every parameter is overwritten below; random init would cost ~30 s at 1.9 B
            backbone = cls.from_config_dict(config.to_dict(), image_start_id, image_end_id)
        try:
            backbone.model.load_state_dict(state, strict=True, assign=True)  # no second copy in memory
        except RuntimeError as err:  # a tensor whose shape disagrees with the shapes the others imply
            raise BackboneLoadError(f"MoonDream weights in {directory} are inconsistent: {err}") from None
        return backbone

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        # MoonDream projects the vision tower's output after its final LayerNorm (LLaVA's feature-layer selection
        # would take the hidden state before it).
        features = self.vision_tower(pixel_values=pixels).last_hidden_state
        return self.model.model.multi_modal_projector(features)
