"""sample.py: plan sampling from a micro checkpoint trained here, the files it writes, and its table."""
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import checkpoint as checkpoint_file  # noqa: E402
import codeplan  # noqa: E402
import data  # noqa: E402
import model  # noqa: E402
import sample  # noqa: E402
import score  # noqa: E402
import teacher  # noqa: E402
import train  # noqa: E402
from problems import Problem  # noqa: E402

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
    first_table = printed[printed.index("\n| ") + 1:].split("\n\n")[0]
    lines = [l for l in first_table.splitlines() if l.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")][2:]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = [int(cells[1])] + [float(x) for x in cells[2:]]
    return header, rows


def check_outputs(out: Path, n_rows_per_problem: int, limit: int = 3) -> tuple[list[dict], list[dict]]:
    for name in ("config.json", "journal.jsonl", "samples.jsonl", "samples_results.jsonl", "report.md", "report.json"):
        assert (out / name).exists(), name
    assert not [f for f in out.iterdir() if f.name.startswith(".")]     # no temp file left behind
    samples, results = read_jsonl(out / "samples.jsonl"), read_jsonl(out / "samples_results.jsonl")
    assert all({"task_id", "code", "plan", "plan_id", "rank", "duplicate"} <= s.keys() for s in samples)
    assert len(samples) == len(results) == limit * n_rows_per_problem
    assert [(s["task_id"], s["rank"]) for s in samples] == [(r["task_id"], r["rank"]) for r in results]
    ids = list(dict.fromkeys(s["task_id"] for s in samples))
    assert len(ids) == limit
    for tid in ids:
        rows = [s for s in samples if s["task_id"] == tid]
        # distinct programs get ranks 0, 1, ...; a copy of a program follows it with its rank
        distinct = [s["rank"] for s in rows if not s["duplicate"]]
        assert distinct == list(range(len(distinct)))
        assert len({codeplan.program_key(s["code"]) for s in rows}) == len(distinct)
    assert all(isinstance(r["passed"], bool) and r["status"] for r in results)
    return samples, results


def journal_problems(path: Path) -> list[str]:
    return [r["task_id"] for r in read_jsonl(path) if "task_id" in r]


# ----------------------------------------------------------------------------- modes

def test_direct_code_n0(checkpoint, tmp_path, capsys, spec):
    printed, out = run_sample(checkpoint, tmp_path / "direct", capsys, "--n", "0")
    samples, _ = check_outputs(out, 1)
    assert all(s["plan"] is None and s["plan_id"] is None for s in samples)
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["n"] == 0 and config["data"] == spec and config["problems"] == 3
    assert config["checkpoint"] == str(checkpoint)
    assert config["settings"]["checkpoint_sha256"] == sample.file_digest(checkpoint)
    header, rows = table(printed)
    assert header == ["1@1", "pass@1"]
    assert rows["all"][0] == 3
    assert table((out / "report.md").read_text()) == (header, rows)
    assert json.loads((out / "report.json").read_text())["metrics"]["all"]["problems"] == 3
    # the test split's first three problems, in order, each journaled once
    assert [s["task_id"] for s in samples] == [p.id for p in data.load_problems(spec, "test")[:3]]
    assert sorted(journal_problems(out / "journal.jsonl")) == sorted(s["task_id"] for s in samples)


def test_greedy_plan_n1(checkpoint, tmp_path, capsys, spec):
    printed, out = run_sample(checkpoint, tmp_path / "greedy", capsys, "--n", "1", "--greedy-plan")
    samples, _ = check_outputs(out, 1)
    assert all(isinstance(s["plan"], str) and s["plan_id"] == 0 for s in samples)
    assert table(printed)[0] == ["1@1", "pass@1"]
    # the plans are scored against the synthetic benchmark's reference plans, per tier and style
    accuracy = json.loads((out / "report.json").read_text())["metrics"]["plan_accuracy"]
    assert accuracy["all"]["problems"] == 3 and accuracy["all"]["plans"] == 3 and "Plan accuracy" in printed
    right = sum(codeplan.plan_is_right(s["plan"], p.reference_plan) for s, p in zip(samples, data.load_problems(spec, "test")))
    assert accuracy["all"]["right"] == accuracy["all"]["any_right"] == right / 3
    assert sum(row["problems"] for name, row in accuracy.items() if name.startswith("style ")) == 3
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
        keys = [(-(s["public_pass_rate"] or 0.0), -s["logprob"]) for s in rows if not s["duplicate"]]
        assert keys == sorted(keys)
        # both programs of a plan carry that plan
        for pid in (0, 1):
            assert len({s["plan"] for s in rows if s["plan_id"] == pid}) == 1
    header, _ = table(printed)
    assert header == ["1@4", "2@4", "pass@1", "pass@2"]   # of the default ks, those <= S = N x M = 4
    assert "pass@5" not in printed and "5@4" not in printed


def test_plans_from_a_reference_plans_file(checkpoint, tmp_path, capsys, spec):
    problems = data.load_problems(spec, "test")
    plans_file = tmp_path / "plans.jsonl"
    teacher.write_reference_plans(problems, str(plans_file), "test")
    expected = teacher.read_plans(str(plans_file))
    printed, out = run_sample(checkpoint, tmp_path / "given", capsys, "--plans-from", str(plans_file))
    samples, _ = check_outputs(out, 1)
    assert all(s["plan"] == expected[s["task_id"]][0] and s["plan_id"] == 0 for s in samples)
    assert table(printed)[0] == ["1@1", "pass@1"]    # one given plan per problem, whatever --n says
    assert "Plan accuracy" not in printed    # given plans are not the model's
    assert json.loads((out / "config.json").read_text())["settings"]["plans_sha256"] == sample.file_digest(plans_file)
    # a plans file that lacks a problem is refused, rather than that problem silently dropping out of pass@k
    teacher.write_reference_plans(problems[1:], str(plans_file), "test")
    with pytest.raises(SystemExit) as e:
        run_sample(checkpoint, tmp_path / "partial", capsys, "--plans-from", str(plans_file))
    assert problems[0].id in str(e.value)
    with pytest.raises(SystemExit) as e:
        run_sample(checkpoint, tmp_path / "none", capsys, "--plans-from", str(tmp_path / "absent.jsonl"))
    assert "absent.jsonl" in str(e.value)


def test_plans_made_for_other_problems_are_refused_and_old_files_warned(checkpoint, tmp_path, capsys, spec):
    problems = data.load_problems(spec, "test")
    # the APPS trap: same ids, other statements (train and test ids overlap there)
    other = [dataclasses.replace(p, question=p.question + " (another split)") for p in problems]
    plans_file = tmp_path / "other.jsonl"
    teacher.write_reference_plans(other, str(plans_file), "train")
    with pytest.raises(SystemExit) as e:
        run_sample(checkpoint, tmp_path / "wrong", capsys, "--plans-from", str(plans_file))
    assert "other problems" in str(e.value) and "'train'" in str(e.value) and str(plans_file) in str(e.value)
    assert not (tmp_path / "wrong").exists()        # refused before anything was written
    # a file from before plans files recorded their problem: used, with a warning
    teacher.write_reference_plans(problems, str(plans_file), "test")
    rows = [{k: v for k, v in r.items() if k not in ("split", "question_digest")} for r in read_jsonl(plans_file)]
    plans_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sample.main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "old"), "--max-new-tokens", "24",
                 "--limit", "3", "--workers", "2", "--plans-from", str(plans_file)])
    assert "3 plans do not record which problem they were made for" in capsys.readouterr().err
    check_outputs(tmp_path / "old", 1)


