"""Backbone name -> adapter class. Adding a VLM: write one small adapter file and list it here."""
from .base import BaseRoboVLM
from .idefics import IdeficsBackbone
from .kosmos2 import Kosmos2Backbone
from .llava import LlavaBackbone
from .moondream import MoondreamBackbone
from .paligemma import PaliGemmaBackbone
from .qwen2vl import Qwen2VLBackbone, Qwen25VLBackbone

BACKBONES: dict[str, type[BaseRoboVLM]] = {
    cls.name: cls for cls in (PaliGemmaBackbone, Kosmos2Backbone, LlavaBackbone, Qwen2VLBackbone,
                              Qwen25VLBackbone, IdeficsBackbone, MoondreamBackbone)
}


def get_backbone_class(name: str) -> type[BaseRoboVLM]:
    """The adapter class for a backbone name; KeyError lists the known names."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; known: {sorted(BACKBONES)}") from None
