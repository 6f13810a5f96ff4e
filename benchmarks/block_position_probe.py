"""Where a checkpoint loses the block's position: linear probes of the block's start xy at an episode's first
frame, from the raw pixels, from the vision tower's output tokens and from the feature the head reads ([LRN],
plus the image readout where the checkpoint has one: VLAConfig.image_readout).

    python benchmarks/block_position_probe.py --checkpoint CKPT [--checkpoint CKPT2 ...] [--seeds 300]

For seeds 0 .. N-1 of lift_red_block the twin is reset (evaluation layouts) and its first observation goes
through each checkpoint's own preprocessing. Ridge regressions (intercept unpenalised, the penalty chosen by
3-fold cross-validation on the fitting seeds) are fitted on the first 80% of seeds and scored (R² of x and y)
on the rest. Pixels that predict the position better than the tokens mean the vision
tower discards it; tokens better than the head's feature mean the language model does.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from robovlms_policy.vla.checkpoint import CheckpointError
from robovlms_policy.vla.policy import VLAPolicy
from robovlms_policy.vla.proprio import ProprioNormalizer
from robovlms_policy.vla.structures.base import Prompt
from robovlms_policy.vla.tokenizer import encode_instructions
from robovlms_training.twin_rollouts import Observation, observe
from robovlms_twin.cell import CellConfig, KinovaCell

TASK, BLOCK = "lift_red_block", "red_block"
PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # times the number of features (the Gram matrix's scale)
HELD_OUT = 0.2


def first_frames(seeds: int) -> tuple[list[tuple[str, Observation]], np.ndarray]:
    """The (instruction, first observation) of seeds 0 .. N-1, and the block's start xy (m)."""
    cell = KinovaCell(CellConfig())
    frames, targets = [], []
    try:
        for seed in range(seeds):
            spec = cell.reset(TASK, seed)
            frames.append((spec.instruction, observe(cell)))
            targets.append(cell.scene.initial[BLOCK][:2].copy())
    finally:
        cell.close()
    return frames, np.stack(targets)


def features_of(policy: VLAPolicy, frames: list[tuple[str, Observation]]) -> dict[str, np.ndarray]:
    """Each kind of feature of every frame, stacked."""
    features: dict[str, list[np.ndarray]] = {}
    stats = policy.config.proprio_stats
    # A checkpoint not trained yet has no statistics: normalise by the probed frames' own.
    normalizer = (ProprioNormalizer.from_dict(stats) if stats else
                  ProprioNormalizer.from_data(np.stack([observation.proprio for _, observation in frames])))
    for instruction, observation in frames:
        for kind, value in _features(policy, normalizer, instruction, observation).items():
            features.setdefault(kind, []).append(value)
    return {kind: np.stack(values) for kind, values in features.items()}


@torch.inference_mode()
def _features(policy: VLAPolicy, normalizer: ProprioNormalizer, instruction: str,
              observation: Observation) -> dict[str, np.ndarray]:
    pixels = policy.preprocess(observation.images)  # (1, cameras, 3, S, S)
    model, config = policy.model, policy.config
    tokens = model.backbone.encode_images(pixels[0])  # (cameras, tokens, H)
    proprio = None
    if config.proprio_dim:
        proprio = torch.from_numpy(normalizer.normalize(observation.proprio)).float()[None]
    ids, mask = encode_instructions(policy.tokenizer, [instruction], config.max_instruction_tokens)
    # policy_head's frame_feature is [LRN] plus the image readout where there is one; other structures: [LRN].
    head_feature = model.frame_feature if hasattr(model, "frame_feature") else model.lrn_feature
    lrn = head_feature(Prompt(ids, mask), model.encode_frame(pixels, proprio))[0]
    out = {f"pixels {name}": pixels[0, i].flatten().numpy() for i, name in enumerate(policy.camera_names)}
    out.update({f"tokens {name}": tokens[i].flatten().numpy() for i, name in enumerate(policy.camera_names)})
    out["head feature"] = lrn.numpy()
    return out


def _ridge(x: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and an unpenalised intercept (the mean target); the dual form when features outnumber samples."""
    offset, mean = x.mean(0), y.mean(0)
    xc, yc = x - offset, y - mean
    if xc.shape[1] > len(xc):
        weights = xc.T @ np.linalg.solve(xc @ xc.T + penalty * np.eye(len(xc)), yc)
    else:
        weights = np.linalg.solve(xc.T @ xc + penalty * np.eye(xc.shape[1]), xc.T @ yc)
    return weights, mean - offset @ weights


def _r2(x: np.ndarray, y: np.ndarray, fit: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    error = x @ fit[0] + fit[1] - y
    return 1.0 - (error ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)


def held_out_r2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """R² (x, y) on the held-out tail of a ridge fitted on the rest, its penalty cross-validated there."""
    split = int(round(len(x) * (1 - HELD_OUT)))
    # Centred and scaled as a whole, not per feature: a pixel the block rarely covers would otherwise get a
    # tiny spread and blow up on the one held-out seed that covers it.
    x = (x - x[:split].mean(0)) / (x[:split].std() + 1e-12)
    folds = np.array_split(np.arange(split), 3)

    def cv_score(penalty: float) -> float:
        scores = []
        for fold in folds:
            fit = np.setdiff1d(np.arange(split), fold)
            scores.append(_r2(x[fold], y[fold], _ridge(x[fit], y[fit], penalty)).mean())
        return float(np.mean(scores))

    penalty = max((factor * x.shape[1] for factor in PENALTIES), key=cv_score)
    return _r2(x[split:], y[split:], _ridge(x[:split], y[:split], penalty))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="checkpoint directory (repeatable)")
    parser.add_argument("--seeds", type=int, default=300, help="seeds 0 .. N-1")
    args = parser.parse_args()
    if args.seeds < 20:
        parser.error(f"--seeds must be >= 20 (a fifth is held out), got {args.seeds}")
    try:
        policies = [VLAPolicy.from_checkpoint(path) for path in args.checkpoint]
    except CheckpointError as err:
        parser.error(str(err))
    frames, targets = first_frames(args.seeds)
    rows = []
    for path, policy in zip(args.checkpoint, policies):
        features = features_of(policy, frames)
        cells = [f"{r[0]:.2f} / {r[1]:.2f}" for r in (held_out_r2(x, targets) for x in features.values())]
        rows.append(f"| {path} | " + " | ".join(cells) + " |")
    print(f"{TASK}: the block's start xy from the first frame, held-out R² (x / y), {args.seeds} seeds\n")
    print("| checkpoint | " + " | ".join(features) + " |")
    print("|---|" + "---:|" * len(features))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
