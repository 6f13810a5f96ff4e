"""Closed-loop evaluation of a checkpoint through the ROS graph (twin bridge -> policy node -> driver), the full
version of what `make demo` does: every task, N episodes per task on evaluation seeds (never training seeds),
on the seen setting and each held-out set (unseen colours, distractors, paraphrased instructions).

    python benchmarks/eval_default_policy.py                      # the shipped twin_default, 10 episodes per task
    python benchmarks/eval_default_policy.py --checkpoint DIR --episodes 20 --out runs/eval

Each setting is one `make demo` run (its own DDS graph, bags and report under OUT/<setting>); the script prints
the success table (markdown) and writes OUT/evaluation.json; with --model-card it also writes the table into
the checkpoint's MODEL_CARD.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from robovlms_twin.tasks import VARIATIONS

CARD_START, CARD_END = "<!-- evaluation -->", "<!-- /evaluation -->"


def run_setting(checkpoint: str, setting: str, episodes: int, seed: int, out: Path, strategy: str,
                domain_id: int) -> dict:
    """One `make demo` run on its own DDS domain (settings may run side by side)."""
    command = [sys.executable, "-m", "robovlms_demo.demo", "--episodes", str(episodes), "--seed", str(seed),
               "--variation", setting, "--out", str(out), "--execution-strategy", strategy]
    if checkpoint:
        command += ["--checkpoint", checkpoint]
    start = time.perf_counter()
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id)}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"demo failed for {setting}: {result.stderr[-2000:]}")
    episodes_run = json.loads((out / "results.json").read_text())["episodes"]
    by_task: dict[str, list[bool]] = defaultdict(list)
    for episode in episodes_run:
        by_task[episode["task"]].append(episode["success"])
    return {"tasks": {task: sum(wins) / len(wins) for task, wins in by_task.items()},
            "episodes": len(episodes_run), "successes": sum(e["success"] for e in episodes_run),
            "seconds": time.perf_counter() - start}


def table(results: dict[str, dict]) -> str:
    tasks = list(next(iter(results.values()))["tasks"])
    lines = ["| task | " + " | ".join(results) + " |", "|---|" + "---:|" * len(results)]
    for task in tasks:
        lines.append(f"| {task} | " + " | ".join(f"{r['tasks'][task]:.0%}" for r in results.values()) + " |")
    lines.append("| **all** | " + " | ".join(f"**{r['successes'] / r['episodes']:.0%}** ({r['successes']}/"
                                              f"{r['episodes']})" for r in results.values()) + " |")
    return "\n".join(lines)


def write_model_card(card: Path, text: str) -> None:
    content = card.read_text()
    if CARD_START not in content:
        raise ValueError(f"{card} has no {CARD_START} ... {CARD_END} block")
    head, rest = content.split(CARD_START, 1)
    _, tail = rest.split(CARD_END, 1)
    card.write_text(f"{head}{CARD_START}\n{text}\n{CARD_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="", help="default: the shipped twin_default")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task and setting")
    parser.add_argument("--seed", type=int, default=0, help="first evaluation seed")
    parser.add_argument("--settings", default=",".join(VARIATIONS))
    parser.add_argument("--execution-strategy", default="replan")
    parser.add_argument("--out", type=Path, default=Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S"))
    parser.add_argument("--model-card", type=Path, help="MODEL_CARD.md to write the table into")
    parser.add_argument("--jobs", type=int, default=1,
                        help="settings run side by side, each on its own ROS_DOMAIN_ID; only where the cores let "
                             "every graph's policy keep its 10 Hz (on 2 cores one graph already takes most of them)")
    parser.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "0")),
                        help="ROS_DOMAIN_ID of the first setting; the others take the next ids")
    args = parser.parse_args(argv)
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]

    def evaluate(index_setting: tuple[int, str]) -> dict:
        index, setting = index_setting
        result = run_setting(args.checkpoint, setting, args.episodes, args.seed, args.out / setting,
                             args.execution_strategy, args.domain_id + index)
        print(f"{setting}: {result['successes']}/{result['episodes']} in {result['seconds']:.0f} s", flush=True)
        return result

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = dict(zip(settings, pool.map(evaluate, enumerate(settings))))
    text = (f"Closed loop through the ROS graph (twin bridge -> policy node -> driver), {args.episodes} episodes per "
            f"task on evaluation seeds {args.seed}..{args.seed + args.episodes - 1}, "
            f"{args.execution_strategy}:\n\n{table(results)}")
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evaluation.json").write_text(json.dumps({"checkpoint": args.checkpoint or "twin_default",
                                                          "episodes_per_task": args.episodes, "seed": args.seed,
                                                          "settings": results}, indent=2) + "\n")
    if args.model_card:
        write_model_card(args.model_card, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
