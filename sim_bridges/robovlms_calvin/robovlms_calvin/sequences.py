"""CALVIN's 1000 evaluation chains and the initial scene of each, computed the way CALVIN computes them.

CALVIN's ``get_sequences(1000)`` (calvin_agent/evaluation/multistep_sequences.py) and
``get_env_state_for_initial_condition`` (calvin_agent/evaluation/utils.py) import torch, hydra and pyhash;
this module is the same algorithm with numpy only, so that the protocol runs (and is tested) without them:

* a symbolic scene state (led, lightbulb, slider, drawer, the three blocks, grasped); every task has
  preconditions and effects on it, and a category no chain may repeat;
* initial states: every combination with one or two blocks on the table and at most one block per slider
  side; the chains are spread evenly over them;
* for initial state i, numpy's legacy generator seeded with i draws 5 distinct tasks until the draw is a
  valid chain (each task applicable in exactly one way, categories distinct);
* all (state, chain) pairs are shuffled with the generator seeded 0;
* the initial scene puts the blocks where the state says, the table blocks on two slots shuffled, and the
  block yaws drawn, with the generator seeded by the 32-bit FNV-1 hash (pyhash.fnv1_32, seed 0, over the
  UTF-16-LE text) of ``str(state.values())``.

The numpy calls are made in the same order with the same arguments, so the result is identical (the tests
compare against values computed with CALVIN's own code).
"""
from __future__ import annotations

import functools
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

CHAIN_LENGTH = 5
NUM_CHAINS = 1000
BLOCKS = ("red", "blue", "pink")
SLIDER_SIDES = ("slider_right", "slider_left")

State = Mapping[str, object]


@dataclass(frozen=True)
class Rule:
    """One way a task can happen: all conditions hold (a value, or any of a tuple of values) -> effects."""

    conditions: tuple[tuple[str, object], ...]
    effects: tuple[tuple[str, object], ...]

    def applies(self, state: State) -> bool:
        return all(state[k] in v if isinstance(v, tuple) else state[k] == v for k, v in self.conditions)

    def apply(self, state: State) -> dict:
        return {**state, **dict(self.effects)}


def _rule(conditions: dict, effects: dict) -> Rule:
    return Rule(tuple(conditions.items()), tuple(effects.items()))


def _block(colour: str) -> str:
    return f"{colour}_block"


def _task_rules() -> dict[str, tuple[int, tuple[Rule, ...]]]:
    """task -> (category, rules), in CALVIN's task order (the draws index into it)."""
    tasks: dict[str, tuple[int, tuple[Rule, ...]]] = {}
    for kind in ("rotate", "push"):
        for colour in BLOCKS:
            for side in ("right", "left"):
                stays = _rule({_block(colour): "table", "grasped": 0}, {_block(colour): "table"})
                tasks[f"{kind}_{colour}_block_{side}"] = (1, (stays,))
    tasks["move_slider_left"] = (2, (_rule({"slider": "right", "grasped": 0}, {"slider": "left"}),))
    tasks["move_slider_right"] = (2, (_rule({"slider": "left", "grasped": 0}, {"slider": "right"}),))
    tasks["open_drawer"] = (3, (_rule({"drawer": "closed", "grasped": 0}, {"drawer": "open"}),))
    tasks["close_drawer"] = (3, (_rule({"drawer": "open", "grasped": 0}, {"drawer": "closed"}),))
    for colour in BLOCKS:
        block, lifted = _block(colour), {_block(colour): "grasped", "grasped": 1}
        tasks[f"lift_{colour}_block_table"] = (4, (_rule({block: "table", "grasped": 0}, lifted),))
        # A block in the sliding cabinet is reachable when the door is on the other side.
        tasks[f"lift_{colour}_block_slider"] = (5, (
            _rule({block: "slider_left", "slider": "right", "grasped": 0}, lifted),
            _rule({block: "slider_right", "slider": "left", "grasped": 0}, lifted)))
        tasks[f"lift_{colour}_block_drawer"] = (6, (
            _rule({block: "drawer", "drawer": "open", "grasped": 0}, lifted),))
    tasks["place_in_slider"] = (7, tuple(
        _rule({_block(c): "grasped", "slider": door, "grasped": 1}, {_block(c): f"slider_{door}", "grasped": 0})
        for c in BLOCKS for door in ("right", "left")))
    tasks["place_in_drawer"] = (7, tuple(
        _rule({_block(c): "grasped", "drawer": "open", "grasped": 1}, {_block(c): "drawer", "grasped": 0})
        for c in BLOCKS))
    pairs = [(top, bottom) for top in BLOCKS for bottom in BLOCKS if top != bottom]
    tasks["stack_block"] = (10, tuple(
        _rule({_block(top): "grasped", _block(bottom): "table", "grasped": 1},
              {_block(top): "stacked_top", _block(bottom): "stacked_bottom", "grasped": 0}) for top, bottom in pairs))
    tasks["unstack_block"] = (11, tuple(
        _rule({_block(top): "stacked_top", _block(bottom): "stacked_bottom", "grasped": 0},
              {_block(top): "table", _block(bottom): "table"}) for top, bottom in pairs))
    for device, key in (("lightbulb", "lightbulb"), ("led", "led")):
        tasks[f"turn_on_{device}"] = (8, (_rule({key: 0, "grasped": 0}, {key: 1}),))
        tasks[f"turn_off_{device}"] = (8, (_rule({key: 1, "grasped": 0}, {key: 0}),))
    # Pushing a block into the open drawer: it must be the only block on the table.
    tasks["push_into_drawer"] = (9, tuple(
        _rule({_block(c): "table", **{_block(o): SLIDER_SIDES for o in BLOCKS if o != c}, "drawer": "open",
               "grasped": 0}, {_block(c): "drawer", "grasped": 0}) for c in BLOCKS))
    return tasks


