"""codeplan.py: task formats, example building, batch encoding, the multi-task loss, ranking, plan sampling and pass@k."""
import math
import random
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import batching  # noqa: E402
import codeplan  # noqa: E402
import model  # noqa: E402
import synthetic  # noqa: E402
from codeplan import Candidate  # noqa: E402
from problems import Problem, Test  # noqa: E402


class CharTokenizer:
    """One id per character: enough for encode_batch, whose only needs are encode() and eos_id."""
    pad_id, eos_id = 0, 1

    def encode(self, text: str) -> list[int]:
        return [3 + ord(c) % 250 for c in text]


def call_problem(pid="p1", question="Add one to x.", solutions=("def f(x):\n    return x + 1\n",)) -> Problem:
    return Problem(id=pid, question=question, solutions=list(solutions), fn_name="f",
                   public_tests=[Test("call", [1], 2)], hidden_tests=[Test("call", [2], 3)],
                   difficulty="introductory", source="synthetic", reference_plan="1. Return x + 1.")


def mbpp_problem() -> Problem:
    return Problem(id="11", question="Write a function to remove first and last occurrence of a given character.",
                   solutions=["def remove_Occ(s, ch):\n    return s\n"],
                   public_tests=[Test("assert", 'assert remove_Occ("hello","l") == "heo"')],
                   hidden_tests=[Test("assert", 'assert remove_Occ("abcda","a") == "bcd"')], source="mbpp")


# ----------------------------------------------------------------------------- formats

def test_code_source_starts_with_marker_and_includes_plan_only_when_given():
    p = call_problem()
    plain = codeplan.code_source(p)
    with_plan = codeplan.code_source(p, "  1. Return x + 1.\n")
    assert plain.startswith(codeplan.CODE) and with_plan.startswith(codeplan.CODE)
    assert codeplan.GIVEN_PLAN not in plain and "Return x + 1" not in plain
    assert codeplan.GIVEN_PLAN + "1. Return x + 1.\n" in with_plan
    assert plain.endswith("ANSWER:\n") and with_plan.endswith("ANSWER:\n")
    assert "Use Call-Based format, function f" in plain
    assert codeplan.code_source(p, "") == plain          # an empty plan is no plan


def test_plan_source_starts_with_plan_marker():
    p = call_problem()
    src = codeplan.plan_source(p)
    assert src.startswith(codeplan.PLAN) and src.endswith("Let's think step by step:\n")
    assert codeplan.CODE not in src and "Add one to x." in src


def test_stdin_problem_says_standard_input():
    p = Problem(id="s", question="Read n, print n.", solutions=["print(input())"])
    assert "Use Standard Input format" in codeplan.code_source(p)


def test_mbpp_shows_its_public_assert_once():
    p = mbpp_problem()
    src = codeplan.code_source(p)
    assert 'assert remove_Occ("hello","l") == "heo"' in src
    assert 'assert remove_Occ("abcda","a") == "bcd"' not in src      # hidden tests never shown
    # an assert already in the statement is not repeated
    p.question += '\nassert remove_Occ("hello","l") == "heo"'
    assert codeplan.code_source(p).count('remove_Occ("hello","l")') == 1


# ----------------------------------------------------------------------------- examples and batches

def test_make_examples_shortest_vs_all():
    long, short = "def f(x):\n    y = x + 1\n    return y\n", "def f(x): return x+1\n"
    problems = [call_problem("a", solutions=(long, short)), call_problem("b", solutions=()), call_problem("c")]
    plans = {"a": ["1. Add."]}
    shortest = codeplan.make_examples(problems, plans, "shortest")
    assert [(e.problem.id, e.solution) for e in shortest] == [("a", short), ("c", problems[2].solutions[0])]
    assert shortest[0].plans == ["1. Add."] and shortest[1].plans == []
    every = codeplan.make_examples(problems, plans, "all")
    assert [(e.problem.id, e.solution) for e in every] == [("a", long), ("a", short), ("c", problems[2].solutions[0])]


def examples(n=12):
    return [codeplan.Example(call_problem(f"p{i}"), "def f(x):\n    return x + 1\n", [f"PLAN-{i} step one."])
            for i in range(n)]


def encode(exs, lam, plan_in_code, max_source=10_000, max_target=10_000, seed=0):
    counts = {}
    batch = codeplan.encode_batch(exs, CharTokenizer(), lam, plan_in_code, random.Random(seed),
                                  max_source, max_target, counts)
    return batch, counts


