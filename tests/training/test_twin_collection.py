"""Twin data without DDS: expert-labelled episodes (noisy demonstrations, policy rollouts relabelled by the
expert), the episode store, and the proof that the direct path records what the ROS graph records: the same
episode through `make demo` (real DDS, MCAP bag, bag reader) and through the direct path gives the same data."""
from __future__ import annotations

import numpy as np
import pytest

from robovlms_policy.vla.init_checkpoint import create_checkpoint
from robovlms_policy.vla.policy import VLAPolicy
from robovlms_training.episode_store import EpisodeStore, load_store
from robovlms_training.twin_rollouts import NoisyExpert, PolicyCommander, RolloutSettings, run_episode
from robovlms_twin.cell import CellConfig, KinovaCell
from robovlms_twin.driver_loop import DriverLoop

SIZE = 32


@pytest.fixture(scope="module")
def loop():
    loop = DriverLoop(KinovaCell(CellConfig(image_size=SIZE)))
    yield loop
    loop.cell.close()


class Recording(NoisyExpert):
    """The noisy expert, keeping what it executed next to what the expert said."""

    def act(self, tick, observation, label):
        executed = super().act(tick, observation, label)
        self.executed.append(np.concatenate([executed[0], executed[1], [executed[2]]]))
        return executed

    def reset(self, instruction, rng):
        super().reset(instruction, rng)
        self.executed = []


def test_noisy_demonstrations_keep_the_expert_labels(loop, tmp_path):
    settings = RolloutSettings(render_size=SIZE, store_size=SIZE, max_steps=60, steps_after_success=4)
    commander = Recording(0.006, 0.01, 0.1)
    result = run_episode(loop, "press_button", 1_000_001, commander, settings)
    episode = result.episode
    assert result.success and len(episode) == result.steps_to_success + 4  # recording goes on past success
    executed = np.stack(commander.executed)
    assert np.abs(executed[:, :3] - episode.actions[:, :3]).max() > 0.003  # the noise was executed ...
    assert np.linalg.norm(episode.actions[:, :3], axis=1).max() <= 0.03 + 1e-9  # ... the labels are the expert's
    assert episode.frames["static"].shape == (len(episode), SIZE, SIZE, 3) and episode.proprio.shape == (len(episode), 10)
    np.testing.assert_allclose(np.linalg.norm(episode.proprio[:, 3:6], axis=1), 1.0, atol=1e-9)

    store = EpisodeStore(tmp_path / "store")
    store.add(episode, source="expert")
    store.flush()
    (loaded,) = load_store([tmp_path / "store"])
    assert loaded.instruction == episode.instruction and loaded.success and loaded.info["seed"] == 1_000_001
    np.testing.assert_array_equal(loaded.frames["wrist"], episode.frames["wrist"])
    np.testing.assert_array_equal(loaded.actions, episode.actions)


def test_policy_rollouts_are_labelled_by_the_expert(loop, tmp_path):
    create_checkpoint(tmp_path / "ckpt", "paligemma", "policy_head", image_size=SIZE, window=4, chunk=3,
                      proprio_dim=10, proprio_layout="ee_pose_gripper")
    policy = VLAPolicy.from_checkpoint(tmp_path / "ckpt")
    settings = RolloutSettings(render_size=SIZE, store_size=SIZE, max_steps=12)
    result = run_episode(loop, "lift_red_block", 1_000_002, PolicyCommander(policy), settings)
    assert not result.success and len(result.episode) == 12  # a random policy does not lift the block
    # The random policy barely moves; the expert's labels still head for the block at full speed.
    assert np.linalg.norm(result.episode.actions[:, :3], axis=1).max() > 0.02
    moved = np.linalg.norm(result.episode.proprio[-1, :3] - result.episode.proprio[0, :3])
    assert moved < 0.05


@pytest.mark.ros
@pytest.mark.slow
def test_direct_path_records_what_the_ros_graph_records(tmp_path):
    """One scripted-expert lift_red_block episode (seed 0) through `make demo` and through the direct path give the
    same data: the same instruction, cameras, dtypes and layouts, the same first frames and robot state bit for
    bit (the image path, encodings included, is the same), the same motion per command and the same end. The
    graph's timers run at their own phases and physics may fall behind real time on a loaded machine, so the ROS
    episode can trail the direct one by a step or two; the comparison allows for that."""
    from test_training_episodes import record_demo_run
    from robovlms_training.episodes import find_trial_dirs, load_trial

    ros = load_trial(find_trial_dirs([record_demo_run(tmp_path / "demo")])[0])
    loop = DriverLoop(KinovaCell(CellConfig(image_size=64)))
    try:
        direct = run_episode(loop, "lift_red_block", 0, NoisyExpert(), RolloutSettings(
            render_size=64, store_size=64, max_steps=len(ros) + 5, steps_after_success=0)).episode
    finally:
        loop.cell.close()
    assert direct.instruction == ros.instruction and ros.success and direct.success
    assert sorted(direct.frames) == sorted(ros.frames) == ["static", "wrist"]
    for name in ros.frames:
        assert direct.frames[name].dtype == ros.frames[name].dtype == np.uint8
        assert direct.frames[name].shape[1:] == ros.frames[name].shape[1:] == (64, 64, 3)
        np.testing.assert_array_equal(direct.frames[name][0], ros.frames[name][0])
    assert direct.proprio.shape[1:] == ros.proprio.shape[1:] == (10,) and direct.actions.shape[1:] == (7,)
    np.testing.assert_allclose(direct.proprio[0], ros.proprio[0], atol=1e-6)
    np.testing.assert_allclose(direct.actions[0], ros.actions[0], atol=1e-6)  # the same expert on the same state
    assert abs(len(direct) - len(ros)) <= 3, (len(direct), len(ros))
    path = {name: np.linalg.norm(np.diff(e.proprio[:, :3], axis=0), axis=1).sum() for name, e in
            (("direct", direct), ("ros", ros))}
    assert 0.8 < path["ros"] / path["direct"] < 1.2, path
    np.testing.assert_allclose(direct.proprio[-1, :3], ros.proprio[-1, :3], atol=0.02)  # the block lifted alike
    assert abs(direct.actions[:, 6].sum() - ros.actions[:, 6].sum()) <= 3  # steps with the gripper closed
