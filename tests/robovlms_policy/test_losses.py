"""Masked action losses: masking, arm loss kinds, gripper and per-dimension arm weighting, error cases."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robovlms_policy.vla.losses import continuous_action_loss, discrete_action_loss


def batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    pred_arm = torch.randn(2, 4, 6, generator=gen) * 2  # large errors so huber and mse differ
    logit = torch.randn(2, 4, generator=gen)
    target_arm = torch.rand(2, 4, 6, generator=gen) * 2 - 1
    target = torch.cat([target_arm, (torch.rand(2, 4, 1, generator=gen) > 0.5).float()], -1)
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    return pred_arm, logit, target, mask


def test_masked_entries_do_not_affect_the_loss_or_gradient():
    pred_arm, logit, target, mask = batch()
    pred_arm.requires_grad_(True)
    base = continuous_action_loss(pred_arm, logit, target, mask)
    base["loss"].backward()
    assert torch.all(pred_arm.grad[~mask] == 0) and torch.all(torch.isfinite(pred_arm.grad))

    changed_target, changed_pred = target.clone(), pred_arm.detach().clone()
    changed_target[~mask] = float("nan")
    changed_pred[~mask] = 1e6
    changed_logit = logit.clone()
    changed_logit[~mask] = -50.0
    other = continuous_action_loss(changed_pred, changed_logit, changed_target, mask)
    for key in ("loss", "arm", "gripper"):
        assert torch.equal(other[key], base[key].detach())


def test_loss_values_match_hand_computation():
    pred_arm, logit, target, mask = batch()
    out = continuous_action_loss(pred_arm, logit, target, mask, gripper_weight=0.5)
    expected_arm = ((pred_arm[mask] - target[mask][:, :6]) ** 2).mean()
    p = torch.sigmoid(logit[mask])
    y = target[mask][:, 6]
    expected_gripper = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    torch.testing.assert_close(out["arm"], expected_arm)
    torch.testing.assert_close(out["gripper"], expected_gripper)
    torch.testing.assert_close(out["loss"], expected_arm + 0.5 * expected_gripper)


def test_huber_differs_from_mse_on_large_errors_and_matches_torch():
    pred_arm, logit, target, mask = batch()
    mse = continuous_action_loss(pred_arm, logit, target, mask, arm_loss="mse")["arm"]
    huber = continuous_action_loss(pred_arm, logit, target, mask, arm_loss="huber")["arm"]
    assert huber < mse
    torch.testing.assert_close(huber, F.huber_loss(pred_arm[mask], target[mask][:, :6], delta=1.0))
    small = target[..., :6] + 0.1  # inside the quadratic zone huber = mse / 2
    torch.testing.assert_close(
        continuous_action_loss(small, logit, target, mask, arm_loss="huber")["arm"],
        continuous_action_loss(small, logit, target, mask, arm_loss="mse")["arm"] / 2,
    )


def test_gripper_weight_scales_only_the_gripper_term():
    pred_arm, logit, target, mask = batch()
    zero = continuous_action_loss(pred_arm, logit, target, mask, gripper_weight=0.0)
    ten = continuous_action_loss(pred_arm, logit, target, mask, gripper_weight=10.0)
    torch.testing.assert_close(zero["loss"], zero["arm"])
    torch.testing.assert_close(ten["loss"], ten["arm"] + 10.0 * ten["gripper"])
    torch.testing.assert_close(zero["gripper"], ten["gripper"])


def test_arm_weights_weight_each_dimension_relative_to_their_mean():
    pred_arm, logit, target, mask = batch()
    squared = (pred_arm[mask] - target[mask][:, :6]) ** 2  # (entries, 6)
    equal = continuous_action_loss(pred_arm, logit, target, mask, arm_weights=[2.0] * 6)
    torch.testing.assert_close(equal["arm"], continuous_action_loss(pred_arm, logit, target, mask)["arm"])
    weights = torch.tensor([5.0, 5.0, 1.0, 1.0, 1.0, 1.0])
    out = continuous_action_loss(pred_arm, logit, target, mask, arm_weights=weights.tolist())
    torch.testing.assert_close(out["arm"], (squared * weights).mean() / weights.mean())
    xy_only = continuous_action_loss(pred_arm, logit, target, mask, arm_weights=[1, 1, 0, 0, 0, 0])
    torch.testing.assert_close(xy_only["arm"], squared[:, :2].mean())
    torch.testing.assert_close(out["gripper"], equal["gripper"])


@pytest.mark.parametrize("weights", [[1.0] * 5, [0.0] * 6, [1, 1, 1, 1, 1, -1], [1, 1, 1, 1, 1, float("nan")]])
def test_bad_arm_weights_are_rejected(weights):
    pred_arm, logit, target, mask = batch()
    with pytest.raises(ValueError, match="arm_weights must be six"):
        continuous_action_loss(pred_arm, logit, target, mask, arm_weights=weights)


def test_bad_arguments_give_clear_errors():
    pred_arm, logit, target, mask = batch()
    with pytest.raises(ValueError, match="selects no entries"):
        continuous_action_loss(pred_arm, logit, target, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="arm_loss"):
        continuous_action_loss(pred_arm, logit, target, mask, arm_loss="l1")
    with pytest.raises(ValueError, match="gripper_weight"):
        continuous_action_loss(pred_arm, logit, target, mask, gripper_weight=-1.0)
    with pytest.raises(ValueError, match="bool"):
        continuous_action_loss(pred_arm, logit, target, mask.float())
    with pytest.raises(ValueError, match="shapes disagree"):
        continuous_action_loss(pred_arm, logit[:, :3], target, mask)
    bad_target = target.clone()
    bad_target[0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        continuous_action_loss(pred_arm, logit, bad_target, mask)


def test_discrete_loss_is_masked_cross_entropy():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 5, 11, generator=gen)
    ids = torch.randint(0, 11, (2, 5), generator=gen)
    mask = torch.tensor([[True, True, False, False, False], [False, True, True, True, False]])
    loss = discrete_action_loss(logits, ids, mask)
    torch.testing.assert_close(loss, F.cross_entropy(logits[mask], ids[mask]))
    changed_ids, changed_logits = ids.clone(), logits.clone()
    changed_ids[~mask] = -100  # padding ids outside the vocabulary are fine where masked
    changed_logits[~mask] = 1e4
    assert torch.equal(discrete_action_loss(changed_logits, changed_ids, mask), loss)
    with pytest.raises(ValueError, match="selects no entries"):
        discrete_action_loss(logits, ids, torch.zeros_like(mask))
    bad_ids = ids.clone()
    bad_ids[0, 0] = 11
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        discrete_action_loss(logits, bad_ids, mask)
    with pytest.raises(ValueError, match=r"\(B, L, V\)"):
        discrete_action_loss(logits[0], ids[0], mask[0])