# ----------------------------------------------------------------------------- guardrails

def test_train_refuses_plans_made_for_other_problems(spec, tmp_path, capsys):
    problems = data.load_problems(spec, "train")
    plans_file = tmp_path / "test-plans.jsonl"
    teacher.write_reference_plans([dataclasses.replace(p, question=p.question + " (test)") for p in problems],
                                  str(plans_file), "test")
    with pytest.raises(SystemExit) as e:
        train.main(["--data", spec, "--plans", str(plans_file), "--out", str(tmp_path / "runs"), "--name", "x",
                    "--device", "cpu", "--steps", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "plans were made for other problems" in err and "'test'" in err
    assert not (tmp_path / "runs" / "x" / "tokenizer.model").exists()     # refused before any work


def test_lambda_zero_checkpoint_refuses_plan_sampling_unless_asked(checkpoint, tmp_path, capsys, monkeypatch):
    load = sample.load_checkpoint

    def as_lambda_zero(path, device):
        net, tokenizer, cfg, longest = load(path, device)
        return net, tokenizer, {**cfg, "lam": 0.0}, longest
    monkeypatch.setattr(sample, "load_checkpoint", as_lambda_zero)
    with pytest.raises(SystemExit) as e:
        run_sample(checkpoint, tmp_path / "refused", capsys, "--n", "2")
    assert "lambda 0" in str(e.value) and "--allow-untrained-plan-head" in str(e.value)
    assert not (tmp_path / "refused").exists()
    _, out = run_sample(checkpoint, tmp_path / "direct", capsys, "--n", "0")           # no plan head: fine
    check_outputs(out, 1)
    _, out = run_sample(checkpoint, tmp_path / "asked", capsys, "--n", "1", "--allow-untrained-plan-head")
    check_outputs(out, 1)


def test_a_folder_made_with_other_settings_is_refused(checkpoint, tmp_path, capsys):
    printed, out = run_sample(checkpoint, tmp_path / "s", capsys, "--n", "0")
    before = (out / "samples.jsonl").read_text()
    with pytest.raises(SystemExit) as e:
        run_sample(checkpoint, out, capsys, "--n", "0", "--seed", "1")
    assert "other settings" in str(e.value) and "seed" in str(e.value)
    # samples drawn another way (a folder of a sample.py that drew its samples otherwise) are not continued
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "settings": {**config["settings"], "sampler": "multinomial"}}))
    with pytest.raises(SystemExit) as e:
        run_sample(checkpoint, out, capsys, "--n", "0")
    assert "other settings" in str(e.value) and "sampler" in str(e.value)
    (out / "config.json").write_text(json.dumps(config))
    # the same settings: every problem is done, nothing is sampled twice, the same report
    again, _ = run_sample(checkpoint, out, capsys, "--n", "0")
    assert table(again) == table(printed)
    assert (out / "samples.jsonl").read_text() == before
    assert len(journal_problems(out / "journal.jsonl")) == 3
    # a folder whose config.json records no settings is another program's: refused
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"n": 0}))
    with pytest.raises(SystemExit, match="other settings"):
        run_sample(checkpoint, tmp_path / "other", capsys, "--n", "0")


