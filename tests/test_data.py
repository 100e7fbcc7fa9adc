"""Tests of data.py: loaders on small fixtures written here, errors, CLI, and (when ../shared/data
exists) every real benchmark file. The tokenizer and batching have test_tokenizer.py and test_batching.py."""
import gzip
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import synthetic  # noqa: E402
from problems import DataError, Problem, Test  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"

# ----------------------------------------------------------------------------- fixtures

CF_QUESTION = """Sum two numbers.

-----Input-----

Two integers.

-----Output-----

Their sum.

-----Examples-----
Input
1 2

Output
3

Input
5 5

Output
10



-----Note-----

Easy."""

ATCODER_QUESTION = """Print N.

-----Sample Input-----
4
1 2

-----Sample Output-----
Yes
4

The figure shows why.
"""


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def apps_folder(root: Path) -> Path:
    """APPS original layout: train/ with a stdio, a codewars call-based, a leetcode call-based
    problem and one with CodeRL's example file; test/ with one problem (same id as in train)."""
    train = root / "train"
    (train / "0000").mkdir(parents=True)
    (train / "0000" / "question.txt").write_text(CF_QUESTION)
    write_json(train / "0000" / "solutions.json", ["print(sum(map(int, input().split())))"])
    write_json(train / "0000" / "input_output.json", {"inputs": ["1 2\n", ["7", "8"]], "outputs": ["3\n", ["15"]]})
    write_json(train / "0000" / "metadata.json", {"difficulty": "interview", "url": "https://codeforces.com/x"})
    (train / "0001").mkdir()
    (train / "0001" / "question.txt").write_text("Is n prime? Example: is_prime(2) == True")
    write_json(train / "0001" / "solutions.json", ["def is_prime(n): return n == 2"])
    write_json(train / "0001" / "input_output.json", {"fn_name": "is_prime", "inputs": [[2], [4]], "outputs": [[True], [False]]})
    write_json(train / "0001" / "metadata.json", {"difficulty": "introductory", "url": "https://www.codewars.com/kata/1"})
    (train / "0001" / "starter_code.py").write_text("def is_prime(n):\n\t")
    (train / "0002").mkdir()
    (train / "0002" / "question.txt").write_text("Return [k].")
    write_json(train / "0002" / "solutions.json", [])
    write_json(train / "0002" / "input_output.json", {"fn_name": "f", "inputs": [[1], [2]], "outputs": [[1], [2]]})
    write_json(train / "0002" / "metadata.json", {"difficulty": "introductory", "url": "https://leetcode.com/problems/f/"})
    (train / "0003").mkdir()
    (train / "0003" / "question.txt").write_text(ATCODER_QUESTION)
    write_json(train / "0003" / "input_output.json", {"inputs": ["9\n"], "outputs": ["9\n"]})
    write_json(train / "0003" / "example_input_output.json", {"inputs": ["4\n"], "outputs": ["4\n"]})
    (root / "test" / "0000").mkdir(parents=True)
    (root / "test" / "0000" / "question.txt").write_text(ATCODER_QUESTION)
    write_json(root / "test" / "0000" / "input_output.json", {"inputs": ["4\n1 2\n"], "outputs": ["Yes\n4\n"]})
    return root


