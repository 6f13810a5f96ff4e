"""CALVIN's native dataset format -> the same ``Episode`` objects as the rosbag reader produces.

A split directory (``task_ABC_D/training``, ``task_ABC_D/validation``, ...) holds one ``episode_XXXXXXX.npz`` per
frame (rgb_static 200x200, rgb_gripper 84x84, rel_actions, robot_obs, ...) and
``lang_annotations/auto_lang_ann.npy``: a pickled dict whose ``language.ann`` / ``language.task`` name the
instruction and task of each annotated frame range ``info.indx`` (start, end inclusive). Each annotation becomes
one episode, as a language-conditioned CALVIN dataset samples them:

* frames: rgb_static as the ``static`` camera and rgb_gripper as the ``wrist`` camera (the calvin_bridge
  publishes them on those cameras' topics), read from the files when a training row needs them (a CALVIN split
  is hundreds of GB);
* actions: each frame's rel_actions in the suite's command layout (``robovlms_calvin.actions``: base_link
  deltas in m, rotation vectors, gripper closure), exactly what the policy's commands become in calvin_env;
* proprioception: robot_obs as the calvin backend publishes it (TCP pose in base_link, closure from the
  opening width), in the ``ee_pose_gripper`` layout.

``scenes`` keeps the annotations that start in the given scenes (``scene_info.npy``: e.g. A, B and C of
task_ABCD_D). Only load datasets you trust: ``auto_lang_ann.npy`` is a pickle, as CALVIN writes it.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from robovlms_calvin.actions import SCENE_BASE, BaseFrame, RobotObs, calvin_to_command
from robovlms_io.instructions import normalize_instruction
from robovlms_io.names import KNUCKLE_CLOSED_RAD
from robovlms_policy.vla.proprio import ee_pose_gripper

from .episodes import Episode, EpisodeError

CAMERA_KEYS = {"static": "rgb_static", "wrist": "rgb_gripper"}
ANNOTATIONS = ("lang_annotations/auto_lang_ann.npy", "auto_lang_ann.npy")  # CALVIN's loader tries both
SCENE_INFO = "scene_info.npy"
_FRAME_FILE = re.compile(r"^episode_(\d+)\.npz$")


def annotation_file(root: Path) -> Path | None:
    return next((root / name for name in ANNOTATIONS if (root / name).is_file()), None)


def is_calvin_split(path: str | Path) -> bool:
    return Path(path).is_dir() and annotation_file(Path(path)) is not None


class CalvinFrames:
    """One camera's frames of an annotated range, read from the frame files on access (ints, slices or index
    arrays, like a (T, H, W, 3) uint8 array)."""

    def __init__(self, paths: Sequence[Path], key: str) -> None:
        self.paths, self.key = list(paths), key

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self._read(self.paths[index])
        return np.stack([self._read(self.paths[i]) for i in np.arange(len(self.paths))[index]])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        frames = self[slice(None)]
        return frames if dtype is None else frames.astype(dtype)

    def _read(self, path: Path) -> np.ndarray:
        try:
            with np.load(path) as data:
                image = data[self.key]
        except (OSError, KeyError, ValueError) as err:
            raise EpisodeError(f"{path}: cannot read {self.key}: {err}") from err
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise EpisodeError(f"{path}: {self.key} is {image.dtype} {image.shape}, expected uint8 (H, W, 3)")
        return image


class _SplitFiles:
    """Frame file names of a split (the digit count is read from the files, as CALVIN's loader does) and the
    per-frame actions and robot states, each file read once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        digits = next((len(m.group(1)) for entry in root.iterdir() if (m := _FRAME_FILE.match(entry.name))), None)
        if digits is None:
            raise EpisodeError(f"{root} holds no episode_<frame>.npz files")
        self.digits = digits
        self._state: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def path(self, frame: int) -> Path:
        return self.root / f"episode_{frame:0{self.digits}d}.npz"

    def state(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """(rel_actions (7,), robot_obs (15,)) of one frame."""
        if frame not in self._state:
            path = self.path(frame)
            try:
                with np.load(path) as data:
                    rel, obs = np.asarray(data["rel_actions"], np.float64), np.asarray(data["robot_obs"], np.float64)
            except (OSError, KeyError, ValueError) as err:
                raise EpisodeError(f"{path} cannot be read: {err}") from err
            if rel.shape != (7,) or obs.shape != (15,) or not (np.isfinite(rel).all() and np.isfinite(obs).all()):
                raise EpisodeError(f"{path}: rel_actions {rel.shape} / robot_obs {obs.shape} are not finite "
                                   "7- and 15-vectors")
            self._state[frame] = rel, obs
        return self._state[frame]


def read_annotations(root: Path) -> list[tuple[int, int, str, str]]:
    """(start, end, instruction, task) of every language annotation of a split, in file order."""
    path = annotation_file(root)
    if path is None:
        raise EpisodeError(f"{root} has no {' or '.join(ANNOTATIONS)}")
    try:
        data = np.load(path, allow_pickle=True).item()
        spans, texts, tasks = data["info"]["indx"], data["language"]["ann"], data["language"]["task"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise EpisodeError(f"{path} is not CALVIN's annotation dict: {err}") from err
    if not len(spans) == len(texts) == len(tasks):
        raise EpisodeError(f"{path}: {len(spans)} ranges, {len(texts)} instructions and {len(tasks)} tasks differ")
    found = []
    for (start, end), text, task in zip(spans, texts, tasks):
        if not 0 <= int(start) <= int(end) or not normalize_instruction(text):
            raise EpisodeError(f"{path}: annotation ({start}, {end}, {text!r}) has an empty range or instruction")
        found.append((int(start), int(end), normalize_instruction(text), str(task)))
    return found


def read_scene_ranges(root: Path) -> dict[str, tuple[int, int]]:
    """Scene letter -> (first, last) frame, from scene_info.npy ({"calvin_scene_A": [first, last], ...})."""
    path = root / SCENE_INFO
    try:
        info = np.load(path, allow_pickle=True).item()
        return {str(name).removeprefix("calvin_scene_"): (int(span[0]), int(span[1])) for name, span in info.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise EpisodeError(f"{path} cannot be read (needed to select scenes): {err}") from err


def _scene_of(frame: int, ranges: dict[str, tuple[int, int]]) -> str | None:
    return next((scene for scene, (first, last) in ranges.items() if first <= frame <= last), None)


def load_calvin_split(root: str | Path, scenes: Iterable[str] | None = None,
                      cameras: Sequence[str] = tuple(CAMERA_KEYS), base: BaseFrame = SCENE_BASE,
                      progress: bool = False) -> list[Episode]:
    """Every language-annotated range of a CALVIN split directory as an Episode (module docstring)."""
    root = Path(root)
    if not is_calvin_split(root):
        hint = next((f"; it is a CALVIN dataset root: give {root / 'training'} (and {root / 'validation'} as "
                     "validation data)" for sub in ("training", "validation") if is_calvin_split(root / sub)), "")
        raise EpisodeError(f"{root} is not a CALVIN split directory (no {ANNOTATIONS[0]}){hint}")
    unknown = [c for c in cameras if c not in CAMERA_KEYS]
    if unknown:
        raise EpisodeError(f"CALVIN has no camera(s) {unknown}; it records {sorted(CAMERA_KEYS)}")
    files = _SplitFiles(root)
    annotations = read_annotations(root)
    wanted = None if scenes is None else {s.upper() for s in scenes}
    ranges = read_scene_ranges(root) if wanted is not None or (root / SCENE_INFO).is_file() else {}
    episodes = []
    for number, (start, end, instruction, task) in enumerate(annotations):
        scene = _scene_of(start, ranges)
        if wanted is not None and scene not in wanted:
            continue
        episodes.append(_episode(files, start, end, instruction, task, scene, cameras, base))
        if progress and number % 500 == 0:
            print(f"[calvin] {root}: annotation {number + 1} of {len(annotations)}", file=sys.stderr, flush=True)
    if not episodes:
        within = f" in scenes {sorted(wanted)} (scenes here: {sorted(ranges)})" if wanted is not None else ""
        raise EpisodeError(f"{root}: no language annotation{within}")
    return episodes


def _episode(files: _SplitFiles, start: int, end: int, instruction: str, task: str, scene: str | None,
             cameras: Sequence[str], base: BaseFrame) -> Episode:
    frames = range(start, end + 1)
    actions, proprio = [], []
    for frame in frames:
        rel, obs = files.state(frame)
        robot = RobotObs.parse(obs)
        actions.append(calvin_to_command(rel, robot.tcp_euler, base))
        proprio.append(ee_pose_gripper(*robot.pose_in_base(base), robot.closure * KNUCKLE_CLOSED_RAD))
    paths = [files.path(frame) for frame in frames]
    info = {"seed": f"calvin-{start}", "frames": [start, end], "scene": scene, "source": str(files.root)}
    return Episode(trial_dir=files.root, instruction=instruction, task=task, success=True,
                   frames={camera: CalvinFrames(paths, CAMERA_KEYS[camera]) for camera in cameras},
                   actions=np.stack(actions), proprio=np.stack(proprio), info=info)


def load_calvin(roots: Iterable[str | Path], scenes: Iterable[str] | None = None,
                cameras: Sequence[str] = tuple(CAMERA_KEYS), progress: bool = False) -> list[Episode]:
    scenes = None if scenes is None else list(scenes)
    return [e for root in roots for e in load_calvin_split(root, scenes, cameras, progress=progress)]
