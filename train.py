"""Train a CodePLAN model: L = (1 - lambda) * L_code + lambda * L_plan.

    python train.py --lambda 0.5                     # synthetic benchmark, reference plans
    python train.py --lambda 0                       # the plain fine-tuning baseline
    python train.py --data mbpp:PATH --plans plans/mbpp-train-backward.jsonl --preset small
    torchrun --nproc_per_node=2 train.py --lambda 0.5 # DDP; the global batch stays the same
    python train.py --name NAME --resume             # continue runs/NAME from its last checkpoint

A run folder runs/<name>/ holds config.json, tokenizer.model, plans.jsonl (for the default
reference plans), metrics.jsonl, last.pt and best.pt (by valid code loss), summary.json.

Defaults depend on the device (see DEVICE_DEFAULTS): tiny on CPU, small on CUDA, each with its
own step budget, batch, warm-up and learning rate; config.json records the values used. A step
whose loss or gradient norm is not finite is skipped and counted; after --max-nonfinite-steps in
a row the run stops. Exit codes: 2 bad input, 3 stopped on non-finite steps, 130 interrupted.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

import batching
import checkpoint
import codeplan
import data
import ddp
import flops
import model as model_lib
import pretrained
import teacher
from cli import INTERRUPTED, NONFINITE, Parser, fail, interrupted, number
from problems import DataError, Problem, provenance, write_atomic
from tokenizer import Tokenizer, load_tokenizer, run_tokenizer_path, tokenizer_snapshot

# Defaults that depend on where the run trains: the preset, and a budget that fits there.
# cpu: the main command trains and samples within 15 minutes on 2 cores (results/LOG.md, 2026-11-27 06:18,
# the main command). cuda: reasoned from H100 runs, not swept; 2000 steps at batch 64 take about 10 minutes
# there (results/LOG.md, 2026-11-26, first H100 runs).
DEVICE_DEFAULTS = {
    "cpu": dict(preset="tiny", steps=400, batch_size=16, warmup=40),
    "cuda": dict(preset="small", steps=2000, batch_size=64, warmup=100),
}
# Peak learning rate by preset: tiny swept at the CPU budget (results/LOG.md, 2026-11-27 06:18, attempt 8),
# small the stable one of the H100 runs (results/LOG.md, 2026-11-26); base and large not measured, lower
# as wider T5 models need.
PRESET_LR = {"tiny": 7e-4, "small": 5e-4, "base": 3e-4, "large": 2e-4}
# Fine-tuning pretrained weights (--init): the authors' release used 2e-5 for CodeT5-large; not swept here.
INIT_LR = 2e-5


def per_device(name: str) -> str:
    return "default " + ", ".join(f"{v[name]:g} on {k}" for k, v in DEVICE_DEFAULTS.items())


def flag(default, help: str, type=None, per_device_default: bool = False, **argparse_kwargs):
    """A TrainConfig field and its command-line flag in one place. `type` (a cli.number) checks the
    range where the flags are parsed; a per-device default is None on the command line until
    resolve_defaults fills it in for the device the run trains on."""
    return field(default=default, metadata={"help": help, "type": type, "per_device": per_device_default,
                                            **argparse_kwargs})


COUNT, NON_NEGATIVE = number(int, 1), number(int, 0)
SHARE, RATE = number(float, 0, 1), number(float, 0, low_open=True)


@dataclass
class TrainConfig:
    lam: float = flag(0.5, "weight of the plan loss; 0 = plain fine-tuning, 1 = plans only", SHARE, metavar="LAMBDA")
    # 0.9, not the paper's 0: plan sampling conditions code on a plan, so that format must be trained; at
    # the CPU budget a plan in 0.5 or 0.75 of the code inputs is read less (results/LOG.md, 2026-11-27 06:18,
    # attempt 8); the other tenth keeps direct code trained
    plan_in_code: float = flag(0.9, "probability that a code example's input includes a teacher plan (ignored when "
                                    "lambda is 0)", SHARE)
    data: str = flag("synthetic", "training data, NAME or NAME:PATH (synthetic, apps, mbpp, humaneval)")
    plans: str = flag("reference", "plans file from teacher.py, or 'reference' for the synthetic benchmark's reference plans")
    solutions: str = flag("shortest", "code targets per problem: its shortest ground-truth solution, or one example "
                                      "per solution", choices=["shortest", "all"])
    preset: str = flag(DEVICE_DEFAULTS["cpu"]["preset"], "model size; default " + ", ".join(
        f"{v['preset']} on {k}" for k, v in DEVICE_DEFAULTS.items()), per_device_default=True, choices=list(model_lib.PRESETS))
    init: str = flag("", "start from a Hugging Face T5/CodeT5/CodeT5+ folder (config.json, weights, and its own tokenizer: "
                         "spiece.model, tokenizer.json or vocab.json + merges.txt) instead of a fresh model")
    grad_checkpoint: bool = flag(False, "activation checkpointing: recompute each block in the backward pass (less "
                                        "memory, about one more forward pass of time)")
    vocab_size: int = flag(4096, "sentencepiece vocabulary size trained on this run's corpus", COUNT)
    tokenizer: str = flag("", "reuse this sentencepiece model (copied into the run folder) instead of training one, so "
                              "that runs compared with each other share one vocabulary; --vocab-size is then ignored")
    steps: int = flag(DEVICE_DEFAULTS["cpu"]["steps"], "optimizer steps in the whole run (the learning-rate schedule "
                      "spans them); " + per_device("steps"), COUNT, per_device_default=True)
    stop_after: int = flag(0, "stop this invocation at this step (resume later with --resume); 0 = run to --steps", NON_NEGATIVE)
    batch_size: int = flag(DEVICE_DEFAULTS["cpu"]["batch_size"], "global batch: problems per optimizer step, over all "
                           "ranks and accumulation steps; " + per_device("batch_size"), COUNT, per_device_default=True)
    grad_accum: int = flag(1, "micro-batches per optimizer step on each rank", COUNT)
    lr: float = flag(PRESET_LR["tiny"], "peak learning rate (AdamW); default by preset: " + ", ".join(
        f"{k} {v:g}" for k, v in PRESET_LR.items()) + f"; with --init {INIT_LR:g}", RATE, per_device_default=True)
    min_lr_ratio: float = flag(0.1, "cosine schedule ends at lr * this", SHARE)
    warmup: int = flag(DEVICE_DEFAULTS["cpu"]["warmup"], "linear warm-up steps; " + per_device("warmup"), NON_NEGATIVE,
                       per_device_default=True)
    weight_decay: float = flag(0.01, "AdamW weight decay (not on norms)", number(float, 0))
    clip: float = flag(1.0, "gradient-norm clipping; 0 = off", number(float, 0))
    max_nonfinite_steps: int = flag(3, "stop the run after this many steps in a row with a non-finite loss or gradient "
                                       "norm (each is skipped)", COUNT)
    dropout: float = flag(0.0, "dropout in the model", number(float, 0, 1, high_open=True))
    max_source_len: int = flag(512, "encoder tokens; longer inputs are cut and counted", COUNT)
    max_target_len: int = flag(256, "decoder tokens incl. EOS; longer targets are cut and counted", number(int, 2))
    amp: str = flag("auto", "mixed precision: auto = bf16 on CUDA, off on CPU; fp16 uses a GradScaler",
                    choices=["auto", "bf16", "fp16", "off"])
    compile: bool = flag(False, "torch.compile the model")
    device: str = flag("auto", "auto, cpu, cuda or cuda:N")
    seed: int = flag(0, "seed for data order, plan choice, initialisation and dropout", NON_NEGATIVE)
    log_interval: int = flag(50, "steps between training log lines", COUNT)
    eval_interval: int = flag(300, "steps between valid-loss evaluations (and best.pt)", COUNT)
    eval_examples: int = flag(256, "valid examples used for the valid losses", COUNT)
    save_interval: int = flag(300, "steps between last.pt checkpoints", COUNT)
    save_every: int = flag(0, "also keep step-<N>.pt every N steps (for learning curves); 0 = off", NON_NEGATIVE)
    pass1_limit: int = flag(0, "valid problems for the final greedy pass@1; 0 = all, -1 = skip", number(int, -1))
    out: str = flag("runs", "folder holding run folders")
    name: str = flag("", "run folder name; default lambda<L>-seed<S>")
    resume: bool = flag(False, "continue runs/<name> from last.pt")


def flag_name(name: str) -> str:
    return "--lambda" if name == "lam" else "--" + name.replace("_", "-")


def parse_args(argv=None) -> TrainConfig:
    """The flags as given, range-checked; those with per-device defaults stay None until resolve_defaults."""
    p = Parser(description=__doc__)
    for f in fields(TrainConfig):
        meta = dict(f.metadata)
        help_text, kind, device_default = meta.pop("help"), meta.pop("type"), meta.pop("per_device")
        default = None if device_default else f.default
        if f.type == "bool":
            p.add_argument(flag_name(f.name), dest=f.name, action="store_true", help=help_text)
        else:
            p.add_argument(flag_name(f.name), dest=f.name, default=default, help=help_text, type=kind or str, **meta)
    cfg = TrainConfig(**vars(p.parse_args(argv)))
    cfg.name = cfg.name or f"lambda{cfg.lam:g}-seed{cfg.seed}"
    if cfg.init and cfg.preset:
        p.error("--init takes the model's shape from its folder: leave out --preset")
    if cfg.init and cfg.tokenizer:
        p.error("--init brings the folder's own tokenizer: leave out --tokenizer")
    if cfg.init:
        try:
            pretrained.check_folder(cfg.init)
        except DataError as e:
            p.error(str(e))
    world = int(os.environ.get("WORLD_SIZE", "1"))   # torchrun sets it before the process starts
    kind = device_kind(cfg.device)
    if not cfg.resume:   # a resumed run keeps its saved batch, checked when the run began
        check_batch_split(cfg.batch_size or DEVICE_DEFAULTS[kind]["batch_size"], cfg.grad_accum, world, p.error,
                          "" if cfg.batch_size else f" (the default on {kind})")
    return cfg


def device_kind(device: str) -> str:
    """Which DEVICE_DEFAULTS a --device value gets ("auto" is CUDA where there is one)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if device.startswith("cuda") else "cpu"


