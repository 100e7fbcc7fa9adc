"""Plan sampling with a trained checkpoint, and the pass@k report.

    python sample.py --n 16                   # newest checkpoint under runs/, synthetic test split
    python sample.py --n 0                    # direct code, no plan (the fine-tuning baseline)
    python sample.py --n 1 --greedy-plan      # plan-guided decoding with the most likely plan
    python sample.py --plans-from plans.jsonl # condition on given plans (e.g. the teacher's)
    python sample.py --data mbpp:PATH --split test --checkpoint runs/NAME/best.pt

Per problem it samples N plans with the plan head, M programs per plan with the code head,
runs the public tests on every program, and ranks the candidates by public-test pass rate,
then by log-probability. Hidden tests score every candidate. Two numbers are reported, with
their labels: filtered pass@k (a top-k candidate of the ranked list passes; filtered pass@1 is
the top candidate, the method's answer) and raw pass@k (the unbiased estimator over all N x M
samples, which ignores the ranking). Output goes to <run>/sample-<split>-<mode>/: config.json,
samples.jsonl, samples_results.jsonl and report.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

import codeplan
import data
import model as model_lib
import sandbox
import teacher


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="", help="a .pt file from train.py; default the newest under --runs")
    p.add_argument("--runs", default="runs", help="folder searched for the newest checkpoint")
    p.add_argument("--data", default="", help="NAME or NAME:PATH; default the checkpoint's training data")
    p.add_argument("--split", default="test", help="split to sample on (synthetic: train/valid/test)")
    p.add_argument("--n", type=int, default=16, help="plans per problem; 0 = direct code with no plan")
    p.add_argument("--samples-per-plan", type=int, default=1, help="programs per plan (M); greedy when 1, sampled otherwise")
    p.add_argument("--greedy-plan", action="store_true", help="decode the plan greedily (use with --n 1)")
    p.add_argument("--plans-from", default="", help="plans file (teacher.py format): condition on these plans instead of sampling")
    p.add_argument("--temperature", type=float, default=0.6, help="sampling temperature for plans (and programs when M > 1)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling threshold")
    p.add_argument("--max-new-tokens", type=int, default=0, help="tokens per plan or program; default the checkpoint's target length")
    p.add_argument("--k", default="1,2,5,10,16,100", help="comma-separated k for pass@k (only k <= samples per problem are reported)")
    p.add_argument("--limit", type=int, default=0, help="only the first N problems; 0 = all")
    p.add_argument("--per-tier", type=int, default=-1, help="synthetic test split: only the first N problems of each tier; "
                   "0 = all; default 40 on CPU (so the main command fits 15 minutes on 2 cores), all on CUDA")
    p.add_argument("--batch-size", type=int, default=128, help="sequences decoded at once")
    p.add_argument("--timeout", type=float, default=4.0, help="seconds per test in the sandbox")
    p.add_argument("--workers", type=int, default=0, help="sandbox workers; 0 = one per core on CUDA, half the cores on CPU")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--out", default="", help="output folder; default <run>/sample-<split>-<mode>")
    args = p.parse_args(argv)
    if args.n < 0 or args.samples_per_plan < 1:
        p.error("--n must be >= 0 and --samples-per-plan >= 1")
    if args.greedy_plan and args.n != 1:
        p.error("--greedy-plan decodes one plan: use it with --n 1")
    return args


def newest_checkpoint(runs: Path) -> Path:
    found = sorted(runs.glob("*/*.pt"), key=lambda f: f.stat().st_mtime)
    if not found:
        raise SystemExit(f"sample.py: no checkpoint under {runs}/; train one first: python train.py --lambda 0.5")
    return found[-1]


def load_checkpoint(path: Path, device: torch.device):
    state = torch.load(path, map_location=device, weights_only=False)
    model = model_lib.CodePlanModel(model_lib.ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    tok_path = path.parent / "tokenizer.model"
    if not tok_path.exists() or tok_path.read_bytes() != state["tokenizer"]:
        raise SystemExit(f"sample.py: {tok_path} is missing or differs from the tokenizer saved in {path}")
    return model.to(device).eval(), data.Tokenizer.load(str(tok_path)), state["config"]


def first_per_tier(problems, n: int) -> list:
    """The first n problems of each tier, in split order (a fixed subset); problems without a tier stay."""
    taken: dict[str, int] = {}
    kept = []
    for p in problems:
        taken[p.tier] = taken.get(p.tier, 0) + 1
        if not p.tier or taken[p.tier] <= n:
            kept.append(p)
    return kept


def mode_name(args) -> str:
    if args.plans_from:
        return f"given-plans-m{args.samples_per_plan}"
    if args.n == 0:
        return f"direct-m{args.samples_per_plan}"
    return f"n{args.n}-m{args.samples_per_plan}" + ("-greedy" if args.greedy_plan else "")


DIFFICULTIES = ("introductory", "interview", "competition")   # table rows in this order, then any others


def report_table(problems, ranked, ks: list[int]) -> str:
    by_difficulty: dict[str, list[int]] = {}
    by_tier: dict[str, list[int]] = {}   # the synthetic test split's tiers; real benchmarks have none
    for i, p in enumerate(problems):
        by_difficulty.setdefault(p.difficulty, []).append(i)
        if p.tier:
            by_tier.setdefault(p.tier, []).append(i)
    order = sorted(by_difficulty, key=lambda d: (DIFFICULTIES.index(d) if d in DIFFICULTIES else len(DIFFICULTIES), d))
    groups = {"all": list(range(len(problems))), **{d: by_difficulty[d] for d in order},
              **{f"tier {t}": by_tier[t] for t in sorted(by_tier)}}
    rows, header = [], None
    for name, idx in groups.items():
        metrics = codeplan.pass_at_k_report([ranked[i] for i in idx], ks)
        header = header or list(metrics)
        rows.append(f"| {name} | {len(idx)} | " + " | ".join(f"{100 * metrics.get(h, float('nan')):.1f}" for h in header) + " |")
    head = "| split | problems | " + " | ".join(header) + " |"
    return "\n".join([head, "|" + "---|" * (len(header) + 2)] + rows)


def main(argv=None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    ckpt = Path(args.checkpoint) if args.checkpoint else newest_checkpoint(Path(args.runs))
    model, tokenizer, train_cfg = load_checkpoint(ckpt, device)
    spec = args.data or train_cfg["data"]
    try:
        problems = data.load_problems(spec, args.split)
        given = teacher.read_plans(Path(args.plans_from)) if args.plans_from else None
    except (data.DataError, teacher.TeacherError) as e:
        raise SystemExit(f"sample.py: {e}")
    per_tier = args.per_tier if args.per_tier >= 0 else (40 if device.type == "cpu" else 0)
    problems = first_per_tier(problems, per_tier) if per_tier else problems
    problems = problems[: args.limit] if args.limit else problems
    if given is not None:
        # a problem with no given plan would have no candidate and silently drop out of pass@k
        missing = [p.id for p in problems if not given.get(p.id)]
        if missing:
            raise SystemExit(f"sample.py: {args.plans_from} has no plan for {len(missing)} of the {len(problems)} "
                             f"problems (e.g. {', '.join(missing[:5])})")
    plans_per_problem = min((len(given[p.id]) for p in problems), default=1) if given is not None else max(1, args.n)
    samples_per_problem = plans_per_problem * args.samples_per_plan
    ks = sorted(k for k in (int(x) for x in args.k.split(",")) if 1 <= k <= samples_per_problem)
    out = Path(args.out) if args.out else ckpt.parent / f"sample-{args.split}-{mode_name(args)}"
    out.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    # on CPU, generation needs the cores more than the sandbox, which is idle most of the time
    workers = args.workers or (cores if device.type == "cuda" else max(1, cores // 2))
    config = {**vars(args), "checkpoint": str(ckpt), "data": spec, "problems": len(problems), "per_tier": per_tier, "k": ks, "device": str(device),
              "sandbox_workers": workers, "torch_threads": torch.get_num_threads()}
    data.write_atomic(out / "config.json", json.dumps(config, indent=2) + "\n")
    print(f"{ckpt} | {spec} {args.split}: {len(problems)} problems | mode {mode_name(args)} | {device}", file=sys.stderr)

    started = time.time()

    def progress(done: int, total: int) -> None:
        rate = done / (time.time() - started)
        print(f"  generated {done}/{total} problems | {rate:.2f} problems/s | ETA {(total - done) / rate / 60:.1f} min",
              file=sys.stderr, flush=True)

    generator = torch.Generator(device=device).manual_seed(args.seed)
    with sandbox.Pool(workers=workers, timeout=args.timeout) as pool:
        ranked, timing = codeplan.plan_sample(
            model, tokenizer, problems, pool, n=args.n, samples_per_plan=args.samples_per_plan,
            greedy_plan=args.greedy_plan, given_plans=given, temperature=args.temperature, top_p=args.top_p,
            max_new_tokens=args.max_new_tokens or train_cfg["max_target_len"], max_source=train_cfg["max_source_len"],
            batch_size=args.batch_size, generator=generator, progress=progress)
    wall = time.time() - started

    samples, results = [], []
    for p, cands in zip(problems, ranked):
        for rank, c in enumerate(cands):
            samples.append({"task_id": p.id, "code": c.code, "plan": c.plan, "plan_id": c.plan_id, "rank": rank,
                            "logprob": c.logprob, "public_pass_rate": c.public})
            results.append(sandbox.result_row(p.id, c, rank=rank, plan_id=c.plan_id))
    data.write_atomic(out / "samples.jsonl", "".join(json.dumps(row) + "\n" for row in samples))
    data.write_atomic(out / "samples_results.jsonl", "".join(json.dumps(row) + "\n" for row in results))

    no_public = sum(not p.public_tests for p in problems)
    table = report_table(problems, ranked, ks)
    lines = [f"checkpoint {ckpt}, {spec} {args.split}, mode {mode_name(args)}, {len(problems)} problems, "
             f"{samples_per_problem} samples each; pass@k in %", "",
             "filtered = ranked by public tests then log-probability (pass@1 is the method's answer); "
             "raw = unbiased estimator over all samples", "", table, "",
             f"{len(problems) / wall:.2f} problems/s; wall {wall:.0f} s: generation {timing['generate_s']:.0f} s, "
             f"waiting for the sandbox after generation {timing['execute_wait_s']:.0f} s; "
             f"{no_public} problems without public tests ranked by log-probability only"]
    data.write_atomic(out / "report.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}/", file=sys.stderr)


if __name__ == "__main__":
    main()
