"""Reproduce the paper's research questions at small scale on the synthetic benchmark.

    python reproduce.py --quick        # 2-core CPU, within an hour: 3 arms x 3 seeds on 30 test problems
    python reproduce.py --gpu          # one GPU, aimed at 8 minutes: the same table at a larger budget, runs sharing the card
    python reproduce.py                # everything: + lambda sweep, training on corrupted plans, every test problem
    python reproduce.py --quick --dry-run       # print every command, and the time left if runs were timed before
    python reproduce.py --quick --report-only   # rebuild the tables from the runs finished so far

Arms (how the model is trained), each for every seed with the same steps x batch and one shared
tokenizer (trained here once per dataset, passed to train.py with --tokenizer, so vocabularies and
parameter counts are equal):
  ft              fine-tuning: lambda 0, code only
  codeplan-paper  CodePLAN as in the paper: lambda 0.5, code inputs never hold a plan (--plan-in-code 0)
  codeplan        CodePLAN as this reference trains it: lambda 0.5, a plan in some code inputs, so that
                  plan-guided decoding is in distribution
  lambda0.25, lambda0.75, corrupted   (full run only) the lambda sweep, and training on corrupted plans
Decodings (how it writes code): direct; direct with 16 samples ranked by public tests (the same
candidate budget as N=16, without plans); greedy plan; plan sampling N = 1, 4, 16; given reference
plans (an upper bound); given corrupted reference plans (RQ2 stand-in: how much a worse plan hurts).

RQ1: CodePLAN vs fine-tuning. RQ2 (stand-in; the authors compare teacher LLMs): corrupted plans, a
share of each plan's steps dropped, swapped or replaced by another plan's step. RQ3: the number of
plans N. RQ4: every number per difficulty, and per test tier of the synthetic benchmark.

Every arm reports its optimizer steps, code-target examples seen, training FLOPs and wall time
(read from train.py's summary.json; "n/a" where train.py does not write the key), so that arms can
be compared at equal steps, equal examples or equal compute. Each arm and decoding is compared with
fine-tuning's direct code by the difference in pass@1, with a paired bootstrap 95% interval that
resamples seeds and problems; a difference whose interval holds 0 is printed as "no measurable
difference". Learning curves: step checkpoints (train.py --save-every) of fine-tuning and CodePLAN
are scored with direct code and N=16 plan sampling.

train.py and sample.py run as subprocesses, as a user would run them (--jobs of them at a time):
each gets a clean process and its own log, a crash in one cannot take the others with it, a
finished run is skipped on rerun and an interrupted training run resumes.
"""
from __future__ import annotations

import argparse
import json
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
    plans: str = "reference"   # the training plans: "reference" or "corrupted"


ALL_PLAN = ("direct", "direct-m16", "greedy-plan", "n1", "n4", "n16", "ref-plans", "corrupted-plans")
ARMS = {
    "ft": Arm("fine-tuning (lambda 0)", ("--lambda", "0"), ("direct", "direct-m16")),
    "codeplan-paper": Arm("CodePLAN lambda 0.5, no plan in code inputs (paper)", ("--lambda", "0.5", "--plan-in-code", "0"), ALL_PLAN),
    "codeplan": Arm("CodePLAN lambda 0.5, plan in {share} of code inputs", ("--lambda", "0.5", "--plan-in-code", f"{PLAN_IN_CODE:g}"), ALL_PLAN),
    "lambda0.25": Arm("CodePLAN lambda 0.25", ("--lambda", "0.25", "--plan-in-code", f"{PLAN_IN_CODE:g}"), ("direct", "n16")),
    "lambda0.75": Arm("CodePLAN lambda 0.75", ("--lambda", "0.75", "--plan-in-code", f"{PLAN_IN_CODE:g}"), ("direct", "n16")),
    "corrupted": Arm("CodePLAN lambda 0.5 trained on corrupted plans", ("--lambda", "0.5", "--plan-in-code", f"{PLAN_IN_CODE:g}"),
                     ("direct", "n16", "ref-plans"), plans="corrupted"),
}


