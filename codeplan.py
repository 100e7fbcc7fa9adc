"""The CodePLAN method, top to bottom.

CodePLAN (Sun et al., LREC-COLING 2024) teaches one small encoder-decoder two tasks on a shared
trunk: problem -> code (the code head) and problem -> solution plan (the plan head). The plans
come from a teacher LLM that explains a ground-truth solution ("backward reasoning"). Training
minimises  L = (1 - lambda) * L_code + lambda * L_plan.  At inference, plan sampling draws N
plans, writes code for each, runs the problem's public tests and keeps the best candidate;
the final answer is scored on hidden tests with pass@k.

This file holds the parts that are the method itself: the two task formats, the multi-task
loss, plan sampling (plan_sample_one for one problem, step by step as the paper tells it, and
plan_sample, the same batched and streamed, which sample.py runs), the pass@k report and
estimator. The model, the data and the sandbox live in model.py, data.py and sandbox.py.
"""
from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass

import numpy as np
import torch

from batching import truncate
from problems import Problem, choose_solutions, split_steps

# ----------------------------------------------------------------------------- task formats
# The encoder sees the task marker first, so one trunk can serve both tasks. The code task is
# trained both with and without a teacher plan in its input: plan sampling conditions code on
# a plan at inference, and the authors' release never trains that format (train/test mismatch).

CODE, PLAN, GIVEN_PLAN = "<|code|>", "<|plan|>", "<|given_plan|>"


class Source(str):
    """An encoder input. It is a str (what the encoder reads) that also knows its three parts, so that a
    long input is cut in its statement: the task marker and header (head), and the format line, a
    given plan and ANSWER: (tail) always survive. See encode_source."""
    head: str
    statement: str
    tail: str

    def __new__(cls, head: str, statement: str = "", tail: str = "") -> "Source":
        text = super().__new__(cls, head + statement + tail)
        text.head, text.statement, text.tail = head, statement, tail
        return text


def _problem_parts(problem: Problem) -> tuple[str, str]:
    """(the statement, what follows it: shown tests, starter code and the input format line)."""
    parts = []
    # MBPP shows its first assert to the solver: that is how the function name is known
    shown = [t.input.strip() for t in problem.public_tests if t.kind == "assert" and t.input.strip() not in problem.question]
    if shown:
        parts += ["Your code should pass these tests:\n", "\n".join(shown), "\n"]
    if problem.starter_code.strip():
        parts += ["\n", problem.starter_code.rstrip(), "\n"]
    if problem.fn_name:
        parts.append(f"\nUse Call-Based format, function {problem.fn_name}\n")
    else:
        parts.append("\nUse Standard Input format\n")
    return problem.question.rstrip() + "\n", "".join(parts)


def code_source(problem: Problem, plan: str | None = None) -> Source:
    """Encoder input of the code task; with `plan`, code is written following that plan."""
    statement, rest = _problem_parts(problem)
    if plan:
        rest += GIVEN_PLAN + plan.strip() + "\n"
    return Source(CODE + "QUESTION:\n", statement, rest + "ANSWER:\n")


def plan_source(problem: Problem) -> Source:
    """Encoder input of the plan task."""
    statement, rest = _problem_parts(problem)
    return Source(PLAN + "QUESTION:\n", statement, rest + "Let's think step by step:\n")


def encode_source(tokenizer, source: str, max_len: int) -> tuple[list[int], bool]:
    """(encoder ids of at most max_len, whether anything was cut). A Source too long for max_len loses
    the end of its statement; head and tail are encoded apart then, so training and decoding must both
    come through here. Plain text keeps its first max_len ids. Should even head and tail not fit (a
    plan longer than the budget), the tail keeps its end, where ANSWER: is."""
    ids = tokenizer.encode(source)
    if len(ids) <= max_len:
        return ids, False
    if not isinstance(source, Source):
        return ids[:max_len], True
    head, tail = tokenizer.encode(source.head), tokenizer.encode(source.tail)
    room = max_len - len(head) - len(tail)
    if room >= 0:
        return head + tokenizer.encode(source.statement)[:room] + tail, True
    keep = max(0, max_len - len(head))
    return (head + tail[len(tail) - keep:])[:max_len], True


