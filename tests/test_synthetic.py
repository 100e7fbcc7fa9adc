"""The synthetic benchmark: determinism, styles, tiers, the fixed flaws of earlier generators (format
tied to step count, aliases through the hold-out, steps the tests cannot see, ambiguous phrasings,
worked examples that do not identify their steps, a valid split without tiers, a mix too hard for
the CPU budget), and that every reference solution passes all its tests when run in the sandbox."""
from __future__ import annotations

import ast
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import codeplan  # noqa: E402
import data  # noqa: E402
import sample  # noqa: E402
import sandbox  # noqa: E402
import synthetic  # noqa: E402
from problems import Problem  # noqa: E402

SIZES = (2000, 300, 300)   # the determinacy check runs on at least 300 problems of each split
STEP_RANGE = {"introductory": (1, 2), "interview": (3, 4), "competition": (5, 6)}
DEFAULT = synthetic.MIXES[synthetic.DEFAULT_MIX]
STEP_BY_PLAN_LINE = {synthetic.plan_step(p, k): (p, k) for p in synthetic.PRIMITIVES for k in (p.params or (None,))}


@pytest.fixture(scope="module")
def records() -> dict[str, list[dict]]:
    return synthetic.generate(seed=0, sizes=SIZES)


@pytest.fixture(scope="module")
def splits(records) -> dict[str, list[Problem]]:
    # through JSON, as the cache stores them
    return {s: [Problem.from_dict(json.loads(json.dumps(r))) for r in rows] for s, rows in records.items()}


def steps_of(problem: Problem) -> list[synthetic.Step]:
    """The (primitive, parameter) steps, read back from the reference plan (one line per step)."""
    return [STEP_BY_PLAN_LINE[line.split(". ", 1)[1]] for line in problem.reference_plan.split("\n")]


def names_of(problem: Problem) -> list[str]:
    return [prim.name for prim, _ in steps_of(problem)]


def test_primitive_table_is_rich_and_unambiguous():
    names = [p.name for p in synthetic.PRIMITIVES]
    assert len(names) >= 30 and len(set(names)) == len(names)
    for p in synthetic.PRIMITIVES:
        assert len(p.nouns) >= 3 and len(p.verbs) >= 2, p.name
        assert all("{x}" in noun for noun in p.nouns), p.name
        assert {p.takes, p.gives} <= {"list", "str", "int"}, p.name
        uses_k = any("{k}" in text for text in (p.short, p.loop, p.plan, *p.nouns, *p.verbs))
        assert uses_k == bool(p.params), p.name
    assert {name for pair in synthetic.POINTLESS_PAIRS for name in pair} <= set(names)
    # each plan line names one step, so a plan determines its program
    assert len(STEP_BY_PLAN_LINE) == sum(len(p.params or (None,)) for p in synthetic.PRIMITIVES)


def test_code_identical_steps_are_one_hold_out_class():
    """keep_gt 0 was keep_pos, reverse was reverse_chars: the hold-out must not separate the same code."""
    by_code: dict[str, set[str]] = {}
    for p in synthetic.PRIMITIVES:
        for k in p.params or (None,):
            by_code.setdefault(synthetic.fill(p.short, k), set()).add(synthetic.code_class(p))
    assert all(len(classes) == 1 for classes in by_code.values()), {c: v for c, v in by_code.items() if len(v) > 1}
    assert synthetic.code_class(next(p for p in synthetic.PRIMITIVES if p.name == "reverse")) == \
        synthetic.code_class(next(p for p in synthetic.PRIMITIVES if p.name == "reverse_chars"))


def test_same_seed_same_problems_other_seed_differs(records):
    assert synthetic.generate(seed=0, sizes=SIZES) == records
    other = synthetic.generate(seed=1, sizes=SIZES)
    assert [p["question"] for p in other["train"]] != [p["question"] for p in records["train"]]


def test_default_benchmark_digest_is_the_committed_one():
    # pins the default benchmark (about 20 s of generation): a change to it must update DEFAULT_DIGEST knowingly
    assert synthetic.splits_digest(synthetic.generate()) == synthetic.DEFAULT_DIGEST