def arm_label(arm: str, share: float = PLAN_IN_CODE) -> str:
    """The arm's name in tables; `share` is the --plan-in-code its runs were trained with, which a results
    folder made before train.py's default changed records in its config.json (see write_report)."""
    return ARMS[arm].label.format(share=f"{share:g}")


BASELINE = ("ft", "direct")        # every difference is measured against this arm and decoding
CURVES = {"ft": ("direct",), "codeplan": ("direct", "n16")}   # learning curves: arm -> decodings

REFERENCE, CORRUPTED = "<reference plans of the scored test problems>", "<corrupted reference plans>"   # see task_argv
DECODINGS = {
    "direct": ("direct code", ("--n", "0")),
    "direct-m16": ("direct code, 16 samples ranked by public tests", ("--n", "0", "--samples-per-plan", "16")),
    "greedy-plan": ("greedy plan", ("--n", "1", "--greedy-plan")),
    "n1": ("plan sampling N=1", ("--n", "1")),
    "n4": ("plan sampling N=4", ("--n", "4")),
    "n16": ("plan sampling N=16", ("--n", "16")),
    "ref-plans": ("given reference plans (upper bound)", ("--plans-from", REFERENCE)),
    "corrupted-plans": ("given corrupted reference plans", ("--plans-from", CORRUPTED)),
}


@dataclass(frozen=True)
class Budget:
    """What a mode runs: the arms, the decodings each arm is scored with, and the budget."""
    arms: tuple[str, ...]
    decodings: dict[str, tuple[str, ...]] | None   # arm -> decodings; None = each arm's own list
    steps: int
    batch_size: int
    problems: int      # test problems scored, spread evenly over the tiers; 0 = all
    curve_every: int   # steps between learning-curve checkpoints; 0 = no curves
    jobs: int          # runs at a time


