"""Pretrained starting points: a Hugging Face T5 / CodeT5 / CodeT5+ folder on disk, with its own tokenizer.

    python train.py --init path/to/codet5-large-ntp-py --data apps:PATH --plans plans/apps-train-backward.jsonl

A folder holds config.json, model.safetensors or pytorch_model.bin (read by model.from_pretrained_t5)
and a tokenizer in one of two kinds, read here without `transformers`:
- sentencepiece (`spiece.model`: T5, Flan-T5) with T5's conventions: pad 0, eos 1, unk 2, and
  `extra_ids` sentinels <extra_id_0> .. <extra_id_99> appended after the model's pieces, in reverse;
- byte-level BPE (`tokenizer.json` with a BPE model, or `vocab.json` + `merges.txt`: CodeT5, CodeT5+,
  which are RoBERTa-style), GPT-2's pre-tokenisation and byte-to-character map.
Both give the ids that `transformers` gives for the same folder (tests/test_pretrained.py checks it on
tokenizers it builds itself). The task markers of codeplan.py are appended as new tokens after the
folder's vocabulary, so no pretrained id moves; the model's embedding and both heads grow to match.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import sys
import unicodedata
import zipfile
from functools import cache
from pathlib import Path

import model as model_lib
from problems import DataError
from tokenizer import TASK_MARKERS

TOKENIZER_FILES = ("spiece.model", "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json")


class TokenizerError(DataError):
    """A tokenizer folder that cannot be read; the message names the file."""


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TokenizerError(f"{path}: not readable as JSON ({e})") from None


def _token_text(value) -> str | None:
    """A special token in tokenizer_config.json / special_tokens_map.json: a string or {"content": ...}."""
    return value.get("content") if isinstance(value, dict) else value


class AddedTokens:
    """Tokens matched as a whole in the text before anything else runs, as `transformers` does:
    special tokens (pad, eos, <extra_id_N>, ...), added tokens, and the task markers. lstrip/rstrip
    tokens swallow the whitespace next to them."""

    def __init__(self, tokens: dict[str, int], strip: dict[str, tuple[bool, bool]]):
        self.ids = dict(tokens)
        self.strip = strip
        # longest first, so that a token that contains another wins
        alternatives = sorted(self.ids, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(t) for t in alternatives)) if alternatives else None

    def split(self, text: str) -> list[tuple[str, int | None]]:
        """(segment, None) for plain text, (token, id) for an added token, in order."""
        if self.pattern is None:
            return [(text, None)] if text else []
        out, start = [], 0
        for match in self.pattern.finditer(text):
            before = text[start:match.start()]
            lstrip, rstrip = self.strip.get(match.group(), (False, False))
            if lstrip:
                before = before.rstrip()
            if before:
                out.append((before, None))
            out.append((match.group(), self.ids[match.group()]))
            start = match.end()
            if rstrip:
                while start < len(text) and text[start].isspace():
                    start += 1
        if text[start:]:
            out.append((text[start:], None))
        return out


class FolderTokenizer:
    """What every tokenizer here offers the rest of the code: encode/decode, vocab_size, pad_id, eos_id."""
    vocab_size: int
    pad_id: int
    eos_id: int
    added: AddedTokens
    skip: set[int]          # ids that decode() leaves out: special tokens other than the task markers

    def add_markers(self, markers: tuple[str, ...]) -> None:
        """The task markers as new ids after the whole vocabulary (no pretrained id moves); a marker
        the folder already has keeps its id."""
        for marker in markers:
            if marker not in self.added.ids:
                self.added.ids[marker] = self.vocab_size
                self.vocab_size += 1
        self.added = AddedTokens(self.added.ids, self.added.strip)
        self.markers = {m: self.added.ids[m] for m in markers}

    def marker_id(self, name: str) -> int:
        return self.markers[name]

    def encode(self, text: str) -> list[int]:
        ids = []
        for segment, token_id in self.added.split(text):
            ids += [token_id] if token_id is not None else self.encode_plain(segment)
        return ids

    def encode_plain(self, text: str) -> list[int]:
        raise NotImplementedError


# ----------------------------------------------------------------------------- sentencepiece (T5)

class SentencePieceTokenizer(FolderTokenizer):
    """T5's tokenizer: the sentencepiece model, then `extra_ids` sentinels. Like T5Tokenizer, text is
    split on special tokens and each piece between them encoded on its own. T5's normaliser turns tabs
    and newlines into spaces and collapses runs of spaces, so code does not round-trip: that is the
    reason CodeT5 uses byte-level BPE."""

    def __init__(self, folder: Path, config: dict):
        import sentencepiece as spm
        path = folder / "spiece.model"
        try:
            self.sp = spm.SentencePieceProcessor(model_file=str(path))
        except (OSError, RuntimeError) as e:
            raise TokenizerError(f"{path}: not a sentencepiece model ({e})") from None
        size = self.sp.get_piece_size()
        extra = config.get("extra_ids", 100)
        specials = {self.sp.id_to_piece(i): i for i in range(size) if self.sp.is_control(i) or self.sp.is_unknown(i)}
        specials.update({f"<extra_id_{k}>": size + extra - 1 - k for k in range(extra)})
        self.added = AddedTokens(specials, {})
        self.vocab_size = size + extra
        self.pad_id, self.eos_id = self.sp.pad_id(), self.sp.eos_id()
        self.skip = {i for i in specials.values() if i < size}

    def encode_plain(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def decode(self, ids) -> str:
        words, pieces = [], []
        names = {i: t for t, i in self.added.ids.items()}
        for i in (int(i) for i in ids):
            if i in self.skip:
                continue
            if i < self.sp.get_piece_size():
                pieces.append(i)
                continue
            words.append(self.sp.decode(pieces))
            words.append(names.get(i, ""))
            pieces = []
        return "".join(words + [self.sp.decode(pieces)])


# ----------------------------------------------------------------------------- byte-level BPE (CodeT5, CodeT5+)

def byte_to_char() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters, so that BPE works on
    strings: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards, in order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    moved = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + k) for k, b in enumerate(moved)}}


# Unicode White_Space: the \s of the regex engines that `tokenizers` uses. Python's \s also matches
# U+001C..U+001F, which are not white space to Unicode, so the class is spelled out.
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


@cache
def _category_class(prefix: str) -> str:
    """A character-class body with every code point whose Unicode category starts with `prefix`
    (L: letters, N: numbers), as ranges: the \\p{L} and \\p{N} that the stdlib `re` lacks."""
    ranges, start, previous = [], None, None
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)).startswith(prefix):
            if start is None:
                start = code
            previous = code
        elif start is not None:
            ranges.append((start, previous))
            start = None
    if start is not None:
        ranges.append((start, previous))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


@cache
def gpt2_pattern() -> re.Pattern:
    """GPT-2's pre-tokenisation, `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`,
    in stdlib `re` with the Unicode classes spelled out (Python's own Unicode tables)."""
    letters, numbers, space = _category_class("L"), _category_class("N"), WHITESPACE
    return re.compile(rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{letters}]+| ?[{numbers}]+| ?[^{space}{letters}{numbers}]+"
                      rf"|[{space}]+(?![^{space}])|[{space}]+")


