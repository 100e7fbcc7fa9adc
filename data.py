"""Benchmark loaders: APPS, MBPP, HumanEval and the synthetic benchmark, as Problem records.

    python data.py --data mbpp:PATH/mbpp.jsonl --stats
    python data.py --data apps:PATH --split test --show 2
    python data.py --download mbpp          # into $CODEPLAN_DATA (default ~/.cache/codeplan)

A data spec is "NAME" or "NAME:PATH" with NAME one of apps, mbpp, humaneval, synthetic. Without
PATH the loader looks for the dataset's usual file name in the cache folder. The record itself
(Problem, Test) is in problems.py, the tokenizer in tokenizer.py, batching in batching.py.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cli
from problems import DataError, Problem, Test, need, parse_json, read_jsonl, read_text, write_atomic
from tokenizer import Tokenizer  # noqa: F401  users import data.Tokenizer; the class is in tokenizer.py


def cache_dir() -> Path:
    return Path(os.environ.get("CODEPLAN_DATA", Path.home() / ".cache" / "codeplan")).expanduser()

# ----------------------------------------------------------------------------- APPS
# Two layouts: the original tarball (one folder per problem) and the Hugging Face jsonl rows,
# where `solutions` and `input_output` are JSON strings and may be empty ("") in the test split.


def apps_tests(io_obj: Any, where: str, url: str = "") -> tuple[str | None, list[Test]]:
    """(fn_name, tests) from an APPS input_output object {"inputs", "outputs", optional "fn_name"}.

    stdio: an input or output stored as a list of lines is joined with "\n", as the APPS harness
    does before feeding stdin. call: inputs[i] is the argument list. Codewars problems store each
    expected value wrapped in a one-element list; the APPS harness accepts either form, here the
    wrapper is removed when every output of the problem is wrapped, except for leetcode problems,
    whose outputs are never wrapped (a leetcode function may truly return [x]).
    """
    if io_obj in ("", None, {}):
        return None, []
    if not isinstance(io_obj, dict):
        raise DataError(f"{where}: expected an object with 'inputs' and 'outputs'")
    inputs = need(io_obj, "inputs", list, where)
    outputs = need(io_obj, "outputs", list, where)
    if len(inputs) != len(outputs):
        raise DataError(f"{where}: field 'outputs' has {len(outputs)} entries but 'inputs' has {len(inputs)}")
    fn_name = io_obj.get("fn_name") or None
    if fn_name is None:
        def join(v: Any) -> str:
            return "\n".join(map(str, v)) if isinstance(v, list) else str(v)
        return None, [Test("stdio", join(i), join(o)) for i, o in zip(inputs, outputs)]
    wrapped = "leetcode" not in url and all(isinstance(o, list) and len(o) == 1 for o in outputs)
    tests = []
    for k, (i, o) in enumerate(zip(inputs, outputs)):
        if not isinstance(i, list):
            raise DataError(f"{where}: 'inputs'[{k}] should be a list of arguments for fn_name {fn_name!r}")
        tests.append(Test("call", i, o[0] if wrapped else o))
    return fn_name, tests


EXAMPLE_HEADER = re.compile(r"^-{3,}\s*([^\n-][^\n]*?)\s*-{3,}[ \t]*$", re.M)


def first_block(text: str) -> str:
    """An example's text: from its first non-blank line to the first blank line (what follows a
    blank line is prose, e.g. AtCoder's explanation after "Sample Output"), newline-terminated."""
    lines = text.lstrip("\n").split("\n")
    block = []
    for line in lines:
        if not line.strip():
            break
        block.append(line.rstrip())
    return "\n".join(block) + "\n" if block else ""


