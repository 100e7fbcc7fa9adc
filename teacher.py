"""The teacher: solution plans from a large LLM by backward reasoning, written to a plans file.

CodePLAN distils plans that a large "teacher" model writes after reading a ground-truth
solution ("backward reasoning"). This script sends one chat-completions request per
(problem, solution) to any OpenAI-compatible server (llm_client.py), cleans the answers into
numbered steps and appends them to a JSON-lines plans file that survives crashes: every record is one write(), flushed and fsynced, and a rerun skips what is
already done. `python teacher.py --data synthetic` needs no server: it writes the synthetic
benchmark's reference plans in the same format, so train.py reads plans one way.

Plans file records: {"task_id", "split", "question_digest", "plan", "mode", "model", "prompt_version",
"solution_index", "status": "ok" | "rejected" | "failed", "reason", "attempts", "usage", ...}.
"split" and "question_digest" say which problem a plan was made for: APPS train and test ids
overlap (0000-4999 in both), so a plan is matched by its id AND the digest of its statement, and
read_plans(path, problems) refuses a file whose plans were made for other problems. "ok" and "rejected"
records are done; "failed" ones (network gave up, empty or unparseable answer) are retried on
the next run and kept in the file as history. Only "ok" plans are ever read for training.

The API key comes from CODEPLAN_API_KEY, else OPENAI_API_KEY (see llm_client.py).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cli
import data
from journal import Journal, json_line
from llm_client import DEFAULT_BASE_URL, AuthError, ChatClient, RequestFailed, api_key_from_env
from problems import DataError, Problem, choose_solutions, split_steps, write_atomic

DEFAULT_MODEL = "gpt-3.5-turbo"   # the authors' teacher, at temperature 0.2
TEACHER_MODES = ("backward", "code-only", "forward")
REFERENCE = "reference"           # model and mode of plans copied from Problem.reference_plan


class TeacherError(Exception):
    """Expected failure (bad input, bad configuration): printed without a traceback."""

# ----------------------------------------------------------------------------- prompts (all of them)


PROMPT_VERSION = "v1"  # bump whenever any text below changes: plans files record it

SYSTEM_MESSAGE = ("You are an expert competitive programmer. You explain how a program solves a "
                  "problem as a short numbered plan in plain English. You never write code.")

EXAMPLE_QUESTION = ("Given n integers, print the length of the longest block of equal adjacent numbers.\n"
                    "The first line holds n, the second line the n integers.")
EXAMPLE_CODE = """n = int(input())
a = list(map(int, input().split()))
best = run = 1
for i in range(1, n):
    run = run + 1 if a[i] == a[i - 1] else 1
    best = max(best, run)