def decode(ids):
    return "".join(chr((i - 3) % 250) for i in ids)   # ASCII round trip of CharTokenizer


def test_longest_targets_count_the_tokens_of_each_heads_longest_target_with_eos():
    exs = [codeplan.Example(call_problem("a"), "x" * 30, ["p" * 7, "p" * 50]), codeplan.Example(call_problem("b"), "y" * 41, [])]
    assert codeplan.longest_targets(exs, CharTokenizer(), 0.5) == {"code": 42, "plan": 51}
    assert codeplan.longest_targets(exs, CharTokenizer(), 0.0) == {"code": 42}    # at lambda 0 no plan is a target
    assert codeplan.longest_targets(exs[1:], CharTokenizer(), 0.5) == {"code": 42}   # no example has a plan


@pytest.mark.parametrize("longest, cap", [(1, 10), (100, 133), (101, 135), (197, 255), (198, 256), (199, 256),
                                          (1000, 256), (None, 256)])
def test_decoding_cap_is_the_longest_target_plus_a_quarter_and_8_at_most_max_target_len(longest, cap):
    assert codeplan.decoding_cap(longest, 256) == cap


def test_lambda_zero_never_uses_plans():
    batch, _ = encode(examples(), lam=0.0, plan_in_code=1.0)
    assert batch["plan"] == [] and len(batch["code"]) == 12
    assert all("PLAN-" not in decode(s) for s, _ in batch["code"])


def test_lambda_one_has_no_code_pairs():
    batch, _ = encode(examples(), lam=1.0, plan_in_code=0.5)
    assert batch["code"] == [] and len(batch["plan"]) == 12
    for (s, t), i in zip(batch["plan"], range(12)):
        assert decode(s).startswith(codeplan.PLAN) and decode(t[:-1]) == f"PLAN-{i} step one."
        assert t[-1] == CharTokenizer.eos_id


def test_plan_in_code_probability():
    always, _ = encode(examples(), lam=0.5, plan_in_code=1.0)
    assert all(f"PLAN-{i}" in decode(s) for i, (s, _) in enumerate(always["code"]))
    never, _ = encode(examples(), lam=0.5, plan_in_code=0.0)
    assert all("PLAN-" not in decode(s) for s, _ in never["code"])
    half, _ = encode(examples(200), lam=0.5, plan_in_code=0.5)
    with_plan = sum("PLAN-" in decode(s) for s, _ in half["code"])
    assert 60 < with_plan < 140
    # the code target is the solution with eos, whatever the input
    assert all(decode(t[:-1]) == "def f(x):\n    return x + 1\n" and t[-1] == 1 for _, t in half["code"])


def test_examples_without_plans_give_no_plan_pair():
    exs = examples(3)
    exs[1].plans = []
    batch, _ = encode(exs, lam=0.5, plan_in_code=1.0)
    assert len(batch["code"]) == 3 and len(batch["plan"]) == 2
    assert codeplan.GIVEN_PLAN not in decode(batch["code"][1][0])


def test_truncation_is_counted_and_cut_targets_have_no_eos():
    batch, counts = encode(examples(4), lam=0.5, plan_in_code=0.0, max_source=20, max_target=8)
    assert counts == {"code_source_truncated": 4, "code_target_truncated": 4,
                      "plan_source_truncated": 4, "plan_target_truncated": 4}
    for task in ("code", "plan"):
        for s, t in batch[task]:
            assert len(s) == 20 and len(t) == 8 and CharTokenizer.eos_id not in t
    _, none = encode(examples(4), lam=0.5, plan_in_code=0.0)
    assert none == {}


# ----------------------------------------------------------------------------- the multi-task loss

def tiny_model(seed=0) -> model.CodePlanModel:
    torch.manual_seed(seed)
    cfg = model.ModelConfig(vocab_size=256, d_model=32, d_kv=8, d_ff=64, num_heads=2, num_layers=1,
                            num_decoder_layers=1, dropout=0.0)
    return model.CodePlanModel(cfg)


def loss_batch(lam, plan_in_code=0.5):
    pairs, _ = encode(examples(4), lam=lam, plan_in_code=plan_in_code, max_source=40, max_target=12)
    return {task: batching.collate(p, 0) if p else None for task, p in pairs.items()}