def statement_examples(question: str) -> list[Test]:
    """Public stdio tests from an APPS statement's example sections.

    Codeforces style: "-----Example(s)-----" then alternating "Input" / "Output" lines (Kattis:
    "Sample Input 1:" / "Sample Output 1:"), each followed by its block. AtCoder style: "-----Sample Input N-----" / "-----Sample Output N-----"
    sections, paired in order. Anything that does not pair up is dropped, never guessed.
    """
    heads = list(EXAMPLE_HEADER.finditer(question))
    tests, pending_input = [], None
    for k, h in enumerate(heads):
        title = h.group(1).lower()
        body = question[h.end(): heads[k + 1].start() if k + 1 < len(heads) else len(question)]
        if re.fullmatch(r"examples?( \d+)?", title):
            parts = re.split(r"^\s*(?:Sample )?(Input|Output)(?: \d+)?\s*:?\s*$", body, flags=re.M)
            pending = None
            for label, text in zip(parts[1::2], parts[2::2]):
                if label == "Input":
                    pending = first_block(text)
                elif pending is not None:
                    tests.append(Test("stdio", pending, first_block(text)))
                    pending = None
        elif re.fullmatch(r"sample input( \d+)?", title):
            pending_input = first_block(body)
        elif re.fullmatch(r"sample output( \d+)?", title) and pending_input is not None:
            tests.append(Test("stdio", pending_input, first_block(body)))
            pending_input = None
    return [t for t in tests if t.input and t.output]


def apps_problem(pid: str, question: str, solutions: Any, io_obj: Any, difficulty: str, starter: str,
                 examples: Any, where: dict[str, str], url: str = "") -> Problem:
    """`where` names, for each of solutions / input_output / examples, the file and record it came from."""
    if not isinstance(solutions, list) or not all(isinstance(s, str) for s in solutions):
        raise DataError(f"{where['solutions']}: should be a list of strings")
    fn_name, hidden = apps_tests(io_obj, where["input_output"], url)
    if examples is not None:   # CodeRL's example_input_output.json: the statement's examples, already parsed
        public = apps_tests(examples, where["examples"], url)[1]
    else:
        public = statement_examples(question) if fn_name is None else []
    return Problem(id=pid, question=question, solutions=solutions, starter_code=starter or "", fn_name=fn_name,
                   public_tests=public, hidden_tests=hidden, difficulty=difficulty or "unknown", source="apps")


def load_apps_folder(folder: Path) -> Problem:
    def file(name: str) -> Path:
        return folder / name

    if not file("question.txt").exists():
        raise DataError(f"{folder}: missing file 'question.txt'")
    solutions = parse_json(read_text(file("solutions.json")), file("solutions.json")) if file("solutions.json").exists() else []
    io_obj = parse_json(read_text(file("input_output.json")), file("input_output.json")) if file("input_output.json").exists() else None
    meta = parse_json(read_text(file("metadata.json")), file("metadata.json")) if file("metadata.json").exists() else {}
    examples = None
    if file("example_input_output.json").exists():
        examples = parse_json(read_text(file("example_input_output.json")), file("example_input_output.json"))
    starter = read_text(file("starter_code.py")) if file("starter_code.py").exists() else ""
    return apps_problem(folder.name, read_text(file("question.txt")), solutions, io_obj, meta.get("difficulty", "unknown"),
                        starter, examples, {k: str(file(f)) for k, f in (("solutions", "solutions.json"),
                        ("input_output", "input_output.json"), ("examples", "example_input_output.json"))},
                        meta.get("url", ""))


def load_apps_jsonl(path: Path) -> list[Problem]:
    problems = []
    for n, row in read_jsonl(path):
        where = f"{path}: line {n}"
        pid = str(need(row, "problem_id", (int, str), where))
        where = f"{path}: line {n} (problem_id {pid})"

        def json_field(key: str) -> Any:   # a JSON string in the HF layout; "" or absent means none
            value = row.get(key) or None
            return parse_json(value, f"{where}: field '{key}'") if isinstance(value, str) else value

        problems.append(apps_problem(pid, need(row, "question", str, where), json_field("solutions") or [],
                                     json_field("input_output"), row.get("difficulty") or "unknown",
                                     row.get("starter_code") or "", None,
                                     {k: f"{where}: field '{k}'" for k in ("solutions", "input_output")}, row.get("url") or ""))
    return problems


