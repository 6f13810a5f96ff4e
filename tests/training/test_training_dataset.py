"""Training rows: every step of every episode is supervised once, with exactly the history the policy has at run
time; augmentation keeps shapes and is off for validation (frames and instructions); the structure's per-step
training output equals the policy's step-by-step inference on the same frames."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robovlms_policy.vla.action_codec import ActionCodec, ActionStatistics
from robovlms_policy.vla.checkpoint import load_checkpoint
from robovlms_policy.vla.init_checkpoint import create_checkpoint
from robovlms_policy.vla.policy import VLAPolicy
from robovlms_policy.vla.proprio import ProprioNormalizer
from robovlms_training.augment import AugmentConfig, FrameProcessor, noisy_instruction
from robovlms_training.dataset import WindowCollator, WindowDataset, split_by_seed
from robovlms_training.episodes import Episode
from robovlms_training.run_data import run_data
from robovlms_training.train import TrainSettings
from synthetic_data import write_store

SIZE, WINDOW, CHUNK, SEGMENT = 32, 4, 3, 5
CODEC = ActionCodec(ActionStatistics(np.full(6, -0.05), np.full(6, 0.05)), "kinova")


def episode(length: int, seed: int) -> Episode:
    rng = np.random.default_rng(seed)
    frames = {cam: rng.integers(0, 256, (length, SIZE, SIZE, 3), dtype=np.uint8) for cam in ("static", "wrist")}
    # Each action's x encodes (episode, step), so targets can be traced back to their step.
    actions = np.zeros((length, 7))
    actions[:, 0] = np.linspace(-0.04, 0.04, length) if length > 1 else 0.0
    actions[:, 6] = np.arange(length) % 2
    return Episode(Path(f"ep{seed}"), "press the button", "press_button", True, frames, actions,
                   proprio=rng.normal(size=(length, 10)), info={"seed": seed})


def rows_of(dataset: WindowDataset):
    return [dataset[i] for i in range(len(dataset))]


@pytest.mark.parametrize("lengths", [(1, 5, 20, 37), (4,), (2, 9)])
def test_every_step_is_supervised_once_with_its_history(lengths):
    episodes = [episode(n, i) for i, n in enumerate(lengths)]
    dataset = WindowDataset(episodes, CODEC, ["static", "wrist"], SIZE, WINDOW, CHUNK, SEGMENT,
                            ProprioNormalizer.from_data(np.concatenate([e.proprio for e in episodes])))
    assert dataset.steps == sum(lengths)
    seen = {i: [] for i in range(len(episodes))}
    for (ep_index, start), row in zip(dataset._index, rows_of(dataset)):
        ep = episodes[ep_index]
        n = len(ep)
        norm = CODEC.normalize(ep.actions)
        first = max(0, start - WINDOW + 1)
        assert row["frames"].shape == (WINDOW - 1 + SEGMENT, 2, SIZE, SIZE, 3)
        for position in range(WINDOW - 1 + SEGMENT):
            t = first + position
            supervised = start <= t < min(n, start + SEGMENT)
            mask = row["action_mask"][position]
            if not supervised:
                assert not mask.any()  # context and padding carry no loss
                continue
            seen[ep_index].append(t)
            valid = min(CHUNK, n - t)  # the chunk is masked past the episode end
            assert mask.tolist() == [True] * valid + [False] * (CHUNK - valid)
            np.testing.assert_allclose(row["actions"][position, :valid].numpy(), norm[t:t + valid], atol=1e-6)
            # The frames at and before this position are the episode's own, back to the window (or its start).
            for back in range(min(WINDOW, t + 1)):
                expected = np.stack([ep.frames["static"][t - back], ep.frames["wrist"][t - back]])
                assert np.array_equal(row["frames"][position - back].numpy(), expected)
        assert "proprio" in row and row["proprio"].shape == (WINDOW - 1 + SEGMENT, 10)
    for ep_index, steps in seen.items():
        assert sorted(steps) == list(range(len(episodes[ep_index])))  # every step once


def test_frames_are_resized_like_the_policy():
    big = episode(3, 0)
    big.frames = {cam: np.repeat(np.repeat(f, 2, axis=1), 2, axis=2) for cam, f in big.frames.items()}  # 64 px
    from robovlms_policy.vla.policy import resize_rgb
    dataset = WindowDataset([big], CODEC, ["static", "wrist"], SIZE, WINDOW, CHUNK, SEGMENT)
    row = dataset[0]
    assert np.array_equal(row["frames"][0, 0].numpy(), resize_rgb(big.frames["static"][0], SIZE))


def test_validation_split_is_by_seed_and_deterministic():
    episodes = [episode(3, seed) for seed in range(200)]
    train, val = split_by_seed(episodes, 0.1)
    again_train, again_val = split_by_seed(list(reversed(episodes)), 0.1)
    assert {e.info["seed"] for e in val} == {e.info["seed"] for e in again_val}
    assert not {e.info["seed"] for e in train} & {e.info["seed"] for e in val}
    assert 5 <= len(val) <= 40 and len(train) + len(val) == 200
    with pytest.raises(ValueError):
        split_by_seed(episodes, 1.0)


def test_augmentation_keeps_shapes_and_is_off_for_validation():
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 6, 2, SIZE, SIZE, 3), dtype=np.uint8))
    processor = FrameProcessor([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], AugmentConfig())
    plain = (frames.permute(0, 1, 2, 5, 3, 4).float() / 255 - 0.5) / 0.5
    torch.testing.assert_close(processor(frames, train=False), plain)
    augmented = processor(frames, train=True, generator=torch.Generator().manual_seed(1))
    assert augmented.shape == plain.shape == (3, 6, 2, 3, SIZE, SIZE)
    assert augmented.min() >= -1 and augmented.max() <= 1 and not torch.allclose(augmented, plain)
    again = processor(frames, train=True, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(augmented, again)
    # One draw per (row, camera): a row's frames shift and recolour together, so identical frames stay identical.
    same = frames[:, :1].expand(-1, 6, -1, -1, -1, -1).contiguous()
    out = processor(same, train=True, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(out[:, 0], out[:, 5])
    with pytest.raises(ValueError):
        AugmentConfig(shift_fraction=0.6)


def test_instruction_noise_inserts_and_replaces_one_made_up_word_each():
    text = "push the blue block to the left"
    words = text.split()
    rng = np.random.default_rng(0)
    inserted = noisy_instruction(text, AugmentConfig(word_insertion=1.0), rng).split()
    assert len(inserted) == len(words) + 1
    extra = next(i for i in range(len(inserted)) if inserted[:i] + inserted[i + 1:] == words)
    assert inserted[extra].isalpha() and 2 <= len(inserted[extra]) <= 8
    replaced = noisy_instruction(text, AugmentConfig(word_replacement=1.0), rng).split()
    assert len(replaced) == len(words) and sum(a != b for a, b in zip(replaced, words)) <= 1
    assert noisy_instruction(text, AugmentConfig(), rng) == text  # the default leaves instructions alone
    drawn = {noisy_instruction(text, AugmentConfig(word_insertion=0.5), rng) for _ in range(200)}
    assert text in drawn and len(drawn) > 50
    with pytest.raises(ValueError):
        AugmentConfig(word_insertion=1.5)


def test_training_collator_makes_instructions_noisy_and_the_plain_one_does_not(tmp_path):
    create_checkpoint(tmp_path / "ckpt", "paligemma", "policy_head", image_size=SIZE, window=WINDOW, chunk=CHUNK)
    _, config, tokenizer = load_checkpoint(tmp_path / "ckpt")
    dataset = WindowDataset([episode(6, 1)], CODEC, ["static", "wrist"], SIZE, WINDOW, CHUNK, SEGMENT)
    rows = [dataset[0]] * 8
    plain = WindowCollator(tokenizer, config.max_instruction_tokens)(rows)
    expected = tokenizer.encode("press the button").ids
    assert all(ids[mask].tolist() == expected for ids, mask in zip(plain["instruction_ids"],
                                                                    plain["instruction_mask"]))
    torch.manual_seed(3)  # the collator's words follow torch's seed (in a loader worker, the worker's)
    noisy = WindowCollator(tokenizer, config.max_instruction_tokens, AugmentConfig(word_insertion=1.0))
    batch = noisy(rows)
    assert all(mask.sum() > len(expected) for mask in batch["instruction_mask"])
    torch.testing.assert_close(batch["frames"], plain["frames"])
    torch.manual_seed(3)
    again = WindowCollator(tokenizer, config.max_instruction_tokens, AugmentConfig(word_insertion=1.0))
    torch.testing.assert_close(again(rows)["instruction_ids"], batch["instruction_ids"])


def test_a_run_makes_training_instructions_noisy_never_validation_ones(tmp_path):
    create_checkpoint(tmp_path / "ckpt", "paligemma", "policy_head", image_size=SIZE, window=WINDOW, chunk=CHUNK)
    _, config, tokenizer = load_checkpoint(tmp_path / "ckpt")
    store = write_store(tmp_path / "store", episodes=10)
    settings = TrainSettings(batch_size=4, validation_fraction=0.3, progress_bar=False, num_workers=2,
                             augment=AugmentConfig(word_insertion=1.0))  # workers: re-made every epoch
    prepared = run_data([store], None, config, tokenizer, settings)
    recorded = len(tokenizer.encode("pick up the red block").ids)
    assert prepared.val_loader is not None
    assert all((batch["instruction_mask"].sum(1) == recorded).all() for batch in prepared.val_loader)
    assert all((batch["instruction_mask"].sum(1) > recorded).all() for batch in prepared.loader)
    first, second = ([b["instruction_ids"].tolist() for b in prepared.loader] for _ in range(2))
    assert first != second  # new words every epoch, not one draw repeated


def test_training_rows_predict_what_the_policy_predicts_step_by_step(tmp_path):
    """A row longer than the window is trained with per-step histories: its outputs equal the policy's own rolling
    inference (reset, then one step per frame) on the same frames and robot states."""
    create_checkpoint(tmp_path / "ckpt", "paligemma", "policy_head", image_size=SIZE, window=WINDOW, chunk=CHUNK,
                      proprio_dim=10, proprio_layout="ee_pose_gripper")
    model, config, tokenizer = load_checkpoint(tmp_path / "ckpt")
    ep = episode(11, 3)
    stats = ProprioNormalizer.from_data(ep.proprio)
    config.proprio_stats = stats.to_dict()
    policy = VLAPolicy(model, config, tokenizer)
    dataset = WindowDataset([ep], policy.codec, policy.camera_names, SIZE, WINDOW, CHUNK, segment=11,
                            proprio=stats)
    batch = WindowCollator(tokenizer, config.max_instruction_tokens)([dataset[0]])
    batch["pixels"] = FrameProcessor(config.image_mean, config.image_std)(batch.pop("frames"), train=False)
    with torch.no_grad():
        out = model.compute_loss(batch)
    policy.reset(ep.instruction)
    for t in range(len(ep)):
        step = policy.step({cam: ep.frames[cam][t] for cam in ("static", "wrist")}, ep.proprio[t])
        arm, closure = policy.codec.to_units(np.concatenate(
            [out["pred_arm"][0, t].double().numpy(), out["pred_gripper"][0, t, :, None].double().numpy()], -1))
        np.testing.assert_allclose(step.arm, arm, atol=1e-5)
        np.testing.assert_allclose(step.gripper, closure, atol=1e-5)
