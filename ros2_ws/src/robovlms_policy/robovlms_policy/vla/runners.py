"""The runners behind each inference runtime (``runtimes``): how a policy's two per-tick calls run. ``encode``
turns one observation into the item the policy keeps in its history (the expensive vision + VLM pass);
``predict`` turns the window of items into the chunk. A runtime that cannot take a checkpoint's structure or the
device says so at load (RuntimeUnsupported); none falls back to another silently.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from .runtimes import CUDA_ONLY, RUNTIMES, RuntimeUnsupported
from .structures import ActionPrediction, Prompt, VLAStructure


class Runner(Protocol):
    def encode(self, pixels: torch.Tensor, proprio: torch.Tensor | None, prompt: Prompt) -> Any: ...

    def predict(self, history: list[Any], prompt: Prompt) -> ActionPrediction: ...


class EagerRunner:
    def __init__(self, model: VLAStructure) -> None:
        self.model = model

    def encode(self, pixels: torch.Tensor, proprio: torch.Tensor | None, prompt: Prompt) -> Any:
        return self.model.history_item(self.model.encode_frame(pixels, proprio), prompt)

    def predict(self, history: list[Any], prompt: Prompt) -> ActionPrediction:
        return self.model.predict(history, prompt)


class CompiledRunner(EagerRunner):
    """torch.compile of both calls; ``mode`` reduce-overhead adds CUDA-graph capture. The encoder compiles once
    (dynamic shapes); the prediction takes the history as a list, whose length torch guards on, so it compiles
    once per history length (1 .. window) while the first episode fills the history: the recompile limit is
    raised to cover them, or dynamo would fall back to eager past its default of 8."""

    def __init__(self, model: VLAStructure, mode: str | None = None) -> None:
        super().__init__(model)
        dynamo_config = torch._dynamo.config
        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, model.config.window + 2)
        self._encode = torch.compile(super().encode, dynamic=True, mode=mode)
        self._predict = torch.compile(super().predict, dynamic=True, mode=mode)

    def encode(self, pixels, proprio, prompt):
        return self._encode(pixels, proprio, prompt)

    def predict(self, history, prompt):
        return self._predict(history, prompt)


def make_runner(runtime: str, model: VLAStructure, checkpoint_dir: Path | None = None) -> Runner:
    """The runner for ``runtime`` (``model`` already on its device and dtype; see ``load_dtype``)."""
    if runtime not in RUNTIMES:
        raise RuntimeUnsupported(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    device = next(model.parameters()).device
    if runtime in CUDA_ONLY and device.type != "cuda":
        raise RuntimeUnsupported(f"runtime {runtime} runs on CUDA devices only (this policy is on {device}); on a "
                                 "CPU use eager, int8, compile or onnx")
    if runtime == "int8":
        if device.type != "cpu":
            raise RuntimeUnsupported("runtime int8 (torch dynamic quantisation) runs on the CPU only; on CUDA use "
                                     "bf16 or cuda_graph")
        # In place: a quantised copy would hold the fp32 weights twice at load (2x peak memory at KosMos-2 size).
        # torch 2.13 deprecates quantised tensors in favour of torchao but still runs them; its notice is not the
        # user's to act on.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*deprecated.*")
            return EagerRunner(torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8,
                                                                      inplace=True))
    if runtime == "compile":
        return CompiledRunner(model)
    if runtime == "cuda_graph":
        return CompiledRunner(model, mode="reduce-overhead")
    if runtime == "onnx":
        from .onnx_export import OnnxRunner
        return OnnxRunner(model, checkpoint_dir)
    return EagerRunner(model)


def load_dtype(runtime: str, dtype: torch.dtype | None) -> torch.dtype | None:
    """The dtype to load the weights in: bf16 for the bf16 runtime, else what was asked (default fp32)."""
    if runtime == "bf16":
        if dtype not in (None, torch.bfloat16):
            raise RuntimeUnsupported(f"runtime bf16 loads bfloat16 weights; dtype {dtype} contradicts it")
        return torch.bfloat16
    return dtype