def load_apps(path: Path, split: str | None) -> list[Problem]:
    """PATH: a jsonl file, a folder of jsonl split files, a folder of split folders, a folder of
    problem folders, or one problem folder. Without a split, all split folders are loaded and
    ids become "<split>/<id>", because APPS numbers train and test problems from 0 each."""
    if split not in (None, "train", "test"):
        raise DataError(f"{path}: APPS has only train and test splits, not {split!r}")
    if path.is_file():
        return load_apps_jsonl(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such APPS file or folder")
    if (path / "question.txt").exists():
        return [load_apps_folder(path)]
    if split and (path / f"{split}.jsonl").exists():
        return load_apps_jsonl(path / f"{split}.jsonl")
    if split and (path / split).is_dir():
        path = path / split
    folders = [s for s in ("train", "test") if (path / s).is_dir()]
    jsonls = [s for s in ("train", "test") if (path / f"{s}.jsonl").exists()]
    if split and (folders or jsonls):
        raise DataError(f"{path}: no {split}/ folder or {split}.jsonl file")
    if folders:
        return [replace(p, id=f"{s}/{p.id}") for s in folders for p in load_apps(path / s, None)]
    if jsonls:
        return [replace(p, id=f"{s}/{p.id}") for s in jsonls for p in load_apps_jsonl(path / f"{s}.jsonl")]
    folders = sorted(d for d in path.iterdir() if d.is_dir())
    if not folders:
        raise DataError(f"{path}: no APPS problem folders (folders with question.txt) found")
    return [load_apps_folder(d) for d in folders]

# ----------------------------------------------------------------------------- MBPP


MBPP_SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "valid": (511, 600), "train": (601, 974)}


def parse_python(src: str) -> ast.Module | None:
    # MBPP code has invalid escapes like "\d" in plain strings; their SyntaxWarnings are noise here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.parse(src)
        except SyntaxError:
            return None


def assert_fn_name(test: str, defined: set[str]) -> str | None:
    """The function an assert exercises: the first call to a name the solution defines, else the
    first call to a name that is not a builtin (e.g. `assert math.isclose(area(2), 4)` -> area)."""
    tree = parse_python(test)
    calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)] if tree else []
    for name in calls:
        if name in defined:
            return name
    builtins = set(dir(__builtins__)) if isinstance(__builtins__, type(sys)) else set(__builtins__)
    return next((name for name in calls if name not in builtins), None)


def defined_names(code: str) -> set[str]:
    tree = parse_python(code)
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))} if tree else set()


def load_mbpp(path: Path, split: str | None) -> list[Problem]:
    """mbpp.jsonl (fields text, code, test_list, test_setup_code) or sanitized-mbpp.json (prompt,
    code, test_list, test_imports). The question is the task text alone; the first assert is the
    public example. challenge_test_list is not used: the standard MBPP score runs test_list only."""
    if path.is_dir():
        path = next((path / n for n in ("mbpp.jsonl", "sanitized-mbpp.json") if (path / n).exists()), path / "mbpp.jsonl")
    if path.suffix == ".json":
        rows = parse_json(read_text(path), str(path))
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON array of records")
        numbered = [(f"record {k}", r) for k, r in enumerate(rows)]
    else:
        numbered = [(f"line {n}", r) for n, r in read_jsonl(path)]
    if split is not None and split not in MBPP_SPLITS:
        raise DataError(f"{path}: unknown MBPP split {split!r} (expected one of {', '.join(MBPP_SPLITS)})")
    problems = []
    for loc, row in numbered:
        where = f"{path}: {loc}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object")
        task_id = need(row, "task_id", int, where)
        where = f"{path}: {loc} (task_id {task_id})"
        if split is not None and not MBPP_SPLITS[split][0] <= task_id <= MBPP_SPLITS[split][1]:
            continue
        question = need(row, "text" if "text" in row else "prompt", str, where)
        code = need(row, "code", str, where)
        tests = need(row, "test_list", list, where)
        if not tests or not all(isinstance(t, str) for t in tests):
            raise DataError(f"{where}: field 'test_list' should be a non-empty list of assert strings")
        setup = row.get("test_setup_code", "") if "test_imports" not in row else "\n".join(row["test_imports"])
        problems.append(Problem(
            id=str(task_id), question=question, solutions=[code], fn_name=assert_fn_name(tests[0], defined_names(code)),
            public_tests=[Test("assert", tests[0])], hidden_tests=[Test("assert", t) for t in tests],
            test_setup=setup or "", source="mbpp"))
    return problems

# ----------------------------------------------------------------------------- HumanEval