print(best)
"""
EXAMPLE_PLAN = """1. Read n and the list of n integers.
2. Keep two counters: the length of the current block of equal numbers and the best length so far, both starting at 1.
3. Go through the numbers from the second one: if a number equals the one before it, the current block grows by one; otherwise a new block of length 1 starts.
4. After each number, raise the best length to the current block length if it is larger.
5. Print the best length."""

PLAN_RULES = "Use numbered steps, one per line, in plain English, and do not write any code."


def user_message(mode: str, question: str, code: str) -> str:
    code = code.replace("\r\n", "\n")  # MBPP ships Windows line endings
    if mode == "backward":
        return (f"Problem:\n{question.strip()}\n\nSolution:\n```python\n{code.strip()}\n```\n\n"
                f"Write a step-by-step solution plan that follows the above solution. {PLAN_RULES}")
    if mode == "code-only":  # the authors' release: the teacher never sees the statement
        return (f"Code:\n```python\n{code.strip()}\n```\n\n"
                f"Write a step-by-step solution plan following the above code. {PLAN_RULES}")
    if mode == "forward":    # ablation: plan from the statement alone
        return (f"Problem:\n{question.strip()}\n\n"
                f"Write a step-by-step solution plan for the above problem. {PLAN_RULES}")
    raise ValueError(f"unknown teacher mode {mode!r}")


def build_messages(mode: str, question: str, code: str) -> list[dict]:
    """System message, one worked example as a user/assistant turn, then the real request."""
    return [{"role": "system", "content": SYSTEM_MESSAGE},
            {"role": "user", "content": user_message(mode, EXAMPLE_QUESTION, EXAMPLE_CODE)},
            {"role": "assistant", "content": EXAMPLE_PLAN},
            {"role": "user", "content": user_message(mode, question, code)}]


# ----------------------------------------------------------------------------- answer -> numbered plan


FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)  # an unclosed fence runs to the end
BLOCK_KEYWORD = re.compile(r"^(?:else|try|finally)\s*:$|^(?:elif|except|with|def|class)\b.*:$")
CODE_NODES = (ast.Call, ast.Subscript, ast.Attribute, ast.Lambda, ast.ListComp, ast.DictComp,
              ast.SetComp, ast.GeneratorExp)


def looks_like_code(line: str, solution_lines: set[str]) -> bool:
    """The documented heuristic: a line is code if it was copied verbatim from the solution (and
    is at least 8 characters, so "else:" in prose does not count), or if it parses as Python
    statements that do something: assignments, loops, imports, returns, ... or an expression with
    a call, index or attribute. Bare names and constants ("Done", "42") and annotations
    ("Input: n", "Complexity: O(n)") parse too but read as prose, so they are not code."""
    text = line.strip()
    if not text:
        return False
    if len(text) >= 8 and text in solution_lines:
        return True
    if BLOCK_KEYWORD.match(text):
        return True
    try:
        tree = ast.parse(text + "\n    pass" if text.endswith(":") else text)
    except (SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and node.value is None:
            continue
        if isinstance(node, ast.Expr) and not any(isinstance(n, CODE_NODES) for n in ast.walk(node)):
            continue
        return True
    return False


@dataclass
class Cleaned:
    status: str                       # "ok" | "rejected" | "failed"
    plan: str = ""
    reason: str = ""                  # why rejected or failed
    notes: list[str] = field(default_factory=list)  # what cleaning changed in an ok plan


def format_steps(steps: list[str]) -> str:
    return "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1))


def clean_plan(answer: str, solution: str = "") -> Cleaned:
    """Turn a teacher answer into "1. ...\\n2. ..." or say why it cannot be used."""
    if not answer.strip():
        return Cleaned("failed", reason="empty answer")
    notes = []
    fenced = FENCE.findall(answer)
    if fenced:
        answer = FENCE.sub("\n", answer)
        notes.append(f"removed {len(fenced)} fenced code block(s)")
    solution_lines = {line.strip() for line in solution.splitlines()}
    steps, split_notes = split_steps(answer)
    notes += split_notes
    code_lines = prose_lines = 0
    kept = []
    for step in steps:
        prose = [line for line in step if line and not looks_like_code(line, solution_lines)]
        code_lines += sum(1 for line in step if line) - len(prose)
        prose_lines += len(prose)
        if prose:
            kept.append(" ".join(prose))
    if code_lines:
        notes.append(f"removed {code_lines} code line(s)")
    if not kept:
        if fenced or code_lines:
            return Cleaned("rejected", reason="answer is code, not a plan", notes=notes)
        return Cleaned("failed", reason="no plan steps in answer", notes=notes)
    if code_lines > prose_lines:
        return Cleaned("rejected", notes=notes,
                       reason=f"answer is mostly code ({code_lines} code lines, {prose_lines} plan lines)")
    return Cleaned("ok", plan=format_steps(kept), notes=notes)


def normalise_reference(plan: str) -> str:
    """Reference plans are trusted: only their numbering is made uniform."""
    steps, _ = split_steps(plan)
    return format_steps([" ".join(step) for step in steps if step])

# ----------------------------------------------------------------------------- settings


@dataclass
class TeacherConfig:
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    mode: str = "backward"
    temperature: float = 0.2
    max_tokens: int = 512
    plans_per_problem: int = 1
    workers: int = 4
    connect_timeout: float = 10.0
    read_timeout: float = 120.0      # per socket read (requests semantics), not for the whole answer
    max_attempts: int = 6
    backoff_base: float = 1.0        # seconds before the 2nd attempt; doubles each retry, with jitter
    backoff_max: float = 60.0        # no single sleep is longer, Retry-After included


# ----------------------------------------------------------------------------- plans file


def read_records(path: str) -> list[dict]:
    """All records; a torn last line (no newline, not JSON) is skipped, any other bad line is an error."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "task_id" not in record or "status" not in record:
                raise ValueError("expected an object with task_id and status")
        except ValueError as e:
            if number == len(lines):  # no newline after it: an interrupted append
                continue
            raise TeacherError(f"{path}: line {number}: malformed plans record ({e})") from None
        records.append(record)
    return records