def token_mean_ce(net, t, head):
    logits, _ = net(t["input_ids"], t["attention_mask"], labels=t["labels"], head=head)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t["labels"].reshape(-1), ignore_index=-100)


@pytest.mark.parametrize("lam", [0.25, 0.5, 0.9])
def test_multitask_loss_is_lambda_mix_of_token_means(lam):
    net = tiny_model()
    batch = loss_batch(lam)
    total, parts = codeplan.MultiTaskLoss(net, lam)(batch)
    l_code, l_plan = token_mean_ce(net, batch["code"], "code"), token_mean_ce(net, batch["plan"], "plan")
    assert torch.allclose(total, (1 - lam) * l_code + lam * l_plan, atol=1e-6)
    assert torch.allclose(parts["code"], l_code) and torch.allclose(parts["plan"], l_plan)
    assert not parts["code"].requires_grad


def test_lambda_zero_leaves_plan_head_without_gradient():
    net = tiny_model()
    batch = loss_batch(0.5)        # plan pairs present: lambda 0 must still skip them
    total, parts = codeplan.MultiTaskLoss(net, 0.0)(batch)
    total.backward()
    assert set(parts) == {"code"}
    assert net.plan_head.weight.grad is None
    assert net.embedding.weight.grad is not None and net.embedding.weight.grad.abs().sum() > 0


def test_lambda_one_runs_only_the_plan_task():
    net = tiny_model()
    batch = loss_batch(0.5)
    total, parts = codeplan.MultiTaskLoss(net, 1.0)(batch)
    assert set(parts) == {"plan"} and torch.allclose(total, token_mean_ce(net, batch["plan"], "plan"))
    total.backward()
    assert net.plan_head.weight.grad is not None


def test_multitask_loss_refuses_a_batch_with_no_weighted_task():
    with pytest.raises(ValueError):
        codeplan.MultiTaskLoss(tiny_model(), 1.0)({"code": loss_batch(0.0)["code"], "plan": None})


# ----------------------------------------------------------------------------- ranking and pass@k

def test_rank_candidates_by_public_rate_then_logprob():
    cands = [Candidate("a", -1.0, public=0.5), Candidate("b", -3.0, public=1.0), Candidate("c", -0.5, public=0.5),
             Candidate("d", -0.1, public=None), Candidate("e", -2.0, public=1.0)]
    assert [c.code for c in codeplan.rank_candidates(cands)] == ["e", "b", "c", "a", "d"]
    # without public tests: log-probability alone
    bare = [Candidate("x", -2.0), Candidate("y", -0.2), Candidate("z", -1.0)]
    assert [c.code for c in codeplan.rank_candidates(bare)] == ["y", "z", "x"]
    with pytest.raises(ValueError):
        codeplan.rank_candidates(bare, by="length")


def test_rank_candidates_counts_identical_programs_once_by_their_best_copy():
    cands = [Candidate("print(1)\n", -0.3), Candidate("x = 2", -1.0), Candidate("print(1)   \n\n", -0.1),
             Candidate("print(2)", -0.5, public=1.0)]
    ranked = codeplan.rank_candidates(cands)
    assert [c.code for c in ranked] == ["print(2)", "print(1)   \n\n", "x = 2"]   # trailing spaces: the same program
    assert codeplan.program_key("a = 1  \n\n") == codeplan.program_key("\na = 1")


def test_rank_by_mean_logprob_does_not_favour_short_programs():
    short, long = Candidate("short", -2.0, tokens=4), Candidate("long", -6.0, tokens=60)   # -0.5 vs -0.1 per token
    assert [c.code for c in codeplan.rank_candidates([short, long])] == ["short", "long"]
    assert [c.code for c in codeplan.rank_candidates([short, long], by="mean-logprob")] == ["long", "short"]


class ByteTokenizer(CharTokenizer):
    """CharTokenizer that also decodes, for generation with tiny_model (vocabulary 256)."""

    def decode(self, ids) -> str:
        return decode(ids)


