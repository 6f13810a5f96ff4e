"""The trial manager: runs an evaluation plan (``plan.py``) as recorded, labelled trials, resumably.

Per trial: reset (a sim by its reset_episode service; on the real cell the operator resets the scene and
confirms), trial/start with the instruction (answered once the policy acts on it), run until the sim's success
oracle, the step or time limit, or an operator stop, then label (automatically in a sim; on the real cell the
operator answers success / failure / partial with a note, at the keyboard or through trial/label). Each trial's
trial.json carries its plan cell, seed and checkpoint; a run directory interrupted halfway continues where it
stopped (labelled trials of the same plan are kept, nothing recorded is overwritten).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from robovlms_io import names
from robovlms_msgs.srv import LabelTrial, ResetEpisode, StartTrial, StopTrial
from robovlms_policy.vla.digest import file_sha256

from .plan import EvaluationPlan, PlannedTrial, plan_to_dict
from .report import TrialResult, result_of, trial_infos

RUN_FILE = "run.json"
POLL_S = 0.02


class Operator(Protocol):
    """The person at the real cell (a keyboard, or a script in tests)."""

    def ready(self, trial: PlannedTrial, number: int, total: int) -> str:
        """After resetting the scene for ``trial``: "go", "skip" (leave it for a later run) or "quit"."""

    def wants_stop(self) -> bool:
        """Polled while a trial runs: True stops it (the operator saw it succeed, fail or become unsafe)."""

    def label(self, trial_id: str, labelled: Callable[[], bool]) -> tuple[str, str] | None:
        """(outcome, note) for a stopped trial, or None when ``labelled()`` turned True meanwhile (someone
        answered through the trial/label service)."""


@dataclass
class RunState:
    done: dict[str, TrialResult]  # plan key -> labelled result of this plan


def checkpoint_identity(path: str) -> dict:
    """Where the policy's checkpoint is and sha256 digests of its config and weights (empty when unknown)."""
    directory = Path(path) if path else None
    if directory is None or not (directory / "config.json").is_file():
        return {"path": path} if path else {}
    identity = {"path": str(directory.resolve()), "config_sha256": file_sha256(directory / "config.json")}
    if (directory / "model.safetensors").is_file():
        identity["weights_sha256"] = file_sha256(directory / "model.safetensors")
    return identity