def question_digest(problem: Problem) -> str:
    """Names the problem a plan was made for: ids alone are ambiguous across splits."""
    return hashlib.sha256(problem.question.encode("utf-8")).hexdigest()[:16]


def check_made_for(path: str, records: list[dict], problems: list[Problem]) -> None:
    """Refuse plans made for other problems than these (same id, other statement: another split or
    dataset). Records from before plans files said what they were made for cannot be checked:
    that is a warning, so old files still work."""
    by_id = {p.id: p for p in problems}
    wrong, unchecked = [], 0
    for record in records:
        problem = by_id.get(str(record["task_id"]))
        if problem is None:
            continue
        if "question_digest" not in record:
            unchecked += 1
        elif record["question_digest"] != question_digest(problem):
            wrong.append(record)
    if wrong:
        first = wrong[0]
        raise TeacherError(f"{path}: {len(wrong)} plans were made for other problems than the ones in use, e.g. "
                           f"task {first['task_id']}: its plan was made for the {first.get('split')!r} split's "
                           f"problem {first['task_id']}, whose statement differs from the one here; use the plans "
                           f"file made for this data and split")
    if unchecked:
        print(f"teacher: warning: {path}: {unchecked} plans do not record which problem they were made for (a file "
              f"from before plans files recorded it); they are matched by task id alone, so make sure the file "
              f"was made for this data and split", file=sys.stderr)


class Plan(str):
    """A plan's text (a str, so it reads and compares as one), with the index of the ground-truth
    solution it explains; None when it explains no particular one (reference and forward plans)."""
    solution_index: int | None

    def __new__(cls, text: str, solution_index: int | None = None) -> "Plan":
        plan = super().__new__(cls, text)
        plan.solution_index = solution_index
        return plan


def read_plans(path: str, problems: list[Problem] | None = None) -> dict[str, list[Plan]]:
    """task_id -> its ok plans, ordered by solution index (so a rerun with other timing reads the
    same), each (task_id, mode, solution_index) once. Teacher and reference plans read the same.
    Each plan keeps its solution_index, so that training pairs it with the solution it explains.
    With `problems`, the plans for their ids must have been made for them (check_made_for)."""
    if not os.path.exists(path):
        raise TeacherError(f"{path}: plans file not found")
    chosen: dict[tuple, dict] = {}
    for record in read_records(path):
        key = (str(record["task_id"]), record.get("mode"), record.get("solution_index"))
        if record["status"] == "ok" and record.get("plan") and key not in chosen:
            chosen[key] = record
    if problems is not None:
        check_made_for(path, list(chosen.values()), problems)
    plans: dict[str, list[Plan]] = {}
    order = sorted(chosen, key=lambda k: (k[0], k[1] or "", -1 if k[2] is None else k[2]))
    for key in order:
        plans.setdefault(key[0], []).append(Plan(chosen[key]["plan"], key[2]))
    return plans


class PlansFile(Journal):
    """The plans file: a Journal that also holds the records already in it."""

    def __init__(self, path: str):
        super().__init__(path)
        self.records = read_records(path)


def write_reference_plans(problems: list[Problem], path: str, split: str | None = None) -> int:
    """The synthetic benchmark's known-right plans as a plans file (atomically replaced)."""
    lines = []
    for problem in problems:
        if not problem.reference_plan.strip():
            raise TeacherError(f"problem {problem.id}: no reference_plan (only the synthetic benchmark has them)")
        lines.append(json_line({"task_id": problem.id, "split": split, "question_digest": question_digest(problem),
                                 "plan": normalise_reference(problem.reference_plan),
                                 "mode": REFERENCE, "model": REFERENCE, "prompt_version": None,
                                 "solution_index": None, "status": "ok", "reason": "", "usage": {}}))
    write_atomic(Path(path), b"".join(lines))
    return len(lines)

# ----------------------------------------------------------------------------- the run



DONE_STATUSES = ("ok", "rejected")  # "failed" records are asked again by the next run


@dataclass
class Job:
    problem: Problem
    solution_index: int | None  # None in forward mode: the teacher sees no solution
    solution: str = ""