def test_decoding_caps_come_from_the_checkpoint_unless_given(checkpoint, tmp_path, capsys):
    """Each head decodes up to its cap from the lengths it was trained on; --max-new-tokens sets both; a
    checkpoint that records no lengths decodes up to the run's --max-target-len (48 here), and says so."""
    state = checkpoint_file.load(checkpoint)
    assert set(state["longest_target"]) == {"code", "plan"}
    # copies beside the run's tokenizer: one with short recorded targets, one as saved before they were recorded
    short, old = checkpoint.parent / "short.pt", checkpoint.parent / "old.pt"
    checkpoint_file.save(short, {**state, "longest_target": {"code": 10, "plan": 4}})
    checkpoint_file.save(old, {k: v for k, v in state.items() if k != "longest_target"})

    def sampled(ckpt: Path, name: str, *flags: str) -> tuple[dict, str, list[int]]:
        sample.main(["--checkpoint", str(ckpt), "--out", str(tmp_path / name), "--n", "2", "--limit", "2",
                     "--generate-only", *flags])
        err = capsys.readouterr().err
        settings = json.loads((tmp_path / name / "config.json").read_text())["settings"]
        tokens = [c["tokens"] for r in read_jsonl(tmp_path / name / "journal.jsonl") for c in r.get("candidates", [])]
        return settings["max_new_tokens"], err, tokens

    fallback = "records no longest training targets: plans and programs decode up to its max_target_len, 48 tokens"
    caps, err, tokens = sampled(short, "short")
    assert caps == {"code": 21, "plan": 13} and fallback not in err
    assert len(tokens) == 4 and max(tokens) <= 21 + 13      # plan and program tokens together
    caps, err, tokens = sampled(short, "given", "--max-new-tokens", "30")
    assert caps == {"code": 30, "plan": 30} and max(tokens) > 34      # above the caps: the micro model runs on
    caps, err, _ = sampled(old, "old")
    assert caps == {"code": 48, "plan": 48} and err.count(fallback) == 1
    caps, err, _ = sampled(old, "old-given", "--max-new-tokens", "24")
    assert caps == {"code": 24, "plan": 24} and fallback not in err
    # a folder sampled with the caps is not continued without them
    with pytest.raises(SystemExit) as e:
        sampled(short, "short", "--max-new-tokens", "256")
    assert "other settings" in str(e.value) and "max_new_tokens" in str(e.value)


