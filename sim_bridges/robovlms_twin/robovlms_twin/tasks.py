"""Task registry: instructions (training and held-out paraphrases), seeded layouts, success oracles.

Conventions: "left"/"right" are the robot's (world +y is left); thresholds are module constants so
tests can probe each oracle just below and just above its switching point.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from robovlms_twin.model_builder import BLOCK_COLORS, BLOCK_HALF, DISTRACTOR_COLORS
from robovlms_twin.scene import BUTTON_PRESSED, SceneState

DRAWER_OPEN = 0.12  # m pulled out
DRAWER_CLOSED = 0.02
SLIDER_MOVED = 0.06  # m from the rail centre
LIFT_HEIGHT = 0.05  # m of the block's bottom face above the table
PUSH_DISTANCE = 0.06  # m along +y from the block's initial position

VARIATIONS = ("default", "unseen_colors", "distractors", "paraphrase")
# Seeds from here on are training layouts (robovlms_training); evaluation (make demo, twin_eval) stays below.
TRAIN_SEED_BASE = 1_000_000

# Fixtures' nominal table positions and the region blocks are dropped into (all within easy reach).
_CABINET_XY = np.array([0.52, 0.28])
_BUTTON_XY = np.array([0.60, -0.30])
_SLIDER_XY = np.array([0.42, -0.28])
_BLOCK_REGION = ((0.38, 0.58), (-0.12, 0.06))
_DISTRACTOR_REGION = ((0.34, 0.64), (-0.12, 0.10))
_BLOCK_SPACING = 0.09
# Held-out palettes: furniture and block shades never used by the "default" variation.
_UNSEEN_FURNITURE = ((0.25, 0.35, 0.55), (0.35, 0.55, 0.35), (0.6, 0.6, 0.62), (0.45, 0.2, 0.25))
_UNSEEN_SHADES = {
    "red": ((0.60, 0.05, 0.12), (0.95, 0.30, 0.25)),
    "blue": ((0.05, 0.10, 0.50), (0.30, 0.50, 0.95)),
    "green": ((0.05, 0.45, 0.10), (0.45, 0.85, 0.30)),
}


@dataclass(frozen=True)
class Task:
    """One language-conditioned task of the twin."""

    name: str
    instructions: tuple[str, ...]  # used for training ("default" and the visual variations)
    paraphrases: tuple[str, ...]  # held out: only the "paraphrase" variation uses them
    setup: Callable[[SceneState, np.random.Generator], None]  # task-specific initial state
    success: Callable[[SceneState], bool]  # oracle on simulator state


def _lifted(color: str) -> Callable[[SceneState], bool]:
    return lambda s: s.body_position(f"{color}_block")[2] - BLOCK_HALF >= LIFT_HEIGHT


def _pushed_left(color: str) -> Callable[[SceneState], bool]:
    body = f"{color}_block"
    return lambda s: s.body_position(body)[1] - s.initial[body][1] >= PUSH_DISTANCE


def _set_drawer(low: float, high: float):
    return lambda s, rng: s.set_drawer_opening(rng.uniform(low, high))


def _no_setup(scene: SceneState, rng: np.random.Generator) -> None:
    """The shared layout already gives this task a valid, unsolved start."""


# Training instructions: several phrasings per task, mixing verbs across tasks, so that a policy learns which
# words name the object and the direction. The paraphrases are held out: no training phrasing contains one.
TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("open_drawer",
             ("open the drawer", "pull the drawer open", "pull out the drawer", "pull the drawer out",
              "open the cabinet drawer", "please open the drawer", "drag the drawer open",
              "pull the drawer towards you"),
             ("slide the drawer out", "get that drawer open"),
             _set_drawer(0.0, 0.01), lambda s: s.drawer_opening() >= DRAWER_OPEN),
        Task("close_drawer",
             ("close the drawer", "push the drawer shut", "push the drawer in", "push the drawer closed",
              "close the cabinet drawer", "please close the drawer", "move the drawer in until it closes",
              "press the drawer shut"),
             ("slide the drawer back in", "shut the drawer"),
             _set_drawer(0.10, 0.15), lambda s: s.drawer_opening() <= DRAWER_CLOSED),
        Task("press_button",
             ("press the button", "push the button down", "push the button", "press down on the button",
              "press the round button", "please press the button", "tap the button", "click the button"),
             ("turn on the light", "hit the button"),
             _no_setup, lambda s: s.light_on or s.button_depression() >= BUTTON_PRESSED),
        Task("lift_red_block",
             ("lift the red block", "pick up the red block", "pick the red block up", "lift up the red block",
              "grasp the red block and lift it", "take the red block", "please lift the red block",
              "pick up the red one"),
             ("raise the red cube", "grab the red block and hold it up"),
             _no_setup, _lifted("red")),
        Task("push_blue_block_left",
             ("push the blue block to the left", "slide the blue block left", "push the blue block left",
              "nudge the blue block to the left", "push the blue block towards the left",
              "please push the blue block to the left", "slide the blue block to the left side",
              "push the blue one left"),
             ("shove the blue cube leftwards", "move the blue block over to the left"),
             _no_setup, _pushed_left("blue")),
        Task("move_slider_right",
             ("move the slider to the right", "slide the slider right", "push the slider to the right",
              "move the slider right", "slide the slider to the right", "push the slider right",
              "please move the slider to the right", "move the slider to the right side"),
             ("push the sliding knob rightwards", "shift the slider over to the right"),
             _no_setup, lambda s: s.slider_position() <= -SLIDER_MOVED),
        Task("move_slider_left",
             ("move the slider to the left", "slide the slider left", "push the slider to the left",
              "move the slider left", "slide the slider to the left", "push the slider left",
              "please move the slider to the left", "move the slider to the left side"),
             ("push the sliding knob leftwards", "shift the slider over to the left"),
             _no_setup, lambda s: s.slider_position() >= SLIDER_MOVED),
    )
}


def parse_tasks(text: str) -> list[str]:
    """A command line's task list, "all" or comma-separated names; ValueError naming unknown ones (or none)."""
    tasks = list(TASKS) if text == "all" else [t.strip() for t in text.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        raise ValueError(f"unknown task(s) {unknown or repr(text[:64])}; known: {', '.join(TASKS)}")
    return tasks


def check_request(task: str, variation: str) -> None:
    """Raise ValueError naming the valid choices when a task or variation is unknown."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task[:64]!r}; valid tasks: {', '.join(TASKS)}")
    if variation not in VARIATIONS:
        raise ValueError(f"unknown variation {variation[:64]!r}; valid variations: {', '.join(VARIATIONS)}")


def _scatter(rng: np.random.Generator, count: int, taken: list[np.ndarray], region) -> list[np.ndarray]:
    """Draw ``count`` positions in ``region`` by rejection sampling, keeping blocks apart."""
    (x0, x1), (y0, y1) = region
    placed: list[np.ndarray] = []
    for _ in range(100_000):
        if len(placed) == count:
            return placed
        xy = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        if all(np.linalg.norm(xy - p) >= _BLOCK_SPACING for p in taken + placed):
            placed.append(xy)
    raise RuntimeError("could not place the blocks apart; the block region is too small")


def lay_out(scene: SceneState, task: Task, variation: str, rng: np.random.Generator) -> str:
    """Randomise the whole table for ``task`` under ``variation``; return the episode's instruction.

    The caller resets MjData and model colours beforehand and runs mj_forward afterwards.
    """
    scene.set_fixture_position("cabinet", _CABINET_XY + rng.uniform(-0.02, 0.02, 2))
    scene.set_fixture_position("button_base", _BUTTON_XY + rng.uniform(-0.03, 0.03, 2))
    scene.set_fixture_position("slider_rail", _SLIDER_XY + rng.uniform(-0.02, 0.02, 2))
    scene.set_drawer_opening(rng.uniform(0.0, 0.01))
    scene.set_slider_position(rng.uniform(-0.03, 0.03))
    scene.set_button_depression(0.0)
    scene.reset_light()
    blocks = _scatter(rng, len(BLOCK_COLORS), [], _BLOCK_REGION)
    for name, xy in zip(BLOCK_COLORS, blocks):
        scene.set_free_body(f"{name}_block", xy, rng.uniform(-0.5, 0.5))
    if variation == "distractors":
        for i, xy in enumerate(_scatter(rng, len(DISTRACTOR_COLORS), blocks, _DISTRACTOR_REGION)):
            scene.set_free_body(f"distractor_{i}", xy, rng.uniform(-0.5, 0.5))
    else:
        for i in range(len(DISTRACTOR_COLORS)):
            scene.park_distractor(i)
    if variation == "unseen_colors":
        _recolor(scene, rng)
    task.setup(scene, rng)
    pool = task.paraphrases if variation == "paraphrase" else task.instructions
    return str(pool[rng.integers(len(pool))])


def _recolor(scene: SceneState, rng: np.random.Generator) -> None:
    """Held-out appearance: new furniture colour and new shades of each named block colour."""
    furniture = _UNSEEN_FURNITURE[rng.integers(len(_UNSEEN_FURNITURE))]
    for geom in ("cabinet_bottom", "cabinet_top", "cabinet_left", "cabinet_right", "cabinet_back",
                 "button_base", "slider_rail"):
        scene.geom_rgba(geom)[:3] = furniture
    for name, shades in _UNSEEN_SHADES.items():
        scene.geom_rgba(f"{name}_block")[:3] = shades[rng.integers(len(shades))]
