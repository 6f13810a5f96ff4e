"""robovlms-replay: run a checkpoint offline over recorded trials and report its action error, before it ever
touches the robot.

    robovlms-replay CHECKPOINT runs/kinova-eval-v1 [runs/<trial> ...] [--against auto|chunks|commands]

Two ways to replay a trial, both with the policy's own history (one reset per trial, then every observation in
recorded order):
* against the recorded chunks (a trial recorded with a policy node): every ActionChunk names the frames it was
  predicted from (camera_names, frame_stamps), so the checkpoint sees exactly those frames and its chunks are
  compared with the recorded ones, position by position. Replaying the recording checkpoint gives ~0 error.
* against the recorded commands (any trial: teleoperation, the scripted expert, another policy): each command
  is paired with the newest frame of each camera before it, as for training, and the checkpoint's first action
  is compared with it.
Reported per trial and overall: mean and max absolute error per arm dimension (mm, mrad) and gripper agreement
(closure on the same side of 0.5; hold commands, gripper -1, are not counted).
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from rosbags.rosbag2 import Reader

from robovlms_io.commands import GRIPPER_UNCHANGED, parse_command
from robovlms_io.images import image_msg_to_rgb
from robovlms_policy.vla.checkpoint import CheckpointError
from robovlms_policy.vla.policy import VLAPolicy

from .episodes import (BAG_DIR, DEFAULT_CAMERA_TOPICS, EE_POSE_TOPIC, JOINT_STATES_TOPIC, EpisodeError,
                       ProprioTracker, default_typestore, find_trial_dirs, load_trial, read_trial_info)

CHUNK_TOPIC = "/action_chunk"
ARM = ("x", "y", "z", "rx", "ry", "rz")
UNITS = (1000.0,) * 3 + (1000.0,) * 3  # m -> mm, rad -> mrad


@dataclass
class TrialReplay:
    trial: str
    against: str  # "chunks" or "commands"
    compared: int  # actions compared
    mean_error: list[float]  # per arm dimension, mm / mrad
    max_error: list[float]
    gripper_agreement: float  # NaN when no gripper value was comparable


def _errors(predicted: np.ndarray, recorded: np.ndarray, trial: str, against: str) -> TrialReplay:
    """(n, 7) predicted and recorded actions (command units) -> the summary."""
    if not len(recorded):
        raise EpisodeError(f"{trial}: nothing to compare against")
    error = np.abs(predicted[:, :6] - recorded[:, :6]) * np.asarray(UNITS)
    grip = recorded[:, 6] != GRIPPER_UNCHANGED
    agreement = float(np.mean((predicted[grip, 6] > 0.5) == (recorded[grip, 6] > 0.5))) if grip.any() else float("nan")
    return TrialReplay(trial, against, len(recorded), error.mean(axis=0).tolist(), error.max(axis=0).tolist(),
                       agreement)


def _stamp_of(raw: bytes, msgtype: str, typestore) -> tuple[int, int]:
    """An image's header stamp without deserialising its pixels: in little-endian CDR (encapsulation 0x0001) the
    stamp's sec (int32) and nanosec (uint32) follow the 4-byte encapsulation header."""
    if raw[:2] == b"\x00\x01":
        return struct.unpack_from("<iI", raw, 4)
    stamp = typestore.deserialize_cdr(raw, msgtype).header.stamp
    return int(stamp.sec), int(stamp.nanosec)


def _bag_chunks(bag: Path, policy: VLAPolicy, camera_topics: dict[str, str], typestore):
    """Recorded chunks naming their frames, with those frames (RGB) and the robot state before each."""
    topic_camera = {camera_topics[c]: c for c in policy.camera_names}
    images: dict[tuple[str, int, int], tuple[str, bytes]] = {}
    chunks, state, states = [], ProprioTracker(), []
    with Reader(bag) as reader:
        wanted = [c for c in reader.connections
                  if c.topic in topic_camera or c.topic in (CHUNK_TOPIC, EE_POSE_TOPIC, JOINT_STATES_TOPIC)]
        for connection, _, raw in reader.messages(connections=wanted):
            if connection.topic in topic_camera:
                images[(topic_camera[connection.topic], *_stamp_of(raw, connection.msgtype, typestore))] = (
                    connection.msgtype, raw)
                continue
            msg = typestore.deserialize_cdr(raw, connection.msgtype)
            if connection.topic == CHUNK_TOPIC:
                chunks.append(msg)
                states.append(state.vector())
            else:
                state.update(connection.topic, msg)
    found = []
    for chunk, proprio in zip(chunks, states):
        if list(chunk.camera_names) != policy.camera_names:
            return None  # recorded without frame stamps, or with other cameras: replay against commands
        frames = {}
        for camera, stamp in zip(chunk.camera_names, chunk.frame_stamps):
            entry = images.get((camera, int(stamp.sec), int(stamp.nanosec)))
            if entry is None:
                return None
            frames[camera] = image_msg_to_rgb(typestore.deserialize_cdr(entry[1], entry[0]))
        found.append((chunk, frames, proprio))
    return found or None


