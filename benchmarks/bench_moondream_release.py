"""Load time and peak memory of a MoonDream 2 release directory at its real shapes (random fp16 weights).

Writes a release-layout directory (config.json with auto_map, model.safetensors under MoonDream's tensor names,
1.86 B parameters, 3.7 GB) unless it exists, then loads it as the policy node would through
``robovlms-init-checkpoint --pretrained``, and encodes one 378 px image. Nothing is downloaded.

  python benchmarks/bench_moondream_release.py /tmp/moondream2-shapes
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ros2_ws" / "src" / "robovlms_policy"))

from robovlms_policy.vla.backbones.moondream_release import PROJECTION, TEXT, TEXT_HEAD, VISION  # noqa: E402
from robovlms_policy.vla.backbones.registry import get_backbone_class  # noqa: E402


def release_shapes() -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a MoonDream 2 release (SigLIP-so400m-like ViT, Phi-1.5-sized LM)."""
    shapes: dict[str, tuple[int, ...]] = {VISION + "pos_embed": (1, 729, 1152)}

    def linear(name: str, n_out: int, n_in: int) -> None:
        shapes[name + ".weight"], shapes[name + ".bias"] = (n_out, n_in), (n_out,)

    def norm(name: str, width: int) -> None:
        shapes[name + ".weight"], shapes[name + ".bias"] = (width,), (width,)

    linear(VISION + "patch_embed.linear", 1152, 3 * 14 * 14)
    for i in range(27):
        block = f"{VISION}blocks.{i}."
        norm(block + "norm1", 1152), norm(block + "norm2", 1152)
        linear(block + "attn.qkv", 3 * 1152, 1152), linear(block + "attn.proj", 1152, 1152)
        linear(block + "mlp.fc1", 4304, 1152), linear(block + "mlp.fc2", 1152, 4304)
    norm(VISION + "norm", 1152)
    linear(PROJECTION + "fc1", 8192, 2 * 1152)
    linear(PROJECTION + "fc2", 2048, 8192)
    shapes[TEXT + "embd.wte.weight"] = (51200, 2048)
    for i in range(24):
        block = f"{TEXT}h.{i}."
        norm(block + "ln", 2048)
        linear(block + "mixer.Wqkv", 3 * 2048, 2048), linear(block + "mixer.out_proj", 2048, 2048)
        linear(block + "mlp.fc1", 8192, 2048), linear(block + "mlp.fc2", 2048, 8192)
    norm(TEXT_HEAD + "ln", 2048)
    linear(TEXT_HEAD + "linear", 51200, 2048)
    return shapes


def write_release(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: torch.randn(shape, dtype=torch.float16) * 0.02 for name, shape in release_shapes().items()}
    save_file(tensors, str(directory / "model.safetensors"))
    config = {"model_type": "moondream1", "auto_map": {"AutoModelForCausalLM": "moondream.Moondream"},
              "text_config": {"model_type": "phi"}}
    (directory / "config.json").write_text(json.dumps(config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="release directory (written if it has no model.safetensors)")
    args = parser.parse_args()
    if not (args.directory / "model.safetensors").is_file():
        write_release(args.directory)
    start = time.perf_counter()
    backbone = get_backbone_class("moondream").from_pretrained(args.directory).eval()
    load_s = time.perf_counter() - start
    params = sum(p.numel() for p in backbone.parameters())
    with torch.no_grad():
        start = time.perf_counter()
        tokens = backbone.encode_images(torch.zeros(1, 3, 378, 378))
        encode_s = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print("| params | load s | peak RSS GiB | first 378 px encode s | vision tokens |")
    print("|---:|---:|---:|---:|---|")
    print(f"| {params / 1e9:.2f} B | {load_s:.1f} | {peak_gib:.1f} | {encode_s:.1f} | {tuple(tokens.shape)} |")


if __name__ == "__main__":
    main()
