"""reproduce.py: plan corruption, statistics and tables, the commands it builds, its scheduler, and
one end-to-end run in a micro configuration; plus the ranking that never sees hidden tests, and
sample.py's --show view of it."""
from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import codeplan
import reproduce
import sample
import sandbox
import score
import synthetic
import teacher
import train
from conftest import MICRO, ROOT
from problems import Problem, Test

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


# ----------------------------------------------------------------------------- scoring and statistics

def write_results(folder: Path, passed: dict[str, list[bool]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"task_id": t, "rank": r, "passed": p, "status": "passed" if p else "wrong_answer", "tests": []}
            for t, ps in passed.items() for r, p in enumerate(ps)]
    random.Random(0).shuffle(rows)   # outcomes follow the rank field, not the line order
    (folder / "samples_results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_outcomes_filtered_and_raw_pass_per_group(tmp_path):
    # a: top candidate passes; b: only the 4th passes; c: none; d: all
    write_results(tmp_path, {"a": [True, False, False, False], "b": [False, False, False, True],
                             "c": [False] * 4, "d": [True] * 4})
    outcomes = reproduce.read_outcomes(tmp_path / "samples_results.jsonl")
    assert outcomes == {"a": [4, 1, 1], "b": [4, 1, 0], "c": [4, 0, 0], "d": [4, 4, 1]}
    r = reproduce.Record("codeplan", 0, "n4", 10, "x", outcomes)
    assert r.candidates == 4
    assert reproduce.pass1(r, {"a", "b", "c", "d"}) == pytest.approx(2 / 4)
    assert reproduce.raw_pass(r, {"a", "b", "c", "d"}, 1) == pytest.approx((0.25 + 0.25 + 0 + 1) / 4)
    assert reproduce.raw_pass(r, {"a", "b", "c", "d"}, 4) == pytest.approx(3 / 4)
    assert reproduce.pass1(r, {"b", "c"}) == 0.0
    meta = {"a": {"difficulty": "competition", "tier": "held-pair"}, "b": {"difficulty": "introductory", "tier": "seen-chain"},
            "c": {"difficulty": "introductory", "tier": ""}, "d": {"difficulty": "odd", "tier": "seen-chain"}}
    groups = reproduce.groups_of(meta)
    assert list(groups) == ["all", "seen-chain", "held-pair", "introductory", "competition", "odd"]
    assert groups["seen-chain"] == {"b", "d"} and groups["introductory"] == {"b", "c"}
    # a copy of the top program that failed when run again (a timeout) does not make the top candidate fail
    rows = [{"task_id": "e", "rank": 0, "passed": True}, {"task_id": "e", "rank": 0, "passed": False},
            {"task_id": "e", "rank": 1, "passed": False}]
    (tmp_path / "samples_results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert reproduce.read_outcomes(tmp_path / "samples_results.jsonl") == {"e": [3, 1, 1]}


def test_paired_bootstrap_interval():
    rng = np.random.default_rng(1)
    assert reproduce.paired_bootstrap(np.zeros((3, 50)), 500) == (0.0, 0.0, 0.0)
    assert reproduce.paired_bootstrap(np.ones((2, 10)), 500) == (1.0, 1.0, 1.0)
    # a gain on a fifth of 300 problems: interval around +0.2, far from 0
    gain = np.zeros((3, 300))
    gain[:, :60] = 1
    est, low, high = reproduce.paired_bootstrap(gain, 1000)
    assert est == pytest.approx(0.2) and 0.12 < low < 0.2 < high < 0.28
    # symmetric noise: the interval holds 0
    noise = rng.choice([-1.0, 0.0, 1.0], size=(3, 200))
    noise -= noise.mean()
    _, low, high = reproduce.paired_bootstrap(noise, 1000)
    assert low < 0 < high
    # seeds that disagree widen the interval beyond what the problems alone give
    seeds_apart = np.zeros((3, 300))
    seeds_apart[0, :150] = 1
    one_seed = reproduce.paired_bootstrap(seeds_apart[:1], 1000)
    three = reproduce.paired_bootstrap(seeds_apart, 1000)
    assert three[1] <= 0 and one_seed[1] > 0.4
    assert reproduce.paired_bootstrap(gain, 500, seed=3) == reproduce.paired_bootstrap(gain, 500, seed=3)


def test_a_difference_is_printed_only_with_its_interval():
    assert reproduce.difference_text((0.05, 0.01, 0.09)) == "+5.0 [+1.0, +9.0]"
    assert reproduce.difference_text((-0.05, -0.09, -0.01)) == "-5.0 [-9.0, -1.0]"
    assert reproduce.difference_text((0.03, -0.01, 0.07)) == "no measurable difference [-1.0, +7.0]"
    assert reproduce.difference_text((0.0, 0.0, 0.0)) == "no measurable difference [+0.0, +0.0]"
    assert reproduce.difference_text(None) == ""


def records_for(values: dict[tuple[str, str], list[list[int]]], step=10) -> list:
    """values: (arm, decoding) -> per seed, the top-passed flag of problems p0, p1, ..."""
    return [reproduce.Record(arm, seed, decoding, step, f"{arm}-{seed}-{decoding}",
                             {f"p{i}": [1, top, top] for i, top in enumerate(tops)})
            for (arm, decoding), seeds in values.items() for seed, tops in enumerate(seeds)]


def table_cells(text: str) -> dict[tuple[str, str], list[str]]:
    rows = [l for l in text.splitlines() if l.startswith("| ") and not l.startswith("| arm ")]
    return {tuple(c.strip() for c in l.split("|")[1:3]): [c.strip() for c in l.split("|")[3:-1]] for l in rows}


def test_each_row_is_compared_with_the_matched_fine_tuning_decoding():
    meta = {f"p{i}": {"difficulty": "introductory" if i < 40 else "interview", "tier": "seen-chain" if i % 2 else "held-pair",
                      "style": "goal" if i % 4 < 2 else "steps"} for i in range(80)}
    none, half = [[0] * 80] * 3, [[1] * 40 + [0] * 40] * 3
    records = records_for({("ft", "direct"): none, ("ft", "direct-m16"): half,        # ranking 16 samples lifts fine-tuning
                           ("ft-flops", "direct"): none, ("ft-flops", "direct-m16"): none,
                           ("codeplan", "direct"): none, ("codeplan", "greedy-plan"): half, ("codeplan", "n16"): half})
    for r in records:   # fine-tuning at equal FLOPs trains longer; a learning-curve checkpoint is no row
        r.step = 27 if r.arm == "ft-flops" else r.step
    records.append(reproduce.Record("codeplan", 0, "n16", 5, "curve", {f"p{i}": [1, 0, 0] for i in range(80)}, final=False))
    cells = table_cells(reproduce.main_table(records, meta, 500))
    ft, flops, cp = (reproduce.arm_label(a) for a in ("ft", "ft-flops", "codeplan"))
    name = {d: reproduce.DECODINGS[d][0] for d in reproduce.DECODINGS}
    assert list(cells) == [(ft, name["direct"]), (ft, name["direct-m16"]), (flops, name["direct"]), (flops, name["direct-m16"]),
                           (cp, name["direct"]), (cp, name["greedy-plan"]), (cp, name["n16"])]
    # columns: candidates, seeds, pass@1, matched decoding, vs equal steps, vs equal FLOPs, right plans (2), raw pass@1, raw pass@N
    assert cells[(ft, name["direct"])][:6] == ["1", "3", "0.0 ± 0.0", name["direct"], "baseline", "no measurable difference [+0.0, +0.0]"]
    assert cells[(flops, name["direct-m16"])][3] == name["direct-m16"] and cells[(flops, name["direct-m16"])][5] == "baseline"
    assert re.fullmatch(r"-50\.0 \[-\d\d\.\d, -\d\d\.\d\]", cells[(flops, name["direct-m16"])][4])
    # N=16 is measured against 16 ranked fine-tuning samples, not against greedy fine-tuning: no gain at equal steps
    n16 = cells[(cp, name["n16"])]
    assert n16[1:4] == ["3", "50.0 ± 0.0", name["direct-m16"]]
    assert n16[4] == "no measurable difference [+0.0, +0.0]" and re.fullmatch(r"\+50\.0 \[\+\d\d\.\d, \+\d\d\.\d\]", n16[5])
    # one candidate each: the greedy plan against greedy fine-tuning
    assert cells[(cp, name["greedy-plan"])][3] == name["direct"] and cells[(cp, name["greedy-plan"])][4].startswith("+50.0 [+")
    groups = reproduce.group_tables(records, meta, 500)
    values, steps, flops_part = groups.split("Problems where at least one sampled plan")[0].split("Difference in pass@1")
    header = next(l for l in values.splitlines() if l.startswith("| arm"))
    assert [c.strip() for c in header.split("|")[3:-1]] == ["seen-chain (40)", "held-pair (40)", "steps style (40)", "goal style (40)",
                                                           "introductory (40)", "interview (40)"]
    assert (ft, name["direct-m16"]) not in table_cells(steps) and (flops, name["direct-m16"]) not in table_cells(flops_part)
    assert table_cells(steps)[(cp, name["n16"])][4] == "no measurable difference [+0.0, +0.0]"
    assert table_cells(flops_part)[(cp, name["n16"])][4] == "+100.0 [+100.0, +100.0]"   # introductory problems
    alone = table_cells(reproduce.main_table(records_for({("codeplan", "n16"): half}), meta, 200))
    assert alone[(cp, name["n16"])][4:6] == ["n/a (no baseline runs)"] * 2


def test_given_plans_are_compared_with_the_same_models_direct_code():
    meta = {f"p{i}": {"tier": "seen-chain" if i < 20 else "new-chain", "style": "goal"} for i in range(40)}
    # the reference plans solve the seen-chain half; fine-tuning's direct code must not be the baseline here
    records = records_for({("codeplan", "direct"): [[0] * 40] * 3, ("codeplan", "ref-plans"): [[1] * 20 + [0] * 20] * 3,
                           ("ft", "direct"): [[1] * 40] * 3})
    cells = table_cells(reproduce.given_plans_table(records, meta, 300))
    (label, every), = cells   # the first column is all 40 problems
    assert label == reproduce.arm_label("codeplan") and re.fullmatch(r"\+50\.0 \[\+\d\d\.\d, \+\d\d\.\d\]", every)
    assert cells[(label, every)] == ["+100.0 [+100.0, +100.0]", "no measurable difference [+0.0, +0.0]", every]
    assert reproduce.given_plans_table(records_for({("codeplan", "ref-plans"): [[1] * 40]}), meta, 300) == ""


def test_plan_accuracy_of_the_sampled_plans_per_row_and_group(tmp_path):
    references = {"a": "1. Read x.\n2. Sort it. It may be empty.", "b": "1. Read x.\n2. Reverse it.", "c": "1. Print 0."}
    rows = [{"task_id": "a", "plan": "1. read x\n2. sort it", "plan_id": 0}, {"task_id": "a", "plan": "1. read x\n2. sort it", "plan_id": 0},
            {"task_id": "a", "plan": "1. Read x.\n2. Reverse it.", "plan_id": 1},
            {"task_id": "b", "plan": "1. Read x.\n2. Sort it.", "plan_id": 0}, {"task_id": "c", "plan": None, "plan_id": None}]
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    plans = reproduce.read_plan_outcomes(tmp_path / "samples.jsonl", references)
    assert plans == {"a": [2, 1], "b": [1, 0]}   # distinct plans by plan_id; "c" sampled none
    r = reproduce.Record("codeplan", 0, "n4", 10, "x", {t: [1, 0, 0] for t in "abc"}, plans)
    assert reproduce.right_plans(r, {"a", "b"}) == (1 / 3, 1 / 2)
    assert reproduce.right_plans(r, {"c"}) is None
    meta = {t: {"difficulty": "introductory", "tier": "seen-chain", "style": "goal"} for t in "abc"}
    cells = table_cells(reproduce.main_table([r], meta, 100))[(reproduce.arm_label("codeplan"), reproduce.DECODINGS["n4"][0])]
    assert cells[6:8] == ["33.3", "50.0"]
    assert "Problems where at least one sampled plan" in reproduce.group_tables([r], meta, 100)


def test_cost_table_counts_direct_and_plan_guided_code_apart():
    summaries = {"ft": [{"seed": 0, "run": "ft-seed0", "lr": 7e-4, "optimizer_steps": 5, "code_examples_seen": 80,
                         "code_with_plan_seen": 0, "plan_examples_seen": 0, "train_flops": 2e12},
                        {"seed": 1, "run": "ft-seed1", "lr": 7e-4, "optimizer_steps": 5, "code_examples_seen": 80,
                         "code_with_plan_seen": 0, "plan_examples_seen": 0, "train_flops": 2e12}],
                 "codeplan": [{"seed": 0, "run": "codeplan-seed0", "lr": 1.4e-3, "optimizer_steps": 5, "code_examples_seen": 80,
                               "code_with_plan_seen": 72, "plan_examples_seen": 80, "train_flops": 5.4e12}],
                 "codeplan-paper": [{"seed": 0, "step": 5, "optimizer_steps": 5, "code_examples_seen": 80}]}   # an older summary
    cells = table_cells(reproduce.cost_table(summaries, {"ft-seed0": {"seconds": 10.0}, "ft-seed1": {"seconds": 20.0}}))
    assert cells[(reproduce.arm_label("ft"), "2")] == ["0.0007", "5", "80", "0", "0", "2e+12", "n/a", "1.00", "15"]
    assert cells[(reproduce.arm_label("codeplan"), "1")] == ["0.0014", "5", "8", "72", "80", "5.4e+12", "n/a", "2.70", "n/a"]
    assert cells[(reproduce.arm_label("codeplan-paper"), "1")] == ["n/a", "5", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"]


# ----------------------------------------------------------------------------- the commands it builds

@pytest.mark.parametrize("mode", [["--cpu"], ["--cpu", "--seeds", "1", "--lr-factors", "1", "--problems", "90", "--curve-every", "0"], ["--gpu"], []])
def test_every_command_parses_with_the_scripts_own_parsers(mode, tmp_path):
    args = reproduce.parse_args(mode + ["--out", str(tmp_path)])
    root = tmp_path / args.mode
    grid = reproduce.selection_tasks(args, root)
    lrs = {arm: args.base_lr * (2 if arm == "codeplan" else 1) for arm in args.arms}
    tasks = reproduce.plan_tasks(args, root, reproduce.Selection(lrs))
    inputs = reproduce.Inputs.of(args, root)
    trains = [t for t in tasks if not t.decoding]
    assert {t.arm for t in trains} == set(args.arms) and len(trains) == args.seeds * len(args.arms)
    # the grid: every rate for each arm that chooses its own, seed 0, scored on valid by the arm's selection decoding
    choosing = [a for a in args.arms if reproduce.ARMS[a].select]
    assert len(grid) == (0 if len(args.lr_factors) == 1 else 2 * len(args.lr_factors) * len(choosing))
    for t in grid + tasks:
        assert t.argv[0] in ("train.py", "sample.py")
        parsed = (train if t.argv[0] == "train.py" else sample).parse_args(t.argv[1:])
        if not t.decoding:
            # the same budget (ft-flops: --flops-ratio times the steps) and the one tokenizer for every arm
            steps = round(args.steps * args.flops_ratio) if t.arm == "ft-flops" else args.steps
            assert (parsed.steps, parsed.batch_size, parsed.tokenizer) == (steps, args.batch_size, reproduce.rel(inputs.tokenizer))
            assert parsed.lam == float(reproduce.ARMS[t.arm].flags[1]) and parsed.seed == t.seed
            assert parsed.lr == (None if len(args.lr_factors) == 1 else t.lr)
            assert parsed.save_every == (args.curve_every if t.arm in reproduce.CURVES and args.curve_every else 0)
        elif t.split == "valid":
            assert parsed.data == f"synthetic:{reproduce.rel(inputs.valid)}" and parsed.split == "valid"
            assert t.decoding == reproduce.ARMS[t.arm].select and parsed.checkpoint.endswith("last.pt")
        else:
            # the same test problems for every arm and decoding
            assert parsed.data == f"synthetic:{reproduce.rel(inputs.test_problems)}"
            assert parsed.split == "test" and parsed.limit == 0 and parsed.seed == t.seed
            assert parsed.checkpoint.endswith(f"step-{t.step}.pt" if "@" in t.name else "last.pt")
    if len(args.lr_factors) > 1:   # the chosen rate's grid run is the final seed-0 run
        assert {(t.name, tuple(t.argv)) for t in grid if not t.decoding} >= {(t.name, tuple(t.argv)) for t in trains if t.seed == 0 and t.arm in choosing}
    decodings = {(t.arm, t.decoding) for t in tasks if t.decoding and "@" not in t.name}
    assert {("ft", "direct-m4"), ("ft", "direct-m16"), ("ft-flops", "direct-m16"), ("codeplan", "n4"), ("codeplan", "n16")} <= decodings
    assert all(reproduce.MATCHED[d] in {x for a, x in decodings if a == "ft"} for _, d in decodings)   # every row has its baseline
    curves = {(t.arm, t.decoding) for t in tasks if "@" in t.name}
    assert curves == (set() if not args.curve_every else {("ft", "direct"), ("codeplan", "direct"), ("codeplan", "n4")})


def test_modes_and_their_arms():
    cpu, gpu, full = (reproduce.parse_args(m) for m in (["--cpu"], ["--gpu"], []))
    assert cpu.arms == gpu.arms == ["ft", "ft-flops", "codeplan-paper", "codeplan"]
    assert set(full.arms) >= {"ft", "ft-flops", "codeplan-paper", "codeplan", "lambda0.25", "lambda0.75", "corrupted"}
    assert (cpu.seeds, cpu.problems, full.problems) == (3, 210, 0)
    assert len(cpu.lr_factors) == 3 and cpu.base_lr == train.PRESET_LR["tiny"]
    assert gpu.base_lr == train.PRESET_LR["small"] and reproduce.parse_args(["--train-args", "--preset base"]).base_lr == train.PRESET_LR["base"]
    paper = reproduce.ARMS["codeplan-paper"].flags
    assert paper[paper.index("--plan-in-code") + 1] == "0"
    assert reproduce.parse_args(["--cpu", "--decodings", "direct,n16"]).decodings["codeplan"] == ["direct", "n16"]
    for bad in (["--cpu", "--gpu"], ["--quick"], ["--arms", "nope"], ["--train-args", "--tokenizer x"], ["--sample-args", "--limit 3"],
                ["--data", "mbpp"], ["--seeds", "0"], ["--train-args", "--lr 1e-3"], ["--arms", "ft-flops,codeplan"],
                ["--lr-factors", "1,x"], ["--lr-factors", "1,1"], ["--flops-ratio", "0.5"]):
        with pytest.raises(SystemExit):
            reproduce.parse_args(bad)


def test_dry_run_prints_every_command_and_runs_nothing(tmp_path, capsys):
    reproduce.main(["--cpu", "--dry-run", "--out", str(tmp_path)])
    printed = capsys.readouterr()
    commands = printed.out.splitlines()
    # the grid (3 arms x 3 rates, each trained and scored on valid) and the final runs, the grid's seed-0 runs once
    assert len(commands) == 78 and sum(c.startswith("python train.py ") for c in commands) == 9 + 12 - 3
    assert all(c.startswith(("python train.py ", "python sample.py ")) for c in commands)
    assert re.search(r"78 runs \(18 of them the learning-rate grid on valid\), 78 not finished; expected \d\.\d h", printed.err)
    assert not (tmp_path / "cpu").exists()
    reproduce.main(["--cpu", "--seeds", "1", "--lr-factors", "1", "--problems", "90", "--curve-every", "0", "--dry-run", "--out", str(tmp_path)])
    assert re.search(r"18 runs \(0 of them the learning-rate grid on valid\), 18 not finished; expected \d+\.\d min with 1 at a time\n",
                     capsys.readouterr().err) and not (tmp_path / "cpu").exists()


def test_learning_rates_are_chosen_by_valid_scores_and_then_fixed(tmp_path):
    args = reproduce.parse_args(["--cpu", "--arms", "ft,ft-flops,codeplan", "--out", str(tmp_path)])
    root = tmp_path / "cpu"
    grid = reproduce.selection_tasks(args, root)
    low, base, high = reproduce.learning_rates(args)
    # valid top-passed per problem: ft is best at the high rate; codeplan ties between low and base
    passed = {("ft", low): [0, 0, 1], ("ft", base): [0, 1, 0], ("ft", high): [1, 1, 0],
              ("codeplan", low): [1, 0, 0], ("codeplan", base): [0, 0, 1], ("codeplan", high): [0, 0, 0]}
    for t in grid:
        if t.decoding:
            write_results(t.folder, {f"v{i}": [bool(x)] for i, x in enumerate(passed[(t.arm, t.lr)])})
    assert {(t.arm, t.decoding) for t in grid if t.decoding} == {("ft", "direct"), ("codeplan", "greedy-plan")}
    selection = reproduce.select_on_valid(args, root, grid)
    assert selection.lrs == {"ft": high, "codeplan": base, "ft-flops": high}   # a tie goes to train.py's rate
    saved = json.loads((root / "selection.json").read_text())
    assert saved["scores"]["ft"] == {f"{low:g}": pytest.approx(1 / 3), f"{base:g}": pytest.approx(1 / 3), f"{high:g}": pytest.approx(2 / 3)}
    assert f"| ft | direct code | 33.3 | 33.3 | 66.7 | {high:g} |" in (root / "selection.md").read_text()
    # fixed: later valid outcomes change nothing, and other settings are refused
    for t in grid:
        if t.decoding:
            write_results(t.folder, {"v0": [True]})
    assert reproduce.select_on_valid(args, root, grid) == selection
    with pytest.raises(reproduce.ReproduceError, match="grid"):
        reproduce.select_on_valid(reproduce.parse_args(["--cpu", "--arms", "ft,ft-flops,codeplan", "--lr-factors", "1,3"]), root, [])
    # without a grid nothing is chosen: every arm trains at train.py's rate
    one = reproduce.parse_args(["--cpu", "--lr-factors", "1", "--out", str(tmp_path / "one")])
    assert reproduce.selection_tasks(one, tmp_path / "one" / "cpu") == []
    assert set(reproduce.select_on_valid(one, tmp_path / "one" / "cpu", []).lrs.values()) == {one.base_lr}


def test_scored_problems_take_the_first_of_each_tier():
    problems = [Problem(id=str(i), question="q", tier=("seen-chain", "new-chain", "held-pair")[i % 3]) for i in range(30)]
    chosen = reproduce.scored_problems(problems, 6)
    assert [p.id for p in chosen] == ["0", "1", "2", "3", "4", "5"]
    assert len(reproduce.scored_problems(problems, 0)) == 30
    untiered = [Problem(id=str(i), question="q") for i in range(5)]
    assert [p.id for p in reproduce.scored_problems(untiered, 2)] == ["0", "1"]
    with pytest.raises(reproduce.ReproduceError, match="each tier"):
        reproduce.scored_problems(problems, 2)


# ----------------------------------------------------------------------------- the scheduler

def script_task(tmp_path, name, code, after="", decoding="") -> reproduce.Task:
    folder = tmp_path / name
    return reproduce.Task(name, "ft", 0, decoding, 1, folder, ["-c", code], after=after)


FINISH_TRAIN = "import json, pathlib; pathlib.Path({f!r}, 'summary.json').write_text(json.dumps({{'step': 1}}))"
FINISH_SAMPLE = ("import pathlib; p = pathlib.Path({f!r}); (p / 'report.md').write_text('x');"
                 "(p / 'samples_results.jsonl').write_text('')")


def test_scheduler_runs_after_dependencies_and_skips_what_a_failure_blocks(tmp_path):
    a = script_task(tmp_path, "a", FINISH_TRAIN.format(f=str(tmp_path / "a")))
    b = script_task(tmp_path, "a/b", FINISH_SAMPLE.format(f=str(tmp_path / "a" / "b")), after="a", decoding="direct")
    c = script_task(tmp_path, "c", "import sys; print('boom'); sys.exit(3)")
    d = script_task(tmp_path, "c/d", FINISH_SAMPLE.format(f=str(tmp_path / "c" / "d")), after="c", decoding="direct")
    finished = []
    with pytest.raises(reproduce.ReproduceError) as e:
        reproduce.run_all([a, b, c, d], tmp_path, jobs=2, finished=lambda task: finished.append(task.name))
    assert sorted(finished) == ["a", "a/b"]   # main saves the outcomes after each run that succeeds
    assert "c: python" in str(e.value) and "exited with 3" in str(e.value) and "boom" in str(e.value)
    assert "skipped, as they need c: c/d" in str(e.value)
    assert a.finished() and b.finished() and not d.finished()
    ledger = json.loads((tmp_path / "timings.json").read_text())
    assert set(ledger) == {"a", "a/b", "c"} and ledger["a"]["kind"] == "train ft" and ledger["a/b"]["kind"] == "direct"
    # a rerun runs only what is not finished
    (tmp_path / "a" / "train.log").unlink()
    with pytest.raises(reproduce.ReproduceError):
        reproduce.run_all([a, b, c, d], tmp_path, jobs=1)
    assert not (tmp_path / "a" / "train.log").exists()
    assert (tmp_path / "c" / "train.log").read_text().count("$ python") == 2


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    a = script_task(tmp_path, "a", FINISH_TRAIN.format(f=str(tmp_path / "a")))
    a.argv += ["--workers", "2"]
    reproduce.run_all([a], tmp_path, jobs=1)
    a.argv[-1] = "8"   # another --jobs: the same run, only faster
    reproduce.run_all([a], tmp_path, jobs=1)
    a.argv = a.argv + ["--other"]
    with pytest.raises(reproduce.ReproduceError, match="other settings"):
        reproduce.run_all([a], tmp_path, jobs=1)


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    calls = []

    class FakePopen:
        def __init__(self, cmd, **kw):
            calls.append(cmd)

    monkeypatch.setattr(reproduce.subprocess, "Popen", FakePopen)
    task = reproduce.Task("ft-seed0", "ft", 0, "", 5, tmp_path / "ft-seed0", ["train.py", "--steps", "5"])
    task.folder.mkdir(parents=True)
    (task.folder / "metrics.jsonl").write_text("{}\n")
    reproduce.Running(task, 1)
    assert "--resume" not in calls[-1] and not (task.folder / "metrics.jsonl").exists()
    (task.folder / "last.pt").write_bytes(b"x")
    reproduce.Running(task, 1)
    assert calls[-1][-1] == "--resume" and calls[-1][-3:-1] == ["--steps", "5"]
    assert (task.folder / "train.log").read_text().count("$ python train.py") == 2


# ----------------------------------------------------------------------------- ranking never sees hidden tests

def contradicting_problem() -> Problem:
    """Public and hidden tests that disagree, so a program can pass one set and fail the other."""
    return Problem(id="echo", question="Print the number you read.", difficulty="introductory", source="synthetic",
                   public_tests=[Test("stdio", "1\n", "2\n")],
                   hidden_tests=[Test("stdio", "1\n", "1\n"), Test("stdio", "5\n", "5\n")])


PUBLIC_ONLY, HIDDEN_ONLY = "print(int(input()) + 1)\n", "print(input())\n"


def fake_generation(monkeypatch):
    """Plan A's program passes only the public test, plan B's only the hidden ones; the model prefers B."""
    def fake(model, tokenizer, sources, head, n=1, **_):
        if head == "plan":
            return [[("PLAN A", -0.1, 2), ("PLAN B", -0.1, 2)][:n] for _ in sources]
        return [[(PUBLIC_ONLY, -5.0, 9) if "PLAN A" in src else (HIDDEN_ONLY, -0.5, 9)] * n for src in sources]
    monkeypatch.setattr(codeplan, "generate_texts", fake)


def test_plan_sampling_ranks_by_public_tests_never_by_hidden_ones(monkeypatch, tmp_path):
    fake_generation(monkeypatch)
    problem = contradicting_problem()
    no_model = torch.nn.Linear(1, 1)   # plan_sample only asks it for its device; generation is faked
    with sandbox.Pool(workers=1, timeout=10.0) as pool:
        ((_, candidates),) = list(codeplan.plan_sample(no_model, None, [(0, [problem])], pool, n=2))
    ranked = [codeplan.rank_candidates(candidates)]
    top, second = ranked[0]
    assert (top.code, top.public, top.passed) == (PUBLIC_ONLY, 1.0, False)
    assert (second.code, second.public, second.passed) == (HIDDEN_ONLY, 0.0, True)
    report = codeplan.pass_at_k_report([problem], [candidates], [1, 2])
    assert report["all"]["1@2"] == 0.0 and report["all"]["pass@2"] == 1.0
    # reproduce.py scores the written rows the same way: the top-ranked candidate failed
    rows = [score.result_row(problem.id, c, rank=r) for r, c in enumerate(ranked[0])]
    (tmp_path / "samples_results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert reproduce.read_outcomes(tmp_path / "samples_results.jsonl") == {"echo": [2, 1, 0]}
    # sample.py --show: each plan with its program, public pass rate, hidden verdict and rank
    shown = sample.show([problem], ranked, 1)
    assert "Print the number you read." in shown
    first, rest = shown.split("--- rank 1")
    assert "--- rank 0 | plan 0 | public tests passed 100% | hidden: wrong_answer" in first and "PLAN A" in first
    assert PUBLIC_ONLY.strip() in first and HIDDEN_ONLY.strip() not in first
    assert rest.startswith(" | plan 1 | public tests passed 0% | hidden: PASSED") and "PLAN B" in rest
    assert sample.parse_args(["--show", "3"]).show == 3
    with pytest.raises(SystemExit):
        sample.parse_args(["--show", "-1"])


# ----------------------------------------------------------------------------- end to end, micro configuration

WRAPPER = """import runpy, sys
sys.path.insert(0, {root!r})
import model
model.PRESETS["tiny"] = {micro!r}
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


@pytest.fixture(scope="module")
def tiered_spec(tmp_path_factory) -> str:
    """A small synthetic benchmark whose test problems carry tiers."""
    path = tmp_path_factory.mktemp("tiered") / "synthetic-tiered.jsonl"
    splits = synthetic.generate(0, (200, 20, 21))   # 7 test problems per tier
    assert all(p["tier"] for p in splits["test"])
    path.write_text("".join(json.dumps({"split": s, **p}) + "\n" for s in ("train", "valid", "test") for p in splits[s]))
    return f"synthetic:{path}"


def test_main_end_to_end_chooses_on_valid_before_reading_test_and_report_only_rebuilds_the_same_tables(
        tiered_spec, tmp_path, monkeypatch, capsys):
    wrapper = tmp_path / "micro.py"
    wrapper.write_text(WRAPPER.format(root=str(ROOT), micro=MICRO))
    monkeypatch.setattr(reproduce, "PYTHON", [sys.executable, str(wrapper)])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    root = tmp_path / "results" / "full"
    load_problems = reproduce.data.load_problems

    def test_split_only_after_selection(spec, split=None):
        if split == "test" and not (root / "selection.json").exists():
            raise AssertionError("the test split was read before the learning rates were fixed")
        return load_problems(spec, split)

    monkeypatch.setattr(reproduce.data, "load_problems", test_split_only_after_selection)
    argv = ["--seeds", "1", "--steps", "2", "--problems", "3", "--valid-problems", "3", "--lr-factors", "0.5,1",
            "--curve-every", "1", "--arms", "ft,codeplan", "--decodings", "direct,direct-m4,greedy-plan,n4,ref-plans,corrupted-plans",
            "--data", tiered_spec, "--vocab-size", "400", "--bootstrap", "200", "--jobs", "2", "--out", str(tmp_path / "results"),
            "--train-args", "--max-source-len 128 --max-target-len 32 --eval-examples 4 --warmup 1 --device cpu",
            "--sample-args", "--max-new-tokens 12 --device cpu"]
    reproduce.main(argv)
    printed = capsys.readouterr().out
    text = (root / "results.md").read_text()
    assert printed.strip() == text.strip()
    # the grid was scored on valid and fixed before any test run; the test problems were written after it
    selection = json.loads((root / "selection.json").read_text())
    assert selection["grid"] == [0.00035, 0.0007] and set(selection["scores"]) == set(selection["chosen"]) == {"ft", "codeplan"}
    assert all(set(by_lr) == {"0.00035", "0.0007"} for by_lr in selection["scores"].values())
    assert selection["decoding"] == {"ft": "direct", "codeplan": "greedy-plan"}
    assert (root / "selection.md").exists() and "learning rate" in text.lower()
    inputs = reproduce.Inputs(root, 3, 400, 0.5, 3)
    assert inputs.test_problems.stat().st_mtime >= (root / "selection.json").stat().st_mtime
    valid_runs = sorted(root.glob("runs/*/valid-*"))
    assert len(valid_runs) == 4 and max(f.stat().st_mtime for v in valid_runs for f in v.iterdir()) <= inputs.test_problems.stat().st_mtime
    tables = [l for l in text.splitlines() if l.startswith("|")]
    sections = {part.split("\n", 1)[0]: part for part in text.split("\n## ")[1:]}
    assert list(sections) == ["pass@1 against the matched fine-tuning decoding (RQ1-RQ3)", "By test tier, statement style and difficulty (RQ4)",
                              "Given reference plans against the same model's direct code", "What each arm spent", "Learning curves: pass@1 (%) against training steps"], text
    cells = table_cells(sections["pass@1 against the matched fine-tuning decoding (RQ1-RQ3)"])
    ft, cp = reproduce.arm_label("ft"), reproduce.arm_label("codeplan")
    assert list(cells) == [(ft, "direct code"), (ft, "direct code, 4 samples ranked by public tests"), (cp, "direct code"),
                           (cp, "greedy plan"), (cp, "plan sampling N=4"), (cp, "given reference plans (upper bound)"),
                           (cp, "given corrupted reference plans")]
    assert cells[(ft, "direct code")][:5] == ["1", "1", cells[(ft, "direct code")][2], "direct code", "baseline"]
    assert cells[(cp, "plan sampling N=4")][3] == "direct code, 4 samples ranked by public tests"
    assert cells[(cp, "plan sampling N=4")][6] and not cells[(cp, "given reference plans (upper bound)")][6]   # right plans: sampled only
    assert "seen-chain (1)" in sections["By test tier, statement style and difficulty (RQ4)"]
    assert "held-pair (1)" in sections["By test tier, statement style and difficulty (RQ4)"]
    curves = table_cells(sections["Learning curves: pass@1 (%) against training steps"])
    assert list(curves) == [(ft, "direct code"), (cp, "direct code"), (cp, "plan sampling N=4"),
                            (cp, "plan sampling N=4: problems with a right plan")]
    assert all(len(v) == 2 and v[0] and v[1] for v in curves.values())
    results = json.loads((root / "outcomes.json").read_text())
    assert {(r["arm"], r["decoding"], r["step"]) for r in results["runs"]} == {
        ("ft", "direct", 2), ("ft", "direct", 1), ("ft", "direct-m4", 2), ("codeplan", "direct", 2), ("codeplan", "direct", 1),
        ("codeplan", "n4", 1),
        ("codeplan", "greedy-plan", 2), ("codeplan", "n4", 2), ("codeplan", "ref-plans", 2), ("codeplan", "corrupted-plans", 2)}
    assert all(set(r["outcomes"]) == set(results["problems"]) and len(r["outcomes"]) == 3 for r in results["runs"])
    assert all((set(r["plans"]) == set(results["problems"])) == (r["decoding"] in ("greedy-plan", "n4")) for r in results["runs"])
    assert set(results["training"]) == {"ft", "codeplan"}   # what the cost table needs once runs/ is gone
    # one tokenizer for both arms, the chosen rates, and the step checkpoints the curves were scored from
    tokenizer = (root / "inputs" / "tokenizer-400.model").read_bytes()
    for arm in ("ft", "codeplan"):
        run = root / "runs" / f"{arm}-lr{selection['chosen'][arm]:g}-seed0"
        assert (run / "tokenizer.model").read_bytes() == tokenizer and (run / "step-1.pt").exists()
        assert json.loads((run / "config.json").read_text())["lr"] == selection["chosen"][arm]
        summary = json.loads((run / "summary.json").read_text())
        row = table_cells(sections["What each arm spent"])[(reproduce.arm_label(arm), "1")]
        assert row[0] == f"{selection['chosen'][arm]:g}" and row[2:4] == [
            str(summary["code_examples_seen"] - summary["code_with_plan_seen"]), str(summary["code_with_plan_seen"])]
    # a rerun runs nothing: every run is finished, the choice is read back
    before = json.loads((root / "timings.json").read_text())
    reproduce.main(argv)
    assert json.loads((root / "timings.json").read_text()) == before
    # --report-only rebuilds the same tables, from the run folders and, without them, from outcomes.json
    reproduce.main(argv + ["--report-only"])
    assert [l for l in (root / "results.md").read_text().splitlines() if l.startswith("|")] == tables
    for run in (root / "runs").iterdir():
        for f in run.rglob("samples_results.jsonl"):
            f.unlink()
    reproduce.main(argv + ["--report-only"])
    assert [l for l in (root / "results.md").read_text().splitlines() if l.startswith("|")] == tables
    # a folder made under another train.py default is labelled with the plan share its runs were trained with
    # without an earlier results.md, the code named is the runs' (config.json), not that of the rebuild
    config = json.loads((root / "config.json").read_text())
    config["train_defaults"]["plan_in_code"] = 0.3
    config.update(commit="0" * 40, dirty=False)
    (root / "config.json").write_text(json.dumps(config))
    (root / "results.md").unlink()
    reproduce.main(argv + ["--report-only"])
    relabelled = (root / "results.md").read_text()
    assert f"Code: commit {'0' * 40}\n" in relabelled and "Tables rebuilt by --report-only at commit" in relabelled
    assert "CodePLAN lambda 0.5, plan in 0.3 of code inputs | direct code" in relabelled
    assert reproduce.arm_label("codeplan") not in relabelled


def test_train_tokenizer_flag_refuses_a_missing_file(spec, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--data", spec, "--out", str(tmp_path), "--name", "t", "--steps", "1", "--device", "cpu",
                    "--tokenizer", str(tmp_path / "absent.model")])
    assert e.value.code == 2 and "absent.model" in capsys.readouterr().err


def test_learning_curve_plot_is_optional(tmp_path, monkeypatch):
    points = {("ft", "direct"): {1: [0.1, 0.2], 2: [0.3, 0.3]}, ("codeplan", "n16"): {1: [0.0, 0.1], 2: [0.2, 0.4]}}
    table = table_cells(reproduce.curve_table(points))
    assert table[(reproduce.arm_label("ft"), "direct code")] == ["15.0 ± 7.1", "30.0 ± 0.0"]
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "matplotlib", None)   # as if not installed
        assert not reproduce.plot_curves(points, tmp_path / "absent.png")
    assert not (tmp_path / "absent.png").exists()
    pytest.importorskip("matplotlib", reason="matplotlib is optional; the plot itself is checked where it is installed")
    assert reproduce.plot_curves(points, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
