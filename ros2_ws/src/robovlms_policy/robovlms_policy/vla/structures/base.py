"""What every VLA structure shares: per-frame observation tokens, sequence assembly and the training batch.

A structure turns a backbone into a policy. The policy node calls ``encode_frame`` once per tick (the expensive
vision tower), keeps ``history_item``s in a window, and calls ``predict`` on that window; training calls
``compute_loss`` on a batch of windows. ``forward``'s per-frame outputs are exactly what ``predict`` returns
for the same frames, which the tests check.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ..backbones.base import BaseRoboVLM, VisionContext
from ..config import VLAConfig
from ..losses import DEFAULT_GRIPPER_WEIGHT, continuous_action_loss


class NonFiniteActionError(RuntimeError):
    """The model produced NaN or inf; the tick's output must not be used."""


@dataclass
class Prompt:
    """Tokenised instructions, right-padded: ids (B, L) int64, mask (B, L) bool."""

    ids: torch.Tensor
    mask: torch.Tensor

    def repeat(self, times: int) -> "Prompt":
        """Each row repeated ``times`` times in a row (for B*W frame batches)."""
        return Prompt(self.ids.repeat_interleave(times, 0), self.mask.repeat_interleave(times, 0))


@dataclass
class FrameTokens:
    """One observation: tokens that go into the sequence (B, n, H), where in ``seq`` the vision tokens are, and,
    for cross-attention backbones, the images attended to (B, cameras, T, D)."""

    seq: torch.Tensor
    images: torch.Tensor | None = None
    vision_positions: tuple[int, ...] = ()


@dataclass
class ActionPrediction:
    """Normalised chunk predictions: arm (B, chunk, 6) in [-1, 1], gripper closure probability (B, chunk); discrete
    structures give bins (B, chunk, 7) instead (decode with ActionCodec.undiscretize)."""

    arm: torch.Tensor | None = None
    gripper: torch.Tensor | None = None
    bins: torch.Tensor | None = None


@dataclass
class TokenSequence:
    embeds: torch.Tensor
    mask: torch.Tensor
    position_ids: torch.Tensor
    vision: VisionContext | None
    lrn_positions: list[int]


