"""Closed-loop evaluation of a policy on the twin through the direct path (no DDS): the policy acts with the
policy node's timing, the task oracle scores. Fast enough to run during training; the evaluation that counts
runs through the ROS graph (``make demo``, benchmarks/eval_default_policy.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import lightning as L
import numpy as np

from .twin_rollouts import PolicyCommander, RolloutSettings, run_episode

EVAL_SEED_BASE = 0  # evaluation seeds: 0, 1, ... (training seeds start at robovlms_twin.tasks.TRAIN_SEED_BASE)


@dataclass
class TwinEvaluation:
    rates: dict[str, float]  # task -> success rate
    episodes: int

    @property
    def overall(self) -> float:
        return float(np.mean(list(self.rates.values()))) if self.rates else 0.0

    def describe(self) -> str:
        return f"{self.overall:.0%} (" + ", ".join(f"{t} {r:.0%}" for t, r in self.rates.items()) + ")"


def evaluate(policy, tasks: Sequence[str], episodes_per_task: int, variation: str = "default",
             settings: RolloutSettings | None = None, loop=None, seed_base: int = EVAL_SEED_BASE,
             strategy: str = "replan") -> TwinEvaluation:
    """Success rate per task over seeds seed_base .. seed_base + episodes_per_task - 1."""
    from robovlms_twin.cell import CellConfig, KinovaCell
    from robovlms_twin.driver_loop import DriverLoop

    settings = settings or RolloutSettings(store_size=policy.image_size, max_steps=120, steps_after_success=0)
    own_loop = loop is None
    loop = loop or DriverLoop(KinovaCell(CellConfig(image_size=settings.render_size)))
    commander = PolicyCommander(policy, strategy)
    try:
        rates = {}
        for task in tasks:
            wins = [run_episode(loop, task, seed_base + i, commander, settings, variation).success
                    for i in range(episodes_per_task)]
            rates[task] = float(np.mean(wins))
    finally:
        if own_loop:
            loop.cell.close()
    return TwinEvaluation(rates, episodes_per_task * len(tasks))


class TwinEvalCallback(L.Callback):
    """Every ``every_steps`` optimiser steps: a few closed-loop episodes per task on evaluation seeds, logged as
    ``twin/success`` and ``twin/<task>``."""

    def __init__(self, policy_factory, tasks: Sequence[str], every_steps: int, episodes_per_task: int = 2) -> None:
        self.policy_factory = policy_factory  # model -> VLAPolicy sharing the model being trained
        self.tasks = list(tasks)
        self.every_steps = every_steps
        self.episodes_per_task = episodes_per_task
        self.history: list[tuple[int, TwinEvaluation]] = []
        self._loop = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every_steps <= 0 or step == 0 or step % self.every_steps:
            return
        self.run(trainer, module)

    def run(self, trainer, module) -> TwinEvaluation:
        from robovlms_twin.cell import CellConfig, KinovaCell
        from robovlms_twin.driver_loop import DriverLoop

        if self._loop is None:
            self._loop = DriverLoop(KinovaCell(CellConfig()))
        was_training = module.model.training
        result = evaluate(self.policy_factory(module.model), self.tasks, self.episodes_per_task, loop=self._loop)
        module.model.train(was_training)
        self.history.append((trainer.global_step, result))
        for logger in trainer.loggers:
            logger.log_metrics({"twin/success": result.overall,
                                **{f"twin/{t}": r for t, r in result.rates.items()}}, step=trainer.global_step)
        print(f"step {trainer.global_step}: twin closed-loop {result.describe()}", flush=True)
        return result

    def teardown(self, trainer, module, stage) -> None:
        if self._loop is not None:
            self._loop.cell.close()
            self._loop = None


def evaluation_table(path: Path, history: list[tuple[int, TwinEvaluation]]) -> None:
    """CSV of the periodic evaluations: step, overall, then one column per task."""
    if not history:
        return
    tasks = list(history[0][1].rates)
    lines = ["step,overall," + ",".join(tasks)]
    lines += [f"{step},{ev.overall:.3f}," + ",".join(f"{ev.rates[t]:.3f}" for t in tasks) for step, ev in history]
    path.write_text("\n".join(lines) + "\n")
