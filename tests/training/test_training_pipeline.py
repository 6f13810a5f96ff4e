"""Windowed dataset and robovlms-train end to end: a real demo recording, a real tiny window-4 checkpoint, a real
Lightning run, and the written checkpoint loaded back by the policy."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robovlms_policy.vla.checkpoint import load_checkpoint
from robovlms_policy.vla.init_checkpoint import main as init_checkpoint
from robovlms_policy.vla.policy import VLAPolicy
from robovlms_training.augment import FrameProcessor
from robovlms_training.dataset import WindowCollator, WindowDataset
from robovlms_training.episodes import find_trial_dirs, load_episodes
from robovlms_training.cli import main as train_main
from test_training_episodes import COMMAND, bag_messages, record_demo_run

pytestmark = pytest.mark.ros
WINDOW, CHUNK = 4, 3


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    return record_demo_run(tmp_path_factory.mktemp("demo_run"))


@pytest.fixture(scope="module")
def init_ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "init"
    assert init_checkpoint(["--backbone", "paligemma", "--structure", "policy_head", "--tiny", "--window",
                            str(WINDOW), "--chunk", str(CHUNK), str(out)]) == 0
    return out


def test_rows_of_a_recording_train_every_step_on_what_the_policy_sees(demo_run, init_ckpt):
    policy = VLAPolicy.from_checkpoint(init_ckpt)
    episode = load_episodes([demo_run])[0]
    assert episode.proprio is not None and episode.proprio.shape == (len(episode), 10)  # ee_pose + gripper joint
    dataset = WindowDataset([episode], policy.codec, policy.camera_names, policy.image_size, WINDOW, CHUNK, segment=8)
    assert dataset.steps == len(episode)
    supervised = sum(int(dataset[i]["action_mask"][:, 0].sum()) for i in range(len(dataset)))
    assert supervised == len(episode)  # every step, the first ones included
    norm = policy.codec.normalize(episode.actions)  # kinova: command units are the dataset units
    row = dataset[1]  # steps 8..15, with the 3 frames before step 8 as history
    np.testing.assert_allclose(row["actions"][WINDOW - 1, 0].numpy(), norm[8], atol=1e-6)
    assert not row["action_mask"][:WINDOW - 1].any()
    # Pixels are exactly the policy's own preprocessing of the recorded frames.
    batch = WindowCollator(load_checkpoint(init_ckpt)[2], policy.config.max_instruction_tokens)([row, dataset[0]])
    pixels = FrameProcessor(policy.config.image_mean, policy.config.image_std)(batch.pop("frames"), train=False)
    frame = {name: episode.frames[name][8] for name in policy.camera_names}
    torch.testing.assert_close(pixels[0, WINDOW - 1], policy.preprocess(frame)[0])
    batch["pixels"] = pixels
    loss = policy.model.compute_loss(batch)["loss"]
    assert torch.isfinite(loss) and loss > 0


def test_dataset_takes_short_episodes_and_refuses_unknown_cameras(demo_run, init_ckpt):
    policy = VLAPolicy.from_checkpoint(init_ckpt)
    episode = load_episodes([demo_run])[0]
    long_window = WindowDataset([episode], policy.codec, ["static"], policy.image_size, len(episode) + 5, CHUNK)
    assert long_window.steps == len(episode)  # an episode shorter than the window still trains every step
    with pytest.raises(ValueError, match=r"no frames for camera\(s\) \['gripper_cam'\]"):
        WindowDataset([episode], policy.codec, ["static", "gripper_cam"], policy.image_size, WINDOW, CHUNK)


def _losses(out: Path) -> list[float]:
    with open(out / "train_logs" / "metrics.csv") as handle:
        return [float(row["train/loss"]) for row in csv.DictReader(handle) if row.get("train/loss")]


def test_robovlms_train_end_to_end(demo_run, init_ckpt, tmp_path, monkeypatch, capsys):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # Lightning must not write into the working directory
    out = tmp_path / "trained"
    code = train_main(["--init", str(init_ckpt), "--data", str(demo_run), "--out", str(out), "--max-steps", "30",
                       "--batch-size", "4", "--lr", "1e-3", "--warmup-steps", "2", "--accelerator", "cpu",
                       "--validation-fraction", "0", "--no-augment", "--min-range", "0", "0"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "trained 30 steps" in printed.out and "from 1 episode(s)" in printed.out
    assert list(work.iterdir()) == []
    assert (out / "train_logs" / "tensorboard").is_dir() and any((out / "train_logs" / "tensorboard").iterdir())

    losses = _losses(out)
    assert len(losses) == 30 and all(np.isfinite(losses))

    policy = VLAPolicy.from_checkpoint(out)
    # The loss over every window of the recording (one fixed batch, eval mode) fell well below the initial model's.
    episode = load_episodes([demo_run])[0]
    dataset = WindowDataset([episode], policy.codec, policy.camera_names, policy.image_size, WINDOW, CHUNK)
    trained, _, tokenizer = load_checkpoint(out)
    initial, _, _ = load_checkpoint(init_ckpt)
    batch = WindowCollator(tokenizer, policy.config.max_instruction_tokens)([dataset[i] for i in range(len(dataset))])
    batch["pixels"] = FrameProcessor(policy.config.image_mean, policy.config.image_std)(batch.pop("frames"), False)
    with torch.no_grad():
        before, after = (float(m.compute_loss(batch)["loss"]) for m in (initial, trained))
    assert after < 0.8 * before, (before, after)

    assert policy.window == WINDOW and policy.chunk == CHUNK
    # Statistics: 1st / 99th percentiles of the recorded commands, read straight from the bag.
    commands = np.array([[m.delta_position.x, m.delta_position.y, m.delta_position.z, m.delta_rotation.x,
                          m.delta_rotation.y, m.delta_rotation.z] for topic, _, m in
                         bag_messages(find_trial_dirs([demo_run])[0] / "bag") if topic == COMMAND])
    used = commands[len(commands) - len(episode):]  # leading commands without frames are not training data
    # (trained with --min-range 0 0: the plain percentiles; by default narrow dimensions get a floor, below)
    stats = policy.config.action_stats
    np.testing.assert_allclose(stats["low"], np.percentile(used, 1, axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(stats["high"], np.percentile(used, 99, axis=0), rtol=0, atol=1e-12)
    assert stats != load_checkpoint(init_ckpt)[1].action_stats

    # The policy acts within the data's range.
    policy.reset(episode.instruction)
    action = policy.step({"static": episode.frames["static"][0], "wrist": episode.frames["wrist"][0]})
    low, high = np.array(stats["low"]), np.array(stats["high"])
    assert action.arm.shape == (CHUNK, 6) and np.all(action.arm >= low - 1e-9) and np.all(action.arm <= high + 1e-9)


def test_cli_bad_input_exits_1_with_one_line(demo_run, init_ckpt, tmp_path, capsys):
    (tmp_path / "empty_run").mkdir()
    result = subprocess.run([sys.executable, "-m", "robovlms_training.cli", "--init", str(init_ckpt), "--data",
                             str(tmp_path / "empty_run"), "--out", str(tmp_path / "o1")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"robovlms-train: error: {tmp_path / 'empty_run'} holds no "
                                                  f"trials (no <trial>/trial.json below it)"]
    assert not (tmp_path / "o1").exists()

    corrupt = tmp_path / "corrupt_run"
    shutil.copytree(demo_run, corrupt)
    mcap = find_trial_dirs([corrupt])[0] / "bag" / "bag.mcap"
    mcap.write_bytes(mcap.read_bytes()[:1000])
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "config.json").write_text(json.dumps({}))
    for data, out, expected in ((corrupt, tmp_path / "o2", f"{mcap.parent} is corrupt or unreadable"),
                                (demo_run, occupied, f"output {occupied} already exists and is not empty")):
        argv = ["--init", str(init_ckpt), "--data", str(data), "--out", str(out), "--max-steps", "1"]
        assert train_main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("robovlms-train: error: ") and expected in err and len(err.strip().splitlines()) == 1
    assert json.loads((occupied / "config.json").read_text()) == {}  # never overwritten


def test_an_episode_shorter_than_the_window_trains(demo_run, init_ckpt, tmp_path, capsys):
    data = tmp_path / "short_run"
    shutil.copytree(demo_run, data)
    _truncate_commands(find_trial_dirs([data])[0], keep=3)  # 3 commands: shorter than the 4-step window
    out = tmp_path / "short"
    assert train_main(["--init", str(init_ckpt), "--data", str(data), "--out", str(out), "--max-steps", "2",
                       "--batch-size", "1", "--validation-fraction", "0"]) == 0, capsys.readouterr().err
    assert "from 1 episode(s)" in capsys.readouterr().out


def _truncate_commands(trial: Path, keep: int) -> None:
    """Rewrite a trial's bag keeping only its first ``keep`` commands (and everything recorded before the next)."""
    from rosbags.rosbag2 import Reader, Writer

    source = trial / "bag"
    moved = trial / "bag_full"
    source.rename(moved)
    with Reader(moved) as reader, Writer(source, version=9) as writer:
        conns = {}
        commands = 0
        for conn, stamp, raw in reader.messages():
            if conn.topic == COMMAND:
                commands += 1
                if commands > keep:
                    break
            if conn.id not in conns:
                conns[conn.id] = writer.add_connection(conn.topic, conn.msgtype, typestore=None,
                                                       msgdef=conn.msgdef.data, rihs01=conn.digest)
            writer.write(conns[conn.id], stamp, raw)
    shutil.rmtree(moved)


def test_cameras_follow_the_checkpoint(demo_run, tmp_path, capsys):
    """A static-only checkpoint reads only the static topic; a camera without a default topic needs a mapping."""
    for cameras in (["static"], ["static", "gripper_cam"]):
        init = tmp_path / "-".join(cameras)
        assert init_checkpoint(["--backbone", "paligemma", "--structure", "policy_head", "--tiny", "--window", "2",
                                "--chunk", "2", str(init), "--cameras", *cameras]) == 0
        argv = ["--init", str(init), "--data", str(demo_run), "--out", str(tmp_path / f"out-{init.name}"),
                "--max-steps", "2", "--batch-size", "2"]
        if cameras == ["static"]:
            assert train_main(argv) == 0
            assert VLAPolicy.from_checkpoint(tmp_path / "out-static").camera_names == ["static"]
        else:
            assert train_main(argv) == 1
            assert "['gripper_cam'] have no default topic" in capsys.readouterr().err
            mapped = argv + ["--camera-topic", "static=/rgb/image_raw", "--camera-topic",
                             "gripper_cam=/camera/camera/color/image_raw"]
            assert train_main(mapped) == 0
