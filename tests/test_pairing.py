"""Real-data truncation and plan pairing (issue 15, item 2): a cut target has no EOS, a cut source keeps
its task marker, plan and ANSWER: and loses statement text instead, and a plan stays with the solution it
explains."""
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import codeplan  # noqa: E402
import teacher  # noqa: E402
from problems import Problem, Test, choose_solutions  # noqa: E402


class CharTokenizer:
    """One id per character (ASCII round trip)."""
    pad_id, eos_id = 0, 1

    def encode(self, text: str) -> list[int]:
        return [3 + ord(c) for c in text]

    def decode(self, ids) -> str:
        return "".join(chr(i - 3) for i in ids if i > 2)


def long_problem(pid="p", words=400, solutions=("print(sum(map(int, input().split())))\n",)) -> Problem:
    statement = "Read two numbers and print their sum. " + " ".join(f"word{i}" for i in range(words)) + " THE-END"
    return Problem(id=pid, question=statement, solutions=list(solutions), public_tests=[Test("stdio", "1 2\n", "3\n")],
                   hidden_tests=[Test("stdio", "2 2\n", "4\n")], source="apps", difficulty="interview")


def encode(examples, lam, plan_in_code, max_source, max_target, seed=0):
    counts = {}
    batch = codeplan.encode_batch(examples, CharTokenizer(), lam, plan_in_code, random.Random(seed),
                                  max_source, max_target, counts)
    return batch, counts


def test_a_cut_target_carries_no_eos_and_a_whole_one_keeps_it():
    tok = CharTokenizer()
    solution = "x = 1\n" * 20                           # 120 characters
    ex = codeplan.Example(long_problem(words=1), solution, ["1. Read.\n2. Print."])
    batch, counts = encode([ex], lam=0.5, plan_in_code=0.0, max_source=10_000, max_target=50)
    (_, code_target), = batch["code"]
    assert len(code_target) == 50 and tok.eos_id not in code_target     # cut: the model must not learn to stop here
    assert tok.decode(code_target) == solution[:50]
    assert counts.get("code_target_truncated") == 1
    (_, plan_target), = batch["plan"]
    assert plan_target[-1] == tok.eos_id and "plan_target_truncated" not in counts
    # a target that fits exactly with its EOS is not cut
    batch, counts = encode([ex], lam=0.0, plan_in_code=0.0, max_source=10_000, max_target=len(solution) + 1)
    assert batch["code"][0][1][-1] == tok.eos_id and counts == {}


def test_a_cut_source_keeps_marker_plan_and_answer_and_cuts_the_statement():
    tok = CharTokenizer()
    plan = "1. Read the two numbers.\n2. Print their sum."
    ex = codeplan.Example(long_problem(), "print(3)\n", [plan])
    max_source = 300
    batch, counts = encode([ex], lam=0.5, plan_in_code=1.0, max_source=max_source, max_target=10_000)
    source = tok.decode(batch["code"][0][0])
    assert len(batch["code"][0][0]) == max_source and counts["code_source_truncated"] == 1
    assert source.startswith(codeplan.CODE + "QUESTION:\nRead two numbers")
    assert source.endswith(codeplan.GIVEN_PLAN + plan + "\nANSWER:\n")
    assert "Use Standard Input format" in source
    assert "THE-END" not in source                             # the statement lost its end
    plan_source = tok.decode(batch["plan"][0][0])
    assert plan_source.startswith(codeplan.PLAN) and plan_source.endswith("Let's think step by step:\n")
    assert len(batch["plan"][0][0]) == max_source


def test_inference_cuts_sources_the_way_training_does():
    """Plan-guided decoding on a long statement still sees the plan: generate_texts encodes like encode_batch."""
    tok = CharTokenizer()
    plan = "1. Read.\n2. Print."
    source = codeplan.code_source(long_problem(), plan)
    ids, cut = codeplan.encode_source(tok, source, 200)
    assert cut and len(ids) == 200 and tok.decode(ids).endswith(plan + "\nANSWER:\n")
    seen = {}

    class Recorder:
        def parameters(self):
            import torch
            yield torch.zeros(1)

        def generate(self, input_ids, attention_mask, **_):
            import torch
            seen["ids"] = input_ids[0][attention_mask[0].bool()].tolist()
            return [[5]], torch.zeros(1)
    codeplan.generate_texts(Recorder(), tok, [source], "code", max_source=200)
    assert seen["ids"] == ids


def write_plans(path, rows):
    path.write_text("".join(json.dumps({"mode": "backward", "status": "ok", **r}) + "\n" for r in rows))


def test_plans_stay_with_the_solution_they_explain(tmp_path):
    solutions = ["a = int(input())\nprint(a * 2)\n", "print(int(input()) * 2)\n", "print(2 * int(input()))\n"]
    problem = long_problem("t", words=1, solutions=solutions)
    path = tmp_path / "plans.jsonl"
    write_plans(path, [{"task_id": "t", "plan": "PLAN-FOR-0", "solution_index": 0},
                       {"task_id": "t", "plan": "PLAN-FOR-2", "solution_index": 2}])
    plans = teacher.read_plans(str(path))
    assert plans == {"t": ["PLAN-FOR-0", "PLAN-FOR-2"]}
    assert [p.solution_index for p in plans["t"]] == [0, 2]
    examples = codeplan.make_examples([problem], plans, "all")
    assert [(e.solution, e.plans) for e in examples] == [(solutions[0], ["PLAN-FOR-0"]), (solutions[1], []),
                                                         (solutions[2], ["PLAN-FOR-2"])]
    tok = CharTokenizer()
    for seed in range(20):
        batch, _ = encode(examples, lam=0.5, plan_in_code=1.0, max_source=10_000, max_target=10_000, seed=seed)
        for source, target in batch["code"]:
            text, code = tok.decode(source), tok.decode(target)
            for i in (0, 2):
                if f"PLAN-FOR-{i}" in text:
                    assert code == solutions[i]
        assert sorted(tok.decode(t) for _, t in batch["plan"]) == ["PLAN-FOR-0", "PLAN-FOR-2"]


def test_shortest_picks_the_solution_the_teacher_explained(tmp_path):
    # the teacher explains the shortest solution after stripping; an empty solution is never a target
    solutions = ["", "print(1)      \n\n\n\n\n", "print(11)\n"]
    problem = long_problem("s", words=1, solutions=solutions)
    (index, _), = choose_solutions(problem, 1)
    path = tmp_path / "plans.jsonl"
    write_plans(path, [{"task_id": "s", "plan": "THE-PLAN", "solution_index": index}])
    (example,) = codeplan.make_examples([problem], teacher.read_plans(str(path)), "shortest")
    assert example.solution == solutions[index] and example.plans == ["THE-PLAN"]


def test_plans_of_no_particular_solution_go_with_every_solution(tmp_path):
    problem = long_problem("r", words=1, solutions=["print(1)\n", "print(1 )\n"])
    path = tmp_path / "plans.jsonl"
    teacher.write_reference_plans([Problem(id="r", question="q", reference_plan="1. Print one.")], str(path))
    examples = codeplan.make_examples([problem], teacher.read_plans(str(path)), "all")
    assert [e.plans for e in examples] == [["1. Print one."], ["1. Print one."]]
