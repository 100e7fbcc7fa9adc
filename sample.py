"""Plan sampling with a trained checkpoint, and the pass@k report.

    python sample.py --n 16                   # best.pt of the most recently finished run, synthetic test split
    python sample.py --run NAME --n 0         # direct code, no plan (the fine-tuning baseline), runs/NAME/best.pt
    python sample.py --n 1 --greedy-plan      # plan-guided decoding with the most likely plan
    python sample.py --plans-from plans.jsonl # condition on given plans (e.g. the teacher's)
    python sample.py --data mbpp:PATH --split test --checkpoint runs/NAME/best.pt

    python sample.py --n 16 --shard 0/4 --out DIR   # a quarter of the problems (run 1/4, 2/4, 3/4 alike)
    python sample.py --merge DIR [DIR ...]          # the report of all shards (run on any machine)
    python sample.py --n 16 --generate-only         # candidates only, no program is run (a GPU step)

Per problem it samples N plans with the plan head, M programs per plan with the code head,
runs the public tests on every program, and ranks the distinct programs by public-test pass
rate, then by log-probability (--rank-by). Hidden tests score every candidate. Two numbers are
reported, with the names the literature uses:
  n@S     (AlphaCode): a problem is solved when one of the n best-ranked distinct programs out of
          the S samples drawn passes; 1@S is the method's answer (the top candidate).
  pass@k  (Chen et al.): the unbiased estimator over all S samples, which ignores the ranking.
Identical programs are ranked once (the report counts how many samples were copies).

Crash-safe and resumable: each problem's candidates and verdicts are appended to an fsynced
journal (journal.jsonl, or journal-IofN.jsonl for --shard I/N) as soon as its tests have run; a
rerun with the same settings skips the problems already there and samples the others exactly as
an uninterrupted run would, and N shards sample what one process would (each batch of problems
has its own seeded random stream; same device and thread count assumed). The output
folder, default <run>/sample-<split>-<mode>/, records the checkpoint and the settings in
config.json and refuses a rerun with other ones. An unsharded run ends with samples.jsonl,
samples_results.jsonl and report.md; sharded runs are combined by --merge, which also runs the
candidates of --generate-only journals (public and hidden tests; no model, no GPU). The
samples.jsonl of a --generate-only run can also be scored by `python sandbox.py --samples`.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch

import checkpoint
import cli
import codeplan
import data
import judge
import model as model_lib
import sandbox
import score
import teacher
from journal import Journal
from problems import DataError, Problem, provenance, write_atomic
from tokenizer import load_tokenizer, run_tokenizer_path, tokenizer_snapshot

DEFAULT_KS = (1, 2, 5, 10, 16, 100)


def parse_args(argv=None) -> argparse.Namespace:
    p = cli.Parser(__doc__)
    p.add_argument("--checkpoint", default="", help="a .pt file from train.py")
    p.add_argument("--run", default="", help="a run folder name under --runs: use its best.pt. Default (neither "
                   "--checkpoint nor --run): best.pt of the run that finished most recently (printed)")
    p.add_argument("--runs", default="runs", help="folder holding train.py's run folders")
    p.add_argument("--data", default="", help="NAME or NAME:PATH; default the checkpoint's training data "
                   "(with --merge: where the data is on this machine, if it moved)")
    p.add_argument("--split", default="test", help="split to sample on (synthetic: train/valid/test)")
    p.add_argument("--n", type=cli.number(int, 0), default=16, help="plans per problem; 0 = direct code with no plan")
    p.add_argument("--samples-per-plan", type=cli.number(int, 1), default=1, help="programs per plan (M); greedy when 1, sampled otherwise")
    p.add_argument("--greedy-plan", action="store_true", help="decode the plan greedily (use with --n 1)")
    p.add_argument("--plans-from", default="", help="plans file (teacher.py format): condition on these plans instead "
                   "of sampling; every problem uses as many as the problem with the fewest has")
    p.add_argument("--allow-untrained-plan-head", action="store_true", help="sample plans from a checkpoint trained "
                   "with lambda 0, whose plan head never learned anything (refused without this flag)")
    p.add_argument("--temperature", type=cli.number(float, 0), default=0.6, help="sampling temperature for plans (and programs when M > 1); 0 = greedy")
    p.add_argument("--top-p", type=cli.number(float, 0, 1, low_open=True), default=0.95, help="nucleus sampling threshold")
    p.add_argument("--max-new-tokens", type=cli.number(int, 0), default=0, help="tokens per plan and per program; 0 = "
                   "each head's cap from the checkpoint: its longest training target + 25%% + 8, at most the "
                   "training target length")
    p.add_argument("--k", default="", help="comma-separated n and k for n@S and pass@k, each between 1 and S, the "
                   "samples per problem; default those of " + ",".join(map(str, DEFAULT_KS)) + " that are <= S")
    p.add_argument("--rank-by", default="logprob", choices=codeplan.RANKINGS, help="after the public-test pass rate, "
                   "rank by the summed log-probability of plan and program, or by its mean per generated token")
    p.add_argument("--limit", type=cli.number(int, 0), default=0, help="only the first N problems; 0 = all")
    p.add_argument("--shard", default="0/1", help="I/N: this process samples the I-th of N interleaved shares of "
                   "the problems (I from 0); combine the shards with --merge")
    p.add_argument("--generate-only", action="store_true", help="write the candidates without running any program; "
                   "--merge (or sandbox.py --samples) runs them later")
    p.add_argument("--merge", nargs="+", default=[], metavar="DIR", help="build the report from these sample folders' "
                   "journals (all shards, same settings), running candidates that were not run yet")
    p.add_argument("--per-tier", type=cli.number(int, 0), help="synthetic test split: only the first N problems of each tier; "
                   "0 = all; default 10 on CPU (so the main command fits 15 minutes on 2 cores), all on CUDA")
    p.add_argument("--batch-size", type=cli.number(int, 1), default=128, help="sequences decoded at once (part of the settings: "
                   "it decides which problems share a random stream)")
    p.add_argument("--timeout", type=cli.number(float, 0, low_open=True), default=4.0, help="seconds per test in the sandbox")
    p.add_argument("--allow-weak-isolation", action="store_true", help="run programs even where the sandbox lacks "
                   "isolation layers (no root and no unprivileged user namespaces); refused without this flag")
    p.add_argument("--format", default="", choices=("",) + score.WRITE_FORMATS, help="also write the samples for "
                   "another harness: humaneval (task_id + completion), evalplus (task_id + solution) or bigcode "
                   "(generations.json, a list of programs per problem)")
    p.add_argument("--workers", type=cli.number(int, 0), default=0, help="sandbox workers; 0 = one per core on CUDA, half the cores on CPU")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--out", default="", help="output folder; default <run>/sample-<split>-<mode> (with --merge: the first DIR)")
    p.add_argument("--show", type=cli.number(int, 0), default=0, metavar="K", help="print, for the first K problems, the statement and every "
                   "distinct candidate in rank order: its plan, its program, public-test pass rate and hidden verdict")
    args = p.parse_args(argv)
    try:
        if args.k and min(int(x) for x in args.k.split(",")) < 1:
            raise ValueError
    except ValueError:
        p.error(f"--k must be comma-separated integers >= 1, got {args.k!r}")
    if args.greedy_plan and args.n != 1:
        p.error("--greedy-plan decodes one plan: use it with --n 1")
    if args.checkpoint and args.run:
        p.error("--checkpoint and --run both name a checkpoint: pass one")
    try:
        index, count = (int(x) for x in args.shard.split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        p.error(f"--shard must be I/N with 0 <= I < N, e.g. 0/4; got {args.shard!r}")
    args.shard_index, args.shard_count = index, count
    return args


def parse_ks(text: str, samples: int) -> list[int]:
    """The --k list: explicit values must be integers in 1..S; the default keeps those <= S."""
    if not text:
        return [k for k in DEFAULT_KS if k <= samples]
    try:
        ks = [int(x) for x in text.split(",")]
    except ValueError:
        cli.fail(f"sample.py: --k must be comma-separated integers, got {text!r}")
    bad = [k for k in ks if not 1 <= k <= samples]
    if bad:
        cli.fail(f"sample.py: --k {text}: {', '.join(map(str, bad))} not between 1 and {samples}, the samples "
                         f"per problem (n@S and pass@k need 1 <= k <= S)")
    return sorted(set(ks))


# ----------------------------------------------------------------------------- the checkpoint

def finished_run_checkpoint(runs: Path) -> Path:
    """best.pt of the run whose training finished last (summary.json written, training not interrupted;
    a Ctrl-C in the final pass@1 after training leaves a finished run)."""
    finished = []
    for summary in runs.glob("*/summary.json"):
        record = json.loads(summary.read_text())
        if (summary.parent / "best.pt").exists() and (record.get("training_finished") or not record.get("interrupted")):
            finished.append((summary.stat().st_mtime, summary.parent / "best.pt"))
    if not finished:
        cli.fail(f"sample.py: no finished run with a best.pt under {runs}/; train one first "
                         f"(python train.py --lambda 0.5) or pass --run NAME or --checkpoint FILE")
    return max(finished)[1]


def choose_checkpoint(args) -> Path:
    if args.checkpoint:
        path = Path(args.checkpoint)
    elif args.run:
        path = Path(args.runs) / args.run / "best.pt"
    else:
        path = finished_run_checkpoint(Path(args.runs))
        print(f"sample.py: checkpoint {path}: best.pt of the most recently finished run "
              f"(choose another with --run NAME or --checkpoint FILE)", file=sys.stderr)
    if not path.is_file():
        cli.fail(f"sample.py: {path}: no such checkpoint file")
    return path


def load_checkpoint(path: Path, device: torch.device):
    """(the model, its tokenizer, the run's training config, each head's longest training target or None)."""
    try:
        state = checkpoint.load(path, device)
    except model_lib.CheckpointError as e:
        cli.fail(f"sample.py: {e}")
    model = model_lib.CodePlanModel(model_lib.ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    tok_path = run_tokenizer_path(path.parent, pretrained=bool(state["config"].get("init")))
    if not tok_path.exists() or tokenizer_snapshot(tok_path) != state["tokenizer"]:
        cli.fail(f"sample.py: {tok_path} is missing or differs from the tokenizer saved in {path}")
    return model.to(device).eval(), load_tokenizer(tok_path), state["config"], state.get("longest_target")


def decoding_caps(max_new_tokens: int, longest: dict[str, int] | None, max_target_len: int, ckpt: Path) -> dict[str, int]:
    """Tokens each head may decode: --max-new-tokens when given, else codeplan.decoding_cap of the head's
    longest training target; a checkpoint that records none (saved before they were) decodes up to max_target_len."""
    if max_new_tokens:
        return {head: max_new_tokens for head in model_lib.HEADS}
    if longest is None:
        print(f"sample.py: {ckpt} records no longest training targets: plans and programs decode up to its "
              f"max_target_len, {max_target_len} tokens", file=sys.stderr)
        longest = {}
    return {head: codeplan.decoding_cap(longest.get(head), max_target_len) for head in model_lib.HEADS}


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def problems_digest(problems: list[Problem]) -> str:
    """Which problems, in which order: ids and statements."""
    text = "\n".join(f"{p.id}\t{teacher.question_digest(p)}" for p in problems)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def first_per_tier(problems, n: int) -> list:
    """The first n problems of each tier, in split order (a fixed subset); problems without a tier stay."""
    taken: dict[str, int] = {}
    kept = []
    for p in problems:
        taken[p.tier] = taken.get(p.tier, 0) + 1
        if not p.tier or taken[p.tier] <= n:
            kept.append(p)
    return kept


def select(problems, per_tier: int, limit: int) -> list:
    """The problems a run scores: the first per_tier of each tier (0: all), then the first `limit` (0: all)."""
    problems = first_per_tier(problems, per_tier) if per_tier else problems
    return problems[:limit] if limit else problems


def mode_name(args) -> str:
    if args.plans_from:
        return f"given-plans-m{args.samples_per_plan}"
    if args.n == 0:
        return f"direct-m{args.samples_per_plan}"
    return f"n{args.n}-m{args.samples_per_plan}" + ("-greedy" if args.greedy_plan else "")


# ----------------------------------------------------------------------------- the journal
# One JSON line per finished problem: {"task_id", "batch", "scored", "candidates": [Candidate fields]},
# appended through journal.Journal (crash-safe, a torn last line repaired by the next run).
# {"invocation": ...} lines log each finished run.

def journal_name(shard_index: int, shard_count: int) -> str:
    return "journal.jsonl" if shard_count == 1 else f"journal-{shard_index}of{shard_count}.jsonl"


def open_journal(path: Path) -> Journal:
    journal = Journal(str(path))
    if journal.repair:
        print(f"sample.py: warning: {journal.repair}", file=sys.stderr)
    return journal


def read_journal(path: Path) -> tuple[dict[str, dict], list[dict]]:
    """task_id -> its record (a scored one over an unscored one), and the invocation records."""
    lines = path.read_bytes().split(b"\n")
    records: dict[str, dict] = {}
    invocations = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):   # no newline after it: a torn append, repaired by the next writer
                continue
            cli.fail(f"sample.py: {path}: line {number} is not JSON")
        if "invocation" in record:
            invocations.append(record["invocation"])
        elif record["scored"] or record["task_id"] not in records:
            records[record["task_id"]] = record
    return records, invocations


def problem_record(problem: Problem, batch: int, candidates: list[codeplan.Candidate], scored: bool) -> dict:
    return {"task_id": problem.id, "batch": batch, "scored": scored,
            "candidates": [dataclasses.asdict(c) for c in candidates]}


def candidates_of(record: dict) -> list[codeplan.Candidate]:
    return [codeplan.Candidate(**c) for c in record["candidates"]]


# ----------------------------------------------------------------------------- the settings of a sample folder

def settings_check(out: Path, config: dict) -> None:
    """Write config.json into a new folder; a folder made with other settings is refused."""
    path = out / "config.json"
    if not path.exists():
        write_atomic(path, json.dumps(config, indent=2) + "\n")
        return
    saved = json.loads(path.read_text()).get("settings", {})
    differ = [f"{k}: {saved.get(k)!r} there, {v!r} here" for k, v in config["settings"].items() if saved.get(k) != v]
    if differ:
        cli.fail(f"sample.py: {out} holds samples made with other settings ({'; '.join(differ)}); "
                         f"pass another --out, or remove that folder")


def merged_config(folders: list[Path]) -> dict:
    configs = []
    for folder in folders:
        if not (folder / "config.json").exists():
            cli.fail(f"sample.py: --merge: {folder} has no config.json (not a sample.py folder)")
        configs.append(json.loads((folder / "config.json").read_text()))
    for folder, config in zip(folders[1:], configs[1:]):
        differ = sorted(k for k in configs[0]["settings"] if config["settings"].get(k) != configs[0]["settings"][k])
        if differ:
            cli.fail(f"sample.py: --merge: {folder} was sampled with other settings than {folders[0]} "
                             f"({', '.join(differ)})")
    return configs[0]


# ----------------------------------------------------------------------------- sampling

def sample(args) -> Path:
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    ckpt = choose_checkpoint(args)
    model, tokenizer, train_cfg, longest = load_checkpoint(ckpt, device)
    uses_plan_head = args.n > 0 and not args.plans_from
    if uses_plan_head and train_cfg.get("lam") == 0 and not args.allow_untrained_plan_head:
        cli.fail(f"sample.py: {ckpt} was trained with lambda 0: its plan head never learned, so --n {args.n} "
                         f"would sample plans from random weights. Use --n 0 (direct code) or --plans-from, or pass "
                         f"--allow-untrained-plan-head to sample anyway")
    spec = args.data or train_cfg["data"]
    per_tier = args.per_tier if args.per_tier is not None else (10 if device.type == "cpu" else 0)
    try:
        problems = select(data.load_problems(spec, args.split), per_tier, args.limit)
        given = teacher.read_plans(args.plans_from, problems) if args.plans_from else None
    except (DataError, teacher.TeacherError) as e:
        cli.fail(f"sample.py: {e}")
    if given is not None:
        # a problem with no given plan would have no candidate and silently drop out of pass@k
        missing = [p.id for p in problems if not given.get(p.id)]
        if missing:
            cli.fail(f"sample.py: {args.plans_from} has no plan for {len(missing)} of the {len(problems)} "
                             f"problems (e.g. {', '.join(missing[:5])})")
        # n@S needs the same S for every problem
        plans_per_problem = min(len(given[p.id]) for p in problems)
        dropped = sum(len(given[p.id]) - plans_per_problem for p in problems)
        if dropped:
            print(f"sample.py: every problem uses its first {plans_per_problem} given plans ({dropped} left unused)",
                  file=sys.stderr)
        given = {p.id: given[p.id][:plans_per_problem] for p in problems}
    else:
        plans_per_problem = max(1, args.n)
    samples_per_problem = plans_per_problem * args.samples_per_plan
    parse_ks(args.k, samples_per_problem)   # a bad --k fails now, not after hours of sampling
    caps = decoding_caps(args.max_new_tokens, longest, train_cfg["max_target_len"], ckpt)
    out = Path(args.out) if args.out else ckpt.parent / f"sample-{args.split}-{mode_name(args)}"
    out.mkdir(parents=True, exist_ok=True)
    # what decides the samples; paths are kept aside, so shards on other machines can be merged
    settings = {"checkpoint_sha256": file_digest(ckpt), "split": args.split, "problems_digest": problems_digest(problems),
                "n": args.n, "samples_per_plan": args.samples_per_plan, "greedy_plan": args.greedy_plan,
                "plans_sha256": file_digest(Path(args.plans_from)) if args.plans_from else None,
                "temperature": args.temperature, "top_p": args.top_p, "sampler": model_lib.SAMPLER,
                "max_new_tokens": caps,
                "max_source_len": train_cfg["max_source_len"], "batch_size": args.batch_size, "seed": args.seed,
                "timeout": args.timeout, "samples_per_problem": samples_per_problem}
    settings_check(out, {"settings": settings, **provenance(), "checkpoint": str(ckpt), "data": spec, "split": args.split,
                         "limit": args.limit, "per_tier": per_tier, "problems": len(problems), "mode": mode_name(args),
                         "plans_from": args.plans_from or None})

    # batches of whole problems over the full list, dealt to the shards in turn: a problem's batch and
    # random stream are the same for any number of shards and any rerun
    per_batch = max(1, args.batch_size // max(plans_per_problem, args.samples_per_plan))
    batches = [(b, problems[start:start + per_batch]) for b, start in enumerate(range(0, len(problems), per_batch))]
    mine = [(b, chunk) for b, chunk in batches if b % args.shard_count == args.shard_index]
    journal_path = out / journal_name(args.shard_index, args.shard_count)
    done = set(read_journal(journal_path)[0]) if journal_path.exists() else set()
    todo = [(b, chunk) for b, chunk in mine if any(p.id not in done for p in chunk)]
    total = sum(len(chunk) for _, chunk in mine)
    cores = os.cpu_count() or 1
    # on CPU, generation needs the cores more than the sandbox, which is idle most of the time
    workers = args.workers or (cores if device.type == "cuda" else max(1, cores // 2))
    print(f"{ckpt} | {spec} {args.split}: {len(problems)} problems, shard {args.shard} has {total}, {len(done)} done "
          f"earlier | mode {mode_name(args)} | at most {caps['plan']} plan, {caps['code']} program tokens | {device} "
          f"-> {journal_path}", file=sys.stderr)

    started, last_print = time.time(), 0.0
    timing: dict = {}
    batch_of = {p.id: b for b, chunk in mine for p in chunk}
    journal = open_journal(journal_path)
    pool = None if args.generate_only else sandbox.Pool(workers=workers, timeout=args.timeout,
                                                        allow_weak_isolation=allows_weak_isolation(args))
    try:
        finished = 0
        # bf16 on CUDA, as in training; CPU decodes in fp32
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            for problem, cands in codeplan.plan_sample(
                    model, tokenizer, todo, pool, n=args.n, samples_per_plan=args.samples_per_plan,
                    greedy_plan=args.greedy_plan, given_plans=given, temperature=args.temperature, top_p=args.top_p,
                    max_plan_tokens=caps["plan"], max_code_tokens=caps["code"], max_source=train_cfg["max_source_len"],
                    batch_size=args.batch_size,
                    seed=args.seed, skip=frozenset(done), timing=timing):
                journal.append(problem_record(problem, batch_of[problem.id], cands, scored=pool is not None))
                finished += 1
                if time.time() - last_print > 10 or len(done) + finished == total:
                    last_print, rate = time.time(), finished / (time.time() - started)
                    print(f"  {len(done) + finished}/{total} problems | {rate:.2f} problems/s | "
                          f"ETA {(total - len(done) - finished) / rate / 60:.1f} min", file=sys.stderr, flush=True)
        journal.append({"invocation": {"checkpoint": str(ckpt), "data": spec, "shard": args.shard, "device": str(device),
                                       "sandbox_workers": 0 if pool is None else workers,
                                       "torch_threads": torch.get_num_threads(), "generate_only": args.generate_only,
                                       "problems": finished, "wall_s": round(time.time() - started, 3),
                                       **{k: round(v, 3) for k, v in timing.items()}}})
    finally:
        journal.close()
        if pool is not None:
            pool.close()
    return out


# ----------------------------------------------------------------------------- the report

def gather(folders: list[Path], problems: list[Problem], workers: int, timeout: float,
           allow_weak: bool) -> tuple[list[list[codeplan.Candidate]], list[dict]]:
    """Every problem's candidates from the folders' journals, each problem once; candidates that were
    not run yet (--generate-only) are run now and their verdicts journaled (resumable too)."""
    found: dict[str, tuple[Path, dict]] = {}
    invocations = []
    for folder in folders:
        for path in sorted(folder.glob("journal*.jsonl")):
            records, runs = read_journal(path)
            invocations += runs
            for tid, record in records.items():
                # the same problem in two journals (an unsharded run, then shards): same settings and batch,
                # so the same samples; the scored record is kept
                if tid not in found or (record["scored"] and not found[tid][1]["scored"]):
                    found[tid] = (path, record)
    missing = [p.id for p in problems if p.id not in found]
    if missing:
        cli.fail(f"sample.py: {len(missing)} of the {len(problems)} problems have no record in "
                         f"{', '.join(map(str, folders))} yet (e.g. {', '.join(missing[:5])}): run the missing "
                         f"shards (or rerun the interrupted one) first")
    unscored = [p for p in problems if not found[p.id][1]["scored"]]
    if unscored:
        print(f"sample.py: running the candidates of {len(unscored)} problems that were generated only",
              file=sys.stderr)
        journals: dict[Path, Journal] = {}
        try:
            with sandbox.Pool(workers=workers, timeout=timeout, allow_weak_isolation=allow_weak) as pool:
                running = [(p, *found[p.id], candidates_of(found[p.id][1])) for p in unscored]
                running = [(p, path, record, cands, codeplan.submit_tests(pool, p, cands))
                           for p, path, record, cands in running]
                for p, path, record, cands, futures in running:
                    codeplan.record_tests(cands, futures)
                    if path not in journals:
                        journals[path] = open_journal(path)
                    scored = problem_record(p, record["batch"], cands, scored=True)
                    journals[path].append(scored)
                    found[p.id] = (path, scored)
        finally:
            for journal in journals.values():
                journal.close()
    return [candidates_of(found[p.id][1]) for p in problems], invocations


def show(problems, ranked, k: int) -> str:
    """What the method does on K problems: the statement, then each candidate as the ranking ordered it.
    The public-test pass rate is what ranked it; the hidden verdict is only the score, shown beside it."""
    def indent(text: str | None) -> str:
        return "\n".join("    " + line for line in (text or "").rstrip().splitlines()) or "    (empty)"

    blocks = []
    for p, cands in list(zip(problems, ranked))[:k]:
        lines = [f"=== problem {p.id} ({p.difficulty}{', ' + p.tier if p.tier else ''}): "
                 f"{len(cands)} candidates, {len(p.public_tests)} public tests", indent(p.question)]
        for rank, c in enumerate(cands):
            public = "no public tests" if c.public is None else f"public tests passed {100 * c.public:.0f}%"
            lines.append(f"--- rank {rank} | plan {c.plan_id if c.plan_id is not None else '-'} | {public} | "
                         f"hidden: {'PASSED' if c.passed else c.status} | log-prob {c.logprob:.2f}")
            if c.plan is not None:
                lines += ["  plan:", indent(c.plan)]
            lines += ["  program:", indent(c.code)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def allows_weak_isolation(args) -> bool:
    """--allow-weak-isolation, or the sandbox's environment variable (CODEPLAN_SANDBOX_ALLOW_WEAK=1)."""
    return args.allow_weak_isolation or sandbox.weak_isolation_allowed_by_env()


