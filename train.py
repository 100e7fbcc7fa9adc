"""Train a CodePLAN model: L = (1 - lambda) * L_code + lambda * L_plan.

    python train.py --lambda 0.5                     # synthetic benchmark, reference plans
    python train.py --lambda 0                       # the plain fine-tuning baseline
    python train.py --data mbpp:PATH --plans plans/mbpp-train-backward.jsonl --preset small
    torchrun --nproc_per_node=2 train.py --lambda 0.5 # DDP; the global batch stays the same
    python train.py --name NAME --resume             # continue runs/NAME from its last checkpoint

A run folder runs/<name>/ holds config.json, tokenizer.model, plans.jsonl (for the default
reference plans), metrics.jsonl, last.pt and best.pt (by valid code loss).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

import codeplan
import data
import model as model_lib
import teacher

# Peak dense bf16 FLOP/s of cards we can name, for MFU; other devices report no MFU.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


@dataclass
class TrainConfig:
    lam: float = 0.5
    plan_in_code: float = 0.5
    data: str = "synthetic"
    plans: str = "reference"
    solutions: str = "shortest"
    preset: str = ""
    vocab_size: int = 4096
    steps: int = 500
    stop_after: int = 0
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.01
    clip: float = 1.0
    dropout: float = 0.0
    max_source_len: int = 512
    max_target_len: int = 256
    amp: str = "auto"
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    log_interval: int = 50
    eval_interval: int = 300
    eval_examples: int = 256
    save_interval: int = 300
    pass1_limit: int = 0
    out: str = "runs"
    name: str = ""
    resume: bool = False


def parse_args(argv=None) -> TrainConfig:
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lambda", dest="lam", type=float, default=d.lam, help="weight of the plan loss in [0, 1]; 0 = plain fine-tuning, 1 = plans only")
    p.add_argument("--plan-in-code", type=float, default=d.plan_in_code, help="probability that a code example's input includes a teacher plan (ignored when lambda is 0)")
    p.add_argument("--data", default=d.data, help="training data, NAME or NAME:PATH (synthetic, apps, mbpp, humaneval)")
    p.add_argument("--plans", default=d.plans, help="plans file from teacher.py, or 'reference' for the synthetic benchmark's reference plans")
    p.add_argument("--solutions", default=d.solutions, choices=["shortest", "all"], help="code targets per problem: its shortest ground-truth solution, or one example per solution")
    p.add_argument("--preset", default=d.preset, choices=["", "tiny", "small", "base", "large"], help="model size; default tiny on CPU, small on CUDA")
    p.add_argument("--vocab-size", type=int, default=d.vocab_size, help="sentencepiece vocabulary size trained on this run's corpus")
    p.add_argument("--steps", type=int, default=d.steps, help="optimizer steps in the whole run (the learning-rate schedule spans them)")
    p.add_argument("--stop-after", type=int, default=d.stop_after, help="stop this invocation at this step (resume later with --resume); 0 = run to --steps")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="global batch: problems per optimizer step, over all ranks and accumulation steps")
    p.add_argument("--grad-accum", type=int, default=d.grad_accum, help="micro-batches per optimizer step on each rank")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW)")
    p.add_argument("--min-lr-ratio", type=float, default=d.min_lr_ratio, help="cosine schedule ends at lr * this")
    p.add_argument("--warmup", type=int, default=d.warmup, help="linear warm-up steps")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay (not on norms)")
    p.add_argument("--clip", type=float, default=d.clip, help="gradient-norm clipping; 0 = off")
    p.add_argument("--dropout", type=float, default=d.dropout, help="dropout in the model")
    p.add_argument("--max-source-len", type=int, default=d.max_source_len, help="encoder tokens; longer inputs are cut and counted")
    p.add_argument("--max-target-len", type=int, default=d.max_target_len, help="decoder tokens incl. EOS; longer targets are cut and counted")
    p.add_argument("--amp", default=d.amp, choices=["auto", "bf16", "fp16", "off"], help="mixed precision: auto = bf16 on CUDA, off on CPU; fp16 uses a GradScaler")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=d.seed, help="seed for data order, plan choice, initialisation and dropout")
    p.add_argument("--log-interval", type=int, default=d.log_interval, help="steps between training log lines")
    p.add_argument("--eval-interval", type=int, default=d.eval_interval, help="steps between valid-loss evaluations (and best.pt)")
    p.add_argument("--eval-examples", type=int, default=d.eval_examples, help="valid examples used for the valid losses")
    p.add_argument("--save-interval", type=int, default=d.save_interval, help="steps between last.pt checkpoints")
    p.add_argument("--pass1-limit", type=int, default=d.pass1_limit, help="valid problems for the final greedy pass@1; 0 = all, -1 = skip")
    p.add_argument("--out", default=d.out, help="folder holding run folders")
    p.add_argument("--name", default=d.name, help="run folder name; default lambda<L>-seed<S>")
    p.add_argument("--resume", action="store_true", help="continue runs/<name> from last.pt")
    cfg = TrainConfig(**vars(p.parse_args(argv)))
    if not 0.0 <= cfg.lam <= 1.0 or not 0.0 <= cfg.plan_in_code <= 1.0:
        p.error("--lambda and --plan-in-code must lie in [0, 1]")
    cfg.name = cfg.name or f"lambda{cfg.lam:g}-seed{cfg.seed}"
    return cfg


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data

def load_plans(cfg: TrainConfig, problems: list[data.Problem], run_dir: Path, is_main: bool) -> dict[str, list[str]]:
    if cfg.lam == 0:
        return {}
    path = Path(cfg.plans)
    if cfg.plans == "reference":
        path = run_dir / "plans.jsonl"
        if is_main and not path.exists():
            teacher.write_reference_plans(problems, path)
        if dist.is_initialized():
            dist.barrier()
    return teacher.read_plans(path)


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
    tok_path = run_dir / "tokenizer.model"
    if is_main and not tok_path.exists():
        # the tokenizer learns the encoder inputs as the model will see them, markers and headers included
        corpus = [codeplan.code_source(p) for p in train_problems] + [s for p in train_problems for s in p.solutions]
        corpus += [pl for pls in plans.values() for pl in pls]
        data.Tokenizer.train(corpus, str(tok_path), cfg.vocab_size)
    if dist.is_initialized():
        dist.barrier()
    tokenizer = data.Tokenizer.load(str(tok_path))
    train = codeplan.make_examples(train_problems, plans, cfg.solutions)
    valid = codeplan.make_examples(valid_problems, valid_plans, cfg.solutions)
    if len(train) < cfg.batch_size:
        raise data.DataError(f"{cfg.data}: the train split has {len(train)} examples with a ground-truth solution, "
                             f"fewer than --batch-size {cfg.batch_size}")
    return tokenizer, train, valid, valid_problems


def batch_order(examples: list[codeplan.Example], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    lengths = [len(e.problem.question) + len(e.solution) for e in examples]
    # full batches only: a short remainder would change the global batch and, split over ranks
    # and accumulation steps, could leave a micro-batch empty
    return [b for b in data.bucket_batches(lengths, batch_size, seed=seed * 1000 + epoch) if len(b) == batch_size]


def batch_at(step: int, examples, cfg: TrainConfig, cache: dict) -> list[int]:
    """The global batch of optimizer step `step`: a pure function of (seed, step), so resume is exact."""
    per_epoch = len(batch_order(examples, cfg.batch_size, cfg.seed, 0)) if "n" not in cache else cache["n"]
    cache["n"] = per_epoch
    epoch, index = divmod(step, per_epoch)
    if cache.get("epoch") != epoch:
        cache["epoch"], cache["order"] = epoch, batch_order(examples, cfg.batch_size, cfg.seed, epoch)
    return cache["order"][index]


def to_tensors(pairs, pad_id: int, device) -> dict | None:
    if not pairs:
        return None
    return {k: v.to(device, non_blocking=True) for k, v in data.collate(pairs, pad_id).items()}


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
        plan = codeplan.encode_batch(chunk, tokenizer, 1.0, 0.0, rng, cfg.max_source_len, cfg.max_target_len, trunc)["plan"]
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


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: Path, raw_model, optimizer, scaler, step: int, best: float, cfg: TrainConfig, tokenizer_path: Path) -> None:
    state = {
        "model": raw_model.state_dict(), "model_config": asdict(raw_model.config),
        "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "step": step, "best_valid_code": best, "config": asdict(cfg),
        "tokenizer": tokenizer_path.read_bytes(),
        "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "python": random.getstate(), "numpy": np.random.get_state()},
    }
    tmp = path.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def restore_rng(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"]:
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])


# the flags that define a run; the others (--stop-after, intervals, --device, ...) may change on resume
RUN_FIELDS = ("lam", "plan_in_code", "data", "plans", "solutions", "preset", "vocab_size", "steps", "batch_size",
              "grad_accum", "lr", "min_lr_ratio", "warmup", "weight_decay", "clip", "dropout", "max_source_len",
              "max_target_len", "amp", "seed")


def resume_config(cfg: TrainConfig, run_dir: Path) -> TrainConfig:
    """--resume continues a run as it was configured, so `--name NAME --resume` is enough: run flags
    left at their defaults take the run's saved values; a flag that contradicts the run is refused."""
    saved_path = run_dir / "config.json"
    if not saved_path.exists():
        return cfg   # no run there: the missing checkpoint is reported next
    saved, default, adopted = json.loads(saved_path.read_text()), TrainConfig(), {}
    for field in RUN_FIELDS:
        given = getattr(cfg, field)
        if given == saved.get(field, given):
            continue
        if given != getattr(default, field):
            flag = "--lambda" if field == "lam" else "--" + field.replace("_", "-")
            raise SystemExit(f"--resume: {flag} {given} contradicts {saved_path} ({saved[field]}); leave it out to continue the run")
        adopted[field] = saved[field]
    return replace(cfg, **adopted)


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


