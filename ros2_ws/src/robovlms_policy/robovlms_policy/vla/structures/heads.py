"""Action heads: map features to a normalised action chunk (arm in [-1, 1], gripper logits).

Temporal heads (LSTM, GPT, MLP) are causal: the output at frame t depends on frames <= t only, so training on a
whole window and predicting on the newest frame of a history agree. Each is a ``temporal`` fusion of the
frame features followed by the ``out`` chunk MLP, so a caller that needs one step's output per history runs
the MLP on that step alone."""
from __future__ import annotations

import torch
from torch import nn


class ChunkMLP(nn.Module):
    """Feature (..., D) -> arm (..., chunk, 6) through tanh, gripper logits (..., chunk)."""

    def __init__(self, in_dim: int, chunk: int, hidden: int = 256) -> None:
        super().__init__()
        self.chunk = chunk
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, chunk * 7))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(features).unflatten(-1, (self.chunk, 7))
        return torch.tanh(out[..., :6]), out[..., 6]


class TemporalHead(nn.Module):
    """``out(temporal(features))``; subclasses define the causal ``temporal`` fusion and build ``out``."""

    out: ChunkMLP

    def temporal(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.out(self.temporal(features))


class LSTMHead(TemporalHead):
    def __init__(self, dim: int, chunk: int, layers: int = 2) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers=layers, batch_first=True)
        self.out = ChunkMLP(dim, chunk)

    def temporal(self, features: torch.Tensor) -> torch.Tensor:
        return self.lstm(features)[0]


class GPTHead(TemporalHead):
    """A small causal transformer over the window of frame features."""

    def __init__(self, dim: int, chunk: int, max_window: int, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(max_window, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = ChunkMLP(dim, chunk)

    def temporal(self, features: torch.Tensor) -> torch.Tensor:
        w = features.shape[1]
        causal = nn.Transformer.generate_square_subsequent_mask(w, device=features.device, dtype=features.dtype)
        return self.blocks(features + self.position[:w], mask=causal, is_causal=True)


class MLPHead(TemporalHead):
    """Each frame's feature next to the running mean of the window so far."""

    def __init__(self, dim: int, chunk: int) -> None:
        super().__init__()
        self.out = ChunkMLP(2 * dim, chunk)

    def temporal(self, features: torch.Tensor) -> torch.Tensor:
        counts = torch.arange(1, features.shape[1] + 1, device=features.device, dtype=features.dtype)
        running_mean = features.cumsum(1) / counts[None, :, None]
        return torch.cat([features, running_mean], dim=-1)


def build_policy_head(kind: str, dim: int, chunk: int, window: int) -> TemporalHead:
    if kind == "lstm":
        return LSTMHead(dim, chunk)
    if kind == "gpt":
        return GPTHead(dim, chunk, window)
    if kind == "mlp":
        return MLPHead(dim, chunk)
    raise ValueError(f"unknown policy head {kind!r}; known: lstm, gpt, mlp")