@dataclass
class Example:
    """One training problem: a solution to write, and the teacher plans that explain it."""
    problem: Problem
    solution: str
    plans: list[str]


def make_examples(problems: list[Problem], plans: dict[str, list[str]], solutions: str = "all") -> list[Example]:
    """One example per (problem, ground-truth solution) as in the authors' release ("all"), or one
    per problem with its shortest solution ("shortest": the one the teacher explains, chosen the
    teacher.s way). A plan that explains one solution (teacher.Plan with a solution_index) goes only
    with that solution: a code target is never paired with the plan of another program. A plan of no
    particular solution (reference plans, forward mode, plain strings) goes with every solution."""
    examples = []
    for p in problems:
        chosen = choose_solutions(p, 1) if solutions == "shortest" else list(enumerate(p.solutions))
        for index, solution in chosen:
            own = [pl for pl in plans.get(p.id, []) if getattr(pl, "solution_index", None) in (None, index)]
            examples.append(Example(p, solution, own))
    return examples


def encode_batch(examples: list[Example], tokenizer, lam: float, plan_in_code: float,
                 rng: random.Random, max_source: int, max_target: int, counts: dict) -> dict:
    """Token id pairs for both tasks of one batch. With lam == 0 no plan is ever used: that is
    plain fine-tuning. `counts` accumulates truncations so that they are reported, not hidden, and
    the code inputs that hold a plan ("code_with_plan"), so that direct and plan-guided code are counted apart."""
    def pair(src: str, tgt: str, task: str) -> tuple[list[int], list[int]]:
        s, cut_source = encode_source(tokenizer, src, max_source)
        # cut after EOS is appended, as CodeRL does: a cut target ends without EOS, so the model never
        # learns to stop in the middle of a program
        t, cut_target = truncate(tokenizer.encode(tgt) + [tokenizer.eos_id], max_target)
        for part, cut in (("source", cut_source), ("target", cut_target)):
            if cut:
                counts[f"{task}_{part}_truncated"] = counts.get(f"{task}_{part}_truncated", 0) + 1
        return s, t

    batch = {"code": [], "plan": []}
    for ex in examples:
        plan = rng.choice(ex.plans) if ex.plans else None
        with_plan = lam > 0 and plan is not None and rng.random() < plan_in_code
        if lam < 1:
            batch["code"].append(pair(code_source(ex.problem, plan if with_plan else None), ex.solution, "code"))
            if with_plan:
                counts["code_with_plan"] = counts.get("code_with_plan", 0) + 1
        if lam > 0 and plan is not None:
            batch["plan"].append(pair(plan_source(ex.problem), plan, "plan"))
    return batch


def training_texts(examples: list[Example]) -> list[str]:
    """Every text encode_batch can encode for these examples: the code input with no plan and with
    each plan, the solution, the plan input, and each plan; for each input also its parts, which
    encode_source encodes apart when the input is too long and its statement is cut."""
    texts = []
    for ex in examples:
        sources = [code_source(ex.problem), plan_source(ex.problem)]
        sources += [code_source(ex.problem, plan) for plan in ex.plans]
        texts += [ex.solution, *ex.plans]
        texts += [part for src in sources for part in (src, src.head, src.statement, src.tail)]
    return texts


def longest_targets(examples: list[Example], tokenizer, lam: float) -> dict[str, int]:
    """The longest target of each head in tokens, EOS included, before any cut: {"code": ...} and, when
    lam > 0 puts plans in training, "plan". decoding_cap turns them into decoding limits."""
    longest = {"code": max(len(tokenizer.encode(ex.solution)) + 1 for ex in examples)}
    plans = [plan for ex in examples for plan in ex.plans] if lam > 0 else []
    if plans:
        longest["plan"] = max(len(tokenizer.encode(plan)) + 1 for plan in plans)
    return longest