def plan_jobs(problems: list[Problem], mode: str, plans_per_problem: int) -> tuple[list[Job], int]:
    """One job per chosen solution (forward mode: one per problem). Also returns how many
    problems were left out for having no ground-truth solution."""
    jobs, unsolved = [], 0
    for problem in problems:
        if mode == "forward":
            jobs.append(Job(problem, None))
            continue
        chosen = choose_solutions(problem, plans_per_problem)
        unsolved += not chosen
        jobs += [Job(problem, index, code) for index, code in chosen]
    return jobs, unsolved


def pending_jobs(jobs: list[Job], records: list[dict], config: TeacherConfig, path: str) -> list[Job]:
    """Jobs without a done record of this mode. A file whose done plans came from another model
    or prompt version, or for other problems (another split in the same file), is refused rather
    than silently mixed."""
    check_made_for(path, [r for r in records if r["status"] in DONE_STATUSES], [job.problem for job in jobs])
    done = set()
    for record in records:
        if record.get("mode") != config.mode or record["status"] not in DONE_STATUSES:
            continue
        if record.get("model") != config.model or record.get("prompt_version") != PROMPT_VERSION:
            raise TeacherError(f"{path}: holds {config.mode} plans from model {record.get('model')!r}, prompt "
                               f"{record.get('prompt_version')!r}; this run uses {config.model!r}, prompt "
                               f"{PROMPT_VERSION!r}: pass another --out")
        done.add((str(record["task_id"]), record.get("solution_index")))
    return [job for job in jobs if (job.problem.id, job.solution_index) not in done]


def ask(job: Job, config: TeacherConfig, client: ChatClient, split: str | None = None) -> dict:
    """One request -> one record (never raises for a failed request, only for a rejected key)."""
    record = {"task_id": job.problem.id, "split": split, "question_digest": question_digest(job.problem), "plan": "", "mode": config.mode, "model": config.model,
              "prompt_version": PROMPT_VERSION, "solution_index": job.solution_index,
              "status": "failed", "reason": "", "attempts": 0, "usage": {}}
    try:
        completion = client.complete(build_messages(config.mode, job.problem.question, job.solution))
    except RequestFailed as e:
        record.update(reason=e.reason, attempts=e.attempts)
        return record
    cleaned = clean_plan(completion.text, job.solution)
    if cleaned.status == "ok" and completion.finish_reason == "length":  # the last step may be cut
        steps = cleaned.plan.splitlines()
        if len(steps) > 1:
            cleaned.plan = format_steps([s.split(". ", 1)[1] for s in steps[:-1]])
            cleaned.notes.append("dropped the last step: answer cut at max_tokens")
        else:
            cleaned = Cleaned("failed", reason="answer cut at max_tokens", notes=cleaned.notes)
    if cleaned.status == "failed" and completion.finish_reason not in (None, "stop", "length"):
        cleaned.reason += f" (finish_reason={completion.finish_reason})"  # e.g. a content filter
    record.update(plan=cleaned.plan, status=cleaned.status, reason=cleaned.reason, notes=cleaned.notes,
                  attempts=completion.attempts, usage=completion.usage, finish_reason=completion.finish_reason)
    if cleaned.status != "ok" or cleaned.notes:
        record["raw"] = completion.text  # what the teacher said, for auditing the cleaning
    return record


@dataclass
class Summary:
    path: str
    ok: int = 0
    rejected: int = 0
    failed: int = 0
    retried: int = 0            # extra attempts over all requests
    already_done: int = 0       # skipped: done by an earlier run
    no_solution: int = 0        # problems without a ground-truth solution to explain
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_failure: str = ""     # "task_id: reason" of the first request that failed

    def line(self) -> str:
        counts = " ".join(f"{k}={v}" for k, v in asdict(self).items() if k not in ("path", "first_failure"))
        return f"teacher: {counts} -> {self.path}"


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """done/total, rate and ETA on stderr, at most once per `every` seconds (and at the end)."""

    def __init__(self, total: int, every: float):
        self.total, self.every, self.done = total, every, 0
        self.start = self.last = time.monotonic()

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = format_seconds((self.total - self.done) / rate)
            print(f"teacher: {self.done}/{self.total} requests, {rate:.2f}/s, ETA {eta}", file=sys.stderr, flush=True)


