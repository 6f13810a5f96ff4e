"""Closed-loop evaluation of a policy on the twin through the direct path (no DDS): the policy acts with the
policy node's timing, the task oracle scores. Fast enough to run during training; the evaluation that counts
runs through the ROS graph (``make demo``, benchmarks/eval_default_policy.py).

    robovlms-twin-eval --checkpoint DIR [--episodes 10] [--variation distractors] [--execution-strategy replan]

screens a checkpoint in about a sixth of the ROS evaluation's time, and agrees with it within the evaluation's
noise (seeds 0-9, default setting: 83% direct against 86% through ROS for the first checkpoint with the image
readout, 74% against 73% for the one before it)."""
from __future__ import annotations

import argparse
import sys
import time
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


def build_parser() -> argparse.ArgumentParser:
    from robovlms_policy.runtime.chunk_strategies import STRATEGIES
    from robovlms_twin.tasks import VARIATIONS

    parser = argparse.ArgumentParser(prog="robovlms-twin-eval", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="policy checkpoint directory")
    parser.add_argument("--tasks", default="all", help="comma-separated twin tasks (default all)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task, on seeds from --seed")
    parser.add_argument("--seed", type=int, default=EVAL_SEED_BASE, help="first evaluation seed")
    parser.add_argument("--variation", choices=VARIATIONS, default="default")
    parser.add_argument("--execution-strategy", choices=STRATEGIES, default="replan")
    return parser


def main(argv: list[str] | None = None) -> int:
    from robovlms_policy.vla.checkpoint import CheckpointError
    from robovlms_policy.vla.policy import VLAPolicy
    from robovlms_twin.tasks import TRAIN_SEED_BASE, parse_tasks

    args = build_parser().parse_args(argv)
    try:
        tasks = parse_tasks(args.tasks)
    except ValueError as err:
        print(f"robovlms-twin-eval: error: {err}", file=sys.stderr)
        return 2
    if args.episodes < 1 or args.seed < 0 or args.seed + args.episodes > TRAIN_SEED_BASE:
        print(f"robovlms-twin-eval: error: --episodes must be >= 1 and the seeds within 0..{TRAIN_SEED_BASE - 1} "
              f"(seeds from {TRAIN_SEED_BASE:,} are training layouts)", file=sys.stderr)
        return 2
    try:
        policy = VLAPolicy.from_checkpoint(args.checkpoint)
    except CheckpointError as err:
        print(f"robovlms-twin-eval: error: {err}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    result = evaluate(policy, tasks, args.episodes, args.variation, seed_base=args.seed,
                      strategy=args.execution_strategy)
    wins = round(result.overall * result.episodes)
    print(f"Direct twin evaluation ({args.variation}, seeds {args.seed}..{args.seed + args.episodes - 1}, "
          f"{args.execution_strategy}, {time.perf_counter() - began:.0f} s):\n")
    print(f"| task | {args.variation} |\n|---|---:|")
    for task, rate in result.rates.items():
        print(f"| {task} | {rate:.0%} |")
    print(f"| **all** | **{result.overall:.0%}** ({wins}/{result.episodes}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