def test_plan_sample_one_ranks_exactly_like_the_batched_executor():
    """The same seeded stream: plan_sample_one(problem, seed) draws what plan_sample draws for the batch
    (0, [problem]) with that seed, sampled plans and sampled programs alike, and ranks it the same."""
    import sandbox
    net, tokenizer = tiny_model(3), ByteTokenizer()
    problem = call_problem()
    settings = dict(n=3, samples_per_plan=2, temperature=1.0, top_p=1.0, max_plan_tokens=5, max_code_tokens=7, max_source=64)
    with sandbox.Pool(workers=1, timeout=10.0) as pool:
        one = codeplan.plan_sample_one(net, tokenizer, problem, pool, seed=7, **settings)
        ((_, batched),) = list(codeplan.plan_sample(net, tokenizer, [(0, [problem])], pool, seed=7, **settings))
        other_seed = codeplan.plan_sample_one(net, tokenizer, problem, pool, seed=8, **settings)
    assert len(batched) == 6 and len({c.code for c in batched}) > 1 and len({c.plan for c in batched}) > 1
    assert all(c.status and c.public is not None for c in batched)    # every program was run
    def seen(c: Candidate) -> tuple:      # all but the time the tests took
        return c.code, c.plan, c.plan_id, c.logprob, c.tokens, c.public, c.passed, c.status, c.tests
    assert [seen(c) for c in one] == [seen(c) for c in codeplan.rank_candidates(batched)]
    assert [c.code for c in other_seed] != [c.code for c in one]      # the seed matters, so the match is no accident


def test_a_program_several_candidates_wrote_runs_once():
    import sandbox
    problem = call_problem()
    right, wrong = "def f(x):\n    return x + 1\n", "def f(x):\n    return 0\n"
    candidates = [Candidate(code, 0.0) for code in (right, wrong, right, right)]
    with sandbox.Pool(workers=1, timeout=10.0) as pool:
        submitted = []
        submit = pool.submit
        pool.submit = lambda *args: submitted.append(args[1]) or submit(*args)
        codeplan.record_tests(candidates, codeplan.submit_tests(pool, problem, candidates))
    assert sorted(submitted) == sorted([right, right, wrong, wrong])    # public and hidden, once per distinct program
    assert [c.passed for c in candidates] == [True, False, True, True]
    assert [c.public for c in candidates] == [1.0, 0.0, 1.0, 1.0]


def test_plans_and_programs_each_decode_up_to_their_own_cap():
    net, tokenizer = tiny_model(3), ByteTokenizer()
    lengths = {"plan": [], "code": []}
    generate = net.generate

    def recorded(input_ids, attention_mask, head, **kwargs):
        tokens, logprobs = generate(input_ids, attention_mask, head=head, **kwargs)
        lengths[head] += [len(row) for row in tokens]
        return tokens, logprobs
    net.generate = recorded
    problems = [call_problem(f"p{i}") for i in range(3)]
    done = list(codeplan.plan_sample(net, tokenizer, [(0, problems)], None, n=4, samples_per_plan=2, temperature=1.0,
                                     top_p=1.0, max_plan_tokens=5, max_code_tokens=9, max_source=64))
    assert len(done) == 3 and len(lengths["plan"]) == 12 and len(lengths["code"]) == 24
    # an untrained model rarely stops by itself: its rows run to the cap of their head, and no further
    assert max(lengths["plan"]) == 5 and max(lengths["code"]) == 9
    assert all(c.tokens <= 5 + 9 for _, cands in done for c in cands)


def test_plan_sample_one_ranks_by_public_tests_before_the_model(monkeypatch):
    """The model prefers plan B, whose program fails the public test; plan A's passes it and comes first."""
    programs = {"PLAN A": "def f(x):\n    return 2\n", "PLAN B": "def f(x):\n    return x\n"}

    def fake(model, tokenizer, sources, head, n=1, **_):
        if head == "plan":
            return [[("PLAN A", -3.0, 2), ("PLAN B", -0.1, 2)] for _ in sources]
        return [[(programs["PLAN A" if "PLAN A" in src else "PLAN B"], -1.0, 5)] * n for src in sources]
    monkeypatch.setattr(codeplan, "generate_texts", fake)
    import sandbox
    with sandbox.Pool(workers=1, timeout=10.0) as pool:
        ranked = codeplan.plan_sample_one(torch.nn.Linear(1, 1), None, call_problem(), pool, n=2)
    assert [(c.plan, c.plan_id, c.public, c.status) for c in ranked] == [("PLAN A", 0, 1.0, "wrong_answer"),
                                                                         ("PLAN B", 1, 0.0, "wrong_answer")]
    assert [c.logprob for c in ranked] == [-4.0, -1.1]