# ----------------------------------------------------------------------------- setup

def setup_device(cfg: TrainConfig) -> tuple[torch.device, int, int]:
    """Device, rank and world size; under torchrun, one process per rank (gloo on CPU, nccl on CUDA)."""
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    rank, world = 0, 1
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(device)
    return torch.device(device), rank, world


def autocast_for(cfg: TrainConfig, device: torch.device):
    amp = cfg.amp if cfg.amp != "auto" else ("bf16" if device.type == "cuda" else "off")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    return amp, torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def build_optimizer(model, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), fused=device.type == "cuda")


def final_pass1(raw_model, tokenizer, problems, cfg: TrainConfig) -> dict:
    """Greedy direct-code pass@1 on the valid split, scored on hidden tests in the sandbox."""
    import sandbox
    if cfg.pass1_limit > 0:
        problems = problems[: cfg.pass1_limit]
    raw_model.eval()
    sources = [codeplan.code_source(p) for p in problems]
    outputs = codeplan.generate_texts(raw_model, tokenizer, sources, "code", max_new_tokens=cfg.max_target_len,
                                      max_source=cfg.max_source_len, batch_size=64)
    verdicts = sandbox.evaluate_many([(p, out[0][0], "hidden") for p, out in zip(problems, outputs)])
    by_diff: dict[str, list[bool]] = {}
    for p, v in zip(problems, verdicts):
        by_diff.setdefault(p.difficulty, []).append(v.passed)
        if p.tier:   # per tier too, where the split has tiers (the synthetic test split)
            by_diff.setdefault(f"tier_{p.tier}", []).append(v.passed)
    result = {"valid_pass1": sum(v.passed for v in verdicts) / len(verdicts), "valid_problems": len(verdicts)}
    result.update({f"valid_pass1_{d}": sum(x) / len(x) for d, x in sorted(by_diff.items())})
    return result


