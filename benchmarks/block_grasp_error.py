"""How far from the block a checkpoint acts on the twin's block tasks: the measure behind "the policy does not
locate the blocks". Direct path (robovlms_training.twin_eval's rollouts, the driver's safety layer in lockstep),
evaluation seeds, replan. Prints a markdown table for the README.

    python benchmarks/block_grasp_error.py --checkpoint CKPT [--episodes 10]

Per task: success, the closest the TCP came to the block's start position in xy, and where the policy first
commanded the gripper closed: how often that was low (within 5 cm of the block's height, a grasp attempt) and
the xy miss of those attempts. The expert closes within 6 mm; the open 2F-85 (85 mm) leaves about 2 cm either
side of the 4 cm block.
"""
from __future__ import annotations

import argparse

import numpy as np

from robovlms_policy.vla.checkpoint import CheckpointError, load_checkpoint
from robovlms_policy.vla.policy import VLAPolicy
from robovlms_policy.vla.proprio import TCP_POSITION
from robovlms_training.twin_rollouts import PolicyCommander, RolloutSettings, run_episode
from robovlms_twin.cell import CellConfig, KinovaCell
from robovlms_twin.driver_loop import DriverLoop

BLOCKS = {"lift_red_block": "red_block", "push_blue_block_left": "blue_block"}
LOW = 0.05  # m above the block's centre: a close this low is a grasp attempt


class _ClosureRecorder:
    """Wraps the policy's commander; keeps the TCP, relative to the block's start position (which the cell
    records at reset), where the policy first commands the gripper closed, and its closest xy approach."""

    def __init__(self, commander: PolicyCommander, cell: KinovaCell, body: str) -> None:
        self.commander, self.cell, self.body = commander, cell, body

    def reset(self, instruction: str, rng: np.random.Generator) -> None:
        self.commander.reset(instruction, rng)
        self.first_close, self.closest = None, np.inf

    def act(self, tick, observation, label):
        offset = observation.proprio[TCP_POSITION] - self.cell.scene.initial[self.body]
        self.closest = min(self.closest, float(np.linalg.norm(offset[:2])))
        action = self.commander.act(tick, observation, label)
        if action is not None and action[2] > 0.5 and self.first_close is None:
            self.first_close = offset
        return action


def measure(policy: VLAPolicy, episodes: int) -> list[str]:
    settings = RolloutSettings(store_size=policy.image_size, max_steps=120, steps_after_success=0)
    loop = DriverLoop(KinovaCell(CellConfig(image_size=settings.render_size)))
    rows = []
    try:
        for task, body in BLOCKS.items():
            recorder = _ClosureRecorder(PolicyCommander(policy), loop.cell, body)
            wins, closest, misses, low = 0, [], [], 0
            for seed in range(episodes):
                wins += run_episode(loop, task, seed, recorder, settings).success
                closest.append(recorder.closest)
                if recorder.first_close is not None and recorder.first_close[2] < LOW:
                    low += 1
                    misses.append(float(np.linalg.norm(recorder.first_close[:2])))
            miss = f"{100 * np.median(misses):.1f} cm" if misses else "-"
            rows.append(f"| {task} | {wins}/{episodes} | {100 * np.median(closest):.1f} cm | {low}/{episodes} | "
                        f"{miss} |")
    finally:
        loop.cell.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation seeds 0 .. N-1 per task")
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    try:
        model, config, tokenizer = load_checkpoint(args.checkpoint)
    except CheckpointError as err:
        parser.error(str(err))
    rows = measure(VLAPolicy(model, config, tokenizer), args.episodes)
    print("| task | success | closest xy approach (median) | low closes | xy miss of low closes (median) |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
