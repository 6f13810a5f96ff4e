"""Batch frames (uint8) -> normalised pixels, with training-time augmentation.

Random shift as RoboVLMs' rgb_pad / gripper_pad (pad each image by a few pixels with its border, crop back at
a random offset: about 5% of the side, 10 px of CALVIN's 200 px static view and 4 of its 84 px gripper view)
and colour jitter (brightness, contrast, saturation, hue). One draw per (row, camera), shared by all frames
of the row, so the history stays consistent, as a slightly moved camera would be. Validation and inference
see the plain frames.

Instructions can be made noisy too (``noisy_instruction``, applied by the training collator): a made-up word
inserted, or one word replaced by a made-up word, so that a policy trained on a few phrasings per task learns
to act on the words it knows and pass over ones it has never seen (as in a user's rephrasing).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

# RGB -> YIQ: hue is a rotation of the I, Q chroma plane. Y is the luma (grey level).
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_RGB = torch.linalg.inv(_YIQ)
_LUMA = _YIQ[:1]


@dataclass(frozen=True)
class AugmentConfig:
    shift_fraction: float = 0.05  # of the image side, per camera
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02  # fraction of a full turn
    word_insertion: float = 0.0  # probability of inserting one made-up word into a training instruction
    word_replacement: float = 0.0  # probability of replacing one of its words with a made-up word

    def __post_init__(self) -> None:
        values = (self.shift_fraction, self.brightness, self.contrast, self.saturation, self.hue,
                  self.word_insertion, self.word_replacement)
        if any(not math.isfinite(v) or v < 0 for v in values) or self.shift_fraction >= 0.5 or self.hue > 0.5 \
                or max(self.word_insertion, self.word_replacement) > 1:
            raise ValueError("augmentation strengths must be >= 0 (shift < 0.5, hue <= 0.5, word probabilities "
                             f"<= 1), got {self}")

    @property
    def changes_instructions(self) -> bool:
        return self.word_insertion > 0 or self.word_replacement > 0


_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def noisy_instruction(text: str, config: AugmentConfig, rng: np.random.Generator) -> str:
    """``text`` with, each at its probability, one word replaced by a made-up word (2-8 random lower-case
    letters) and one made-up word inserted at a random place."""
    words = text.split()

    def made_up() -> str:
        return "".join(rng.choice(_LETTERS, rng.integers(2, 9)))

    if words and rng.random() < config.word_replacement:
        words[rng.integers(len(words))] = made_up()
    if rng.random() < config.word_insertion:
        words.insert(int(rng.integers(len(words) + 1)), made_up())
    return " ".join(words)


class FrameProcessor:
    """Turns ``frames`` (B, T, cameras, S, S, 3) uint8 into normalised pixels (B, T, cameras, 3, S, S)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], augment: AugmentConfig | None = None) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.augment = augment

    def __call__(self, frames: torch.Tensor, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        images = frames.permute(0, 1, 2, 5, 3, 4).float() / 255.0  # (B, T, cams, 3, S, S)
        if train and self.augment is not None:
            images = self._augment(images, generator)
        return (images - self.mean.to(images.device)) / self.std.to(images.device)

    def _augment(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        b, t, cams, _, size, _ = images.shape
        pad = int(round(self.augment.shift_fraction * size))
        if pad > 0:
            images = _random_shift(images, pad, generator)
        matrix, offset = self._colour_transform(images, generator)
        flat = images.permute(0, 2, 3, 1, 4, 5).reshape(b * cams, 3, -1)  # one 3x3 map per (row, camera)
        flat = torch.baddbmm(offset.reshape(b * cams, 3, 1), matrix.reshape(b * cams, 3, 3), flat)
        return flat.reshape(b, cams, 3, t, size, size).permute(0, 3, 1, 2, 4, 5).clamp(0.0, 1.0)

    def _colour_transform(self, images: torch.Tensor, generator: torch.Generator | None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """Brightness, contrast, saturation and hue jitter composed into one affine colour map per (row, camera):
        (B, cams, 3, 3) and offsets (B, cams, 3). Contrast pivots on the mean grey level of the row's frames."""
        cfg = self.augment
        b, cams = images.shape[0], images.shape[2]

        def uniform(strength: float) -> torch.Tensor:
            return 1 + strength * (2 * torch.rand(b, cams, 1, 1, generator=generator) - 1)

        eye = torch.eye(3).expand(b, cams, 3, 3)
        luma = _LUMA.expand(b, cams, 1, 3)
        brightness = uniform(cfg.brightness) * eye
        contrast = uniform(cfg.contrast)
        grey = (images.mean(dim=(1, 4, 5)) * _LUMA[0]).sum(-1)[..., None, None]  # (B, cams, 1, 1)
        saturation = uniform(cfg.saturation)
        saturate = saturation * eye + (1 - saturation) * torch.ones(3, 1) * luma
        angle = (uniform(cfg.hue) - 1) * 2 * math.pi  # in [-hue, hue] turns
        cos, sin = torch.cos(angle)[..., 0, 0], torch.sin(angle)[..., 0, 0]
        rotation = torch.zeros(b, cams, 3, 3)
        rotation[..., 0, 0] = 1
        rotation[..., 1, 1], rotation[..., 1, 2], rotation[..., 2, 1], rotation[..., 2, 2] = cos, -sin, sin, cos
        hue = _RGB @ rotation @ _YIQ
        colour = hue @ saturate  # applied after brightness and contrast
        # contrast: c * (x - g) + g on the brightened image, whose grey level is brightness * g
        matrix = colour @ (contrast * brightness)
        offset = (colour @ torch.ones(3, 1))[..., 0] * ((1 - contrast) * brightness[..., :1, :1] * grey)[..., 0]
        return matrix, offset


def _random_shift(images: torch.Tensor, pad: int, generator: torch.Generator | None) -> torch.Tensor:
    """Pad by ``pad`` pixels (replicating the border) and crop at one random offset per (row, camera)."""
    b, t, cams, c, size, _ = images.shape
    padded = F.pad(images.reshape(b * t * cams, c, size, size), (pad,) * 4, mode="replicate")
    padded = padded.reshape(b, t, cams, c, size + 2 * pad, size + 2 * pad)
    offsets = torch.randint(0, 2 * pad + 1, (b, cams, 2), generator=generator)
    out = torch.empty_like(images)
    for row in range(b):
        for cam in range(cams):
            dy, dx = (int(v) for v in offsets[row, cam])
            out[row, :, cam] = padded[row, :, cam, :, dy:dy + size, dx:dx + size]
    return out