class ByteLevelBPETokenizer(FolderTokenizer):
    """GPT-2 / RoBERTa byte-level BPE: pre-tokenise, map bytes to characters, merge pairs by rank."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], added: dict[str, int],
                 strip: dict[str, tuple[bool, bool]], special: set[str], pad: str, eos: str,
                 add_prefix_space: bool = False, ignore_merges: bool = False, where: str = ""):
        self.vocab, self.ranks = vocab, {pair: rank for rank, pair in enumerate(merges)}
        self.tokens = {i: t for t, i in vocab.items()}
        self.added = AddedTokens({**{t: vocab[t] for t in special if t in vocab}, **added}, strip)
        self.vocab_size = max([*vocab.values(), *self.added.ids.values()]) + 1
        missing = [name for name in (pad, eos) if name not in self.added.ids]
        if missing:
            raise TokenizerError(f"{where}: special token(s) {missing} not in the vocabulary")
        self.pad_id, self.eos_id = self.added.ids[pad], self.added.ids[eos]
        self.skip = {self.added.ids[t] for t in special if t in self.added.ids}
        self.add_prefix_space, self.ignore_merges = add_prefix_space, ignore_merges
        self.to_char = byte_to_char()
        self.to_byte = {c: b for b, c in self.to_char.items()}
        self.unk_id = self.added.ids.get("<unk>")
        self.cache: dict[str, list[int]] = {}

    def bpe(self, word: str) -> list[int]:
        if word in self.cache:
            return self.cache[word]
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        parts = list(word)
        while len(parts) > 1:
            best = min(zip(parts, parts[1:]), key=lambda pair: self.ranks.get(pair, math.inf))
            if best not in self.ranks:
                break
            merged, k = [], 0
            while k < len(parts):
                if k + 1 < len(parts) and (parts[k], parts[k + 1]) == best:
                    merged.append(parts[k] + parts[k + 1])
                    k += 2
                else:
                    merged.append(parts[k])
                    k += 1
            parts = merged
        ids = [self.vocab[p] if p in self.vocab else self.unk_id for p in parts]
        if None in ids:
            raise TokenizerError(f"byte-level BPE: {word!r} has a piece outside the vocabulary and there is no <unk>")
        self.cache[word] = ids
        return ids

    def encode_plain(self, text: str) -> list[int]:
        if self.add_prefix_space and not text.startswith(" "):
            text = " " + text
        ids = []
        for word in gpt2_pattern().findall(text):
            ids += self.bpe("".join(self.to_char[b] for b in word.encode("utf-8")))
        return ids

    def decode(self, ids) -> str:
        names = {i: t for t, i in self.added.ids.items()}
        out, pending = [], bytearray()
        for i in (int(i) for i in ids):
            if i in self.skip:
                continue
            if i in names:
                out.append(pending.decode("utf-8", errors="replace"))
                out.append(names[i])
                pending = bytearray()
            elif i in self.tokens:
                pending += bytes(self.to_byte[c] for c in self.tokens[i])
        out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)


def _special_tokens(config: dict) -> set[str]:
    names = [_token_text(config.get(f"{k}_token")) for k in ("bos", "eos", "unk", "sep", "pad", "cls", "mask")]
    extra = config.get("additional_special_tokens") or config.get("extra_special_tokens") or []
    if isinstance(extra, dict):   # transformers 5 may name them: {"name": token}
        extra = list(extra.values())
    names += [_token_text(t) for t in extra]
    return {n for n in names if n}


def load_bpe(folder: Path, config: dict) -> ByteLevelBPETokenizer:
    """From tokenizer.json (a BPE model) or from vocab.json + merges.txt (+ added_tokens.json)."""
    special = _special_tokens(config) or {"<s>", "</s>", "<unk>", "<pad>", "<mask>"}
    strip, added = {}, {}
    for token_id, info in (config.get("added_tokens_decoder") or {}).items():
        added[info["content"]] = int(token_id)
        strip[info["content"]] = (info.get("lstrip", False), info.get("rstrip", False))
        if info.get("special"):
            special.add(info["content"])
    add_prefix_space, ignore_merges = config.get("add_prefix_space", False), False
    if (folder / "tokenizer.json").exists():
        path = folder / "tokenizer.json"
        full = _json(path)
        bpe = full.get("model") or {}
        pre = full.get("pre_tokenizer") or {}
        if bpe.get("type") != "BPE" or pre.get("type") != "ByteLevel":
            raise TokenizerError(f"{path}: expected a byte-level BPE tokenizer (model BPE, pre_tokenizer ByteLevel), "
                                 f"got model {bpe.get('type')!r}, pre_tokenizer {pre.get('type')!r}")
        vocab = bpe["vocab"]
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in bpe["merges"]]
        add_prefix_space, ignore_merges = pre.get("add_prefix_space", False), bpe.get("ignore_merges", False)
        for info in full.get("added_tokens") or []:
            added[info["content"]] = info["id"]
            strip[info["content"]] = (info.get("lstrip", False), info.get("rstrip", False))
            if info.get("special"):
                special.add(info["content"])
    else:
        path = folder / "vocab.json"
        vocab = _json(path)
        lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
        merges = [tuple(line.split(" ", 1)) for line in lines if line and not line.startswith("#version")]
        if (folder / "added_tokens.json").exists():
            added.update(_json(folder / "added_tokens.json"))
    pad = _token_text(config.get("pad_token")) or "<pad>"
    eos = _token_text(config.get("eos_token")) or "</s>"
    return ByteLevelBPETokenizer(vocab, merges, added, strip, special, pad, eos, add_prefix_space, ignore_merges, str(path))


def load_folder_tokenizer(path: str | Path) -> FolderTokenizer:
    """A tokenizer folder (sentencepiece or byte-level BPE) with the task markers appended."""
    path = Path(path)
    config = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):   # the second one wins, as in transformers
        if (path / name).exists():
            config.update(_json(path / name))
    full = _json(path / "tokenizer.json") if (path / "tokenizer.json").exists() else {}
    if (full.get("model") or {}).get("type") == "BPE" or (path / "vocab.json").exists() and (path / "merges.txt").exists():
        tokenizer = load_bpe(path, config)
    elif (path / "spiece.model").exists():
        tokenizer = SentencePieceTokenizer(path, config)
    else:
        raise TokenizerError(f"{path}: no tokenizer found (expected spiece.model, a BPE tokenizer.json, or "
                             f"vocab.json + merges.txt)")
    tokenizer.add_markers(TASK_MARKERS)
    return tokenizer


def copy_tokenizer(folder: str | Path, dest: Path) -> None:
    """The tokenizer files of a pretrained folder, copied into a run folder (dest), so the run is
    complete without the folder."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (Path(folder) / name).exists():
            shutil.copyfile(Path(folder) / name, dest / name)


