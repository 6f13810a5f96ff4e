"""LightningModule fine-tuning a VLA structure with its own ``compute_loss``."""
from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch

from robovlms_policy.vla.structures import VLAStructure


@dataclass
class OptimizerConfig:
    """AdamW with an optional linear warm-up from 0 to ``lr`` over ``warmup_steps`` optimiser steps."""

    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError(f"need lr > 0, weight_decay >= 0, warmup_steps >= 0; got {self}")


class VLAFineTuner(L.LightningModule):
    """Trains every parameter of ``model`` that requires grad; keeps the per-step losses for the summary."""

    def __init__(self, model: VLAStructure, optim: OptimizerConfig) -> None:
        super().__init__()
        self.model = model
        self.optim = optim
        self.loss_history: list[float] = []
        self.samples_seen = 0

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.model.compute_loss(batch)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {self.global_step}")
        batch_size = batch["actions"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        for name, value in out.items():
            if name != "loss" and torch.is_tensor(value) and value.numel() == 1:
                self.log(f"train/{name}", value, batch_size=batch_size)
        self.loss_history.append(float(loss.detach()))
        self.samples_seen += batch_size
        return loss

    def configure_optimizers(self):
        # Biases and normalisation weights (1-D tensors) are not decayed, as is usual for transformers.
        params = [p for p in self.model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": self.optim.weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=self.optim.lr)
        warmup = self.optim.warmup_steps
        if warmup == 0:
            return optimizer
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
