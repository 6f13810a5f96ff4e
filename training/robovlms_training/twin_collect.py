"""robovlms-twin-collect: expert demonstrations (with injected noise) and DAgger rollouts on the twin, in
parallel worker processes, into an episode store.

Training seeds start at TRAIN_SEED_BASE so they never meet the evaluation seeds (``make demo`` and the
evaluation benchmark use seeds below it). Each worker process owns one twin (and, for rollouts, one copy of
the policy on one CPU thread).
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from robovlms_twin.tasks import TRAIN_SEED_BASE

from .episode_store import EpisodeStore
from .twin_rollouts import NoisyExpert, PolicyCommander, RolloutResult, RolloutSettings, run_episode


@dataclass(frozen=True)
class Job:
    task: str
    seed: int
    source: str  # "expert" (noisy demonstrations) or "policy" (DAgger: the policy acts, the expert labels)
    variation: str = "default"


@dataclass(frozen=True)
class CollectConfig:
    """Everything a worker needs to build its twin and commanders."""

    # No frame lag by default: the shipped twin_default was trained on demonstrations without it (73% through the
    # ROS graph, whose cameras do lag a step at times); lagged demonstrations have not been measured better.
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    # Up to 6 mm and 0.01 rad of noise per step, and a push every ~30 steps: deviations to recover from, while
    # the tilt labels stay the expert's small corrections rather than noise.
    noise: NoisyExpert = field(default_factory=lambda: NoisyExpert(0.006, 0.01, 0.03))
    start_jitter: float = 0.05  # m: wider start poses than evaluation's 0.03
    start_yaw_jitter: float = 0.3  # rad (evaluation: 0.15)
    light_jitter: float = 0.3
    checkpoint: str = ""  # policy for "policy" jobs
    strategy: str = "replan"


_worker: dict = {}


def _init_worker(config: CollectConfig) -> None:
    import torch

    from robovlms_twin.cell import CellConfig, KinovaCell

    torch.set_num_threads(1)
    _worker["config"] = config
    from robovlms_twin.driver_loop import DriverLoop

    _worker["loop"] = DriverLoop(KinovaCell(CellConfig(image_size=config.rollout.render_size,
                                                       start_jitter=config.start_jitter,
                                                       start_yaw_jitter=config.start_yaw_jitter,
                                                       light_jitter=config.light_jitter)))
    if config.checkpoint:
        from robovlms_policy.vla.policy import VLAPolicy

        _worker["policy"] = PolicyCommander(VLAPolicy.from_checkpoint(config.checkpoint), config.strategy)


def _run_job(job: Job) -> tuple[Job, RolloutResult]:
    config: CollectConfig = _worker["config"]
    if job.source == "policy":
        commander = _worker["policy"]
    else:
        commander = NoisyExpert(**{k: v for k, v in asdict(config.noise).items() if not k.startswith("_")})
    rng = np.random.default_rng([job.seed, 7])
    return job, run_episode(_worker["loop"], job.task, job.seed, commander, config.rollout, job.variation, rng)


def run_jobs(jobs: Sequence[Job], config: CollectConfig, workers: int = 2) -> Iterator[tuple[Job, RolloutResult]]:
    """Results in completion order; one twin per worker process."""
    if any(job.source == "policy" for job in jobs) and not config.checkpoint:
        raise ValueError("policy rollouts need a checkpoint")
    context = multiprocessing.get_context("spawn")  # GL contexts and torch threads do not survive fork
    with context.Pool(max(1, workers), initializer=_init_worker, initargs=(config,)) as pool:
        yield from pool.imap_unordered(_run_job, jobs, chunksize=1)


def seeds_for(tasks: Sequence[str], episodes_per_task: int, offset: int = 0) -> list[tuple[str, int]]:
    """Training seeds, disjoint per task and per collection round (``offset``)."""
    return [(task, TRAIN_SEED_BASE + offset + i) for task in tasks for i in range(episodes_per_task)]


def collect(out: Path, jobs: Sequence[Job], config: CollectConfig, workers: int = 2, label: str = "",
            progress: bool = True) -> dict[str, float]:
    """Run ``jobs`` into the store at ``out``; returns per-task success rates of the executed behaviour."""
    from tqdm import tqdm

    store = EpisodeStore(out)
    wins: dict[str, list[bool]] = {}
    bar = tqdm(total=len(jobs), desc=label or "collect", unit="ep", disable=not progress, dynamic_ncols=True)
    start = time.perf_counter()
    steps = 0
    for job, result in run_jobs(jobs, config, workers):
        store.add(result.episode, source=job.source, collection=label)
        wins.setdefault(job.task, []).append(result.success)
        steps += len(result.episode)
        bar.update(1)
        bar.set_postfix(steps=steps, success=f"{np.mean([w for v in wins.values() for w in v]):.0%}")
        if len(store.entries) % 50 == 0:
            store.flush()
    store.flush()
    bar.close()
    rates = {task: float(np.mean(v)) for task, v in wins.items()}
    print(f"{label or 'collect'}: {len(jobs)} episodes, {steps} steps in {time.perf_counter() - start:.0f} s; "
          "success " + ", ".join(f"{t} {r:.0%}" for t, r in rates.items()), flush=True)
    return rates


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robovlms-twin-collect", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="episode store directory (appended to)")
    parser.add_argument("--tasks", default="all", help="comma-separated twin tasks (default all)")
    parser.add_argument("--episodes-per-task", type=int, default=100)
    parser.add_argument("--seed-offset", type=int, default=0, help="added to the training seed base")
    parser.add_argument("--checkpoint", default="", help="DAgger: the policy acts, the expert labels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--store-size", type=int, default=RolloutSettings.store_size,
                        help="stored frame size (the checkpoint's)")
    parser.add_argument("--max-steps", type=int, default=RolloutSettings.max_steps)
    parser.add_argument("--frame-lag-probability", type=float, default=RolloutSettings.frame_lag_probability,
                        help="chance per episode that the cameras show the previous physics step, as in ROS")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    from robovlms_twin.tasks import parse_tasks

    args = build_parser().parse_args(argv)
    try:
        tasks = parse_tasks(args.tasks)
    except ValueError as err:
        print(f"robovlms-twin-collect: error: {err}", file=sys.stderr)
        return 2
    if args.episodes_per_task < 1:
        print("robovlms-twin-collect: error: --episodes-per-task must be at least 1", file=sys.stderr)
        return 2
    if not 0.0 <= args.frame_lag_probability <= 1.0:
        print("robovlms-twin-collect: error: --frame-lag-probability must be within [0, 1]", file=sys.stderr)
        return 2
    source = "policy" if args.checkpoint else "expert"
    rollout = RolloutSettings(store_size=args.store_size, max_steps=args.max_steps,
                              frame_lag_probability=args.frame_lag_probability)
    config = CollectConfig(rollout=rollout, checkpoint=args.checkpoint)
    jobs = [Job(task, seed, source) for task, seed in seeds_for(tasks, args.episodes_per_task, args.seed_offset)]
    collect(args.out, jobs, config, args.workers, label=source, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
