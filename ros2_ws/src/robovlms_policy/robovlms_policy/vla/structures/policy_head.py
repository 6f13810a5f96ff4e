"""Policy-head continuous: each frame's [LRN] feature comes from its own VLM pass (so it is cached once per frame)
and an LSTM, GPT or MLP head fuses the window of features into the chunk."""
from __future__ import annotations

from typing import Any

import torch

from ..losses import DEFAULT_GRIPPER_WEIGHT
from .base import ActionPrediction, FrameTokens, Prompt, VLAStructure
from .heads import build_policy_head


class PolicyHeadContinuous(VLAStructure):
    def __init__(self, config, backbone) -> None:
        super().__init__(config, backbone)
        self.head = build_policy_head(config.policy_head, backbone.hidden_size, config.chunk, config.window)

    def history_item(self, frame: FrameTokens, prompt: Prompt) -> torch.Tensor:
        return self.lrn_feature(prompt, frame)

    def predict(self, history: list[Any], prompt: Prompt) -> ActionPrediction:
        arm, logit = self.head(torch.stack(history, dim=1))
        return ActionPrediction(arm[:, -1], torch.sigmoid(logit[:, -1]))

    def forward(self, pixels, prompt, proprio=None):
        b, t = pixels.shape[:2]
        features = self.lrn_feature(prompt.repeat(t), self.frame_batch(pixels, proprio))
        return self.over_histories(self.head, features.unflatten(0, (b, t)))

    def compute_loss(self, batch, gripper_weight=DEFAULT_GRIPPER_WEIGHT, arm_weights=None):
        prompt = Prompt(batch["instruction_ids"], batch["instruction_mask"].bool())
        arm, logit = self(batch["pixels"], prompt, batch.get("proprio"))
        return self.continuous_loss(arm, logit, batch, gripper_weight, arm_weights)