def problems_for(*specs) -> list[Problem]:
    return [Problem(id=str(i), question="q", difficulty=d, tier=t) for i, (d, t) in enumerate(specs)]


def test_pass_at_k_report_n_at_s_vs_pass_at_k():
    def row(*passed):
        return [Candidate(str(i), -i, passed=p) for i, p in enumerate(passed)]
    candidates = [row(True, False, False, False),    # the top candidate passes
                  row(False, True, False, False),    # the second one
                  row(False, False, False, False)]   # none
    rep = codeplan.pass_at_k_report(problems_for(*[("interview", "")] * 3), candidates, [1, 2, 4, 8])
    assert list(rep) == ["all", "interview"]
    m = rep["all"]
    assert m["problems"] == 3 and m["samples"] == 4 and m["duplicates"] == 0
    assert m["1@4"] == pytest.approx(1 / 3)
    assert m["2@4"] == pytest.approx(2 / 3)
    assert m["4@4"] == pytest.approx(2 / 3)
    # pass@k: each of the two solved problems has 1 correct in 4 samples: pass@1 = 1/4, pass@2 = 1/2
    assert m["pass@1"] == pytest.approx((0.25 + 0.25) / 3)
    assert m["pass@2"] == pytest.approx((0.5 + 0.5) / 3)
    assert m["pass@4"] == pytest.approx(2 / 3)
    assert "8@4" not in m and "pass@8" not in m     # more than the samples drawn
    assert [k for k in m if "@" in k] == ["1@4", "2@4", "4@4", "pass@1", "pass@2", "pass@4"]


def test_duplicates_cannot_fill_the_top_k_but_count_in_pass_at_k():
    wrong = [Candidate("return 0", -0.1), Candidate("return 0", -0.2), Candidate("return 0 ", -0.3)]
    right = Candidate("return x", -2.0, passed=True)
    rep = codeplan.pass_at_k_report(problems_for(("interview", "")), [wrong + [right]], [1, 2])["all"]
    assert rep["duplicates"] == 2
    assert rep["1@4"] == 0.0 and rep["2@4"] == 1.0      # without deduplication the top 2 would be two copies
    assert rep["pass@1"] == pytest.approx(0.25)        # every sample counts in the unbiased estimator


def test_report_rows_come_in_a_fixed_order_with_tiers_last():
    problems = problems_for(("competition", "new-chain"), ("zeta", ""), ("interview", "seen-chain"),
                            ("introductory", "new-chain"), ("alpha", ""), ("competition", ""))
    candidates = [[Candidate("x", 0.0, passed=i % 2 == 0)] for i in range(len(problems))]
    rep = codeplan.pass_at_k_report(problems, candidates, [1])
    assert list(rep) == ["all", "introductory", "interview", "competition", "alpha", "zeta",
                         "tier new-chain", "tier seen-chain"]
    assert rep["competition"]["problems"] == 2 and rep["competition"]["1@1"] == 0.5
    assert rep["tier new-chain"]["problems"] == 2 and rep["tier new-chain"]["pass@1"] == 0.5
    assert rep["all"]["problems"] == 6
    with pytest.raises(ValueError):     # n@S needs one S for every problem
        codeplan.pass_at_k_report(problems[:2], [[Candidate("x", 0.0)], [Candidate("x", 0.0)] * 2], [1])


def test_ranking_free_report_is_pass_at_k_alone_with_each_problems_own_samples():
    """sandbox.py's report: samples without a ranking, any number per problem, anything with .passed."""
    class Verdict:
        def __init__(self, passed):
            self.passed = passed
    samples = [[Verdict(True), Verdict(False)], [Verdict(False), Verdict(True), Verdict(True), Verdict(False)]]
    rep = codeplan.pass_at_k_report(problems_for(("interview", ""), ("competition", "")), samples, [1, 2, 3], rank_by=None)
    assert list(rep) == ["all", "interview", "competition"]
    assert rep["all"] == {"problems": 2, "samples": 2, "pass@1": pytest.approx(0.5),
                          "pass@2": pytest.approx((1 + codeplan.pass_at_k(4, 2, 2)) / 2)}
    assert rep["competition"]["pass@2"] == pytest.approx(5 / 6)     # 1 - C(2,2)/C(4,2): its own 4 samples
    with pytest.raises(ValueError):
        codeplan.pass_at_k_report(problems_for(("interview", "")), [[]], [1], rank_by=None)


