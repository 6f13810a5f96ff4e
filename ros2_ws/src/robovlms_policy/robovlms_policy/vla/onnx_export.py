"""robovlms-export CHECKPOINT --runtime onnx OUT: the policy's graphs as ONNX, beside a copy of the checkpoint.

OUT is a checkpoint directory (config.json, tokenizer.json, model.safetensors copied) plus onnx/:
  encoder.onnx        normalised pixels (1, cameras, 3, S, S), instruction ids and mask (1, L) [, proprioception
                      (1, P)] -> the frame's [LRN] feature (1, D): the per-frame vision + VLM pass
  head.onnx           the window of cached features (1, window, D) -> per position arm (1, window, chunk, 6) in
                      [-1, 1] and gripper closure probabilities (1, window, chunk). The heads are causal (position
                      t sees frames <= t), so a shorter history is padded at the end and read at its last frame.
  export.json         the sha256 of the weights the graphs were exported from, and the export check's errors
Loading with runtime onnx refuses graphs whose recorded weights hash differs from model.safetensors beside them.
The history cache is kept: the encoder runs once per frame and the head takes the cached features. policy_head
only: the other structures run their VLM over the whole window each tick, which this split does not express.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, CheckpointError, load_checkpoint
from .digest import file_sha256
from .runtimes import RuntimeUnsupported
from .structures import ActionPrediction, Prompt, VLAStructure

ONNX_DIR = "onnx"
EXPORT_FILE = "export.json"
OPSET = 18  # torch.export's default: no version conversion


def weights_digest(directory: Path) -> str:
    return file_sha256(Path(directory) / WEIGHTS_FILE)


def _require_policy_head(model: VLAStructure) -> None:
    if model.config.structure != "policy_head":
        raise RuntimeUnsupported(f"runtime onnx supports the policy_head structure only (a per-frame encoder and a "
                                 f"head over cached features); {model.config.structure} runs its VLM over the whole "
                                 "window each tick: use eager, int8 or compile")


class _Encoder(nn.Module):
    def __init__(self, model: VLAStructure) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels, ids, mask, proprio=None):
        return self.model.history_item(self.model.encode_frame(pixels, proprio), Prompt(ids, mask))


class _Head(nn.Module):
    def __init__(self, model: VLAStructure) -> None:
        super().__init__()
        self.head = model.head

    def forward(self, history):
        arm, logit = self.head(history)
        return arm, torch.sigmoid(logit)


def export_onnx(checkpoint: str | Path, out: str | Path) -> dict:
    """Write OUT (see the module docstring); returns export.json's content."""
    checkpoint, out = Path(checkpoint), Path(out)
    model, config, tokenizer = load_checkpoint(checkpoint)
    _require_policy_head(model)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; choose a new directory")
    (out / ONNX_DIR).mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE):
        shutil.copyfile(checkpoint / name, out / name)
    size, cams = config.image_size, len(config.camera_names)
    pixels = torch.randn(1, cams, 3, size, size)
    ids = torch.tensor([tokenizer.encode("open the drawer").ids])
    mask = torch.ones_like(ids, dtype=torch.bool)
    inputs = (pixels, ids, mask) + ((torch.randn(1, config.proprio_dim),) if config.proprio_dim else ())
    names = ["pixels", "ids", "mask"] + (["proprio"] if config.proprio_dim else [])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        # torch.export (dynamo) with the instruction length dynamic: the TorchScript tracer mis-records parts of
        # some backbones (KosMos-2) that this path keeps.
        tokens = torch.export.Dim("tokens", min=1, max=config.max_instruction_tokens)
        shapes = ({}, {1: tokens}, {1: tokens}) + (({},) if config.proprio_dim else ())
        torch.onnx.export(_Encoder(model), inputs, out / ONNX_DIR / "encoder.onnx", input_names=names,
                          output_names=["feature"], dynamic_shapes=shapes, opset_version=OPSET, dynamo=True,
                          verbose=False)
        feature = _Encoder(model)(*inputs)
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # the fused transformer layer (GPT head) has no ONNX op
        try:
            torch.onnx.export(_Head(model), (feature[:, None].repeat(1, config.window, 1),),
                              out / ONNX_DIR / "head.onnx", input_names=["history"], output_names=["arm", "gripper"],
                              opset_version=OPSET, dynamo=False)
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
    record = {"weights_sha256": weights_digest(checkpoint), "opset": OPSET, "window": config.window}
    (out / ONNX_DIR / EXPORT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    record["check"] = check_export(model, out, inputs)
    (out / ONNX_DIR / EXPORT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def check_export(model: VLAStructure, out: Path, inputs: tuple) -> dict:
    """Max absolute difference between the graphs and eager on the export inputs (feature, full-window head)."""
    runner = OnnxRunner(model, out)
    with torch.no_grad():
        eager = _Encoder(model)(*inputs)
        feature = runner.encode(inputs[0], inputs[3] if len(inputs) > 3 else None, Prompt(inputs[1], inputs[2]))
        errors = {"feature": float((feature - eager).abs().max()), "arm": 0.0, "gripper": 0.0}
        for length in (1, model.config.window):  # a short history (padded) and a full one
            history = [feature * (1 + 0.1 * t) for t in range(length)]
            arm, gripper = _Head(model)(torch.stack(history, 1))
            onnx_head = runner.predict(history, None)
            errors["arm"] = max(errors["arm"], float((onnx_head.arm - arm[:, -1]).abs().max()))
            errors["gripper"] = max(errors["gripper"], float((onnx_head.gripper - gripper[:, -1]).abs().max()))
    return errors


class OnnxRunner:
    """The exported graphs under onnxruntime (CPU), with the policy's per-frame cache."""

    def __init__(self, model: VLAStructure, directory: Path | None) -> None:
        _require_policy_head(model)
        import onnxruntime

        graphs = Path(directory or "") / ONNX_DIR
        record_path = graphs / EXPORT_FILE
        if directory is None or not record_path.is_file():
            raise RuntimeUnsupported(f"runtime onnx needs graphs exported beside the checkpoint ({record_path} is "
                                     "missing): run robovlms-export CHECKPOINT --runtime onnx OUT and load OUT")
        record = json.loads(record_path.read_text())
        if record.get("weights_sha256") != weights_digest(directory):
            raise RuntimeUnsupported(f"{graphs} was exported from other weights than {Path(directory) / WEIGHTS_FILE} "
                                     "(sha256 differs): export again")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = lambda name: onnxruntime.InferenceSession(str(graphs / name), options,  # noqa: E731
                                                            providers=["CPUExecutionProvider"])
        self._encoder = session("encoder.onnx")
        self._head = session("head.onnx")
        self._window = model.config.window
        self._proprio = model.config.proprio_dim > 0
        self._device = next(model.parameters()).device

    def encode(self, pixels: torch.Tensor, proprio: torch.Tensor | None, prompt: Prompt) -> torch.Tensor:
        feeds = {"pixels": pixels.float().cpu().numpy(), "ids": prompt.ids.cpu().numpy(),
                 "mask": prompt.mask.cpu().numpy()}
        if self._proprio:
            feeds["proprio"] = proprio.float().cpu().numpy()
        return torch.from_numpy(self._encoder.run(None, feeds)[0]).to(self._device)

    def predict(self, history: list[torch.Tensor], prompt: Prompt | None) -> ActionPrediction:
        stacked = torch.stack(history, dim=1).float().cpu().numpy()
        length = stacked.shape[1]
        padded = np.zeros((1, self._window, stacked.shape[2]), dtype=np.float32)
        padded[:, :length] = stacked
        arm, gripper = self._head.run(None, {"history": padded})
        return ActionPrediction(torch.from_numpy(arm[:, length - 1]).to(self._device),
                                torch.from_numpy(gripper[:, length - 1]).to(self._device))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robovlms-export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--runtime", required=True, choices=["onnx"], help="what to export (onnx)")
    parser.add_argument("out", type=Path, help="new directory: the checkpoint copy with its graphs")
    args = parser.parse_args(argv)
    try:
        record = export_onnx(args.checkpoint, args.out)
    except (CheckpointError, RuntimeUnsupported, ValueError, OSError) as err:
        print(f"robovlms-export: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote ONNX graphs to {args.out / ONNX_DIR} (max difference to eager: {record['check']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