def run_teacher(problems: list[Problem], path: str, config: TeacherConfig, client: ChatClient,
                progress_every: float = 2.0, split: str | None = None) -> Summary:
    """Ask the teacher for every pending (problem, solution) of `split` and append the records to `path`."""
    jobs, unsolved = plan_jobs(problems, config.mode, config.plans_per_problem)
    plans = PlansFile(path)
    try:
        if plans.repair:
            print(f"teacher: warning: {plans.repair}", file=sys.stderr)
        todo = pending_jobs(jobs, plans.records, config, path)
        summary = Summary(path, already_done=len(jobs) - len(todo), no_solution=unsolved)
        stop = threading.Event()
        progress = Progress(len(todo), progress_every)

        def work(job: Job) -> dict | None:
            if stop.is_set():
                return None
            record = ask(job, config, client, split)
            plans.append(record)
            return record

        with ThreadPoolExecutor(max_workers=config.workers) as pool:
            futures = [pool.submit(work, job) for job in todo]
            try:
                for future in as_completed(futures):
                    record = future.result()
                    if record is None:
                        continue
                    setattr(summary, record["status"], getattr(summary, record["status"]) + 1)
                    if record["status"] == "failed" and not summary.first_failure:
                        summary.first_failure = f"{record['task_id']}: {record['reason']}"
                    summary.retried += max(record["attempts"] - 1, 0)
                    summary.prompt_tokens += record["usage"].get("prompt_tokens", 0)
                    summary.completion_tokens += record["usage"].get("completion_tokens", 0)
                    progress.step()
            except BaseException:  # a rejected key, Ctrl-C, a full disk: finish what is in flight, start nothing
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return summary
    finally:
        plans.close()


def dry_run_report(problems: list[Problem], path: str, config: TeacherConfig) -> str:
    jobs, unsolved = plan_jobs(problems, config.mode, config.plans_per_problem)
    records = read_records(path) if os.path.exists(path) else []
    todo = pending_jobs(jobs, records, config, path)
    chars = sum(len(m["content"]) for job in todo
                for m in build_messages(config.mode, job.problem.question, job.solution))
    return (f"teacher: dry run: {len(todo)} requests to {config.model} ({len(jobs) - len(todo)} already done in "
            f"{path}, {unsolved} problems without a solution); about {chars // 4} prompt tokens (estimate: "
            f"characters / 4); at most {len(todo) * config.max_tokens} completion tokens; nothing sent")

# ----------------------------------------------------------------------------- command line


def read_problems_file(path: str) -> list[Problem]:
    problems = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        problems.append(Problem.from_dict(json.loads(line)))
                    except (ValueError, TypeError) as e:
                        raise TeacherError(f"{path}: line {number}: not a Problem record ({e})") from None
    except OSError as e:
        raise TeacherError(f"{path}: cannot read problems file ({e.strerror})") from None
    return problems


