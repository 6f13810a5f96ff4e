"""The CALVIN dataset reader on a tiny synthetic dataset in CALVIN's own layout (per-frame episode_XXXXXXX.npz,
lang_annotations/auto_lang_ann.npy, scene_info.npy, training/ and validation/): episodes and their values,
scene selection, the same training rows as the same trajectory recorded as a rosbag trial, errors that name
the file, and robovlms-train / robovlms-train-calvin end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robovlms_calvin.actions import calvin_to_command
from robovlms_io.rotations import matrix_to_quaternion
from robovlms_policy.trials.bag_format import TrialBag
from robovlms_policy.vla.action_codec import ActionCodec
from robovlms_policy.vla.checkpoint import load_checkpoint
from robovlms_policy.vla.embodiments import get_embodiment
from robovlms_policy.vla.init_checkpoint import create_checkpoint
from robovlms_policy.vla.policy import VLAPolicy
from robovlms_training.calvin_dataset import is_calvin_split, load_calvin_split
from robovlms_training.calvin_recipe import main as train_calvin
from robovlms_training.recipe import load_recipe
from robovlms_training.dataset import WindowDataset, action_statistics, proprio_statistics
from robovlms_training.episodes import EpisodeError, default_typestore, load_trial
from robovlms_training.module import VLAFineTuner
from robovlms_training.train import TrainSettings, train
from robovlms_training.cli import main as train_main

BASE = np.array([-0.34, -0.46, 0.24])  # calvin_env conf/scene/calvin_scene_*.yaml robot_base_position
# (start, end inclusive, instruction, task); frames 0-29 are scene A, 30-59 scene D.
ANNOTATIONS = [(0, 11, "  open the\ndrawer ", "open_drawer"), (8, 20, "push the switch upwards", "turn_on_lightbulb"),
               (31, 45, "lift the red block", "lift_red_block_table")]
SCENES = {"calvin_scene_A": [0, 29], "calvin_scene_D": [30, 59]}


def frame_values(frame: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(frame)
    rel = np.concatenate([rng.uniform(-1, 1, 6), [1.0 if frame % 7 < 4 else -1.0]])
    tcp = BASE + np.array([0.3, 0.1, 0.4]) + rng.normal(0, 0.02, 3)
    obs = np.concatenate([tcp, [np.pi - 0.1, 0.05, rng.uniform(-1, 1)], [rng.uniform(0, 0.08)],
                          rng.uniform(-1, 1, 7), [rel[6]]])
    return {"rgb_static": rng.integers(0, 256, (200, 200, 3), dtype=np.uint8),
            "rgb_gripper": rng.integers(0, 256, (84, 84, 3), dtype=np.uint8),
            "rel_actions": rel.astype(np.float32), "robot_obs": obs.astype(np.float32),
            "actions": np.zeros(7, np.float32), "scene_obs": np.zeros(24, np.float32)}


def write_split(root: Path, frames: range, annotations: list, scenes: dict | None = SCENES,
                overrides: dict[int, dict] | None = None) -> Path:
    (root / "lang_annotations").mkdir(parents=True)
    for frame in frames:
        np.savez(root / f"episode_{frame:07d}.npz", **{**frame_values(frame), **(overrides or {}).get(frame, {})})
    lang = {"language": {"ann": [a[2] for a in annotations], "task": [a[3] for a in annotations],
                         "emb": np.zeros((len(annotations), 1, 384), np.float32)},
            "info": {"episodes": [], "indx": [(a[0], a[1]) for a in annotations]}}
    np.save(root / "lang_annotations" / "auto_lang_ann.npy", lang, allow_pickle=True)
    if scenes is not None:
        np.save(root / "scene_info.npy", scenes, allow_pickle=True)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("task_AD_D")
    write_split(root / "training", range(60), ANNOTATIONS)
    write_split(root / "validation", range(100, 125), [(100, 124, "close the drawer", "close_drawer")],
                {"calvin_scene_D": [100, 124]})
    return root


def test_each_annotation_is_an_episode_with_calvins_values(dataset):
    episodes = load_calvin_split(dataset / "training")
    assert [(e.instruction, e.task, len(e)) for e in episodes] == [
        ("open the drawer", "open_drawer", 12), ("push the switch upwards", "turn_on_lightbulb", 13),
        ("lift the red block", "lift_red_block_table", 15)]
    second = episodes[1]
    assert second.info["frames"] == [8, 20] and second.info["scene"] == "A" and episodes[2].info["scene"] == "D"
    # Frames are read from the files when used: the static camera is rgb_static, the wrist camera rgb_gripper.
    np.testing.assert_array_equal(second.frames["static"][3], frame_values(11)["rgb_static"])
    np.testing.assert_array_equal(second.frames["wrist"][np.array([0, 12])],
                                  np.stack([frame_values(8)["rgb_gripper"], frame_values(20)["rgb_gripper"]]))
    assert np.asarray(second.frames["static"]).shape == (13, 200, 200, 3)
    # Actions in the suite's layout: x, y, z in units of 0.02 m, gripper -1 = close.
    values = frame_values(9)
    rel, obs = values["rel_actions"].astype(float), values["robot_obs"].astype(float)
    np.testing.assert_allclose(second.actions[1, :3], rel[:3] * 0.02)
    assert second.actions[1, 6] == (1.0 if rel[6] < 0 else 0.0)
    np.testing.assert_allclose(second.actions[1], calvin_to_command(rel, obs[3:6]))
    # Proprioception as the calvin backend publishes it: TCP in base_link, closure from the opening width.
    np.testing.assert_allclose(second.proprio[1, :3], obs[:3] - BASE, atol=1e-6)
    np.testing.assert_allclose(second.proprio[1, 9], 1 - obs[6] / 0.08, atol=1e-6)


def test_a_pure_yaw_increment_is_a_rotation_about_z():
    # At Euler (0, 0, 0.3) an increment of 0.2 units in yaw turns the TCP 0.01 rad about the base's z axis.
    command = calvin_to_command(np.array([0, 0, 0, 0, 0, 0.2, 1]), np.array([0.0, 0.0, 0.3]))
    np.testing.assert_allclose(command, [0, 0, 0, 0, 0, 0.01, 0], atol=1e-12)


def test_scenes_select_annotations_by_their_start(dataset):
    assert [e.task for e in load_calvin_split(dataset / "training", scenes=["a"])] == ["open_drawer",
                                                                                     "turn_on_lightbulb"]
    assert [e.task for e in load_calvin_split(dataset / "training", scenes=["D"])] == ["lift_red_block_table"]
    with pytest.raises(EpisodeError, match=r"no language annotation in scenes \['B'\].*\['A', 'D'\]"):
        load_calvin_split(dataset / "training", scenes=["B"])


def _write_as_trial(trial_dir: Path, episode, frames: range) -> None:
    """The same trajectory as the recorder would store it from the calvin cell: per step the robot state,
    both camera images (static bgra8, wrist rgb8), then the command."""
    ts = default_typestore()
    types = ts.types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0),
                                          frame_id="base_link")
    bag = TrialBag(trial_dir / "bag", ts)

    def write(topic: str, msgtype: str, t: int, msg) -> None:
        bag.write(topic, msgtype, t, ts.serialize_cdr(msg, msgtype))

    for step, frame in enumerate(frames):
        t = (step + 1) * 100_000_000
        proprio, action = episode.proprio[step], episode.actions[step]
        x_axis, y_axis = proprio[3:6], proprio[6:9]
        matrix = np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)], axis=1)
        q = matrix_to_quaternion(matrix)
        pose = types["geometry_msgs/msg/Pose"](
            position=types["geometry_msgs/msg/Point"](x=proprio[0], y=proprio[1], z=proprio[2]),
            orientation=types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]))
        write("/ee_pose", "geometry_msgs/msg/PoseStamped", t,
              types["geometry_msgs/msg/PoseStamped"](header=header, pose=pose))
        write("/joint_states", "sensor_msgs/msg/JointState", t, types["sensor_msgs/msg/JointState"](
            header=header, name=["robotiq_85_left_knuckle_joint"], position=np.array([proprio[9] * 0.8]),
            velocity=np.zeros(0), effort=np.zeros(0)))
        values = frame_values(frame)
        for topic, key, encoding in (("/rgb/image_raw", "rgb_static", "bgra8"),
                                     ("/camera/camera/color/image_raw", "rgb_gripper", "rgb8")):
            image = values[key]
            if encoding == "bgra8":
                image = np.concatenate([image[..., ::-1], np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=2)
            write(topic, "sensor_msgs/msg/Image", t + 1, types["sensor_msgs/msg/Image"](
                header=header, height=image.shape[0], width=image.shape[1], encoding=encoding, is_bigendian=0,
                step=image.shape[1] * image.shape[2], data=image.reshape(-1)))
        vector = types["geometry_msgs/msg/Vector3"]
        write("/ee_command", "robovlms_msgs/msg/EndEffectorCommand", t + 2,
              types["robovlms_msgs/msg/EndEffectorCommand"](
                  header=header, delta_position=vector(x=action[0], y=action[1], z=action[2]),
                  delta_rotation=vector(x=action[3], y=action[4], z=action[5]), gripper=action[6],
                  period=types["builtin_interfaces/msg/Duration"](sec=0, nanosec=100_000_000)))
    bag.close()
    (trial_dir / "trial.json").write_text(json.dumps({"instruction": episode.instruction, "task": episode.task,
                                                      "label": {"success": True, "note": ""}}))


def test_rows_equal_those_of_the_same_trajectory_recorded_as_a_bag(dataset, tmp_path):
    calvin = load_calvin_split(dataset / "training")[1]
    _write_as_trial(tmp_path / "trial", calvin, range(8, 21))
    bag = load_trial(tmp_path / "trial")
    assert len(bag) == len(calvin) and bag.instruction == calvin.instruction
    codec = ActionCodec(action_statistics([calvin], get_embodiment("calvin")), "calvin")
    proprio = proprio_statistics([calvin])
    rows = [WindowDataset([e], codec, ["static", "wrist"], 32, window=16, chunk=10, segment=8, proprio=proprio)
            for e in (calvin, bag)]
    assert len(rows[0]) == len(rows[1]) == 2
    for item in range(2):
        ours, theirs = rows[0][item], rows[1][item]
        assert ours["instruction"] == theirs["instruction"]
        np.testing.assert_array_equal(ours["frames"].numpy(), theirs["frames"].numpy())
        np.testing.assert_array_equal(ours["action_mask"].numpy(), theirs["action_mask"].numpy())
        np.testing.assert_allclose(ours["actions"].numpy(), theirs["actions"].numpy(), atol=1e-4)  # float32 msgs
        np.testing.assert_allclose(ours["proprio"].numpy(), theirs["proprio"].numpy(), atol=1e-4)


def test_damaged_datasets_name_the_file(dataset, tmp_path):
    assert not is_calvin_split(dataset) and is_calvin_split(dataset / "training")
    with pytest.raises(EpisodeError, match="dataset root: give .*training"):
        load_calvin_split(dataset)
    with pytest.raises(EpisodeError, match="CALVIN has no camera"):
        load_calvin_split(dataset / "training", cameras=["static", "depth"])
    nan = write_split(tmp_path / "nan", range(5), [(0, 4, "go", "t")], None,
                      {2: {"rel_actions": np.full(7, np.nan, np.float32)}})
    with pytest.raises(EpisodeError, match="episode_0000002.npz.*not finite"):
        load_calvin_split(nan)
    missing = write_split(tmp_path / "missing", range(5), [(0, 6, "go", "t")], None)
    with pytest.raises(EpisodeError, match="episode_0000005.npz cannot be read"):
        load_calvin_split(missing)
    grey = write_split(tmp_path / "grey", range(3), [(0, 2, "go", "t")], None,
                       {1: {"rgb_static": np.zeros((200, 200), np.uint8)}})
    episode = load_calvin_split(grey)[0]
    with pytest.raises(EpisodeError, match=r"episode_0000001.npz: rgb_static is uint8 \(200, 200\)"):
        episode.frames["static"][1]
    np.save(grey / "lang_annotations" / "auto_lang_ann.npy", np.array([1, 2]))
    with pytest.raises(EpisodeError, match="auto_lang_ann.npy is not CALVIN's annotation dict"):
        load_calvin_split(grey)
    no_scenes = write_split(tmp_path / "no_scenes", range(3), [(0, 2, "go", "t")], None)
    with pytest.raises(EpisodeError, match="scene_info.npy cannot be read"):
        load_calvin_split(no_scenes, scenes=["A"])


def test_robovlms_train_on_a_calvin_split_validates_on_its_validation_split(dataset, tmp_path, capsys):
    init = tmp_path / "init"
    create_checkpoint(init, "kosmos2", "policy_head", embodiment="calvin", window=4, chunk=3)
    out = tmp_path / "trained"
    assert train_main(["--init", str(init), "--data", str(dataset / "training"), "--val-data",
                       str(dataset / "validation"), "--calvin-scenes", "A", "--out", str(out), "--max-steps", "3",
                       "--batch-size", "2", "--gradient-clip", "1.0", "--no-progress-bar"]) == 0
    printed = capsys.readouterr().out
    assert "from 2 episode(s)" in printed and "val/loss" in printed
    _, config, _ = load_checkpoint(out)
    # Statistics in CALVIN's units: rel_actions' xyz within [-1, 1]; a rotation vector is the Euler increments
    # mapped through the current orientation (each of its components at most the sum of the three increments).
    assert config.embodiment == "calvin"
    low, high = np.array(config.action_stats["low"]), np.array(config.action_stats["high"])
    assert (-1.0 <= low[:3]).all() and (high[:3] <= 1.0).all() and (high[:3] > 0.5).all()
    assert (-3 < low[3:]).all() and (high[3:] < 3).all() and (high[3:] > 0.5).all()


def test_training_steps_run_the_model_in_training_mode(dataset, tmp_path, monkeypatch):
    # KosMos-2 has dropout; checkpoints load in eval mode and Lightning keeps a module's mode.
    init = tmp_path / "init"
    create_checkpoint(init, "kosmos2", "policy_head", embodiment="calvin", window=4, chunk=3)
    modes, step = [], VLAFineTuner.training_step

    def recording_step(self, batch, batch_idx):
        modes.append((self.model.training, all(m.training for m in self.model.modules())))
        return step(self, batch, batch_idx)

    monkeypatch.setattr(VLAFineTuner, "training_step", recording_step)
    train(init, [dataset / "training"], tmp_path / "out", TrainSettings(max_steps=2, batch_size=2))
    assert modes == [(True, True), (True, True)]


def test_the_calvin_recipe_dry_run_trains_and_resumes(dataset, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--dataset", str(dataset), "--split", "D", "--tiny", "--out", str(out), "--max-steps", "2",
            "--no-progress"]
    assert train_calvin(args) == 0
    policy = VLAPolicy.from_checkpoint(out / "checkpoint")
    config = policy.config
    assert (config.backbone, config.structure, config.policy_head, config.embodiment) == (
        "kosmos2", "policy_head", "lstm", "calvin")
    assert (config.window, config.chunk, config.camera_names) == (16, 10, ["static", "wrist"])
    recipe = load_recipe(out / "recipe.yaml")
    assert recipe.optim.gripper_weight == 0.01 and recipe.train.calvin_scenes == ("D",)
    assert recipe.train.validation_data == [dataset / "validation"]
    values = frame_values(0)
    policy.reset("open the drawer")
    output = policy.step({"static": values["rgb_static"], "wrist": values["rgb_gripper"]})
    assert output.arm.shape == (10, 6) and np.isfinite(output.arm).all()
    capsys.readouterr()
    assert train_calvin(args) == 0
    assert "already trained" in capsys.readouterr().out
    assert train_calvin(["--dataset", str(tmp_path / "none"), "--tiny", "--out", str(tmp_path / "x")]) == 1
    assert "robovlms-train-calvin: error:" in capsys.readouterr().err