def test_pass_at_k_estimator():
    assert codeplan.pass_at_k(10, 0, 1) == 0.0
    assert codeplan.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert codeplan.pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))
    assert codeplan.pass_at_k(4, 3, 2) == 1.0
    with pytest.raises(ValueError):
        codeplan.pass_at_k(3, 1, 4)



# ----------------------------------------------------------------------------- plan accuracy

REFERENCE_PLAN = ("1. Read the list of integers from the input line; the line may be empty.\n"
                  "2. Keep only the numbers greater than 5. Numbers that fail the test are dropped, so the list may become empty.\n"
                  "3. Compute the prefix sums. Position i holds the sum of the first i+1 numbers.\n"
                  "4. Print the numbers separated by spaces, an empty line if there are none.")


@pytest.mark.parametrize("plan, right", [
    (REFERENCE_PLAN, True),
    # wording the benchmark leaves free: numbering, case, spacing, punctuation, the per-step notes
    ("1) read the list of integers from the input line, the line may be empty\n2)  Keep only the numbers greater than 5\n"
     "3) compute the PREFIX sums.\n4) Print the numbers separated by spaces an empty line if there are none!", True),
    ("- Read the list of integers from the input line; the line may be empty.\n- Keep only the numbers greater than 5.\n"
     "- Compute the prefix sums. Anything else said about it.\n- Print the numbers separated by spaces, an empty line if there are none.", True),
    # near misses: another constant, two steps swapped, a step missing, a step added, another operation
    (REFERENCE_PLAN.replace("greater than 5", "greater than 3"), False),
    (REFERENCE_PLAN.replace("2. Keep only the numbers greater than 5.", "2. Compute the prefix sums.", 1)
     .replace("3. Compute the prefix sums.", "3. Keep only the numbers greater than 5.", 1), False),
    ("\n".join(l for l in REFERENCE_PLAN.splitlines() if not l.startswith("3.")), False),
    (REFERENCE_PLAN.replace("4. Print", "4. Reverse the list.\n5. Print"), False),
    (REFERENCE_PLAN.replace("prefix sums", "running maximum"), False),
    ("", False),
])
def test_a_plan_is_right_when_its_steps_are_the_reference_steps(plan, right):
    assert codeplan.plan_is_right(plan, REFERENCE_PLAN) is right


def test_normalising_never_merges_two_different_synthetic_reference_plans():
    plans = [p["reference_plan"] for p in synthetic.generate(0, (200, 20, 21))["test"]]
    for plan in plans:
        assert len(codeplan.plan_steps(plan)) == len(plan.splitlines())
    assert all(codeplan.plan_is_right(a, b) == (a == b) for a in plans for b in plans)


def test_plan_accuracy_counts_distinct_plans_and_problems_per_tier_and_style():
    wrong = REFERENCE_PLAN.replace("greater than 5", "greater than 6")
    problems = [Problem(id="a", question="q", reference_plan=REFERENCE_PLAN, tier="seen-chain", style="goal"),
                Problem(id="b", question="q", reference_plan=REFERENCE_PLAN, tier="new-chain", style="steps"),
                Problem(id="c", question="q", reference_plan=REFERENCE_PLAN, tier="new-chain", style="goal"),
                Problem(id="d", question="q", tier="new-chain")]          # no reference plan: left out
    cand = codeplan.Candidate
    candidates = [[cand("x", 0.0, REFERENCE_PLAN, 0), cand("y", 0.0, REFERENCE_PLAN, 0), cand("z", 0.0, wrong, 1)],  # 1 of 2 plans
                  [cand("x", 0.0, wrong, 0), cand("y", 0.0, wrong, 1)],
                  [cand("x", 0.0, None, None)],                               # direct code: no plan
                  [cand("x", 0.0, REFERENCE_PLAN, 0)]]
    rows = codeplan.plan_accuracy(problems, candidates)
    assert list(rows) == ["all", "style goal", "style steps", "tier new-chain", "tier seen-chain"]
    assert rows["all"] == {"problems": 2, "plans": 4, "right": 0.25, "any_right": 0.5}
    assert rows["tier seen-chain"] == {"problems": 1, "plans": 2, "right": 0.5, "any_right": 1.0}
    assert rows["style steps"] == {"problems": 1, "plans": 2, "right": 0.0, "any_right": 0.0}