def replay_trial(policy: VLAPolicy, trial_dir: Path, against: str = "auto",
                 camera_topics: dict[str, str] = DEFAULT_CAMERA_TOPICS, typestore=None) -> TrialReplay:
    typestore = typestore or default_typestore()
    instruction = read_trial_info(trial_dir)["instruction"]
    needs_state = policy.config.proprio_dim > 0
    chunks = _bag_chunks(trial_dir / BAG_DIR, policy, camera_topics, typestore) if against != "commands" else None
    if against == "chunks" and chunks is None:
        raise EpisodeError(f"{trial_dir}: no recorded chunks with frame stamps for cameras {policy.camera_names}")
    policy.reset(instruction)
    predicted, recorded = [], []
    if chunks is not None:
        for chunk, frames, proprio in chunks:
            if needs_state and proprio is None:
                raise EpisodeError(f"{trial_dir}: the checkpoint needs the robot state; none recorded before a chunk")
            output = policy.step(frames, proprio if needs_state else None)
            actions = np.stack([parse_command(c).action for c in chunk.commands])
            n = min(len(actions), len(output.arm))
            predicted.append(np.column_stack([output.arm[:n], output.gripper[:n]]))
            recorded.append(actions[:n])
        return _errors(np.concatenate(predicted), np.concatenate(recorded), trial_dir.name, "chunks")
    episode = load_trial(trial_dir, {c: camera_topics[c] for c in policy.camera_names}, typestore)
    if needs_state and episode.proprio is None:
        raise EpisodeError(f"{trial_dir}: the checkpoint needs the robot state (ee_pose, joint_states); none recorded")
    for t in range(len(episode)):
        output = policy.step({c: episode.frames[c][t] for c in policy.camera_names},
                             episode.proprio[t] if needs_state else None)
        predicted.append(np.concatenate([output.arm[0], [output.gripper[0]]]))
    return _errors(np.stack(predicted), episode.actions, trial_dir.name, "commands")


def table(replays: Sequence[TrialReplay]) -> str:
    lines = ["| trial | against | actions | " + " | ".join(f"{d} {'mm' if i < 3 else 'mrad'}" for i, d in
                                                           enumerate(ARM)) + " | gripper agreement |",
             "|---|---|---:|" + "---:|" * 7]
    for r in replays:
        lines.append(f"| {r.trial} | {r.against} | {r.compared} | " + " | ".join(
            f"{m:.2f} (max {x:.2f})" for m, x in zip(r.mean_error, r.max_error)) + f" | {r.gripper_agreement:.1%} |")
    total = sum(r.compared for r in replays)
    mean = np.sum([np.asarray(r.mean_error) * r.compared for r in replays], axis=0) / max(total, 1)
    lines.append(f"| **all** | | {total} | " + " | ".join(f"{m:.2f}" for m in mean) + " | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robovlms-replay", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("trials", nargs="+", type=Path, help="trial directories or run directories of trials")
    parser.add_argument("--against", choices=("auto", "chunks", "commands"), default="auto",
                        help="auto: the recorded chunks where they name their frames, else the commands")
    parser.add_argument("--json", type=Path, help="also write the per-trial figures here")
    args = parser.parse_args(argv)
    try:
        policy = VLAPolicy.from_checkpoint(args.checkpoint)
        typestore = default_typestore()
        replays = [replay_trial(policy, trial, args.against, typestore=typestore)
                   for trial in find_trial_dirs(args.trials)]
    except (EpisodeError, CheckpointError, ValueError, OSError) as err:
        print(f"robovlms-replay: error: {err}", file=sys.stderr)
        return 1
    print(table(replays))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in replays], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
