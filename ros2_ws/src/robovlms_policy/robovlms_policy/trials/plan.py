"""Evaluation plans: which tasks, in which settings, how many trials each, and when a trial ends. YAML, loaded
strictly (an unknown or misspelt key is an error naming it, never ignored):

    name: kinova-eval-v1
    settings: [simple, unseen_distractor, unseen_background, unseen_object, novel_skill_description]
    trials_per_cell: 5
    max_steps: 300            # control steps (commands) before a trial times out
    max_duration_s: 60        # wall-clock limit of a trial
    tasks:
      - task: open_drawer
        instruction: open the drawer
        instructions: {novel_skill_description: pull the drawer open}   # per setting, optional
        max_steps: 200                                                   # per task, optional
      - task: lift_red_block  # in a sim, an omitted instruction is the sim's own for the setting

A plan's cells are (task, setting); each is run ``trials_per_cell`` times, in plan order: every task's first
trial in every setting, then the second ones, so an interrupted run has covered the plan evenly.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from robovlms_io.instructions import normalize_instruction


class PlanError(ValueError):
    """The plan file is missing, not YAML or not a valid plan; the message names the field."""


@dataclass(frozen=True)
class PlanTask:
    task: str
    instruction: str = ""
    instructions: dict[str, str] = field(default_factory=dict)
    max_steps: int = 0  # 0: the plan's
    max_duration_s: float = 0.0  # 0: the plan's

    def instruction_for(self, setting: str) -> str:
        return self.instructions.get(setting, self.instruction)


@dataclass(frozen=True)
class PlannedTrial:
    """One trial of the plan: its cell, its repeat index and its limits."""

    task: str
    setting: str
    repeat: int
    instruction: str  # "" in a sim: the sim's instruction for the setting
    max_steps: int
    max_duration_s: float

    @property
    def key(self) -> str:
        return f"{self.task}/{self.setting}/{self.repeat}"


@dataclass(frozen=True)
class EvaluationPlan:
    name: str
    tasks: tuple[PlanTask, ...]
    settings: tuple[str, ...] = ("default",)
    trials_per_cell: int = 1
    max_steps: int = 300
    max_duration_s: float = 120.0
    digest: str = ""  # sha256 of the plan's canonical JSON: a resumed run must be running the same plan

    def trials(self) -> list[PlannedTrial]:
        return [PlannedTrial(t.task, setting, repeat, t.instruction_for(setting), t.max_steps or self.max_steps,
                             t.max_duration_s or self.max_duration_s)
                for repeat in range(self.trials_per_cell) for setting in self.settings for t in self.tasks]


def _strict(cls, data: Any, where: str) -> dict:
    if not isinstance(data, dict):
        raise PlanError(f"{where} must be a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)} - {"digest"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PlanError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    return data


def _positive(value: Any, where: str, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)) \
            or value < 0:
        raise PlanError(f"{where} must be a non-negative {kind.__name__}, got {value!r}")
    return kind(value)


def _text(value: Any, where: str, allow_empty: bool = False) -> str:
    text = normalize_instruction(value) if isinstance(value, str) else None
    if text is None or (not text and not allow_empty):
        raise PlanError(f"{where} must be a non-empty string, got {value!r}")
    return text


def parse_plan(data: Any, where: str = "plan") -> EvaluationPlan:
    data = _strict(EvaluationPlan, data, where)
    if "name" not in data or "tasks" not in data:
        raise PlanError(f"{where} needs 'name' and 'tasks'")
    settings = tuple(_text(s, f"{where}.settings[{i}]") for i, s in enumerate(data.get("settings", ["default"])))
    if not settings or len(set(settings)) != len(settings):
        raise PlanError(f"{where}.settings must be a non-empty list without repeats, got {list(settings)}")
    if not isinstance(data["tasks"], list) or not data["tasks"]:
        raise PlanError(f"{where}.tasks must be a non-empty list")
    tasks = []
    for i, entry in enumerate(data["tasks"]):
        at = f"{where}.tasks[{i}]"
        entry = _strict(PlanTask, entry, at)
        if "task" not in entry:
            raise PlanError(f"{at} needs 'task'")
        per_setting = entry.get("instructions", {})
        if not isinstance(per_setting, dict) or not set(per_setting) <= set(settings):
            raise PlanError(f"{at}.instructions must map settings of the plan ({list(settings)}) to instructions")
        instruction = _text(entry.get("instruction", ""), f"{at}.instruction", allow_empty=True)
        tasks.append(PlanTask(_text(entry["task"], f"{at}.task"), instruction,
                              {s: _text(v, f"{at}.instructions.{s}") for s, v in per_setting.items()},
                              _positive(entry.get("max_steps", 0), f"{at}.max_steps", int),
                              _positive(entry.get("max_duration_s", 0.0), f"{at}.max_duration_s", float)))
    if len({t.task for t in tasks}) != len(tasks):
        raise PlanError(f"{where}.tasks names a task twice")
    plan = EvaluationPlan(_text(data["name"], f"{where}.name"), tuple(tasks), settings,
                          _positive(data.get("trials_per_cell", 1), f"{where}.trials_per_cell", int),
                          _positive(data.get("max_steps", 300), f"{where}.max_steps", int),
                          _positive(data.get("max_duration_s", 120.0), f"{where}.max_duration_s", float))
    if plan.trials_per_cell < 1 or plan.max_duration_s <= 0:
        raise PlanError(f"{where}: trials_per_cell must be >= 1 and max_duration_s > 0")
    canonical = json.dumps(plan_to_dict(plan), sort_keys=True).encode()
    return EvaluationPlan(**{**plan.__dict__, "digest": hashlib.sha256(canonical).hexdigest()})


def plan_to_dict(plan: EvaluationPlan) -> dict:
    return {"name": plan.name, "settings": list(plan.settings), "trials_per_cell": plan.trials_per_cell,
            "max_steps": plan.max_steps, "max_duration_s": plan.max_duration_s,
            "tasks": [{"task": t.task, "instruction": t.instruction, "instructions": dict(t.instructions),
                       "max_steps": t.max_steps, "max_duration_s": t.max_duration_s} for t in plan.tasks]}


def load_plan(path: str | Path) -> EvaluationPlan:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise PlanError(f"{path} cannot be read as YAML: {err}") from err
    return parse_plan(data, str(path))