TASKS = _task_rules()
TASK_NAMES = tuple(TASKS)
_CATEGORIES = tuple(TASKS[name][0] for name in TASK_NAMES)

CONDITION_VALUES: dict[str, tuple] = {
    "led": (0, 1), "lightbulb": (0, 1), "slider": ("right", "left"), "drawer": ("closed", "open"),
    **{_block(c): ("table", *SLIDER_SIDES) for c in BLOCKS}, "grasped": (0,),
}


def initial_states() -> list[dict]:
    """The symbolic start states: one or two blocks on the table, at most one per slider side."""
    states = []
    for values in itertools.product(*CONDITION_VALUES.values()):
        if values.count("table") in (1, 2) and all(values.count(side) < 2 for side in SLIDER_SIDES):
            states.append(dict(zip(CONDITION_VALUES, values)))
    return states


def is_valid_chain(state: State, chain) -> bool:
    """Each task applies in exactly one way in turn, and no two tasks share a category."""
    for task in chain:
        matches = [rule for rule in TASKS[task][1] if rule.applies(state)]
        if len(matches) != 1:
            return False
        state = matches[0].apply(state)
    return len({TASKS[task][0] for task in chain}) == len(chain)


def chains_for_state(state: State, count: int, state_index: int) -> list[tuple[str, ...]]:
    """``count`` valid chains from ``state``, drawn with the legacy generator seeded ``state_index``."""
    random = np.random.RandomState(state_index)
    chains: list[tuple[str, ...]] = []
    while len(chains) < count:
        # choice(34, 5, replace=False) is permutation(34)[:5] on the same stream, at a third of the cost.
        drawn = random.permutation(len(TASK_NAMES))[:CHAIN_LENGTH].tolist()
        if len({_CATEGORIES[i] for i in drawn}) < CHAIN_LENGTH:  # the cheap test first: most draws fail it
            continue
        chain = tuple(TASK_NAMES[i] for i in drawn)
        if is_valid_chain(state, chain):
            chains.append(chain)
    return chains


@dataclass(frozen=True)
class Chain:
    """One evaluation chain: its index in the list, the symbolic start state and the five subtasks."""

    index: int
    initial_state: dict
    subtasks: tuple[str, ...]


