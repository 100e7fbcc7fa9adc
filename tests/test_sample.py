"""sample.py: plan sampling from a micro checkpoint trained here, the files it writes, and its table."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import codeplan  # noqa: E402
import data  # noqa: E402
import model  # noqa: E402
import sample  # noqa: E402
import teacher  # noqa: E402
import train  # noqa: E402

SHARED_DATA = ROOT.parent / "shared" / "data"
from conftest import MICRO  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(spec, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(model.PRESETS, "tiny", MICRO)
        train.main(["--data", spec, "--out", str(runs), "--name", "micro", "--device", "cpu", "--steps", "8",
                    "--batch-size", "8", "--vocab-size", "400", "--max-source-len", "128", "--max-target-len", "48",
                    "--lr", "3e-3", "--warmup", "2", "--log-interval", "4", "--eval-interval", "8",
                    "--eval-examples", "8", "--pass1-limit", "-1"])
    return runs / "micro" / "last.pt"


def run_sample(checkpoint: Path, out: Path, capsys, *flags: str) -> tuple[str, Path]:
    sample.main(["--checkpoint", str(checkpoint), "--out", str(out), "--max-new-tokens", "24", "--limit", "3",
                 "--workers", "2", *flags])
    return capsys.readouterr().out, out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def table(printed: str) -> tuple[list[str], dict[str, list[float]]]:
    """The header's metric names and each row's numbers, from the printed markdown table."""
    lines = [l for l in printed.splitlines() if l.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")][2:]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = [int(cells[1])] + [float(x) for x in cells[2:]]
    return header, rows


def check_outputs(out: Path, n_rows_per_problem: int, limit: int = 3) -> tuple[list[dict], list[dict]]:
    for name in ("config.json", "samples.jsonl", "samples_results.jsonl", "report.md"):
        assert (out / name).exists(), name
    assert not list(out.glob("*.tmp"))
    samples, results = read_jsonl(out / "samples.jsonl"), read_jsonl(out / "samples_results.jsonl")
    assert all({"task_id", "code", "plan", "plan_id", "rank"} <= s.keys() for s in samples)
    assert len(samples) == len(results) == limit * n_rows_per_problem
    assert [(s["task_id"], s["rank"]) for s in samples] == [(r["task_id"], r["rank"]) for r in results]
    ids = list(dict.fromkeys(s["task_id"] for s in samples))
    assert len(ids) == limit
    for tid in ids:
        assert [s["rank"] for s in samples if s["task_id"] == tid] == list(range(n_rows_per_problem))
    assert all(isinstance(r["passed"], bool) and r["status"] for r in results)
    return samples, results


# ----------------------------------------------------------------------------- modes

def test_direct_code_n0(checkpoint, tmp_path, capsys, spec):
    printed, out = run_sample(checkpoint, tmp_path / "direct", capsys, "--n", "0")
    samples, _ = check_outputs(out, 1)
    assert all(s["plan"] is None and s["plan_id"] is None for s in samples)
    config = json.loads((out / "config.json").read_text())
    assert config["n"] == 0 and config["data"] == spec and config["problems"] == 3 and config["k"] == [1]
    assert config["checkpoint"] == str(checkpoint)
    header, rows = table(printed)
    assert header == ["filtered_pass@1", "raw_pass@1"]
    assert rows["all"][0] == 3
    assert table((out / "report.md").read_text()) == (header, rows)
    # the test split's first three problems, in order
    assert [s["task_id"] for s in samples] == [p.id for p in data.load_problems(spec, "test")[:3]]


def test_greedy_plan_n1(checkpoint, tmp_path, capsys):
    printed, out = run_sample(checkpoint, tmp_path / "greedy", capsys, "--n", "1", "--greedy-plan")
    samples, _ = check_outputs(out, 1)
    assert all(isinstance(s["plan"], str) and s["plan_id"] == 0 for s in samples)
    assert table(printed)[0] == ["filtered_pass@1", "raw_pass@1"]
    # greedy plan and greedy code: a second run writes the same samples
    run_sample(checkpoint, tmp_path / "again", capsys, "--n", "1", "--greedy-plan", "--seed", "5")
    again = read_jsonl(tmp_path / "again" / "samples.jsonl")
    assert [(s["plan"], s["code"]) for s in again] == [(s["plan"], s["code"]) for s in samples]


def test_n2_with_two_samples_per_plan(checkpoint, tmp_path, capsys):
    printed, out = run_sample(checkpoint, tmp_path / "n2", capsys, "--n", "2", "--samples-per-plan", "2")
    samples, _ = check_outputs(out, 4)
    for tid in {s["task_id"] for s in samples}:
        rows = [s for s in samples if s["task_id"] == tid]
        assert sorted(s["plan_id"] for s in rows) == [0, 0, 1, 1]
        # ranked: public-test pass rate first, then log-probability
        keys = [(-(s["public_pass_rate"] or 0.0), -s["logprob"]) for s in rows]
        assert keys == sorted(keys)
        # both programs of a plan carry that plan
        for pid in (0, 1):
            assert len({s["plan"] for s in rows if s["plan_id"] == pid}) == 1
    header, _ = table(printed)
    assert header == ["filtered_pass@1", "raw_pass@1", "filtered_pass@2", "raw_pass@2"]   # k <= N x M = 4 only
    assert "pass@5" not in printed


def test_plans_from_a_reference_plans_file(checkpoint, tmp_path, capsys, spec):
    problems = data.load_problems(spec, "test")
    plans_file = tmp_path / "plans.jsonl"
    teacher.write_reference_plans(problems, str(plans_file))
    expected = teacher.read_plans(str(plans_file))
    printed, out = run_sample(checkpoint, tmp_path / "given", capsys, "--plans-from", str(plans_file))
    samples, _ = check_outputs(out, 1)
    assert all(s["plan"] == expected[s["task_id"]][0] and s["plan_id"] == 0 for s in samples)
    assert table(printed)[0] == ["filtered_pass@1", "raw_pass@1"]    # one given plan per problem, whatever --n says
    # a plans file that lacks a problem is refused, rather than that problem silently dropping out of pass@k
    teacher.write_reference_plans(problems[1:], str(plans_file))
    with pytest.raises(SystemExit) as e:
        run_sample(checkpoint, tmp_path / "partial", capsys, "--plans-from", str(plans_file))
    assert problems[0].id in str(e.value)
    with pytest.raises(SystemExit) as e:
        run_sample(checkpoint, tmp_path / "none", capsys, "--plans-from", str(tmp_path / "absent.jsonl"))
    assert "absent.jsonl" in str(e.value)


# ----------------------------------------------------------------------------- ranking and scoring, with known answers

def oracle(problems: list[data.Problem]):
    """Stands in for generate_texts: plan j is "PLAN j"; the code written for plan 1 is the problem's
    ground-truth solution, for plan 0 a wrong program that the model prefers (higher log-probability)."""
    def fake(model, tokenizer, sources, head, n=1, **_):
        out = []
        for src in sources:
            if head == "plan":
                out.append([(f"PLAN {j}", -1.0) for j in range(n)])
                continue
            p = next(p for p in problems if p.question.rstrip() in src)
            right = "PLAN 1" in src
            code = p.solutions[0] if right else f"def {p.fn_name}(*args):\n    return None\n"
            out.append([(code, -3.0 if right else -0.5)] * n)
        return out
    return fake


def test_public_tests_pick_the_right_program_and_sandbox_rescoring_agrees(checkpoint, tmp_path, capsys, spec, monkeypatch):
    problems = data.load_problems(spec, "test")[:4]
    assert all(p.public_tests for p in problems)
    monkeypatch.setattr(codeplan, "generate_texts", oracle(problems))
    printed, out = run_sample(checkpoint, tmp_path / "oracle", capsys, "--n", "2", "--limit", "4")
    samples, results = check_outputs(out, 2, limit=4)
    assert [s["plan_id"] for s in samples] == [1, 0] * 4          # the lower log-probability, but it passes
    assert [s["public_pass_rate"] for s in samples] == [1.0, 0.0] * 4
    assert [r["passed"] for r in results] == [True, False] * 4
    header, rows = table(printed)
    by_name = dict(zip(header, rows["all"][1:]))
    assert by_name == {"filtered_pass@1": 100.0, "raw_pass@1": 50.0, "filtered_pass@2": 100.0, "raw_pass@2": 100.0}
    # difficulty rows in a fixed order after "all", then the synthetic test split's tier rows
    names = [n for n in rows if not n.startswith("tier ")]
    assert sum(rows[n][0] for n in rows if n.startswith("tier ")) == 4
    order = ["all", "introductory", "interview", "competition"]
    assert names == [n for n in order if n in names] and names[0] == "all"
    assert sum(rows[n][0] for n in names[1:]) == 4
    # sandbox.py scores the same samples file to the same verdicts
    rescore = tmp_path / "rescore"
    rescore.mkdir()
    shutil.copy(out / "samples.jsonl", rescore / "samples.jsonl")
    done = subprocess.run([sys.executable, "sandbox.py", "--data", spec, "--samples", str(rescore / "samples.jsonl")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    again = read_jsonl(rescore / "samples_results.jsonl")
    assert [r["passed"] for r in again] == [r["passed"] for r in results]
    assert [r["status"] for r in again] == [r["status"] for r in results]
    # one results format: re-scoring gives the rows sample.py wrote, up to the measured time
    assert all(isinstance(r["time"], float) for r in results + again)
    assert [{**r, "time": 0} for r in again] == [{**r, "time": 0} for r in results]


def test_rescoring_the_micro_model_samples_agrees(checkpoint, tmp_path, capsys, spec):
    _, out = run_sample(checkpoint, tmp_path / "micro", capsys, "--n", "2")
    results = read_jsonl(out / "samples_results.jsonl")
    done = subprocess.run([sys.executable, "sandbox.py", "--data", spec, "--samples", str(out / "samples.jsonl")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    again = read_jsonl(out / "samples_results.jsonl")     # sandbox.py writes the same name next to the samples
    assert sum(r["passed"] for r in again) == sum(r["passed"] for r in results)
    assert [r["status"] for r in again] == [r["status"] for r in results]
    assert [{**r, "time": 0} for r in again] == [{**r, "time": 0} for r in results]   # same format, in place


def test_report_table_rows_come_in_a_fixed_order():
    def problem(i, difficulty):
        return data.Problem(id=str(i), question="q", difficulty=difficulty)
    problems = [problem(i, d) for i, d in enumerate(["competition", "zeta", "interview", "introductory", "alpha",
                                                    "competition"])]
    ranked = [[codeplan.Candidate("x", 0.0, passed=i % 2 == 0)] for i in range(len(problems))]
    header, rows = table(sample.report_table(problems, ranked, [1]))
    assert list(rows) == ["all", "introductory", "interview", "competition", "alpha", "zeta"]
    assert rows["competition"] == [2, 50.0, 50.0] and rows["all"][0] == 6


# ----------------------------------------------------------------------------- real data with the synthetic tokenizer

@pytest.mark.skipif(not (SHARED_DATA / "mbpp" / "mbpp.jsonl").exists(), reason="../shared/data is absent")
def test_mbpp_test_split_end_to_end(checkpoint, tmp_path, capsys):
    spec = f"mbpp:{SHARED_DATA / 'mbpp' / 'mbpp.jsonl'}"
    printed, out = run_sample(checkpoint, tmp_path / "mbpp", capsys, "--data", spec, "--split", "test", "--n", "1")
    samples, results = check_outputs(out, 1)
    expected = [p.id for p in data.load_problems(spec, "test")[:3]]
    assert [s["task_id"] for s in samples] == expected
    assert all(r["status"] != "harness_error" for r in results)
    header, rows = table(printed)
    assert header == ["filtered_pass@1", "raw_pass@1"] and rows["all"][0] == 3


@pytest.mark.skipif(not (SHARED_DATA / "humaneval" / "HumanEval.jsonl.gz").exists(), reason="../shared/data is absent")
def test_humaneval_end_to_end(checkpoint, tmp_path, capsys):
    spec = f"humaneval:{SHARED_DATA / 'humaneval' / 'HumanEval.jsonl.gz'}"
    printed, out = run_sample(checkpoint, tmp_path / "he", capsys, "--data", spec, "--n", "0", "--limit", "2")
    samples, results = check_outputs(out, 1, limit=2)
    assert [s["task_id"] for s in samples] == ["HumanEval/0", "HumanEval/1"]
    assert all(r["status"] != "harness_error" for r in results)
    assert table(printed)[1]["all"][0] == 2