def decoding_cap(longest_target: int | None, max_target_len: int) -> int:
    """The tokens a head may decode: its longest training target plus a margin, at most max_target_len;
    max_target_len when the longest target is not known. A row that loops stops here, not at max_target_len."""
    if longest_target is None:
        return max_target_len
    # a quarter plus 8 tokens: a right program longer than every train target by more is rare, and the room costs little
    return min(max_target_len, math.ceil(longest_target * 1.25) + 8)


# ----------------------------------------------------------------------------- the multi-task loss
# The authors' release alternates the two tasks per micro-batch (equal weight, no lambda). Here
# both tasks are computed on every batch and mixed by an explicit lambda, so that the weight is
# an argument one can sweep and lambda = 0 is exactly the plain fine-tuning baseline.

class MultiTaskLoss(torch.nn.Module):
    """L = (1 - lam) * L_code + lam * L_plan, each a token-mean cross-entropy of its own head.

    A module, so that DDP sees both tasks in one forward pass. `batch` maps "code" / "plan" to
    collated tensors (or None when the task has no example). lam == 0 runs no plan forward pass
    and leaves the plan head untouched; lam == 1 runs no code forward pass.
    """

    def __init__(self, model: torch.nn.Module, lam: float):
        super().__init__()
        self.model, self.lam = model, lam

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, parts = None, {}
        for task, weight in (("code", 1.0 - self.lam), ("plan", self.lam)):
            if weight == 0 or batch.get(task) is None:
                continue
            t = batch[task]
            _, loss = self.model(t["input_ids"], t["attention_mask"], labels=t["labels"], head=task)
            parts[task] = loss.detach()
            total = weight * loss if total is None else total + weight * loss
        if total is None:
            raise ValueError("MultiTaskLoss: the batch holds no example of a task with non-zero weight")
        return total, parts


# ----------------------------------------------------------------------------- generation

def code_prefix(problem: Problem) -> str:
    """The text a program must begin with. HumanEval is scored as its prompt + the model's completion,
    so there the prompt is forced as the start of the decoded program; elsewhere, nothing."""
    return problem.starter_code if problem.source == "humaneval" else ""