@pytest.mark.parametrize("k, message", [("0", "integers >= 1"), ("3", "between 1 and 2"), ("1,x", "integers"),
                                        ("-1", "integers >= 1"), ("1.5", "integers")])
def test_bad_k_is_a_clear_error_before_sampling(checkpoint, tmp_path, capsys, k, message):
    with pytest.raises(SystemExit) as e:
        run_sample(checkpoint, tmp_path / "k", capsys, "--n", "2", "--k", k)
    assert message in str(e.value) and "--k" in str(e.value)
    assert not (tmp_path / "k" / "journal.jsonl").exists()


def test_checkpoint_choice_is_the_most_recently_finished_runs_best(tmp_path, capsys):
    runs = tmp_path / "runs"

    def fake_run(name, mtime, interrupted=False, best=True, trained=False):
        folder = runs / name
        folder.mkdir(parents=True)
        if best:
            (folder / "best.pt").write_bytes(b"x")
        (folder / "last.pt").write_bytes(b"x")
        summary = {"interrupted": True, "training_finished": trained} if interrupted else {}
        (folder / "summary.json").write_text(json.dumps(summary))
        os.utime(folder / "summary.json", (mtime, mtime))
    with pytest.raises(SystemExit) as e:
        sample.finished_run_checkpoint(runs)
    assert "--run NAME" in str(e.value)
    fake_run("old", 1000)
    fake_run("new", 2000)
    fake_run("killed", 3000, interrupted=True)      # newer, but it did not finish
    fake_run("no-best", 4000, best=False)
    assert sample.finished_run_checkpoint(runs) == runs / "new" / "best.pt"
    args = sample.parse_args(["--runs", str(runs)])
    assert sample.choose_checkpoint(args) == runs / "new" / "best.pt"
    assert "most recently finished run" in capsys.readouterr().err
    assert sample.choose_checkpoint(sample.parse_args(["--runs", str(runs), "--run", "old"])) == runs / "old" / "best.pt"
    with pytest.raises(SystemExit) as e:
        sample.choose_checkpoint(sample.parse_args(["--runs", str(runs), "--run", "absent"]))
    assert "absent" in str(e.value)
    with pytest.raises(SystemExit):
        sample.parse_args(["--run", "old", "--checkpoint", "x.pt"])
    for bad in ("2/2", "1", "a/b", "-1/2"):
        with pytest.raises(SystemExit):
            sample.parse_args(["--shard", bad])
    fake_run("trained", 2500, interrupted=True, trained=True)   # stopped in the final pass@1, after training
    assert sample.finished_run_checkpoint(runs) == runs / "trained" / "best.pt"


# ----------------------------------------------------------------------------- shards, merge, generate-only, kill -9

SAMPLED = ("--n", "2", "--limit", "6", "--batch-size", "4")   # sampled plans, 2 problems per batch: 3 batches


def report_rows(out: Path) -> tuple[list[str], dict]:
    return table((out / "report.md").read_text())


def program_rows(out: Path) -> list[tuple]:
    return [(s["task_id"], s["plan"], s["code"], s["rank"]) for s in read_jsonl(out / "samples.jsonl")]


def verdict_rows(out: Path) -> list[dict]:
    return [{**r, "time": 0} for r in read_jsonl(out / "samples_results.jsonl")]


