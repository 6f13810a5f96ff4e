"""Benchmark the MuJoCo twin: control steps per second with both cameras rendered.

One control step = one 0.1 s expert action through differential IK and physics, then a render of
the static (Kinect) and wrist (RealSense) cameras. Prints a markdown table row for the README.

    python benchmarks/bench_twin.py --image-size 224 --steps 300
"""
from __future__ import annotations

import argparse
import os
import platform
import time

from robovlms_twin.cell import CellConfig, KinovaCell


def measure(cell: KinovaCell, steps: int, render: bool) -> float:
    """Control steps per second over ``steps`` expert steps, cycling through the tasks."""
    tasks = cell.task_names
    elapsed = 0.0
    done = 0
    episode = 0
    while done < steps:
        cell.reset(tasks[episode % len(tasks)], seed=episode)  # resets are not timed
        episode += 1
        for _ in range(min(30, steps - done)):
            start = time.perf_counter()
            cell.act(*cell.expert_action())
            if render:
                cell.render("static")
                cell.render("wrist")
            elapsed += time.perf_counter() - start
            done += 1
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    if args.image_size <= 0 or args.steps <= 0:
        parser.error("--image-size and --steps must be positive")
    cell = KinovaCell(CellConfig(image_size=args.image_size))
    cell.reset(cell.task_names[0], seed=0)
    cell.render("static")  # create the GL context outside the timed loop
    physics = measure(cell, args.steps, render=False)
    full = measure(cell, args.steps, render=True)
    cell.close()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    backend = os.environ.get("MUJOCO_GL", "default")
    print(f"| MuJoCo twin, 2 cameras at {args.image_size} px ({backend}) | {full:.0f} control steps/s "
          f"| {physics:.0f} steps/s without rendering | {cores} cores, {platform.processor() or platform.machine()} |")


if __name__ == "__main__":
    main()