class TrialManager:
    """Runs ``plan`` through ``graph`` (an OperatorGraph with the trial services, and reset_episode in a sim)
    and its in-process ``recorder`` (writing into ``run_dir``)."""

    def __init__(self, graph, recorder, plan: EvaluationPlan, run_dir: Path, sim: bool,
                 operator: Operator | None = None, seed: int = 0, checkpoint: dict | None = None,
                 say: Callable[[str], None] = print) -> None:
        if not sim and operator is None:
            raise ValueError("the real cell needs an operator (reset confirmation and labels)")
        self.graph, self.recorder, self.plan, self.run_dir = graph, recorder, plan, Path(run_dir)
        self.sim, self.operator, self.seed, self.say = sim, operator, seed, say
        self.checkpoint = checkpoint or {}

    def run(self) -> list[TrialResult]:
        """Every trial of the plan not yet done in the run directory; returns all of the plan's results."""
        state = self._open_run()
        planned = self.plan.trials()
        todo = [t for t in planned if t.key not in state.done]
        if state.done:
            self.say(f"resuming {self.run_dir}: {len(state.done)} of {len(planned)} trials already done")
        for trial in todo:
            number = len(state.done) + 1
            if not self.sim:
                answer = self.operator.ready(trial, number, len(planned))
                if answer == "quit":
                    break
                if answer == "skip":
                    continue
            result = self._run_trial(trial)
            state.done[trial.key] = result
            wins = sum(r.success for r in state.done.values())
            self.say(f"[{number}/{len(planned)}] {trial.task:<22} {trial.setting:<14} {result.outcome:<8} "
                     f"{result.steps:>4} steps {result.seconds:5.1f} s  '{result.instruction}'  running success "
                     f"{wins}/{len(state.done)} ({wins / len(state.done):.0%})")
        return [state.done[t.key] for t in planned if t.key in state.done]

    def _open_run(self) -> RunState:
        """Create or resume the run directory; refuses one that holds another plan."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.recorder.set_output_dir(self.run_dir)
        record = self.run_dir / RUN_FILE
        if record.is_file():
            previous = json.loads(record.read_text())
            if previous.get("plan_digest") != self.plan.digest:
                raise ValueError(f"{self.run_dir} holds a run of another plan ({previous.get('plan', {}).get('name')}"
                                 f", digest {str(previous.get('plan_digest'))[:12]}); use a new run directory")
        else:
            record.write_text(json.dumps({"plan_digest": self.plan.digest, "plan": plan_to_dict(self.plan),
                                          "sim": self.sim, "seed": self.seed, "checkpoint": self.checkpoint,
                                          "created_at": time.time()}, indent=2) + "\n")
        return RunState({info["plan_key"]: result_of(info) for info in trial_infos(self.run_dir)
                         if info.get("plan_digest") == self.plan.digest and (info.get("label") or {}).get("outcome")})

    def _run_trial(self, trial: PlannedTrial) -> TrialResult:
        seed = self.seed + trial.repeat if self.sim else None
        instruction = trial.instruction
        if self.sim:
            reset = self.graph.call(names.RESET_EPISODE_SERVICE,
                                    ResetEpisode.Request(task=trial.task, seed=seed, variation=trial.setting))
            if not reset.success:
                raise RuntimeError(f"reset_episode({trial.task}, {seed}, {trial.setting}) failed: {reset.message}")
            instruction = instruction or reset.instruction
        if not instruction:
            raise ValueError(f"plan task {trial.task} has no instruction for setting {trial.setting}")
        start = self.graph.call("trial/start", StartTrial.Request(instruction=instruction, task=trial.task,
                                                                  setting=trial.setting, max_steps=trial.max_steps))
        if not start.success:
            raise RuntimeError(f"trial/start failed: {start.message}")
        trial_id = start.trial_id
        self.recorder.annotate_trial(trial_id, {"plan": self.plan.name, "plan_digest": self.plan.digest,
                                                "plan_key": trial.key, "repeat": trial.repeat, "seed": seed,
                                                "checkpoint": self.checkpoint})
        reason = self._wait(trial, trial_id, seed)
        if self.recorder.active_trial_id == trial_id:
            self.graph.call("trial/stop", StopTrial.Request(reason=reason))
        self._label(trial_id, reason)
        return result_of(self.recorder.trial_metadata(trial_id))

    def _wait(self, trial: PlannedTrial, trial_id: str, seed: int | None) -> str:
        """Why the trial ends: success (sim oracle), timeout, operator, or the recorder's own stop."""
        deadline = time.monotonic() + trial.max_duration_s
        while self.recorder.active_trial_id == trial_id:
            if self.sim:
                info = self.graph.latest_info
                if info is not None and info.task == trial.task and info.seed == seed and info.success:
                    return "success"
            elif self.operator.wants_stop():
                return "operator"
            if time.monotonic() > deadline:
                return "timeout"
            time.sleep(POLL_S)
        return self.recorder.trial_metadata(trial_id).get("stop_reason", "stopped")

    def _label(self, trial_id: str, reason: str) -> None:
        if self.sim:
            success = reason == "success"
            request = LabelTrial.Request(trial_id=trial_id, success=success, note="success oracle of the sim")
        else:
            answer = self.operator.label(trial_id, lambda: bool(self.recorder.trial_metadata(trial_id).get("label")))
            if answer is None:
                return
            outcome, note = answer
            request = LabelTrial.Request(trial_id=trial_id, success=outcome == "success", note=note, outcome=outcome)
        label = self.graph.call("trial/label", request)
        if not label.accepted:
            raise RuntimeError(f"trial/label failed: {label.message}")
