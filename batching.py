"""Batches: token ids cut, grouped by length and padded into tensors, and the training input pipeline.

`truncate`, `bucket_batches` and `collate` are the plain steps every batch goes through (train.py,
codeplan.encode_batch). The pipeline around them, every text tokenised once per run and batches
built off the main thread, is the rest of this file.

Two costs would otherwise sit in train.py's main thread between two model steps: sentencepiece
encoding of every example at every step, and collating Python lists into tensors. On a GPU the small
preset's step is short enough for these to starve it. Here:

- `TokenCache` encodes, once and up front, every text the training examples can put into a batch
  (codeplan.training_texts), and keeps the ids in a file next to the tokenizer, named by a hash of
  the texts and the tokenizer file: a resumed run, or any run with the same data and tokenizer,
  reads them back. It offers the tokenizer's `encode`, so codeplan.encode_batch formats and
  truncates exactly as before.
- `Prefetcher` builds the batches of the coming steps in a background thread (token ids -> padded
  tensors, pinned on CUDA) while the main thread trains; the main thread only starts the
  asynchronous copies to the device. A step's batch is a pure function of the step number, so the
  thread produces what the main thread would have, and a resumed run gets the same batches.
"""
from __future__ import annotations

import hashlib
import io
import queue
import random
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from problems import DataError, write_atomic

# ----------------------------------------------------------------------------- cut, group, pad


def truncate(ids: list[int], max_len: int) -> tuple[list[int], bool]:
    """(ids cut to max_len, whether anything was cut). Callers count the flags and report them."""
    return ids[:max_len], len(ids) > max_len


def collate(pairs: list[tuple[list[int], list[int]]], pad_id: int) -> dict:
    """(source, target) id lists -> padded tensors; label padding is -100 so the loss ignores it."""
    batch, source_len, target_len = len(pairs), max(len(s) for s, _ in pairs), max(len(t) for _, t in pairs)
    input_ids = torch.full((batch, source_len), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, source_len), dtype=torch.long)
    labels = torch.full((batch, target_len), -100, dtype=torch.long)
    for b, (source, target) in enumerate(pairs):
        input_ids[b, :len(source)] = torch.tensor(source, dtype=torch.long)
        attention_mask[b, :len(source)] = 1
        labels[b, :len(target)] = torch.tensor(target, dtype=torch.long)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def bucket_batches(lengths: list[int], batch_size: int, seed: int, shuffle: bool = True) -> list[list[int]]:
    """Index batches of similar length. Shuffled: indices are shuffled, sorted by length inside
    windows of 50 batches (similar lengths, yet a different mix every seed), cut into batches, and
    the batch order shuffled. Not shuffled: sorted by length, in order. Every index appears once."""
    order = list(range(len(lengths)))
    if not shuffle:
        order.sort(key=lambda i: lengths[i])
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng = random.Random(seed)
    rng.shuffle(order)
    window = batch_size * 50
    order = [i for w in range(0, len(order), window) for i in sorted(order[w:w + window], key=lambda i: lengths[i])]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches

# ----------------------------------------------------------------------------- the pipeline


class TokenCache:
    """A tokenizer whose `encode` looks the ids up instead of running sentencepiece again.

    The ids of all `texts` live in one flat array (uint16 when the ids fit, with row offsets) in
    `<tokenizer folder>/tokens-<hash>.npz`; the hash covers the tokenizer file and every text, so a
    changed tokenizer or changed data never reads stale ids. A text outside the cache (a format
    this cache was not told about) is encoded on first use, kept, and counted in `misses`.
    Everything else (eos_id, pad_id, decode, ...) is the wrapped tokenizer's.
    """

    def __init__(self, tokenizer, tokenizer_path: Path, texts: list[str]):
        self.tokenizer, self.misses, self.extra = tokenizer, 0, {}
        texts = sorted(set(texts))
        self.row = {text: i for i, text in enumerate(texts)}
        tokenizer_path = Path(tokenizer_path)
        # a sentencepiece model file, or a pretrained model's tokenizer folder (train.py --init)
        files = sorted(tokenizer_path.iterdir()) if tokenizer_path.is_dir() else [tokenizer_path]
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.name.encode() + b"\0" + file.read_bytes())
        for text in texts:
            digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
        self.path = tokenizer_path.parent / f"tokens-{digest.hexdigest()[:16]}.npz"
        if self.path.exists():
            with np.load(self.path, allow_pickle=False) as stored:
                self.ids, self.offsets = stored["ids"], stored["offsets"]
            if len(self.offsets) != len(texts) + 1:
                raise DataError(f"{self.path}: holds {len(self.offsets) - 1} texts, expected {len(texts)}; "
                                f"delete it to tokenise again")
        else:
            self.ids, self.offsets = self._encode_all(texts)
            payload = io.BytesIO()
            np.savez(payload, ids=self.ids, offsets=self.offsets)
            write_atomic(self.path, payload.getvalue())

    def _encode_all(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        start = last = time.time()
        encoded = []
        print(f"tokenising {len(texts)} texts once (kept in {self.path})", file=sys.stderr, flush=True)
        for i, text in enumerate(texts):
            encoded.append(self.tokenizer.encode(text))
            if time.time() - last > 5 or i + 1 == len(texts):
                last, rate = time.time(), (i + 1) / max(time.time() - start, 1e-9)
                print(f"tokenised {i + 1}/{len(texts)} texts | {rate:.0f} texts/s | "
                      f"ETA {(len(texts) - i - 1) / rate:.0f}s", file=sys.stderr, flush=True)
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(ids) for ids in encoded])
        flat = np.fromiter((t for ids in encoded for t in ids), dtype=np.int64, count=int(offsets[-1]))
        # 2 bytes a token for vocabularies under 65536 (sentencepiece here, CodeT5's 32100): half the file
        return flat.astype(np.uint16 if flat.size == 0 or flat.max() < 2 ** 16 else np.int32), offsets

    def encode(self, text: str) -> list[int]:
        row = self.row.get(text)
        if row is not None:
            return self.ids[self.offsets[row]:self.offsets[row + 1]].tolist()
        if text not in self.extra:
            self.misses += 1
            self.extra[text] = self.tokenizer.encode(text)
        return list(self.extra[text])

    def __getattr__(self, name: str):
        return getattr(self.tokenizer, name)