# ----------------------------------------------------------------------------- the model

def check_folder(folder: str | Path) -> None:
    """An --init folder, checked before any data is loaded: it exists, config.json is JSON with the keys
    of a T5 config, the weights file is readable (a safetensors header that covers the file, or a torch
    zip archive) and a tokenizer is there. Each error names the folder."""
    folder = Path(folder)
    where = f"--init {folder}"
    if not folder.is_dir():
        raise DataError(f"{where}: no such folder (expected a Hugging Face T5/CodeT5 folder)")
    if not (folder / "config.json").is_file():
        raise DataError(f"{where}: no config.json (expected a Hugging Face T5/CodeT5 folder)")
    try:
        model_lib.ModelConfig.from_hf_config(_json(folder / "config.json"))
    except TokenizerError as e:
        raise DataError(f"{where}: {e}") from None
    except KeyError as e:
        raise DataError(f"{where}: config.json has no {e.args[0]!r} (not a T5 config)") from None
    except (model_lib.CheckpointError, AttributeError, TypeError) as e:
        raise DataError(f"{where}: config.json: {e}") from None
    weights = [folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file()]
    if not weights:
        raise DataError(f"{where}: no model.safetensors or pytorch_model.bin")
    if not weights_readable(weights[0]):
        kind = "safetensors" if weights[0].suffix == ".safetensors" else "torch.save"
        raise DataError(f"{where}: {weights[0].name}: not a complete {kind} file (torn or foreign)")
    try:
        load_folder_tokenizer(folder)
    except TokenizerError as e:
        raise DataError(f"{where}: {e}") from None