def test_shards_merge_to_the_unsharded_run(checkpoint, tmp_path, capsys):
    _, whole = run_sample(checkpoint, tmp_path / "whole", capsys, *SAMPLED)
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    for i, folder in enumerate(shards):
        run_sample(checkpoint, folder, capsys, *SAMPLED, "--shard", f"{i}/2")
        assert not (folder / "report.md").exists()
    assert len(journal_problems(shards[0] / "journal-0of2.jsonl")) == 4       # batches 0 and 2
    assert len(journal_problems(shards[1] / "journal-1of2.jsonl")) == 2       # batch 1
    # one shard alone is not the whole split
    with pytest.raises(SystemExit) as e:
        sample.main(["--merge", str(shards[0])])
    assert "2 of the 6 problems have no record" in str(e.value)
    merged = tmp_path / "merged"
    sample.main(["--merge", *map(str, shards), "--out", str(merged)])
    printed = capsys.readouterr().out
    assert table(printed) == report_rows(whole)
    assert program_rows(merged) == program_rows(whole)
    assert verdict_rows(merged) == verdict_rows(whole)
    # shards made with other settings do not merge
    run_sample(checkpoint, tmp_path / "other", capsys, *SAMPLED, "--shard", "1/2", "--seed", "3")
    with pytest.raises(SystemExit) as e:
        sample.main(["--merge", str(shards[0]), str(tmp_path / "other")])
    assert "seed" in str(e.value)


def test_generate_only_then_sandbox_or_merge_scores_it(checkpoint, tmp_path, capsys, spec):
    _, whole = run_sample(checkpoint, tmp_path / "whole", capsys, *SAMPLED)
    _, gen = run_sample(checkpoint, tmp_path / "gen", capsys, *SAMPLED, "--generate-only")
    assert not (gen / "samples_results.jsonl").exists() and not (gen / "report.md").exists()
    generated = read_jsonl(gen / "samples.jsonl")
    assert len(generated) == 12 and all({"task_id", "code", "plan", "candidate"} <= r.keys() for r in generated)
    assert all(not r["scored"] for r in read_jsonl(gen / "journal.jsonl") if "task_id" in r)
    # the harness contract: sandbox.py scores the generated file as it is
    done = subprocess.run([sys.executable, "sandbox.py", "--data", spec, "--samples", str(gen / "samples.jsonl"),
                           "--k", "1,2"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    verdicts = {(r["task_id"], r["code"]): v["passed"]
                for r, v in zip(read_jsonl(whole / "samples.jsonl"), read_jsonl(whole / "samples_results.jsonl"))}
    again = read_jsonl(gen / "samples_results.jsonl")
    assert len(again) == 12
    assert [v["passed"] for v in again] == [verdicts[(r["task_id"], r["code"])] for r in generated]
    # --merge runs the candidates (public and hidden tests) and reports as the full run did
    sample.main(["--merge", str(gen)])
    assert table(capsys.readouterr().out) == report_rows(whole)
    assert program_rows(gen) == program_rows(whole)
    assert verdict_rows(gen) == verdict_rows(whole)
    records = [r for r in read_jsonl(gen / "journal.jsonl") if "task_id" in r]
    assert [r["scored"] for r in records] == [False] * 6 + [True] * 6     # the verdicts were appended, once
    sample.main(["--merge", str(gen)])                                    # a second merge runs nothing again
    assert len(read_jsonl(gen / "journal.jsonl")) == len(records) + 1   # (+ the generate-only invocation line)


CHILD = """
import sys, time
sys.path.insert(0, {root!r})
import sample
import journal
append = journal.Journal.append

def append_then_pause(self, record):
    append(self, record)
    # after the third finished problem, stop in place: the test kills this process group here, while
    # later batches are generated or in the sandbox
    if "task_id" in record and sum('"task_id"' in line for line in open(self.path)) == 3:
        open({flag!r}, "w").close()
        time.sleep(3600)

journal.Journal.append = append_then_pause
sample.main(sys.argv[1:])
"""


def test_kill_9_mid_run_then_rerun_loses_nothing_and_repeats_nothing(checkpoint, tmp_path, capsys):
    _, whole = run_sample(checkpoint, tmp_path / "whole", capsys, *SAMPLED)
    out, flag = tmp_path / "killed", tmp_path / "paused"
    argv = ["--checkpoint", str(checkpoint), "--out", str(out), "--max-new-tokens", "24", "--workers", "2", *SAMPLED]
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), flag=str(flag)), *argv], cwd=ROOT,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 600        # generous: the machine may be busy
        while not flag.exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert flag.exists(), child.stderr.read().decode()[-2000:] if child.poll() is not None else "timed out"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    journal = out / "journal.jsonl"
    assert len(journal_problems(journal)) == 3 and not (out / "report.md").exists()
    with open(journal, "ab") as f:        # and a torn line, as a kill during a write leaves
        f.write(b'{"task_id": "torn", "batch"')
    printed, _ = run_sample(checkpoint, out, capsys, *SAMPLED)
    ids = journal_problems(journal)
    assert len(ids) == len(set(ids)) == 6            # nothing lost, nothing twice
    assert "torn" not in journal.read_text()
    assert table(printed) == report_rows(whole)
    assert program_rows(out) == program_rows(whole)
    assert verdict_rows(out) == verdict_rows(whole)