def doctest_examples(prompt: str, entry_point: str) -> list[Test]:
    """Public call tests from the prompt's examples: `>>> f(args)` followed by the value on the next
    line, or one-line `f(args) == value` (also ==>, ➞, =>, ->).
    Only calls to the entry point with literal arguments and a literal value are kept."""
    lines = [line.strip() for line in prompt.split("\n")]
    candidates = []
    for k, line in enumerate(lines):
        if line.startswith(">>> ") and k + 1 < len(lines) and lines[k + 1] and not lines[k + 1].startswith(">>>"):
            candidates.append((line[4:], lines[k + 1]))
        else:
            m = re.match(rf"^(?:>>> )?({re.escape(entry_point)}\(.*\))\s*(?:==>|==|➞|=>|->|returns?)\s*(.+?)\.?$", line)
            if m:
                candidates.append((m.group(1), m.group(2)))
    tests = []
    for call_src, value_src in candidates:
        try:
            call = ast.parse(call_src, mode="eval").body
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == entry_point
                    and not call.keywords):
                continue
            args = [ast.literal_eval(a) for a in call.args]
            tests.append(Test("call", args, ast.literal_eval(value_src)))
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            continue
    return tests


def load_humaneval(path: Path) -> list[Problem]:
    if path.is_dir():
        path = next((path / n for n in ("HumanEval.jsonl.gz", "HumanEval.jsonl") if (path / n).exists()), path / "HumanEval.jsonl.gz")
    problems = []
    for n, row in read_jsonl(path):
        where = f"{path}: line {n}"
        task_id = need(row, "task_id", str, where)
        where = f"{path}: line {n} ({task_id})"
        prompt, entry = need(row, "prompt", str, where), need(row, "entry_point", str, where)
        test, solution = need(row, "test", str, where), need(row, "canonical_solution", str, where)
        problems.append(Problem(
            id=task_id, question=prompt, solutions=[prompt + solution], starter_code=prompt, fn_name=entry,
            public_tests=doctest_examples(prompt, entry), hidden_tests=[Test("assert", f"{test}\ncheck({entry})\n")],
            source="humaneval"))
    return problems

# ----------------------------------------------------------------------------- synthetic (generator in synthetic.py)

SYNTHETIC_SPLITS = ("train", "valid", "test")


def load_synthetic(path: Path | None, split: str | None, seed: int = 0, sizes: tuple | None = None) -> list[Problem]:
    """Generating takes seconds, so the result is cached as JSON lines keyed by a digest of the
    generator's source: a changed generator never serves stale problems. PATH may name such a file."""
    if split is not None and split not in SYNTHETIC_SPLITS:
        raise DataError(f"synthetic: unknown split {split!r} (expected one of {', '.join(SYNTHETIC_SPLITS)})")
    if path is None:
        import synthetic   # lazily: loading real benchmarks never pays for the generator
        sizes = sizes or synthetic.DEFAULT_SIZES
        path = cache_dir() / f"synthetic-{seed}-{'x'.join(map(str, sizes))}-{synthetic.source_digest()}.jsonl"
        if not path.exists():
            print(f"synthetic: generating the benchmark once (cached in {path})", file=sys.stderr, flush=True)
            generated = synthetic.generate(seed, sizes, progress=True)
            write_atomic(path, synthetic.to_jsonl(generated).encode())
    # to_jsonl writes the split first, so a line of another split is skipped unparsed: reading the test split
    # then parses 1,500 lines, not all 22,400 (a second of every sample.py start on a 2-core CPU)
    others = tuple(f'{{"split": "{s}"' for s in SYNTHETIC_SPLITS if split and s != split)
    problems = []
    for n, row in read_jsonl(path, skip=others):
        if split is None or row.get("split") == split:
            try:
                problems.append(Problem.from_dict({k: v for k, v in row.items() if k != "split"}))
            except TypeError as e:
                raise DataError(f"{path}: line {n}: not a problem record ({e})") from None
    return problems

# ----------------------------------------------------------------------------- the entry point


CACHE_NAMES = {"apps": ("APPS", "apps"), "mbpp": ("mbpp.jsonl", "sanitized-mbpp.json"),
               "humaneval": ("HumanEval.jsonl.gz", "HumanEval.jsonl")}


def load_problems(spec: str, split: str | None = None) -> list[Problem]:
    """spec is "NAME" or "NAME:PATH"; see the module docstring. No problems, or two with one id (plans,
    samples and journals are matched by id), is an error."""
    problems = load_any(spec, split)
    where = f"--data {spec}" + (f" split {split}" if split else "")
    if not problems:
        raise DataError(f"{where}: no problems found (an empty file, or none in that split)")
    counts = Counter(p.id for p in problems)
    repeated = [pid for pid, count in counts.items() if count > 1]
    if repeated:
        raise DataError(f"{where}: {len(repeated)} problem ids occur more than once (e.g. {repeated[0]!r} "
                        f"{counts[repeated[0]]} times); every problem needs its own id")
    return problems


