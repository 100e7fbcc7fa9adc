"""Reproduce the paper's research questions at small scale on the synthetic benchmark.

    python reproduce.py --quick       # RQ1 + RQ3: fine-tuning vs CodePLAN, N = 1, 4, 16 plans; 3 seeds
    python reproduce.py               # everything: + lambda sweep, corrupted plans (RQ2), reference plans
    python reproduce.py --quick --report-only   # rebuild the table from the runs finished so far

Every configuration trains with the same budget (steps x batch) for each seed, by running
train.py and sample.py as a user would, as subprocesses: each run gets a clean process (no
torch state, RNG or SIGINT handler leaks between runs), its own log file, and a crash in one
run cannot take the others with it. Each run writes to results/<mode>/runs/<config>-seed<S>/
(sample.py outputs in its sample-<decoding>/ folders); a finished run is skipped on rerun and
an interrupted training run is resumed, so an interrupted reproduce.py simply continues.

RQ4 (per difficulty) is every row of the table, split by introductory/interview/competition.
RQ2 stand-in: the authors compare teachers; offline, a weaker teacher is simulated by
corrupting a fixed share of the reference plans' steps (dropped, swapped, or replaced by a
step of another problem's plan). Scores are recomputed here from samples_results.jsonl with
codeplan.pass_at_k_report, grouped by the test problems' difficulty.
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
from dataclasses import asdict, dataclass
from pathlib import Path

import codeplan
import data
import teacher
import train

HERE = Path(__file__).resolve().parent
DIFFICULTIES = ("introductory", "interview", "competition")


class ReproduceError(Exception):
    pass


TEST_PLANS = "<reference plans of the test split>"  # filled in by plan_tasks


@dataclass(frozen=True)
class Decoding:
    label: str
    args: tuple[str, ...]
    quick: bool  # part of --quick


DECODINGS = {
    "direct": Decoding("direct code (--n 0)", ("--n", "0"), True),
    "direct-m16": Decoding("direct code, 16 samples ranked by public tests", ("--n", "0", "--samples-per-plan", "16"), False),
    "greedy-plan": Decoding("greedy plan (--n 1 --greedy-plan)", ("--n", "1", "--greedy-plan"), True),
    "n4": Decoding("plan sampling N=4", ("--n", "4"), True),
    "n16": Decoding("plan sampling N=16", ("--n", "16"), True),
    "ref-plans": Decoding("given reference plans (upper bound)", ("--plans-from", TEST_PLANS), False),
}


@dataclass(frozen=True)
class Setup:
    label: str
    lam: float
    plans: str  # "reference" or "corrupted"
    decodings: tuple[str, ...]


SETUPS = {
    "ft": Setup("fine-tuning (lambda 0)", 0.0, "reference", ("direct", "direct-m16")),
    "codeplan": Setup("CodePLAN (lambda 0.5)", 0.5, "reference", ("direct", "greedy-plan", "n4", "n16", "ref-plans")),
    "lambda0.25": Setup("CodePLAN (lambda 0.25)", 0.25, "reference", ("direct", "n16")),
    "lambda0.75": Setup("CodePLAN (lambda 0.75)", 0.75, "reference", ("direct", "n16")),
    "corrupted": Setup("CodePLAN, corrupted plans (lambda 0.5)", 0.5, "corrupted", ("direct", "n16")),
}
QUICK_SETUPS = ("ft", "codeplan")
QUICK_STEPS = 300   # per run, so that 3 seeds x (fine-tuning + CodePLAN) and their sampling fit an hour on 2 cores
TRAIN_SET = {"--lambda", "--seed", "--name", "--out", "--steps", "--batch-size", "--resume", "--plans", "--pass1-limit"}
SAMPLE_SET = {"--checkpoint", "--out", "--seed", "--limit", "--n", "--greedy-plan", "--plans-from", "--samples-per-plan"}
BASELINE = ("ft", "direct")  # relative gains are measured against its pass@1


def parse_args(argv=None) -> argparse.Namespace:
    d = train.TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="RQ1 + RQ3 only (fine-tuning vs CodePLAN, N up to 16), a reduced per-run budget: within an hour on 2 CPU cores")
    p.add_argument("--seeds", type=int, default=3, help="seeds per configuration (0 .. SEEDS-1)")
    p.add_argument("--steps", type=int, default=0, help=f"training steps per run, equal for every configuration; default {QUICK_STEPS} with --quick, else train.py's {d.steps}")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="problems per training step, equal for every configuration")
    p.add_argument("--limit", type=int, default=-1, help="score the first LIMIT test problems; 0 = all; default 100 with --quick, else all")
    p.add_argument("--setups", default="", help=f"comma-separated configurations to run, from {', '.join(SETUPS)}; default {','.join(QUICK_SETUPS)} with --quick, else all")
    p.add_argument("--corrupt-share", type=float, default=0.5, help="share of each plan's steps corrupted in the 'corrupted' configuration")
    p.add_argument("--train-args", default="", help="extra flags appended to every train.py call, e.g. '--preset small --plan-in-code 0.3'")
    p.add_argument("--sample-args", default="", help="extra flags appended to every sample.py call, e.g. '--workers 8 --batch-size 256'")
    p.add_argument("--out", default="results", help="results folder; this mode writes to OUT/quick or OUT/full")
    p.add_argument("--report-only", action="store_true", help="run nothing; rebuild the table from the runs finished so far")
    args = p.parse_args(argv)
    args.mode = "quick" if args.quick else "full"
    args.steps = args.steps or (QUICK_STEPS if args.quick else d.steps)
    args.limit = (100 if args.quick else 0) if args.limit < 0 else args.limit
    args.setups = [s for s in args.setups.split(",") if s] or list(QUICK_SETUPS if args.quick else SETUPS)
    unknown = [s for s in args.setups if s not in SETUPS]
    if unknown:
        p.error(f"--setups: unknown {', '.join(unknown)}; choose from {', '.join(SETUPS)}")
    for flag, fixed in (("--train-args", TRAIN_SET), ("--sample-args", SAMPLE_SET)):
        if fixed & {a.split("=")[0] for a in shlex.split(getattr(args, flag[2:].replace("-", "_")))}:
            p.error(f"{flag}: reproduce.py sets {', '.join(sorted(fixed))} itself")
    if args.seeds < 1 or args.steps < 1 or not 0.0 < args.corrupt_share <= 1.0:
        p.error("need --seeds >= 1, --steps >= 1 and 0 < --corrupt-share <= 1")
    return args


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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


def write_corrupted_plans(problems: list[data.Problem], path: Path, share: float, seed: int) -> None:
    """A plans file in teacher.py's format; each problem's corruption depends only on (seed, problem id)."""
    plans = {p.id: teacher.normalise_reference(p.reference_plan) for p in problems}
    pool = sorted({" ".join(s) for plan in plans.values() for s in teacher.split_steps(plan)[0] if s})
    lines = []
    for task_id, plan in plans.items():
        rng = random.Random(f"{seed}:{task_id}")
        lines.append(json.dumps({"task_id": task_id, "plan": corrupt_plan(plan, share, rng, pool), "mode": "corrupted",
                                 "model": f"reference-corrupted-{share:g}", "prompt_version": None, "solution_index": None,
                                 "status": "ok", "reason": "", "usage": {}, "corruption": {"share": share, "seed": seed}}))
    data.write_atomic(path, "\n".join(lines) + "\n")


def reference_test_plans(root: Path) -> Path:
    return root / "plans" / "test-reference.jsonl"


def corrupted_plans(root: Path, share: float, seed: int) -> Path:
    return root / "plans" / f"train-corrupted{share:g}-seed{seed}.jsonl"


def prepare_inputs(args, root: Path) -> None:
    """Write the plans files that the train.py / sample.py calls name, unless they exist."""
    if not args.quick and "codeplan" in args.setups and not reference_test_plans(root).exists():
        teacher.write_reference_plans(data.load_problems("synthetic", "test"), str(reference_test_plans(root)))
    if "corrupted" in args.setups:
        problems = None
        for seed in range(args.seeds):
            path = corrupted_plans(root, args.corrupt_share, seed)
            if not path.exists():
                problems = problems or data.load_problems("synthetic", "train")
                write_corrupted_plans(problems, path, args.corrupt_share, seed)
                log(f"wrote {path}")


# ----------------------------------------------------------------------------- runs, skipping finished ones

@dataclass
class Task:
    name: str          # <setup>-seed<S> or <setup>-seed<S>/<decoding>
    kind: str          # "train" or a decoding name (for the ETA)
    folder: Path
    argv: list[str]    # script and flags, paths relative to HERE

    def finished(self) -> bool:
        if self.kind == "train":
            summary = self.folder / "summary.json"
            if not summary.exists():
                return False
            s = json.loads(summary.read_text())
            return not s.get("interrupted") and s.get("step") == int(self.argv[self.argv.index("--steps") + 1])
        return (self.folder / "report.md").exists() and (self.folder / "samples_results.jsonl").exists()

    def check_stamp(self) -> None:
        """A folder holds the outputs of exactly one command: refuse to mix settings."""
        stamp = self.folder / "reproduce-argv.json"
        if stamp.exists() and json.loads(stamp.read_text()) != self.argv:
            before = " ".join(json.loads(stamp.read_text()))
            raise ReproduceError(f"{stamp}: this run was made with other settings:\n  {before}\nnow asked for:\n  "
                                 f"{' '.join(self.argv)}\npass another --out or delete {self.folder}")
        data.write_atomic(stamp, json.dumps(self.argv) + "\n")


def rel(path: Path) -> str:
    """Paths inside the checkout are kept relative, so a results folder copied with it stays valid."""
    return str(path.relative_to(HERE)) if path.is_relative_to(HERE) else str(path)


def plan_tasks(args, root: Path) -> list[Task]:
    """Seed-major order, so that after the first seed every row of the table has a number."""
    tasks = []
    for seed in range(args.seeds):
        for name in args.setups:
            setup = SETUPS[name]
            run = root / "runs" / f"{name}-seed{seed}"
            argv = ["train.py", "--lambda", f"{setup.lam:g}", "--seed", str(seed), "--name", run.name, "--out", rel(run.parent),
                    "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--pass1-limit", "-1"]
            if setup.plans == "corrupted":
                argv += ["--plans", rel(corrupted_plans(root, args.corrupt_share, seed))]
            tasks.append(Task(run.name, "train", run, argv + shlex.split(args.train_args)))
            for dec_name in setup.decodings:
                dec = DECODINGS[dec_name]
                if args.quick and not dec.quick:
                    continue
                flags = [rel(reference_test_plans(root)) if a == TEST_PLANS else a for a in dec.args]
                folder = run / f"sample-{dec_name}"
                argv = ["sample.py", "--checkpoint", rel(run / "last.pt"), "--out", rel(folder), "--seed", str(seed),
                        "--limit", str(args.limit), *flags, *shlex.split(args.sample_args)]
                tasks.append(Task(f"{run.name}/{dec_name}", dec_name, folder, argv))
    return tasks


def run_logged(task: Task) -> None:
    """Run one command with its output in the run folder; on any interruption the child gets SIGINT
    first (train.py then saves a checkpoint), so a rerun resumes it."""
    task.folder.mkdir(parents=True, exist_ok=True)
    argv = list(task.argv)
    if task.kind == "train" and (task.folder / "last.pt").exists():
        argv.append("--resume")
    elif task.kind == "train":
        (task.folder / "metrics.jsonl").unlink(missing_ok=True)  # killed before its first checkpoint: start over
    log_path = task.folder / ("train.log" if task.kind == "train" else "sample.log")
    with open(log_path, "a") as out:
        out.write(f"$ python {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen([sys.executable, *argv], cwd=HERE, stdout=out, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait()
        except BaseException:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    if rc != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        raise ReproduceError(f"{task.name}: python {' '.join(argv)} exited with {rc}; see {log_path}:\n{tail}")


def format_seconds(s: float | None) -> str:
    return "?" if s is None else f"{s / 60:.1f} min" if s < 3600 else f"{s / 3600:.1f} h"


def run_all(tasks: list[Task], root: Path) -> None:
    ledger_path = root / "timings.json"
    ledger = json.loads(ledger_path.read_text()) if ledger_path.exists() else {}
    started = time.time()
    for i, task in enumerate(tasks, 1):
        task.check_stamp()
        if task.finished():
            log(f"[{i}/{len(tasks)}] {task.name}: finished earlier, skipped")
            continue
        left = [t for t in tasks[i - 1:] if not t.finished()]
        log(f"[{i}/{len(tasks)}] {task.name} | elapsed {format_seconds(time.time() - started)} "
            f"| ETA {format_seconds(eta(left, ledger))}")
        t0 = time.time()
        run_logged(task)
        ledger[task.name] = {"kind": task.kind, "seconds": ledger.get(task.name, {}).get("seconds", 0) + time.time() - t0}
        data.write_atomic(ledger_path, json.dumps(ledger, indent=1) + "\n")


def eta(left: list[Task], ledger: dict) -> float | None:
    """Remaining time from the mean measured duration of each kind of run (any kind when unmeasured)."""
    if not ledger:
        return None
    overall = statistics.mean(e["seconds"] for e in ledger.values())
    by_kind = {}
    for e in ledger.values():
        by_kind.setdefault(e["kind"], []).append(e["seconds"])
    return sum(statistics.mean(by_kind.get(t.kind, [overall])) for t in left)


# ----------------------------------------------------------------------------- scoring and the table

def score_samples(results_path: Path, difficulty: dict[str, str]) -> dict:
    """Filtered and raw pass@k, overall and per difficulty, from a samples_results.jsonl."""
    ranked: dict[str, list] = {}
    for line in results_path.read_text().splitlines():
        row = json.loads(line)
        ranked.setdefault(str(row["task_id"]), []).append((row["rank"], row["passed"]))
    # the results rows carry sample.py's ranks: candidates that rank_candidates keeps in that order
    cands = {tid: [codeplan.Candidate(code=str(r), logprob=-r, passed=p) for r, p in sorted(rows)] for tid, rows in ranked.items()}
    n = max(len(c) for c in cands.values())
    ks = sorted({k for k in (1, 5, n) if k <= n})
    problems = [data.Problem(id=tid, question="", difficulty=difficulty[tid]) for tid in cands]
    report = codeplan.pass_at_k_report(problems, list(cands.values()), ks)
    metrics = {g: {**{f"filtered_pass@{k}": row[f"{k}@{n}"] for k in ks}, **{f"raw_pass@{k}": row[f"pass@{k}"] for k in ks}}
               for g, row in report.items()}
    return {"samples_per_problem": n, "ks": ks, "sizes": {g: row["problems"] for g, row in report.items()}, "metrics": metrics}


def collect(tasks: list[Task]) -> list[dict]:
    """One record per finished sampling run."""
    records, problems = [], {}
    for task in tasks:
        if task.kind == "train" or not task.finished():
            continue
        config = json.loads((task.folder / "config.json").read_text())
        key = (config["data"], config["split"])
        if key not in problems:
            problems[key] = {p.id: p.difficulty for p in data.load_problems(*key)}
        setup, seed = task.name.split("/")[0].rsplit("-seed", 1)
        records.append({"setup": setup, "seed": int(seed), "decoding": task.kind, "folder": rel(task.folder),
                        **score_samples(task.folder / "samples_results.jsonl", problems[key])})
    return records


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def results_table(records: list[dict]) -> str:
    """Rows: configuration x decoding x metric; columns: all and each difficulty; mean ± std over seeds in %."""
    groups = ["all"] + [d for d in DIFFICULTIES if any(d in r["metrics"] for r in records)]
    cell = {}
    for r in records:
        for g, metrics in r["metrics"].items():
            for m, v in metrics.items():
                cell.setdefault((r["setup"], r["decoding"], m, g), []).append(v)
    base = cell.get((*BASELINE, "filtered_pass@1", "all"))
    base_mean = statistics.mean(base) if base else None
    lines = ["| configuration | decoding | metric | seeds | " + " | ".join(groups) + " | gain vs fine-tuning |",
             "|" + "---|" * (len(groups) + 5)]
    pairs = sorted({(r["setup"], r["decoding"]) for r in records},
                   key=lambda sd: (list(SETUPS).index(sd[0]), list(DECODINGS).index(sd[1])))
    for setup, decoding in pairs:
        n = max(r["samples_per_problem"] for r in records if (r["setup"], r["decoding"]) == (setup, decoding))
        ks = sorted({k for k in (1, 5, n) if k <= n})
        metrics = ["filtered_pass@1"] + ([f"raw_pass@{k}" for k in ks] if n > 1 else [])
        for m in metrics:
            values = cell.get((setup, decoding, m, "all"), [])
            label = "pass@1" if n == 1 else m.replace("_", " ")
            gain = ""
            if m == "filtered_pass@1" and base_mean is not None and (setup, decoding) != BASELINE:
                gain = f"{100 * (statistics.mean(values) / base_mean - 1):+.0f}%" if base_mean > 0 else "n/a (baseline 0)"
            row = [SETUPS[setup].label, DECODINGS[decoding].label, label, str(len(values))]
            row += [mean_std(cell[(setup, decoding, m, g)]) if (setup, decoding, m, g) in cell else "" for g in groups]
            lines.append("| " + " | ".join(row + [gain]) + " |")
    return "\n".join(lines)


def plot(records: list[dict], path: Path) -> bool:
    """pass@1 of the CodePLAN model vs the number of plans N, with the direct-code lines; needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False

    def runs(setup: str, decoding: str, metric: str) -> list[float]:
        return [r["metrics"]["all"][metric] for r in records if (r["setup"], r["decoding"]) == (setup, decoding)]

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for metric, style in (("filtered_pass@1", "o-"), ("raw_pass@1", "s--")):
        points = [(n, v) for n, d in ((1, "greedy-plan"), (4, "n4"), (16, "n16")) if (v := runs("codeplan", d, metric))]
        if points:
            ax.errorbar([n for n, _ in points], [100 * statistics.mean(v) for _, v in points], capsize=3, fmt=style,
                        yerr=[100 * statistics.stdev(v) if len(v) > 1 else 0 for _, v in points],
                        label=f"CodePLAN, {metric.replace('_', ' ')}")
    for setup, color in (("ft", "gray"), ("codeplan", "black")):
        if v := runs(setup, "direct", "filtered_pass@1"):
            ax.axhline(100 * statistics.mean(v), color=color, ls=":", label=f"{SETUPS[setup].label}, direct code")
    ax.set(xscale="log", xlabel="plans per problem N", ylabel="pass@1 (%)", xticks=[1, 4, 16], xticklabels=["1", "4", "16"])
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def machine_line() -> str:
    import torch
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        names = [l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")]
        cpu = names[0] if names else cpu
    device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
    return (f"{platform.platform()}; {cpu}; {os.cpu_count()} CPUs; Python {platform.python_version()}; "
            f"torch {torch.__version__}; device {device}")


def write_report(args, root: Path, tasks: list[Task], wall: float) -> str:
    records = collect(tasks)
    ledger = json.loads((root / "timings.json").read_text()) if (root / "timings.json").exists() else {}
    table = results_table(records) if records else "(no finished runs yet)"
    limit = f"the first {args.limit}" if args.limit else "all"
    lines = [f"# CodePLAN reproduction on the synthetic benchmark ({args.mode})", "", table, "",
             f"pass@k in % on {limit} synthetic test problems, mean ± sample std over seeds. Every configuration trains "
             f"{args.steps} steps x {args.batch_size} problems (extra train.py flags: '{args.train_args}'). "
             "pass@1 with one sample per problem is that sample's score; with N samples, filtered pass@1 is the top "
             "candidate after ranking by public tests then log-probability (the method's answer) and raw pass@k is "
             "the unbiased estimator over all N samples, ignoring the ranking. Gain: relative change of the mean "
             "pass@1 (all problems) over fine-tuning's direct-code pass@1."
             + (f" Corrupted plans: {args.corrupt_share:g} of each training plan's steps dropped, swapped or replaced."
                if "corrupted" in args.setups else ""),
             "", f"Machine: {machine_line()}",
             f"Wall time: {format_seconds(wall)} this invocation; {format_seconds(sum(e['seconds'] for e in ledger.values()))} "
             f"summed over all {len(ledger)} runs made so far.",
             f"Command: python reproduce.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}"]
    if records and plot(records, root / "pass1_vs_n.png"):
        lines += ["", "![pass@1 vs N](pass1_vs_n.png)"]
    text = "\n".join(lines) + "\n"
    data.write_atomic(root / "results.md", text)
    summary = {"mode": args.mode, "settings": vars(args), "machine": machine_line(), "wall_s": wall, "runs": records, "timings": ledger}
    data.write_atomic(root / "results.json", json.dumps(summary, indent=1) + "\n")
    return text


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # a kill (SIGTERM) stops the current run as cleanly as Ctrl-C


def main(argv=None) -> None:
    args = parse_args(argv)
    root = (Path(args.out) / args.mode).resolve()
    started = time.time()
    signal.signal(signal.SIGTERM, interrupt)
    try:
        tasks = plan_tasks(args, root)
        if not args.report_only:
            data.write_atomic(root / "config.json", json.dumps({**vars(args), "train_defaults": asdict(train.TrainConfig()),
                                                            "tasks": [t.argv for t in tasks]}, indent=1) + "\n")
            prepare_inputs(args, root)
            run_all(tasks, root)
        print(write_report(args, root, tasks, time.time() - started))
    except (ReproduceError, data.DataError, teacher.TeacherError) as e:
        print(f"reproduce.py: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("reproduce.py: interrupted; rerun the same command to continue", file=sys.stderr)
        sys.exit(130)
    log(f"wrote {root}/results.md and results.json")


if __name__ == "__main__":
    main()
