"""The inference API the policy node calls: VLAPolicy.from_checkpoint / reset / step on tiny checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robovlms_policy.vla.checkpoint import CheckpointError
from robovlms_policy.vla.init_checkpoint import create_checkpoint
from robovlms_policy.vla.policy import NonFiniteActionError, PolicyOutput, VLAPolicy
from vla_helpers import STRUCTURES

WINDOW, CHUNK = 4, 3


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("policies")
    for structure in STRUCTURES:
        create_checkpoint(root / structure, "paligemma", structure, window=WINDOW, chunk=CHUNK)
    create_checkpoint(root / "proprio", "qwen2vl", "policy_head", window=WINDOW, chunk=CHUNK, proprio_dim=7)
    return {p.name: p for p in root.iterdir()}


def _images(seed: int, shape=(48, 64, 3)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"static": rng.integers(0, 256, shape, dtype=np.uint8),
            "wrist": rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)}


def _policy(checkpoints, structure: str) -> VLAPolicy:
    policy = VLAPolicy.from_checkpoint(checkpoints[structure])
    policy.reset("pick up the red block")
    return policy


def test_contract_properties(checkpoints):
    policy = VLAPolicy.from_checkpoint(str(checkpoints["policy_head"]), device="cpu")
    assert policy.camera_names == ["static", "wrist"]
    assert (policy.image_size, policy.window, policy.chunk, policy.embodiment) == (32, WINDOW, CHUNK, "kinova")
    with pytest.raises(CheckpointError, match="does not exist"):
        VLAPolicy.from_checkpoint(checkpoints["policy_head"].parent / "missing")


@pytest.mark.parametrize("structure", STRUCTURES)
def test_step_returns_a_chunk_in_embodiment_units(checkpoints, structure):
    policy = _policy(checkpoints, structure)
    for seed, shape in enumerate([(48, 64, 3), (5, 7, 3), (480, 640, 3), (32, 32, 3)]):
        out = policy.step(_images(seed, shape))
        assert isinstance(out, PolicyOutput)
        assert out.arm.shape == (CHUNK, 6) and out.arm.dtype == np.float64
        assert out.gripper.shape == (CHUNK,) and out.gripper.dtype == np.float64
        assert np.isfinite(out.arm).all() and ((0 <= out.gripper) & (out.gripper <= 1)).all()
        # default kinova statistics bound a random policy to +-1 cm and +-0.05 rad per period
        assert (np.abs(out.arm[:, :3]) <= 0.01 + 1e-9).all() and (np.abs(out.arm[:, 3:]) <= 0.05 + 1e-9).all()
        assert out.latency_s > 0
    if structure == "one_step_discrete":
        assert set(np.unique(out.gripper)) <= {0.0, 1.0}


@pytest.mark.parametrize("structure", ["interleaved", "policy_head"])
def test_policy_history_equals_the_recomputed_window(checkpoints, structure):
    """After sliding past the window, step()'s chunk == the training pass over the last `window` frames."""
    policy = _policy(checkpoints, structure)
    frames = [_images(seed) for seed in range(WINDOW + 3)]
    outputs = [policy.step(images) for images in frames]
    assert policy.history_length == WINDOW
    pixels = torch.cat([policy.preprocess(images) for images in frames[-WINDOW:]])[None]
    with torch.no_grad():
        arm, logit = policy.model(pixels, policy._prompt)
    norm = torch.cat([arm[0, -1], torch.sigmoid(logit[0, -1])[:, None]], -1).double().numpy()
    expected_arm, expected_gripper = policy.codec.to_units(norm)
    np.testing.assert_allclose(outputs[-1].arm, expected_arm, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(outputs[-1].gripper, expected_gripper, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_per_tick_work_does_not_grow_with_the_history(checkpoints, structure):
    """Each tick runs the vision tower once (all cameras in one batch); the LM work per tick is constant
    except for interleaved, whose one LM pass covers the window."""
    policy = _policy(checkpoints, structure)
    backbone = policy.model.backbone
    calls = {"vision": 0, "lm_tokens": []}
    encode, language = backbone.encode_images, backbone.language_forward

    def counting_encode(pixels):
        calls["vision"] += 1
        return encode(pixels)

    def counting_language(embeds, *args, **kwargs):
        calls["lm_tokens"].append(embeds.shape[1])
        return language(embeds, *args, **kwargs)

    backbone.encode_images, backbone.language_forward = counting_encode, counting_language
    per_tick = []
    for seed in range(WINDOW + 2):
        calls["vision"], calls["lm_tokens"] = 0, []
        policy.step(_images(seed))
        assert calls["vision"] == 1
        per_tick.append(sum(calls["lm_tokens"]))
    if structure == "interleaved":
        assert per_tick[WINDOW - 1] == per_tick[-1] > per_tick[0]  # grows to the window, then stays
    else:
        assert len(set(per_tick)) == 1, per_tick


def test_reset_clears_the_history(checkpoints):
    fresh = _policy(checkpoints, "policy_head")
    first = fresh.step(_images(0))
    policy = _policy(checkpoints, "policy_head")
    for seed in range(1, 4):
        policy.step(_images(seed))
    policy.reset("pick up the red block")
    assert policy.history_length == 0
    np.testing.assert_allclose(policy.step(_images(0)).arm, first.arm, rtol=1e-6, atol=1e-10)


def test_instruction_changes_the_action(checkpoints):
    policy = _policy(checkpoints, "one_step_continuous")
    a = policy.step(_images(0)).arm
    policy.reset("open the top drawer slowly")
    assert not np.allclose(a, policy.step(_images(0)).arm)


def test_bad_input_is_rejected_with_clear_messages(checkpoints):
    policy = VLAPolicy.from_checkpoint(checkpoints["policy_head"])
    with pytest.raises(RuntimeError, match="reset"):
        policy.step(_images(0))
    for bad in ("", "   ", None):
        with pytest.raises(ValueError, match="instruction"):
            policy.reset(bad)
    with pytest.raises(ValueError, match="tokens; this checkpoint takes at most 64"):
        policy.reset("x" * 100_000)  # refused, never silently cut
    policy.reset("x" * 10)
    images = _images(0)
    with pytest.raises(ValueError, match="camera 'wrist' is missing"):
        policy.step({"static": images["static"]})
    for bad in (images["wrist"].astype(np.float32), images["wrist"][..., :2], np.zeros((0, 4, 3), np.uint8),
                images["wrist"][..., 0], "not an image"):
        with pytest.raises(ValueError, match="camera 'wrist'"):
            policy.step({"static": images["static"], "wrist": bad})
    with pytest.raises(ValueError, match="dict"):
        policy.step([images["static"], images["wrist"]])
    assert policy.history_length == 0  # rejected ticks leave no trace
    extra = dict(images, depth=np.zeros((4, 4, 3), np.uint8))  # cameras the checkpoint does not use are ignored
    assert policy.step(extra).arm.shape == (CHUNK, 6)


def test_proprioception_is_required_where_trained(checkpoints):
    policy = _policy(checkpoints, "proprio")
    with pytest.raises(ValueError, match="proprioception"):
        policy.step(_images(0))
    with pytest.raises(ValueError, match="7 finite values"):
        policy.step(_images(0), np.zeros(6))
    with pytest.raises(ValueError, match="7 finite values"):
        policy.step(_images(0), np.full(7, np.nan))
    a = policy.step(_images(0), np.zeros(7)).arm
    policy.reset("pick up the red block")
    assert not np.allclose(a, policy.step(_images(0), np.ones(7)).arm)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_non_finite_output_raises(checkpoints, structure):
    policy = _policy(checkpoints, structure)
    with torch.no_grad():
        policy.model.lrn_token.fill_(float("nan"))
        policy.model.backbone.lm_head.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteActionError):
        policy.step(_images(0))


def test_instruction_batches_are_right_padded_and_truncated():
    from robovlms_policy.vla.tokenizer import build_tiny_tokenizer, encode_instructions

    ids, mask = encode_instructions(build_tiny_tokenizer(), ["ab", "abcd", "é" * 50], max_tokens=8)
    assert ids.shape == mask.shape == (3, 8)
    assert mask.sum(1).tolist() == [3, 5, 8]  # "<bos>" + one token per UTF-8 byte, cut at 8
    assert (ids[~mask] == 0).all() and (ids[:, 0] == 1).all()
    with pytest.raises(ValueError, match="non-empty"):
        encode_instructions(build_tiny_tokenizer(), ["ok", " "], max_tokens=8)
