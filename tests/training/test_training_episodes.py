"""robovlms_training.episodes on real recordings: a scripted-expert trial recorded by the demo (real DDS, real
MCAP bag), bags written with the suite's own bag writer for edge cases, and damaged copies for error paths."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from robovlms_policy.trials.bag_format import TrialBag
from robovlms_training.episodes import (EpisodeError, default_typestore, find_trial_dirs, load_episodes,
                                        load_trial)

pytestmark = pytest.mark.ros
STATIC, WRIST, COMMAND = "/rgb/image_raw", "/camera/camera/color/image_raw", "/ee_command"


def record_demo_run(out: Path) -> Path:
    """One scripted-expert lift_red_block episode through the real demo graph, 64 px images."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # conftest already gave this session its own ROS_DOMAIN_ID
    result = subprocess.run([sys.executable, "-m", "robovlms_demo.demo", "--commander", "expert", "--tasks",
                             "lift_red_block", "--episodes", "1", "--image-size", "64", "--out", str(out)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    trials = find_trial_dirs([out])
    assert len(trials) == 1
    return out


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    return record_demo_run(tmp_path_factory.mktemp("demo_run"))


def bag_messages(bag: Path) -> list[tuple[str, int, object]]:
    """Every camera / command message of a bag, deserialised independently of the code under test."""
    typestore = default_typestore()
    with Reader(bag) as reader:
        return [(c.topic, t, typestore.deserialize_cdr(raw, c.msgtype)) for c, t, raw in reader.messages()
                if c.topic in (STATIC, WRIST, COMMAND)]


def rgb_of(msg) -> np.ndarray:
    """Test-side decoding of the two encodings the twin publishes (rgb8 wrist, bgra8 static)."""
    pixels = np.asarray(msg.data).reshape(msg.height, msg.step)[:, :msg.width * (4 if msg.encoding == "bgra8" else 3)]
    if msg.encoding == "bgra8":
        return pixels.reshape(msg.height, msg.width, 4)[..., [2, 1, 0]]
    assert msg.encoding == "rgb8"
    return pixels.reshape(msg.height, msg.width, 3)


def test_demo_trial_frames_and_actions_match_the_bag(demo_run):
    trial_dir = find_trial_dirs([demo_run])[0]
    info = json.loads((trial_dir / "trial.json").read_text())
    episode = load_trial(trial_dir)
    messages = bag_messages(trial_dir / "bag")
    commands = [m for topic, _, m in messages if topic == COMMAND]
    assert len(commands) == info["steps"] == info["messages"][COMMAND]
    assert episode.instruction == info["instruction"] and episode.task == "lift_red_block" and episode.success

    # Independent alignment: a command is usable once both cameras have sent a frame.
    seen: dict[str, object] = {}
    expected_actions, expected_static, expected_wrist = [], [], []
    for topic, _, msg in messages:
        if topic != COMMAND:
            seen[topic] = msg
        elif len(seen) == 2 and msg.gripper != -1.0:
            p, r = msg.delta_position, msg.delta_rotation
            expected_actions.append([p.x, p.y, p.z, r.x, r.y, r.z, msg.gripper])
            expected_static.append(rgb_of(seen[STATIC]))
            expected_wrist.append(rgb_of(seen[WRIST]))
    assert len(episode) == len(expected_actions) >= len(commands) - 2 >= 10
    assert len(episode) + episode.skipped_commands == len(commands)
    assert np.isfinite(episode.actions).all()
    np.testing.assert_array_equal(episode.actions, np.array(expected_actions))
    for name, expected in (("static", expected_static), ("wrist", expected_wrist)):
        frames = episode.frames[name]
        assert frames.dtype == np.uint8 and frames.shape == (len(episode), 64, 64, 3)
        np.testing.assert_array_equal(frames, np.stack(expected))
    assert episode.frames["static"].std() > 5  # a real rendered scene, not a blank image


def _write_trial(trial_dir: Path, commands: list[tuple[list[float], str]], label: bool | None = True) -> None:
    """A trial written with the suite's TrialBag: camera frames, then after each frame one command."""
    typestore = default_typestore()
    types = typestore.types
    stamp = types["builtin_interfaces/msg/Time"](sec=0, nanosec=0)
    vector = types["geometry_msgs/msg/Vector3"]
    bag = TrialBag(trial_dir / "bag", typestore)
    for step, (values, frame_id) in enumerate(commands):
        t = (step + 1) * 100_000_000
        for topic, encoding, channels in ((STATIC, "bgra8", 4), (WRIST, "rgb8", 3)):
            data = np.full(8 * 8 * channels, step, dtype=np.uint8)
            image = types["sensor_msgs/msg/Image"](
                header=types["std_msgs/msg/Header"](stamp=stamp, frame_id="cam"), height=8, width=8,
                encoding=encoding, is_bigendian=0, step=8 * channels, data=data)
            bag.write(topic, "sensor_msgs/msg/Image", t, typestore.serialize_cdr(image, "sensor_msgs/msg/Image"))
        command = types["robovlms_msgs/msg/EndEffectorCommand"](
            header=types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id),
            delta_position=vector(x=values[0], y=values[1], z=values[2]),
            delta_rotation=vector(x=values[3], y=values[4], z=values[5]), gripper=values[6],
            period=types["builtin_interfaces/msg/Duration"](sec=0, nanosec=100_000_000))
        msgtype = "robovlms_msgs/msg/EndEffectorCommand"
        bag.write(COMMAND, msgtype, t + 1000, typestore.serialize_cdr(command, msgtype))
    bag.close()
    info = {"instruction": "push   the block", "task": "synthetic", "steps": len(commands)}
    if label is not None:
        info["label"] = {"success": label, "note": ""}
    (trial_dir / "trial.json").write_text(json.dumps(info))


def test_hold_and_invalid_commands_are_skipped(tmp_path):
    move = [0.01, -0.02, 0.0, 0.0, 0.0, 0.1, 1.0]
    hold = [0.0] * 6 + [-1.0]
    nan = [float("nan")] + move[1:]
    _write_trial(tmp_path / "t", [(move, "base_link"), (hold, "base_link"), (nan, ""), ([0.0] * 6 + [0.0], "")])
    episode = load_trial(tmp_path / "t")
    assert episode.skipped_commands == 2 and len(episode) == 2
    assert episode.instruction == "push the block"
    np.testing.assert_allclose(episode.actions, [move, [0.0] * 7], atol=1e-7)  # gripper is float32 in the message
    # Step 3's frames (filled with 3) go with the last command; the skipped steps' frames are not used.
    assert (episode.frames["wrist"][1] == 3).all() and (episode.frames["static"][0] == 0).all()


def test_command_in_tool_frame_is_refused(tmp_path):
    _write_trial(tmp_path / "t", [([0.0] * 7, "tool_frame")])
    with pytest.raises(EpisodeError, match="tool_frame"):
        load_trial(tmp_path / "t")


def test_label_filter(demo_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(demo_run, run)
    _write_trial(run / "failed_trial", [([0.0] * 7, "")] * 3, label=False)
    _write_trial(run / "unlabelled_trial", [([0.0] * 7, "")] * 3, label=None)
    assert [e.task for e in load_episodes([run])] == ["lift_red_block"]
    assert sorted(e.task for e in load_episodes([run], include_failures=True)) == ["lift_red_block", "synthetic",
                                                                                  "synthetic"]
    with pytest.raises(EpisodeError, match="none of the 2 trial"):
        load_episodes([run / "failed_trial", run / "unlabelled_trial"])


def test_run_without_trials_and_missing_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EpisodeError, match=r"empty holds no trials"):
        load_episodes([tmp_path / "empty"])
    with pytest.raises(EpisodeError, match=r"nowhere is not a directory"):
        load_episodes([tmp_path / "nowhere"])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "no_bag", "bad_json", "no_instruction"])
def test_damaged_trials_name_the_file(demo_run, tmp_path, damage):
    trial = tmp_path / "trial"
    shutil.copytree(find_trial_dirs([demo_run])[0], trial)
    mcap = trial / "bag" / "bag.mcap"
    if damage == "truncated":
        data = mcap.read_bytes()
        mcap.write_bytes(data[: len(data) // 2])
        expected = str(trial / "bag")
    elif damage == "garbage":
        mcap.write_bytes(b"\x00not an mcap file" * 64)
        expected = str(trial / "bag")
    elif damage == "no_bag":
        shutil.rmtree(trial / "bag")
        expected = f"{trial / 'bag'} is missing"
    elif damage == "bad_json":
        (trial / "trial.json").write_text("{ not json")
        expected = str(trial / "trial.json")
    else:
        (trial / "trial.json").write_text(json.dumps({"instruction": "  ", "label": {"success": True}}))
        expected = f"{trial / 'trial.json'} has no non-empty 'instruction'"
    with pytest.raises(EpisodeError) as err:
        load_episodes([trial])
    assert expected in str(err.value)
