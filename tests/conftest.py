"""Fixtures shared by the train and sample tests: a small synthetic benchmark and a micro model."""
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import synthetic  # noqa: E402

# swapped in for the `tiny` preset so that a training run takes seconds on 2 cores
MICRO = dict(d_model=64, d_kv=16, d_ff=128, num_heads=2, num_layers=2, num_decoder_layers=2)


@pytest.fixture(scope="module")
def one_thread():
    # a micro model gains nothing from threads, and on 2 busy cores they make it many times slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> str:
    """A 200/20/20 synthetic benchmark as a `synthetic:PATH` data spec."""
    path = tmp_path_factory.mktemp("synthetic") / "synthetic-small.jsonl"
    splits = synthetic.generate(0, (200, 20, 20))
    path.write_text("".join(json.dumps({"split": s, **p}) + "\n" for s in ("train", "valid", "test")
                            for p in splits[s]))
    return f"synthetic:{path}"
