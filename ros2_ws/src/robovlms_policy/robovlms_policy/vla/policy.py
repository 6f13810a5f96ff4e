"""Inference API for the policy node: reset(instruction), then step(images[, proprio]) -> an action chunk.

The policy keeps its own history. Each tick encodes only the new frame and stores the structure's per-frame item
(vision tokens, or the [LRN] feature for policy_head); the window is then served from that cache. Non-finite
network output raises NonFiniteActionError (nothing is returned for the node to act on)."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch.nn import functional as F

from .action_codec import ActionCodec, ActionStatistics
from .checkpoint import CheckpointError, load_checkpoint
from .config import VLAConfig
from .proprio import ProprioNormalizer
from .runners import load_dtype, make_runner
from .runtimes import RuntimeUnsupported
from .structures import NonFiniteActionError, Prompt, VLAStructure
from .tokenizer import encode_instructions

__all__ = ["CheckpointError", "NonFiniteActionError", "PolicyOutput", "RuntimeUnsupported", "VLAPolicy"]


@dataclass
class PolicyOutput:
    arm: np.ndarray      # (chunk, 6) float64, metres and radians per control period, base frame
    gripper: np.ndarray  # (chunk,) closure in [0, 1], 0 open, 1 closed
    latency_s: float


def _resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) -> (3, size, size), antialiased bilinear (the policy's one resize)."""
    return F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 HxWx3 RGB -> uint8 size x size x 3, exactly as VLAPolicy.preprocess resizes on the CPU, so frames
    stored at the checkpoint's size preprocess to the same pixels as the full-size frames they came from."""
    return _resize(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), size).permute(1, 2, 0).numpy()


class VLAPolicy:
    def __init__(self, model: VLAStructure, config: VLAConfig, tokenizer: Tokenizer, runtime: str = "eager",
                 checkpoint_dir: Path | None = None) -> None:
        self.model = model.eval()
        self.runtime = runtime
        self._runner = make_runner(runtime, self.model, checkpoint_dir)  # int8 quantises ``model`` in place
        self.config = config
        self.tokenizer = tokenizer
        self.codec = ActionCodec(ActionStatistics.from_dict(config.action_stats), config.embodiment, config.n_bins)
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self._mean = torch.tensor(config.image_mean, device=self.device).view(3, 1, 1)
        self._std = torch.tensor(config.image_std, device=self.device).view(3, 1, 1)
        self._proprio_norm = ProprioNormalizer.from_dict(config.proprio_stats) if config.proprio_stats else None
        self._history: deque[Any] = deque(maxlen=config.window if model.uses_history else 1)
        self._prompt: Prompt | None = None
        self.instruction: str | None = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", dtype: torch.dtype | None = None,
                        runtime: str = "eager") -> "VLAPolicy":
        """Load a checkpoint directory to run with ``runtime`` (vla.runtime.RUNTIMES); raises CheckpointError
        naming what is wrong, RuntimeUnsupported when the runtime cannot take it."""
        return cls(*load_checkpoint(path, device=device, dtype=load_dtype(runtime, dtype)), runtime=runtime,
                   checkpoint_dir=Path(path))

    camera_names = property(lambda self: list(self.config.camera_names))
    image_size = property(lambda self: self.config.image_size)
    window = property(lambda self: self.config.window)
    chunk = property(lambda self: self.config.chunk)
    embodiment = property(lambda self: self.config.embodiment)
    history_length = property(lambda self: len(self._history))

    def reset(self, instruction: str) -> None:
        """Start an episode: clears the history. An instruction longer than max_instruction_tokens is refused
        (ValueError): at run time a cut instruction could mean another task."""
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError("instruction must be a non-empty string")
        instruction = instruction.strip()
        n_tokens = len(self.tokenizer.encode(instruction).ids)
        if n_tokens > self.config.max_instruction_tokens:
            raise ValueError(f"instruction has {n_tokens} tokens; this checkpoint takes at most "
                             f"{self.config.max_instruction_tokens}")
        ids, mask = encode_instructions(self.tokenizer, [instruction], self.config.max_instruction_tokens, self.device)
        self._prompt = Prompt(ids, mask)
        self.instruction = instruction
        self._history.clear()

    def preprocess(self, images: dict[str, np.ndarray]) -> torch.Tensor:
        """Camera images (any size, uint8 HxWx3 RGB) -> normalised (1, cameras, 3, S, S) in checkpoint order."""
        if not isinstance(images, dict):
            raise ValueError(f"images must be a dict camera name -> image, got {type(images).__name__}")
        frames = []
        for name in self.config.camera_names:
            if name not in images:
                raise ValueError(f"camera {name!r} is missing; this policy needs {self.config.camera_names}")
            image = images[name]
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 \
                    or min(image.shape[:2]) < 1:
                desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
                raise ValueError(f"camera {name!r}: expected a uint8 HxWx3 RGB image, got {desc}")
            frames.append(torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1))
        size = self.config.image_size
        # On CPU, resizing the uint8 image is ~4x faster than resizing floats (rounding differs by <= 1/255).
        as_uint8 = self.device.type == "cpu"
        resized = [_resize(f if as_uint8 else f.float(), size).float() / 255.0 for f in frames]
        pixels = (torch.stack(resized) - self._mean) / self._std
        return pixels[None].to(self.dtype)

    def _proprio(self, proprio: np.ndarray | None) -> torch.Tensor | None:
        """Checkpoints trained without proprioception ignore it; those trained with it require it."""
        if self.config.proprio_dim == 0:
            return None
        if proprio is None:
            raise ValueError(f"this policy needs proprioception of size {self.config.proprio_dim}")
        array = np.asarray(proprio, dtype=np.float64).reshape(-1)
        if array.shape != (self.config.proprio_dim,) or not np.isfinite(array).all():
            raise ValueError(f"proprio must be {self.config.proprio_dim} finite values, got {np.asarray(proprio)!r}")
        if self._proprio_norm is not None:
            array = self._proprio_norm.normalize(array)
        return torch.from_numpy(array).to(self.device, self.dtype)[None]

    @torch.inference_mode()
    def step(self, images: dict[str, np.ndarray], proprio: np.ndarray | None = None) -> PolicyOutput:
        """One tick: encode the new frame, add it to the history, predict the chunk for it."""
        if self._prompt is None:
            raise RuntimeError("call reset(instruction) before step()")
        start = time.perf_counter()
        pixels = self.preprocess(images)
        self._history.append(self._runner.encode(pixels, self._proprio(proprio), self._prompt))
        prediction = self._runner.predict(list(self._history), self._prompt)
        if prediction.bins is not None:
            norm = self.codec.undiscretize(prediction.bins[0].cpu().numpy())
        else:
            norm = torch.cat([prediction.arm[0], prediction.gripper[0, :, None]], dim=-1).double().cpu().numpy()
        if not np.isfinite(norm).all():
            raise NonFiniteActionError("the model produced NaN or inf actions")
        arm, closure = self.codec.to_units(norm)
        return PolicyOutput(arm.astype(np.float64), closure.astype(np.float64), time.perf_counter() - start)
