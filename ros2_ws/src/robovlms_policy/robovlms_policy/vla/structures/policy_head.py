"""Policy-head continuous: each frame's [LRN] feature comes from its own VLM pass (so it is cached once per frame)
and an LSTM, GPT or MLP head fuses the window of features into the chunk. With ``config.image_readout`` the
feature also carries a linear readout of the language model's outputs at the frame's image tokens."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..losses import DEFAULT_GRIPPER_WEIGHT
from .base import ActionPrediction, FrameTokens, Prompt, VLAStructure
from .heads import build_policy_head


class ImageReadout(nn.Module):
    """LM outputs at a frame's N image tokens (B, N, H) -> (B, H): each token projected to ``width`` values, the
    N x width values mapped linearly to H. Keeps which token said what, i.e. where in the image it is."""

    def __init__(self, hidden: int, tokens: int, width: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.per_token = nn.Linear(hidden, width)
        self.mix = nn.Linear(tokens * width, hidden)
        # Zero at the start, so the head first learns from [LRN] alone and the readout grows in as it helps.
        nn.init.zeros_(self.mix.weight)
        nn.init.zeros_(self.mix.bias)

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        if outputs.shape[1] != self.tokens:
            raise ValueError(f"the image readout was built for {self.tokens} image tokens per frame, got "
                             f"{outputs.shape[1]} (a different image size or camera count than the checkpoint's)")
        return self.mix(self.per_token(outputs).flatten(1))


class PolicyHeadContinuous(VLAStructure):
    def __init__(self, config, backbone) -> None:
        super().__init__(config, backbone)
        self.head = build_policy_head(config.policy_head, backbone.hidden_size, config.chunk, config.window)
        self.image_readout = None
        if config.image_readout:
            with torch.no_grad():
                probe = backbone.encode_images(torch.zeros(1, 3, config.image_size, config.image_size))
            self.image_readout = ImageReadout(backbone.hidden_size, probe.shape[1] * len(config.camera_names),
                                              config.image_readout)

    def history_item(self, frame: FrameTokens, prompt: Prompt) -> torch.Tensor:
        return self.frame_feature(prompt, frame)

    def frame_feature(self, prompt: Prompt, frame: FrameTokens) -> torch.Tensor:
        """What the head reads for one frame (B, H): its [LRN] feature, plus the image readout if configured."""
        if self.image_readout is None:
            return self.lrn_feature(prompt, frame)
        seq = self.build_sequence(prompt, [frame], lrn_after=True)
        hidden = self.run_language(seq)
        # The frame's tokens and [LRN] end the sequence; counted from there the positions do not depend on the
        # instruction's length (an exported graph keeps that length dynamic).
        images = hidden[:, -(frame.seq.shape[1] + 1):][:, list(frame.vision_positions)]
        return hidden[:, seq.lrn_positions[-1]] + self.image_readout(images)

    def predict(self, history: list[Any], prompt: Prompt) -> ActionPrediction:
        arm, logit = self.head(torch.stack(history, dim=1))
        return ActionPrediction(arm[:, -1], torch.sigmoid(logit[:, -1]))

    def forward(self, pixels, prompt, proprio=None):
        return self.over_histories(self.head, self.window_features(pixels, prompt, proprio))

    def window_features(self, pixels: torch.Tensor, prompt: Prompt, proprio: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """The head's feature (B, T, H) of every frame of pixels (B, T, cameras, 3, S, S)."""
        b, t = pixels.shape[:2]
        return self.frame_feature(prompt.repeat(t), self.frame_batch(pixels, proprio)).unflatten(0, (b, t))

    def compute_loss(self, batch, gripper_weight=DEFAULT_GRIPPER_WEIGHT, arm_weights=None):
        """Also returns "lrn_features" (B, T, H), the head's per-frame features, for auxiliary losses."""
        prompt = Prompt(batch["instruction_ids"], batch["instruction_mask"].bool())
        features = self.window_features(batch["pixels"], prompt, batch.get("proprio"))
        arm, logit = self.over_histories(self.head, features)
        return {**self.continuous_loss(arm, logit, batch, gripper_weight, arm_weights), "lrn_features": features}