def apps_jsonl(path: Path, rows=None) -> Path:
    rows = rows if rows is not None else [
        {"problem_id": 12, "question": CF_QUESTION, "solutions": json.dumps(["print(3)"]), "difficulty": "interview",
         "starter_code": "", "input_output": json.dumps({"inputs": ["1 2\n"], "outputs": ["3\n"]})},
        {"problem_id": 13, "question": "No examples here.", "input_output": ""},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def mbpp_jsonl(path: Path) -> Path:
    rows = [{"task_id": i, "text": f"Write a function number {i}.", "code": f"import math\r\ndef f{i}(x):\r\n    return x\r\n",
             "test_list": [f"assert f{i}(1) == 1", f"assert math.isclose(f{i}(2), 2)", f"assert f{i}(3) == 3"],
             "test_setup_code": "import math" if i == 12 else "", "challenge_test_list": []}
            for i in (1, 10, 11, 12, 510, 511, 600, 601, 974)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


HUMANEVAL_PROMPT = '''def add(x: int, y: int) -> int:
    """Add two numbers.
    >>> add(2, 3)
    5
    >>> add(x=1, y=1)
    2
    >>> add(1, [2][0])
    3
    add(-1, 1) ➞ 0
    """
'''


def humaneval_gz(path: Path) -> Path:
    rows = [{"task_id": "HumanEval/0", "prompt": HUMANEVAL_PROMPT, "canonical_solution": "    return x + y\n",
             "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n", "entry_point": "add"}]
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    return path

# ----------------------------------------------------------------------------- APPS


def test_apps_original_layout(tmp_path):
    root = apps_folder(tmp_path / "APPS")
    train = {p.id: p for p in data.load_problems(f"apps:{root}", "train")}
    assert sorted(train) == ["0000", "0001", "0002", "0003"]
    stdio = train["0000"]
    assert stdio.fn_name is None and stdio.difficulty == "interview" and stdio.source == "apps"
    assert stdio.hidden_tests == [Test("stdio", "1 2\n", "3\n"), Test("stdio", "7\n8", "15")]   # line lists joined
    assert stdio.public_tests == [Test("stdio", "1 2\n", "3\n"), Test("stdio", "5 5\n", "10\n")]  # from the statement
    codewars, leetcode = train["0001"], train["0002"]
    assert codewars.fn_name == "is_prime" and codewars.starter_code == "def is_prime(n):\n\t"
    assert codewars.hidden_tests == [Test("call", [2], True), Test("call", [4], False)]   # [x] wrapper removed
    assert codewars.public_tests == []   # call-based statements are not parsed: no guessing
    assert leetcode.hidden_tests == [Test("call", [1], [1]), Test("call", [2], [2])]     # leetcode is never wrapped
    coderl = train["0003"]
    assert coderl.public_tests == [Test("stdio", "4\n", "4\n")] and coderl.difficulty == "unknown" and coderl.solutions == []
    both = data.load_problems(f"apps:{root}")
    assert [p.id for p in both] == ["train/0000", "train/0001", "train/0002", "train/0003", "test/0000"]
    assert both[-1].public_tests == [Test("stdio", "4\n1 2\n", "Yes\n4\n")]   # AtCoder sample, prose after blank line dropped
    assert [p.id for p in data.load_problems(f"apps:{root}/train/0001")] == ["0001"]
    with pytest.raises(DataError, match="only train and test splits, not 'valid'"):
        data.load_problems(f"apps:{root}", "valid")
    (root / "test").rename(root / "other")
    with pytest.raises(DataError, match="no test/ folder"):
        data.load_problems(f"apps:{root}", "test")


def test_apps_hf_layout(tmp_path):
    problems = data.load_problems(f"apps:{apps_jsonl(tmp_path / 'test.jsonl')}")
    assert [p.id for p in problems] == ["12", "13"]
    assert problems[0].solutions == ["print(3)"] and problems[0].hidden_tests == [Test("stdio", "1 2\n", "3\n")]
    assert len(problems[0].public_tests) == 2
    assert problems[1].solutions == [] and problems[1].hidden_tests == [] and problems[1].difficulty == "unknown"
    assert [p.id for p in data.load_problems(f"apps:{tmp_path}", "test")] == ["12", "13"]
    assert [p.id for p in data.load_problems(f"apps:{tmp_path}")] == ["test/12", "test/13"]


def test_statement_examples_kattis_and_unpaired():
    kattis = "-----Examples-----\nSample Input 1:\nab\nSample Output 1:\nb\n\nSample Input 2:\ncc\nSample Output 2:\nc\n"
    assert data.statement_examples(kattis) == [Test("stdio", "ab\n", "b\n"), Test("stdio", "cc\n", "c\n")]
    assert data.statement_examples("-----Sample Input-----\n1\n") == []   # an input without output is dropped
    assert data.statement_examples("Input\n1\nOutput\n2\n") == []         # not inside an example section


@pytest.mark.parametrize("io_obj, field", [
    ('{"inputs": ["1"], "outputs": ["1", "2"]}', "'outputs'"),
    ('{"inputs": ["1"]}', "'outputs'"),
    ('{"inputs": ["1"], ', "bad JSON"),
])
def test_apps_malformed_folder(tmp_path, io_obj, field):
    root = apps_folder(tmp_path / "APPS")
    (root / "train" / "0001" / "input_output.json").write_text(io_obj)
    with pytest.raises(DataError) as e:
        data.load_problems(f"apps:{root}/train")
    assert "0001" in str(e.value) and "input_output.json" in str(e.value) and field in str(e.value)


def test_apps_malformed_jsonl(tmp_path):
    good = {"problem_id": 1, "question": "q", "input_output": json.dumps({"inputs": ["1"], "outputs": ["1"]})}
    cases = [
        ([good, {"problem_id": 2, "question": "q", "input_output": json.dumps({"inputs": ["1", "2"], "outputs": ["1"]})}],
         ["line 2", "problem_id 2", "input_output", "'outputs'"]),
        ([good, {"problem_id": 3}], ["line 2", "problem_id 3", "'question'"]),
        ([good, {"problem_id": 4, "question": "q", "solutions": "[not json"}], ["line 2", "problem_id 4", "'solutions'", "bad JSON"]),
    ]
    for rows, needles in cases:
        path = apps_jsonl(tmp_path / "bad.jsonl", rows)
        with pytest.raises(DataError) as e:
            data.load_problems(f"apps:{path}")
        assert all(n in str(e.value) for n in [str(path)] + needles), str(e.value)
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(good) + "\n{oops\n")
    with pytest.raises(DataError, match=r"broken.jsonl: line 2: bad JSON"):
        data.load_problems(f"apps:{path}")

# ----------------------------------------------------------------------------- MBPP and HumanEval


def test_mbpp_jsonl_and_splits(tmp_path):
    path = mbpp_jsonl(tmp_path / "mbpp.jsonl")
    problems = data.load_problems(f"mbpp:{path}")
    assert len(problems) == 9
    p = next(p for p in problems if p.id == "12")
    assert p.solutions == ["import math\r\ndef f12(x):\r\n    return x\r\n"]   # CRLF kept byte for byte
    assert p.fn_name == "f12" and p.test_setup == "import math" and p.source == "mbpp"
    assert p.public_tests == [Test("assert", "assert f12(1) == 1")] and len(p.hidden_tests) == 3
    ids = lambda split: [p.id for p in data.load_problems(f"mbpp:{path}", split)]
    assert ids("prompt") == ["1", "10"] and ids("test") == ["11", "12", "510"] and ids("train") == ["601", "974"]
    assert ids("validation") == ids("valid") == ["511", "600"]
    with pytest.raises(DataError, match="unknown MBPP split 'dev'"):
        data.load_problems(f"mbpp:{path}", "dev")


def test_mbpp_sanitized_and_fn_name_behind_builtin(tmp_path):
    rows = [{"source_file": "x", "task_id": 2, "prompt": "Area.", "code": "def area(r):\n    return 3 * r * r\n",
             "test_imports": ["import math"], "test_list": ["assert math.isclose(round(area(2)), 12)"]}]
    path = tmp_path / "sanitized-mbpp.json"
    write_json(path, rows)
    [p] = data.load_problems(f"mbpp:{path}")
    assert (p.id, p.question, p.fn_name, p.test_setup) == ("2", "Area.", "area", "import math")
    rows[0]["test_list"] = []
    write_json(path, rows)
    with pytest.raises(DataError, match=r"sanitized-mbpp.json: record 0 \(task_id 2\): field 'test_list'"):
        data.load_problems(f"mbpp:{path}")


def test_humaneval_gz_doctests(tmp_path):
    [p] = data.load_problems(f"humaneval:{humaneval_gz(tmp_path / 'HumanEval.jsonl.gz')}")
    assert (p.id, p.fn_name, p.starter_code) == ("HumanEval/0", "add", HUMANEVAL_PROMPT)
    assert p.solutions == [HUMANEVAL_PROMPT + "    return x + y\n"]
    assert p.hidden_tests == [Test("assert", "def check(candidate):\n    assert candidate(1, 2) == 3\n\ncheck(add)\n")]
    # keyword and non-literal calls are skipped; the ➞ form is parsed
    assert p.public_tests == [Test("call", [2, 3], 5), Test("call", [-1, 1], 0)]
    with pytest.raises(DataError, match="only a test split"):
        data.load_problems(f"humaneval:{tmp_path}", "train")

# ----------------------------------------------------------------------------- cache, synthetic, download, CLI


def test_cache_folder_lookup(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEPLAN_DATA", str(tmp_path))
    with pytest.raises(DataError, match="python data.py --download mbpp"):
        data.load_problems("mbpp")
    mbpp_jsonl(tmp_path / "mbpp.jsonl")
    assert len(data.load_problems("mbpp", "test")) == 3
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        data.load_problems("nope")


def test_synthetic_generates_once_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEPLAN_DATA", str(tmp_path))
    calls = []

    def generate(seed, sizes, progress=False):
        calls.append((seed, sizes))
        make = lambda s, i: Problem(id=f"{s}-{i}", question="q", solutions=["print(1)"], public_tests=[Test("stdio", "", "1\n")],
                                    hidden_tests=[Test("call", [[1, 2]], [2, 1])], difficulty="interview",
                                    source="synthetic", reference_plan="1. Print one.").to_dict()
        return {s: [make(s, i) for i in range(n)] for s, n in zip(("train", "valid", "test"), (3, 2, 1))}

    monkeypatch.setitem(sys.modules, "synthetic", types.SimpleNamespace(DEFAULT_SIZES=(9, 8, 7), generate=generate,
                                                                        source_digest=lambda: "d1", to_jsonl=synthetic.to_jsonl))
    assert [p.id for p in data.load_problems("synthetic", "valid")] == ["valid-0", "valid-1"]
    cached = tmp_path / "synthetic-0-9x8x7-d1.jsonl"
    assert cached.exists() and len(data.load_problems("synthetic")) == 6 and len(calls) == 1
    test = data.load_problems(f"synthetic:{cached}", "test")
    assert test[0].hidden_tests == [Test("call", [[1, 2]], [2, 1])] and test[0].reference_plan == "1. Print one."
    with pytest.raises(DataError, match="unknown split 'validation'"):
        data.load_problems("synthetic", "validation")
    # reading one split skips the others' lines unparsed; a file whose records put "split" elsewhere still loads
    lines = cached.read_text().splitlines()
    reordered = [json.dumps({**{k: v for k, v in json.loads(l).items() if k != "split"}, "split": json.loads(l)["split"]}) for l in lines]
    (tmp_path / "reordered.jsonl").write_text("\n".join(reordered) + "\n")
    assert [p.id for p in data.load_problems(f"synthetic:{tmp_path / 'reordered.jsonl'}", "valid")] == ["valid-0", "valid-1"]
    (tmp_path / "broken-train.jsonl").write_text('{"split": "train", "id": "train-0", broken\n' + "\n".join(lines[3:]) + "\n")
    assert [p.id for p in data.load_problems(f"synthetic:{tmp_path / 'broken-train.jsonl'}", "test")] == ["test-0"]
    with pytest.raises(DataError, match="broken-train.jsonl: line 1"):
        data.load_problems(f"synthetic:{tmp_path / 'broken-train.jsonl'}", "train")


def test_download_offline_fails_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEPLAN_DATA", str(tmp_path))
    monkeypatch.setitem(data.DOWNLOADS, "mbpp", [data.Download("http://127.0.0.1:9/mbpp.jsonl", "mbpp.jsonl", 3, None)])
    with pytest.raises(DataError) as e:
        data.download("mbpp")
    assert "could not download http://127.0.0.1:9/mbpp.jsonl" in str(e.value) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []   # no partial file left behind


class FakeResponse:
    def __init__(self, payload: bytes):
        self.payload, self.headers = payload, {"content-length": str(len(payload))}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def raise_for_status(self):
        pass

    def iter_content(self, size):
        yield self.payload


def test_download_checks_size_and_sha256(tmp_path, monkeypatch):
    import hashlib
    import requests
    monkeypatch.setenv("CODEPLAN_DATA", str(tmp_path))
    monkeypatch.setattr(requests, "get", lambda url, **kw: FakeResponse(b"abc"))
    good = data.Download("http://x/f", "f.jsonl", 3, hashlib.sha256(b"abc").hexdigest())
    data.fetch(good, tmp_path / "f.jsonl")
    assert (tmp_path / "f.jsonl").read_bytes() == b"abc"
    for bad, message in ((data.Download("http://x/g", "g", 4, None), "expected 4"),
                         (data.Download("http://x/g", "g", 3, "0" * 64), "does not match")):
        with pytest.raises(DataError, match=message):
            data.fetch(bad, tmp_path / "g")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.jsonl"]


def run_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "data.py"), *args], capture_output=True, text=True, timeout=60)


