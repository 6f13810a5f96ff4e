"""One-step discrete: actions are 256-bin tokens, the last ids of the LM vocabulary. Trained with next-token
cross-entropy after [instruction][OBS]; decoded greedily (argmax over the action tokens only, so every decoded
token is a valid bin) with the backbone's KV cache, one token per step."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..action_codec import ActionCodec, ActionStatistics
from ..backbones.base import VisionContext
from ..losses import DEFAULT_GRIPPER_WEIGHT, discrete_action_loss
from .base import ActionPrediction, FrameTokens, NonFiniteActionError, Prompt, VLAStructure


class OneStepDiscrete(VLAStructure):
    uses_history = False

    def __init__(self, config, backbone) -> None:
        super().__init__(config, backbone)
        self.codec = ActionCodec(ActionStatistics.from_dict(config.action_stats), config.embodiment, config.n_bins)
        self.n_tokens = config.chunk * 7
        self.first_action_id = backbone.vocab_size - config.n_bins

    def action_logits(self, prompt: Prompt, frame: FrameTokens, target_ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, chunk*7, V): position i predicts target token i."""
        tail = self.backbone.word_embedding(target_ids[:, :-1])
        seq = self.build_sequence(prompt, [frame], lrn_after=False, tail=tail)
        hidden = self.run_language(seq)[:, -self.n_tokens:]
        return self.backbone.lm_head(hidden)

    def predict(self, history: list[Any], prompt: Prompt) -> ActionPrediction:
        frame = history[-1]
        seq = self.build_sequence(prompt, [frame], lrn_after=False)
        hidden, past = self.backbone.language_forward(seq.embeds, seq.mask.long(), seq.position_ids, seq.vision,
                                                      use_cache=True)
        mask, position = seq.mask.long(), seq.position_ids[:, -1:]
        vision_row = None if seq.vision is None else seq.vision.mask[:, -1:]
        tokens = []
        for step in range(self.n_tokens):
            logits = self.backbone.lm_head(hidden[:, -1])[:, self.first_action_id:]
            if not bool(torch.isfinite(logits).all()):  # argmax would quietly turn NaN into a valid bin
                raise NonFiniteActionError(f"NaN or inf action logits at token {step}")
            token = logits.argmax(-1) + self.first_action_id
            tokens.append(token)
            if step == self.n_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            position = position + 1
            vision = None if seq.vision is None else VisionContext(seq.vision.tokens, vision_row)
            hidden, past = self.backbone.language_forward(self.backbone.word_embedding(token[:, None]), mask,
                                                          position, vision, past=past, use_cache=True)
        ids = torch.stack(tokens, dim=1) - self.first_action_id
        return ActionPrediction(bins=ids.reshape(-1, self.config.chunk, 7))

    def target_ids(self, actions: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        """Normalised actions (..., chunk, 7) -> action token ids (..., chunk*7); masked entries become bin 0."""
        clean = torch.where(action_mask[..., None], torch.nan_to_num(actions), torch.zeros_like(actions))
        bins = self.codec.discretize(clean.detach().cpu().double().numpy())
        ids = self.codec.bins_to_token_ids(bins, self.backbone.vocab_size)
        return torch.from_numpy(np.ascontiguousarray(ids)).to(actions.device).flatten(-2)

    def forward(self, pixels, prompt, proprio=None, target_ids=None):
        b, w = pixels.shape[:2]
        logits = self.action_logits(prompt.repeat(w), self.frame_batch(pixels, proprio), target_ids.flatten(0, 1))
        return logits.unflatten(0, (b, w))

    def compute_loss(self, batch, gripper_weight=DEFAULT_GRIPPER_WEIGHT, arm_weights=None):
        if gripper_weight != DEFAULT_GRIPPER_WEIGHT or arm_weights is not None:
            raise ValueError("one_step_discrete has no per-dimension loss weights (gripper_weight, arm_weights): "
                             "every action dimension is one of its tokens, weighted like the others")
        prompt = Prompt(batch["instruction_ids"], batch["instruction_mask"].bool())
        mask = batch["action_mask"].bool()
        targets = self.target_ids(batch["actions"], mask)
        logits = self(batch["pixels"], prompt, batch.get("proprio"), targets)
        token_mask = mask.repeat_interleave(7, dim=-1)
        loss = discrete_action_loss(logits.flatten(0, 1), targets.flatten(0, 1), token_mask.flatten(0, 1))
        return {"loss": loss}