# ----------------------------------------------------------------------------- training

def train(cfg: TrainConfig) -> dict:
    if cfg.resume:
        cfg = resume_config(cfg, Path(cfg.out) / cfg.name)
    device, rank, world = setup_device(cfg)
    is_main = rank == 0
    if cfg.batch_size % (world * cfg.grad_accum):
        raise SystemExit(f"--batch-size {cfg.batch_size} must divide by world size x --grad-accum = {world * cfg.grad_accum}")
    run_dir = Path(cfg.out) / cfg.name
    ckpt_path = run_dir / "last.pt"
    if is_main:
        if run_dir.exists() and not cfg.resume and (ckpt_path.exists() or (run_dir / "metrics.jsonl").exists()):
            raise SystemExit(f"{run_dir} already holds a run; pass --resume to continue it or --name for a new one")
        if cfg.resume and not ckpt_path.exists():
            raise SystemExit(f"--resume: no checkpoint at {ckpt_path}")
        run_dir.mkdir(parents=True, exist_ok=True)
        data.write_atomic(run_dir / "config.json", json.dumps({**asdict(cfg), "device": str(device), "world_size": world}, indent=2) + "\n")
    if dist.is_initialized():
        dist.barrier()

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    tokenizer, train_ex, valid_ex, valid_problems = prepare(cfg, run_dir, is_main)
    preset = cfg.preset or ("small" if device.type == "cuda" else "tiny")
    mconf = model_lib.ModelConfig.preset(preset, vocab_size=tokenizer.vocab_size, dropout=cfg.dropout,
                                         pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id)
    raw_model = model_lib.CodePlanModel(mconf).to(device)
    optimizer = build_optimizer(raw_model, cfg, device)
    amp, autocast = autocast_for(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    step, best = 0, float("inf")
    if cfg.resume:
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        raw_model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, best = state["step"], state["best_valid_code"]
        restore_rng(state["rng"])
        if is_main:
            log(f"resumed {ckpt_path} at step {step}")
    if is_main:
        log(f"{len(train_ex)} train / {len(valid_ex)} valid examples | preset {preset}, "
            f"{raw_model.num_parameters() / 1e6:.1f}M parameters | vocab {tokenizer.vocab_size} | {device}, amp {amp}, world {world}")
    loss_module = codeplan.MultiTaskLoss(torch.compile(raw_model) if cfg.compile else raw_model, cfg.lam)
    if world > 1:
        # the plan head gets no gradient at lambda 0 (and the code path none at lambda 1)
        loss_module = torch.nn.parallel.DistributedDataParallel(loss_module, find_unused_parameters=True)

    metrics_path = run_dir / "metrics.jsonl"
    if is_main and cfg.resume and metrics_path.exists():
        # drop lines a killed run logged after its last checkpoint, so the log reads as one run
        kept = [l for l in metrics_path.read_text().splitlines() if l.strip() and json.loads(l)["step"] <= step]
        data.write_atomic(metrics_path, "".join(l + "\n" for l in kept))
    interrupted = {"flag": False}
    previous_handler = signal.signal(signal.SIGINT, lambda *_: interrupted.update(flag=True))

    cache, trunc, end = {}, {}, min(cfg.steps, cfg.stop_after or cfg.steps)
    window = {"tokens": 0, "time": time.time(), "code": [], "plan": []}
    n_params = raw_model.num_parameters()
    raw_model.train()
    stop = False
    while step < end and not stop:
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch_ids = batch_at(step, train_ex, cfg, cache)[rank::world]
        rng = random.Random(cfg.seed * 1_000_003 + step)
        micro = [batch_ids[i::cfg.grad_accum] for i in range(cfg.grad_accum)]
        for i, ids in enumerate(micro):
            pairs = codeplan.encode_batch([train_ex[j] for j in ids], tokenizer, cfg.lam, cfg.plan_in_code, rng,
                                          cfg.max_source_len, cfg.max_target_len, trunc)
            batch = {task: to_tensors(pairs[task], tokenizer.pad_id, device) for task in ("code", "plan")}
            window["tokens"] += sum(len(s) + len(t) for task in ("code", "plan") for s, t in pairs[task]) * world
            sync = world == 1 or i == len(micro) - 1
            with (contextlib.nullcontext() if sync else loss_module.no_sync()), autocast:
                loss, parts = loss_module(batch)
                scaler.scale(loss / cfg.grad_accum).backward()
            if world > 1:
                # log the loss of the global batch, not rank 0's shard: the mean over the ranks that had each task
                sums = torch.tensor([[float(parts[t]), 1.0] if t in parts else [0.0, 0.0] for t in ("code", "plan")], device=device)
                dist.all_reduce(sums)
                parts = {t: sums[i, 0] / sums[i, 1] for i, t in enumerate(("code", "plan")) if sums[i, 1] > 0}
            for task, value in parts.items():
                window[task].append(float(value))
        scaler.unscale_(optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.clip if cfg.clip > 0 else float("inf")))
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        stop = interrupted["flag"]
        if world > 1:
            # all ranks stop after the same step, or one would wait forever in the next all-reduce
            flag = torch.tensor(float(stop), device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag)

        if is_main and (step % cfg.log_interval == 0 or step == end):
            elapsed = time.time() - window["time"]
            rec = {"step": step, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": window["tokens"] / elapsed}
            for task in ("code", "plan"):
                if window[task]:
                    rec[f"loss_{task}"] = sum(window[task]) / len(window[task])
            rec["loss"] = (1 - cfg.lam) * rec.get("loss_code", 0.0) + cfg.lam * rec.get("loss_plan", 0.0)
            peak = next((v for k, v in PEAK_FLOPS.items() if device.type == "cuda" and k in torch.cuda.get_device_name(device)), None)
            if peak:
                rec["mfu"] = 6 * n_params * rec["tokens_per_s"] / (world * peak)
            steps_per_s = (step % cfg.log_interval or cfg.log_interval) / elapsed
            rec["eta_s"] = (end - step) / steps_per_s
            with open(metrics_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            log(f"step {step}/{cfg.steps} | L_code {rec.get('loss_code', float('nan')):.4f} L_plan {rec.get('loss_plan', float('nan')):.4f} "
                f"total {rec['loss']:.4f} | lr {lr:.2e} | gnorm {grad_norm:.2f} | {rec['tokens_per_s'] / 1e3:.1f}k tok/s"
                + (f" | MFU {rec['mfu']:.1%}" if "mfu" in rec else "") + f" | ETA {rec['eta_s'] / 60:.1f} min")
            window = {"tokens": 0, "time": time.time(), "code": [], "plan": []}
        if is_main and (step % cfg.eval_interval == 0 or step == cfg.steps):
            vl = valid_losses(raw_model, tokenizer, valid_ex, cfg, device, autocast)
            with open(metrics_path, "a") as f:
                f.write(json.dumps({"step": step, **vl}) + "\n")
            log(f"step {step} | " + " ".join(f"{k} {v:.4f}" for k, v in vl.items()))
            if vl.get("valid_code", float("inf")) < best:
                best = vl["valid_code"]
                save_checkpoint(run_dir / "best.pt", raw_model, optimizer, scaler, step, best, cfg, run_dir / "tokenizer.model")
        if is_main and (step % cfg.save_interval == 0 or step == end or stop):
            save_checkpoint(ckpt_path, raw_model, optimizer, scaler, step, best, cfg, run_dir / "tokenizer.model")

    summary = {"step": step, "best_valid_code": best if best < float("inf") else None, "truncated": trunc}   # JSON has no Infinity
    if stop:
        if is_main:
            log(f"interrupted: saved {ckpt_path} at step {step}; continue with --name {cfg.name} --resume")
        summary["interrupted"] = True
    elif is_main and step == cfg.steps and cfg.pass1_limit >= 0:
        summary.update(final_pass1(raw_model, tokenizer, valid_problems, cfg))
        per_difficulty = " ".join(f"{k.removeprefix('valid_pass1_')} {v:.3f}" for k, v in summary.items() if k.startswith("valid_pass1_"))
        log(f"final greedy pass@1 on {summary['valid_problems']} valid problems (direct code): {summary['valid_pass1']:.3f} | {per_difficulty}")
    if is_main:
        if trunc:
            log(f"truncated examples: {trunc}")
        data.write_atomic(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    signal.signal(signal.SIGINT, previous_handler)   # a caller in the same process gets Ctrl-C back
    if dist.is_initialized():
        dist.destroy_process_group()
    return summary


def main(argv=None) -> None:
    cfg = parse_args(argv)
    try:
        summary = train(cfg)
    except (data.DataError, teacher.TeacherError) as e:
        print(f"train.py: {e}", file=sys.stderr)
        sys.exit(2)
    if summary.get("interrupted"):
        sys.exit(130)


if __name__ == "__main__":
    main()