def weights_readable(path: Path) -> bool:
    """Without reading the tensors: a safetensors file's header parses and its tensors end where the file
    does; a .bin file is a zip archive (torch.save's format)."""
    if path.suffix != ".safetensors":
        return zipfile.is_zipfile(path)
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if not 0 < size <= path.stat().st_size - 8:
            return False
        try:
            header = json.loads(f.read(size))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return False
    return 8 + size + end == path.stat().st_size


def init_model(folder: str | Path, tokenizer: FolderTokenizer, dropout: float, quiet: bool = False) -> model_lib.CodePlanModel:
    """The pretrained model of `folder`, its embedding and both heads resized to the tokenizer (new rows
    for the task markers; T5's unused padding rows beyond the tokenizer dropped)."""
    net = model_lib.from_pretrained_t5(str(folder), quiet=quiet, dropout=dropout)
    c = net.config
    start = _json(Path(folder) / "config.json").get("decoder_start_token_id", c.pad_id)
    if start != c.pad_id:   # the model here starts decoding from pad, as T5 does
        raise model_lib.CheckpointError(f"{folder}/config.json: decoder_start_token_id {start} is not the pad id {c.pad_id}")
    if (c.pad_id, c.eos_id) != (tokenizer.pad_id, tokenizer.eos_id):
        raise model_lib.CheckpointError(f"{folder}: config.json has pad {c.pad_id} / eos {c.eos_id}, its tokenizer "
                                        f"pad {tokenizer.pad_id} / eos {tokenizer.eos_id}")
    net.resize_vocab(tokenizer.vocab_size)
    return net