def test_ctrl_c_mid_run_exits_130_with_one_line_and_keeps_the_journal(checkpoint, tmp_path):
    out, flag = tmp_path / "stopped", tmp_path / "paused"
    argv = ["--checkpoint", str(checkpoint), "--out", str(out), "--max-new-tokens", "24", "--workers", "2", *SAMPLED]
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), flag=str(flag)), *argv], cwd=ROOT,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 600        # generous: the machine may be busy
        while not flag.exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert flag.exists(), child.stderr.read()[-2000:] if child.poll() is not None else "timed out"
        os.killpg(child.pid, signal.SIGINT)     # what a terminal's Ctrl-C does: the whole process group
        err = child.communicate(timeout=120)[1]
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=60)
    assert child.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("sample.py: interrupted; the journal keeps")
    assert len(journal_problems(out / "journal.jsonl")) == 3 and not (out / "report.md").exists()


# ----------------------------------------------------------------------------- ranking and scoring, with known answers

def oracle(problems: list[Problem]):
    """Stands in for generate_texts: plan j is "PLAN j"; the code written for an odd plan is the problem's
    ground-truth solution, for an even plan one wrong program (the same one for every even plan) that the
    model prefers (higher log-probability)."""
    def fake(model, tokenizer, sources, head, n=1, **_):
        out = []
        for src in sources:
            if head == "plan":
                out.append([(f"PLAN {j}", -1.0, 3) for j in range(n)])
                continue
            p = next(p for p in problems if p.question.rstrip() in src)
            right = any(f"PLAN {j}" in src for j in (1, 3, 5))
            code = p.solutions[0] if right else f"def {p.fn_name}(*args):\n    return None\n"
            out.append([(code, -3.0 if right else -0.5, 10)] * n)
        return out
    return fake


