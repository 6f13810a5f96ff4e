"""Recorded trials (rosbag2 MCAP + trial.json, as written by the trial recorder) -> aligned training episodes.

Alignment: for every end-effector command, the newest frame of each camera received at or before it (bag
timestamps) is paired with that command, giving (frame_t, action_t). Commands are dropped, and counted in
``Episode.skipped_commands``, when
  * they are hold commands (gripper == GRIPPER_UNCHANGED, -1): the runtime safety layer produced them, not the
    demonstrator, so they are not behaviour to imitate;
  * they are invalid (non-finite values, or a gripper outside [0, 1]): the driver refuses those, the arm never
    executed them;
  * a camera has not delivered any frame yet (the first command can precede the first image).
Commands in a frame other than base_link raise EpisodeError: the policy's actions are base-frame deltas.

Proprioception (``vla.proprio``'s ee_pose_gripper layout) comes from the newest ``ee_pose`` and gripper joint
of ``joint_states`` before each command, when the bag has both topics (``Episode.proprio`` is None otherwise).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from rosbags.rosbag2 import Reader
from rosbags.typesys.store import Typestore

from robovlms_io import names
from robovlms_io.commands import parse_command
from robovlms_io.images import image_msg_to_rgb
from robovlms_io.instructions import normalize_instruction
from robovlms_policy.trials.bag_format import suite_typestore
from robovlms_policy.vla.proprio import ee_pose_gripper

DEFAULT_CAMERA_TOPICS: dict[str, str] = {name: camera.image_topic for name, camera in names.CAMERAS.items()}
# The recorder resolves relative topics in the root namespace.
COMMAND_TOPIC = "/" + names.COMMAND_TOPIC
EE_POSE_TOPIC = "/" + names.EE_POSE_TOPIC
JOINT_STATES_TOPIC = "/" + names.JOINT_STATES_TOPIC
BASE_FRAMES = ("", names.BASE_FRAME)
TRIAL_FILE = "trial.json"
BAG_DIR = "bag"


class EpisodeError(ValueError):
    """A trial directory, trial.json or bag is missing, corrupt or unusable; the message names the file."""


@dataclass
class Episode:
    """One trial, aligned: ``frames[camera][t]`` is what the cameras showed when ``actions[t]`` was commanded."""

    trial_dir: Path
    instruction: str
    task: str
    success: bool | None  # None: the trial was never labelled
    frames: dict[str, np.ndarray]  # camera name -> uint8 (T, H, W, 3) RGB (or read on access: CalvinFrames)
    actions: np.ndarray  # float64 (T, 7): dx, dy, dz [m], drx, dry, drz [rad] per period, gripper closure [0, 1]
    proprio: np.ndarray | None = None  # float64 (T, 10) ee_pose_gripper layout, None when not recorded
    skipped_commands: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # the whole trial.json

    def __len__(self) -> int:
        return int(self.actions.shape[0])


def default_typestore() -> Typestore:
    """ROS 2 standard types plus robovlms_msgs (the recorder's types)."""
    try:
        return suite_typestore()
    except FileNotFoundError as err:
        raise EpisodeError(str(err)) from err


def find_trial_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Each path is a trial directory (holds trial.json) or a run directory of trials; sorted, de-duplicated."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise EpisodeError(f"{path} is not a directory")
        if (path / TRIAL_FILE).is_file():
            found.append(path)
            continue
        trials = sorted(d for d in path.iterdir() if (d / TRIAL_FILE).is_file())
        if not trials:
            raise EpisodeError(f"{path} holds no trials (no <trial>/{TRIAL_FILE} below it)")
        found.extend(trials)
    return sorted(set(found))


def read_trial_info(trial_dir: Path) -> dict[str, Any]:
    path = trial_dir / TRIAL_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EpisodeError(f"{path} cannot be read: {err}") from err
    if not isinstance(info, dict) or not isinstance(info.get("instruction"), str) or not info["instruction"].strip():
        raise EpisodeError(f"{path} has no non-empty 'instruction'")
    return info


def trial_success(info: dict[str, Any]) -> bool | None:
    label = info.get("label")
    return bool(label["success"]) if isinstance(label, dict) and "success" in label else None


class ProprioTracker:
    """Newest end-effector pose and gripper knuckle angle seen in a bag."""

    def __init__(self) -> None:
        self.pose: tuple[np.ndarray, np.ndarray] | None = None
        self.knuckle: float | None = None

    def update(self, topic: str, msg: Any) -> None:
        if topic == EE_POSE_TOPIC:
            p, q = msg.pose.position, msg.pose.orientation
            self.pose = np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])
        elif names.GRIPPER_JOINT in list(msg.name):
            self.knuckle = float(msg.position[list(msg.name).index(names.GRIPPER_JOINT)])

    def vector(self) -> np.ndarray | None:
        if self.pose is None or self.knuckle is None:
            return None
        return ee_pose_gripper(*self.pose, self.knuckle)


