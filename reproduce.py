"""Reproduce the paper's research questions at small scale on the synthetic benchmark.

    python reproduce.py --cpu --jobs 2 # 2-core CPU, about 3 hours, resumable: the run that answers RQ1 with 3 seeds
    python reproduce.py --gpu          # one GPU, several runs sharing the card: the same table at a larger budget
    python reproduce.py                # everything: + lambda sweep, training on corrupted plans, every test problem
    python reproduce.py --cpu --dry-run        # print every command and the expected time, run nothing
    python reproduce.py --cpu --report-only    # rebuild the tables from the runs finished so far

Arms (how the model is trained), each for every seed with the same steps x batch and one shared
tokenizer (trained here once per dataset, passed to train.py with --tokenizer, so vocabularies and
parameter counts are equal):
  ft              fine-tuning: lambda 0, code only
  ft-flops        fine-tuning trained for --flops-ratio times the steps: CodePLAN's training FLOPs
  codeplan-paper  CodePLAN as in the paper: lambda 0.5, code inputs never hold a plan (--plan-in-code 0)
  codeplan        CodePLAN as this reference trains it: lambda 0.5, a plan in some code inputs, so that
                  plan-guided decoding is in distribution
  lambda0.25, lambda0.75, corrupted   (full run only) the lambda sweep, and training on corrupted plans
Decodings (how it writes code): direct; direct with k samples ranked by public tests (k = 4, 16);
greedy plan; plan sampling N = 1, 4, 16; given reference plans (an upper bound); given corrupted
reference plans (RQ2 stand-in: how much a worse plan hurts).

Matched baselines: every decoding is compared with the fine-tuning decoding that has as many
candidates and the same ranking (MATCHED: greedy plan and N=1 against greedy direct code, N=k
against k direct samples ranked by public tests), once at equal steps (ft) and once at equal
training FLOPs (ft-flops), by the paired difference in pass@1 with a bootstrap 95% interval that
resamples seeds and problems; a difference whose interval holds 0 is "no measurable difference".
Plan accuracy (codeplan.plan_accuracy): the share of sampled plans whose steps are the reference
plan's, and of problems where at least one of the N is.

Choose on valid, report on test. First each arm's learning rate is chosen from the mode's grid
by the valid pass@1 of the arm's selection decoding (seed 0; ft-flops takes fine-tuning's);
the grid, the scores and the choice go to OUT/<mode>/selection.json and selection.md, and are
then fixed. Only after that are the test problems read, and each final configuration (arm, seed,
decoding) is scored on them once, from its last checkpoint (no checkpoint is chosen).

RQ1: CodePLAN vs fine-tuning. RQ2 (stand-in; the authors compare teacher LLMs): corrupted plans, a
share of each plan's steps dropped, swapped or replaced by another plan's step. RQ3: the number of
plans N. RQ4: every number per test tier, statement style and difficulty.

Every arm reports its optimizer steps, direct and plan-guided code examples, plan examples,
training FLOPs and wall time (read from train.py's summary.json; "n/a" where it lacks the key).
Learning curves: step checkpoints (train.py --save-every) of fine-tuning and CodePLAN are scored
with direct code and N=4 plan sampling.

train.py and sample.py run as subprocesses, as a user would run them (--jobs of them at a time):
each gets a clean process and its own log, a crash in one cannot take the others with it, a
finished run is skipped on rerun and an interrupted training run resumes; the tables are rewritten
after every finished run, so an unfinished mode can be committed and continued later.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import cli
import codeplan
import data
import teacher
import train
from problems import DataError, Problem, provenance, write_atomic
from tokenizer import Tokenizer

HERE = Path(__file__).resolve().parent
PYTHON = [sys.executable]   # the interpreter (and wrapper, in tests) that runs train.py and sample.py
TIERS = ("seen-chain", "new-chain", "held-pair")
PLAN_IN_CODE = train.TrainConfig().plan_in_code


class ReproduceError(Exception):
    pass


@dataclass(frozen=True)
class Arm:
    label: str
    flags: tuple[str, ...]
    decodings: tuple[str, ...]
    select: str = "greedy-plan"   # the decoding whose valid pass@1 chooses the learning rate; "" = take fine-tuning's
    plans: str = "reference"      # the training plans: "reference" or "corrupted"
    flops_matched: bool = False   # trained for --flops-ratio times the steps


FT_DECODINGS = ("direct", "direct-m4", "direct-m16")
ALL_PLAN = ("direct", "greedy-plan", "n1", "n4", "n16", "ref-plans", "corrupted-plans")
ARMS = {
    "ft": Arm("fine-tuning (lambda 0)", ("--lambda", "0"), FT_DECODINGS, select="direct"),
    "ft-flops": Arm("fine-tuning (lambda 0), CodePLAN's training FLOPs", ("--lambda", "0"), FT_DECODINGS, select="", flops_matched=True),
    "codeplan-paper": Arm("CodePLAN lambda 0.5, no plan in code inputs (paper)", ("--lambda", "0.5", "--plan-in-code", "0"), ALL_PLAN, select="direct"),
    "codeplan": Arm("CodePLAN lambda 0.5, plan in {share} of code inputs", ("--lambda", "0.5", "--plan-in-code", f"{PLAN_IN_CODE:g}"), ALL_PLAN),
    "lambda0.25": Arm("CodePLAN lambda 0.25", ("--lambda", "0.25", "--plan-in-code", f"{PLAN_IN_CODE:g}"), ("direct", "n16")),
    "lambda0.75": Arm("CodePLAN lambda 0.75", ("--lambda", "0.75", "--plan-in-code", f"{PLAN_IN_CODE:g}"), ("direct", "n16")),
    "corrupted": Arm("CodePLAN lambda 0.5 trained on corrupted plans", ("--lambda", "0.5", "--plan-in-code", f"{PLAN_IN_CODE:g}"),
                     ("direct", "n16", "ref-plans"), plans="corrupted"),
}
FINE_TUNING = ("ft", "ft-flops")   # the baselines: at equal steps, at equal training FLOPs


def arm_label(arm: str, share: float = PLAN_IN_CODE) -> str:
    """The arm's name in tables; `share` is the --plan-in-code its runs were trained with, which a results
    folder made before train.py's default changed records in its config.json (see write_report)."""
    return ARMS[arm].label.format(share=f"{share:g}")


CURVES = {"ft": ("direct",), "codeplan": ("direct", "n4")}   # learning curves: arm -> decodings

REFERENCE, CORRUPTED = "<reference plans of the scored test problems>", "<corrupted reference plans>"   # see plan_tasks
DECODINGS = {
    "direct": ("direct code", ("--n", "0")),
    "direct-m4": ("direct code, 4 samples ranked by public tests", ("--n", "0", "--samples-per-plan", "4")),
    "direct-m16": ("direct code, 16 samples ranked by public tests", ("--n", "0", "--samples-per-plan", "16")),
    "greedy-plan": ("greedy plan", ("--n", "1", "--greedy-plan")),
    "n1": ("plan sampling N=1", ("--n", "1")),
    "n4": ("plan sampling N=4", ("--n", "4")),
    "n16": ("plan sampling N=16", ("--n", "16")),
    "ref-plans": ("given reference plans (upper bound)", ("--plans-from", REFERENCE)),
    "corrupted-plans": ("given corrupted reference plans", ("--plans-from", CORRUPTED)),
}
# decoding -> the fine-tuning decoding with as many candidates and the same ranking (one candidate: none)
MATCHED = {"direct": "direct", "direct-m4": "direct-m4", "direct-m16": "direct-m16", "greedy-plan": "direct", "n1": "direct",
           "n4": "direct-m4", "n16": "direct-m16", "ref-plans": "direct", "corrupted-plans": "direct"}
# A run's cost before any was timed, for the estimate printed before starting: seconds per training step
# by arm and per scored problem by decoding, on the 2-core CPU at --jobs 2, one thread per run
# (results/cpu/timings.json, benchmark v4, 2026-12-06); timings.json replaces them as runs finish.
PRIOR_SECONDS = {"train ft": 1.23, "train ft-flops": 1.23, "train codeplan-paper": 2.15, "train codeplan": 1.85,
                 "train lambda0.25": 1.85, "train lambda0.75": 1.85, "train corrupted": 1.85,
                 "direct": 0.13, "direct-m4": 0.24, "direct-m16": 0.67, "greedy-plan": 0.19, "n1": 0.2, "n4": 0.45,
                 "n16": 1.23, "ref-plans": 0.13, "corrupted-plans": 0.13}