def test_public_tests_pick_the_right_program_and_sandbox_rescoring_agrees(checkpoint, tmp_path, capsys, spec, monkeypatch):
    problems = data.load_problems(spec, "test")[:4]
    assert all(p.public_tests for p in problems)
    monkeypatch.setattr(codeplan, "generate_texts", oracle(problems))
    printed, out = run_sample(checkpoint, tmp_path / "oracle", capsys, "--n", "3", "--limit", "4")
    samples, results = check_outputs(out, 3, limit=4)
    # the right program (lower log-probability, but it passes the public tests) first, then the wrong one
    # and its copy: one program, ranked once
    assert [(s["plan_id"], s["rank"], s["duplicate"]) for s in samples] == [(1, 0, False), (0, 1, False), (2, 1, True)] * 4
    assert [s["public_pass_rate"] for s in samples] == [1.0, 0.0, 0.0] * 4
    assert [r["passed"] for r in results] == [True, False, False] * 4
    header, rows = table(printed)
    by_name = dict(zip(header, rows["all"][1:]))
    assert by_name == {"1@3": 100.0, "2@3": 100.0, "pass@1": pytest.approx(100 / 3, abs=0.05),
                       "pass@2": pytest.approx(200 / 3, abs=0.05)}
    assert "4 of 12 samples repeated an earlier program" in printed
    # difficulty rows in a fixed order after "all", then the synthetic test split's tier rows
    names = [n for n in rows if not n.startswith("tier ")]
    assert sum(rows[n][0] for n in rows if n.startswith("tier ")) == 4
    order = ["all", "introductory", "interview", "competition"]
    assert names[0] == "all" and [n for n in names if n in order] == [n for n in order if n in names]
    assert sum(rows[n][0] for n in names if n in order[1:]) == 4
    # sandbox.py scores the same samples file to the same verdicts
    rescore = tmp_path / "rescore"
    rescore.mkdir()
    shutil.copy(out / "samples.jsonl", rescore / "samples.jsonl")
    done = subprocess.run([sys.executable, "sandbox.py", "--data", spec, "--samples", str(rescore / "samples.jsonl")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    again = read_jsonl(rescore / "samples_results.jsonl")
    # one results format: re-scoring gives the rows sample.py wrote, up to the measured time
    assert all(isinstance(r["time"], float) for r in results + again)
    assert [{**r, "time": 0} for r in again] == [{**r, "time": 0} for r in results]


def test_rank_by_mean_logprob_is_an_option(checkpoint, tmp_path, capsys, spec, monkeypatch):
    def fake(model, tokenizer, sources, head, n=1, **_):
        if head == "plan":       # plan 0: short and likelier in total, plan 1: long and likelier per token
            return [[("PLAN 0", -2.0, 3), ("PLAN 1", -3.0, 40)] for _ in sources]
        # programs no public test accepts, so the ranking falls to the log-probabilities
        return [[(f"print('no answer {1 if 'PLAN 1' in src else 0}')", -0.5, 5)] * n for src in sources]
    monkeypatch.setattr(codeplan, "generate_texts", fake)
    for by, first in (("logprob", 0), ("mean-logprob", 1)):
        _, out = run_sample(checkpoint, tmp_path / by, capsys, "--n", "2", "--limit", "2", "--rank-by", by)
        rows = read_jsonl(out / "samples.jsonl")
        assert [r["plan_id"] for r in rows if r["rank"] == 0] == [first] * 2
        assert f"then {by}" in (out / "report.md").read_text()


def test_rescoring_the_micro_model_samples_agrees(checkpoint, tmp_path, capsys, spec):
    _, out = run_sample(checkpoint, tmp_path / "micro", capsys, "--n", "2")
    results = read_jsonl(out / "samples_results.jsonl")
    done = subprocess.run([sys.executable, "sandbox.py", "--data", spec, "--samples", str(out / "samples.jsonl")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    again = read_jsonl(out / "samples_results.jsonl")     # sandbox.py writes the same name next to the samples
    assert [{**r, "time": 0} for r in again] == [{**r, "time": 0} for r in results]   # same format, in place


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
    assert header == ["1@1", "pass@1"] and rows["all"][0] == 3


@pytest.mark.skipif(not (SHARED_DATA / "humaneval" / "HumanEval.jsonl.gz").exists(), reason="../shared/data is absent")
def test_humaneval_end_to_end(checkpoint, tmp_path, capsys):
    spec = f"humaneval:{SHARED_DATA / 'humaneval' / 'HumanEval.jsonl.gz'}"
    printed, out = run_sample(checkpoint, tmp_path / "he", capsys, "--data", spec, "--n", "0", "--limit", "2")
    samples, results = check_outputs(out, 1, limit=2)
    assert [s["task_id"] for s in samples] == ["HumanEval/0", "HumanEval/1"]
    assert all(r["status"] != "harness_error" for r in results)
    assert table(printed)[1]["all"][0] == 2


def test_report_has_status_breakdown_and_writes_other_harness_formats(checkpoint, spec, capsys, tmp_path):
    printed, out = run_sample(checkpoint, tmp_path / "fmt", capsys, "--n", "0", "--format", "evalplus")
    statuses = [r["status"] for r in read_jsonl(out / "samples_results.jsonl")]
    assert f"programs {len(statuses)}: passed {statuses.count('passed')} " in printed
    assert "APPS test case average" in printed
    evalplus = read_jsonl(out / "samples.evalplus.jsonl")
    samples = read_jsonl(out / "samples.jsonl")
    assert [(r["task_id"], r["solution"]) for r in evalplus] == [(s["task_id"], s["code"]) for s in samples]
    problems = data.load_problems(spec, "test")[:3]
    assert [r["code"] for r in score.read_samples(out / "samples.evalplus.jsonl", problems)] == [s["code"] for s in samples]
