"""Per-tick latency (p50/p99) and peak memory of VLAPolicy.step, printed as a markdown table for the README.

Each row runs ``step`` with a history already filled to the window (steady state), so the numbers are what the
policy node pays per tick. A "recompute" row times the training-style pass over the whole window, i.e. what a
tick would cost without the per-frame cache.

Sizes:
  tiny          the default ``robovlms-init-checkpoint --tiny`` model (LM hidden 64, 2 layers)
  kosmos2       the KosMos-2 (patch14-224) architecture, ~1.7 B parameters, random weights
  paligemma-3b  the PaliGemma-3B (SigLIP so400m + Gemma 2B) architecture, random weights
  --checkpoint DIR  a trained checkpoint as it is (e.g. the shipped twin_default)
Large sizes are built from transformers' default configs with random weights (latency does not depend on the
values), so nothing is downloaded. No GPU was lent while this suite was written: only the tiny CPU rows were
measured here. With a GPU run, e.g.
  python benchmarks/bench_vla.py --size paligemma-3b --device cuda --dtype bfloat16 --structure policy_head
the goal is <= 15 ms per tick on an H100 in bf16 for the policy-head structure.

Runtimes (``--runtimes eager,int8,compile,onnx``; bf16 and cuda_graph on CUDA): each in a process of its own
(clean peak memory), cached-step p50/p99 at the window, peak memory, and the ratios to eager, with each
runtime's largest action difference to eager fp32 on the same inputs and its gripper agreement.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# The VLA core imports no ROS (only the shared package's pure modules): this lets the benchmark run on a GPU
# machine with only torch + transformers.
for _package in ("robovlms_policy", "robovlms_io"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ros2_ws" / "src" / _package))

from robovlms_policy.vla.backbones.registry import get_backbone_class  # noqa: E402
from robovlms_policy.vla.checkpoint import save_checkpoint  # noqa: E402
from robovlms_policy.vla.onnx_export import export_onnx  # noqa: E402
from robovlms_policy.vla.runtime_check import compare  # noqa: E402
from robovlms_policy.vla.backbones.tiny import TINY_IMAGE_SIZE, tiny_backbone_config  # noqa: E402
from robovlms_policy.vla.checkpoint import build_model  # noqa: E402
from robovlms_policy.vla.config import STRUCTURES, VLAConfig  # noqa: E402
from robovlms_policy.vla.init_checkpoint import DEFAULT_STATS  # noqa: E402
from robovlms_policy.vla.policy import VLAPolicy  # noqa: E402
from robovlms_policy.vla.proprio import ee_pose_gripper  # noqa: E402
from robovlms_policy.vla.tokenizer import build_tiny_tokenizer, marker_id  # noqa: E402

SIZES = {"tiny": None, "kosmos2": "kosmos2", "paligemma-3b": "paligemma"}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def backbone_setup(size: str, backbone: str) -> tuple[str, dict, int]:
    if size == "tiny":
        return backbone, tiny_backbone_config(backbone), TINY_IMAGE_SIZE
    name = SIZES[size]
    hf_config = get_backbone_class(name).config_class().to_dict()  # transformers' defaults = the released sizes
    return name, hf_config, 224


def build_policy(args: argparse.Namespace, window: int, runtime: str = "eager") -> VLAPolicy:
    name, hf_config, image_size = backbone_setup(args.size, args.backbone)
    cls = get_backbone_class(name)
    tokenizer = build_tiny_tokenizer()
    start, end = (marker_id(tokenizer, t) for t in cls.image_marker_tokens)
    config = VLAConfig(backbone=name, backbone_config=hf_config, action_stats=DEFAULT_STATS,
                       structure=args.structure, policy_head=args.policy_head, image_size=image_size,
                       image_mean=list(cls.image_mean), image_std=list(cls.image_std), window=window,
                       chunk=args.chunk, image_start_id=start, image_end_id=end)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[args.dtype])  # build directly in the target dtype: no fp32 copy of 3 B weights
    try:
        with torch.device(args.device):
            model = build_model(config)
    finally:
        torch.set_default_dtype(previous)
    model = model.to(args.device, DTYPES[args.dtype])
    if runtime != "onnx":
        return VLAPolicy(model, config, tokenizer, runtime=runtime)
    work = Path(tempfile.mkdtemp(prefix="bench_onnx_"))
    save_checkpoint(model, config, tokenizer, work / "checkpoint")
    export_onnx(work / "checkpoint", work / "onnx")
    return VLAPolicy.from_checkpoint(work / "onnx", device=args.device, runtime="onnx")


def measure_runtime(args: argparse.Namespace, images: dict) -> dict:
    """One runtime, in this process: cached-step latency at the first window, peak memory, difference to eager."""
    policy = build_policy(args, args.windows[0], args.runtime)
    policy.reset("lift the red block")
    for _ in range(policy.window + 3):
        policy.step(images)
    step_ms = timed(lambda: policy.step(images), args.ticks, args.device)
    memory = peak_memory_mib(args.device)
    difference = compare(build_policy(args, args.windows[0]), policy)
    return {"runtime": args.runtime, "p50": float(np.percentile(step_ms, 50)), "p99": float(np.percentile(step_ms, 99)),
            "memory": memory, "max_arm_error": difference.max_arm_error_normalised,
            "gripper_agreement": difference.gripper_agreement}


def runtime_table(args: argparse.Namespace) -> None:
    rows = []
    for runtime in args.runtimes.split(","):
        command = [sys.executable, __file__, "--runtime", runtime, "--size", args.size, "--backbone", args.backbone,
                   "--structure", args.structure, "--device", args.device, "--dtype", args.dtype, "--windows",
                   str(args.windows[0]), "--chunk", str(args.chunk), "--ticks", str(args.ticks), "--threads",
                   str(args.threads)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            rows.append({"runtime": runtime, "error": result.stderr.strip().splitlines()[-1]})
            continue
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    eager = next(r for r in rows if r["runtime"] == "eager" and "error" not in r)
    print(f"\nRuntimes, size={args.size}, structure={args.structure}, device={args.device}, window "
          f"{args.windows[0]}, torch threads={args.threads} (cached step; difference in normalised action units)\n")
    print("| runtime | p50 ms | p99 ms | peak memory MiB | p50 / eager | memory / eager | max action difference "
          "| gripper agreement |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['runtime']} | refused: {r['error']} | | | | | | |")
            continue
        print(f"| {r['runtime']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['memory']:.0f} | {r['p50'] / eager['p50']:.2f} "
              f"| {r['memory'] / eager['memory']:.2f} | {r['max_arm_error']:.1e} | {r['gripper_agreement']:.0%} |")


def peak_memory_mib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux reports KiB)


def timed(fn, ticks: int, device: str) -> np.ndarray:
    times = []
    for _ in range(ticks):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return np.asarray(times) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--backbone", default="paligemma", help="tiny size only: which tiny backbone")
    parser.add_argument("--structure", choices=STRUCTURES, default="policy_head")
    parser.add_argument("--policy-head", default="lstm", choices=("lstm", "gpt", "mlp"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--checkpoint", type=Path, help="time this checkpoint (its own window) instead of a size")
    parser.add_argument("--runtimes", help="comma-separated runtimes to compare (e.g. eager,int8,compile,onnx)")
    parser.add_argument("--runtime", help=argparse.SUPPRESS)  # one runtime, measured in this process (JSON)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    images = {cam: rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for cam in ("static", "wrist")}
    if args.runtimes:
        return runtime_table(args)
    if args.runtime:
        return print(json.dumps(measure_runtime(args, images)))

    rows = []
    for window in ([None] if args.checkpoint else args.windows):
        policy = (VLAPolicy.from_checkpoint(args.checkpoint, device=args.device, dtype=DTYPES[args.dtype])
                  if args.checkpoint else build_policy(args, window))
        window = policy.window
        proprio = ee_pose_gripper([0.45, 0.0, 0.2], [1.0, 0.0, 0.0, 0.0], 0.0) if policy.config.proprio_dim else None
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        policy.reset("lift the red block")
        for _ in range(window + 3):  # fill the history: steady state
            policy.step(images, proprio)
        step_ms = timed(lambda: policy.step(images, proprio), args.ticks, args.device)
        rows.append(("cached step", window, step_ms, peak_memory_mib(args.device), policy))
        if args.structure != "one_step_discrete" and policy.model.uses_history and window > 1:
            pixels = torch.cat([policy.preprocess(images)] * window)[None]
            state = None if proprio is None else torch.zeros(1, window, policy.config.proprio_dim,
                                                             dtype=pixels.dtype, device=pixels.device)
            with torch.inference_mode():
                recompute_ms = timed(lambda: policy.model(pixels, policy._prompt, state), max(10, args.ticks // 5),
                                     args.device)
            rows.append(("recompute window", window, recompute_ms, peak_memory_mib(args.device), policy))

    what = f"checkpoint={args.checkpoint}" if args.checkpoint else f"size={args.size}, structure={args.structure}"
    print(f"\nVLAPolicy per-tick latency, {what}, device={args.device}, "
          f"dtype={args.dtype}, torch threads={args.threads}, 2 cameras 640x480 -> {rows[0][4].image_size} px, "
          f"chunk {args.chunk}\n")
    print("| mode | backbone | window | params | p50 ms | p99 ms | peak memory MiB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for mode, window, ms, memory, policy in rows:
        params = sum(p.numel() for p in policy.model.parameters())
        print(f"| {mode} | {policy.config.backbone} | {window} | {params / 1e6:.2f} M | {np.percentile(ms, 50):.1f} | "
              f"{np.percentile(ms, 99):.1f} | {memory:.0f} |")


if __name__ == "__main__":
    main()
