"""reproduce.py: plan corruption, scoring and the results table, and skipping finished runs.

No training here: runs are fabricated as the files train.py and sample.py leave behind."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import reproduce
import teacher

PLANS = [
    "1. Read n.\n2. Read the list.\n3. Sort it.\n4. Print the first element.",
    "1. Read a string s.\n2. Reverse it.\n3. Print it.",
    "1. Take the list a.\n2. Keep the even numbers.\n3. Sum them.\n4. Take it modulo 7.\n5. Return the result.\n6. Done.",
    "1. Print 0.",
    "1. Read x.\n2. Read x.\n3. Print x.",  # equal steps: swapping them changes nothing
]
POOL = sorted({" ".join(s) for plan in PLANS for s in teacher.split_steps(plan)[0]} | {"Count the vowels.", "Print -1."})


def steps_of(plan: str) -> list[str]:
    return [" ".join(s) for s in teacher.split_steps(plan)[0]]


def assert_numbered(plan: str) -> None:
    lines = plan.splitlines()
    assert lines and all(re.match(rf"^{i}\. \S", line) for i, line in enumerate(lines, 1)), plan


@pytest.mark.parametrize("share", [0.25, 0.5, 1.0])
def test_replace_changes_the_share_of_steps(share):
    for plan in PLANS:
        before = steps_of(plan)
        after = steps_of(reproduce.corrupt_plan(plan, share, random.Random(1), POOL, ops=("replace",)))
        k = max(1, round(share * len(before)))
        assert len(after) == len(before)
        assert sum(a != b for a, b in zip(before, after)) == k
        assert all(a in POOL and a not in before for a, b in zip(after, before) if a != b)


def test_drop_removes_the_share_but_keeps_one_step():
    plan = PLANS[2]
    assert len(steps_of(reproduce.corrupt_plan(plan, 0.5, random.Random(0), POOL, ops=("drop",)))) == 3
    assert len(steps_of(reproduce.corrupt_plan(plan, 1.0, random.Random(0), POOL, ops=("drop",)))) == 1
    assert len(steps_of(reproduce.corrupt_plan(PLANS[3], 1.0, random.Random(0), POOL, ops=("drop",)))) == 1


def test_swap_keeps_the_steps_but_not_the_order():
    plan = PLANS[2]
    after = steps_of(reproduce.corrupt_plan(plan, 0.34, random.Random(3), POOL, ops=("swap",)))
    assert sorted(after) == sorted(steps_of(plan)) and after != steps_of(plan)


def test_corruption_is_numbered_deterministic_and_never_the_input():
    for seed in range(30):
        for plan in PLANS:
            for share in (0.01, 0.3, 0.7, 1.0):
                out = reproduce.corrupt_plan(plan, share, random.Random(seed), POOL)
                assert_numbered(out)
                assert out != teacher.normalise_reference(plan)
                assert out == reproduce.corrupt_plan(plan, share, random.Random(seed), POOL)
    assert reproduce.corrupt_plan(PLANS[0], 0.0, random.Random(0), POOL) == PLANS[0]


def test_corrupted_plans_file_reads_as_a_plans_file(tmp_path):
    problems = [SimpleNamespace(id=str(i), reference_plan=p) for i, p in enumerate(PLANS * 4)]
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    reproduce.write_corrupted_plans(problems, a, 0.5, seed=0)
    reproduce.write_corrupted_plans(problems, b, 0.5, seed=0)
    reproduce.write_corrupted_plans(problems, c, 0.5, seed=1)
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()
    plans = teacher.read_plans(str(a))
    assert set(plans) == {p.id for p in problems}
    for p in problems:
        assert len(plans[p.id]) == 1 and plans[p.id][0] != teacher.normalise_reference(p.reference_plan)
        assert_numbered(plans[p.id][0])


def write_results(folder: Path, passed: dict[str, list[bool]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"task_id": t, "rank": r, "passed": p, "status": "passed" if p else "wrong_answer", "tests": []}
            for t, ps in passed.items() for r, p in enumerate(ps)]
    (folder / "samples_results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_score_samples_filtered_and_raw_per_difficulty(tmp_path):
    # a: top candidate passes; b: only the 4th passes; c: none; d: all
    write_results(tmp_path, {"a": [True, False, False, False], "b": [False, False, False, True],
                             "c": [False] * 4, "d": [True] * 4})
    difficulty = {"a": "introductory", "b": "introductory", "c": "interview", "d": "competition"}
    s = reproduce.score_samples(tmp_path / "samples_results.jsonl", difficulty)
    assert s["samples_per_problem"] == 4 and s["ks"] == [1, 4]
    assert s["sizes"] == {"all": 4, "introductory": 2, "interview": 1, "competition": 1}
    m = s["metrics"]
    assert m["all"]["filtered_pass@1"] == pytest.approx(2 / 4)
    assert m["all"]["raw_pass@1"] == pytest.approx((0.25 + 0.25 + 0 + 1) / 4)
    assert m["all"]["raw_pass@4"] == pytest.approx(3 / 4)
    assert m["introductory"]["filtered_pass@1"] == pytest.approx(0.5)
    assert m["interview"]["raw_pass@4"] == 0.0 and m["competition"]["filtered_pass@1"] == 1.0


def record(setup, decoding, seed, values: dict[str, float], n=1):
    metrics = {g: {"filtered_pass@1": v, "raw_pass@1": v} for g, v in values.items()}
    if n > 1:
        for g in metrics:
            metrics[g][f"raw_pass@{n}"] = min(1.0, 2 * values[g])
    return {"setup": setup, "decoding": decoding, "seed": seed, "samples_per_problem": n, "metrics": metrics}


def test_results_table_mean_std_gain_and_difficulty_columns():
    records = [record("ft", "direct", s, {"all": v, "introductory": 2 * v, "interview": v}) for s, v in enumerate((0.1, 0.2, 0.3))]
    records += [record("codeplan", "n4", s, {"all": v, "introductory": v, "interview": v}, n=4) for s, v in enumerate((0.3, 0.4, 0.5))]
    records += [record("codeplan", "direct", 0, {"all": 0.1, "introductory": 0.1, "interview": 0.1})]
    lines = reproduce.results_table(records).splitlines()
    assert lines[0].split("|")[5:8] == [" all ", " introductory ", " interview "]
    cells = {tuple(c.strip() for c in line.split("|")[1:4]): [c.strip() for c in line.split("|")[4:-1]] for line in lines[2:]}
    ft = cells[("fine-tuning (lambda 0)", "direct code (--n 0)", "pass@1")]
    assert ft == ["3", "20.0 ± 10.0", "40.0 ± 20.0", "20.0 ± 10.0", ""]
    n4 = cells[("CodePLAN (lambda 0.5)", "plan sampling N=4", "filtered pass@1")]
    assert n4 == ["3", "40.0 ± 10.0", "40.0 ± 10.0", "40.0 ± 10.0", "+100%"]
    assert cells[("CodePLAN (lambda 0.5)", "plan sampling N=4", "raw pass@4")][1] == "80.0 ± 20.0"
    assert cells[("CodePLAN (lambda 0.5)", "plan sampling N=4", "raw pass@4")][-1] == ""
    assert cells[("CodePLAN (lambda 0.5)", "direct code (--n 0)", "pass@1")] == ["1", "10.0", "10.0", "10.0", "-50%"]
    order = [k[:2] for k in cells]
    assert order.index(("fine-tuning (lambda 0)", "direct code (--n 0)")) < order.index(("CodePLAN (lambda 0.5)", "direct code (--n 0)")) \
        < order.index(("CodePLAN (lambda 0.5)", "plan sampling N=4"))


def quick_tasks(tmp_path, seeds=2, **over):
    args = reproduce.parse_args(["--quick", "--seeds", str(seeds), "--steps", "5", "--out", str(tmp_path)] +
                                [x for k, v in over.items() for x in (f"--{k}", str(v))])
    return reproduce.plan_tasks(args, tmp_path / "quick")


def finish(task) -> None:
    task.folder.mkdir(parents=True, exist_ok=True)
    if task.kind == "train":
        (task.folder / "summary.json").write_text(json.dumps({"step": 5}))
    else:
        write_results(task.folder, {"a": [True]})
        (task.folder / "report.md").write_text("table\n")


def test_plan_tasks_equal_budget_and_layout(tmp_path):
    tasks = quick_tasks(tmp_path)
    trains = [t for t in tasks if t.kind == "train"]
    assert [t.name for t in trains] == ["ft-seed0", "codeplan-seed0", "ft-seed1", "codeplan-seed1"]
    for t in trains:
        assert t.argv[t.argv.index("--steps") + 1] == "5" and t.argv[t.argv.index("--batch-size") + 1] == "16"
        assert t.folder == tmp_path / "quick" / "runs" / t.name
    assert [t.kind for t in tasks[:7]] == ["train", "direct", "train", "direct", "greedy-plan", "n4", "n16"]
    assert all(t.argv[t.argv.index("--limit") + 1] == "100" for t in tasks if t.kind != "train")


def test_finished_runs_are_skipped_and_unfinished_ones_run(tmp_path, monkeypatch):
    tasks = quick_tasks(tmp_path)
    ran = []
    monkeypatch.setattr(reproduce, "run_logged", lambda task: (ran.append(task.name), finish(task)))
    for t in tasks[:4]:
        finish(t)
    assert tasks[2].name == "codeplan-seed0"  # interrupted: runs again (resumes)
    (tasks[2].folder / "summary.json").write_text(json.dumps({"step": 3, "interrupted": True}))
    reproduce.run_all(tasks, tmp_path / "quick")
    assert ran == [tasks[2].name] + [t.name for t in tasks[4:]]
    assert set(json.loads((tmp_path / "quick" / "timings.json").read_text())) == set(ran)
    ran.clear()
    reproduce.run_all(tasks, tmp_path / "quick")
    assert ran == []


def test_training_summary_must_match_the_asked_steps(tmp_path):
    task = quick_tasks(tmp_path)[0]
    task.folder.mkdir(parents=True)
    (task.folder / "summary.json").write_text(json.dumps({"step": 5, "interrupted": True}))
    assert not task.finished()
    (task.folder / "summary.json").write_text(json.dumps({"step": 4}))
    assert not task.finished()
    (task.folder / "summary.json").write_text(json.dumps({"step": 5}))
    assert task.finished()


def test_other_settings_in_the_same_folder_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "run_logged", finish)
    reproduce.run_all(quick_tasks(tmp_path, seeds=1), tmp_path / "quick")
    with pytest.raises(reproduce.ReproduceError, match="other settings"):
        reproduce.run_all(quick_tasks(tmp_path, seeds=1, limit=50), tmp_path / "quick")


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    calls = []

    class FakePopen:
        def __init__(self, cmd, **kw):
            calls.append(cmd)

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(reproduce.subprocess, "Popen", FakePopen)
    task = quick_tasks(tmp_path, seeds=1)[0]
    task.folder.mkdir(parents=True)
    (task.folder / "metrics.jsonl").write_text("{}\n")
    reproduce.run_logged(task)
    assert "--resume" not in calls[-1] and not (task.folder / "metrics.jsonl").exists()
    (task.folder / "last.pt").write_bytes(b"x")
    reproduce.run_logged(task)
    assert calls[-1][-1] == "--resume" and calls[-1][1] == "train.py"
    assert (task.folder / "train.log").read_text().count("$ python train.py") == 2
