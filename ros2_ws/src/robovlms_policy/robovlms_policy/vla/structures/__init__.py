"""VLA structures, selected by VLAConfig.structure."""
from ..backbones.base import BaseRoboVLM
from ..config import VLAConfig
from .base import ActionPrediction, FrameTokens, NonFiniteActionError, Prompt, VLAStructure
from .interleaved import InterleavedContinuous
from .one_step_continuous import OneStepContinuous
from .one_step_discrete import OneStepDiscrete
from .policy_head import PolicyHeadContinuous

STRUCTURES: dict[str, type[VLAStructure]] = {
    "one_step_continuous": OneStepContinuous,
    "one_step_discrete": OneStepDiscrete,
    "interleaved": InterleavedContinuous,
    "policy_head": PolicyHeadContinuous,
}


def build_structure(config: VLAConfig, backbone: BaseRoboVLM) -> VLAStructure:
    return STRUCTURES[config.structure](config, backbone)


__all__ = ["ActionPrediction", "FrameTokens", "NonFiniteActionError", "Prompt", "VLAStructure", "STRUCTURES",
           "build_structure"]
