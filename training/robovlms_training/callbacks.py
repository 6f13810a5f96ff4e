"""Lightning callbacks of a training run: policy checkpoints in the suite's format, and the check that every
distributed replica ends with the same weights."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import lightning as L
import torch

from robovlms_policy.vla.checkpoint import save_checkpoint

CHECKPOINT_DIR = "checkpoints"
REPLICAS_FILE = "replicas.json"


class CheckpointWriter(L.Callback):
    """Writes the model in the checkpoint format (config.json, safetensors, tokenizer, plus ``attachments``, e.g.
    the resolved recipe): every ``every`` steps and whenever val/loss improves, written by global rank 0."""

    def __init__(self, out: Path, config, tokenizer, every: int, attachments: dict[str, str] | None = None) -> None:
        self.out, self.config, self.tokenizer, self.every = out, config, tokenizer, every
        self.attachments = dict(attachments or {})
        self.best = math.inf
        self.best_step = -1
        self._last_saved = -1

    def save(self, model, directory: Path) -> None:
        was_training = model.training
        save_checkpoint(model.eval(), self.config, self.tokenizer, directory)
        for name, text in self.attachments.items():
            (directory / name).write_text(text)
        model.train(was_training)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        # With gradient accumulation several batches end at one step: save once, after a real step.
        if self.every > 0 and step > 0 and step % self.every == 0 and step != self._last_saved:
            self._last_saved = step
            self._save_whole(trainer, module, self.out / CHECKPOINT_DIR / f"step_{step:06d}")

    def on_validation_end(self, trainer, module) -> None:
        loss = trainer.callback_metrics.get("val/loss")  # synchronised across ranks: they agree on "improved"
        if loss is not None and float(loss) < self.best and not trainer.sanity_checking:
            self.best, self.best_step = float(loss), trainer.global_step
            self._save_whole(trainer, module, self.out / CHECKPOINT_DIR / "best")

    def _save_whole(self, trainer, module, directory: Path) -> None:
        model = whole_model(trainer, module, self.config)  # every rank: sharded strategies gather
        if model is not None:
            self.save(model, directory)

    def on_save_checkpoint(self, trainer, module, checkpoint: dict) -> None:
        checkpoint["robovlms_attachments"] = dict(self.attachments)  # the resolved recipe travels with it too

    # Kept in Lightning's resume checkpoint, so a resumed run still knows its best validation loss.
    def state_dict(self) -> dict:
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_step = state["best"], state["best_step"]


def whole_model(trainer, module, config) -> torch.nn.Module | None:
    """The trained model with every weight in place on global rank 0 (None on the others). Sharded strategies
    gather their shards first, which every rank must take part in: FSDP through Lightning's full state dict,
    DeepSpeed ZeRO-3 through its GatheredParameters."""
    from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy

    from robovlms_policy.vla.checkpoint import build_model

    strategy = trainer.strategy
    if isinstance(strategy, DeepSpeedStrategy) and strategy.zero_stage_3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(module.model.parameters()), modifier_rank=None):
            state = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}
    elif isinstance(strategy, FSDPStrategy):
        state = {k.removeprefix("model."): v.cpu() for k, v in strategy.lightning_module_state_dict().items()}
    else:
        return module.model if trainer.is_global_zero else None
    if not trainer.is_global_zero:
        return None
    model = build_model(config)
    model.load_state_dict(state)
    return model


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer, in name order: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class ReplicaCheck(L.Callback):
    """At the end of a DDP run every rank's weight digest is gathered and written to OUT/replicas.json;
    replicas that diverged (a broken gradient all-reduce) fail the run."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_end(self, trainer, module) -> None:
        from lightning.pytorch.strategies import DDPStrategy

        # Only plain DDP replicates the weights; FSDP and DeepSpeed hold shards, which differ by design.
        if trainer.world_size < 2 or type(trainer.strategy) is not DDPStrategy:
            return
        digests: list[str | None] = [None] * trainer.world_size
        torch.distributed.all_gather_object(digests, weights_digest(module.model))
        if trainer.is_global_zero:
            record = {"world_size": trainer.world_size, "strategy": type(trainer.strategy).__name__,
                      "digests": digests, "identical": len(set(digests)) == 1}
            (self.out / REPLICAS_FILE).write_text(json.dumps(record, indent=2) + "\n")
        if len(set(digests)) != 1:
            raise RuntimeError(f"distributed replicas ended with different weights: {digests}")