def pad_right(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Id lists -> (ids [rows, longest] padded on the right with pad_id, mask: 1 where a row has a token)."""
    ids = torch.full((len(rows), max(map(len, rows))), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        ids[r, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[r, :len(row)] = 1
    return ids, mask


@torch.no_grad()
def generate_texts(model, tokenizer, sources: list[str], head: str, n: int = 1, temperature: float = 0.0,
                   top_p: float = 1.0, max_new_tokens: int = 256, max_source: int = 512,
                   batch_size: int = 32, generator: torch.Generator | None = None,
                   prefixes: list[str] | None = None) -> list[list[tuple[str, float, int]]]:
    """For each source, n decoded texts with their log-probabilities and token counts, batched over
    sources. With `prefixes`, each text begins with its prefix (forced, not scored) and continues from there."""
    device = next(model.parameters()).device
    results: list[list[tuple[str, float, int]]] = []
    per_batch = max(1, batch_size // max(1, n))
    for i in range(0, len(sources), per_batch):
        input_ids, attention_mask = pad_right([encode_source(tokenizer, s, max_source)[0]
                                               for s in sources[i:i + per_batch]], tokenizer.pad_id)
        starts = (prefixes or [""] * len(sources))[i:i + per_batch]
        prefix = pad_right([tokenizer.encode(p) for p in starts], tokenizer.pad_id)[0].to(device) if any(starts) else None
        tokens, logprobs = model.generate(input_ids.to(device), attention_mask.to(device), head=head,
                                          max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                          num_return_sequences=n, generator=generator, prefix=prefix)
        for b in range(len(starts)):
            rows = range(b * n, (b + 1) * n)
            # the log-probability counts the EOS token too, unless the text was cut at max_new_tokens
            results.append([(starts[b] + tokenizer.decode(tokens[r]), float(logprobs[r]),
                             min(len(tokens[r]) + 1, max_new_tokens)) for r in rows])
    return results


# ----------------------------------------------------------------------------- plan sampling
# Per problem: N plans from the plan head, M programs per plan from the code head conditioned on
# problem + plan, the public tests run on each program, and the candidates ranked by public-test
# pass rate, then by log-probability. Hidden tests run on every candidate too, but only to score:
# they never influence the ranking.

@dataclass
class Candidate:
    code: str
    logprob: float                 # log p(plan) + log p(code | plan) under the model
    plan: str | None = None
    plan_id: int | None = None
    tokens: int = 0                # generated tokens behind logprob (plan and code)
    public: float | None = None    # share of public tests passed; None when the problem has none
    passed: bool = False           # all hidden tests passed
    status: str = ""               # the hidden-test verdict; "" while the candidate has not been run
    tests: list[str] | None = None
    time: float = 0.0              # seconds the hidden tests took


RANKINGS = ("logprob", "mean-logprob")


def program_key(code: str) -> str:
    """Programs that differ only in trailing whitespace behave the same: they are one program."""
    return "\n".join(line.rstrip() for line in code.strip().splitlines())


def rank_candidates(candidates: list[Candidate], by: str = "logprob") -> list[Candidate]:
    """The distinct programs, best first: by public-test pass rate, then by log-probability (the
    sum, or the mean per generated token with by="mean-logprob", which does not favour short
    programs). Identical programs are ranked once, so that copies of one program cannot fill the
    top k; the best-scored copy stands for the program."""
    if by not in RANKINGS:
        raise ValueError(f"rank_candidates: by must be one of {RANKINGS}, got {by!r}")

    def key(c: Candidate) -> tuple[float, float]:
        score = c.logprob / max(1, c.tokens) if by == "mean-logprob" else c.logprob
        return -(c.public or 0.0), -score

    distinct: dict[str, Candidate] = {}
    for c in sorted(candidates, key=key):
        distinct.setdefault(program_key(c.code), c)
    return list(distinct.values())


def random_stream(device: torch.device, seed: int, key: int = 0) -> torch.Generator:
    """The random stream that decodes batch `key` of a run with `seed`."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + key)


def plan_sample_one(model, tokenizer, problem: Problem, pool, n: int = 16, samples_per_plan: int = 1,
                    temperature: float = 0.6, top_p: float = 0.95, max_plan_tokens: int = 256,
                    max_code_tokens: int = 256, max_source: int = 512, rank_by: str = "logprob", seed: int = 0,
                    batch_size: int = 64) -> list[Candidate]:
    """Plan sampling for one problem, as the paper describes it: the distinct programs, best first.

    This is the method; `plan_sample` below is the same method batched over problems, streamed and
    resumable (what sample.py runs). For the batch (0, [problem]) and the same settings both draw the
    same plans and programs from the same random stream, and so rank alike. `pool` is a sandbox.Pool.
    Left to plan_sample: code without a plan (n = 0), given plans and greedy plans."""
    generator = random_stream(next(model.parameters()).device, seed)
    # 1. N plans from the plan head
    plans = generate_texts(model, tokenizer, [plan_source(problem)], "plan", n=n, temperature=temperature,
                           top_p=top_p, max_new_tokens=max_plan_tokens, max_source=max_source,
                           batch_size=batch_size, generator=generator)[0]
    # 2. M programs per plan from the code head, which reads the problem and the plan; one program per
    #    plan is decoded greedily, so that the plans alone make the candidates differ
    programs = generate_texts(model, tokenizer, [code_source(problem, plan) for plan, _, _ in plans], "code",
                              n=samples_per_plan, temperature=0.0 if samples_per_plan == 1 else temperature,
                              top_p=top_p, max_new_tokens=max_code_tokens, max_source=max_source,
                              batch_size=batch_size, generator=generator, prefixes=[code_prefix(problem)] * len(plans))
    candidates = [Candidate(code=code, logprob=plan_lp + code_lp, plan=plan, plan_id=plan_id,
                            tokens=plan_tokens + code_tokens)
                  for plan_id, ((plan, plan_lp, plan_tokens), outs) in enumerate(zip(plans, programs))
                  for code, code_lp, code_tokens in outs]
    # 3. every program runs the public tests (and the hidden ones, which only score it)
    record_tests(candidates, submit_tests(pool, problem, candidates))
    # 4. ranked by public-test pass rate, then by the model's log-probability
    return rank_candidates(candidates, rank_by)


# The batched executor: the same steps for many problems at once, each batch with its own random
# stream, tests running in the sandbox while the next batch decodes.

def generate_candidates(model, tokenizer, problems: list[Problem], n: int, samples_per_plan: int, greedy_plan: bool,
                        given_plans: dict[str, list[str]] | None, temperature: float, top_p: float,
                        max_plan_tokens: int, max_code_tokens: int, max_source: int, batch_size: int,
                        generator: torch.Generator | None) -> list[list[Candidate]]:
    """The unranked, unscored candidates of each problem, decoded in batches over the problems.
    n = 0 writes code with no plan (the baseline); `given_plans` conditions on those plans instead
    of sampling (e.g. the teacher's: an upper bound). Programs are decoded greedily when
    samples_per_plan is 1 (diversity then comes from the plans), and sampled otherwise."""
    if given_plans is not None:
        plans = [[(pl, 0.0, 0) for pl in given_plans.get(p.id, [])] for p in problems]
    elif n == 0:
        plans = [[(None, 0.0, 0)] for _ in problems]
    else:
        plans = generate_texts(model, tokenizer, [plan_source(p) for p in problems], "plan", n=n,
                               temperature=0.0 if greedy_plan else temperature, top_p=top_p,
                               max_new_tokens=max_plan_tokens, max_source=max_source, batch_size=batch_size,
                               generator=generator)
    flat = [(i, j, plan) for i, row in enumerate(plans) for j, plan in enumerate(row)]
    codes = generate_texts(model, tokenizer, [code_source(problems[i], plan) for i, _, (plan, _, _) in flat], "code",
                           n=samples_per_plan, temperature=0.0 if samples_per_plan == 1 else temperature, top_p=top_p,
                           max_new_tokens=max_code_tokens, max_source=max_source, batch_size=batch_size,
                           generator=generator, prefixes=[code_prefix(problems[i]) for i, _, _ in flat])
    candidates: list[list[Candidate]] = [[] for _ in problems]
    for (i, j, (plan, plan_lp, plan_tokens)), outs in zip(flat, codes):
        for code, code_lp, code_tokens in outs:
            candidates[i].append(Candidate(code=code, logprob=plan_lp + code_lp, plan=plan,
                                           plan_id=None if plan is None else j, tokens=plan_tokens + code_tokens))
    return candidates


def submit_tests(pool, problem: Problem, candidates: list[Candidate]) -> list:
    """Queue every candidate's public and hidden tests on a sandbox.Pool; `record_tests` reads the results.
    A program that several candidates wrote runs once: a trained model repeats itself (about half of the
    main command's samples, results/LOG.md), and running those again only repeats the verdicts."""
    runs: dict[str, tuple] = {}
    for c in candidates:
        if c.code not in runs:
            runs[c.code] = (pool.submit(problem, c.code, "public") if problem.public_tests else None,
                            pool.submit(problem, c.code, "hidden"))
    return [runs[c.code] for c in candidates]


def record_tests(candidates: list[Candidate], futures: list) -> None:
    """Fill in each candidate's public pass rate and hidden verdict (waits for them)."""
    for cand, (public, hidden) in zip(candidates, futures):
        if public is not None:
            statuses = public.result().tests
            cand.public = sum(s == "passed" for s in statuses) / max(1, len(statuses))
        verdict = hidden.result()
        cand.passed, cand.status, cand.tests, cand.time = verdict.passed, verdict.status, verdict.tests, verdict.time


def plan_sample(model, tokenizer, batches: list[tuple[int, list[Problem]]], pool, n: int = 16,
                samples_per_plan: int = 1, greedy_plan: bool = False,
                given_plans: dict[str, list[str]] | None = None, temperature: float = 0.6, top_p: float = 0.95,
                max_plan_tokens: int = 256, max_code_tokens: int = 256, max_source: int = 512, batch_size: int = 64,
                seed: int = 0, skip: frozenset[str] = frozenset(), timing: dict | None = None):
    """Yields (problem, candidates) for every problem of `batches`, each as soon as its tests have
    run (so not in input order); rank them with rank_candidates. `batches` are (key, problems)
    pairs decoded together, each with its own random stream seeded from (seed, key): a problem's
    samples depend only on its batch, not on which other batches run in this process (shards,
    reruns). Problems whose id is in `skip` are decoded with their batch (the others' samples stay
    the same) but neither run nor yielded. `pool` is a sandbox.Pool, so execution overlaps
    generation; with pool=None the candidates are yielded unrun right after generation."""
    timing = {} if timing is None else timing
    timing.setdefault("generate_s", 0.0)
    timing.setdefault("execute_wait_s", 0.0)
    device = next(model.parameters()).device
    running: list[tuple[Problem, list[Candidate], list]] = []
    for key, problems in batches:
        t0 = time.time()
        generator = random_stream(device, seed, key)
        candidates = generate_candidates(model, tokenizer, problems, n, samples_per_plan, greedy_plan, given_plans,
                                         temperature, top_p, max_plan_tokens, max_code_tokens, max_source,
                                         batch_size, generator)
        timing["generate_s"] += time.time() - t0
        for problem, cands in zip(problems, candidates):
            if problem.id in skip:
                continue
            if pool is None:
                yield problem, cands
            else:
                running.append((problem, cands, submit_tests(pool, problem, cands)))
        still_running, finished = [], []
        for r in running:
            done = all(f.done() for pair in r[2] for f in pair if f is not None)
            (finished if done else still_running).append(r)
        running = still_running
        for problem, cands, futures in finished:
            record_tests(cands, futures)
            yield problem, cands
    t0 = time.time()
    for problem, cands, futures in running:
        record_tests(cands, futures)
        yield problem, cands
    timing["execute_wait_s"] += time.time() - t0


# ----------------------------------------------------------------------------- the report
# One aggregation for every script. Two kinds of number, named as in the literature:
#   n@S    (AlphaCode): a problem counts as solved when one of the n best-ranked distinct programs
#          out of S samples passes; 1@S is the method's answer (the top candidate).
#   pass@k (Chen et al.): the unbiased estimator over all S samples, which ignores the ranking.

DIFFICULTIES = ("introductory", "interview", "competition")   # rows in this order, then any others


def report_groups(problems: list[Problem]) -> dict[str, list[int]]:
    """Problem indices of each report row: "all", each difficulty, then each tier ("tier NAME")."""
    groups: dict[str, list[int]] = {"all": list(range(len(problems)))}
    by_difficulty: dict[str, list[int]] = {}
    by_tier: dict[str, list[int]] = {}
    for i, p in enumerate(problems):
        by_difficulty.setdefault(p.difficulty, []).append(i)
        if p.tier:
            by_tier.setdefault(p.tier, []).append(i)
    order = sorted(by_difficulty, key=lambda d: (DIFFICULTIES.index(d) if d in DIFFICULTIES else len(DIFFICULTIES), d))
    groups.update({d: by_difficulty[d] for d in order})
    groups.update({f"tier {t}": by_tier[t] for t in sorted(by_tier)})
    return groups


def pass_at_k_report(problems: list[Problem], candidates: list[list[Candidate]], ks: list[int],
                     rank_by: str | None = "logprob") -> dict[str, dict[str, float]]:
    """{row: {"problems", "samples", "duplicates", "n@S" for n in ks, "pass@k" for k in ks}} for the
    rows of report_groups. candidates[i] holds every sample of problems[i], copies included: the
    n@S ranking counts identical programs once (rank_candidates), pass@k counts every sample.
    Every problem must have the same number S of samples; ks above S are left out.

    rank_by=None is for samples without a ranking (sandbox.py scores any samples file): rows hold
    only "problems", "samples" (the fewest of any problem) and pass@k, each problem estimated from its
    own samples, which need then only have .passed (a sandbox.Verdict will do), and may differ in number."""
    if len(problems) != len(candidates):
        raise ValueError(f"pass_at_k_report: {len(problems)} problems but {len(candidates)} candidate lists")
    sizes = {len(c) for c in candidates}
    if 0 in sizes or (rank_by is not None and len(sizes) > 1):
        raise ValueError(f"pass_at_k_report: every problem needs the same number of samples (> 0), got {sorted(sizes)}")
    samples = min(sizes) if sizes else 0
    ranked = [rank_candidates(c, rank_by) for c in candidates] if rank_by is not None else None
    shown = [k for k in ks if k <= samples]
    report = {}
    for name, idx in report_groups(problems).items():
        row = {"problems": len(idx), "samples": samples}
        if ranked is not None:
            row["duplicates"] = sum(len(candidates[i]) - len(ranked[i]) for i in idx)
            for k in shown:
                row[f"{k}@{samples}"] = sum(any(c.passed for c in ranked[i][:k]) for i in idx) / len(idx)
        for k in shown:
            row[f"pass@{k}"] = sum(pass_at_k(len(candidates[i]), sum(c.passed for c in candidates[i]), k)
                                   for i in idx) / len(idx)
        report[name] = row
    return report


# ----------------------------------------------------------------------------- plan accuracy
# The quantity that bounds the method: code written from a wrong plan is right only by luck.

def plan_steps(plan: str) -> list[str]:
    """A plan's steps with the wording a benchmark leaves free taken out: numbering and bullets,
    case, whitespace and punctuation, and everything after a step's first sentence (where the
    synthetic benchmark's reference plans put a fixed note on the step's edge cases)."""
    steps = []
    for lines in split_steps(plan)[0]:
        first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(lines).strip(), maxsplit=1)[0]
        words = re.sub(r"[^0-9a-z]+", " ", first.lower()).split()
        if words:
            steps.append(" ".join(words))
    return steps


