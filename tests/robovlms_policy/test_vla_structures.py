"""Every backbone x structure on tiny configs: shapes, learning, save/load and cached == recomputed."""
from __future__ import annotations

import itertools
import json

import pytest
import torch

from robovlms_policy.vla.checkpoint import load_checkpoint, save_checkpoint
from robovlms_policy.vla.tokenizer import build_tiny_tokenizer
from vla_helpers import BACKBONES, CAMERAS, STRUCTURES, fixed_batch, prompt, tiny_config, tiny_model

COMBOS = list(itertools.product(BACKBONES, STRUCTURES))
IDS = [f"{b}-{s}" for b, s in COMBOS]


def _forward(model, batch):
    p = prompt(["pick up the red block", "open the drawer"][: batch["pixels"].shape[0]])
    if model.config.structure == "one_step_discrete":
        targets = model.target_ids(batch["actions"], batch["action_mask"])
        return model(batch["pixels"], p, None, targets)
    return model(batch["pixels"], p)


def _step_through(model, pixels, p):
    """Feed frames one at a time through the policy-side API; returns each tick's prediction."""
    history, outputs = [], []
    for t in range(pixels.shape[1]):
        frame = model.encode_frame(pixels[:, t])
        history.append(model.history_item(frame, p))
        history = history[-(model.config.window if model.uses_history else 1):]
        outputs.append(model.predict(history, p))
    return outputs


@pytest.mark.parametrize(("backbone", "structure"), COMBOS, ids=IDS)
def test_output_shapes(backbone, structure):
    model = tiny_model(backbone, structure)
    config = model.config
    batch = fixed_batch(config)
    with torch.no_grad():
        out = _forward(model, batch)
        pred = _step_through(model, batch["pixels"][:1, :1], prompt(["pick up the red block"]))[-1]
    if structure == "one_step_discrete":
        assert out.shape == (2, config.window, config.chunk * 7, model.backbone.vocab_size)
        assert pred.bins.shape == (1, config.chunk, 7)
        assert int(pred.bins.min()) >= 0 and int(pred.bins.max()) < config.n_bins
    else:
        arm, logit = out
        assert arm.shape == (2, config.window, config.chunk, 6) and logit.shape == (2, config.window, config.chunk)
        assert pred.arm.shape == (1, config.chunk, 6) and pred.gripper.shape == (1, config.chunk)
        assert float(pred.arm.abs().max()) <= 1.0
        assert 0.0 <= float(pred.gripper.min()) and float(pred.gripper.max()) <= 1.0


@pytest.mark.parametrize(("backbone", "structure"), COMBOS, ids=IDS)
def test_loss_falls_on_a_fixed_batch(backbone, structure):
    model = tiny_model(backbone, structure).train()
    batch = fixed_batch(model.config, window=2)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(15):
        loss = model.compute_loss(batch)["loss"]
        assert torch.isfinite(loss)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize(("backbone", "structure"), COMBOS, ids=IDS)
def test_save_load_gives_identical_outputs(backbone, structure, tmp_path):
    model = tiny_model(backbone, structure, seed=3)
    save_checkpoint(model, model.config, build_tiny_tokenizer(), tmp_path)
    loaded, config, _ = load_checkpoint(tmp_path)
    assert config.to_dict() == json.loads(json.dumps(model.config.to_dict()))
    batch = fixed_batch(model.config)
    with torch.no_grad():
        before, after = _forward(model, batch), _forward(loaded, batch)
    as_tuple = (lambda out: out if isinstance(out, tuple) else (out,))
    for a, b in zip(as_tuple(before), as_tuple(after)):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("backbone", "structure"), COMBOS, ids=IDS)