# CodePLAN's training FLOPs per step over fine-tuning's on benchmark v4: 2.06 with a plan in 0.9 of the code
# inputs, 1.95 without (results/cpu, 3 seeds). results/cpu itself ran with 2.7, measured on the older
# benchmark. The cost table prints each arm's measured FLOPs beside it.
FLOPS_RATIO = 2.0


@dataclass(frozen=True)
class Mode:
    """What a mode (--cpu, --gpu, full) runs: the arms, the decodings each arm is scored with, and the budget."""
    arms: tuple[str, ...]
    decodings: dict[str, tuple[str, ...]] | None   # arm -> decodings; None = each arm's own list
    steps: int
    batch_size: int
    problems: int        # test problems scored, spread evenly over the tiers; 0 = all
    valid_problems: int  # valid problems that score the learning-rate grid, spread alike
    lr_factors: tuple[float, ...]   # the grid: multiples of train.py's learning rate for the preset; (1,) = no choice
    seeds: int
    curve_every: int     # steps between learning-curve checkpoints; 0 = no curves
    jobs: int            # runs at a time


MATCHED_ARMS = ("ft", "ft-flops", "codeplan-paper", "codeplan")
MATCHED_DECODINGS = {"ft": FT_DECODINGS, "ft-flops": FT_DECODINGS, "codeplan-paper": ("direct", "greedy-plan"),
                     "codeplan": ("direct", "greedy-plan", "n1", "n4", "n16", "ref-plans")}
