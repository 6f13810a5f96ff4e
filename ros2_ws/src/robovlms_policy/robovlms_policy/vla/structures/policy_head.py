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
        return self.over_histories(self.head, self.window_features(pixels, prompt, proprio))

    def window_features(self, pixels: torch.Tensor, prompt: Prompt, proprio: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """The [LRN] feature (B, T, H) of every frame of pixels (B, T, cameras, 3, S, S)."""
        b, t = pixels.shape[:2]
        return self.lrn_feature(prompt.repeat(t), self.frame_batch(pixels, proprio)).unflatten(0, (b, t))

    def compute_loss(self, batch, gripper_weight=DEFAULT_GRIPPER_WEIGHT, arm_weights=None):
        """Also returns "lrn_features" (B, T, H), for auxiliary losses on what the head sees."""
        prompt = Prompt(batch["instruction_ids"], batch["instruction_mask"].bool())
        features = self.window_features(batch["pixels"], prompt, batch.get("proprio"))
        arm, logit = self.over_histories(self.head, features)
        return {**self.continuous_loss(arm, logit, batch, gripper_weight, arm_weights), "lrn_features": features}
