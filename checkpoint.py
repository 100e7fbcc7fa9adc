"""Checkpoints that load without running pickled code.

A checkpoint holds only tensors and JSON-like values (dicts, lists, tuples, str, bytes, numbers,
None), so `torch.load(path, weights_only=True)` reads it and a shared file cannot execute
anything. Every error is one line that names the file: missing, truncated or not a torch file,
old or foreign (it needs pickled Python objects), from a newer format, or holding non-finite weights.
Non-finite weights are also refused at save time, so a diverged run never overwrites a good file.

    checkpoint.save(path, {"model": model.state_dict(), "model_config": asdict(config), ...})
    state = checkpoint.load(path, device)      # raises model.CheckpointError
    checkpoint.restore_rng(state["rng"])       # a resumed run draws what the uninterrupted one would
"""
from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import torch

from model import CheckpointError
from problems import write_atomic

FORMAT = "codeplan-checkpoint"
VERSION = 1


def nonfinite_tensors(state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a nan or an inf."""
    names = [k for k, v in state_dict.items() if torch.is_tensor(v) and v.is_floating_point()]
    if not names:
        return []
    # one device sync for the whole state dict, not one per tensor
    finite = torch.stack([torch.isfinite(state_dict[k]).all() for k in names]).tolist()
    return [k for k, ok in zip(names, finite) if not ok]


def describe(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def save(path: Path, state: dict) -> None:
    """Write state (with a "model" state dict) to path atomically; refuse non-finite weights."""
    bad = nonfinite_tensors(state["model"])
    if bad:
        raise CheckpointError(f"{path}: not saved: non-finite weights in {describe(bad)}")
    write_atomic(path, lambda f: torch.save({"format": FORMAT, "version": VERSION, **state}, f))


def load(path: Path, device: torch.device | str = "cpu") -> dict:
    """The state saved by `save`, its tensors on device, or CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        # a file that needs pickled Python objects fails on an "Unsupported global"; a cut or foreign
        # file fails in many ways (OSError, RuntimeError, KeyError, EOFError, UnpicklingError, ...)
        if isinstance(error, pickle.UnpicklingError) and "Unsupported global" in str(error):
            raise CheckpointError(f"{path}: holds Python objects beyond tensors and plain values (an old train.py "
                                  f"checkpoint or a foreign file); refusing to unpickle it, since that can run code") from None
        raise CheckpointError(f"{path}: not a readable torch checkpoint, truncated or foreign ({type(error).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a CodePLAN checkpoint (no format {FORMAT!r}; written by an older "
                              f"train.py or another program)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {state['version']} is newer than this code "
                              f"reads ({VERSION}); update the code")
    bad = nonfinite_tensors(state["model"])
    if bad:
        raise CheckpointError(f"{path}: non-finite weights in {describe(bad)}; the run that wrote it diverged")
    return state


def rng_state() -> dict:
    """Every random generator training draws from (dropout, plan choice, data order), as plain values."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": random.getstate(), "numpy": [kind, keys.tolist(), position, has_gauss, gauss]}


def restore_rng(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"]:
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(rng["python"])
    kind, keys, position, has_gauss, gauss = rng["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