def test_cli_stats_show_and_errors(tmp_path):
    path = mbpp_jsonl(tmp_path / "mbpp.jsonl")
    r = run_cli("--data", f"mbpp:{path}", "--split", "test", "--stats", "--show", "1")
    assert r.returncode == 0, r.stderr
    assert "=== mbpp 11" in r.stdout and "problems                  3" in r.stdout and "assert 3" in r.stdout
    (tmp_path / "bad.jsonl").write_text('{"task_id": 1, "text": "t"}\n')
    r = run_cli("--data", f"mbpp:{tmp_path / 'bad.jsonl'}", "--stats")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "bad.jsonl: line 1 (task_id 1): missing field 'code'" in r.stderr

# ----------------------------------------------------------------------------- the real files


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is absent")
def test_real_benchmark_counts():
    mbpp = data.load_problems(f"mbpp:{SHARED / 'mbpp' / 'mbpp.jsonl'}")
    assert len(mbpp) == 974 and all(p.fn_name and p.public_tests and len(p.hidden_tests) >= 3 for p in mbpp)
    assert "\r\n" in mbpp[0].solutions[0]
    assert len(data.load_problems(f"mbpp:{SHARED / 'mbpp' / 'mbpp.jsonl'}", "test")) == 500
    sanitized = data.load_problems(f"mbpp:{SHARED / 'mbpp' / 'sanitized-mbpp.json'}")
    assert len(sanitized) == 427 and all(p.fn_name for p in sanitized)
    humaneval = data.load_problems(f"humaneval:{SHARED / 'humaneval' / 'HumanEval.jsonl.gz'}")
    assert len(humaneval) == 164 and sum(bool(p.public_tests) for p in humaneval) > 100
    original = data.load_problems(f"apps:{SHARED / 'apps' / 'original' / 'train'}")
    assert [p.id for p in original] == ["0001", "0111", "2287", "2404", "4184"]
    assert [p.fn_name for p in original] == [None, None, None, "findKthPositive", "is_prime"]
    assert all(p.public_tests for p in original if p.fn_name is None)
    hf = data.load_problems(f"apps:{SHARED / 'apps' / 'hf_layout_partial' / 'apps_10.jsonl'}")
    assert len(hf) == 10 and all(p.hidden_tests and p.public_tests and not p.solutions for p in hf)


def test_provenance_counts_code_changes_but_not_a_runs_own_results(tmp_path):
    from problems import provenance
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    (tmp_path / "train.py").write_text("x = 1\n")
    subprocess.run(git + ["add", "train.py"], check=True)
    subprocess.run(git + ["commit", "-qm", "c"], check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert provenance(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "results" / "cpu").mkdir(parents=True)
    (tmp_path / "results" / "cpu" / "config.json").write_text("{}")
    assert provenance(tmp_path) == {"commit": head, "dirty": False}   # outputs of a run in this checkout
    (tmp_path / "helper.py").write_text("y = 2\n")
    assert provenance(tmp_path)["dirty"]                               # new code
    (tmp_path / "helper.py").unlink()
    (tmp_path / "train.py").write_text("x = 2\n")
    assert provenance(tmp_path)["dirty"]                               # changed code
    assert provenance(tmp_path / "results").get("commit") == head      # any folder of the checkout
    assert provenance(tmp_path.parent / "elsewhere") == {"commit": "unknown", "dirty": True}
