"""One-step continuous: only the newest observation; a learnable [LRN] token's last hidden state -> MLP -> chunk."""
from __future__ import annotations

from typing import Any

import torch

from ..losses import DEFAULT_GRIPPER_WEIGHT
from .base import ActionPrediction, Prompt, VLAStructure
from .heads import ChunkMLP


class OneStepContinuous(VLAStructure):
    uses_history = False

    def __init__(self, config, backbone) -> None:
        super().__init__(config, backbone)
        self.head = ChunkMLP(backbone.hidden_size, config.chunk)

    def predict(self, history: list[Any], prompt: Prompt) -> ActionPrediction:
        arm, logit = self.head(self.lrn_feature(prompt, history[-1]))
        return ActionPrediction(arm, torch.sigmoid(logit))

    def forward(self, pixels, prompt, proprio=None):
        b, w = pixels.shape[:2]
        features = self.lrn_feature(prompt.repeat(w), self.frame_batch(pixels, proprio))
        arm, logit = self.head(features.unflatten(0, (b, w)))
        return arm, logit

    def compute_loss(self, batch, gripper_weight=DEFAULT_GRIPPER_WEIGHT, arm_weights=None):
        prompt = Prompt(batch["instruction_ids"], batch["instruction_mask"].bool())
        arm, logit = self(batch["pixels"], prompt, batch.get("proprio"))
        return self.continuous_loss(arm, logit, batch, gripper_weight, arm_weights)