def plan_is_right(plan: str, reference: str) -> bool:
    """The plan names the reference plan's steps, in its order, and no others."""
    return plan_steps(plan) == plan_steps(reference)


def plan_accuracy(problems: list[Problem], candidates: list[list[Candidate]]) -> dict[str, dict[str, float]]:
    """{row: {"problems", "plans", "right", "any_right"}} for "all", each tier and each style of the
    problems that have a reference plan: "right" is the share of distinct sampled plans (by plan_id)
    that equal the reference plan's steps, "any_right" the share of problems where at least one does."""
    rows: dict[str, list[tuple[int, int]]] = {}
    for p, cands in zip(problems, candidates):
        plans = {c.plan_id: c.plan for c in cands if c.plan is not None}
        if not p.reference_plan or not plans:
            continue
        right = sum(plan_is_right(plan, p.reference_plan) for plan in plans.values())
        for row in ("all", *(f"{key} {value}" for key, value in (("tier", p.tier), ("style", p.style)) if value)):
            rows.setdefault(row, []).append((len(plans), right))
    return {row: {"problems": len(counts), "plans": sum(n for n, _ in counts),
                  "right": sum(r for _, r in counts) / sum(n for n, _ in counts),
                  "any_right": sum(r > 0 for _, r in counts) / len(counts)}
            for row, counts in sorted(rows.items(), key=lambda item: (item[0] != "all", item[0]))}


# ----------------------------------------------------------------------------- pass@k

def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021): 1 - C(n-c, k) / C(n, k), in the stable product form.

    n samples were drawn, c of them are correct. Defined only for 1 <= k <= n.
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}")
    if c == 0:
        return 0.0
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))