NO_M16 = tuple(d for d in ALL_PLAN if d != "direct-m16")   # the 16-sample direct baseline only for fine-tuning
BUDGETS = {
    # 2 CPU cores, one run at a time: 56 minutes measured on the project's 2-core VM (README)
    "quick": Budget(("ft", "codeplan-paper", "codeplan"),
                    {"ft": ("direct", "direct-m16"), "codeplan-paper": ("direct", "greedy-plan", "n16", "ref-plans"),
                     "codeplan": NO_M16},
                    steps=200, batch_size=16, problems=30, curve_every=100, jobs=1),
    # one GPU shared by several runs (the small preset, train.py's CUDA defaults). 8 at a time ran out of
    # memory on an 80 GB H100 (a small-preset training at batch 64 took up to 18 GB), so 4
    "gpu": Budget(("ft", "codeplan-paper", "codeplan"),
                  {"ft": ("direct", "direct-m16"), "codeplan-paper": NO_M16, "codeplan": NO_M16},
                  steps=200, batch_size=64, problems=150, curve_every=100, jobs=4),
    "full": Budget(tuple(ARMS), None, steps=train.TrainConfig().steps, batch_size=train.TrainConfig().batch_size,
                   problems=0, curve_every=train.TrainConfig().steps // 4, jobs=1),
}
# flags reproduce.py sets itself, refused in --train-args / --sample-args
TRAIN_SET = {"--lambda", "--plan-in-code", "--seed", "--name", "--out", "--steps", "--batch-size", "--resume", "--plans",
             "--pass1-limit", "--tokenizer", "--save-every", "--data", "--vocab-size"}
SAMPLE_SET = {"--checkpoint", "--out", "--seed", "--data", "--split", "--limit", "--n", "--greedy-plan", "--plans-from",
              "--samples-per-plan", "--workers"}


def parse_args(argv=None) -> argparse.Namespace:
    d = train.TrainConfig()
    p = cli.Parser(__doc__)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="RQ1-RQ4 on a 2-core CPU within an hour: 3 arms, a fixed subset of the test problems")
    mode.add_argument("--gpu", action="store_true", help="RQ1-RQ4 on one CUDA GPU, aimed at 8 minutes (not yet timed end to end: one H100 try ran out of memory at 8 runs at a time), 4 runs sharing the card")
    p.add_argument("--seeds", type=cli.number(int, 1), default=3, help="seeds per arm (0 .. SEEDS-1); training and sampling seed alike")
    p.add_argument("--steps", type=cli.number(int, 1), help="optimizer steps per training run, equal for every arm; default the mode's")
    p.add_argument("--batch-size", type=cli.number(int, 1), help="problems per optimizer step, equal for every arm; default the mode's")
    p.add_argument("--problems", type=cli.number(int, 0), help="test problems scored, the same for every arm: the first "
                   "PROBLEMS/T of each of the T test tiers, in split order; 0 = all; default the mode's")
    p.add_argument("--curve-every", type=cli.number(int, 0), help="steps between the step checkpoints scored for the learning curves; 0 = none; default the mode's")
    p.add_argument("--jobs", type=cli.number(int, 1), help="runs at a time (they share the cores, or the GPU); default the mode's")
    p.add_argument("--arms", default="", help=f"comma-separated arms from {', '.join(ARMS)}; default the mode's")
    p.add_argument("--decodings", default="", help=f"comma-separated decodings from {', '.join(DECODINGS)}: keep only these; default the mode's")
    p.add_argument("--data", default="synthetic", help="the synthetic benchmark, or synthetic:PATH for a file of it")
    p.add_argument("--vocab-size", type=cli.number(int, 1), default=d.vocab_size, help="size of the one tokenizer every arm shares")
    p.add_argument("--corrupt-share", type=cli.number(float, 0, 1, low_open=True), default=0.5, help="share of each plan's steps corrupted, in the corrupted plans")
    p.add_argument("--bootstrap", type=cli.number(int, 100), default=2000, help="bootstrap draws for each 95%% interval")
    p.add_argument("--train-args", default="", help="extra flags for every train.py call, e.g. '--preset small --lr 5e-4'")
    p.add_argument("--sample-args", default="", help="extra flags for every sample.py call, e.g. '--batch-size 256'")
    p.add_argument("--out", default="results", help="results folder; the mode writes to OUT/quick, OUT/gpu or OUT/full")
    p.add_argument("--dry-run", action="store_true", help="print the commands and the expected time, run nothing")
    p.add_argument("--report-only", action="store_true", help="run nothing; rebuild the tables from the runs finished so far")
    args = p.parse_args(argv)
    args.mode = "quick" if args.quick else "gpu" if args.gpu else "full"
    budget = BUDGETS[args.mode]
    for name in ("steps", "batch_size", "problems", "curve_every", "jobs"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(budget, name))
    args.arms = [a for a in args.arms.split(",") if a] or list(budget.arms)
    keep = [x for x in args.decodings.split(",") if x]
    for flag, names, known in (("--arms", args.arms, ARMS), ("--decodings", keep, DECODINGS)):
        if unknown := [n for n in names if n not in known]:
            p.error(f"{flag}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    own = budget.decodings or {}
    args.decodings = {a: [x for x in own.get(a, ARMS[a].decodings) if not keep or x in keep] for a in args.arms}
    for flag, fixed in (("--train-args", TRAIN_SET), ("--sample-args", SAMPLE_SET)):
        if given := fixed & {a.split("=")[0] for a in shlex.split(getattr(args, flag[2:].replace("-", "_")))}:
            p.error(f"{flag}: reproduce.py sets {', '.join(sorted(given))} itself")
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

    @property
    def tokenizer(self) -> Path:
        return self.root / "inputs" / f"tokenizer-{self.vocab_size}.model"

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
        raise ReproduceError(f"--problems {count}: cannot take {count}/{len(by_tier)} problems from each test tier ({sizes})")
    chosen = {p.id for ps in by_tier.values() for p in ps[:per_tier]}
    return [p for p in problems if p.id in chosen]


def prepare_inputs(args, inputs: Inputs) -> None:
    """Write the files the commands name, unless they exist: the scored test problems and their plans,
    the corrupted plans, and the one tokenizer every arm trains with."""
    if not inputs.test_problems.exists():
        chosen = scored_problems(data.load_problems(args.data, "test"), args.problems)
        write_atomic(inputs.test_problems, "".join(json.dumps({"split": "test", **p.to_dict()}) + "\n" for p in chosen))
    test = data.load_problems(f"synthetic:{inputs.test_problems}", "test")
    if not inputs.test_reference.exists():
        teacher.write_reference_plans(test, str(inputs.test_reference))
    train_problems = None
    for seed in range(args.seeds):
        if not inputs.test_corrupted(seed).exists():
            write_corrupted_plans(test, inputs.test_corrupted(seed), args.corrupt_share, seed)
        if "corrupted" in args.arms and not inputs.train_corrupted(seed).exists():
            train_problems = train_problems or data.load_problems(args.data, "train")
            write_corrupted_plans(train_problems, inputs.train_corrupted(seed), args.corrupt_share, seed)
    if not inputs.tokenizer.exists():
        # the corpus of a lambda > 0 run: code inputs, solutions and the reference plans, so plans tokenize well in every arm
        train_problems = train_problems or data.load_problems(args.data, "train")
        plans = {p.id: [teacher.normalise_reference(p.reference_plan)] for p in train_problems if p.reference_plan}
        log(f"training the shared tokenizer ({args.vocab_size} pieces) on {len(train_problems)} train problems")
        Tokenizer.train(train.tokenizer_corpus(train_problems, plans), str(inputs.tokenizer), args.vocab_size)


# ----------------------------------------------------------------------------- runs

@dataclass
class Task:
    name: str          # <arm>-seed<S>, <arm>-seed<S>/<decoding> or <arm>-seed<S>/<decoding>@<step>
    arm: str
    seed: int
    decoding: str      # "" for a training run
    step: int          # the checkpoint's step (sampling) or the steps to train
    folder: Path
    argv: list[str]    # script and flags, paths relative to HERE
    after: str = ""    # the training run this sampling run needs

    @property
    def kind(self) -> str:
        """Runs of one kind take about as long: the unit of the time estimate."""
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


def plan_tasks(args, root: Path) -> list[Task]:
    """Seed-major order, so that after the first seed every row of the table has a number."""
    inputs = Inputs(root, args.problems, args.vocab_size, args.corrupt_share)
    # sandbox processes per sampling run: the cores shared by the runs at a time; on a CPU, half of
    # that, as sample.py does itself, since generation needs the cores more than the sandbox
    workers = max(1, (os.cpu_count() or 1) // args.jobs // (1 if args.gpu else 2))
    tasks = []
    for seed in range(args.seeds):
        for arm_name in args.arms:
            arm = ARMS[arm_name]
            run = root / "runs" / f"{arm_name}-seed{seed}"
            curve_steps = list(range(args.curve_every, args.steps, args.curve_every)) if args.curve_every and arm_name in CURVES else []
            argv = ["train.py", *arm.flags, "--seed", str(seed), "--name", run.name, "--out", rel(run.parent), "--data", args.data,
                    "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--tokenizer", rel(inputs.tokenizer),
                    "--pass1-limit", "-1"]
            if curve_steps:
                argv += ["--save-every", str(args.curve_every)]
            if arm.plans == "corrupted":
                argv += ["--plans", rel(inputs.train_corrupted(seed))]
            tasks.append(Task(run.name, arm_name, seed, "", args.steps, run, argv + shlex.split(args.train_args)))
            scored = [(d, args.steps) for d in args.decodings[arm_name]]
            scored += [(d, s) for s in curve_steps for d in CURVES[arm_name] if d in args.decodings[arm_name]]
            for decoding, step in scored:
                checkpoint, folder = (run / "last.pt", run / f"sample-{decoding}") if step == args.steps else \
                                     (run / f"step-{step}.pt", run / f"curve{step}-{decoding}")
                plans = {REFERENCE: inputs.test_reference, CORRUPTED: inputs.test_corrupted(seed)}
                flags = [rel(plans[a]) if a in plans else a for a in DECODINGS[decoding][1]]
                argv = ["sample.py", "--checkpoint", rel(checkpoint), "--out", rel(folder), "--seed", str(seed),
                        "--data", f"synthetic:{rel(inputs.test_problems)}", "--split", "test", "--per-tier", "0", "--workers", str(workers),
                        *flags, *shlex.split(args.sample_args)]
                name = f"{run.name}/{decoding}" + ("" if step == args.steps else f"@{step}")
                tasks.append(Task(name, arm_name, seed, decoding, step, folder, argv, after=run.name))
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


def format_seconds(s: float | None) -> str:
    return "?" if s is None else f"{s / 60:.1f} min" if s < 3600 else f"{s / 3600:.1f} h"


def run_all(tasks: list[Task], root: Path, jobs: int) -> None:
    """Up to `jobs` runs at a time, each sampling run after its training run; a failed run is reported
    at the end, and the runs that need it are skipped, while the others go on."""
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
                ledger[run.task.name] = {"kind": run.task.kind, "seconds": seconds}
                write_atomic(ledger_path, json.dumps(ledger, indent=1) + "\n")
                if run.proc.returncode == 0:
                    done.add(run.task.name)
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


def eta(left: list[Task], ledger: dict, jobs: int) -> float | None:
    """Remaining time from the mean measured duration of each kind of run (any kind when unmeasured),
    divided by the runs at a time."""
    if not ledger:
        return None
    by_kind: dict[str, list[float]] = {}
    for e in ledger.values():
        by_kind.setdefault(e["kind"], []).append(e["seconds"])
    overall = statistics.mean(e["seconds"] for e in ledger.values())
    return sum(statistics.mean(by_kind.get(t.kind, [overall])) for t in left) / jobs


# ----------------------------------------------------------------------------- scoring

@dataclass
class Record:
    """One finished sampling run: per problem, candidates n, hidden passes c, and whether the top-ranked one passed."""
    arm: str
    seed: int
    decoding: str
    step: int
    folder: str
    outcomes: dict[str, list[int]] = field(default_factory=dict)   # task id -> [n, c, top passed]

    @property
    def candidates(self) -> int:
        return max(n for n, _, _ in self.outcomes.values())


def read_outcomes(results_path: Path) -> dict[str, list[int]]:
    ranked: dict[str, list[tuple[int, bool]]] = {}
    for line in results_path.read_text().splitlines():
        row = json.loads(line)
        ranked.setdefault(str(row["task_id"]), []).append((row["rank"], row["passed"]))
    return {tid: [len(rows), sum(p for _, p in rows), int(min(rows)[1])] for tid, rows in ranked.items()}


def collect(tasks: list[Task], saved: dict[str, dict]) -> list[Record]:
    """A record per finished sampling run, from its folder; where the folder is gone (runs/ is not
    committed), from the record saved in outcomes.json."""
    records = []
    for task in tasks:
        if not task.decoding:
            continue
        if task.finished():
            records.append(Record(task.arm, task.seed, task.decoding, task.step, rel(task.folder),
                                  read_outcomes(task.folder / "samples_results.jsonl")))
        elif rel(task.folder) in saved:
            records.append(Record(**saved[rel(task.folder)]))
    return records


def groups_of(meta: dict[str, dict]) -> dict[str, set[str]]:
    """Problem ids of: all, each tier (in TIERS order), each difficulty (in codeplan.DIFFICULTIES order, then others)."""
    groups = {"all": set(meta)}
    for key, order in (("tier", TIERS), ("difficulty", codeplan.DIFFICULTIES)):
        values = {m[key] for m in meta.values() if m[key]}
        for v in sorted(values, key=lambda v: (order.index(v) if v in order else len(order), v)):
            groups[v] = {pid for pid, m in meta.items() if m[key] == v}
    return groups


def pass1(record: Record, ids: set[str]) -> float:
    """Filtered pass@1: the top-ranked candidate passes (the only candidate, for one sample)."""
    return statistics.mean(record.outcomes[i][2] for i in ids)


def raw_pass(record: Record, ids: set[str], k: int) -> float:
    return statistics.mean(codeplan.pass_at_k(*record.outcomes[i][:2], k) for i in ids)


def paired_bootstrap(diff: np.ndarray, draws: int, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a seeds x problems matrix of paired differences, and a 95% percentile interval from
    resampling seeds and problems independently, with replacement."""
    rng = np.random.default_rng(seed)
    seeds, problems = diff.shape
    means = np.array([diff[np.ix_(rng.integers(seeds, size=seeds), rng.integers(problems, size=problems))].mean()
                      for _ in range(draws)])
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def difference(records: list[Record], other: tuple[str, str], ids: set[str], draws: int) -> tuple[float, float, float] | None:
    """pass@1 of `other` minus the baseline's, paired by seed and problem."""
    def by_seed(arm, decoding):
        return {r.seed: r for r in records if (r.arm, r.decoding, r.step) == (arm, decoding, max_step(records))}
    base, mine = by_seed(*BASELINE), by_seed(*other)
    seeds = sorted(set(base) & set(mine))
    if not seeds or not ids:
        return None
    order = sorted(ids)
    diff = np.array([[mine[s].outcomes[i][2] - base[s].outcomes[i][2] for i in order] for s in seeds], dtype=float)
    return paired_bootstrap(diff, draws)


def max_step(records: list[Record]) -> int:
    return max(r.step for r in records)


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


def rows_of(records: list[Record]) -> list[tuple[str, str]]:
    final = max_step(records)
    return sorted({(r.arm, r.decoding) for r in records if r.step == final},
                  key=lambda ad: (list(ARMS).index(ad[0]), list(DECODINGS).index(ad[1])))


def main_table(records: list[Record], meta: dict[str, dict], draws: int, share: float = PLAN_IN_CODE) -> str:
    final, everything = max_step(records), set(meta)
    lines = ["| arm | decoding | candidates | seeds | pass@1 | vs fine-tuning direct (points, 95% CI) | raw pass@1 | raw pass@N |",
             "|---|---|---|---|---|---|---|---|"]
    for arm, decoding in rows_of(records):
        runs = [r for r in records if (r.arm, r.decoding, r.step) == (arm, decoding, final)]
        n = max(r.candidates for r in runs)
        compared = "baseline" if (arm, decoding) == BASELINE else \
            difference_text(difference(records, (arm, decoding), everything, draws)) or "n/a (no baseline runs)"
        raw = [pct([raw_pass(r, everything, 1) for r in runs]), pct([raw_pass(r, everything, n) for r in runs])] if n > 1 else ["", ""]
        lines.append(f"| {arm_label(arm, share)} | {DECODINGS[decoding][0]} | {n} | {len(runs)} | "
                     f"{pct([pass1(r, everything) for r in runs])} | {compared} | {' | '.join(raw)} |")
    return "\n".join(lines)


def group_tables(records: list[Record], meta: dict[str, dict], draws: int, share: float = PLAN_IN_CODE) -> str:
    """pass@1, then the difference vs fine-tuning direct, per test tier and per difficulty."""
    final, groups = max_step(records), {g: ids for g, ids in groups_of(meta).items() if g != "all"}
    head = "| arm | decoding | " + " | ".join(f"{g} ({len(ids)})" for g, ids in groups.items()) + " |"
    rule = "|---|---|" + "---|" * len(groups)
    values, differences = [head, rule], [head, rule]
    for arm, decoding in rows_of(records):
        runs = [r for r in records if (r.arm, r.decoding, r.step) == (arm, decoding, final)]
        label = f"| {arm_label(arm, share)} | {DECODINGS[decoding][0]} | "
        values.append(label + " | ".join(pct([pass1(r, ids) for r in runs]) for ids in groups.values()) + " |")
        if (arm, decoding) != BASELINE:
            differences.append(label + " | ".join(difference_text(difference(records, (arm, decoding), ids, draws))
                                                 for ids in groups.values()) + " |")
    return "\n".join(["pass@1 (%) by test tier and difficulty (problems in brackets):", "", *values, "",
                      "Difference in pass@1 vs fine-tuning direct code, points, paired bootstrap 95% CI over seeds and problems:",
                      "", *differences])


SUMMARY_KEYS = (("optimizer_steps", "optimizer steps", "{:.0f}"), ("code_examples_seen", "code-target examples seen", "{:.0f}"),
                ("plan_examples_seen", "plan examples seen", "{:.0f}"), ("train_flops", "training FLOPs", "{:.3g}"),
                ("train_seconds", "training wall time (s)", "{:.0f}"))


def cost_table(summaries: dict[str, list[dict]], ledger: dict, share: float = PLAN_IN_CODE) -> str:
    """What each arm spent, as train.py reports it (mean over seeds); n/a where its summary lacks the key."""
    lines = ["| arm | seeds | " + " | ".join(label for _, label, _ in SUMMARY_KEYS) + " | train.py process time (s) |",
             "|---|---|" + "---|" * (len(SUMMARY_KEYS) + 1)]
    for arm, runs in summaries.items():
        cells = []
        for key, _, fmt in SUMMARY_KEYS:
            got = [s[key] for s in runs if s.get(key) is not None]
            cells.append(fmt.format(statistics.mean(got)) if len(got) == len(runs) else "n/a")
        timed = [ledger[f"{arm}-seed{s['seed']}"]["seconds"] for s in runs if f"{arm}-seed{s['seed']}" in ledger]
        cells.append(f"{statistics.mean(timed):.0f}" if timed else "n/a")
        lines.append(f"| {arm_label(arm, share)} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve_points(records: list[Record], meta: dict[str, dict]) -> dict[tuple[str, str], dict[int, list[float]]]:
    """(arm, decoding) -> step -> pass@1 per seed, for the learning-curve arms and decodings."""
    points: dict[tuple[str, str], dict[int, list[float]]] = {}
    for r in sorted(records, key=lambda r: (r.step, r.seed)):
        if r.decoding in CURVES.get(r.arm, ()):
            points.setdefault((r.arm, r.decoding), {}).setdefault(r.step, []).append(pass1(r, set(meta)))
    return {k: v for k, v in points.items() if len(v) > 1}


def curve_table(points: dict, share: float = PLAN_IN_CODE) -> str:
    steps = sorted({s for by_step in points.values() for s in by_step})
    lines = ["| arm | decoding | " + " | ".join(f"step {s}" for s in steps) + " |", "|---|---|" + "---|" * len(steps)]
    for (arm, decoding), by_step in points.items():
        lines.append(f"| {arm_label(arm, share)} | {DECODINGS[decoding][0]} | "
                     + " | ".join(pct(by_step[s]) if s in by_step else "" for s in steps) + " |")
    return "\n".join(lines)


def plot_curves(points: dict, path: Path, share: float = PLAN_IN_CODE) -> bool:
    """pass@1 vs training steps, mean ± std over seeds; matplotlib is optional, False without it."""
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
                    label=f"{arm_label(arm, share)}: {DECODINGS[decoding][0]}")
    ax.set(xlabel="optimizer steps", ylabel="test pass@1 (%)")
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


def write_report(args, root: Path, tasks: list[Task], wall: float) -> str:
    """results.md, results.json and outcomes.json. --report-only runs nothing, so it keeps what the earlier
    report recorded about the runs (machine, commit, wall time, command, plot) instead of its own."""
    saved, saved_outcomes = read_json(root / "results.json"), read_json(root / "outcomes.json")
    recorded = recorded_lines(root / "results.md") if args.report_only else {}
    inputs = Inputs(root, args.problems, args.vocab_size, args.corrupt_share)
    if inputs.test_problems.exists():
        meta = {p.id: {"difficulty": p.difficulty, "tier": p.tier}
                for p in data.load_problems(f"synthetic:{inputs.test_problems}", "test")}
    else:
        meta = saved_outcomes.get("problems", {})
    records = collect(tasks, {r["folder"]: r for r in saved_outcomes.get("runs", [])})
    summaries: dict[str, list[dict]] = {}
    for task in tasks:
        if not task.decoding and task.finished():
            summaries.setdefault(task.arm, []).append({**json.loads((task.folder / "summary.json").read_text()), "seed": task.seed})
    summaries = summaries or saved.get("training", {})
    ledger = read_json(root / "timings.json")
    share = read_json(root / "config.json").get("train_defaults", {}).get("plan_in_code", PLAN_IN_CODE)
    tiers = {m["tier"] for m in meta.values()} - {""}
    scored = "every test problem" if not args.problems else f"the first {args.problems} test problems" if not tiers else \
        f"the first {args.problems // len(tiers)} test problems of each tier"
    lines = [f"# CodePLAN reproduction on the synthetic benchmark ({args.mode})", ""]
    if not records:
        lines += ["(no finished runs yet)", ""]
    else:
        points = curve_points(records, meta)
        lines += ["## pass@1 against fine-tuning's direct code (RQ1-RQ3)", "", main_table(records, meta, args.bootstrap, share), "",
                  "## By test tier and difficulty (RQ4)", "", group_tables(records, meta, args.bootstrap, share), ""]
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
    code = provenance()
    made = [f"Machine: {machine_line()}", f"Code: commit {code['commit']}" + (" (with uncommitted changes)" if code["dirty"] else ""),
            f"Wall time: {format_seconds(wall)} this invocation; {format_seconds(sum(e['seconds'] for e in ledger.values()))} "
            f"summed over all {len(ledger)} runs made so far.",
            f"Command: python reproduce.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}"]
    if recorded:
        made = [recorded.get(line.split(":", 1)[0] + ":", line) for line in made]
        made.append(f"Tables rebuilt by --report-only at commit {code['commit']}; nothing was run then.")
    lines += [f"pass@1 in % on {len(meta)} synthetic test problems ({scored}, the same for every arm), mean ± sample "
              f"std over {args.seeds} seeds. Every arm trains {args.steps} steps x {args.batch_size} problems with one "
              f"shared tokenizer ({args.vocab_size} pieces; extra train.py flags: '{args.train_args}'). With several "
              "candidates, pass@1 is the top candidate after ranking by public tests then log-probability (the "
              "method's answer; hidden tests never rank), and raw pass@k is the unbiased estimator over all "
              "candidates, ignoring the ranking. Differences: the paired difference in pass@1 (same seed, same "
              f"problem) with a percentile 95% interval from {args.bootstrap} bootstrap draws resampling seeds and "
              "problems; 'no measurable difference' when the interval holds 0. Corrupted plans: "
              f"{args.corrupt_share:g} of each plan's steps dropped, swapped or replaced by another plan's step.",
              "", *made]
    text = "\n".join(lines) + "\n"
    write_atomic(root / "results.md", text)
    summary = {"mode": args.mode, "settings": vars(args), "machine": machine_line(), "wall_s": wall, **code,
               "training": summaries, "timings": ledger}
    if args.report_only:
        summary.update({k: saved[k] for k in ("settings", "machine", "wall_s", "commit", "dirty") if k in saved},
                       rebuilt_at=code["commit"])
    write_atomic(root / "results.json", json.dumps(summary, indent=1) + "\n")
    # per problem and run: what every table is computed from; compact, as it grows with problems x runs
    outcomes = {"problems": meta, "runs": [asdict(r) for r in records]}
    write_atomic(root / "outcomes.json", json.dumps(outcomes, separators=(",", ":")) + "\n")
    return text


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # a kill (SIGTERM) stops the current runs as cleanly as Ctrl-C


def main(argv=None) -> None:
    args = parse_args(argv)
    root = (Path(args.out) / args.mode).resolve()
    started = time.time()
    signal.signal(signal.SIGTERM, interrupt)
    try:
        tasks = plan_tasks(args, root)
        if args.dry_run:
            ledger = read_json(root / "timings.json")
            print("\n".join(f"python {' '.join(t.argv)}" for t in tasks))
            left = [t for t in tasks if not t.finished()]
            log(f"{len(tasks)} runs, {len(left)} not finished; expected {format_seconds(eta(left, ledger, args.jobs))} "
                f"with {args.jobs} at a time (from {root / 'timings.json'}; '?' before any run was timed)")
            return
        if not args.report_only:
            if args.gpu:
                import torch
                if not torch.cuda.is_available():
                    raise ReproduceError("--gpu: no CUDA device; use --quick on a CPU")
            write_atomic(root / "config.json", json.dumps({**vars(args), **provenance(), "train_defaults": asdict(train.TrainConfig()),
                                                           "tasks": [t.argv for t in tasks]}, indent=1) + "\n")
            prepare_inputs(args, Inputs(root, args.problems, args.vocab_size, args.corrupt_share))
            run_all(tasks, root, args.jobs)
        print(write_report(args, root, tasks, time.time() - started))
    except (ReproduceError, DataError, teacher.TeacherError) as e:
        print(f"reproduce.py: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("reproduce.py: interrupted; rerun the same command to continue", file=sys.stderr)
        sys.exit(130)
    log(f"wrote {root}/results.md, results.json and outcomes.json")


if __name__ == "__main__":
    main()
