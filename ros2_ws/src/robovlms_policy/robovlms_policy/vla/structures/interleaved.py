"""Interleaved continuous: [instruction][OBS 1][LRN][OBS 2][LRN]... in one causal sequence; each [LRN]'s hidden
state -> MLP -> that frame's chunk. Vision tokens are cached per frame; the LM pass covers the window every tick,
because the sliding window shifts every position (a KV cache would go stale as the oldest frame leaves)."""
from __future__ import annotations

from typing import Any

import torch

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
        seq = self.build_sequence(prompt, self.encode_window(pixels, proprio), lrn_after=True)
        return self.head(self.run_language(seq)[:, seq.lrn_positions])

    def compute_loss(self, batch):
        prompt = Prompt(batch["instruction_ids"], batch["instruction_mask"].bool())
        arm, logit = self(batch["pixels"], prompt, batch.get("proprio"))
        return self.continuous_loss(arm, logit, batch)
