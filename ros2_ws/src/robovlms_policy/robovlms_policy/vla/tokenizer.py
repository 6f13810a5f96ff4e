"""Instruction tokenizers. Tiny/random checkpoints get a byte-level tokenizer built here (nothing is downloaded),
or a byte-level BPE trained here on a task's instructions (whole words become one token each, so sequences are
4x shorter, and an unseen word still splits into known pieces: "leftwards" -> "left" + bytes); checkpoints from
real weights copy the user's local tokenizer. Either way the checkpoint carries tokenizer.json."""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

TOKENIZER_FILE = "tokenizer.json"
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>", "<image>", "</image>", "<|vision_start|>", "<|vision_end|>")
N_ACTION_TOKENS = 256
# specials + one token per byte + the action bins, which take the LAST ids as the action codec expects.
TINY_VOCAB_SIZE = len(SPECIAL_TOKENS) + 256 + N_ACTION_TOKENS


def build_tiny_tokenizer() -> Tokenizer:
    """Byte-level tokenizer: every UTF-8 byte is one token, "<bos>" is prepended, action tokens fill the tail."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for char in sorted(alphabet):
        vocab[char] = len(vocab)
    for i in range(N_ACTION_TOKENS):
        vocab[f"<act_{i}>"] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS) + [f"<act_{i}>" for i in range(N_ACTION_TOKENS)])
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    return tokenizer


def build_bpe_tokenizer(texts: Iterable[str], merges: int = 200) -> Tokenizer:
    """Byte-level BPE with at most ``merges`` merges learnt from ``texts`` (lower-cased words); the same special
    tokens and "<bos>" prefix as the tiny tokenizer, and the action tokens at the end of the vocabulary."""
    texts = [" ".join(t.lower().split()) for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("a BPE tokenizer needs at least one non-empty instruction to learn from")
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=len(SPECIAL_TOKENS) + len(alphabet) + merges, min_frequency=1,
                                  special_tokens=list(SPECIAL_TOKENS), initial_alphabet=alphabet,
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.add_special_tokens([f"<act_{i}>" for i in range(N_ACTION_TOKENS)])
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    return tokenizer


def copy_pretrained_tokenizer(pretrained_dir: Path, out_dir: Path) -> None:
    """Copy a local fast tokenizer into a checkpoint; fails naming the file when the directory has none."""
    source = Path(pretrained_dir) / TOKENIZER_FILE
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: a fast tokenizer (tokenizer.json) is required")
    shutil.copyfile(source, Path(out_dir) / TOKENIZER_FILE)


def load_tokenizer(directory: Path) -> Tokenizer:
    return Tokenizer.from_file(str(Path(directory) / TOKENIZER_FILE))


def encode_instructions(tokenizer: Tokenizer, texts: list[str], max_tokens: int,
                        device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Instructions -> right-padded ids (B, L) int64 and mask (B, L) bool, each cut to max_tokens (the same
    encoding the policy uses at run time, so training batches should come from here too)."""
    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise ValueError("instructions must be non-empty strings")
    ids = [tokenizer.encode(t.strip()).ids[:max_tokens] for t in texts]
    length = max(len(i) for i in ids)
    padded = torch.zeros(len(ids), length, dtype=torch.long)
    mask = torch.zeros(len(ids), length, dtype=torch.bool)
    for row, token_ids in enumerate(ids):
        padded[row, :len(token_ids)] = torch.tensor(token_ids)
        mask[row, :len(token_ids)] = True
    return padded.to(device), mask.to(device)


def marker_id(tokenizer: Tokenizer, token: str | None) -> int | None:
    """Id of an image marker token, None when the backbone uses none; KeyError if the tokenizer lacks it."""
    if token is None:
        return None
    token_id = tokenizer.token_to_id(token)
    if token_id is None:
        raise KeyError(f"tokenizer has no image marker token {token!r}")
    return token_id
