"""Interleaved continuous: [instruction][OBS 1][LRN][OBS 2][LRN]... in one causal sequence; each [LRN]'s hidden
state -> MLP -> that frame's chunk. Vision tokens are cached per frame; the LM pass covers the window every tick,
because the sliding window shifts every position (a KV cache would go stale as the oldest frame leaves)."""
from __future__ import annotations

from typing import Any

import torch

from ..losses import DEFAULT_GRIPPER_WEIGHT
from .base import ActionPrediction, Prompt, VLAStructure
from .heads import ChunkMLP


class InterleavedContinuous(VLAStructure):
    def __init__(self, config, backbone) -> None:
        super().__init__(config, backbone)
        self.head = ChunkMLP(backbone.hidden_size, config.chunk)

    def predict(self, history: list[Any], prompt: Prompt) -> ActionPrediction:
        seq = self.build_sequence(prompt, history, lrn_after=True)
        arm, logit = self.head(self.run_language(seq)[:, seq.lrn_positions[-1]])
        return ActionPrediction(arm, torch.sigmoid(logit))

    def forward(self, pixels, prompt, proprio=None):
        b, t = pixels.shape[:2]
        if t > self.config.window:
            # The language pass spans the window, so a longer row is one window per step: the pass of step s
            # covers the (up to) `window` frames ending at s, and its last [LRN] gives step s's chunk.
            return self._per_step_windows(pixels, prompt, proprio)
        seq = self.build_sequence(prompt, self.encode_window(pixels, proprio), lrn_after=True)
        return self.head(self.run_language(seq)[:, seq.lrn_positions])

    def _per_step_windows(self, pixels, prompt, proprio):
        t, window = pixels.shape[1], self.config.window
        arms, logits = [], []
        for step in range(t):
            start = max(0, step + 1 - window)
            arm, logit = self(pixels[:, start:step + 1], prompt,
                              None if proprio is None else proprio[:, start:step + 1])
            arms.append(arm[:, -1])
            logits.append(logit[:, -1])
        return torch.stack(arms, dim=1), torch.stack(logits, dim=1)

    def compute_loss(self, batch, gripper_weight=DEFAULT_GRIPPER_WEIGHT, arm_weights=None):
        prompt = Prompt(batch["instruction_ids"], batch["instruction_mask"].bool())
        arm, logit = self(batch["pixels"], prompt, batch.get("proprio"))
        return self.continuous_loss(arm, logit, batch, gripper_weight, arm_weights)