def test_cache_is_keyed_by_the_generator_source(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEPLAN_DATA", str(tmp_path))
    first = data.load_synthetic(None, "test", sizes=(300, 20, 30))
    assert [p.tier for p in first] and len(list(tmp_path.glob("*.jsonl"))) == 1
    assert synthetic.source_digest() in next(tmp_path.glob("*.jsonl")).name
    monkeypatch.setattr(synthetic, "source_digest", lambda: "0123456789abcdef")   # as if the generator changed
    data.load_synthetic(None, "test", sizes=(300, 20, 30))
    assert len(list(tmp_path.glob("*.jsonl"))) == 2


def test_synthetic_does_not_import_data():
    tree = ast.parse((ROOT / "synthetic.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"data", "codeplan", "train", "sample", "teacher"}


def test_counts_ids_difficulty_and_steps(splits):
    for split, size in zip(synthetic.SPLITS, SIZES):
        problems = splits[split]
        assert len(problems) == size
        assert [p.id for p in problems] == [f"synthetic/{split}/{i}" for i in range(size)]
        assert sum(p.fn_name is None for p in problems) == size // 2 if split == "train" else True
        for p in problems:
            lo, hi = STEP_RANGE[p.difficulty]
            assert lo <= len(steps_of(p)) <= hi, p.id
            assert p.source == "synthetic" and p.reference_plan and len(p.solutions) == 2
            assert (p.starter_code == f"def {p.fn_name}(a):\n") if p.fn_name else p.starter_code == ""
    assert Counter(len(steps_of(p)) for p in splits["train"]).keys() == set(DEFAULT.shares)
    chains = [names_of(p) for problems in splits.values() for p in problems]
    assert all(len(set(chain)) == len(chain) for chain in chains)
    assert not any(pair in synthetic.POINTLESS_PAIRS for chain in chains for pair in zip(chain, chain[1:]))
    used = {name for problems in splits.values() for p in problems for name in names_of(p)}
    assert used == {p.name for p in DEFAULT.primitives}


def test_format_is_drawn_independently_of_the_step_count(splits):
    for n_steps in DEFAULT.shares:
        group = [p for p in splits["train"] if len(steps_of(p)) == n_steps]
        stdio = sum(p.fn_name is None for p in group) / len(group)
        assert 0.3 < stdio < 0.7, (n_steps, stdio)


def test_styles_goal_in_at_least_half_of_every_difficulty(splits):
    for split, problems in splits.items():
        for difficulty in {p.difficulty for p in problems}:
            styles = Counter(p.style for p in problems if p.difficulty == difficulty)
            assert set(styles) == {"goal", "steps"} and styles["goal"] >= styles["steps"], (split, difficulty, styles)


def test_goal_statements_do_not_list_the_steps_and_show_a_worked_example(splits):
    phrases = {synthetic.fill(v, k).lower() for p in synthetic.PRIMITIVES for v in p.verbs for k in (p.params or (None,))}
    phrases |= {synthetic.fill(n, k).split("{x}")[0].strip().lower() for p in synthetic.PRIMITIVES for n in p.nouns
                for k in (p.params or (None,)) if not n.startswith("{x}")}
    goal = [p for problems in splits.values() for p in problems if p.style == "goal"]
    for p in goal:
        statement = p.question.split("\n\nInput:")[0].lower()
        assert not [phrase for phrase in phrases if phrase in statement], p.id
        assert "worked example: " in statement and statement.count(" -> ") == len(steps_of(p)), p.id
    steps = [p for p in splits["train"] if p.style == "steps"]
    assert all("worked example" not in p.question.lower() for p in steps)


def test_reference_plan_is_numbered_in_execution_order_and_determines_the_code(splits):
    for p in (p for problems in splits.values() for p in problems):
        lines = p.reference_plan.split("\n")
        assert [line.split(". ", 1)[0] for line in lines] == [str(i) for i in range(1, len(lines) + 1)], p.id
        fmt = "call" if p.fn_name else "stdio"
        assert synthetic.solution(steps_of(p), fmt, p.fn_name or "", "short") == p.solutions[0], p.id


def test_every_step_changes_some_test_output(splits):
    """Dropping a step used to leave every output unchanged in many problems (sort before sum)."""
    for p in (p for problems in splits.values() for p in problems):
        steps = steps_of(p)
        if len(steps) == 1:
            continue
        tests = p.public_tests + p.hidden_tests
        args = [t.input[0] if t.kind == "call" else t.input for t in tests]
        for i in range(len(steps)):
            shorter = steps[:i] + steps[i + 1:]
            try:
                if p.fn_name:
                    unchanged = all(synthetic.run_chain(shorter, a) == t.output for a, t in zip(args, tests))
                else:
                    read = (lambda a: a.rstrip("\n")) if steps[0][0].takes == "str" else (lambda a: [int(x) for x in a.split()])
                    unchanged = all(synthetic.stdin_text(synthetic.run_chain(shorter, read(a))) == t.output
                                    for a, t in zip(args, tests))
            except (TypeError, AttributeError):
                unchanged = False
            assert not unchanged, (p.id, i)


def test_nested_phrasings_read_one_way():
    """"the squares of the list with only the values above 0 kept" was both keep-then-square and
    square-then-keep: no phrase may name two orders of the same two steps."""
    rng = random.Random(0)
    for p in synthetic.PRIMITIVES:
        for q in synthetic.PRIMITIVES:
            if p is q or p.takes != p.gives or q.takes != q.gives or p.takes != q.takes:
                continue
            k_p, k_q = (p.params or (None,))[0], (q.params or (None,))[0]
            forward = {synthetic.nested(rng, [(p, k_p), (q, k_q)], "the list") for _ in range(12)}
            backward = {synthetic.nested(rng, [(q, k_q), (p, k_p)], "the list") for _ in range(12)}
            assert not (forward & backward) - {None}, (p.name, q.name, forward & backward)


def test_tiers_are_named_sized_and_built_as_described(splits):
    """Valid had no tiers, so choices made on it could not be read per tier."""
    assert {p.tier for p in splits["train"]} == {""}
    for split, size in zip(synthetic.SPLITS[1:], SIZES[1:]):
        assert Counter(p.tier for p in splits[split]) == {tier: size // 3 for tier in synthetic.TIERS}, split
    held = synthetic.holdout_pairs(0, DEFAULT)
    assert held and synthetic.holdout_pairs(1, DEFAULT) != held
    chains = synthetic.Chains(0, DEFAULT)

    def key(p):
        return synthetic.chain_key(steps_of(p))

    def pairs(p):
        return synthetic.class_pairs(steps_of(p))

    train_keys = {key(p) for p in splits["train"]}
    train_pairs = set().union(*(pairs(p) for p in splits["train"]))
    assert not train_pairs & held and not [k for k in train_keys if chains.reserved(k)]
    assert not {key(p) for p in splits["valid"]} & {key(p) for p in splits["test"]}
    for p in splits["valid"] + splits["test"]:
        if p.tier == "seen-chain":
            assert key(p) in train_keys, p.id
        elif p.tier == "new-chain":
            assert key(p) not in train_keys and pairs(p) <= train_pairs and not pairs(p) & held, p.id
            assert chains.reserved(key(p)) and chains.half(key(p)) == p.id.split("/")[1], p.id
        else:
            assert pairs(p) & held, p.id


def test_unseen_tiers_share_no_code_with_train(splits):
    """test/44 used to be byte-identical to train/7181 through an alias."""
    train_code = {p.solutions[0] for p in splits["train"]}
    assert not [p.id for p in splits["test"] if p.tier != "seen-chain" and p.solutions[0] in train_code]


def test_no_question_text_shared_within_or_across_splits(splits):
    texts = [p.question for problems in splits.values() for p in problems]
    assert len(set(texts)) == len(texts)


def test_hidden_tests_are_many_distinct_and_cover_edge_cases(splits):
    for p in (p for problems in splits.values() for p in problems):
        assert 1 <= len(p.public_tests) <= 2 and len(p.hidden_tests) >= 10, p.id
        inputs = [json.dumps(t.input) for t in p.public_tests + p.hidden_tests]
        assert len(set(inputs)) == len(inputs), p.id
        kinds = {t.kind for t in p.public_tests + p.hidden_tests}
        assert kinds == ({"call"} if p.fn_name else {"stdio"}), p.id
        args = [t.input[0] if t.kind == "call" else t.input.rstrip("\n") for t in p.hidden_tests]
        assert any(a in ([], "") for a in args), p.id   # empty input
        if steps_of(p)[0][0].takes == "list":
            values = [a if t.kind == "call" else [int(v) for v in a.split()] for a, t in zip(args, p.hidden_tests)]
            assert any(len(v) == 1 for v in values), p.id
            assert any(len(v) > len(set(v)) for v in values), p.id
            assert any(v and all(x < 0 for x in v) for v in values), p.id


def test_statement_shows_the_public_examples_and_a_format_section(splits):
    for p in splits["valid"]:
        assert "Input:" in p.question and "Output:" in p.question
        for t in p.public_tests:
            if t.kind == "stdio":
                assert f"Input:\n{t.input}Output:\n{t.output}" in p.question + "\n", p.id
            else:
                assert f"{p.fn_name}({t.input[0]!r}) returns {t.output!r}" in p.question, p.id


def test_step_statements_are_not_always_in_execution_order(splits):
    multi = [p for p in splits["train"] if len(steps_of(p)) > 1 and p.style == "steps"]
    in_order = sum(" First " in p.question for p in multi)
    assert 0.2 * len(multi) < in_order < 0.9 * len(multi)


def test_step_counts_follow_the_mix():
    assert Counter(synthetic.step_counts(1000, synthetic.MIXES["full"])) == {1: 200, 2: 200, 3: 175, 4: 175, 5: 125, 6: 125}
    assert Counter(synthetic.step_counts(1000, synthetic.MIXES["short"])) == {1: 500, 2: 300, 3: 200}


def test_default_mix_is_short_and_the_full_mix_stays_reachable(records):
    """At 1 to 6 steps of 47 primitives the CPU budget solved almost nothing, and with all 47 at 1 to
    3 steps fine-tuning still wrote code without reading the statement; the default is 1 to 3 steps
    of the core primitives, and the full mix is a flag away."""
    assert synthetic.DEFAULT_MIX == "short" and max(DEFAULT.shares) == 3
    assert len(DEFAULT.primitives) <= 25 < len(synthetic.MIXES["full"].primitives) == len(synthetic.PRIMITIVES)
    assert max(len(p["reference_plan"].split("\n")) for rows in records.values() for p in rows) == 3
    full = synthetic.generate(seed=0, sizes=(600, 60, 60), mix="full")
    assert {len(p["reference_plan"].split("\n")) for p in full["train"]} == {1, 2, 3, 4, 5, 6}
    assert len({p.name for p in synthetic.PRIMITIVES} - {name for p in full["train"] for name in names_of(Problem.from_dict(p))}) < 5
    result = subprocess.run([sys.executable, str(ROOT / "synthetic.py"), "--mix", "hard"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--mix" in result.stderr


def test_every_problem_is_determined_by_what_a_solver_sees(records):
    """Worked examples on a list without duplicates could not tell "remove duplicates" from doing
    nothing: many goal problems had consistent chains with different hidden outputs."""
    for split, rows in records.items():
        assert len(rows) >= 300
        undetermined = [p["id"] for p in rows if not synthetic.determined(p, DEFAULT)[0]]
        assert undetermined == [], (split, undetermined[:5])
    result = subprocess.run([sys.executable, str(ROOT / "synthetic.py"), "--check", "--split", "valid", "--sizes", "600", "300", "30"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.startswith("valid: all 100.0% of 300"), result.stdout + result.stderr


def test_the_check_finds_an_undetermined_problem():
    """[5, -4, -2, -2, 8] -> 5 is both "count the numbers" and "add them up"; [1, 2] -> [1, 2] shows
    nothing of a sort; a steps problem names one chain. Checked as a solver of every primitive."""
    full = synthetic.MIXES["full"]
    def goal(example: str, public, hidden) -> dict:
        return {"style": "goal", "fn_name": "f", "question": f"Worked example: {example}.\n\nInput: a.",
                "public_tests": [{"kind": "call", "input": [a], "output": o} for a, o in public],
                "hidden_tests": [{"kind": "call", "input": [a], "output": o} for a, o in hidden]}
    assert not synthetic.determined(goal("[5, -4, -2, -2, 8] -> 5", [([5, -4, -2, -2, 8], 5)], [([3], 3)]), full)[0]
    assert synthetic.determined(goal("[5, -4, 6] -> 7", [([5, -4, 6], 7)], [([1, 1], 2)]), full) == (True, 1)
    assert not synthetic.determined(goal("[1, 2] -> [1, 2]", [([1, 2], [1, 2])], [([2, 1], [1, 2])]), full)[0]
    steps = {"style": "steps", "fn_name": None, "question": "You are given a list of integers. Print the sum of the squares of the list.",
             "public_tests": [{"kind": "stdio", "input": "1 2\n", "output": "5\n"}],
             "hidden_tests": [{"kind": "stdio", "input": "-3\n", "output": "9\n"}]}
    assert synthetic.determined(steps, full) == (True, 2)


def test_every_reference_solution_passes_all_its_tests(splits):
    rng = random.Random(0)
    jobs, labels = [], []
    for split in synthetic.SPLITS:
        for p in rng.sample(splits[split], 30):
            for style, code in zip(("compact", "loops"), p.solutions):
                for which in ("public", "hidden"):
                    jobs.append((p, code, which))
                    labels.append((p.id, style, which))
    assert {p.fn_name is None for p, _, _ in jobs} == {True, False}
    verdicts = sandbox.evaluate_many(jobs, workers=2, timeout=10.0)
    failures = {label: v.message for label, v in zip(labels, verdicts) if not v.passed}
    assert failures == {}
    ran = [len(v.tests) for v in verdicts]
    expected = [len(p.public_tests if which == "public" else p.hidden_tests) for p, _, which in jobs]
    assert ran == expected and all(v.tests == ["passed"] * n for v, n in zip(verdicts, ran))


def test_solution_styles_differ_and_are_short(splits):
    for p in splits["train"][:500]:
        compact, loops = p.solutions
        assert compact != loops, p.id
        assert compact.count("\n") <= len(steps_of(p)) + 4, p.id


def test_reports_group_by_tier_and_sample_takes_a_fixed_subset_per_tier(splits):
    problems = splits["test"]
    subset = sample.first_per_tier(problems, 10)
    assert Counter(p.tier for p in subset) == {tier: 10 for tier in synthetic.TIERS}
    assert subset == [p for p in problems if p in subset] and subset[0] is problems[0]
    candidates = [[codeplan.Candidate(code="", logprob=0.0, passed=p.tier == "seen-chain")] for p in subset]
    report = codeplan.pass_at_k_report(subset, candidates, [1])
    assert report["tier seen-chain"]["problems"] == 10 and report["tier seen-chain"]["1@1"] == 1.0
    assert report["tier new-chain"]["1@1"] == 0.0 and report["all"]["problems"] == 30
    assert report["all"]["pass@1"] == pytest.approx(1 / 3)


def test_bad_sizes_fail_with_one_clear_message():
    with pytest.raises(synthetic.SyntheticError, match="sizes"):
        synthetic.generate(sizes=(10, -1, 10))
    result = subprocess.run([sys.executable, str(ROOT / "synthetic.py"), "--sizes", "5", "-1", "5"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "sizes" in result.stderr and "Traceback" not in result.stderr
