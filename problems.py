"""The problem record every script passes around, and the file helpers all scripts share.

A `Problem` is one benchmark task (statement, solutions, public and hidden `Test`s) in one layout
for every benchmark: data.py builds them, teacher.py explains their solutions, train.py learns
from them, sample.py and sandbox.py score programs on them. The helpers below read JSON files
with errors that name the file, line and field (`DataError`), write files so that no reader ever
sees half of one (`write_atomic`), and record which code a result came from (`provenance`).
"""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import Any, BinaryIO, Callable


class DataError(Exception):
    """Expected bad-input errors. The message names the file, the record or line, and the field."""


@dataclass
class Test:
    """One unit test. The sandbox runs it; its meaning depends on `kind`:
    - "stdio":  input = text fed to stdin, output = expected stdout text;
    - "call":   input = list of positional arguments (JSON values), output = expected return value;
                the function called is the problem's `fn_name`;
    - "assert": input = Python source with assert statements (or HumanEval's `check(candidate)`
                definition followed by a call), output = None; the problem's `test_setup` runs first.
    """
    __test__ = False   # not a pytest test class, though named Test
    kind: str
    input: Any
    output: Any = None


@dataclass
class Problem:
    id: str                          # the dataset's own id: MBPP "11", HumanEval "HumanEval/0", APPS "0001"
    question: str                    # the statement a solver sees
    solutions: list[str] = field(default_factory=list)
    starter_code: str = ""
    fn_name: str | None = None       # None for stdin/stdout problems
    public_tests: list[Test] = field(default_factory=list)   # only what a solver may see
    hidden_tests: list[Test] = field(default_factory=list)   # the final score, never used to select
    test_setup: str = ""             # code run before assert tests (MBPP test_setup_code / imports)
    difficulty: str = "unknown"      # "introductory" | "interview" | "competition" | "unknown"
    source: str = ""                 # "apps" | "mbpp" | "humaneval" | "synthetic"
    reference_plan: str = ""         # synthetic benchmark only: the plan its generator knows is right
    tier: str = ""                   # synthetic test split: "seen-chain" | "new-chain" | "held-pair"; "" elsewhere
    style: str = ""                  # synthetic only: "goal" (states what the result means) | "steps" (lists the steps)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "Problem":
        d = dict(d)
        d["public_tests"] = [Test(**t) for t in d.get("public_tests", [])]
        d["hidden_tests"] = [Test(**t) for t in d.get("hidden_tests", [])]
        return Problem(**d)


def choose_solutions(problem: Problem, k: int) -> list[tuple[int, str]]:
    """Up to k distinct non-empty solutions, shortest first (the authors use the shortest): what
    teacher.py asks plans for and what training pairs with them."""
    seen: set[str] = set()
    distinct = []
    for index, code in enumerate(problem.solutions):
        key = code.strip()
        if key and key not in seen:
            seen.add(key)
            distinct.append((index, code))
    return sorted(distinct, key=lambda pair: (len(pair[1].strip()), pair[0]))[:k]


# ----------------------------------------------------------------------------- plan text

NUMBERED = re.compile(r"^\s*(?:step\s*)?\d+\s*[.):]\s*(.*)$", re.IGNORECASE)
BULLET = re.compile(r"^\s*[-*\u2022]\s+(.*)$")


def split_steps(text: str) -> tuple[list[list[str]], list[str]]:
    """Group an answer's lines into steps (each a list of lines). Numbered lines start steps;
    bullets start steps only when nothing is numbered (otherwise they are sub-points). A line
    without a marker continues the step above it if it follows without a blank line or is
    indented; before the first step it is a preamble, after a blank line an epilogue: dropped."""
    lines = [line.replace("**", "").rstrip() for line in text.splitlines()]
    lines = [line for line in lines if not line.lstrip().startswith("#")]  # markdown headings
    numbered = any(NUMBERED.match(line) for line in lines)
    starts = NUMBERED if numbered else BULLET
    if not any(starts.match(line) for line in lines):  # plain prose: one step per line or sentence
        prose = [line.strip() for line in lines if line.strip()]
        if len(prose) == 1:
            prose = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", prose[0]) if s]
        return [[line] for line in prose], []
    steps: list[list[str]] = []
    notes: list[str] = []
    blank = False
    for line in lines:
        match = starts.match(line)
        if match:
            steps.append([match.group(1).strip()])
        elif not line.strip():
            blank = True
            continue
        elif not steps:
            notes.append("dropped preamble")
        elif not blank or line[:1].isspace():
            sub = BULLET.match(line) or NUMBERED.match(line)
            if sub and steps[-1][-1] and not steps[-1][-1].endswith((".", ",", ":", ";", "!", "?")):
                steps[-1][-1] += ";"  # sub-points read as a list once joined into one step
            steps[-1].append((sub.group(1) if sub else line).strip())
        else:
            notes.append("dropped epilogue")
        blank = False
    return steps, sorted(set(notes))


# ----------------------------------------------------------------------------- reading


def read_text(path: Path) -> str:
    # newline="" keeps CRLF and lone CR exactly as stored; gzip for HumanEval's .jsonl.gz
    try:
        if path.suffix == ".gz":
            return gzip.decompress(path.read_bytes()).decode("utf-8")
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read ({e})") from None


def parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: bad JSON ({e.msg} at line {e.lineno} column {e.colno})") from None


def read_jsonl(path: Path, skip: tuple[str, ...] = ()) -> list[tuple[int, dict]]:
    """(line number, record) for every non-blank line not starting with one of `skip` (those are not even
    parsed); each record must be a JSON object."""
    rows = []
    for n, line in enumerate(read_text(path).split("\n"), 1):
        if line.strip() and not line.startswith(skip):
            row = parse_json(line, f"{path}: line {n}")
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {n}: expected a JSON object, got {type(row).__name__}")
            rows.append((n, row))
    return rows


def need(row: dict, key: str, types: type | tuple, where: str) -> Any:
    """row[key], checked: a missing or mistyped field names where it was expected."""
    if key not in row:
        raise DataError(f"{where}: missing field '{key}'")
    if not isinstance(row[key], types):
        raise DataError(f"{where}: field '{key}' should be {types}, got {type(row[key]).__name__}")
    return row[key]

# ----------------------------------------------------------------------------- writing


def write_atomic(path: Path, payload: bytes | str | Callable[[BinaryIO], Any]) -> None:
    """Write through a temp file and rename, so readers never see a half-written file. payload is
    the content, or a function that writes it to the open file (e.g. torch.save, without a copy in memory)."""
    if isinstance(payload, str):
        payload = payload.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(payload):
                payload(f)
            else:
                f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def provenance(here: Path = Path(__file__).resolve().parent) -> dict:
    """The code a result came from: the git commit of the checkout at `here` and whether files differ from it
    (untracked files count, except under results/: a run's own outputs there are not a change to the code).
    Outside a git checkout: commit "unknown" and dirty True, since nothing vouches for it."""
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
        status = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", ".", ":(exclude)results"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": "unknown", "dirty": True}
    if commit.returncode or status.returncode:
        return {"commit": "unknown", "dirty": True}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