def to_device(tensors: dict | None, device: torch.device) -> dict | None:
    """Copies that overlap with compute when the source is pinned (CUDA); a no-op on CPU."""
    if tensors is None:
        return None
    return {k: v.to(device, non_blocking=True) for k, v in tensors.items()}


class Prefetcher:
    """The batches of step, step + 1, ... built by `make_step` in a background thread, `depth` ahead.

    make_step(step) -> (micro-batches, info): each micro-batch a dict task -> (source, target) id
    pairs (the output of codeplan.encode_batch), info anything the caller wants back with them.
    `get(step)` returns, for each micro-batch, its pairs and its collated tensors on `device`, and
    the info. Asking for another step than the next one (a retried or skipped step) restarts the
    thread there, so the result is always make_step(step). An exception in the thread is raised
    by `get`. The thread ends with `close`, or when the Prefetcher is garbage-collected.
    """

    def __init__(self, make_step: Callable[[int], tuple[list[dict], object]], pad_id: int, device, depth: int = 2):
        self.make_step, self.pad_id, self.device, self.depth = make_step, pad_id, torch.device(device), depth
        self.thread, self.next_step = None, None

    def _start(self, step: int) -> None:
        self.close()
        self.queue, self.stop = queue.Queue(maxsize=self.depth), threading.Event()
        # the thread holds no reference to self, so that dropping the Prefetcher stops it
        self.finalizer = weakref.finalize(self, self.stop.set)
        pin_device = None
        if self.device.type == "cuda":
            pin_device = self.device if self.device.index is not None else torch.device("cuda", torch.cuda.current_device())
        self.thread = threading.Thread(target=produce, daemon=True, name="batch-prefetcher",
                                       args=(self.make_step, self.pad_id, pin_device, step, self.queue, self.stop))
        self.thread.start()
        self.next_step = step

    def get(self, step: int) -> tuple[list[tuple[dict, dict]], object]:
        if self.thread is None or step != self.next_step:
            self._start(step)
        item = self.queue.get()
        if isinstance(item, BaseException):
            self.close()
            raise item
        self.next_step = step + 1
        micro, info = item
        return [(pairs, {task: to_device(t, self.device) for task, t in tensors.items()}) for pairs, tensors in micro], info

    def close(self) -> None:
        if self.thread is not None:
            self.stop.set()
            self.thread.join()
            self.thread = None

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def produce(make_step, pad_id: int, pin_device: torch.device | None, step: int, out: queue.Queue,
            stop: threading.Event) -> None:
    """The prefetcher's thread: collate the batches of step, step + 1, ... into `out`, pinned for
    copies to pin_device when it is given."""
    if pin_device is not None:
        torch.cuda.set_device(pin_device)  # a new thread starts on cuda:0: another rank's card would get a context
    while not stop.is_set():
        try:
            micro, info = make_step(step)
            item = []
            for pairs in micro:
                tensors = {task: collate(p, pad_id) if p else None for task, p in pairs.items()}
                if pin_device is not None:
                    tensors = {task: t and {k: v.pin_memory() for k, v in t.items()} for task, t in tensors.items()}
                item.append((pairs, tensors))
            item = (item, info)
        except BaseException as error:  # handed to the main thread, which raises it
            item = error
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                break
            except queue.Full:
                continue
        if isinstance(item, BaseException):
            return
        step += 1