def check_batch_split(batch_size: int, grad_accum: int, world: int, refuse, note: str = "") -> None:
    """The global batch splits evenly over the ranks and each rank's accumulation steps."""
    if batch_size % (world * grad_accum):
        refuse(f"--batch-size {batch_size}{note} must divide by world size x --grad-accum = {world} x {grad_accum}")


def resolve_defaults(cfg: TrainConfig, device: torch.device) -> TrainConfig:
    """Fill the flags left unset (None) with the defaults of this device and preset."""
    defaults = DEVICE_DEFAULTS["cuda" if device.type == "cuda" else "cpu"]
    # with --init the shape comes from the pretrained folder, so there is no preset
    cfg = replace(cfg, preset="" if cfg.init else cfg.preset or defaults["preset"])
    fill = {k: defaults[k] for k in ("steps", "batch_size", "warmup") if getattr(cfg, k) is None}
    if cfg.lr is None:
        fill["lr"] = INIT_LR if cfg.init else PRESET_LR[cfg.preset]
    return replace(cfg, **fill)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data

def load_plans(cfg: TrainConfig, problems: list[Problem], run_dir: Path, is_main: bool) -> dict[str, list[str]]:
    if cfg.lam == 0:
        return {}
    path = Path(cfg.plans)
    if cfg.plans == "reference":
        unplanned = [p.id for p in problems if not p.reference_plan]
        if unplanned:   # only the synthetic benchmark comes with plans
            raise DataError(f"--data {cfg.data}: {len(unplanned)} of {len(problems)} train problems have no reference plan "
                            f"(e.g. {unplanned[0]}): pass --plans FILE (python teacher.py --data {cfg.data} writes "
                            f"one) or --lambda 0 to train without plans")
        path = run_dir / "plans.jsonl"
        if is_main and not path.exists():
            teacher.write_reference_plans(problems, path, "train")
        ddp.barrier()
    return teacher.read_plans(path, problems)   # refuses plans made for other problems (e.g. the test split)


