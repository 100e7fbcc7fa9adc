"""The tokenizer: a sentencepiece BPE model trained on the run's own problems, solutions and plans.

train.py trains one per run (or reuses --tokenizer) and keeps it in the run folder as
tokenizer.model; a pretrained model (train.py --init) brings its own, kept as the folder
tokenizer/ and read by pretrained.py. `run_tokenizer_path` is that rule, `load_tokenizer` reads
either. The task markers are fixed pieces, so each is always one token.
"""
from __future__ import annotations

import io
import os
import random
import re
from pathlib import Path
from typing import Iterable

from problems import DataError, write_atomic

TASK_MARKERS = ("<|code|>", "<|plan|>", "<|given_plan|>")


SPACE_MARK = "\u2581"   # sentencepiece writes spaces as this character, so a literal one needs escaping


class Tokenizer:
    """A sentencepiece BPE model configured for code: no normalisation, whitespace kept
    exactly (runs of spaces are learned as single pieces, so indentation costs one token), digits
    split, byte fallback so that nothing is ever <unk>, and the task markers as fixed pieces."""

    def __init__(self, sp):
        self.sp = sp
        self.vocab_size = sp.get_piece_size()
        self.pad_id, self.eos_id, self.unk_id, self.bos_id = sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id()
        self.skip = {self.pad_id, self.eos_id, self.bos_id}
        # a literal U+2581 is encoded as its three UTF-8 byte pieces, which decode back to U+2581, not to a space
        self.space_mark_ids = [sp.piece_to_id(f"<0x{b:02X}>") for b in SPACE_MARK.encode()]

    @staticmethod
    def train(texts: Iterable[str], path: str, vocab_size: int, max_sentences: int = 200_000, seed: int = 0) -> "Tokenizer":
        import sentencepiece as spm
        # sentencepiece drops sentences over max_sentence_length, so long texts are cut at line ends
        pieces = [chunk for t in texts if t for chunk in split_long(t, 8192)]
        if len(pieces) > max_sentences:   # our own seeded sample: repeatable, unlike sentencepiece's
            pieces = random.Random(seed).sample(pieces, max_sentences)
        if not pieces:
            raise DataError(f"{path}: no text to train the tokenizer on")
        spm.set_random_generator_seed(seed)
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(pieces), model_writer=model, vocab_size=vocab_size, model_type="bpe",
                normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
                byte_fallback=True, split_digits=True, allow_whitespace_only_pieces=True, character_coverage=0.9995,
                pad_id=0, eos_id=1, unk_id=2, bos_id=3, user_defined_symbols=list(TASK_MARKERS),
                hard_vocab_limit=False,  # a small corpus gets the vocabulary it supports instead of an error
                max_sentence_length=1 << 16, input_sentence_size=0, shuffle_input_sentence=False,
                num_threads=os.cpu_count() or 1, minloglevel=2)
        except RuntimeError as e:
            # every kept character, the 256 byte pieces, the special ids and the markers need an id each
            too_small = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", str(e))
            if too_small:
                need = too_small.group(2)
                raise DataError(f"{path}: vocab_size {vocab_size} is too small for this text: it needs at least {need} "
                                "(its characters, byte fallback, special ids, task markers)") from None
            raise DataError(f"{path}: sentencepiece could not train a tokenizer: {e}") from None
        write_atomic(Path(path), model.getvalue())
        return Tokenizer.load(path)

    @staticmethod
    def load(path: str) -> "Tokenizer":
        import sentencepiece as spm
        try:
            return Tokenizer(spm.SentencePieceProcessor(model_file=str(path)))
        except (OSError, RuntimeError) as e:
            raise DataError(f"{path}: not a sentencepiece model ({e})") from None

    def encode(self, text: str) -> list[int]:
        if SPACE_MARK not in text:
            return self.sp.encode(text)
        ids = []
        for k, part in enumerate(text.split(SPACE_MARK)):
            if k:
                ids += self.space_mark_ids
            ids += self.sp.encode(part)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([int(i) for i in ids if int(i) not in self.skip])

    def marker_id(self, name: str) -> int:
        if name not in TASK_MARKERS:
            raise KeyError(f"{name!r} is not a task marker {TASK_MARKERS}")
        return self.sp.piece_to_id(name)


def split_long(text: str, limit: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    chunks, current = [], ""
    for line in text.splitlines(keepends=True):
        if current and len(current) + len(line) > limit:
            chunks.append(current)
            current = ""
        current += line
    return chunks + [current] if current else chunks


def run_tokenizer_path(run_dir: Path, pretrained: bool) -> Path:
    """A run's tokenizer: tokenizer.model (trained on its corpus), or tokenizer/ (an --init folder's files)."""
    return Path(run_dir) / ("tokenizer" if pretrained else "tokenizer.model")


def load_tokenizer(path: str | Path):
    """The sentencepiece model file train.py trains, or a pretrained tokenizer folder (pretrained.py)."""
    path = Path(path)
    if path.is_dir():
        import pretrained   # imports the model; a sentencepiece run never needs it
        return pretrained.load_folder_tokenizer(path)
    return Tokenizer.load(str(path))


def tokenizer_snapshot(path: Path) -> bytes | dict[str, bytes]:
    """The bytes a checkpoint keeps of its tokenizer: the file, or every file of a tokenizer folder."""
    path = Path(path)
    if path.is_dir():
        return {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.is_file()}
    return path.read_bytes()