def _read_bag(bag: Path, camera_topics: Mapping[str, str], typestore: Typestore):
    """Walk the bag in timestamp order keeping each camera's newest raw frame (decoded when a command uses it)
    and the newest robot state."""
    topic_camera = {topic: name for name, topic in camera_topics.items()}
    latest: dict[str, tuple[str, bytes]] = {}
    decoded: dict[str, np.ndarray] = {}
    frames: dict[str, list[np.ndarray]] = {name: [] for name in camera_topics}
    actions: list[np.ndarray] = []
    proprio: list[np.ndarray | None] = []
    state = ProprioTracker()
    skipped = 0
    with Reader(bag) as reader:
        topics = {c.topic for c in reader.connections}
        missing = [t for t in [COMMAND_TOPIC, *camera_topics.values()] if t not in topics]
        if missing:
            raise EpisodeError(f"{bag} has no messages on {missing} (topics: {sorted(topics)})")
        state_topics = (EE_POSE_TOPIC, JOINT_STATES_TOPIC)
        wanted = [c for c in reader.connections
                  if c.topic in topic_camera or c.topic == COMMAND_TOPIC or c.topic in state_topics]
        for connection, _stamp, raw in reader.messages(connections=wanted):
            if connection.topic in topic_camera:
                name = topic_camera[connection.topic]
                latest[name] = (connection.msgtype, raw)
                decoded.pop(name, None)
                continue
            msg = typestore.deserialize_cdr(raw, connection.msgtype)
            if connection.topic in state_topics:
                state.update(connection.topic, msg)
                continue
            if msg.header.frame_id not in BASE_FRAMES:
                raise EpisodeError(f"{bag}: a command is in frame {msg.header.frame_id!r}, expected base_link")
            action = parse_command(msg).action
            valid = np.isfinite(action).all() and 0.0 <= action[6] <= 1.0
            if not valid or len(latest) < len(camera_topics):  # holds (-1) fail the gripper range too
                skipped += 1
                continue
            for name, (msgtype, frame_raw) in latest.items():
                if name not in decoded:
                    decoded[name] = image_msg_to_rgb(typestore.deserialize_cdr(frame_raw, msgtype))
                frames[name].append(decoded[name])
            actions.append(action)
            proprio.append(state.vector())
    return frames, actions, proprio, skipped


def load_trial(trial_dir: str | Path, camera_topics: Mapping[str, str] = DEFAULT_CAMERA_TOPICS,
               typestore: Typestore | None = None) -> Episode:
    """Read one trial directory into an aligned Episode (see the module docstring for the rules)."""
    trial_dir = Path(trial_dir)
    info = read_trial_info(trial_dir)
    bag = trial_dir / BAG_DIR
    if not bag.is_dir():
        raise EpisodeError(f"{bag} is missing")
    try:
        frames, actions, proprio, skipped = _read_bag(bag, camera_topics, typestore or default_typestore())
    except EpisodeError:
        raise
    except Exception as err:  # rosbags / mcap / CDR decoding raise many unrelated types on a damaged file
        raise EpisodeError(f"{bag} is corrupt or unreadable: {type(err).__name__}: {err}") from err
    if not actions:
        raise EpisodeError(f"{bag} holds no usable command with a frame from every camera ({skipped} skipped)")
    shapes = {name: {f.shape for f in stack} for name, stack in frames.items()}
    for name, found in shapes.items():
        if len(found) != 1:
            raise EpisodeError(f"{bag}: camera {name!r} changes image size within the trial: {sorted(found)}")
    return Episode(trial_dir=trial_dir, instruction=normalize_instruction(info["instruction"]),
                   task=str(info.get("task", "")), success=trial_success(info),
                   frames={name: np.stack(stack) for name, stack in frames.items()},
                   actions=np.stack(actions), proprio=_stack_proprio(proprio), skipped_commands=skipped, info=info)


def _stack_proprio(vectors: list[np.ndarray | None]) -> np.ndarray | None:
    """(T, 10) robot states, or None when the bag lacks them. A command before the first state message takes
    the first state that follows (the arm has not moved yet: the driver publishes its pose before it acts)."""
    known = [v for v in vectors if v is not None]
    if not known:
        return None
    first = known[0]
    return np.stack([first if v is None else v for v in vectors])


def load_episodes(paths: Iterable[str | Path], include_failures: bool = False,
                  camera_topics: Mapping[str, str] = DEFAULT_CAMERA_TOPICS) -> list[Episode]:
    """Episodes of every trial under ``paths``; only trials labelled successful unless ``include_failures``
    (which also admits unlabelled ones). Raises EpisodeError when nothing is left."""
    trial_dirs = find_trial_dirs(paths)
    typestore = default_typestore()
    kept = [d for d in trial_dirs if include_failures or trial_success(read_trial_info(d)) is True]
    if not kept:
        raise EpisodeError(f"none of the {len(trial_dirs)} trial(s) is labelled successful; "
                           "label them or include failures")
    return [load_trial(d, camera_topics, typestore) for d in kept]
