"""Training losses for continuous and discrete action heads, masked over the action chunk.

Masks are boolean, True = the entry counts. Masked-out entries are removed by boolean indexing
before any arithmetic, so their values (even NaN) never reach the loss or its gradient.
A mask that selects nothing raises ValueError: it always means a data-pipeline bug (the first
action of every chunk is real), and silently returning 0 would hide it.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

ARM_LOSSES = ("mse", "huber")
DEFAULT_GRIPPER_WEIGHT = 0.01  # RoboVLMs' weight of the gripper BCE next to the arm regression
HUBER_DELTA = 1.0  # normalised actions live in [-1, 1], so errors above 1 are the outliers to damp


def _check_mask(mask: torch.Tensor, batch_shape: torch.Size, what: str) -> None:
    if mask.dtype != torch.bool:
        raise ValueError(f"{what} mask must be a bool tensor, got {mask.dtype}")
    if mask.shape != batch_shape:
        raise ValueError(f"{what} mask shape {tuple(mask.shape)} does not match {tuple(batch_shape)}")
    if not bool(mask.any()):
        raise ValueError(f"{what} mask selects no entries; every batch needs at least one valid action")


def continuous_action_loss(
    pred_arm: torch.Tensor,
    pred_gripper_logit: torch.Tensor,
    target_norm: torch.Tensor,
    mask: torch.Tensor,
    arm_loss: str = "mse",
    gripper_weight: float = DEFAULT_GRIPPER_WEIGHT,
    arm_weights: Sequence[float] | None = None,
) -> dict[str, torch.Tensor]:
    """Arm regression + weighted gripper BCE over the valid entries of a chunk.

    Args:
        pred_arm: (..., 6) predicted normalised arm actions.
        pred_gripper_logit: (...,) gripper logits (sigmoid -> closure, 1 = closed).
        target_norm: (..., 7) normalised targets from ``ActionCodec.normalize``.
        mask: (...) bool, True where the target is a real action.
        arm_loss: "mse" or "huber" (delta 1), averaged over valid entries and the 6 dims.
        gripper_weight: factor on the gripper BCE (RoboVLMs uses 0.01).
        arm_weights: one factor per arm dimension (x, y, z, rx, ry, rz), relative: the arm loss is divided by
            their mean, so equal weights (or None) give the plain average.

    Returns:
        {"loss": arm + gripper_weight * gripper, "arm": ..., "gripper": ...}, scalar tensors.
    """
    if arm_loss not in ARM_LOSSES:
        raise ValueError(f"arm_loss must be one of {ARM_LOSSES}, got {arm_loss!r}")
    if not (math.isfinite(gripper_weight) and gripper_weight >= 0):
        raise ValueError(f"gripper_weight must be finite and >= 0, got {gripper_weight}")
    if pred_arm.shape[-1:] != (6,) or target_norm.shape[-1:] != (7,):
        raise ValueError(
            f"pred_arm must be (..., 6) and target_norm (..., 7), got {tuple(pred_arm.shape)}, {tuple(target_norm.shape)}"
        )
    batch_shape = pred_arm.shape[:-1]
    if target_norm.shape[:-1] != batch_shape or pred_gripper_logit.shape != batch_shape:
        raise ValueError(
            f"shapes disagree: pred_arm {tuple(pred_arm.shape)}, pred_gripper_logit {tuple(pred_gripper_logit.shape)}, "
            f"target_norm {tuple(target_norm.shape)}"
        )
    _check_mask(mask, batch_shape, "continuous loss")
    weights = check_arm_weights(arm_weights)

    pred_arm_valid, target_valid = pred_arm[mask], target_norm[mask]
    if not bool(torch.isfinite(target_valid).all()):
        raise ValueError("target_norm contains NaN or inf where the mask is set")
    target_arm = target_valid[:, :6].to(pred_arm.dtype)
    if arm_loss == "mse":
        per_entry = F.mse_loss(pred_arm_valid, target_arm, reduction="none")
    else:
        per_entry = F.huber_loss(pred_arm_valid, target_arm, reduction="none", delta=HUBER_DELTA)
    if weights is None:
        arm = per_entry.mean()
    else:
        weights = torch.as_tensor(weights, dtype=per_entry.dtype, device=per_entry.device)
        arm = (per_entry * weights).mean() / weights.mean()
    gripper_target = target_valid[:, 6].to(pred_gripper_logit.dtype)
    gripper = F.binary_cross_entropy_with_logits(pred_gripper_logit[mask], gripper_target)
    return {"loss": arm + gripper_weight * gripper, "arm": arm, "gripper": gripper}


def check_arm_weights(arm_weights: Sequence[float] | None) -> tuple[float, ...] | None:
    """``arm_weights`` as a tuple of six finite, non-negative factors, not all zero (None stays None)."""
    if arm_weights is None:
        return None
    weights = tuple(float(w) for w in arm_weights)
    if len(weights) != 6 or not all(math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
        raise ValueError(f"arm_weights must be six finite factors >= 0 (x, y, z, rx, ry, rz), not all zero; "
                         f"got {arm_weights!r}")
    return weights


def discrete_action_loss(logits: torch.Tensor, target_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (B, L, V) against ``target_ids`` (B, L) over ``mask`` (B, L)."""
    if logits.ndim != 3 or target_ids.shape != logits.shape[:2]:
        raise ValueError(
            f"logits must be (B, L, V) and target_ids (B, L), got {tuple(logits.shape)}, {tuple(target_ids.shape)}"
        )
    _check_mask(mask, target_ids.shape, "discrete loss")
    valid_ids = target_ids[mask].long()
    vocab = logits.shape[-1]
    if bool((valid_ids < 0).any() or (valid_ids >= vocab).any()):
        raise ValueError(f"target ids must lie in [0, {vocab}) where the mask is set")
    return F.cross_entropy(logits[mask], valid_ids)