def test_cached_history_matches_recomputing_the_window(backbone, structure):
    """Ticks fed one by one (cached per-frame items) == the training pass over the same window, including
    after the window has slid past its first frames."""
    model = tiny_model(backbone, structure, seed=5)
    window, s = model.config.window, model.config.image_size
    frames = window + 2
    pixels = torch.randn(1, frames, CAMERAS, 3, s, s, generator=torch.Generator().manual_seed(7))
    p = prompt(["stack the blocks"])
    with torch.no_grad():
        ticks = _step_through(model, pixels, p)
        for t, tick in enumerate(ticks):
            start = max(0, t + 1 - window) if model.uses_history else t
            recomputed_pixels = pixels[:, start:t + 1]
            if structure == "one_step_discrete":
                # Greedy decoding with the KV cache == argmax of the teacher-forced pass over the decoded tokens.
                ids = tick.bins.flatten(1) + model.first_action_id
                logits = model(recomputed_pixels, p, None, ids[:, None])[:, -1]
                greedy = logits[..., model.first_action_id:].argmax(-1) + model.first_action_id
                assert torch.equal(greedy, ids)
            else:
                arm, logit = model(recomputed_pixels, p)
                torch.testing.assert_close(tick.arm, arm[:, -1], rtol=1e-4, atol=1e-5)
                torch.testing.assert_close(tick.gripper, torch.sigmoid(logit[:, -1]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("structure", ["interleaved", "policy_head"])
def test_padded_instruction_batch_matches_single_instruction(backbone, structure):
    """Right padding in a training batch does not change a frame's prediction (positions skip the pads)."""
    model = tiny_model(backbone, structure)
    batch = fixed_batch(model.config)
    with torch.no_grad():
        arm_batch, _ = model(batch["pixels"], prompt(["pick up the red block", "open the drawer"]))
        arm_single, _ = model(batch["pixels"][1:], prompt(["open the drawer"]))
    torch.testing.assert_close(arm_batch[1:], arm_single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_interleaved_frames_do_not_see_later_frames(backbone):
    """Causality: changing the last frame leaves every earlier [LRN]'s prediction unchanged."""
    model = tiny_model(backbone, "interleaved")
    pixels = torch.randn(1, 3, CAMERAS, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    changed = pixels.clone()
    changed[:, -1] = torch.randn_like(changed[:, -1])
    p = prompt(["open the drawer"])
    with torch.no_grad():
        a, _ = model(pixels, p)
        b, _ = model(changed, p)
    torch.testing.assert_close(a[:, :-1], b[:, :-1], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(a[:, -1], b[:, -1])


@pytest.mark.parametrize("head", ["lstm", "gpt", "mlp"])
def test_every_policy_head_caches_consistently(head):
    model = tiny_model("llava", "policy_head", policy_head=head)
    pixels = torch.randn(1, 5, CAMERAS, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    p = prompt(["push the button"])
    with torch.no_grad():
        last = _step_through(model, pixels, p)[-1]
        arm, _ = model(pixels[:, -model.config.window:], p)
    torch.testing.assert_close(last.arm, arm[:, -1], rtol=1e-4, atol=1e-5)


def test_proprioception_changes_the_prediction():
    model = tiny_model("paligemma", "policy_head", proprio_dim=4)
    pixels = torch.randn(1, CAMERAS, 3, 32, 32)
    p = prompt(["lift"])
    with torch.no_grad():
        a = model.predict([model.history_item(model.encode_frame(pixels, torch.zeros(1, 4)), p)], p).arm
        b = model.predict([model.history_item(model.encode_frame(pixels, torch.ones(1, 4)), p)], p).arm
        with pytest.raises(ValueError, match="proprioception"):
            model.encode_frame(pixels)
    assert not torch.allclose(a, b)
    assert tiny_config("paligemma", "policy_head").proprio_dim == 0


@pytest.mark.parametrize("structure", STRUCTURES)
def test_arm_weights_reach_the_loss_of_continuous_structures(structure):
    model = tiny_model("paligemma", structure).eval()
    batch = fixed_batch(model.config, window=2)
    weights = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    if structure == "one_step_discrete":
        with pytest.raises(ValueError, match="no per-dimension loss weights"):
            model.compute_loss(batch, arm_weights=weights)
        return
    with torch.no_grad():
        plain, xy_only = model.compute_loss(batch), model.compute_loss(batch, arm_weights=weights)
    mask = batch["action_mask"].bool()
    squared = (plain["pred_arm"][mask] - batch["actions"][mask][:, :6]) ** 2
    torch.testing.assert_close(plain["arm"], squared.mean())
    torch.testing.assert_close(xy_only["arm"], squared[:, :2].mean())