def prepare(cfg: TrainConfig, run_dir: Path, is_main: bool):
    train_problems = data.load_problems(cfg.data, "train")
    if cfg.data.partition(":")[0] == "apps":
        # APPS has only train and test: hold out a fixed 5% of train (1 to 500 problems) for the valid losses
        held = set(random.Random(0).sample(range(len(train_problems)), max(1, min(500, len(train_problems) // 20))))
        valid_problems = [p for i, p in enumerate(train_problems) if i in held]
        train_problems = [p for i, p in enumerate(train_problems) if i not in held]
    else:
        valid_problems = data.load_problems(cfg.data, "valid")
    plans = load_plans(cfg, train_problems, run_dir, is_main)
    valid_plans = {p.id: [p.reference_plan] for p in valid_problems if p.reference_plan}
    tok_path = tokenizer_path(cfg, run_dir)
    if is_main and cfg.init and not tok_path.exists():
        pretrained.copy_tokenizer(cfg.init, tok_path)   # the pretrained model's own tokenizer, kept with the run
    elif is_main and cfg.tokenizer:
        if not Path(cfg.tokenizer).is_file():
            raise DataError(f"--tokenizer {cfg.tokenizer}: no such file")
        given = Path(cfg.tokenizer).read_bytes()
        if tok_path.exists() and tok_path.read_bytes() != given:
            raise DataError(f"--tokenizer {cfg.tokenizer} differs from the tokenizer of this run ({tok_path})")
        write_atomic(tok_path, given)
    elif is_main and not tok_path.exists():
        Tokenizer.train(tokenizer_corpus(train_problems, plans), str(tok_path), cfg.vocab_size)
    ddp.barrier()
    tokenizer = load_tokenizer(tok_path)
    train = codeplan.make_examples(train_problems, plans, cfg.solutions)
    valid = codeplan.make_examples(valid_problems, valid_plans, cfg.solutions)
    if len(train) < cfg.batch_size:
        raise DataError(f"{cfg.data}: the train split has {len(train)} examples with a ground-truth solution, "
                             f"fewer than --batch-size {cfg.batch_size}")
    if cfg.lam > 0:
        with_plan = sum(bool(e.plans) for e in train)
        if with_plan == 0:
            # e.g. a plans file made for another dataset or split: its task ids match nothing here
            raise DataError(f"{cfg.plans}: no plan matches any of the {len(train)} train examples of {cfg.data}; "
                                 f"--lambda {cfg.lam:g} needs plans (check that the file was made for this data)")
        if is_main:
            log(f"plans: {with_plan}/{len(train)} train examples ({with_plan / len(train):.1%}) have a plan from {cfg.plans}")
    return tokenizer, train, valid, valid_problems


def tokenizer_path(cfg: TrainConfig, run_dir: Path) -> Path:
    return run_tokenizer_path(run_dir, pretrained=bool(cfg.init))


def tokenizer_corpus(problems: list[Problem], plans: dict[str, list[str]]) -> list[str]:
    """The tokenizer learns the encoder inputs as the model will see them, markers and headers included."""
    corpus = [codeplan.code_source(p) for p in problems] + [s for p in problems for s in p.solutions]
    return corpus + [pl for pls in plans.values() for pl in pls]


def batch_order(examples: list[codeplan.Example], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    lengths = [len(e.problem.question) + len(e.solution) for e in examples]
    # full batches only: a short remainder would change the global batch and, split over ranks
    # and accumulation steps, could leave a micro-batch empty
    return [b for b in batching.bucket_batches(lengths, batch_size, seed=seed * 1000 + epoch) if len(b) == batch_size]


def batch_at(step: int, examples, cfg: TrainConfig, cache: dict) -> list[int]:
    """The global batch of optimizer step `step`: a pure function of (seed, step), so resume is exact."""
    per_epoch = len(batch_order(examples, cfg.batch_size, cfg.seed, 0)) if "n" not in cache else cache["n"]
    cache["n"] = per_epoch
    epoch, index = divmod(step, per_epoch)
    if cache.get("epoch") != epoch:
        cache["epoch"], cache["order"] = epoch, batch_order(examples, cfg.batch_size, cfg.seed, epoch)
    return cache["order"][index]


def step_batches(step: int, examples, tokenizer, cfg: TrainConfig, cache: dict, rank: int = 0,
                 world: int = 1) -> tuple[list[dict], dict]:
    """This rank's micro-batches (token id pairs per task) of optimizer step `step`, and their truncation counts."""
    batch_ids, cut = batch_at(step, examples, cfg, cache)[rank::world], {}
    rng = random.Random(cfg.seed * 1_000_003 + step)
    return [codeplan.encode_batch([examples[j] for j in batch_ids[i::cfg.grad_accum]], tokenizer, cfg.lam,
                                  cfg.plan_in_code, rng, cfg.max_source_len, cfg.max_target_len, cut)
            for i in range(cfg.grad_accum)], cut


def to_tensors(pairs, pad_id: int, device) -> dict | None:
    if not pairs:
        return None
    return {k: v.to(device, non_blocking=True) for k, v in batching.collate(pairs, pad_id).items()}


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def valid_losses(model, tokenizer, valid, cfg: TrainConfig, device, autocast) -> dict[str, float]:
    """Token-mean valid loss per task; the code task is scored without a plan (direct code)."""
    model.eval()
    sums, counts, trunc = {"code": 0.0, "plan": 0.0}, {"code": 0, "plan": 0}, {}
    rng = random.Random(0)
    subset = valid[: cfg.eval_examples]
    for i in range(0, len(subset), cfg.batch_size):
        chunk = subset[i:i + cfg.batch_size]
        code = codeplan.encode_batch(chunk, tokenizer, 0.0, 0.0, rng, cfg.max_source_len, cfg.max_target_len, trunc)["code"]
        # at lambda 0 the plan head is never trained: its loss would be noise in the logs
        plan = codeplan.encode_batch(chunk, tokenizer, 1.0, 0.0, rng, cfg.max_source_len, cfg.max_target_len, trunc)["plan"] if cfg.lam > 0 else []
        for task, pairs in (("code", code), ("plan", plan)):
            t = to_tensors(pairs, tokenizer.pad_id, device)
            if t is None:
                continue
            with autocast:
                _, loss = model(t["input_ids"], t["attention_mask"], labels=t["labels"], head=task)
            n = int((t["labels"] != -100).sum())
            sums[task] += float(loss) * n
            counts[task] += n
    model.train()
    return {f"valid_{k}": sums[k] / counts[k] for k in sums if counts[k]}


# ----------------------------------------------------------------------------- resume and schedule

# the flags that define a run and what is evaluated; the others (--stop-after, intervals, --device, ...)
# may change on resume
RUN_FIELDS = ("lam", "plan_in_code", "data", "plans", "solutions", "preset", "init", "vocab_size", "steps", "batch_size",
              "grad_accum", "lr", "min_lr_ratio", "warmup", "weight_decay", "clip", "dropout", "max_source_len",
              "max_target_len", "amp", "seed", "eval_examples", "pass1_limit")


def resume_config(cfg: TrainConfig, run_dir: Path) -> tuple[TrainConfig, dict]:
    """--resume continues a run as it was configured, so `--name NAME --resume` is enough: run flags
    not given (or left at their defaults) take the run's saved values, which are returned to be
    logged; a flag that contradicts the run is refused."""
    saved_path = run_dir / "config.json"
    if not saved_path.exists():
        return cfg, {}   # no run there: the missing checkpoint is reported next
    saved, default, adopted = json.loads(saved_path.read_text()), TrainConfig(), {}
    for name in RUN_FIELDS:
        if name not in saved:
            continue
        given = getattr(cfg, name)
        if given is None or given == getattr(default, name):
            adopted[name] = saved[name]
        elif given != saved[name]:
            fail(f"train.py: --resume: {flag_name(name)} {given} contradicts {saved_path} ({saved[name]}); leave it out to continue the run")
    return replace(cfg, **adopted), adopted


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


# ----------------------------------------------------------------------------- setup

def autocast_for(cfg: TrainConfig, device: torch.device):
    amp = cfg.amp if cfg.amp != "auto" else ("bf16" if device.type == "cuda" else "off")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    return amp, torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def build_optimizer(model, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), fused=device.type == "cuda")


def final_pass1(raw_model, tokenizer, problems, cfg: TrainConfig, max_new_tokens: int) -> dict:
    """Greedy direct-code pass@1 on the valid split, scored on hidden tests in the sandbox; programs end
    at max_new_tokens (the code head's decoding cap, as sample.py decodes)."""
    import sandbox
    if cfg.pass1_limit > 0:
        problems = problems[: cfg.pass1_limit]
    raw_model.eval()
    sources = [codeplan.code_source(p) for p in problems]
    log(f"final greedy pass@1 on {len(problems)} valid problems: generating, then running the hidden tests")
    programs, start, last = [], time.time(), 0.0
    for i in range(0, len(sources), 64):
        outputs = codeplan.generate_texts(raw_model, tokenizer, sources[i:i + 64], "code", max_new_tokens=max_new_tokens,
                                          max_source=cfg.max_source_len, batch_size=64)
        programs += [out[0][0] for out in outputs]
        if time.time() - last > 5 or len(programs) == len(sources):
            last, rate = time.time(), len(programs) / (time.time() - start)
            log(f"final pass@1: generated {len(programs)}/{len(sources)} programs | {rate:.1f}/s | "
                f"ETA {(len(sources) - len(programs)) / rate:.0f}s")
    verdicts = sandbox.evaluate_many([(p, code, "hidden") for p, code in zip(problems, programs)], progress=True)
    by_diff: dict[str, list[bool]] = {}
    for p, v in zip(problems, verdicts):
        by_diff.setdefault(p.difficulty, []).append(v.passed)
        if p.tier:   # per tier too, where the split has tiers (the synthetic benchmark's valid split)
            by_diff.setdefault(f"tier_{p.tier}", []).append(v.passed)
    result = {"valid_pass1": sum(v.passed for v in verdicts) / len(verdicts), "valid_problems": len(verdicts)}
    result.update({f"valid_pass1_{d}": sum(x) / len(x) for d, x in sorted(by_diff.items())})
    return result


# ----------------------------------------------------------------------------- the run

TASKS = ("code", "plan")
WORK = ("code_examples", "code_with_plan", "plan_examples", "tokens", "flops")


def train(cfg: TrainConfig) -> dict:
    """Train to --steps (or --stop-after), stopping early on Ctrl-C or after --max-nonfinite-steps
    non-finite steps in a row; returns what summary.json holds."""
    # the outermost folder this run creates, removed again if the data is refused
    new_folders = [d for d in (*reversed(Path(cfg.out, cfg.name).parents), Path(cfg.out, cfg.name)) if not d.exists()]
    cfg, device, rank, world, run_dir, code_version = open_run(cfg)
    is_main = rank == 0   # rank 0 alone logs, evaluates and writes files
    try:
        tokenizer, train_ex, valid_ex, valid_problems = prepare(cfg, run_dir, is_main)
        model = build_model(cfg, tokenizer, device)
    except (DataError, teacher.TeacherError, model_lib.CheckpointError):
        if is_main and new_folders and not cfg.resume:
            shutil.rmtree(new_folders[0], ignore_errors=True)
        raise
    optimizer = build_optimizer(model, cfg, device)
    amp, autocast = autocast_for(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")   # bf16 and fp32 need no loss scaling
    # what summary.json reports over the whole run, resumes included; a skipped (non-finite) step applies
    # no update and counts no examples, but its FLOPs were spent
    progress = {"skipped_steps": 0, "code_examples_seen": 0, "code_with_plan_seen": 0, "plan_examples_seen": 0,
                "train_flops": 0.0, "train_seconds": 0.0}
    step, best = restore(run_dir, model, optimizer, scaler, progress, device, is_main) if cfg.resume else (0, float("inf"))
    if is_main:
        log(f"{len(train_ex)} train / {len(valid_ex)} valid examples | preset {cfg.preset or f'from {cfg.init}'}, "
            f"{model.num_parameters() / 1e6:.1f}M parameters | vocab {tokenizer.vocab_size} | {device}, amp {amp}, world {world}")
    loss_fn = codeplan.MultiTaskLoss(torch.compile(model) if cfg.compile else model, cfg.lam)
    if world > 1:   # the plan head gets no gradient at lambda 0 (and the code path none at lambda 1)
        loss_fn = torch.nn.parallel.DistributedDataParallel(loss_fn, find_unused_parameters=True)
    tokens = batching.TokenCache(tokenizer, tokenizer_path(cfg, run_dir), codeplan.training_texts(train_ex))
    # kept in every checkpoint: sample.py caps each head's decoding near the longest target it learned
    longest = codeplan.longest_targets(train_ex, tokens, cfg.lam)
    caps = {head: codeplan.decoding_cap(longest.get(head), cfg.max_target_len) for head in TASKS}
    if is_main:
        log("longest train targets (tokens, EOS included): " + ", ".join(f"{h} {n}" for h, n in longest.items())
            + " | decoding caps: " + ", ".join(f"{h} {n}" for h, n in caps.items()))
    orders = {}   # the batch order of the current epoch
    # the next steps' batches are built in a background thread while this one trains
    batches = batching.Prefetcher(lambda s: step_batches(s, train_ex, tokens, cfg, orders, rank, world), tokenizer.pad_id, device)
    # Ctrl-C ends the step under way, saves last.pt and exits 130: the run resumes exactly from there.
    # A second Ctrl-C stops at once (main() reports it); before and after the loop Ctrl-C acts at once.
    stop_requested = threading.Event()

    def on_ctrl_c(signum, frame) -> None:
        if stop_requested.is_set():
            raise KeyboardInterrupt
        stop_requested.set()
        if is_main:   # os.write: print() is not safe inside a signal handler
            os.write(2, b"Ctrl-C: stopping after this step and saving last.pt (Ctrl-C again: stop at once, unsaved)\n")
    previous_handler = signal.signal(signal.SIGINT, on_ctrl_c)
    end = min(cfg.steps, cfg.stop_after or cfg.steps)   # where this invocation stops
    truncated, window, in_a_row, last_saved = {}, new_window(), 0, step if cfg.resume else None
    seconds_before, loop_start = progress["train_seconds"], time.time()

    def save(path: Path) -> None:
        progress["train_seconds"] = seconds_before + time.time() - loop_start
        save_checkpoint(path, model, optimizer, scaler, step, best, cfg, progress, longest, tokenizer_path(cfg, run_dir))

    model.train()
    stop = diverged = False
    while step < end and not stop:
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # skipped steps move the data on too, so that a batch that gave a non-finite loss is not drawn again
        micro_batches, cut = batches.get(step + progress["skipped_steps"])
        with_plan = cut.pop("code_with_plan", 0)   # code inputs that hold a plan; the rest of cut counts truncations
        losses, work = {task: [] for task in TASKS}, dict.fromkeys(WORK, 0.0)
        for i, (pairs, batch) in enumerate(micro_batches):
            # DDP averages the gradients over the ranks once per optimizer step, on the last micro-batch
            sync = world == 1 or i == len(micro_batches) - 1
            with (contextlib.nullcontext() if sync else loss_fn.no_sync()), autocast:
                loss, parts = loss_fn(batch)   # both heads: (1 - lambda) * L_code + lambda * L_plan
                scaler.scale(loss / cfg.grad_accum).backward()
            # the losses and the work of the global batch (all ranks), not of this rank's shard
            work_here = {**flops.batch_work(pairs, model.config), "code_with_plan": with_plan if i == 0 else 0}
            parts, done = ddp.global_batch(parts, work_here, TASKS, world, device)
            for task, value in parts.items():
                losses[task].append(value)
            for k, v in done.items():
                work[k] += v
        # every rank decides alike: the losses are global-batch means, the gradient norm is of the averaged gradients
        finite = all(math.isfinite(v) for values in losses.values() for v in values)
        grad_norm = float("nan")
        if finite:
            scaler.unscale_(optimizer)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip if cfg.clip > 0 else float("inf")))
        # under fp16 an overflowing gradient is the GradScaler's to handle: it skips that step and lowers its scale
        applied = finite and (math.isfinite(grad_norm) or scaler.is_enabled())
        if applied:
            scaler.step(optimizer)
            scaler.update()
            step += 1
        optimizer.zero_grad(set_to_none=True)

        # the step's accounting: counts, the log window, the non-finite streak
        truncated.update({k: truncated.get(k, 0) + v for k, v in cut.items()})
        progress["train_flops"] += work["flops"]
        window["tokens"] += work["tokens"]
        window["flops"] += work["flops"]
        if applied:
            in_a_row = 0
            progress["code_examples_seen"] += int(work["code_examples"])
            progress["code_with_plan_seen"] += int(work["code_with_plan"])
            progress["plan_examples_seen"] += int(work["plan_examples"])
            for task in TASKS:
                window[task] += losses[task]
        else:   # nothing was applied: the weights, the optimizer, the schedule and the GradScaler are as they were
            in_a_row += 1
            progress["skipped_steps"] += 1
            window["skipped"] += 1
            if is_main:
                what = ("loss " + " ".join(f"{t} {sum(v) / len(v):.4g}" for t, v in losses.items() if v)) if not finite else f"gradient norm {grad_norm}"
                log(f"step {step + 1}: non-finite {what}: skipped ({in_a_row} in a row, {progress['skipped_steps']} in the run)")
        diverged = in_a_row >= cfg.max_nonfinite_steps
        # every rank stops after the same step, or one would wait forever in the next all-reduce
        stop = ddp.any_rank(stop_requested.is_set() or diverged, device)
        if not is_main:
            continue
        if applied and (step % cfg.log_interval == 0 or step == end):
            log_window(run_dir, cfg, step, end, lr, grad_norm, window, device, world)
            window = new_window()
        if applied and (step % cfg.eval_interval == 0 or step == cfg.steps):
            valid = valid_losses(model, tokenizer, valid_ex, cfg, device, autocast)
            append_metrics(run_dir, {"step": step, **valid})
            log(f"step {step} | " + " ".join(f"{k} {v:.4f}" for k, v in valid.items()))
            if valid.get("valid_code", float("inf")) < best:
                best = valid["valid_code"]
                save(run_dir / "best.pt")
        if applied and cfg.save_every and step % cfg.save_every == 0:
            save(run_dir / f"step-{step}.pt")
        # a run stopped on non-finite steps keeps its last good checkpoint: nothing after it is saved
        if not diverged and (stop or applied and (step % cfg.save_interval == 0 or step == end)):
            save(run_dir / "last.pt")
            last_saved = step

    batches.close()
    progress["train_seconds"] = seconds_before + time.time() - loop_start
    signal.signal(signal.SIGINT, previous_handler)   # a caller in the same process gets Ctrl-C back
    ddp.close_distributed()
    summary = {"step": step, "best_valid_code": best if best < float("inf") else None,   # JSON has no Infinity
               "truncated": truncated, "longest_target": longest, "optimizer_steps": step, **progress, **code_version}
    if diverged:
        summary["stopped_nonfinite"] = True
        if is_main:
            kept = f"the last good checkpoint is {run_dir / 'last.pt'} (step {last_saved})" if last_saved is not None else "no checkpoint was saved"
            log(f"stopped: {in_a_row} steps in a row had a non-finite loss or gradient norm; {kept}. "
                f"Try a lower --lr (this run: {cfg.lr:g}) or --amp off")
    elif stop:
        summary["interrupted"] = True
        if is_main:
            log(f"interrupted: saved {run_dir / 'last.pt'} at step {step}; continue with --name {cfg.name} --resume")
    elif is_main and step == cfg.steps and cfg.pass1_limit >= 0:
        try:
            summary.update(final_pass1(model, tokenizer, valid_problems, cfg, caps["code"]))
        except KeyboardInterrupt:   # training is done: the run is finished, only its pass@1 is missing
            summary.update(interrupted=True, training_finished=True)
            log(f"interrupted in the final pass@1: training finished ({run_dir / 'best.pt'}); summary.json has no "
                f"pass@1 (continue with --name {cfg.name} --resume to compute it)")
        else:
            per_difficulty = " ".join(f"{k.removeprefix('valid_pass1_')} {v:.3f}" for k, v in summary.items() if k.startswith("valid_pass1_"))
            log(f"final greedy pass@1 on {summary['valid_problems']} valid problems (direct code): {summary['valid_pass1']:.3f} | {per_difficulty}")
    if is_main:
        if truncated:
            log(f"truncated examples: {truncated}")
        write_atomic(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def open_run(cfg: TrainConfig) -> tuple[TrainConfig, torch.device, int, int, Path, dict]:
    """The resolved flags (with --resume, the run's own), the device, rank and world size, and the run
    folder with its config.json; every generator seeded."""
    adopted = {}
    if cfg.resume:
        cfg, adopted = resume_config(cfg, Path(cfg.out) / cfg.name)
    device, rank, world = ddp.setup_device(cfg.device)
    cfg = resolve_defaults(cfg, device)
    if rank == 0 and adopted:
        log("--resume: taken from the saved run: " + " ".join(f"{flag_name(k)} {v:g}" if isinstance(v, float) else f"{flag_name(k)} {v}"
                                                              for k, v in adopted.items()))
    check_batch_split(cfg.batch_size, cfg.grad_accum, world, lambda message: fail(f"train.py: {message}"))
    run_dir = Path(cfg.out) / cfg.name
    code_version = provenance()   # the commit (and dirty flag), in config.json and summary.json
    if rank == 0:
        if run_dir.exists() and not cfg.resume and ((run_dir / "last.pt").exists() or (run_dir / "metrics.jsonl").exists()):
            fail(f"train.py: {run_dir} already holds a run; pass --resume to continue it or --name for a new one")
        if cfg.resume and not (run_dir / "last.pt").exists():
            fail(f"train.py: --resume: no checkpoint at {run_dir / 'last.pt'}")
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / "config.json", json.dumps({**asdict(cfg), "device": str(device), "world_size": world,
                                                          **code_version}, indent=2) + "\n")
    ddp.barrier()
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    return cfg, device, rank, world, run_dir, code_version


def build_model(cfg: TrainConfig, tokenizer, device: torch.device) -> model_lib.CodePlanModel:
    if cfg.init:
        model = pretrained.init_model(cfg.init, tokenizer, cfg.dropout).to(device)
    else:
        mconf = model_lib.ModelConfig.preset(cfg.preset, vocab_size=tokenizer.vocab_size, dropout=cfg.dropout,
                                             pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id)
        model = model_lib.CodePlanModel(mconf).to(device)
    model.gradient_checkpointing(cfg.grad_checkpoint)
    return model


def save_checkpoint(path: Path, model, optimizer, scaler, step: int, best: float, cfg: TrainConfig, progress: dict,
                    longest: dict[str, int], tokenizer_file: Path) -> None:
    """All that a resumed run continues from, the random generators included, so resume is exact; and the
    longest train target of each head (codeplan.longest_targets), from which sample.py takes its decoding caps."""
    checkpoint.save(path, {
        "model": model.state_dict(), "model_config": asdict(model.config),
        "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "step": step, "best_valid_code": best, "config": asdict(cfg), "progress": progress, "longest_target": longest,
        "tokenizer": tokenizer_snapshot(tokenizer_file), "rng": checkpoint.rng_state(),
    })


def restore(run_dir: Path, model, optimizer, scaler, progress: dict, device, is_main: bool) -> tuple[int, float]:
    """Everything as last.pt left it; returns its step and best valid code loss. metrics.jsonl loses the
    lines a killed run logged after that checkpoint, so the log reads as one run."""
    state = checkpoint.load(run_dir / "last.pt", device)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    progress.update(state["progress"])
    checkpoint.restore_rng(state["rng"])
    metrics = run_dir / "metrics.jsonl"
    if is_main:
        log(f"resumed {run_dir / 'last.pt'} at step {state['step']}")
        if metrics.exists():
            kept = [l for l in metrics.read_text().splitlines() if l.strip() and json.loads(l)["step"] <= state["step"]]
            write_atomic(metrics, "".join(l + "\n" for l in kept))
    return state["step"], state["best_valid_code"]


def new_window() -> dict:
    """What the steps since the last log line did; log_window averages it."""
    return {"tokens": 0, "flops": 0.0, "time": time.time(), "code": [], "plan": [], "skipped": 0}


def append_metrics(run_dir: Path, record: dict) -> None:
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def log_window(run_dir: Path, cfg: TrainConfig, step: int, end: int, lr: float, grad_norm: float, window: dict,
               device, world: int) -> None:
    """One log line and metrics.jsonl record for the steps since the last one. Only the losses of
    trained tasks appear: no plan loss at lambda 0, no code loss at lambda 1."""
    elapsed = time.time() - window["time"]
    rec = {"step": step, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": window["tokens"] / elapsed}
    for task in TASKS:
        if window[task]:
            rec[f"loss_{task}"] = sum(window[task]) / len(window[task])
    rec["loss"] = (1 - cfg.lam) * rec.get("loss_code", 0.0) + cfg.lam * rec.get("loss_plan", 0.0)
    if window["skipped"]:
        rec["skipped_steps"] = window["skipped"]
    peak = flops.peak_flops(device)
    if peak:
        rec["mfu"] = window["flops"] / elapsed / (world * peak)   # window FLOPs are summed over the ranks
    steps_per_s = (step % cfg.log_interval or cfg.log_interval) / elapsed
    rec["eta_s"] = (end - step) / steps_per_s
    append_metrics(run_dir, rec)
    losses = " ".join(f"L_{t} {rec[f'loss_{t}']:.4f}" for t in TASKS if f"loss_{t}" in rec)
    log(f"step {step}/{cfg.steps} | {losses} total {rec['loss']:.4f} | lr {lr:.2e} | gnorm {grad_norm:.2f} | "
        f"{rec['tokens_per_s'] / 1e3:.1f}k tok/s" + (f" | MFU {rec['mfu']:.1%}" if "mfu" in rec else "")
        + (f" | skipped {window['skipped']}" if window["skipped"] else "") + f" | ETA {rec['eta_s'] / 60:.1f} min")


def main(argv=None) -> None:
    cfg = parse_args(argv)
    try:
        summary = train(cfg)
    except (DataError, teacher.TeacherError, model_lib.CheckpointError) as e:
        fail(f"train.py: {e}")
    except KeyboardInterrupt:   # while preparing, or a second Ctrl-C in the loop
        last = Path(cfg.out) / cfg.name / "last.pt"
        interrupted("train.py: interrupted at once; " + (f"{last} is the last save: continue with --name {cfg.name} "
                    "--resume" if last.exists() else "nothing was trained yet: rerun the same command"))
    finally:
        ddp.close_distributed(clean=False)   # after an error; a finished run has closed it already
    if summary.get("stopped_nonfinite"):
        sys.exit(NONFINITE)
    if summary.get("interrupted"):
        sys.exit(INTERRUPTED)


if __name__ == "__main__":
    main()
