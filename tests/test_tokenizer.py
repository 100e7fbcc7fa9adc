"""tokenizer.py: special ids and task markers, exact round trips (also of every real benchmark
text when ../shared/data exists), cheap whitespace, and a clear error for a too small vocabulary."""
import argparse
import inspect
import json
import json.decoder
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
from problems import DataError, read_text  # noqa: E402
from tokenizer import TASK_MARKERS, Tokenizer  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"

TRICKY = ["", "x", "\u2581", "a\u2581b \u2581\u2581 c", "def f():\r\n\treturn 1\r\n", "  \t  \n\n\n   ",
          "héllo wörld 日本語 🎉 \x00\x7f", "x = 12345678901234567890\n", "<|code|>def <|plan|>1. go", " lead and trail "]
STDLIB = [inspect.getsource(m) for m in (json.decoder, textwrap, argparse)]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    corpus = STDLIB + ["Write a function to add numbers.", "def add(a, b):\n    return a + b\n"] * 50
    path = tmp_path_factory.mktemp("tok") / "tokenizer.model"
    Tokenizer.train(corpus, str(path), vocab_size=800)
    return Tokenizer.load(str(path))


def test_tokenizer_special_ids_and_markers(tokenizer):
    assert (tokenizer.pad_id, tokenizer.eos_id, tokenizer.unk_id, tokenizer.bos_id) == (0, 1, 2, 3)
    markers = [tokenizer.marker_id(m) for m in TASK_MARKERS]
    assert len(set(markers)) == 3 and all(3 < m < tokenizer.vocab_size for m in markers)
    assert tokenizer.encode("<|plan|>") == [tokenizer.marker_id("<|plan|>")]
    assert tokenizer.decode([0, tokenizer.encode("ab")[0], 1, 3, 0]) == tokenizer.decode(tokenizer.encode("ab")[:1])
    assert tokenizer.unk_id not in tokenizer.encode("".join(TRICKY))   # byte fallback: nothing is unknown


@pytest.mark.parametrize("text", TRICKY + STDLIB)
def test_tokenizer_round_trip(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_tokenizer_whitespace_is_cheap(tokenizer):
    # one piece for an 8-space indent and for a newline, not one byte token each
    assert len(tokenizer.encode("        ")) == 1 and len(tokenizer.encode("\n")) == 1


def real_texts():
    texts = []
    for name in ("mbpp/mbpp.jsonl", "mbpp/sanitized-mbpp.json", "humaneval/HumanEval.jsonl.gz",
                 "apps/original", "apps/hf_layout_partial/apps_10.jsonl"):
        kind = name.split("/")[0]
        for p in data.load_problems(f"{kind}:{SHARED / name}"):
            texts += [p.question, p.starter_code, *p.solutions]
            texts += [t.input for t in p.hidden_tests + p.public_tests if isinstance(t.input, str)]
    for line in read_text(SHARED / "mbpp" / "mbpp.jsonl").splitlines():
        texts += [v for v in json.loads(line).values() if isinstance(v, str)]
    return texts


def test_tokenizer_vocab_too_small_names_path_and_size(tmp_path):
    path = tmp_path / "tiny.model"
    with pytest.raises(DataError) as e:
        Tokenizer.train(["def f(x):\n    return x + 1\n"] * 3, str(path), vocab_size=8)
    message = str(e.value)
    assert str(path) in message and "vocab_size 8" in message
    needed = int(message.split("at least ")[1].split()[0])
    assert needed > 256 + len(TASK_MARKERS)   # byte fallback alone takes 256 ids
    assert not path.exists()
    assert Tokenizer.train(["def f(x):\n    return x + 1\n"] * 3, str(path), vocab_size=needed).vocab_size >= needed


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is absent")
def test_tokenizer_round_trips_every_real_text(tokenizer):
    texts = real_texts()
    assert len(texts) > 5000
    bad = [t[:60] for t in texts if tokenizer.decode(tokenizer.encode(t)) != t]
    assert bad == []