class VLAStructure(nn.Module, ABC):
    """A backbone plus a learnable [LRN] token (and optional proprioception projection) arranged into a policy.
    ``uses_history`` False means only the newest frame matters (one-step structures)."""

    uses_history: bool = True

    def __init__(self, config: VLAConfig, backbone: BaseRoboVLM) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        hidden = backbone.hidden_size
        self.lrn_token = nn.Parameter(torch.randn(hidden) * 0.02)
        self.proprio_proj = nn.Linear(config.proprio_dim, hidden) if config.proprio_dim else None

    # --- per-frame work (cached by the policy) -----------------------------------------------------------------
    def encode_frame(self, pixels: torch.Tensor, proprio: torch.Tensor | None = None) -> FrameTokens:
        """Normalised pixels (B, cameras, 3, S, S) [+ proprio (B, P)] -> this frame's tokens."""
        b, cams = pixels.shape[:2]
        vision = self.backbone.encode_images(pixels.flatten(0, 1))
        vision = vision.reshape(b, cams, *vision.shape[1:])
        start, end = self.backbone.image_marker_embeddings(pixels.device)
        parts, images, positions = [], None, []
        if self.backbone.cross_attention:
            images = vision
            for _ in range(cams):
                parts.append(start.expand(b, 1, -1))
        else:
            for cam in range(cams):
                if start is not None:
                    parts.append(start.expand(b, 1, -1))
                first = sum(p.shape[1] for p in parts)
                positions.extend(range(first, first + vision.shape[2]))
                parts.append(vision[:, cam])
                if end is not None:
                    parts.append(end.expand(b, 1, -1))
        if self.proprio_proj is not None:
            if proprio is None:
                raise ValueError(f"this checkpoint needs proprioception of size {self.config.proprio_dim}")
            parts.append(self.proprio_proj(proprio)[:, None])
        return FrameTokens(torch.cat(parts, dim=1), images, tuple(positions))

    def history_item(self, frame: FrameTokens, prompt: Prompt) -> Any:
        """What the policy keeps per frame (default: the frame's tokens)."""
        return frame

    @abstractmethod
    def predict(self, history: list[Any], prompt: Prompt) -> ActionPrediction:
        """Chunk for the newest frame, given the window of history items (oldest first)."""

    @abstractmethod
    def forward(self, pixels: torch.Tensor, prompt: Prompt, proprio: torch.Tensor | None = None) -> Any:
        """Training pass over windows: pixels (B, W, cameras, 3, S, S) -> per-frame outputs."""

    @abstractmethod
    def compute_loss(self, batch: dict[str, torch.Tensor], gripper_weight: float = DEFAULT_GRIPPER_WEIGHT,
                     arm_weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
        """Batch: pixels (B, T, cams, 3, S, S), instruction_ids/instruction_mask (B, L), actions (B, T, chunk, 7)
        normalised, action_mask (B, T, chunk) bool, optional proprio (B, T, P). The T frames are consecutive
        steps of one episode; the prediction at step t sees the ``config.window`` frames ending at t (fewer at
        the start of the batch row), as the policy's history does at run time, so a row longer than the window
        trains every step in it at the cost of encoding each frame once. Returns {"loss", ...}; continuous
        structures add "pred_arm" (B, T, chunk, 6) and "pred_gripper" closure probabilities (B, T, chunk)."""

    # --- helpers ------------------------------------------------------------------------------------------------
    def encode_window(self, pixels: torch.Tensor, proprio: torch.Tensor | None) -> list[FrameTokens]:
        """(B, W, cams, 3, S, S) -> W FrameTokens, encoding all frames in one vision pass."""
        b, w = pixels.shape[:2]
        flat = self.frame_batch(pixels, proprio)
        seq = flat.seq.reshape(b, w, *flat.seq.shape[1:])
        images = None if flat.images is None else flat.images.reshape(b, w, *flat.images.shape[1:])
        return [FrameTokens(seq[:, t], None if images is None else images[:, t], flat.vision_positions)
                for t in range(w)]

    def build_sequence(self, prompt: Prompt, frames: list[FrameTokens], lrn_after: bool,
                       tail: torch.Tensor | None = None) -> TokenSequence:
        """[instruction][frame 1][LRN?][frame 2][LRN?]...[tail]. For cross-attention backbones, every position
        from a frame on attends to that frame's images only (Flamingo's most-recent-media rule)."""
        text = self.backbone.word_embedding(prompt.ids)
        b = text.shape[0]
        parts, masks, segment = [text], [prompt.mask], [torch.full((text.shape[1],), -1)]
        lrn_positions, length = [], text.shape[1]
        for t, frame in enumerate(frames):
            pieces = [frame.seq] + ([self.lrn_token.expand(b, 1, -1)] if lrn_after else [])
            for piece in pieces:
                parts.append(piece)
                length += piece.shape[1]
            if lrn_after:
                lrn_positions.append(length - 1)
            n = sum(p.shape[1] for p in pieces)
            masks.append(torch.ones(b, n, dtype=torch.bool, device=text.device))
            segment.append(torch.full((n,), t))
        if tail is not None:
            parts.append(tail)
            masks.append(torch.ones(b, tail.shape[1], dtype=torch.bool, device=text.device))
            segment.append(torch.full((tail.shape[1],), len(frames) - 1))
        embeds = torch.cat(parts, dim=1)
        mask = torch.cat(masks, dim=1)
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
        vision = None
        if self.backbone.cross_attention:
            images = torch.stack([f.images for f in frames], dim=1)  # (B, W, cams, T, D)
            cams = images.shape[2]
            image_frame = torch.arange(len(frames)).repeat_interleave(cams)
            seg = torch.cat(segment)
            image_mask = (seg[:, None] == image_frame[None, :]).to(embeds.device)
            vision = VisionContext(images.flatten(1, 2), image_mask[None].expand(b, -1, -1).long())
        return TokenSequence(embeds, mask, position_ids, vision, lrn_positions)

    def lrn_feature(self, prompt: Prompt, frame: FrameTokens) -> torch.Tensor:
        """Last hidden state (B, H) of the [LRN] token placed after one frame."""
        seq = self.build_sequence(prompt, [frame], lrn_after=True)
        return self.run_language(seq)[:, seq.lrn_positions[-1]]

    def frame_batch(self, pixels: torch.Tensor, proprio: torch.Tensor | None) -> FrameTokens:
        """(B, W, cams, 3, S, S) -> one FrameTokens batch of B*W independent frames."""
        return self.encode_frame(pixels.flatten(0, 1), None if proprio is None else proprio.flatten(0, 1))

    @staticmethod
    def continuous_loss(arm: torch.Tensor, gripper_logit: torch.Tensor, batch: dict[str, torch.Tensor],
                        gripper_weight: float = DEFAULT_GRIPPER_WEIGHT,
                        arm_weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
        target = torch.nan_to_num(batch["actions"].to(arm.dtype))  # masked-out entries may hold padding NaN
        losses = continuous_action_loss(arm, gripper_logit, target, batch["action_mask"].bool(),
                                        gripper_weight=gripper_weight, arm_weights=arm_weights)
        return {**losses, "pred_arm": arm.detach(), "pred_gripper": torch.sigmoid(gripper_logit.detach())}

    def over_histories(self, head, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run a causal temporal ``head`` (heads.TemporalHead) on per-frame features (B, T, H) so that the
        output at step t sees only the ``config.window`` features ending at t, exactly like the policy's rolling
        history at run time. Rows no longer than the window need one head pass; longer rows are cut into one
        left-aligned history per step, whose last temporal output alone goes through the chunk MLP (the frames
        are encoded once either way, only the small temporal part runs per step)."""
        b, t = features.shape[:2]
        window = self.config.window
        if t <= window:
            return head(features)
        steps = torch.arange(t, device=features.device)
        length = torch.clamp(steps + 1, max=window)  # frames in the history of each step
        index = (steps - length + 1)[:, None] + torch.arange(window, device=features.device)[None]
        histories = features[:, index.clamp(max=t - 1)]  # (B, T, window, H); past `length` unused (causal head)
        fused = head.temporal(histories.flatten(0, 1))
        last = fused[torch.arange(b * t, device=features.device), (length - 1).repeat(b)]
        return tuple(out.unflatten(0, (b, t)) for out in head.out(last))

    def run_language(self, seq: TokenSequence) -> torch.Tensor:
        hidden, _ = self.backbone.language_forward(seq.embeds, seq.mask.long(), seq.position_ids, seq.vision)
        return hidden
