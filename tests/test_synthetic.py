"""The synthetic benchmark: determinism, splits, held-out combinations, tests, and that every
reference solution passes all its tests when run as a program in the sandbox."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sandbox  # noqa: E402
import synthetic  # noqa: E402
from data import Problem  # noqa: E402

SIZES = (2000, 100, 100)
STEP_RANGE = {"introductory": (1, 2), "interview": (3, 4), "competition": (5, 6)}
PLAN_LINE_TO_STEP = {synthetic.fill(p.plan, k): (p.name, k) for p in synthetic.PRIMITIVES for k in (p.params or (None,))}


@pytest.fixture(scope="module")
def splits() -> dict[str, list[Problem]]:
    return synthetic.generate(seed=0, sizes=SIZES)


def chain_of(problem: Problem) -> list[tuple[str, object]]:
    """The (primitive, parameter) steps, read back from the reference plan (first line reads the
    input, last line prints or returns)."""
    lines = [line.split(". ", 1)[1] for line in problem.reference_plan.split("\n")]
    return [PLAN_LINE_TO_STEP[line] for line in lines[1:-1]]


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
    assert len(PLAN_LINE_TO_STEP) == sum(len(p.params or (None,)) for p in synthetic.PRIMITIVES)


def test_same_seed_same_problems_other_seed_differs(splits):
    again = synthetic.generate(seed=0, sizes=SIZES)
    assert all([p.to_dict() for p in splits[s]] == [p.to_dict() for p in again[s]] for s in synthetic.SPLITS)
    other = synthetic.generate(seed=1, sizes=SIZES)
    assert [p.question for p in other["train"]] != [p.question for p in splits["train"]]


def test_counts_ids_difficulty_and_formats(splits):
    for split, size in zip(synthetic.SPLITS, SIZES):
        problems = splits[split]
        assert len(problems) == size
        assert [p.id for p in problems] == [f"synthetic/{split}/{i}" for i in range(size)]
        difficulties = Counter(p.difficulty for p in problems)
        assert difficulties == {"introductory": round(0.40 * size), "interview": round(0.35 * size),
                                "competition": size - round(0.40 * size) - round(0.35 * size)}
        assert sum(p.fn_name is None for p in problems) == size // 2
        step_counts = Counter(len(chain_of(p)) for p in problems)
        assert set(step_counts) == {1, 2, 3, 4, 5, 6}
        for p in problems:
            lo, hi = STEP_RANGE[p.difficulty]
            assert lo <= len(chain_of(p)) <= hi, p.id
            assert p.source == "synthetic" and p.reference_plan and len(p.solutions) == 2
            assert (p.starter_code == f"def {p.fn_name}(a):\n") if p.fn_name else p.starter_code == ""
    chains = [[name for name, _ in chain_of(p)] for problems in splits.values() for p in problems]
    assert all(len(set(chain)) == len(chain) for chain in chains)
    assert not any(pair in synthetic.POINTLESS_PAIRS for chain in chains for pair in zip(chain, chain[1:]))
    used = {name for problems in splits.values() for p in problems for name, _ in chain_of(p)}
    assert used == {p.name for p in synthetic.PRIMITIVES}


def test_no_question_text_shared_within_or_across_splits(splits):
    texts = [p.question for problems in splits.values() for p in problems]
    assert len(set(texts)) == len(texts)


def test_test_split_holds_combinations_never_seen_in_train(splits):
    holdout = synthetic.Holdout(0)

    def held(p: Problem) -> bool:
        chain, fmt = chain_of(p), "call" if p.fn_name else "stdio"
        if len(chain) == 1:
            return (chain[0][0], chain[0][1], fmt) in holdout.singles
        return any((a, b) in holdout.pairs for (a, _), (b, _) in zip(chain, chain[1:]))

    assert holdout.pairs and holdout.singles
    assert not any(held(p) for p in splits["train"] + splits["valid"])
    assert all(held(p) for p in splits["test"])
    train_pairs = {(a, b) for p in splits["train"] for (a, _), (b, _) in zip(chain_of(p), chain_of(p)[1:])}
    assert train_pairs.isdisjoint(holdout.pairs)
    assert synthetic.Holdout(1).pairs != holdout.pairs


def test_hidden_tests_are_many_distinct_and_cover_edge_cases(splits):
    for p in (p for problems in splits.values() for p in problems):
        assert 1 <= len(p.public_tests) <= 2 and len(p.hidden_tests) >= 10, p.id
        inputs = [json.dumps(t.input) for t in p.public_tests + p.hidden_tests]
        assert len(set(inputs)) == len(inputs), p.id
        kinds = {t.kind for t in p.public_tests + p.hidden_tests}
        assert kinds == ({"call"} if p.fn_name else {"stdio"}), p.id
        args = [t.input[0] if t.kind == "call" else t.input.rstrip("\n") for t in p.hidden_tests]
        assert any(a in ([], "") for a in args), p.id   # empty input
        if "list" in p.reference_plan.split("\n")[0]:
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


def test_statements_are_not_always_in_execution_order(splits):
    multi = [p for p in splits["train"] if len(chain_of(p)) > 1]
    in_order = sum(" First " in p.question for p in multi)
    assert 0.2 * len(multi) < in_order < 0.8 * len(multi)


def test_step_counts_follow_the_difficulty_shares():
    counts = synthetic.step_counts(1000)
    assert Counter(counts) == {1: 200, 2: 200, 3: 175, 4: 175, 5: 125, 6: 125}


def test_every_reference_solution_passes_all_its_tests(splits):
    rng = random.Random(0)
    jobs, labels = [], []
    for split in synthetic.SPLITS:
        for p in rng.sample(splits[split], 40):
            p = Problem.from_dict(json.loads(json.dumps(p.to_dict())))   # as the cache stores it
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
        assert compact.count("\n") <= len(chain_of(p)) + 4, p.id


def test_bad_sizes_fail_with_one_clear_message():
    with pytest.raises(synthetic.SyntheticError, match="sizes"):
        synthetic.generate(sizes=(10, -1, 10))
    result = subprocess.run([sys.executable, str(ROOT / "synthetic.py"), "--sizes", "5", "-1", "5"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "sizes" in result.stderr and "Traceback" not in result.stderr
