"""LightningModule fine-tuning a VLA structure with its own ``compute_loss``: augmentation on the batch,
warm-up + cosine learning rate, validation loss, per-dimension action error and gripper accuracy, and an optional
auxiliary loss (a training-only linear probe on the [LRN] features, never exported)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from robovlms_policy.vla.losses import DEFAULT_GRIPPER_WEIGHT, check_arm_weights
from robovlms_policy.vla.proprio import TCP_POSITION
from robovlms_policy.vla.structures import VLAStructure

from .augment import FrameProcessor

ARM_NAMES = ("x", "y", "z", "rx", "ry", "rz")


SCHEDULES = ("constant", "cosine", "half_cosine")


@dataclass
class OptimizerConfig:
    """AdamW; linear warm-up from 0 to ``lr`` over ``warmup_steps`` (or ``warmup_ratio`` of the run), then
    ``schedule`` until ``total_steps``: constant; cosine decay to ``min_lr_ratio`` x lr; or half_cosine, the
    first half of that decay (the run ends half-way down, for a run to be continued). Constant after warm-up
    when ``total_steps`` is 0."""

    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    total_steps: int = 0
    min_lr_ratio: float = 0.1
    gripper_weight: float = DEFAULT_GRIPPER_WEIGHT
    schedule: str = "cosine"
    warmup_ratio: float = 0.0  # > 0: warm-up over this fraction of total_steps (replaces warmup_steps)
    # Relative arm loss weights (x, y, z, rx, ry, rz); None: equal. Continuous structures only.
    arm_weights: tuple[float, ...] | None = None
    # > 0: add this times the error of a linear probe regressing the episode's final TCP position from every
    # frame's [LRN] feature (policy_head structure with proprioception). It asks the feature to say where the
    # task ends, e.g. where the block to grasp is, which the action loss alone does not make it learn.
    final_position_weight: float = 0.0
    # The vision tower's learning rate as a fraction of ``lr``; 0 freezes it (no gradients through it at all).
    # A tower left at its random initialisation still tells where a small object is; the action loss alone can
    # train that out of it (benchmarks/block_position_probe.py measures both).
    vision_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if not (self.lr > 0 and self.weight_decay >= 0 and self.warmup_steps >= 0 and self.total_steps >= 0
                and 0 <= self.min_lr_ratio <= 1 and math.isfinite(self.gripper_weight)
                and self.gripper_weight >= 0 and 0 <= self.warmup_ratio < 1
                and math.isfinite(self.final_position_weight) and self.final_position_weight >= 0
                and math.isfinite(self.vision_lr_scale) and self.vision_lr_scale >= 0):
            raise ValueError(f"need lr > 0, weight_decay >= 0, warmup_steps >= 0, total_steps >= 0, "
                             f"min_lr_ratio in [0, 1], gripper_weight >= 0, warmup_ratio in [0, 1), "
                             f"final_position_weight >= 0, vision_lr_scale >= 0; got {self}")
        if self.warmup_steps > 0 and self.warmup_ratio > 0:
            raise ValueError("give one warm-up length: warmup_steps or warmup_ratio, not both")
        self.arm_weights = check_arm_weights(self.arm_weights)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is not one of {SCHEDULES}")

    @property
    def warmup(self) -> int:
        return math.ceil(self.warmup_ratio * self.total_steps) if self.warmup_ratio > 0 else self.warmup_steps

    def lr_factor(self, step: int) -> float:
        warmup = self.warmup
        if step < warmup:
            return (step + 1) / warmup
        if self.total_steps <= warmup or self.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / (self.total_steps - warmup))
        if self.schedule == "half_cosine":
            progress /= 2
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def check_final_position_loss(model: VLAStructure) -> None:
    """ValueError unless ``model`` gives the [LRN] features the final-position loss reads."""
    if model.config.structure != "policy_head" or not model.config.proprio_dim:
        raise ValueError(f"optim.final_position_weight needs a policy_head checkpoint with proprioception; this one "
                         f"is {model.config.structure} with proprio_dim {model.config.proprio_dim}")


class VLAFineTuner(L.LightningModule):
    """Trains every parameter of ``model`` that requires grad (and the auxiliary probe, if any), the vision
    tower's at ``optim.vision_lr_scale`` x lr (frozen at 0); keeps the per-step losses for the summary."""

    def __init__(self, model: VLAStructure, optim: OptimizerConfig, frames: FrameProcessor) -> None:
        super().__init__()
        self.model = model
        self.optim = optim
        self.frames = frames
        if optim.vision_lr_scale == 0:
            model.backbone.vision_tower.requires_grad_(False)
        self.final_position_probe = None
        if optim.final_position_weight > 0:
            check_final_position_loss(model)
            self.final_position_probe = nn.Linear(model.backbone.hidden_size,
                                                  TCP_POSITION.stop - TCP_POSITION.start)
        self.loss_history: list[float] = []
        self.samples_seen = 0
        self.steps_seen = 0  # supervised steps (frames with an action) the optimiser processed
        self._generator = torch.Generator().manual_seed(0)

    def _pixels(self, batch: dict[str, torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        batch = dict(batch)
        batch["pixels"] = self.frames(batch.pop("frames"), train, self._generator if train else None)
        return batch

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.model.compute_loss(self._pixels(batch, train=True), self.optim.gripper_weight,
                                      self.optim.arm_weights)
        loss = out["loss"]
        size = batch["actions"].shape[0]
        if self.final_position_probe is not None:
            final_position = self._final_position_loss(out, batch)
            loss = loss + self.optim.final_position_weight * final_position
            self.log("train/final_position_loss", final_position, batch_size=size)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {self.global_step}")
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        for name in ("arm", "gripper"):
            if name in out:
                self.log(f"train/{name}_loss", out[name], batch_size=size)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=size)
        self.loss_history.append(float(loss.detach()))
        self.samples_seen += size
        self.steps_seen += int(batch["action_mask"][..., 0].sum())
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.model.compute_loss(self._pixels(batch, train=False), self.optim.gripper_weight,
                                      self.optim.arm_weights)
        size = int(batch["action_mask"][..., 0].sum())
        self.log("val/loss", out["loss"], prog_bar=True, batch_size=size, sync_dist=True)
        if self.final_position_probe is not None:
            self.log("val/final_position_loss", self._final_position_loss(out, batch), batch_size=size)
        if "pred_arm" not in out:
            return
        mask = batch["action_mask"].bool()
        target = batch["actions"][mask]
        error = (out["pred_arm"][mask] - target[:, :6]).abs().mean(dim=0)
        for name, value in zip(ARM_NAMES, error):
            self.log(f"val/arm_error_{name}", value, batch_size=size)
        self.log("val/arm_error", error.mean(), prog_bar=True, batch_size=size)
        correct = ((out["pred_gripper"][mask] > 0.5) == (target[:, 6] > 0.5)).float().mean()
        self.log("val/gripper_accuracy", correct, prog_bar=True, batch_size=size)

    def _final_position_loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """MSE of the probe's final TCP position (standardised) over the supervised steps."""
        if "final_position" not in batch:
            raise ValueError("optim.final_position_weight needs rows with proprioception (final_position)")
        supervised = batch["action_mask"][..., 0].bool()
        target = batch["final_position"][:, None].expand(-1, supervised.shape[1], -1)[supervised]
        return F.mse_loss(self.final_position_probe(out["lrn_features"][supervised]), target)

    def configure_optimizers(self):
        # Biases and normalisation weights (1-D tensors) are not decayed, as is usual for transformers.
        vision = {id(p) for p in self.model.backbone.vision_tower.parameters()}
        groups = []
        for in_vision, lr in ((False, self.optim.lr), (True, self.optim.lr * self.optim.vision_lr_scale)):
            params = [p for p in self.parameters() if p.requires_grad and (id(p) in vision) == in_vision]
            groups += [{"params": [p for p in params if p.ndim >= 2], "weight_decay": self.optim.weight_decay,
                        "lr": lr},
                       {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, "lr": lr}]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=self.optim.lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, self.optim.lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
