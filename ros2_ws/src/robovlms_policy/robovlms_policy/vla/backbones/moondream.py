"""MoonDream: transformers has no MoonDream class, so the same composition (SigLIP vision tower -> MLP projector
-> Phi LM) is built through the LLaVA class; a converted local checkpoint (model_type "llava") loads as-is.

A trust_remote_code MoonDream directory (config.json with "auto_map") is refused with a clear message: its
custom modules cannot be verified here and loading it would run the directory's Python code."""
import json
from pathlib import Path

from .base import HALF, BackboneLoadError
from .llava import LlavaBackbone


class MoondreamBackbone(LlavaBackbone):
    name = "moondream"
    image_mean = HALF
    image_std = HALF

    @classmethod
    def from_pretrained(cls, directory, image_start_id=None, image_end_id=None):
        config_file = Path(directory) / "config.json"
        if config_file.is_file() and "auto_map" in json.loads(config_file.read_text()):
            raise BackboneLoadError(
                f"{config_file} is a trust_remote_code MoonDream checkpoint; remote code is not executed here. "
                "Convert it to the LLaVA layout (SigLIP vision tower + Phi, model_type 'llava') first.")
        return super().from_pretrained(directory, image_start_id, image_end_id)