def write_config(path: str, config: dict) -> str:
    """The resolved settings next to the plans file (never the key: only which variable held it)."""
    config_path = os.path.splitext(path)[0] + ".config.json"
    write_atomic(Path(config_path), json.dumps(config, indent=2) + "\n")
    return config_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = cli.Parser(__doc__)
    p.add_argument("--data", default="synthetic", help="benchmark spec NAME or NAME:PATH (apps, mbpp, humaneval, "
                   "synthetic)")
    p.add_argument("--problems", help="JSON-lines file of Problem records (Problem.to_dict()) to use instead of --data "
                   "(and --split)")
    p.add_argument("--split", help="comma-separated splits, each to its own plans file; default train,valid for "
                   "synthetic reference plans, else train")
    p.add_argument("--mode", choices=(REFERENCE,) + TEACHER_MODES, help="backward: statement + solution (default "
                   "for real data); code-only: solution only, as the authors' release; forward: statement only "
                   "(ablation); reference: copy the synthetic benchmark's plans, no server (default for synthetic)")
    p.add_argument("--out", help="plans file; default plans/<data>-<split>-<mode>.jsonl")
    p.add_argument("--base-url", default=os.environ.get("CODEPLAN_BASE_URL", DEFAULT_BASE_URL),
                   help="OpenAI-compatible API root; default $CODEPLAN_BASE_URL or " + DEFAULT_BASE_URL)
    p.add_argument("--model", default=os.environ.get("CODEPLAN_MODEL", DEFAULT_MODEL),
                   help="teacher model name; default $CODEPLAN_MODEL or " + DEFAULT_MODEL)
    p.add_argument("--temperature", type=cli.number(float, 0), default=0.2, help="sampling temperature (authors: 0.2)")
    p.add_argument("--max-tokens", type=cli.number(int, 1), default=512, help="most tokens per answer")
    p.add_argument("--plans-per-problem", type=cli.number(int, 1), default=1, help="explain up to K distinct solutions per "
                   "problem, shortest first (forward mode: always 1)")
    p.add_argument("--workers", type=cli.number(int, 1), default=4, help="concurrent requests")
    p.add_argument("--connect-timeout", type=cli.number(float, 0, low_open=True), default=10.0, help="seconds to open a connection")
    p.add_argument("--read-timeout", type=cli.number(float, 0, low_open=True), default=120.0, help="seconds the server may stay silent")
    p.add_argument("--max-attempts", type=cli.number(int, 1), default=6, help="tries per request, the first included")
    p.add_argument("--backoff-base", type=cli.number(float, 0), default=1.0, help="first retry delay in seconds; doubles, with jitter")
    p.add_argument("--backoff-max", type=cli.number(float, 0), default=60.0, help="longest single retry sleep (Retry-After included)")
    p.add_argument("--limit", type=cli.number(int, 0), help="only the first N problems of each split; 0 = all")
    p.add_argument("--progress-every", type=cli.number(float, 0), default=2.0, help="seconds between progress lines")
    p.add_argument("--dry-run", action="store_true", help="print the number of requests and a token estimate; send nothing")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    source = os.path.splitext(os.path.basename(args.problems))[0] if args.problems else args.data.split(":")[0]
    mode = args.mode or (REFERENCE if source == "synthetic" and not args.problems else "backward")
    splits = args.split.split(",") if args.split else (["train", "valid"] if mode == REFERENCE else ["train"])
    if args.problems:
        splits = [None]
    if args.out and len(splits) > 1:
        raise TeacherError("--out names one file: pass a single --split with it")
    key, key_source = api_key_from_env()
    config = TeacherConfig(base_url=args.base_url, model=args.model, mode=mode, temperature=args.temperature,
                           max_tokens=args.max_tokens, plans_per_problem=args.plans_per_problem,
                           workers=args.workers, connect_timeout=args.connect_timeout,
                           read_timeout=args.read_timeout, max_attempts=args.max_attempts,
                           backoff_base=args.backoff_base, backoff_max=args.backoff_max)
    for split in splits:
        problems = read_problems_file(args.problems) if args.problems else data.load_problems(args.data, split)
        problems = problems[:args.limit] if args.limit else problems
        out = args.out or os.path.join("plans", f"{source}{'-' + split if split else ''}-{mode}.jsonl")
        if mode == REFERENCE:
            if not args.dry_run:
                count = write_reference_plans(problems, out, split)
                write_config(out, {"data": args.problems or args.data, "split": split, "mode": mode, "model": REFERENCE})
            print(f"teacher: {'dry run: would write' if args.dry_run else 'wrote'} "
                  f"{len(problems) if args.dry_run else count} reference plans -> {out}")
            continue
        if args.dry_run:
            print(dry_run_report(problems, out, config))
            continue
        if key is None and "api.openai.com" in config.base_url:
            raise TeacherError(f"{config.base_url} needs an API key: set CODEPLAN_API_KEY or OPENAI_API_KEY")
        write_config(out, {"data": args.problems or args.data, "split": split, **asdict(config),
                           "prompt_version": PROMPT_VERSION, "api_key_from": key_source})
        summary = run_teacher(problems, out, config, ChatClient(config, key), args.progress_every, split)
        print(summary.line(), flush=True)
        if summary.failed:
            asked = summary.ok + summary.rejected + summary.failed
            raise TeacherError(f"{summary.failed} of {asked} requests failed (first: {summary.first_failure}); "
                               f"{out} keeps them marked failed, and rerunning this command retries only those")


def main(argv: list[str] | None = None) -> None:
    try:
        run(parse_args(argv))
    except (TeacherError, AuthError, DataError) as e:
        cli.fail(f"teacher: error: {e}")
    except KeyboardInterrupt:
        cli.interrupted("teacher: interrupted; the plans file keeps every answer received so far: rerun the same "
                        "command to ask only for the rest")


if __name__ == "__main__":
    main()