def load_any(spec: str, split: str | None) -> list[Problem]:
    name, _, path_str = spec.partition(":")
    if name not in ("apps", "mbpp", "humaneval", "synthetic"):
        raise DataError(f"--data {spec}: unknown dataset {name!r} (expected apps, mbpp, humaneval or synthetic)")
    if name == "synthetic":
        return load_synthetic(Path(path_str).expanduser() if path_str else None, split)
    if path_str:
        path = Path(path_str).expanduser()
        if not path.exists():
            raise DataError(f"--data {spec}: {path} does not exist")
    else:
        found = [cache_dir() / n for n in CACHE_NAMES[name] if (cache_dir() / n).exists()]
        if not found:
            hint = f"python data.py --download {name}" if name in DOWNLOADS else "pass --data NAME:PATH"
            raise DataError(f"--data {spec}: no {name} data in {cache_dir()} (run `{hint}` or pass --data {name}:PATH)")
        path = found[0]
    if name == "apps":
        return load_apps(path, split)
    if name == "mbpp":
        return load_mbpp(path, split)
    if split not in (None, "test"):
        raise DataError(f"--data {spec}: HumanEval has only a test split, not {split!r}")
    return load_humaneval(path)

# ----------------------------------------------------------------------------- download


@dataclass
class Download:
    url: str
    file: str            # name in the cache folder
    size: int | None     # bytes; None where no trustworthy number is known
    sha256: str | None


# MBPP and HumanEval sums are those of byte copies of the google-research / openai files whose
# lengths match those revisions. The APPS tarball's size and checksum are not published anywhere we
# could check, so APPS is verified by what it holds: a readable gzip tar with train/ and test/ folders.
DOWNLOADS = {
    "mbpp": [Download("https://raw.githubusercontent.com/google-research/google-research/master/mbpp/mbpp.jsonl",
                      "mbpp.jsonl", 563743, "ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f"),
             Download("https://raw.githubusercontent.com/google-research/google-research/master/mbpp/sanitized-mbpp.json",
                      "sanitized-mbpp.json", 255053, "ca95deaa9a01ef0a6f439f88bcf0dd3db3563d22f22aad6cae04ebb9a8d8c8e9")],
    "humaneval": [Download("https://github.com/openai/human-eval/raw/master/data/HumanEval.jsonl.gz",
                           "HumanEval.jsonl.gz", 44877, "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef")],
    "apps": [Download("https://people.eecs.berkeley.edu/~hendrycks/APPS.tar.gz", "APPS", None, None)],
}