def compute_chains(num_chains: int = NUM_CHAINS) -> tuple[Chain, ...]:
    """CALVIN's evaluation chains (``get_sequences(num_chains)``), in CALVIN's order (~40 s for 1000)."""
    states = initial_states()
    counts = [len(part) for part in np.array_split(np.arange(num_chains), len(states))]
    pairs = [(state, chain) for index, (state, count) in enumerate(zip(states, counts))
             for chain in chains_for_state(state, count, index)]
    np.random.RandomState(0).shuffle(pairs)
    return tuple(Chain(i, dict(state), chain) for i, (state, chain) in enumerate(pairs))


CACHE_VERSION = 1


def cache_file(num_chains: int) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "robovlms" / f"calvin_chains_{num_chains}_v{CACHE_VERSION}.json"


@functools.lru_cache(maxsize=4)
def evaluation_chains(num_chains: int = NUM_CHAINS) -> tuple[Chain, ...]:
    """compute_chains, computed once per machine (a JSON cache under ~/.cache/robovlms)."""
    path = cache_file(num_chains)
    try:
        return tuple(Chain(c["index"], c["initial_state"], tuple(c["subtasks"])) for c in json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or unreadable: compute it
    chains = compute_chains(num_chains)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps([{"index": c.index, "initial_state": c.initial_state,
                                          "subtasks": list(c.subtasks)} for c in chains]))
        temporary.replace(path)
    except OSError:
        pass  # a read-only home: compute again next time
    return chains


# CALVIN's evaluation start: the robot's joint-space home pose and the block slots (world frame, metres).
ROBOT_OBS_START = np.array([0.02586889, -0.2313129, 0.5712808, 3.09045411, -0.02908596, 1.50013585, 0.07999963,
                            -1.21779124, 1.03987629, 2.11978254, -2.34205014, -0.87015899, 1.64119093, 0.55344928,
                            1.0])
BLOCK_SLOTS = {"slider_left": (-2.40851662e-01, 9.24044687e-02, 4.60990009e-01),
               "slider_right": (7.03416330e-02, 9.24044687e-02, 4.60990009e-01)}
TABLE_SLOTS = ((5.00000896e-02, -1.20000177e-01, 4.59990009e-01), (2.29995412e-01, -1.19995140e-01, 4.59990010e-01))
BLOCK_YAW_RANGE = (np.pi / 2 - np.pi / 8, np.pi / 2 + np.pi / 8)
SLIDER_LEFT_POSITION, DRAWER_OPEN_POSITION, LIGHTBULB_ON_SWITCH = 0.28, 0.22, 0.088


def fnv1_32(data: bytes, value: int = 0) -> int:
    """32-bit FNV-1 (multiply, then xor) from ``value`` (pyhash.fnv1_32's default seed is 0, not the offset
    basis)."""
    for byte in data:
        value = ((value * 0x01000193) & 0xFFFFFFFF) ^ byte
    return value


def state_seed(state: State) -> int:
    """pyhash.fnv1_32()(str(state.values())): pyhash hashes a str as UTF-16 without its byte-order mark."""
    return fnv1_32(str(dict(state).values()).encode("utf-16-le"))


def initial_scene(state: State) -> tuple[np.ndarray, np.ndarray]:
    """(robot_obs, scene_obs) for env.reset: CALVIN's scene for a symbolic start state."""
    random = np.random.RandomState(state_seed(state))
    table = [np.array(slot) for slot in TABLE_SLOTS]
    random.shuffle(table)
    scene = np.zeros(24)
    scene[0] = SLIDER_LEFT_POSITION if state["slider"] == "left" else 0.0
    scene[1] = DRAWER_OPEN_POSITION if state["drawer"] == "open" else 0.0
    scene[3] = LIGHTBULB_ON_SWITCH if state["lightbulb"] == 1 else 0.0
    scene[4], scene[5] = state["lightbulb"], state["led"]
    for offset, colour in zip((6, 12, 18), BLOCKS):
        place = state[_block(colour)]
        if place in BLOCK_SLOTS:
            scene[offset:offset + 3] = BLOCK_SLOTS[place]
        elif colour == "red" or (colour == "blue" and state["red_block"] != "table"):
            scene[offset:offset + 3] = table[0]  # the first block on the table takes the first slot
        else:
            scene[offset:offset + 3] = table[1]
        scene[offset + 5] = random.uniform(*BLOCK_YAW_RANGE)
    return ROBOT_OBS_START.copy(), scene