def report(folders: list[Path], args) -> str:
    config = merged_config(folders)
    out = Path(args.out) if args.out and args.merge else folders[0]
    spec = args.data or config["data"]
    try:
        problems = data.load_problems(spec, config["split"])
    except DataError as e:
        cli.fail(f"sample.py: {e}")
    problems = select(problems, config.get("per_tier", 0), config["limit"])
    if problems_digest(problems) != config["settings"]["problems_digest"]:
        cli.fail(f"sample.py: {spec} {config['split']} does not hold the problems {folders[0]} was sampled on")
    if out not in folders:
        out.mkdir(parents=True, exist_ok=True)
        settings_check(out, {**config, "merged_from": [str(f) for f in folders]})
    samples_per_problem = config["settings"]["samples_per_problem"]
    ks = parse_ks(args.k, samples_per_problem)
    workers = args.workers or max(1, (os.cpu_count() or 1) // 2)
    candidates, invocations = gather(folders, problems, workers, config["settings"]["timeout"], allows_weak_isolation(args))
    metrics = codeplan.pass_at_k_report(problems, candidates, ks, args.rank_by)

    samples, results = [], []
    for p, cands in zip(problems, candidates):
        copies: dict[str, list[codeplan.Candidate]] = {}
        for c in cands:
            copies.setdefault(codeplan.program_key(c.code), []).append(c)
        for rank, best in enumerate(codeplan.rank_candidates(cands, args.rank_by)):
            same = copies[codeplan.program_key(best.code)]
            for c in [best] + [c for c in same if c is not best]:
                samples.append({"task_id": p.id, "code": c.code, "plan": c.plan, "plan_id": c.plan_id, "rank": rank,
                                "duplicate": c is not best, "logprob": c.logprob, "tokens": c.tokens,
                                "public_pass_rate": c.public})
                results.append(score.result_row(p.id, c, rank=rank, plan_id=c.plan_id))
    write_atomic(out / "samples.jsonl", "".join(json.dumps(row) + "\n" for row in samples))
    write_atomic(out / "samples_results.jsonl", "".join(json.dumps(row) + "\n" for row in results))
    if args.format:
        name = "generations.json" if args.format == "bigcode" else f"samples.{args.format}.jsonl"
        score.write_samples(samples, out / name, args.format, problems)

    header = [name for name in metrics["all"] if "@" in name]
    table = ["| group | problems | " + " | ".join(header) + " |", "|" + "---|" * (len(header) + 2)]
    table += [f"| {name} | {row['problems']} | " + " | ".join(f"{100 * row[h]:.1f}" for h in header) + " |"
              for name, row in metrics.items()]
    no_public = sum(not p.public_tests for p in problems)
    duplicates = metrics["all"]["duplicates"]
    lines = [f"checkpoint {config['checkpoint']}, {spec} {config['split']}, mode {config['mode']}, {len(problems)} "
             f"problems, S = {samples_per_problem} samples each; in %", "",
             f"n@{samples_per_problem} (AlphaCode): one of the n best-ranked distinct programs passes the hidden tests "
             f"(ranked by public tests, then {args.rank_by}; 1@{samples_per_problem} is the method's answer). "
             f"pass@k: the unbiased estimator over all {samples_per_problem} samples, ignoring the ranking.", "",
             *table, "",
             f"{duplicates} of {len(problems) * samples_per_problem} samples repeated an earlier program of their "
             f"problem and were ranked once; {no_public} problems without public tests ranked by {args.rank_by} only"]
    lines.append(judge.format_status_counts(judge.status_counts(c.status for cands in candidates for c in cands)))
    accuracy = codeplan.plan_accuracy(problems, candidates) if config["settings"]["n"] > 0 and not config["settings"]["plans_sha256"] else {}
    if accuracy:   # sampled plans, and the data knows the right ones (the synthetic benchmark)
        metrics["plan_accuracy"] = accuracy
        lines += ["", "Plan accuracy (no program run): the share of distinct sampled plans whose steps are the reference "
                  "plan's (case, punctuation and per-step notes aside), and of problems where at least one is, in %:", "",
                  "| group | problems | plans | right plans | problems with a right plan |", "|---|---|---|---|---|"]
        lines += [f"| {name} | {row['problems']} | {row['plans']} | {100 * row['right']:.1f} | {100 * row['any_right']:.1f} |"
                  for name, row in accuracy.items()]
    if all(c.tests for cands in candidates for c in cands):
        average, strict = judge.apps_accuracy({p.id: [c.tests for c in cands] for p, cands in zip(problems, candidates)})
        lines.append(f"APPS test case average {100 * average:.1f}%, strict accuracy {100 * strict:.1f}% "
                     f"(per program, averaged over each problem's {samples_per_problem} samples, then over problems)")
        metrics["all"].update({"test_case_average": average, "strict_accuracy": strict})
    finished = [i for i in invocations if i["problems"]]
    if finished:
        lines.append(f"sampling ({len(finished)} finished invocations): generation "
                     f"{sum(i['generate_s'] for i in finished):.0f} s, waiting for the sandbox after generation "
                     f"{sum(i['execute_wait_s'] for i in finished):.0f} s, wall {sum(i['wall_s'] for i in finished):.0f} s "
                     f"for {sum(i['problems'] for i in finished)} problems")
    write_atomic(out / "report.md", "\n".join(lines) + "\n")
    write_atomic(out / "report.json", json.dumps({"rank_by": args.rank_by, "ks": ks, "metrics": metrics, **provenance()},
                                                 indent=2) + "\n")
    if args.show:
        print(show(problems, [codeplan.rank_candidates(c, args.rank_by) for c in candidates], args.show) + "\n")
    print(f"wrote {out}/", file=sys.stderr)
    return "\n".join(lines)


def write_generated(out: Path, journal_path: Path, samples_name: str) -> None:
    """The candidates of a --generate-only journal as a samples file: {"task_id", "code", ...} per program."""
    records, _ = read_journal(journal_path)
    rows = [{"task_id": tid, "code": c["code"], "plan": c["plan"], "plan_id": c["plan_id"], "candidate": j,
             "logprob": c["logprob"], "tokens": c["tokens"]}
            for tid, record in records.items() for j, c in enumerate(record["candidates"])]
    write_atomic(out / samples_name, "".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {out / samples_name}: {len(rows)} programs of {len(records)} problems, not run yet: "
          f"python sample.py --merge {out}  (or python sandbox.py --samples {out / samples_name})", file=sys.stderr)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        cli.interrupted("sample.py: interrupted; the journal keeps every problem finished so far: rerun the same "
                        "command to continue")


def run(args) -> None:
    if args.merge:
        print(report([Path(d) for d in args.merge], args))
        return
    out = sample(args)
    if args.generate_only:
        suffix = "" if args.shard_count == 1 else f"-{args.shard_index}of{args.shard_count}"
        write_generated(out, out / journal_name(args.shard_index, args.shard_count), f"samples{suffix}.jsonl")
    elif args.shard_count == 1:
        print(report([out], args))
    else:
        print(f"shard {args.shard} done; once every shard is: python sample.py --merge {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
