"""batching.py: collate pads and masks, batches group similar lengths, the token cache reads back
what the tokenizer gives, the prefetcher returns the asked step."""
import gc
import random
import threading
import time
from pathlib import Path

import pytest
import torch

import batching
import codeplan
import data
from problems import DataError
from tokenizer import Tokenizer


class CountingTokenizer:
    """Characters as ids, with a count of encode calls."""
    eos_id, pad_id = 1, 0

    def __init__(self):
        self.calls = 0

    def encode(self, text: str) -> list[int]:
        self.calls += 1
        return [ord(c) for c in text]


def tokenizer_file(tmp_path: Path, content: bytes = b"model v1") -> Path:
    path = tmp_path / "tokenizer.model"
    path.write_bytes(content)
    return path


def test_collate_pads_and_masks():
    batch = batching.collate([([5, 6, 7], [8, 1]), ([9], [10, 11, 12, 1])], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [9, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]] and batch["attention_mask"].dtype == torch.long
    assert batch["labels"].tolist() == [[8, 1, -100, -100], [10, 11, 12, 1]]


def test_bucket_batches():
    lengths = [(i * 37) % 1000 for i in range(1000)]
    batches = batching.bucket_batches(lengths, 16, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert batches == batching.bucket_batches(lengths, 16, seed=1) != batching.bucket_batches(lengths, 16, seed=2)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 100   # random batches would spread over ~900
    ordered = batching.bucket_batches(lengths, 16, seed=0, shuffle=False)
    flat = [lengths[i] for b in ordered for i in b]
    assert flat == sorted(flat) and len(ordered[-1]) == 1000 % 16


def test_truncate_reports():
    assert batching.truncate([1, 2, 3], 2) == ([1, 2], True) and batching.truncate([1, 2], 2) == ([1, 2], False)


def test_token_cache_gives_the_tokenizers_ids_and_is_read_back_instead_of_encoding(tmp_path):
    texts = ["def f(x):\n    return x", "", "ünïcode ✓", "def f(x):\n    return x", "a" * 3000]
    tokenizer = CountingTokenizer()
    cache = batching.TokenCache(tokenizer, tokenizer_file(tmp_path), texts)
    assert tokenizer.calls == 4  # each distinct text once
    assert all(cache.encode(t) == [ord(c) for c in t] for t in texts)
    assert cache.path.parent == tmp_path and cache.path.name.startswith("tokens-")

    fresh = CountingTokenizer()
    again = batching.TokenCache(fresh, tokenizer_file(tmp_path), list(reversed(texts)))
    assert again.path == cache.path and fresh.calls == 0
    assert all(again.encode(t) == [ord(c) for c in t] for t in texts)
    assert fresh.calls == 0 and again.misses == 0
    assert again.eos_id == 1  # everything else is the tokenizer's


def test_ids_above_two_bytes_are_kept(tmp_path):
    texts = ["grin \U0001F600", "plain"]   # ord 128512 does not fit the 2-byte storage
    batching.TokenCache(CountingTokenizer(), tokenizer_file(tmp_path), texts)
    again = batching.TokenCache(CountingTokenizer(), tokenizer_file(tmp_path), texts)
    assert [again.encode(t) for t in texts] == [[ord(c) for c in t] for t in texts]


def test_token_cache_file_changes_with_the_texts_or_the_tokenizer(tmp_path):
    first = batching.TokenCache(CountingTokenizer(), tokenizer_file(tmp_path), ["x", "y"])
    other_text = batching.TokenCache(CountingTokenizer(), tokenizer_file(tmp_path), ["x", "y "])
    other_model = batching.TokenCache(CountingTokenizer(), tokenizer_file(tmp_path, b"model v2"), ["x", "y"])
    assert len({first.path, other_text.path, other_model.path}) == 3


def test_unknown_text_is_encoded_once_and_counted(tmp_path):
    tokenizer = CountingTokenizer()
    cache = batching.TokenCache(tokenizer, tokenizer_file(tmp_path), ["known"])
    calls = tokenizer.calls
    assert cache.encode("new") == cache.encode("new") == [ord(c) for c in "new"]
    assert tokenizer.calls == calls + 1 and cache.misses == 1


def test_a_damaged_cache_file_is_named_in_the_error(tmp_path):
    cache = batching.TokenCache(CountingTokenizer(), tokenizer_file(tmp_path), ["a", "b"])
    other = batching.TokenCache(CountingTokenizer(), tokenizer_file(tmp_path), ["c"])
    cache.path.write_bytes(other.path.read_bytes())  # a file of the right name holding other texts
    with pytest.raises(DataError, match=cache.path.name):
        batching.TokenCache(CountingTokenizer(), tokenizer_file(tmp_path), ["a", "b"])


def test_encode_batch_through_the_cache_equals_the_tokenizer_and_misses_nothing(spec, tmp_path):
    problems = data.load_problems(spec, "train")[:40]
    plans = {p.id: [p.reference_plan, p.reference_plan.upper()] for p in problems}
    examples = codeplan.make_examples(problems, plans, "shortest")
    path = tmp_path / "tok.model"
    tokenizer = Tokenizer.train(codeplan.training_texts(examples), str(path), 400)
    cache = batching.TokenCache(tokenizer, path, codeplan.training_texts(examples))
    for step in range(5):
        chunk = examples[step * 8:(step + 1) * 8]
        through_cache = codeplan.encode_batch(chunk, cache, 0.5, 0.5, random.Random(step), 64, 32, {})
        direct = codeplan.encode_batch(chunk, tokenizer, 0.5, 0.5, random.Random(step), 64, 32, {})
        assert through_cache == direct and through_cache["code"] and through_cache["plan"]
    assert cache.misses == 0  # training_texts lists every text that encode_batch asks for


def make_step(step: int):
    """Two micro-batches whose ids spell the step, and no plan task on odd steps."""
    micro = [{"code": [([step, 2, 3][:1 + (step + i) % 3], [step + 5, 1])],
              "plan": [] if step % 2 else [([7], [step, 1]), ([8, 9], [1])]} for i in range(2)]
    return micro, {"step": step}


def expected(step: int):
    micro, info = make_step(step)
    return [(pairs, {task: batching.collate(p, 0) if p else None for task, p in pairs.items()}) for pairs in micro], info


def assert_same(got, want):
    (got_micro, got_info), (want_micro, want_info) = got, want
    assert got_info == want_info and len(got_micro) == len(want_micro)
    for (pairs, tensors), (want_pairs, want_tensors) in zip(got_micro, want_micro):
        assert pairs == want_pairs and tensors.keys() == want_tensors.keys()
        for task, t in tensors.items():
            if want_tensors[task] is None:
                assert t is None
            else:
                assert all(torch.equal(t[k], want_tensors[task][k]) for k in t)


def test_prefetcher_returns_the_asked_step_in_order_after_a_jump_and_on_a_retry():
    with batching.Prefetcher(make_step, pad_id=0, device="cpu", depth=3) as prefetcher:
        for step in [4, 5, 6, 10, 11, 11, 3, 4]:
            assert_same(prefetcher.get(step), expected(step))


def test_prefetcher_builds_ahead_in_another_thread():
    seen = []

    def slow_step(step: int):
        seen.append((step, threading.current_thread().name))
        return make_step(step)

    with batching.Prefetcher(slow_step, pad_id=0, device="cpu", depth=2) as prefetcher:
        prefetcher.get(0)
        deadline = time.time() + 60
        while len(seen) < 3 and time.time() < deadline:  # steps 1 and 2 are built before they are asked for
            time.sleep(0.01)
        assert [s for s, _ in seen[:3]] == [0, 1, 2]
        assert {name for _, name in seen} == {"batch-prefetcher"}


def test_prefetcher_raises_the_threads_error_and_its_thread_ends():
    def failing(step: int):
        if step == 2:
            raise DataError("example 7: bad text")
        return make_step(step)

    prefetcher = batching.Prefetcher(failing, pad_id=0, device="cpu")
    assert_same(prefetcher.get(0), expected(0))
    assert_same(prefetcher.get(1), expected(1))
    with pytest.raises(DataError, match="example 7"):
        prefetcher.get(2)
    assert prefetcher.thread is None


def test_prefetcher_thread_ends_on_close_and_when_dropped():
    prefetcher = batching.Prefetcher(make_step, pad_id=0, device="cpu")
    prefetcher.get(0)
    thread = prefetcher.thread
    prefetcher.close()
    assert not thread.is_alive()

    prefetcher = batching.Prefetcher(make_step, pad_id=0, device="cpu")
    prefetcher.get(0)
    thread = prefetcher.thread
    del prefetcher
    gc.collect()
    thread.join(timeout=60)
    assert not thread.is_alive()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory and CUDA copies need a CUDA device")
def test_prefetcher_on_cuda_hands_out_device_tensors():
    with batching.Prefetcher(make_step, pad_id=0, device="cuda") as prefetcher:
        micro, _ = prefetcher.get(0)
        want, _ = expected(0)
        for (_, tensors), (_, want_tensors) in zip(micro, want):
            for task, t in tensors.items():
                assert all(v.is_cuda and torch.equal(v.cpu(), want_tensors[task][k]) for k, v in t.items())