MODES = {
    # 2 CPU cores; 2.7 h of wall time at --jobs 2 for results/cpu (--dry-run prints the estimate)
    "cpu": Mode(MATCHED_ARMS, MATCHED_DECODINGS, steps=400, batch_size=16, problems=210, valid_problems=90,
                  lr_factors=(0.5, 1.0, 2.0), seeds=3, curve_every=200, jobs=1),
    # one GPU shared by several runs (the small preset, train.py's CUDA defaults). 8 at a time ran out of
    # memory on an 80 GB H100 (a small-preset training at batch 64 took up to 18 GB), so 4
    "gpu": Mode(MATCHED_ARMS, None, steps=200, batch_size=64, problems=150, valid_problems=150,
                  lr_factors=(0.5, 1.0, 2.0), seeds=3, curve_every=100, jobs=4),
    "full": Mode(tuple(ARMS), None, steps=train.TrainConfig().steps, batch_size=train.TrainConfig().batch_size,
                   problems=0, valid_problems=300, lr_factors=(0.5, 1.0, 2.0), seeds=3,
                   curve_every=train.TrainConfig().steps // 4, jobs=1),
}
# flags reproduce.py sets itself, refused in --train-args / --sample-args
TRAIN_SET = {"--lambda", "--plan-in-code", "--seed", "--name", "--out", "--steps", "--batch-size", "--resume", "--plans",
             "--pass1-limit", "--tokenizer", "--save-every", "--data", "--vocab-size", "--lr"}
SAMPLE_SET = {"--checkpoint", "--out", "--seed", "--data", "--split", "--limit", "--n", "--greedy-plan", "--plans-from",
              "--samples-per-plan", "--workers"}


def parse_args(argv=None) -> argparse.Namespace:
    d = train.TrainConfig()
    p = cli.Parser(__doc__)
    modes = p.add_mutually_exclusive_group()
    modes.add_argument("--cpu", action="store_true", help="RQ1-RQ4 on a 2-core CPU in about 3 hours at --jobs 2, resumable: 4 arms x 3 seeds, "
                      "a learning-rate grid chosen on valid, 70 test problems per tier")
    modes.add_argument("--gpu", action="store_true", help="RQ1-RQ4 on one CUDA GPU, 4 runs sharing the card (not yet timed end to end)")
    p.add_argument("--seeds", type=cli.number(int, 1), help="seeds per arm (0 .. SEEDS-1); training and sampling seed alike; default the mode's")
    p.add_argument("--steps", type=cli.number(int, 1), help="optimizer steps per training run, equal for every arm but ft-flops; default the mode's")
    p.add_argument("--batch-size", type=cli.number(int, 1), help="problems per optimizer step, equal for every arm; default the mode's")
    p.add_argument("--problems", type=cli.number(int, 0), help="test problems scored, the same for every arm: the first "
                   "PROBLEMS/T of each of the T test tiers, in split order; 0 = all; default the mode's")
    p.add_argument("--valid-problems", type=cli.number(int, 1), help="valid problems that score the learning-rate grid, "
                   "the first VALID_PROBLEMS/T of each tier; default the mode's")
    p.add_argument("--lr-factors", default="", help="comma-separated multiples of train.py's learning rate for the preset: "
                   "the grid each arm's rate is chosen from on valid; '1' = no grid; default the mode's")
    p.add_argument("--flops-ratio", type=cli.number(float, 1), default=FLOPS_RATIO, help="ft-flops trains this many times the "
                   "steps: CodePLAN's training FLOPs per step over fine-tuning's")
    p.add_argument("--curve-every", type=cli.number(int, 0), help="steps between the step checkpoints scored for the learning curves; 0 = none; default the mode's")
    p.add_argument("--jobs", type=cli.number(int, 1), help="runs at a time (they share the cores, or the GPU); default the mode's")
    p.add_argument("--arms", default="", help=f"comma-separated arms from {', '.join(ARMS)}; default the mode's")
    p.add_argument("--decodings", default="", help=f"comma-separated decodings from {', '.join(DECODINGS)}: keep only these; default the mode's")
    p.add_argument("--data", default="synthetic", help="the synthetic benchmark, or synthetic:PATH for a file of it")
    p.add_argument("--vocab-size", type=cli.number(int, 1), default=d.vocab_size, help="size of the one tokenizer every arm shares")
    p.add_argument("--corrupt-share", type=cli.number(float, 0, 1, low_open=True), default=0.5, help="share of each plan's steps corrupted, in the corrupted plans")
    p.add_argument("--bootstrap", type=cli.number(int, 100), default=2000, help="bootstrap draws for each 95%% interval")
    p.add_argument("--train-args", default="", help="extra flags for every train.py call, e.g. '--preset small'")
    p.add_argument("--sample-args", default="", help="extra flags for every sample.py call, e.g. '--batch-size 256'")
    p.add_argument("--out", default="results", help="results folder; the mode writes to OUT/cpu, OUT/gpu or OUT/full")
    p.add_argument("--dry-run", action="store_true", help="print the commands and the expected time, run nothing")
    p.add_argument("--report-only", action="store_true", help="run nothing; rebuild the tables from the runs finished so far")
    args = p.parse_args(argv)
    args.mode = "cpu" if args.cpu else "gpu" if args.gpu else "full"
    mode = MODES[args.mode]
    for name in ("seeds", "steps", "batch_size", "problems", "valid_problems", "curve_every", "jobs"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(mode, name))
    try:
        args.lr_factors = [float(x) for x in args.lr_factors.split(",") if x] or list(mode.lr_factors)
    except ValueError:
        p.error(f"--lr-factors: expected comma-separated numbers, got '{args.lr_factors}'")
    if not all(0 < f < 100 for f in args.lr_factors) or len(set(args.lr_factors)) < len(args.lr_factors):
        p.error(f"--lr-factors: expected distinct numbers between 0 and 100, got '{','.join(map(str, args.lr_factors))}'")
    given = train.parse_args(shlex.split(args.train_args))   # the grid scales the learning rate train.py would use
    args.base_lr = train.INIT_LR if given.init else \
        train.PRESET_LR[given.preset or train.DEVICE_DEFAULTS["cuda" if args.gpu else "cpu"]["preset"]]
    args.arms = [a for a in args.arms.split(",") if a] or list(mode.arms)
    keep = [x for x in args.decodings.split(",") if x]
    for flag, names, known in (("--arms", args.arms, ARMS), ("--decodings", keep, DECODINGS)):
        if unknown := [n for n in names if n not in known]:
            p.error(f"{flag}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    own = mode.decodings or {}
    args.decodings = {a: [x for x in own.get(a, ARMS[a].decodings) if not keep or x in keep] for a in args.arms}
    for flag, fixed in (("--train-args", TRAIN_SET), ("--sample-args", SAMPLE_SET)):
        if given := fixed & {a.split("=")[0] for a in shlex.split(getattr(args, flag[2:].replace("-", "_")))}:
            p.error(f"{flag}: reproduce.py sets {', '.join(sorted(given))} itself")
    if "ft-flops" in args.arms and "ft" not in args.arms:
        p.error("--arms: ft-flops takes fine-tuning's learning rate, so it needs the ft arm too")
    if args.data.partition(":")[0] != "synthetic":
        p.error("--data: the arms train on reference plans, which only the synthetic benchmark has")
    return args


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


# ----------------------------------------------------------------------------- corrupted plans (RQ2 stand-in)

def corrupt_plan(plan: str, share: float, rng: random.Random, foreign_steps: list[str],
                 ops: tuple[str, ...] = ("drop", "swap", "replace")) -> str:
    """round(share * steps) steps (at least one) are each dropped, swapped with a neighbour, or replaced
    by a step that is not in this plan; the result is renumbered and, for share > 0, never the input."""
    steps = [" ".join(lines) for lines in teacher.split_steps(plan)[0] if lines]
    if share <= 0:
        return teacher.format_steps(steps)

    def foreign() -> str:
        for _ in range(1000):
            step = rng.choice(foreign_steps)
            if step not in steps:
                return step
        raise ValueError("corrupt_plan: no foreign step differs from this plan's steps")

    k = min(len(steps), max(1, round(share * len(steps))))
    for _ in range(20):  # swaps can cancel out or exchange equal steps: draw again
        items = [[step, False] for step in steps]  # [text, dropped]
        for i in rng.sample(range(len(steps)), k):
            op = rng.choice(ops)
            if (op == "drop" and sum(d for _, d in items) == len(steps) - 1) or (op == "swap" and len(steps) < 2):
                op = "replace"  # keep at least one step; a single step cannot be swapped
            if op == "drop":
                items[i][1] = True
            elif op == "swap":
                j = i + 1 if i + 1 < len(items) else i - 1
                items[i], items[j] = items[j], items[i]
            else:
                items[i][0] = foreign()
        result = [text for text, dropped in items if not dropped]
        if result != steps:
            return teacher.format_steps(result)
    return teacher.format_steps([foreign()] + steps[1:])


def write_corrupted_plans(problems: list[Problem], path: Path, share: float, seed: int) -> None:
    """A plans file in teacher.py's format; each problem's corruption depends only on (seed, problem id)."""
    plans = {p.id: teacher.normalise_reference(p.reference_plan) for p in problems}
    pool = sorted({" ".join(s) for plan in plans.values() for s in teacher.split_steps(plan)[0] if s})
    lines = []
    for task_id, plan in plans.items():
        rng = random.Random(f"{seed}:{task_id}")
        lines.append(json.dumps({"task_id": task_id, "plan": corrupt_plan(plan, share, rng, pool), "mode": "corrupted",
                                 "model": f"reference-corrupted-{share:g}", "prompt_version": None, "solution_index": None,
                                 "status": "ok", "reason": "", "usage": {}, "corruption": {"share": share, "seed": seed}}))
    write_atomic(path, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- inputs shared by every run

@dataclass(frozen=True)
class Inputs:
    """Files under OUT/<mode>/inputs/; each name carries the settings it depends on, so that other
    settings write other files (and a run folder's stamp then refuses to mix them)."""
    root: Path
    problems: int
    vocab_size: int
    share: float
    valid_problems: int = 0

    @classmethod
    def of(cls, args, root: Path) -> "Inputs":
        return cls(root, args.problems, args.vocab_size, args.corrupt_share, args.valid_problems)

    @property
    def tokenizer(self) -> Path:
        return self.root / "inputs" / f"tokenizer-{self.vocab_size}.model"

    @property
    def valid(self) -> Path:
        return self.root / "inputs" / f"valid-{self.valid_problems}.jsonl"

    @property
    def test_problems(self) -> Path:
        return self.root / "inputs" / f"test-{self.problems or 'all'}.jsonl"

    @property
    def test_reference(self) -> Path:
        return self.root / "inputs" / f"test-{self.problems or 'all'}-reference-plans.jsonl"

    def test_corrupted(self, seed: int) -> Path:
        return self.root / "inputs" / f"test-{self.problems or 'all'}-corrupted{self.share:g}-seed{seed}.jsonl"

    def train_corrupted(self, seed: int) -> Path:
        return self.root / "inputs" / f"train-corrupted{self.share:g}-seed{seed}.jsonl"


def scored_problems(problems: list[Problem], count: int) -> list[Problem]:
    """The first count/T problems of each of the T tiers (T = 1 where problems have no tier), in split order."""
    if count == 0:
        return problems
    by_tier: dict[str, list[Problem]] = {}
    for p in problems:
        by_tier.setdefault(p.tier, []).append(p)
    per_tier = count // len(by_tier)
    if per_tier == 0 or any(len(ps) < per_tier for ps in by_tier.values()):
        sizes = ", ".join(f"{t or 'untiered'} {len(ps)}" for t, ps in by_tier.items())
        raise ReproduceError(f"--problems {count}: cannot take {count}/{len(by_tier)} problems from each tier ({sizes})")
    chosen = {p.id for ps in by_tier.values() for p in ps[:per_tier]}
    return [p for p in problems if p.id in chosen]


def write_problems(path: Path, problems: list[Problem], split: str) -> None:
    write_atomic(path, "".join(json.dumps({"split": split, **p.to_dict()}) + "\n" for p in problems))


def prepare_training_inputs(args, inputs: Inputs) -> None:
    """What training and the choice on valid need, unless it exists: the one tokenizer every arm trains
    with, the corrupted training plans and the valid problems that score the grid. Reads no test problem."""
    train_problems = None
    if "corrupted" in args.arms:
        for seed in range(args.seeds):
            if not inputs.train_corrupted(seed).exists():
                train_problems = train_problems or data.load_problems(args.data, "train")
                write_corrupted_plans(train_problems, inputs.train_corrupted(seed), args.corrupt_share, seed)
    if not inputs.tokenizer.exists():
        # the corpus of a lambda > 0 run: code inputs, solutions and the reference plans, so plans tokenize well in every arm
        train_problems = train_problems or data.load_problems(args.data, "train")
        plans = {p.id: [teacher.normalise_reference(p.reference_plan)] for p in train_problems if p.reference_plan}
        log(f"training the shared tokenizer ({args.vocab_size} pieces) on {len(train_problems)} train problems")
        Tokenizer.train(train.tokenizer_corpus(train_problems, plans), str(inputs.tokenizer), args.vocab_size)
    if len(args.lr_factors) > 1 and not inputs.valid.exists():
        write_problems(inputs.valid, scored_problems(data.load_problems(args.data, "valid"), args.valid_problems), "valid")


def prepare_test_inputs(args, inputs: Inputs) -> None:
    """The scored test problems, their reference plans and the corrupted ones, unless they exist.
    main calls this only once the choices on valid are fixed (selection.json)."""
    if not inputs.test_problems.exists():
        write_problems(inputs.test_problems, scored_problems(data.load_problems(args.data, "test"), args.problems), "test")
    test = data.load_problems(f"synthetic:{inputs.test_problems}", "test")
    if not inputs.test_reference.exists():
        teacher.write_reference_plans(test, str(inputs.test_reference))
    for seed in range(args.seeds):
        if not inputs.test_corrupted(seed).exists():
            write_corrupted_plans(test, inputs.test_corrupted(seed), args.corrupt_share, seed)


# ----------------------------------------------------------------------------- runs

@dataclass
class Task:
    name: str          # <run>, <run>/<decoding>, <run>/<decoding>@<step> or <run>/valid-<decoding>
    arm: str
    seed: int
    decoding: str      # "" for a training run
    step: int          # the checkpoint's step (sampling) or the steps to train
    folder: Path
    argv: list[str]    # script and flags, paths relative to HERE
    after: str = ""    # the training run this sampling run needs
    units: int = 0     # what its time scales with: steps trained, or problems scored
    split: str = "test"
    lr: float = 0.0    # the training run's learning rate

    @property
    def kind(self) -> str:
        """Runs of one kind take about as long per unit: the unit of the time estimate."""
        return f"train {self.arm}" if not self.decoding else self.decoding

    def finished(self) -> bool:
        if not self.decoding:
            summary = self.folder / "summary.json"
            if not summary.exists():
                return False
            s = json.loads(summary.read_text())
            return not s.get("interrupted") and s.get("step") == self.step
        return (self.folder / "report.md").exists() and (self.folder / "samples_results.jsonl").exists()

    def check_stamp(self) -> None:
        """A folder holds the outputs of exactly one command: refuse to mix settings. The sandbox
        workers only follow --jobs, which changes the speed, not the result."""
        stamp = self.folder / "reproduce-argv.json"
        at = self.argv.index("--workers") if "--workers" in self.argv else len(self.argv)
        command = self.argv[:at] + self.argv[at + 2:]
        if stamp.exists() and json.loads(stamp.read_text()) != command:
            before = " ".join(json.loads(stamp.read_text()))
            raise ReproduceError(f"{stamp}: this run was made with other settings:\n  {before}\nnow asked for:\n  "
                                 f"{' '.join(command)}\npass another --out or delete {self.folder}")
        write_atomic(stamp, json.dumps(command) + "\n")


def rel(path: Path) -> str:
    """Paths inside the checkout are kept relative, so a results folder copied with it stays valid."""
    return str(path.relative_to(HERE)) if path.is_relative_to(HERE) else str(path)


def learning_rates(args) -> list[float]:
    return [float(f"{args.base_lr * f:.3g}") for f in args.lr_factors]


def train_task(args, root: Path, arm_name: str, seed: int, lr: float) -> Task:
    """One training run. With a grid the folder and the flags name the learning rate, so the grid's
    seed-0 run of the chosen rate is the final seed-0 run, trained once."""
    arm, inputs = ARMS[arm_name], Inputs.of(args, root)
    grid = len(args.lr_factors) > 1
    run = root / "runs" / (f"{arm_name}-lr{lr:g}-seed{seed}" if grid else f"{arm_name}-seed{seed}")
    steps = round(args.steps * args.flops_ratio) if arm.flops_matched else args.steps
    argv = ["train.py", *arm.flags, "--seed", str(seed), "--name", run.name, "--out", rel(run.parent), "--data", args.data,
            "--steps", str(steps), "--batch-size", str(args.batch_size), "--tokenizer", rel(inputs.tokenizer), "--pass1-limit", "-1"]
    argv += ["--lr", f"{lr:g}"] if grid else []
    argv += ["--save-every", str(args.curve_every)] if curve_steps(args, arm_name) else []
    argv += ["--plans", rel(inputs.train_corrupted(seed))] if arm.plans == "corrupted" else []
    return Task(run.name, arm_name, seed, "", steps, run, argv + shlex.split(args.train_args), units=steps, lr=lr)


def curve_steps(args, arm_name: str) -> list[int]:
    return list(range(args.curve_every, args.steps, args.curve_every)) if args.curve_every and arm_name in CURVES else []


def sample_task(args, trained: Task, decoding: str, step: int, problems: Path, split: str, plans: dict[str, Path]) -> Task:
    # sandbox processes per sampling run: the cores shared by the runs at a time; on a CPU, half of
    # that, as sample.py does itself, since generation needs the cores more than the sandbox
    workers = max(1, (os.cpu_count() or 1) // args.jobs // (1 if args.gpu else 2))
    run = trained.folder
    if split == "valid":
        name, checkpoint, folder = f"{run.name}/valid-{decoding}", run / "last.pt", run / f"valid-{decoding}"
    elif step == trained.step:
        name, checkpoint, folder = f"{run.name}/{decoding}", run / "last.pt", run / f"sample-{decoding}"
    else:
        name, checkpoint, folder = f"{run.name}/{decoding}@{step}", run / f"step-{step}.pt", run / f"curve{step}-{decoding}"
    flags = [rel(plans[a]) if a in plans else a for a in DECODINGS[decoding][1]]
    argv = ["sample.py", "--checkpoint", rel(checkpoint), "--out", rel(folder), "--seed", str(trained.seed),
            "--data", f"synthetic:{rel(problems)}", "--split", split, "--per-tier", "0", "--workers", str(workers),
            *flags, *shlex.split(args.sample_args)]
    count = (args.valid_problems if split == "valid" else args.problems) or 1500
    return Task(name, trained.arm, trained.seed, decoding, step, folder, argv, after=run.name, units=count, split=split, lr=trained.lr)


def selection_tasks(args, root: Path) -> list[Task]:
    """The learning-rate grid: each arm (but the one that takes fine-tuning's rate) at every rate, seed 0,
    scored on the valid problems by its selection decoding. None without a grid."""
    if len(args.lr_factors) == 1:
        return []
    tasks = []
    for arm_name in args.arms:
        if ARMS[arm_name].select:
            for lr in learning_rates(args):
                trained = train_task(args, root, arm_name, 0, lr)
                tasks += [trained, sample_task(args, trained, ARMS[arm_name].select, trained.step, Inputs.of(args, root).valid, "valid", {})]
    return tasks


@dataclass(frozen=True)
class Selection:
    """The learning rate of every arm, fixed before any test problem is read (see main)."""
    lrs: dict[str, float]


def select_on_valid(args, root: Path, tasks: list[Task]) -> Selection:
    """Each arm's learning rate: the best valid pass@1 of its selection decoding over the grid; a tie goes
    to the rate nearest train.py's. Written to selection.json and selection.md; a rerun reads it back."""
    path = root / "selection.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["grid"] != learning_rates(args) or set(saved["chosen"]) != set(args.arms):
            raise ReproduceError(f"{path}: chosen for the grid {saved['grid']} and arms {', '.join(saved['chosen'])}; "
                                 "pass another --out for other settings")
        return Selection(saved["chosen"])
    if not tasks:
        chosen = {arm: args.base_lr for arm in args.arms}
        record = {"grid": learning_rates(args), "chosen": chosen, "scores": {},
                  "note": "one learning rate (train.py's for the preset): nothing chosen"}
    else:
        scores: dict[str, dict[str, float]] = {}
        for t in tasks:
            if t.decoding:
                outcomes = read_outcomes(t.folder / "samples_results.jsonl")
                scores.setdefault(t.arm, {})[f"{t.lr:g}"] = statistics.mean(top for _, _, top in outcomes.values())
        chosen = {arm: float(min(by_lr, key=lambda lr: (-by_lr[lr], abs(math.log(float(lr) / args.base_lr)), float(lr))))
                  for arm, by_lr in scores.items()}
        chosen.update({arm: chosen["ft"] for arm in args.arms if not ARMS[arm].select})
        record = {"grid": learning_rates(args), "chosen": chosen, "scores": scores,
                  "decoding": {arm: ARMS[arm].select or "fine-tuning's" for arm in args.arms},
                  "valid_problems": args.valid_problems, "steps": args.steps, "batch_size": args.batch_size, **provenance()}
        lines = [f"Learning rate of each arm, chosen on {args.valid_problems} valid problems (seed 0, {args.steps} steps x "
                 f"{args.batch_size}) by the valid pass@1 (%) of the decoding named; ties go to train.py's rate "
                 f"({args.base_lr:g}). ft-flops takes fine-tuning's rate.", "",
                 "| arm | decoding | " + " | ".join(f"lr {lr:g}" for lr in learning_rates(args)) + " | chosen |",
                 "|---|---|" + "---|" * (len(args.lr_factors) + 1)]
        for arm, by_lr in scores.items():
            lines.append(f"| {arm} | {DECODINGS[ARMS[arm].select][0]} | "
                         + " | ".join(f"{100 * by_lr[f'{lr:g}']:.1f}" for lr in learning_rates(args)) + f" | {chosen[arm]:g} |")
        write_atomic(root / "selection.md", "\n".join(lines) + "\n")
    write_atomic(path, json.dumps(record, indent=1) + "\n")
    return Selection(chosen)


def plan_tasks(args, root: Path, selection: Selection) -> list[Task]:
    """The final runs, each arm at its chosen learning rate, scored on the test problems; seed-major
    order, so that after the first seed every row of the table has a number."""
    inputs = Inputs.of(args, root)
    tasks = []
    for seed in range(args.seeds):
        for arm_name in args.arms:
            trained = train_task(args, root, arm_name, seed, selection.lrs[arm_name])
            tasks.append(trained)
            plans = {REFERENCE: inputs.test_reference, CORRUPTED: inputs.test_corrupted(seed)}
            scored = [(d, trained.step) for d in args.decodings[arm_name]]
            scored += [(d, s) for s in curve_steps(args, arm_name) for d in CURVES[arm_name] if d in args.decodings[arm_name]]
            tasks += [sample_task(args, trained, d, step, inputs.test_problems, "test", plans) for d, step in scored]
    return tasks


class Running:
    """One command in its own process, its output in the run folder. On any interruption the child
    gets SIGINT first (train.py then saves a checkpoint), so a rerun resumes it."""

    def __init__(self, task: Task, threads: int):
        self.task, self.started = task, time.time()
        task.folder.mkdir(parents=True, exist_ok=True)
        self.argv = list(task.argv)
        self.resumed = not task.decoding and (task.folder / "last.pt").exists()
        if self.resumed:
            self.argv.append("--resume")
        elif not task.decoding:
            (task.folder / "metrics.jsonl").unlink(missing_ok=True)  # killed before its first checkpoint: start over
        self.log_path = task.folder / ("train.log" if not task.decoding else "sample.log")
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads)), "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "a") as out:
            out.write(f"$ python {' '.join(self.argv)}\n")
            out.flush()
            self.proc = subprocess.Popen([*PYTHON, *self.argv], cwd=HERE, stdout=out, stderr=subprocess.STDOUT, env=env)

    def failure(self) -> str:
        tail = "".join(self.log_path.read_text().splitlines(keepends=True)[-15:])
        return f"{self.task.name}: python {' '.join(self.argv)} exited with {self.proc.returncode}; see {self.log_path}:\n{tail}"

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def format_seconds(s: float) -> str:
    return f"{s / 60:.1f} min" if s < 3600 else f"{s / 3600:.1f} h"


def run_all(tasks: list[Task], root: Path, jobs: int, finished=lambda task: None) -> None:
    """Up to `jobs` runs at a time, each sampling run after its training run; a failed run is reported
    at the end, and the runs that need it are skipped, while the others go on. `finished(task)` is
    called after each run that succeeds (main saves its outcomes there)."""
    ledger_path = root / "timings.json"
    ledger = read_json(ledger_path)
    for task in tasks:
        task.check_stamp()
    done = {t.name for t in tasks if t.finished()}
    todo = [t for t in tasks if t.name not in done]
    log(f"{len(done)} of {len(tasks)} runs finished earlier; {len(todo)} to run, {jobs} at a time; "
        f"expected {format_seconds(eta(todo, ledger, jobs))}")
    running: list[Running] = []
    failures: list[str] = []
    started = time.time()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    try:
        while todo or running:
            for task in [t for t in todo if not t.after or t.after in done][:jobs - len(running)]:
                todo.remove(task)
                log(f"[{len(tasks) - len(todo) - len(running)}/{len(tasks)}] {task.name} | elapsed "
                    f"{format_seconds(time.time() - started)} | ETA {format_seconds(eta(todo + [r.task for r in running], ledger, jobs))}")
                running.append(Running(task, threads))
            if not running:
                raise ReproduceError(f"runs waiting on a training run that is not planned: {', '.join(t.name for t in todo)}")
            time.sleep(0.2)
            for run in [r for r in running if r.proc.poll() is not None]:
                running.remove(run)
                # a resumed training run adds to its time so far; any other run starts the count again
                seconds = (ledger.get(run.task.name, {}).get("seconds", 0) if run.resumed else 0) + time.time() - run.started
                ledger[run.task.name] = {"kind": run.task.kind, "seconds": seconds, "units": run.task.units}
                write_atomic(ledger_path, json.dumps(ledger, indent=1) + "\n")
                if run.proc.returncode == 0:
                    done.add(run.task.name)
                    finished(run.task)
                    continue
                failures.append(run.failure())
                skipped = [t for t in todo if t.after == run.task.name]
                todo = [t for t in todo if t not in skipped]
                if skipped:
                    failures.append(f"skipped, as they need {run.task.name}: {', '.join(t.name for t in skipped)}")
    except BaseException:
        for run in running:
            run.interrupt()
        raise
    if failures:
        raise ReproduceError("\n".join(failures))


def eta(left: list[Task], ledger: dict, jobs: int) -> float:
    """Remaining time: each run's units (steps or problems) at the measured seconds per unit of its
    kind, or PRIOR_SECONDS before one of its kind was timed, divided by the runs at a time."""
    seconds, units = {}, {}
    for e in ledger.values():
        if e.get("units"):
            seconds[e["kind"]] = seconds.get(e["kind"], 0.0) + e["seconds"]
            units[e["kind"]] = units.get(e["kind"], 0) + e["units"]
    rate = {**PRIOR_SECONDS, **{k: seconds[k] / units[k] for k in units}}
    return sum(rate.get(t.kind, max(PRIOR_SECONDS.values())) * t.units for t in left) / jobs


# ----------------------------------------------------------------------------- scoring

@dataclass
class Record:
    """One finished sampling run: per problem, candidates n, hidden passes c, and whether the top-ranked
    one passed; for sampled plans, per problem the distinct plans and how many are the reference plan."""
    arm: str
    seed: int
    decoding: str
    step: int
    folder: str
    outcomes: dict[str, list[int]] = field(default_factory=dict)   # task id -> [n, c, top passed]
    plans: dict[str, list[int]] = field(default_factory=dict)      # task id -> [distinct plans, right ones]
    final: bool = True   # from the run's last checkpoint (else a learning-curve checkpoint)

    @property
    def candidates(self) -> int:
        return max(n for n, _, _ in self.outcomes.values())


SAMPLED_PLANS = ("greedy-plan", "n1", "n4", "n16")   # decodings whose plans come from the model's plan head


def read_outcomes(results_path: Path) -> dict[str, list[int]]:
    """Per problem [samples, hidden passes, top passed]. A program's copies share its rank; the top
    candidate's verdict is its own (the first row of rank 0), not that of a copy run again."""
    rows: dict[str, list[tuple[int, bool]]] = {}
    for line in results_path.read_text().splitlines():
        row = json.loads(line)
        rows.setdefault(str(row["task_id"]), []).append((row["rank"], row["passed"]))
    return {tid: [len(r), sum(p for _, p in r), int(next(p for rank, p in r if rank == 0))] for tid, r in rows.items()}


def read_plan_outcomes(samples_path: Path, references: dict[str, str]) -> dict[str, list[int]]:
    """Per problem [distinct sampled plans, those whose steps are the reference plan's] (codeplan.plan_is_right)."""
    plans: dict[str, dict[int, str]] = {}
    for line in samples_path.read_text().splitlines():
        row = json.loads(line)
        if row.get("plan") is not None:
            plans.setdefault(str(row["task_id"]), {})[row["plan_id"]] = row["plan"]
    return {tid: [len(by_id), sum(codeplan.plan_is_right(plan, references[tid]) for plan in by_id.values())]
            for tid, by_id in plans.items() if references.get(tid)}


def collect(tasks: list[Task], saved: dict[str, dict], references: dict[str, str]) -> list[Record]:
    """A record per finished test sampling run, from its folder; where the folder is gone (runs/ is not
    committed), from the record saved in outcomes.json."""
    records = []
    for task in tasks:
        if not task.decoding or task.split != "test":
            continue
        if task.finished():
            plans = read_plan_outcomes(task.folder / "samples.jsonl", references) if task.decoding in SAMPLED_PLANS else {}
            records.append(Record(task.arm, task.seed, task.decoding, task.step, rel(task.folder),
                                  read_outcomes(task.folder / "samples_results.jsonl"), plans, final="@" not in task.name))
        elif rel(task.folder) in saved:
            records.append(Record(**saved[rel(task.folder)]))
    return records


def groups_of(meta: dict[str, dict]) -> dict[str, set[str]]:
    """Problem ids of: all, each tier (in TIERS order), each statement style, each difficulty (in
    codeplan.DIFFICULTIES order, then others)."""
    groups = {"all": set(meta)}
    for key, order, name in (("tier", TIERS, "{}"), ("style", ("steps", "goal"), "{} style"), ("difficulty", codeplan.DIFFICULTIES, "{}")):
        values = {m.get(key, "") for m in meta.values()} - {""}
        for v in sorted(values, key=lambda v: (order.index(v) if v in order else len(order), v)):
            groups[name.format(v)] = {pid for pid, m in meta.items() if m.get(key) == v}
    return groups


def pass1(record: Record, ids: set[str]) -> float:
    """Filtered pass@1: the top-ranked candidate passes (the only candidate, for one sample)."""
    return statistics.mean(record.outcomes[i][2] for i in ids)


def raw_pass(record: Record, ids: set[str], k: int) -> float:
    return statistics.mean(codeplan.pass_at_k(*record.outcomes[i][:2], k) for i in ids)


def right_plans(record: Record, ids: set[str]) -> tuple[float, float] | None:
    """The share of sampled plans that are right, and of problems with at least one right plan."""
    counts = [record.plans[i] for i in ids if i in record.plans]
    if not counts:
        return None
    return sum(r for _, r in counts) / sum(n for n, _ in counts), sum(r > 0 for _, r in counts) / len(counts)


def paired_bootstrap(diff: np.ndarray, draws: int, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a seeds x problems matrix of paired differences, and a 95% percentile interval from
    resampling seeds and problems independently, with replacement."""
    rng = np.random.default_rng(seed)
    seeds, problems = diff.shape
    means = np.array([diff[np.ix_(rng.integers(seeds, size=seeds), rng.integers(problems, size=problems))].mean()
                      for _ in range(draws)])
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def final(records: list[Record], arm: str, decoding: str) -> list[Record]:
    """The runs of the arm's last checkpoint (ft-flops trains longer than the others), one per seed."""
    return [r for r in records if (r.arm, r.decoding) == (arm, decoding) and r.final]


def difference(records: list[Record], other: tuple[str, str], base: tuple[str, str], ids: set[str],
               draws: int) -> tuple[float, float, float] | None:
    """pass@1 of `other` minus that of `base`, paired by seed and problem; None without runs of both."""
    mine = {r.seed: r for r in final(records, *other)}
    theirs = {r.seed: r for r in final(records, *base)} if any(r.arm == base[0] for r in records) else {}
    seeds = sorted(set(mine) & set(theirs))
    if not seeds or not ids:
        return None
    order = sorted(ids)
    diff = np.array([[mine[s].outcomes[i][2] - theirs[s].outcomes[i][2] for i in order] for s in seeds], dtype=float)
    return paired_bootstrap(diff, draws)


def matched(arm: str, decoding: str, baseline: str) -> str:
    """The difference cell's fixed text, or "" when it is to be computed: a fine-tuning row is its own baseline."""
    return "baseline" if (arm, decoding) == (baseline, MATCHED[decoding]) else ""


# ----------------------------------------------------------------------------- tables

def pct(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def difference_text(d: tuple[float, float, float] | None) -> str:
    """A difference only with its interval; "no measurable difference" when the interval holds 0."""
    if d is None:
        return ""
    est, low, high = d
    interval = f"[{100 * low:+.1f}, {100 * high:+.1f}]"
    return f"no measurable difference {interval}" if low <= 0 <= high else f"{100 * est:+.1f} {interval}"


def versus(records: list[Record], arm: str, decoding: str, baseline: str, ids: set[str], draws: int) -> str:
    return matched(arm, decoding, baseline) or difference_text(difference(records, (arm, decoding), (baseline, MATCHED[decoding]), ids, draws)) \
        or "n/a (no baseline runs)"


def rows_of(records: list[Record]) -> list[tuple[str, str]]:
    return sorted({(r.arm, r.decoding) for r in records if r.final},
                  key=lambda ad: (list(ARMS).index(ad[0]), list(DECODINGS).index(ad[1])))


def plan_cells(runs: list[Record], ids: set[str]) -> list[str]:
    """Right plans and problems with a right plan (%, mean ± std over seeds), blank for decodings without sampled plans."""
    shares = [right_plans(r, ids) for r in runs]
    if any(x is None for x in shares):
        return ["", ""]
    return [pct([x[0] for x in shares]), pct([x[1] for x in shares])]


def main_table(records: list[Record], meta: dict[str, dict], draws: int, share: float = PLAN_IN_CODE) -> str:
    everything = set(meta)
    lines = ["| arm | decoding | candidates | seeds | pass@1 | matched fine-tuning decoding | vs fine-tuning, equal steps "
             "(points, 95% CI) | vs fine-tuning, equal FLOPs (points, 95% CI) | right plans | problems with a right plan "
             "| raw pass@1 | raw pass@N |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for arm, decoding in rows_of(records):
        runs = final(records, arm, decoding)
        n = max(r.candidates for r in runs)
        raw = [pct([raw_pass(r, everything, 1) for r in runs]), pct([raw_pass(r, everything, n) for r in runs])] if n > 1 else ["", ""]
        lines.append(f"| {arm_label(arm, share)} | {DECODINGS[decoding][0]} | {n} | {len(runs)} | "
                     f"{pct([pass1(r, everything) for r in runs])} | {DECODINGS[MATCHED[decoding]][0]} | "
                     + " | ".join([versus(records, arm, decoding, b, everything, draws) for b in FINE_TUNING]
                                  + plan_cells(runs, everything) + raw) + " |")
    return "\n".join(lines)


def group_tables(records: list[Record], meta: dict[str, dict], draws: int, share: float = PLAN_IN_CODE) -> str:
    """pass@1, the differences against the matched fine-tuning decoding (equal steps, equal FLOPs) and
    the share of problems with a right plan, per test tier, statement style and difficulty."""
    groups = {g: ids for g, ids in groups_of(meta).items() if g != "all"}
    head = "| arm | decoding | " + " | ".join(f"{g} ({len(ids)})" for g, ids in groups.items()) + " |"
    rule = "|---|---|" + "---|" * len(groups)
    values, plans = [head, rule], [head, rule]
    differences = {b: [head, rule] for b in FINE_TUNING}
    for arm, decoding in rows_of(records):
        runs = final(records, arm, decoding)
        label = f"| {arm_label(arm, share)} | {DECODINGS[decoding][0]} | "
        values.append(label + " | ".join(pct([pass1(r, ids) for r in runs]) for ids in groups.values()) + " |")
        for b in FINE_TUNING:
            if not matched(arm, decoding, b) and any(r.arm == b for r in records):
                differences[b].append(label + " | ".join(versus(records, arm, decoding, b, ids, draws) for ids in groups.values()) + " |")
        if decoding in SAMPLED_PLANS:
            plans.append(label + " | ".join(plan_cells(runs, ids)[1] for ids in groups.values()) + " |")
    text = ["pass@1 (%) by test tier, statement style and difficulty (problems in brackets):", "", *values]
    for b, rows in differences.items():
        if len(rows) > 2:
            text += ["", f"Difference in pass@1 vs the matched decoding of {arm_label(b)}, points, paired bootstrap 95% CI "
                     "over seeds and problems:", "", *rows]
    if len(plans) > 2:
        text += ["", "Problems where at least one sampled plan is the reference plan (%):", "", *plans]
    return "\n".join(text)


def given_plans_table(records: list[Record], meta: dict[str, dict], draws: int, share: float = PLAN_IN_CODE) -> str:
    """Code written from the reference plans against the same model's direct code (same seed, same problem),
    per group: what a right plan is worth to the code head, the bound on what plan sampling can add.
    Empty when no arm has both runs."""
    groups = groups_of(meta)
    lines = ["| arm | " + " | ".join(f"{g} ({len(ids)})" for g, ids in groups.items()) + " |", "|---|" + "---|" * len(groups)]
    for arm in dict.fromkeys(arm for arm, decoding in rows_of(records) if decoding == "ref-plans"):
        if final(records, arm, "direct"):
            lines.append(f"| {arm_label(arm, share)} | " + " | ".join(
                difference_text(difference(records, (arm, "ref-plans"), (arm, "direct"), ids, draws)) for ids in groups.values()) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


SUMMARY_KEYS = (("optimizer steps", "{:.0f}", lambda s: s.get("optimizer_steps")),
                ("direct-code examples", "{:.0f}", lambda s: s["code_examples_seen"] - s["code_with_plan_seen"]
                 if "code_with_plan_seen" in s and "code_examples_seen" in s else None),
                ("plan-guided code examples", "{:.0f}", lambda s: s.get("code_with_plan_seen")),
                ("plan examples", "{:.0f}", lambda s: s.get("plan_examples_seen")),
                ("training FLOPs", "{:.3g}", lambda s: s.get("train_flops")),
                ("training wall time (s)", "{:.0f}", lambda s: s.get("train_seconds")))


def cost_table(summaries: dict[str, list[dict]], ledger: dict, share: float = PLAN_IN_CODE) -> str:
    """What each arm spent, as train.py reports it (mean over seeds; each summary carries its "run" name and
    "lr"); n/a where its summary lacks the key. FLOPs are also given relative to fine-tuning at equal steps."""
    lines = ["| arm | seeds | learning rate | " + " | ".join(label for label, _, _ in SUMMARY_KEYS)
             + " | FLOPs / fine-tuning's | train.py process time (s) |", "|---|---|---|" + "---|" * (len(SUMMARY_KEYS) + 2)]
    flops = {arm: statistics.mean(s["train_flops"] for s in runs) for arm, runs in summaries.items()
             if runs and all(s.get("train_flops") for s in runs)}
    for arm, runs in summaries.items():
        cells = [", ".join(sorted({f"{s['lr']:g}" for s in runs if s.get("lr")})) or "n/a"]
        for _, fmt, value in SUMMARY_KEYS:
            got = [value(s) for s in runs if value(s) is not None]
            cells.append(fmt.format(statistics.mean(got)) if len(got) == len(runs) else "n/a")
        cells.append(f"{flops[arm] / flops['ft']:.2f}" if arm in flops and "ft" in flops else "n/a")
        timed = [ledger[s["run"]]["seconds"] for s in runs if s.get("run") in ledger]
        cells.append(f"{statistics.mean(timed):.0f}" if timed else "n/a")
        lines.append(f"| {arm_label(arm, share)} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve_points(records: list[Record], meta: dict[str, dict]) -> dict[tuple[str, str], dict[int, list[float]]]:
    """(arm, decoding) -> step -> pass@1 per seed, for the learning-curve arms and decodings; for those that
    sample plans also (arm, decoding + " right plan") -> step -> share of problems with a right plan."""
    points: dict[tuple[str, str], dict[int, list[float]]] = {}
    for r in sorted(records, key=lambda r: (r.step, r.seed)):
        if r.decoding in CURVES.get(r.arm, ()):
            points.setdefault((r.arm, r.decoding), {}).setdefault(r.step, []).append(pass1(r, set(meta)))
            if (right := right_plans(r, set(meta))) is not None:
                points.setdefault((r.arm, r.decoding + " right plan"), {}).setdefault(r.step, []).append(right[1])
    return {k: v for k, v in points.items() if len(v) > 1}


def curve_name(decoding: str) -> str:
    plain = decoding.removesuffix(" right plan")
    return DECODINGS[plain][0] + (": problems with a right plan" if plain != decoding else "")


def curve_table(points: dict, share: float = PLAN_IN_CODE) -> str:
    steps = sorted({s for by_step in points.values() for s in by_step})
    lines = ["| arm | decoding | " + " | ".join(f"step {s}" for s in steps) + " |", "|---|---|" + "---|" * len(steps)]
    for (arm, decoding), by_step in points.items():
        lines.append(f"| {arm_label(arm, share)} | {curve_name(decoding)} | "
                     + " | ".join(pct(by_step[s]) if s in by_step else "" for s in steps) + " |")
    return "\n".join(lines)


def plot_curves(points: dict, path: Path, share: float = PLAN_IN_CODE) -> bool:
    """pass@1 (and right plans) vs training steps, mean ± std over seeds; matplotlib is optional, False without it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for (arm, decoding), by_step in points.items():
        steps = sorted(by_step)
        ax.errorbar(steps, [100 * statistics.mean(by_step[s]) for s in steps], capsize=3, marker="o",
                    yerr=[100 * statistics.stdev(by_step[s]) if len(by_step[s]) > 1 else 0 for s in steps],
                    label=f"{arm_label(arm, share)}: {curve_name(decoding)}")
    ax.set(xlabel="optimizer steps", ylabel="test pass@1 or problems with a right plan (%)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------- the report

def machine_line() -> str:
    import torch
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        names = [l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")]
        cpu = names[0] if names else cpu
    device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
    return (f"{platform.platform()}; {cpu}; {os.cpu_count()} CPUs; Python {platform.python_version()}; "
            f"torch {torch.__version__}; device {device}")


RECORDED = ("Machine:", "Code:", "Wall time:", "Command:")   # where and how the runs were made


def recorded_lines(path: Path) -> dict[str, str]:
    """The lines of an earlier results.md that say where and how its runs were made, by their prefix."""
    lines = path.read_text().splitlines() if path.exists() else []
    return {line.split(":", 1)[0] + ":": line for line in lines if line.startswith(RECORDED)}


def gather(args, root: Path, tasks: list[Task]) -> tuple[dict[str, dict], list[Record], dict[str, list[dict]]]:
    """The scored test problems (id -> difficulty, tier, style), a record per finished test sampling run and
    the training summaries per arm: from the run folders, else from the saved outcomes.json (runs/ is not committed)."""
    saved = read_json(root / "outcomes.json")
    inputs = Inputs.of(args, root)
    if inputs.test_problems.exists():
        problems = data.load_problems(f"synthetic:{inputs.test_problems}", "test")
        meta = {p.id: {"difficulty": p.difficulty, "tier": p.tier, "style": p.style} for p in problems}
        references = {p.id: p.reference_plan for p in problems}
    else:
        meta, references = saved.get("problems", {}), {}
    records = collect(tasks, {r["folder"]: r for r in saved.get("runs", [])}, references)
    summaries: dict[str, list[dict]] = {}
    for task in tasks:
        if not task.decoding and task.finished():
            summary = json.loads((task.folder / "summary.json").read_text())
            summaries.setdefault(task.arm, []).append({**summary, "seed": task.seed, "run": task.name, "lr": task.lr})
    return meta, records, summaries or saved.get("training", {}) or read_json(root / "results.json").get("training", {})


def save_outcomes(args, root: Path, tasks: list[Task]) -> None:
    """outcomes.json, what every table is computed from, rewritten after each finished run so that an
    unfinished mode can be committed and its tables rebuilt (--report-only) or continued later."""
    meta, records, summaries = gather(args, root, tasks)
    outcomes = {"problems": meta, "runs": [asdict(r) for r in records], "training": summaries}
    write_atomic(root / "outcomes.json", json.dumps(outcomes, separators=(",", ":")) + "\n")   # compact: problems x runs


def write_report(args, root: Path, tasks: list[Task], wall: float) -> str:
    """results.md, results.json and outcomes.json. --report-only runs nothing, so it keeps what the earlier
    report recorded about the runs (machine, commit, wall time, command, plot) instead of its own."""
    saved = read_json(root / "results.json")
    recorded = recorded_lines(root / "results.md") if args.report_only else {}
    meta, records, summaries = gather(args, root, tasks)
    ledger = read_json(root / "timings.json")
    selection = read_json(root / "selection.json")
    config = read_json(root / "config.json")   # the runs' settings: their plan share, and their code for --report-only
    share = config.get("train_defaults", {}).get("plan_in_code", PLAN_IN_CODE)
    tiers = {m["tier"] for m in meta.values()} - {""}
    scored = "every test problem" if not args.problems else f"the first {args.problems} test problems" if not tiers else \
        f"the first {args.problems // len(tiers)} test problems of each tier"
    lines = [f"# CodePLAN reproduction on the synthetic benchmark ({args.mode})", ""]
    if not records:
        lines += ["(no finished runs yet)", ""]
    else:
        points = curve_points(records, meta)
        lines += ["## pass@1 against the matched fine-tuning decoding (RQ1-RQ3)", "", main_table(records, meta, args.bootstrap, share), "",
                  "## By test tier, statement style and difficulty (RQ4)", "", group_tables(records, meta, args.bootstrap, share), ""]
        if given := given_plans_table(records, meta, args.bootstrap, share):
            lines += ["## Given reference plans against the same model's direct code", "", "Difference in pass@1, points, "
                      "paired bootstrap 95% CI over seeds and problems. A reference plan has one step per line of the "
                      "solution, constants verbatim: this measures the code head following a right plan.", "", given, ""]
        if summaries:
            lines += ["## What each arm spent", "", cost_table(summaries, ledger, share), ""]
        if points:
            lines += ["## Learning curves: pass@1 (%) against training steps", "", curve_table(points, share), ""]
            if plot_curves(points, root / "learning_curves.png", share):
                lines += ["![learning curves](learning_curves.png)", ""]
            elif args.report_only and (root / "learning_curves.png").exists():
                lines += ["![learning curves](learning_curves.png)", ""]
                log("matplotlib is not installed: kept the earlier learning_curves.png of these runs")
            else:
                lines += ["(no learning_curves.png: matplotlib, an optional dependency of reproduce.py, is not installed)", ""]
                log("matplotlib is not installed: no learning_curves.png (the numbers are in results.md)")
    chosen = ", ".join(f"{arm} {lr:g}" for arm, lr in selection.get("chosen", {}).items())
    how = (f"chosen on {selection.get('valid_problems')} valid problems from the grid "
           f"{', '.join(f'{lr:g}' for lr in selection.get('grid', []))} (selection.md)") if selection.get("scores") else \
        "train.py's for the preset (no grid)"
    code = provenance()
    ran = config if args.report_only and {"commit", "dirty"} <= config.keys() else code
    made = [f"Machine: {machine_line()}", f"Code: commit {ran['commit']}" + (" (with uncommitted changes)" if ran["dirty"] else ""),
            f"Wall time: {format_seconds(wall)} this invocation; {format_seconds(sum(e['seconds'] for e in ledger.values()))} "
            f"summed over all {len(ledger)} runs made so far.",
            f"Command: python reproduce.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}"]
    if args.report_only:
        made = [recorded.get(line.split(":", 1)[0] + ":", line) for line in made]
        made.append(f"Tables rebuilt by --report-only at commit {code['commit']}; nothing was run then.")
    lines += [f"pass@1 in % on {len(meta)} synthetic test problems ({scored}, the same for every arm), mean ± sample "
              f"std over {args.seeds} seeds. Every arm trains {args.steps} steps x {args.batch_size} problems (fine-tuning at "
              f"equal FLOPs: {args.flops_ratio:g} times the steps) with one shared tokenizer ({args.vocab_size} pieces; extra "
              f"train.py flags: '{args.train_args}'). Learning rates ({chosen}): {how}; the test problems were read only after "
              "they were fixed, and each configuration is scored on them once, from its run's last checkpoint (no checkpoint "
              "is chosen). With several candidates, pass@1 is the top candidate after ranking by public tests then "
              "log-probability (the method's answer; hidden tests never rank), and raw pass@k is the unbiased estimator "
              "over all candidates, ignoring the ranking. Every row is compared with the fine-tuning decoding that has as "
              "many candidates and the same ranking, at equal steps and at equal training FLOPs: the paired difference in "
              f"pass@1 (same seed, same problem) with a percentile 95% interval from {args.bootstrap} bootstrap draws "
              "resampling seeds and problems; 'no measurable difference' when the interval holds 0. Right plans: distinct "
              "sampled plans whose steps are the reference plan's (codeplan.plan_is_right). Corrupted plans: "
              f"{args.corrupt_share:g} of each plan's steps dropped, swapped or replaced by another plan's step.",
              "", *made]
    text = "\n".join(lines) + "\n"
    write_atomic(root / "results.md", text)
    summary = {"mode": args.mode, "settings": vars(args), "machine": machine_line(), "wall_s": wall, **code,
               "training": summaries, "timings": ledger, "selection": selection}
    if args.report_only:
        summary.update({k: saved[k] for k in ("settings", "machine", "wall_s", "commit", "dirty") if k in saved},
                       rebuilt_at=code["commit"])
    write_atomic(root / "results.json", json.dumps(summary, indent=1) + "\n")
    write_atomic(root / "outcomes.json", json.dumps({"problems": meta, "runs": [asdict(r) for r in records], "training": summaries},
                                                    separators=(",", ":")) + "\n")
    return text


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # a kill (SIGTERM) stops the current runs as cleanly as Ctrl-C


def every_run(args, root: Path, grid: list[Task]) -> list[Task]:
    """The grid and the final runs, each once, and the expected time of those not finished (logged). The
    final runs' learning rates are known once the grid is scored; before that they are planned at
    train.py's rate, for their count and cost."""
    fixed = (root / "selection.json").exists()
    selection = select_on_valid(args, root, []) if fixed else Selection({arm: args.base_lr for arm in args.arms})
    tasks = grid + [t for t in plan_tasks(args, root, selection) if t.name not in {g.name for g in grid}]
    left = [t for t in tasks if not t.finished()]
    log(f"{len(tasks)} runs ({len(grid)} of them the learning-rate grid on valid), {len(left)} not finished; expected "
        f"{format_seconds(eta(left, read_json(root / 'timings.json'), args.jobs))} with {args.jobs} at a time"
        + ("" if fixed or not grid else "; the final runs' learning rates are chosen once the grid is scored"))
    return tasks


def main(argv=None) -> None:
    args = parse_args(argv)
    root = (Path(args.out) / args.mode).resolve()
    started = time.time()
    signal.signal(signal.SIGTERM, interrupt)
    try:
        inputs, grid = Inputs.of(args, root), selection_tasks(args, root)
        if args.dry_run:
            print("\n".join(f"python {' '.join(t.argv)}" for t in every_run(args, root, grid)))
            return
        if args.report_only:
            if grid and not (root / "selection.json").exists():
                raise ReproduceError(f"--report-only: no {root / 'selection.json'}: the learning-rate grid has not finished")
            tasks = plan_tasks(args, root, select_on_valid(args, root, []))
        else:
            if args.gpu:
                import torch
                if not torch.cuda.is_available():
                    raise ReproduceError("--gpu: no CUDA device; use --cpu on a CPU")
            config = {**vars(args), **provenance(), "train_defaults": asdict(train.TrainConfig())}
            write_atomic(root / "config.json", json.dumps({**config, "grid": [t.argv for t in grid]}, indent=1) + "\n")
            every_run(args, root, grid)   # logs the expected time of the whole mode before anything runs
            prepare_training_inputs(args, inputs)
            run_all(grid, root, args.jobs)
            selection = select_on_valid(args, root, grid)   # fixed from here on: only now is the test split read
            prepare_test_inputs(args, inputs)
            tasks = plan_tasks(args, root, selection)
            write_atomic(root / "config.json", json.dumps({**config, "grid": [t.argv for t in grid], "tasks": [t.argv for t in tasks]},
                                                          indent=1) + "\n")
            run_all(tasks, root, args.jobs, finished=lambda task: save_outcomes(args, root, tasks))
        print(write_report(args, root, tasks, time.time() - started))
    except (ReproduceError, DataError, teacher.TeacherError) as e:
        cli.fail(f"reproduce.py: {e}")
    except KeyboardInterrupt:
        cli.interrupted("reproduce.py: interrupted; rerun the same command to continue")
    log(f"wrote {root}/results.md, results.json and outcomes.json")


if __name__ == "__main__":
    main()