def fetch(d: Download, dest: Path) -> None:
    """Streams d.url into a temp file next to dest, checks size and sha256, then renames (or, for
    a tarball, unpacks into a temp folder and renames that). Nothing half-written is left."""
    import requests
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest, done, start = hashlib.sha256(), 0, time.time()
        try:
            with os.fdopen(fd, "wb") as f, requests.get(d.url, stream=True, timeout=30) as r:
                r.raise_for_status()
                total = int(r.headers.get("content-length") or 0) or d.size
                for chunk in r.iter_content(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    rate = done / max(time.time() - start, 1e-6)
                    eta = f", ETA {(total - done) / rate:.0f}s" if total else ""
                    print(f"\r{dest.name}: {done / 1e6:.1f}/{(total or 0) / 1e6:.1f} MB, {rate / 1e6:.1f} MB/s{eta}", end="", file=sys.stderr)
            print(file=sys.stderr)
        except requests.RequestException as e:
            raise DataError(f"could not download {d.url} ({type(e).__name__}): check the network, or place "
                            f"the file at {dest} by hand") from None
        if d.size is not None and done != d.size:
            raise DataError(f"{d.url}: downloaded {done} bytes, expected {d.size}; the file was not saved")
        if d.sha256 is not None and digest.hexdigest() != d.sha256:
            raise DataError(f"{d.url}: sha256 {digest.hexdigest()} does not match {d.sha256}; the file was not saved")
        if d.url.endswith(".tar.gz"):
            unpack_apps(Path(tmp), dest)
        else:
            os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def unpack_apps(tarball: Path, dest: Path) -> None:
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        try:
            with tarfile.open(tarball, "r:gz") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"{tarball}: not a readable APPS tarball ({e})") from None
        root = next((p for p in [staging, *staging.iterdir()] if (p / "train").is_dir() and (p / "test").is_dir()), None)
        if root is None:
            raise DataError(f"{tarball}: the tarball holds no train/ and test/ folders")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(root, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download(name: str) -> list[Path]:
    if name not in DOWNLOADS:
        raise DataError(f"--download {name}: unknown dataset (expected one of {', '.join(DOWNLOADS)})")
    paths = []
    for d in DOWNLOADS[name]:
        fetch(d, cache_dir() / d.file)
        paths.append(cache_dir() / d.file)
    return paths

# ----------------------------------------------------------------------------- command line


def problem_format(p: Problem) -> str:
    kinds = {t.kind for t in p.hidden_tests + p.public_tests}
    return "assert" if "assert" in kinds else "call" if p.fn_name else "stdio"


def stats(problems: list[Problem]) -> str:
    count = lambda key: ", ".join(f"{k} {v}" for k, v in sorted(Counter(map(key, problems)).items()))
    rows = [
        ("problems", len(problems)),
        ("with solutions", sum(bool(p.solutions) for p in problems)),
        ("solutions", sum(len(p.solutions) for p in problems)),
        ("public tests", sum(len(p.public_tests) for p in problems)),
        ("hidden tests", sum(len(p.hidden_tests) for p in problems)),
        ("without public tests", sum(not p.public_tests for p in problems)),
        ("without hidden tests", sum(not p.hidden_tests for p in problems)),
        ("formats", count(problem_format)),
        ("difficulty", count(lambda p: p.difficulty)),
        ("longest question (chars)", max((len(p.question) for p in problems), default=0)),
        ("longest solution (chars)", max((len(s) for p in problems for s in p.solutions), default=0)),
    ]
    return "\n".join(f"{k:<26}{v}" for k, v in rows)


def show(p: Problem, width: int = 400) -> str:
    cut = lambda s: (s if len(s) <= width else s[:width] + f"... [{len(s) - width} more chars]")
    lines = [f"=== {p.source} {p.id} ({p.difficulty}, {problem_format(p)}" + (f", fn_name {p.fn_name}" if p.fn_name else "") + ")",
             cut(p.question).rstrip()]
    if p.starter_code:
        lines += ["--- starter code", cut(p.starter_code).rstrip()]
    if p.solutions:
        lines += [f"--- solution 1 of {len(p.solutions)}", cut(p.solutions[0]).rstrip()]
    for name, tests in (("public", p.public_tests), ("hidden", p.hidden_tests)):
        lines.append(f"--- {len(tests)} {name} tests" + (", first 3:" if len(tests) > 3 else ":" if tests else ""))
        lines += [f"  {t.kind}: {cut(repr(t.input))} -> {cut(repr(t.output))}" for t in tests[:3]]
    if p.reference_plan:
        lines += ["--- reference plan", cut(p.reference_plan).rstrip()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = cli.Parser(__doc__)
    parser.add_argument("--data", default="synthetic", help="NAME or NAME:PATH; NAME is apps, mbpp, humaneval or synthetic")
    parser.add_argument("--split", default=None, help="split to load: MBPP prompt/train/validation(valid)/test, "
                        "APPS train/test, synthetic train/valid/test; default: all")
    parser.add_argument("--stats", action="store_true", help="print counts: problems, solutions, tests, formats, difficulty")
    parser.add_argument("--show", type=cli.number(int, 0), default=0, metavar="N", help="print the first N problems readably")
    parser.add_argument("--download", metavar="NAME", help=f"fetch {', '.join(DOWNLOADS)} into $CODEPLAN_DATA "
                        "(default ~/.cache/codeplan), check size and sha256, and exit")
    args = parser.parse_args(argv)
    try:
        if args.download:
            for path in download(args.download):
                print(f"saved {path}")
            return
        problems = load_problems(args.data, args.split)
        for p in problems[:args.show]:
            print(show(p) + "\n")
        if args.stats or not args.show:
            print(stats(problems))
    except DataError as e:
        cli.fail(f"data.py: {e}")


if __name__ == "__main__":
    main()
