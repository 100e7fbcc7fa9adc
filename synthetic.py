"""The synthetic benchmark: small programming problems composed from primitive steps.

Every problem chains primitive operations on an integer list or a line of text ("keep the even
numbers", "square each value", "add up the values", ...): 1 to 3 of 24 core primitives (at most
two constants each) in the default mix, 1 to 6 of all 47 in the "full" mix (MIXES; `--mix`). A primitive is defined once, as one row of PRIMITIVES: its
types, parameter choices, the Python function that computes ground truth, code templates in two
styles, statement phrasings and a plan step. From one chain the generator writes the statement,
two reference solutions, a reference plan and the tests. Expected outputs come from the
primitives' functions, never from running the solutions; tests/test_synthetic.py checks that
the solutions agree. This module imports nothing from the project: it returns problem records in
the layout of problems.Problem.to_dict(), and data.py loads and caches them.

    python synthetic.py --split test --show 5     # read a few problems
    python synthetic.py --check                   # is every problem determined by what a solver sees?
    python synthetic.py --mix full --out FILE     # the harder mix, for train.py --data synthetic:FILE

Choices (documented here because other parts rely on them):
- Every problem is determined by what a solver sees: every chain of primitives the generator may
  draw that fits the statement and passes the public examples gives the same hidden outputs.
  `--check` verifies it from the records alone (determined); the generator reaches it by choosing
  a goal problem's worked example so that it identifies every step (steps_identified).
- Two statement styles, tagged on each problem (`style`). "goal" (GOAL_SHARE of every
  difficulty): the task names a quantity, and a worked example shows its value after each step;
  the statement never says which operation a step is. "steps": the statement lists the steps
  (nested, sequential or mixed wording, so not always in execution order; nested phrases are
  built only from phrases that read one way). The reference plan is what a teacher that read the
  solution writes: the steps, numbered in execution order, one line each. Plan lines map one to
  one onto the code's step lines, constants verbatim: with a plan, writing the code is
  translation. For a goal problem the plan carries what the solver must otherwise infer from the
  worked example; that is what lets the benchmark show whether plans help.
- Problem.solutions[0] is the compact style (comprehensions and built-ins), solutions[1] the
  explicit-loop style. Both keep the whole state in one variable `a`, one statement group per
  step, so code is short and regular for a small model.
- Difficulty is the step count: introductory 1-2, interview 3-4, competition 5-6; the mix gives
  each step count the same share in every split and tier (the new-chain and held-pair tiers have
  2 steps where the mix says 1: a one-step chain has no pair, and every one occurs in train).
  A mix also names its primitives: a solver of the mix knows those, and `--check` assumes no more.
- Half of each split is stdin/stdout, half call-based (fn_name from a small pool, starter_code
  its def line), shuffled apart from the step count. 1 or 2 public examples, in the statement.
- Primitives with the same code are one class (code_class): hold-out and chain identity use
  classes, so no aliases ("reverse" a list, "reverse_chars" a text) leak across splits.
- Valid and test have the same tiers (`tier`; DEFAULT_SIZES: 300 valid and 500 test problems
  each): "seen-chain", new instances of chains that occur in train; "new-chain", chains from a
  seeded pool (RESERVED_FRACTION of the chains of 2 or more steps) that train never draws, built
  only from class pairs adjacent in train; "held-pair", chains with one of a seeded
  HOLDOUT_FRACTION of class pairs that never occur in train. No chain occurs in both valid and
  test; within one, a chain may recur (other inputs, other wording). Valid is for choosing, test
  for the final report.
- A chain is resampled when dropping any one step leaves all its test outputs unchanged, when
  its outputs are nearly constant, or when they are too long. No question text occurs twice.
- Hidden tests: 4 edge cases (empty input, a single element, duplicates, negatives or mixed
  case) and 8 random inputs, none equal to a public example. Values lie in -20..20, lists
  hold 0 to 8 numbers, texts 0 to 6 words.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

SPLITS = ("train", "valid", "test")
TIERS = ("seen-chain", "new-chain", "held-pair")
DEFAULT_SIZES = (20000, 900, 1500)   # valid: 300 problems per tier, test: 500
# splits_digest(generate()): tests/test_synthetic.py checks it, so the default benchmark cannot change unnoticed
DEFAULT_DIGEST = "e7928dd613749ad1ff8282512dd055b7d39ccc791f580c9c1c0e9baf8ea06a12"
DIFFICULTY_STEPS = (("introductory", (1, 2)), ("interview", (3, 4)), ("competition", (5, 6)))
DEFAULT_MIX = "short"   # MIXES, after the primitives
HOLDOUT_FRACTION = 0.15
RESERVED_FRACTION = 0.3  # of the chains of 2 or more steps: never in train, the pool of the new-chain tiers
GOAL_SHARE = 0.6        # of every difficulty in every split: statements that state the goal, not the steps
FUNCTION_NAMES = ("solve", "compute", "process", "transform", "answer")
VOWELS = "aeiouAEIOU"
WORDS = ("apple", "tree", "Moon", "sky", "code", "plan", "Data", "river", "blue", "cat", "dog", "Sun",
         "idea", "go", "a", "I", "open", "green", "Big", "house", "rain", "Tom", "map", "zoo", "eye",
         "Ocean", "level", "up", "Paris", "note")
N_EDGE_TESTS, N_RANDOM_TESTS = 4, 8
MAX_NESTED = 3          # longest chain worded as one nested noun phrase
MAX_OUTPUT_CHARS = 60   # keeps targets short: chains whose outputs blow up are resampled
MIN_DISTINCT_OUTPUTS = 4  # a chain that maps most inputs to the same answer teaches nothing
TRACE_TRIES = 40        # inputs tried for a goal problem's worked example before its chain is redrawn


class SyntheticError(ValueError):
    """Bad arguments to the generator (sizes it cannot fill, negative counts)."""


@dataclass(frozen=True)
class Primitive:
    name: str
    takes: str                       # "list" (of ints) | "str" | "int"
    gives: str
    params: tuple                    # the choices for {k}; () when the step has no parameter
    fn: Callable[[Any, Any], Any]    # (value, k) -> value; ground truth for every test
    short: str                       # compact-style code: reads and rebinds `a`
    loop: str                        # explicit-loop-style code: same contract
    nouns: tuple[str, ...]           # noun phrases around {x}, for nested statements
    verbs: tuple[str, ...]           # imperative phrases, for sequential statements
    plan: str                        # the reference plan's line for this step


def keep(cond: str) -> dict:
    """Code templates of a filter on the list `a`, given the condition on element `x`."""
    return dict(short=f"a = [x for x in a if {cond}]",
                loop=f"b = []\nfor x in a:\n    if {cond}:\n        b.append(x)\na = b")


def each(expr: str) -> dict:
    """Code templates of an element-wise map on the list `a`."""
    return dict(short=f"a = [{expr} for x in a]", loop=f"b = []\nfor x in a:\n    b.append({expr})\na = b")


def words_to(expr: str) -> dict:
    """Code templates that turn the text `a` into a list with one value per word `w`."""
    return dict(short=f"a = [{expr} for w in a.split()]", loop=f"b = []\nfor w in a.split():\n    b.append({expr})\na = b")


def prefix_max(a: list[int]) -> list[int]:
    out: list[int] = []
    for x in a:
        out.append(x if not out or x > out[-1] else out[-1])
    return out


def product(a: list[int]) -> int:
    p = 1
    for x in a:
        p *= x
    return p


L, S, I = "list", "str", "int"
P = Primitive
PRIMITIVES: list[Primitive] = [
    # ---- list -> list: filters
    P("keep_gt", L, L, (1, 2, 3, 5), lambda a, k: [x for x in a if x > k], **keep("x > {k}"),
      nouns=("the values of {x} greater than {k}", "the numbers in {x} that are larger than {k}", "{x} with only the values above {k} kept"),
      verbs=("keep only the values greater than {k}", "remove every value that is not above {k}"),
      plan="Keep only the numbers greater than {k}."),
    P("keep_lt", L, L, (3, 5, 10), lambda a, k: [x for x in a if x < k], **keep("x < {k}"),
      nouns=("the values of {x} smaller than {k}", "the numbers in {x} that are less than {k}", "{x} with only the values below {k} kept"),
      verbs=("keep only the values less than {k}", "remove every value that is {k} or more"),
      plan="Keep only the numbers smaller than {k}."),
    P("keep_div", L, L, (3, 4, 5), lambda a, k: [x for x in a if x % k == 0], **keep("x % {k} == 0"),
      nouns=("the multiples of {k} in {x}", "the values of {x} divisible by {k}", "{x} with only the multiples of {k} kept"),
      verbs=("keep only the values divisible by {k}", "remove every value that is not a multiple of {k}"),
      plan="Keep only the numbers divisible by {k}."),
    P("keep_even", L, L, (), lambda a, k: [x for x in a if x % 2 == 0], **keep("x % 2 == 0"),
      nouns=("the even values of {x}", "the even numbers in {x}", "{x} without its odd values"),
      verbs=("keep only the even values", "remove the odd numbers"),
      plan="Keep only the even numbers."),
    P("keep_odd", L, L, (), lambda a, k: [x for x in a if x % 2 == 1], **keep("x % 2 == 1"),
      nouns=("the odd values of {x}", "the odd numbers in {x}", "{x} without its even values"),
      verbs=("keep only the odd values", "remove the even numbers"),
      plan="Keep only the odd numbers."),
    P("keep_pos", L, L, (), lambda a, k: [x for x in a if x > 0], **keep("x > 0"),
      nouns=("the positive values of {x}", "the numbers in {x} that are above zero", "{x} without its values that are zero or negative"),
      verbs=("keep only the positive values", "remove every value that is zero or negative"),
      plan="Keep only the positive numbers."),
    P("keep_neg", L, L, (), lambda a, k: [x for x in a if x < 0], **keep("x < 0"),
      nouns=("the negative values of {x}", "the numbers in {x} that are below zero", "{x} with only its negative values kept"),
      verbs=("keep only the negative values", "remove every value that is zero or positive"),
      plan="Keep only the negative numbers."),
    # ---- list -> list: element-wise maps
    P("map_add", L, L, (1, 2, 3, 5, 10), lambda a, k: [x + k for x in a], **each("x + {k}"),
      nouns=("{x} with {k} added to each value", "the values of {x} each increased by {k}", "{x} after adding {k} to every number"),
      verbs=("add {k} to each value", "increase every number by {k}"),
      plan="Add {k} to every number."),
    P("map_mul", L, L, (2, 3, 4, 10), lambda a, k: [x * k for x in a], **each("x * {k}"),
      nouns=("{x} with each value multiplied by {k}", "the values of {x} times {k}", "{x} after multiplying every number by {k}"),
      verbs=("multiply each value by {k}", "scale every number by {k}"),
      plan="Multiply every number by {k}."),
    P("map_square", L, L, (), lambda a, k: [x * x for x in a], **each("x * x"),
      nouns=("the squares of {x}", "{x} with each value squared", "the square of every value in {x}"),
      verbs=("square each value", "replace every number by its square"),
      plan="Square every number."),
    P("map_abs", L, L, (), lambda a, k: [abs(x) for x in a], **each("abs(x)"),
      nouns=("the absolute values of {x}", "{x} with every sign removed", "{x} with each value replaced by its absolute value"),
      verbs=("take the absolute value of each number", "make every negative value positive"),
      plan="Replace every number by its absolute value."),
    P("map_negate", L, L, (), lambda a, k: [-x for x in a], **each("-x"),
      nouns=("the negations of {x}", "{x} with every sign flipped", "{x} with each value multiplied by -1"),
      verbs=("negate each value", "flip the sign of every number"),
      plan="Negate every number."),
    P("map_mod", L, L, (2, 3, 5, 10), lambda a, k: [x % k for x in a], **each("x % {k}"),
      nouns=("the remainders of {x} modulo {k}", "{x} with each value taken modulo {k}", "the values of {x} mod {k}"),
      verbs=("replace each value by its remainder modulo {k}", "take every number modulo {k}"),
      plan="Replace every number by its remainder modulo {k}."),
    P("cap", L, L, (0, 5, 10), lambda a, k: [min(x, k) for x in a], **each("min(x, {k})"),
      nouns=("{x} with every value above {k} replaced by {k}", "{x} capped at {k}", "the values of {x} limited to at most {k}"),
      verbs=("replace every value larger than {k} by {k}", "cap each number at {k}"),
      plan="Replace every number above {k} by {k}."),
    # ---- list -> list: order, position and structure
    P("sort_asc", L, L, (), lambda a, k: sorted(a), short="a = sorted(a)",
      loop="b = []\nfor x in a:\n    i = 0\n    while i < len(b) and b[i] <= x:\n        i += 1\n    b.insert(i, x)\na = b",
      nouns=("{x} sorted in ascending order", "{x} in increasing order", "{x} sorted from smallest to largest"),
      verbs=("sort the values in ascending order", "arrange the numbers from smallest to largest"),
      plan="Sort the numbers in ascending order."),
    P("sort_desc", L, L, (), lambda a, k: sorted(a, reverse=True), short="a = sorted(a, reverse=True)",
      loop="b = []\nfor x in a:\n    i = 0\n    while i < len(b) and b[i] >= x:\n        i += 1\n    b.insert(i, x)\na = b",
      nouns=("{x} sorted in descending order", "{x} in decreasing order", "{x} sorted from largest to smallest"),
      verbs=("sort the values in descending order", "arrange the numbers from largest to smallest"),
      plan="Sort the numbers in descending order."),
    P("dedup", L, L, (), lambda a, k: list(dict.fromkeys(a)), short="a = list(dict.fromkeys(a))",
      loop="b = []\nfor x in a:\n    if x not in b:\n        b.append(x)\na = b",
      nouns=("{x} without duplicates", "the distinct values of {x} in order of first appearance", "{x} with repeated values removed"),
      verbs=("remove duplicate values, keeping first occurrences", "drop every value that already appeared earlier"),
      plan="Remove duplicates, keeping the first occurrence of each number."),
    P("reverse", L, L, (), lambda a, k: a[::-1], short="a = a[::-1]", loop="b = []\nfor x in a:\n    b.insert(0, x)\na = b",
      nouns=("{x} reversed", "{x} in reverse order", "the reverse of {x}"),
      verbs=("reverse the order of the values", "reverse the list"),
      plan="Reverse the list."),
    P("prefix_sums", L, L, (), lambda a, k: [sum(a[:i + 1]) for i in range(len(a))],
      short="a = [sum(a[:i + 1]) for i in range(len(a))]", loop="b = []\ns = 0\nfor x in a:\n    s += x\n    b.append(s)\na = b",
      nouns=("the prefix sums of {x}", "the running totals of {x}", "the cumulative sums of {x}"),
      verbs=("replace the list by its prefix sums", "compute the running totals"),
      plan="Compute the prefix sums."),
    P("window_sums", L, L, (2, 3), lambda a, k: [sum(a[i:i + k]) for i in range(len(a) - k + 1)],
      short="a = [sum(a[i:i + {k}]) for i in range(len(a) - {k} + 1)]",
      loop="b = []\nfor i in range(len(a) - {k} + 1):\n    s = 0\n    for j in range(i, i + {k}):\n        s += a[j]\n    b.append(s)\na = b",
      nouns=("the sums of every {k} consecutive values of {x}", "the sliding-window sums of width {k} over {x}", "the totals of each window of {k} adjacent values in {x}"),
      verbs=("compute the sum of every {k} consecutive values", "replace the list by its window sums of width {k}"),
      plan="Compute the sum of every window of {k} consecutive numbers."),
    P("take_first", L, L, (2, 3, 4), lambda a, k: a[:k], short="a = a[:{k}]",
      loop="b = []\nfor x in a:\n    if len(b) < {k}:\n        b.append(x)\na = b",
      nouns=("the first {k} values of {x}", "the first {k} numbers in {x}", "{x} truncated to its first {k} values"),
      verbs=("keep only the first {k} values", "drop everything after the first {k} numbers"),
      plan="Keep the first {k} numbers."),
    P("take_last", L, L, (2, 3), lambda a, k: a[-k:], short="a = a[-{k}:]",
      loop="b = []\nfor i in range(max(0, len(a) - {k}), len(a)):\n    b.append(a[i])\na = b",
      nouns=("the last {k} values of {x}", "the final {k} numbers in {x}", "{x} reduced to its last {k} values"),
      verbs=("keep only the last {k} values", "drop everything before the last {k} numbers"),
      plan="Keep the last {k} numbers."),
    P("drop_first", L, L, (1, 2, 3), lambda a, k: a[k:], short="a = a[{k}:]",
      loop="b = []\nfor i in range({k}, len(a)):\n    b.append(a[i])\na = b",
      nouns=("{x} without its first {k} values", "the values of {x} after the first {k}", "{x} with the first {k} numbers dropped"),
      verbs=("drop the first {k} values", "remove the first {k} numbers"),
      plan="Drop the first {k} numbers."),
    P("diffs", L, L, (), lambda a, k: [a[i + 1] - a[i] for i in range(len(a) - 1)],
      short="a = [y - x for x, y in zip(a, a[1:])]", loop="b = []\nfor i in range(1, len(a)):\n    b.append(a[i] - a[i - 1])\na = b",
      nouns=("the differences between neighbouring values of {x} (each minus the one before)", "the pairwise differences of {x}, each value minus its predecessor",
             "the steps between consecutive values of {x} (later minus earlier)"),
      verbs=("replace the list by the differences of consecutive values (each minus the one before)", "subtract from each value the value before it, starting at the second"),
      plan="Compute each number minus the number before it."),
    P("count_each", L, L, (), lambda a, k: [a.count(x) for x in dict.fromkeys(a)],
      short="a = [a.count(x) for x in dict.fromkeys(a)]", loop="c = {}\nfor x in a:\n    c[x] = c.get(x, 0) + 1\na = list(c.values())",
      nouns=("the number of times each distinct value occurs in {x}, in order of first appearance", "the occurrence counts of the distinct values of {x}, in order of first appearance",
             "the frequency of each distinct value of {x}, in order of first appearance"),
      verbs=("count how often each distinct value occurs, in order of first appearance", "group equal values and list each group's size, in order of first appearance"),
      plan="Count the occurrences of each distinct number, in order of first appearance."),
    P("even_positions", L, L, (), lambda a, k: a[::2], short="a = a[::2]",
      loop="b = []\nfor i in range(0, len(a), 2):\n    b.append(a[i])\na = b",
      nouns=("the values at even positions of {x} (0, 2, 4, ...)", "every second value of {x}, starting with the first", "the first, third, fifth, ... values of {x}"),
      verbs=("keep every second value, starting with the first", "keep only the values at even indices"),
      plan="Keep the numbers at even indices (0, 2, 4, ...)."),
    P("running_max", L, L, (), lambda a, k: prefix_max(a), short="a = [max(a[:i + 1]) for i in range(len(a))]",
      loop="b = []\nfor x in a:\n    b.append(x if not b or x > b[-1] else b[-1])\na = b",
      nouns=("the running maximum of {x}", "the prefix maxima of {x}", "the largest value so far at each position of {x}"),
      verbs=("replace each value by the largest value up to it", "compute the running maximum"),
      plan="Compute the running maximum."),
    # ---- list -> int: aggregations
    P("sum", L, I, (), lambda a, k: sum(a), short="a = sum(a)", loop="b = 0\nfor x in a:\n    b += x\na = b",
      nouns=("the sum of {x}", "the total of {x}", "the sum of all values in {x}"),
      verbs=("add up the values", "compute the total"),
      plan="Add up all the numbers."),
    P("max", L, I, (), lambda a, k: max(a, default=0), short="a = max(a, default=0)",
      loop="b = 0\nfor i in range(len(a)):\n    if i == 0 or a[i] > b:\n        b = a[i]\na = b",
      nouns=("the largest value of {x} (0 if it is empty)", "the maximum of {x}, or 0 when it is empty", "the biggest number in {x} (0 for an empty list)"),
      verbs=("find the largest value (0 if there are none)", "take the maximum, or 0 for an empty list"),
      plan="Take the maximum, or 0 if the list is empty."),
    P("min", L, I, (), lambda a, k: min(a, default=0), short="a = min(a, default=0)",
      loop="b = 0\nfor i in range(len(a)):\n    if i == 0 or a[i] < b:\n        b = a[i]\na = b",
      nouns=("the smallest value of {x} (0 if it is empty)", "the minimum of {x}, or 0 when it is empty", "the least number in {x} (0 for an empty list)"),
      verbs=("find the smallest value (0 if there are none)", "take the minimum, or 0 for an empty list"),
      plan="Take the minimum, or 0 if the list is empty."),
    P("length", L, I, (), lambda a, k: len(a), short="a = len(a)", loop="b = 0\nfor x in a:\n    b += 1\na = b",
      nouns=("the number of values in {x}", "the length of {x}", "the count of numbers in {x}"),
      verbs=("count the values", "take the length of the list"),
      plan="Count the numbers."),
    P("product_mod", L, I, (10, 100), lambda a, k: product(a) % k, short="a = math.prod(a) % {k}",
      loop="b = 1\nfor x in a:\n    b *= x\na = b % {k}",
      nouns=("the product of {x} modulo {k}", "the product of all values in {x}, taken modulo {k}", "the remainder of the product of {x} divided by {k}"),
      verbs=("multiply all values together (1 if there are none) and take the result modulo {k}", "compute the product modulo {k}, where an empty product is 1"),
      plan="Multiply all numbers together and take the result modulo {k}."),
    P("count_distinct", L, I, (), lambda a, k: len(set(a)), short="a = len(set(a))",
      loop="b = []\nfor x in a:\n    if x not in b:\n        b.append(x)\na = len(b)",
      nouns=("the number of distinct values in {x}", "the count of different numbers in {x}", "the count of unique values of {x}"),
      verbs=("count the distinct values", "count how many different numbers there are"),
      plan="Count the distinct numbers."),
    # ---- str -> str
    P("upper", S, S, (), lambda a, k: a.upper(), short="a = a.upper()", loop="b = ''\nfor c in a:\n    b += c.upper()\na = b",
      nouns=("{x} in upper case", "{x} converted to capital letters", "the upper-case version of {x}"),
      verbs=("convert the text to upper case", "make every letter a capital"),
      plan="Convert the text to upper case."),
    P("lower", S, S, (), lambda a, k: a.lower(), short="a = a.lower()", loop="b = ''\nfor c in a:\n    b += c.lower()\na = b",
      nouns=("{x} in lower case", "{x} converted to small letters", "the lower-case version of {x}"),
      verbs=("convert the text to lower case", "make every letter small"),
      plan="Convert the text to lower case."),
    P("reverse_words", S, S, (), lambda a, k: " ".join(reversed(a.split())), short="a = ' '.join(a.split()[::-1])",
      loop="b = []\nfor w in a.split():\n    b.insert(0, w)\na = ' '.join(b)",
      nouns=("{x} with its words in reverse order", "the words of {x} in reverse order, separated by spaces", "{x} with the word order reversed"),
      verbs=("reverse the order of the words", "write the words from last to first"),
      plan="Reverse the order of the words."),
    P("reverse_chars", S, S, (), lambda a, k: a[::-1], short="a = a[::-1]", loop="b = ''\nfor c in a:\n    b = c + b\na = b",
      nouns=("{x} reversed character by character", "{x} written backwards", "the characters of {x} in reverse order"),
      verbs=("reverse the text", "write the characters from last to first"),
      plan="Reverse the characters of the text."),
    P("remove_vowels", S, S, (), lambda a, k: "".join(c for c in a if c not in VOWELS),
      short="a = ''.join(c for c in a if c not in 'aeiouAEIOU')", loop="b = ''\nfor c in a:\n    if c not in 'aeiouAEIOU':\n        b += c\na = b",
      nouns=("{x} without vowels", "{x} with every vowel removed", "{x} with the letters a, e, i, o, u (any case) deleted"),
      verbs=("remove all vowels", "delete every vowel (a, e, i, o, u in either case)"),
      plan="Remove every vowel."),
    P("long_words", S, S, (2, 3, 4), lambda a, k: " ".join(w for w in a.split() if len(w) > k),
      short="a = ' '.join(w for w in a.split() if len(w) > {k})",
      loop="b = []\nfor w in a.split():\n    if len(w) > {k}:\n        b.append(w)\na = ' '.join(b)",
      nouns=("the words of {x} longer than {k} characters", "{x} keeping only words with more than {k} characters", "the words in {x} whose length exceeds {k}, separated by spaces"),
      verbs=("keep only the words longer than {k} characters", "remove the words with at most {k} characters"),
      plan="Keep only the words longer than {k} characters."),
    P("acronym", S, S, (), lambda a, k: "".join(w[0] for w in a.split()), short="a = ''.join(w[0] for w in a.split())",
      loop="b = ''\nfor w in a.split():\n    b += w[0]\na = b",
      nouns=("the first letters of the words of {x}, joined together", "the initials of the words of {x}", "the acronym formed by the words of {x}"),
      verbs=("join the first letters of the words", "replace the text by the initials of its words"),
      plan="Join the first letter of each word."),
    # ---- str -> list, str -> int
    P("word_lengths", S, L, (), lambda a, k: [len(w) for w in a.split()], **words_to("len(w)"),
      nouns=("the lengths of the words of {x}", "the number of characters in each word of {x}", "the word lengths of {x}"),
      verbs=("replace each word by its length", "compute the length of every word"),
      plan="Take the length of each word."),
    P("count_words", S, I, (), lambda a, k: len(a.split()), short="a = len(a.split())", loop="b = 0\nfor w in a.split():\n    b += 1\na = b",
      nouns=("the number of words in {x}", "the word count of {x}", "the count of words in {x}"),
      verbs=("count the words", "count how many words there are"),
      plan="Count the words."),
    P("count_vowels", S, I, (), lambda a, k: sum(c in VOWELS for c in a), short="a = sum(c in 'aeiouAEIOU' for c in a)",
      loop="b = 0\nfor c in a:\n    if c in 'aeiouAEIOU':\n        b += 1\na = b",
      nouns=("the number of vowels in {x}", "the count of vowels in {x}", "the vowel count of {x}"),
      verbs=("count the vowels (a, e, i, o, u in either case)", "count how many vowels there are"),
      plan="Count the vowels."),
    P("str_length", S, I, (), lambda a, k: len(a), short="a = len(a)", loop="b = 0\nfor c in a:\n    b += 1\na = b",
      nouns=("the number of characters in {x}", "the length of {x}", "the count of characters in {x}"),
      verbs=("count the characters, spaces included", "take the length of the text"),
      plan="Count the characters."),
    # ---- int -> int
    P("int_abs", I, I, (), lambda a, k: abs(a), short="a = abs(a)", loop="if a < 0:\n    a = -a",
      nouns=("the absolute value of {x}", "{x} without its sign", "the magnitude of {x}"),
      verbs=("take the absolute value", "drop the sign of the number"),
      plan="Take the absolute value."),
    P("digit_sum", I, I, (), lambda a, k: sum(int(c) for c in str(abs(a))), short="a = sum(int(c) for c in str(abs(a)))",
      loop="a = abs(a)\nb = 0\nwhile a > 0:\n    b += a % 10\n    a //= 10\na = b",
      nouns=("the digit sum of {x}", "the sum of the digits of {x}", "the total of the decimal digits of {x}"),
      verbs=("add up the digits of the number, ignoring the sign", "replace the number by the sum of its digits"),
      plan="Add up the digits of the number, ignoring the sign."),
    P("int_mod", I, I, (3, 7, 10), lambda a, k: a % k, short="a = a % {k}", loop="a %= {k}",
      nouns=("{x} modulo {k}", "the remainder of {x} divided by {k}", "{x} mod {k}"),
      verbs=("take the result modulo {k}", "replace the number by its remainder modulo {k}"),
      plan="Take the number modulo {k}."),
]
# Adjacent steps where the second undoes or ignores the first, or is a no-op after it: never sampled.
POINTLESS_PAIRS = {("sort_asc", "sort_desc"), ("sort_desc", "sort_asc"), ("upper", "lower"), ("lower", "upper"),
                   ("keep_pos", "map_abs"), ("map_square", "map_abs"), ("map_mod", "map_abs"), ("map_mod", "keep_neg"),
                   ("dedup", "count_distinct"), ("dedup", "count_each"), ("count_each", "keep_neg"), ("map_abs", "keep_neg"),
                   ("acronym", "word_lengths"), ("acronym", "count_words"), ("acronym", "reverse_words"), ("acronym", "long_words"),
                   *((counter, "int_abs") for counter in ("length", "count_distinct", "count_words", "count_vowels", "str_length", "digit_sum"))}
Step = tuple[Primitive, Any]    # a primitive and its parameter (None when it has none)

# ----------------------------------------------------------------------------- wording


def fill(template: str, k: Any, x: str = "") -> str:
    # str.replace, not str.format: code templates contain literal braces (`c = {}`)
    return template.replace("{k}", str(k)).replace("{x}", x)


def cap_first(text: str) -> str:
    return text[:1].upper() + text[1:]


INPUT_NOUNS = {L: ("the list", "the given list", "the input list"), S: ("the text", "the given text", "the input string")}
TYPE_WORDS = {L: "a list of integers", S: "a string", I: "an integer"}
STDIN_FORMAT = {L: "one line of integers separated by spaces", S: "one line of text (words separated by single spaces)"}
STDOUT_FORMAT = {L: "the numbers separated by spaces on one line (empty if there are none)",
                 S: "one line of text", I: "one integer"}
QUANTITY_NAMES = ("signal", "digest", "report", "summary", "score", "checksum", "profile", "fingerprint")


def prefix_form(template: str) -> bool:
    """A noun phrase that ends in its argument ("the squares of {x}"): stacking only such phrases
    reads one way. A phrase with words after its argument ("{x} sorted in ascending order")
    around or inside another phrase reads two ways: "the squares of the list sorted in ascending
    order" is both sort-then-square and square-then-sort, whose outputs differ."""
    return template.endswith("{x}")


def nested(rng: random.Random, steps: list[Step], base: str) -> str | None:
    """Noun phrase naming the result of `steps` applied to `base`, outermost step first when read;
    None when a step of a chain longer than one has no prefix-form phrase (it would be ambiguous)."""
    phrase = base
    for prim, k in steps:
        nouns = prim.nouns if len(steps) == 1 else [n for n in prim.nouns if prefix_form(n)]
        if not nouns:
            return None
        phrase = fill(rng.choice(nouns), k, phrase)
    return phrase


def sequential(rng: random.Random, steps: list[Step]) -> str:
    verbs = [fill(rng.choice(prim.verbs), k) for prim, k in steps]
    if len(verbs) == 1:
        return cap_first(verbs[0]) + "."
    return "First " + ", then ".join(verbs) + "."


def opening(takes: str, fmt: str, fn_name: str) -> str:
    return (f"You are given {TYPE_WORDS[takes]}." if fmt == "stdio"
            else f"Write a function {fn_name}(a) that takes {TYPE_WORDS[takes]} a.")


def steps_sentence(rng: random.Random, steps: list[Step], fmt: str, fn_name: str) -> str:
    """The "steps" style: the task lists its steps, nested (read last to first), sequential (in
    execution order) or mixed (the first steps in order, the rest nested). At most MAX_NESTED
    steps are nested: deeper nesting stops being readable."""
    takes = steps[0][0].takes
    verb = "Print" if fmt == "stdio" else "Return"
    wordings = ["sequential"] + ["nested"] * (len(steps) <= MAX_NESTED) + ["mixed"] * (len(steps) > 1)
    wording = rng.choice(wordings)
    if wording == "nested":
        phrase = nested(rng, steps, rng.choice(INPUT_NOUNS[takes]))
        if phrase is not None:
            return f"{opening(takes, fmt, fn_name)} {verb} {phrase}."
    if wording == "mixed":
        split_at = rng.randint(max(1, len(steps) - MAX_NESTED), len(steps) - 1)
        phrase = nested(rng, steps[split_at:], "the result")
        if phrase is not None:
            return f"{opening(takes, fmt, fn_name)} {sequential(rng, steps[:split_at])} {verb} {phrase}."
    return f"{opening(takes, fmt, fn_name)} {sequential(rng, steps)} {verb} the result."


def show_value(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else f'"{value}"'


def goal_sentence(rng: random.Random, steps: list[Step], fmt: str, fn_name: str, trace_input: Any) -> str:
    """The "goal" style: the task names a quantity and a worked example shows its value after each
    step; which operation each step is, is left for the solver (or the plan) to infer. The trace
    input is chosen so that the example identifies every step (steps_identified)."""
    takes = steps[0][0].takes
    name = rng.choice(QUANTITY_NAMES)
    values = [trace_input]
    for step in steps:
        values.append(run_chain([step], values[-1]))
    task = (f"{opening(takes, fmt, fn_name)} {'Print' if fmt == 'stdio' else 'Return'} its {name}, worked out in "
            f"{len(steps)} step{'s' * (len(steps) > 1)}.")
    return f"{task}\n\nWorked example: " + " -> ".join(map(show_value, values)) + "."


def stdin_text(value: Any) -> str:
    return (" ".join(map(str, value)) if isinstance(value, list) else str(value)) + "\n"


def question_text(rng: random.Random, steps: list[Step], fmt: str, fn_name: str, style: str,
                  examples: list[tuple[Any, Any]]) -> str:
    takes, gives = steps[0][0].takes, steps[-1][0].gives
    task = (goal_sentence(rng, steps, fmt, fn_name, examples[0][0]) if style == "goal"
            else steps_sentence(rng, steps, fmt, fn_name))
    parts = [task, ""]
    if fmt == "stdio":
        parts += [f"Input: {STDIN_FORMAT[takes]}.", f"Output: {STDOUT_FORMAT[gives]}.", ""]
        for i, (arg, out) in enumerate(examples, 1):
            title = "Example:" if len(examples) == 1 else f"Example {i}:"
            parts += [title, "Input:", stdin_text(arg).rstrip("\n"), "Output:", stdin_text(out).rstrip("\n")]
    else:
        parts += [f"Input: a, {TYPE_WORDS[takes]}.", f"Output: {TYPE_WORDS[gives]}.", ""]
        parts += [f"Example: {fn_name}({arg!r}) returns {out!r}" for arg, out in examples]
    return "\n".join(parts)


def plan_step(prim: Primitive, k: Any) -> str:
    """The reference plan's line for one step."""
    return fill(prim.plan, k)


def reference_plan(steps: list[Step]) -> str:
    """What a teacher that read the solution writes: the steps, numbered in execution order. Lines
    that would read the same in every plan (read the input, print the result, fixed edge-case notes)
    carry no information and are left out: shorter inputs are easier for a small model to read."""
    return "\n".join(f"{i}. {plan_step(prim, k)}" for i, (prim, k) in enumerate(steps, 1))

# ----------------------------------------------------------------------------- code


def solution(steps: list[Step], fmt: str, fn_name: str, style: str) -> str:
    """A full program in `style` "short" (built-ins) or "loop" (explicit loops)."""
    takes, gives = steps[0][0].takes, steps[-1][0].gives
    body = [fill(getattr(prim, style), k) for prim, k in steps]
    if fmt == "stdio":
        if takes == S:
            read = "a = input()"
        else:
            read = "a = list(map(int, input().split()))" if style == "short" else "a = []\nfor t in input().split():\n    a.append(int(t))"
        if gives == L:
            write = "print(*a)" if style == "short" else "print(' '.join(map(str, a)))"
        else:
            write = "print(a)"
        code = "\n".join([read, *body, write])
    else:
        inner = "\n".join([*body, "return a"])
        code = f"def {fn_name}(a):\n" + "\n".join("    " + line for line in inner.split("\n"))
    if "math." in code:
        code = "import math\n" + code
    return code + "\n"

# ----------------------------------------------------------------------------- inputs and tests


def random_list(rng: random.Random, min_len: int, max_len: int) -> list[int]:
    # half the lists draw from a narrow range so duplicates and multiples are common
    lo, hi = (-20, 20) if rng.random() < 0.5 else (-5, 9)
    return [rng.randint(lo, hi) for _ in range(rng.randint(min_len, max_len))]


def random_text(rng: random.Random, min_words: int, max_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words)))


def edge_inputs(rng: random.Random, takes: str) -> list[Any]:
    if takes == L:
        v, w = rng.randint(-20, 20), rng.randint(-20, 20)
        return [[], [v], [v, w, v, v, w][:rng.randint(3, 5)], [-rng.randint(1, 20) for _ in range(rng.randint(2, 5))]]
    word, other = rng.choice(WORDS), rng.choice(WORDS)
    return ["", word, f"{word} {other} {word}", " ".join(w.upper() if i % 2 else w.lower() for i, w in enumerate(random_text(rng, 2, 4).split()))]


def run_chain(steps: list[Step], value: Any) -> Any:
    for prim, k in steps:
        value = prim.fn(value, k)
    return value


def make_test(fmt: str, arg: Any, out: Any) -> dict:
    if fmt == "stdio":
        return {"kind": "stdio", "input": stdin_text(arg), "output": stdin_text(out)}
    return {"kind": "call", "input": [arg], "output": out}


def some_step_is_invisible(steps: list[Step], cases: list[tuple[Any, Any]]) -> bool:
    """Whether the chain without one of its steps still gives every expected output: the tests
    could not tell a program that skips that step from the right one."""
    for i in range(len(steps)):
        shorter = steps[:i] + steps[i + 1:]
        try:
            if all(repr(run_chain(shorter, arg)) == repr(out) for arg, out in cases):
                return True
        except (TypeError, AttributeError):   # the chain no longer fits together: its output surely differs
            continue
    return False


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def steps_identified(steps: list[Step], trace_input: Any, cases: list[tuple[Any, Any]], mix: Mix) -> bool:
    """Whether a worked example on trace_input pins down every step: each primitive (with its
    constant) that maps the example's value before a step to its value after it also maps that
    step's value on every test input as the step does. Then every chain of the mix's primitives
    that reproduces the worked example computes, step by step, what the reference computes on
    every test."""
    trace, states = trace_input, [arg for arg, _ in cases]
    for prim, k in steps:
        after, truth = prim.fn(trace, k), [prim.fn(x, k) for x in states]
        for other, j in mix.steps[prim.takes]:
            if (other, j) != (prim, k) and same(other.fn(trace, j), after) and \
                    not all(same(other.fn(x, j), y) for x, y in zip(states, truth)):
                return False
        trace, states = after, truth
    return True


def build_tests(rng: random.Random, steps: list[Step], style: str, mix: Mix) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]] | None:
    """(public examples, hidden cases) as (argument, expected) pairs, or None when the chain is
    degenerate on these inputs (nearly constant or too long output, a step the tests cannot see,
    or, in the goal style, no worked example among TRACE_TRIES inputs that identifies every step)
    and should be resampled. A goal problem's worked example is its first public example."""
    takes = steps[0][0].takes
    fresh = (lambda: random_list(rng, 2, 8)) if takes == L else (lambda: random_text(rng, 2, 6))
    seen: set[str] = set()
    hidden: list[tuple[Any, Any]] = []
    candidates = edge_inputs(rng, takes)
    while len(hidden) < N_EDGE_TESTS + N_RANDOM_TESTS:
        arg = candidates.pop(0) if candidates else fresh()
        if repr(arg) not in seen:
            seen.add(repr(arg))
            hidden.append((arg, run_chain(steps, arg)))
    public: list[tuple[Any, Any]] = []
    for _ in range(rng.choice((1, 2))):
        for attempt in range(4):   # prefer examples whose answer is not empty
            arg = random_list(rng, 3, 6) if takes == L else random_text(rng, 2, 4)
            out = run_chain(steps, arg)
            if repr(arg) not in seen and ((out != [] and out != "") or attempt == 3):
                break
        else:
            return None
        seen.add(repr(arg))
        public.append((arg, out))
    if style == "goal":
        for _ in range(TRACE_TRIES):
            arg = random_list(rng, 3, 8) if takes == L else random_text(rng, 2, 5)
            if repr(arg) not in seen and steps_identified(steps, arg, public + hidden, mix):
                public = [(arg, run_chain(steps, arg))] + public[1:]
                break
        else:
            return None
    outputs = [repr(out) for _, out in public + hidden]
    if len(set(outputs)) < MIN_DISTINCT_OUTPUTS or max(map(len, outputs)) > MAX_OUTPUT_CHARS:
        return None
    if len(steps) > 1 and some_step_is_invisible(steps, public + hidden):
        return None
    return public, hidden

# ----------------------------------------------------------------------------- chains and splits


class Mix:
    """A benchmark's difficulty: the share of each step count (the same in every split and tier)
    and the primitives its chains are drawn from, each with the constants it may take (`constants`:
    name -> a subset of the primitive's own choices; None: every primitive, every choice), with the
    lookups the generator and the check use. A solver of a mix knows its primitives and constants:
    the check enumerates chains of those alone."""

    def __init__(self, shares: dict[int, float], constants: dict[str, tuple] | None = None):
        self.shares = shares
        self.primitives = [p for p in PRIMITIVES if constants is None or p.name in constants]
        self.params = {p.name: p.params if constants is None else constants[p.name] for p in self.primitives}
        if constants is not None and (len(self.primitives) != len(constants) or
                                      any(not set(self.params[p.name]) <= set(p.params) for p in self.primitives)):
            raise ValueError(f"a mix names primitives or constants that do not exist: {constants}")
        self.by_input = {t: [p for p in self.primitives if p.takes == t] for t in (L, S, I)}
        self.steps: dict[str, list[Step]] = {t: [(p, k) for p in prims for k in (self.params[p.name] or (None,))]
                                             for t, prims in self.by_input.items()}
        self.noun_parts = [(*fill(noun, k, "{x}").split("{x}"), (p, k)) for p, k in sum(self.steps.values(), [])
                           for noun in p.nouns]


# The primitives of the default mix and their constants: the simplest operations of each kind, two
# constants where there are more. With all 47 primitives and every constant, fine-tuning at the CPU
# budget did not learn to read the statement (results/LOG.md, benchmark v4).
CORE = {"keep_gt": (1, 3), "keep_even": (), "keep_pos": (), "map_add": (2, 10), "map_mul": (2, 3), "map_square": (),
        "map_abs": (), "sort_asc": (), "sort_desc": (), "reverse": (), "dedup": (), "sum": (), "max": (), "min": (),
        "length": (), "upper": (), "lower": (), "reverse_words": (), "reverse_chars": (), "count_words": (),
        "word_lengths": (), "str_length": (), "int_abs": (), "int_mod": (3, 10)}
# "short", the default, is what the CPU budget learns to a measurable share (results/LOG.md): half of
# its problems have one step. "full" has every primitive and 1 to 6 steps, for larger budgets.
MIXES = {"short": Mix({1: 0.50, 2: 0.30, 3: 0.20}, CORE),
         "full": Mix({1: 0.20, 2: 0.20, 3: 0.175, 4: 0.175, 5: 0.125, 6: 0.125})}



def code_class(prim: Primitive) -> str:
    """Primitives with the same code are one class ("reverse" a list, "reverse_chars" a text):
    the hold-out and the chain identity are about classes, so that no held-out pair or unseen
    chain has its code in train under another name."""
    return prim.short


def chain_key(steps: list[Step]) -> tuple:
    return tuple((code_class(prim), k) for prim, k in steps)


def class_pairs(steps: list[Step]) -> set[tuple[str, str]]:
    return {(code_class(a), code_class(b)) for (a, _), (b, _) in zip(steps, steps[1:])}


def holdout_pairs(seed: int, mix: Mix) -> set[tuple[str, str]]:
    """The seeded class pairs reserved for the held-pair test tier: never adjacent in train or valid."""
    rng = random.Random(f"synthetic/{seed}/holdout")
    pairs = sorted({(code_class(p), code_class(q)) for p in mix.primitives for q in mix.primitives
                    if p.gives == q.takes and p is not q and (p.name, q.name) not in POINTLESS_PAIRS})
    return set(rng.sample(pairs, round(HOLDOUT_FRACTION * len(pairs))))


def sample_chain(rng: random.Random, n_steps: int, mix: Mix) -> list[Step] | None:
    """A random well-typed chain of distinct primitives without pointless pairs; aggregations to
    an integer only come last or second to last, so integer chains stay short."""
    kind = rng.choice((L, L, L, S))
    steps: list[Step] = []
    for i in range(n_steps):
        left = n_steps - i - 1
        options = [p for p in mix.by_input[kind] if all(p is not q for q, _ in steps) and (p.gives != I or kind == I or left <= 1)
                   and not (steps and (steps[-1][0].name, p.name) in POINTLESS_PAIRS)]
        if not options:
            return None
        prim = rng.choice(options)
        params = mix.params[prim.name]
        steps.append((prim, rng.choice(params) if params else None))
        kind = prim.gives
    return steps


def step_counts(n: int, mix: Mix) -> list[int]:
    """Step counts for n problems in the exact shares of `mix`."""
    counts: list[int] = []
    shares = sorted(mix.shares.items())
    for i, (n_steps, share) in enumerate(shares):
        counts += [n_steps] * (n - len(counts) if i == len(shares) - 1 else round(share * n))
    return counts


def difficulty_of(n_steps: int) -> str:
    return next(name for name, (lo, hi) in DIFFICULTY_STEPS if lo <= n_steps <= hi)


def slots(rng: random.Random, n: int, min_steps: int, mix: Mix) -> list[tuple[int, str, str]]:
    """(step count, format, style) for n problems. Formats (half each) and styles (GOAL_SHARE of
    every difficulty is "goal") are shuffled apart from the step counts, so neither follows them."""
    counts = [max(c, min_steps) for c in step_counts(n, mix)]
    formats = ["stdio"] * (n // 2) + ["call"] * (n - n // 2)
    rng.shuffle(formats)
    styles: list[str] = []
    for name, _ in DIFFICULTY_STEPS:
        m = sum(difficulty_of(c) == name for c in counts)
        group = ["goal"] * math.ceil(GOAL_SHARE * m) + ["steps"] * (m - math.ceil(GOAL_SHARE * m))
        rng.shuffle(group)
        styles += group
    return list(zip(counts, formats, styles))


class Chains:
    """Which chains each split may use. Train never holds a held-out pair. Valid and test have the
    same three tiers: seen-chain (new instances of train chains), new-chain (chains not in train,
    built only from class pairs adjacent in train) and held-pair (a held-out pair inside; valid and
    test share the held-out pairs, so the tier means the same in both). The new-chain pools are
    fixed before train is drawn (reserved): with few primitives, train would otherwise hold
    almost every short chain. No chain occurs in both valid and test: the train chains are split in
    two halves for the seen-chain tiers, and the chains of the other tiers by a seeded half."""

    def __init__(self, seed: int, mix: Mix):
        self.seed, self.mix = seed, mix
        self.held = holdout_pairs(seed, mix)
        self.train: dict[tuple, list[Step]] = {}
        self.train_pairs: set[tuple[str, str]] = set()

    def draw(self, rng: random.Random, split: str, tier: str, n_steps: int) -> list[Step] | None:
        if tier == "seen-chain":
            seen = self.seen[split].get(n_steps)
            return list(rng.choice(seen)) if seen else None
        steps = sample_chain(rng, n_steps, self.mix)
        if steps is None:
            return None
        pairs, key = class_pairs(steps), chain_key(steps)
        if tier == "held-pair":
            return steps if pairs & self.held and self.half(key) == split else None
        if pairs & self.held:
            return None
        if split == "train":
            return None if self.reserved(key) else steps
        return steps if self.reserved(key) and self.half(key) == split and pairs <= self.train_pairs else None

    def digest(self, key: tuple) -> bytes:
        return hashlib.sha256(f"synthetic/{self.seed}/reserved/{key}".encode()).digest()

    def reserved(self, key: tuple) -> bool:
        """A seeded RESERVED_FRACTION of the chains of 2 or more steps (a one-step chain has no pair)."""
        return len(key) > 1 and self.digest(key)[0] < 256 * RESERVED_FRACTION

    def half(self, key: tuple) -> str:
        """The evaluation split a chain of the unseen tiers may appear in: half of them each."""
        return ("valid", "test")[self.digest(key)[1] % 2]

    def record(self, split: str, steps: list[Step]) -> None:
        if split == "train":
            self.train.setdefault(chain_key(steps), steps)
            self.train_pairs |= class_pairs(steps)

    def close_train(self) -> None:
        keys = sorted(self.train)
        random.Random(f"synthetic/{self.seed}/seen").shuffle(keys)
        self.seen: dict[str, dict[int, list[list[Step]]]] = {"valid": {}, "test": {}}
        for i, key in enumerate(keys):
            steps = self.train[key]
            self.seen[("valid", "test")[i % 2]].setdefault(len(steps), []).append(steps)


def make_problem(rng: random.Random, steps: list[Step], fmt: str, style: str, tier: str, mix: Mix) -> dict | None:
    tests = build_tests(rng, steps, style, mix)
    if tests is None:
        return None
    public, hidden = tests
    fn_name = rng.choice(FUNCTION_NAMES) if fmt == "call" else None
    return {"id": "", "question": question_text(rng, steps, fmt, fn_name or "", style, public),
            "solutions": [solution(steps, fmt, fn_name or "", "short"), solution(steps, fmt, fn_name or "", "loop")],
            "starter_code": f"def {fn_name}(a):\n" if fn_name else "", "fn_name": fn_name,
            "public_tests": [make_test(fmt, a, o) for a, o in public], "hidden_tests": [make_test(fmt, a, o) for a, o in hidden],
            "difficulty": difficulty_of(len(steps)), "source": "synthetic", "reference_plan": reference_plan(steps),
            "tier": tier, "style": style}


def split_plan(split: str, size: int) -> list[tuple[str, int, int]]:
    """(tier, problems, fewest steps) per part of a split. A one-step chain has no pair and every
    one-step chain occurs in train, so new-chain and held-pair introductory problems have 2 steps."""
    if split == "train":
        return [("", size, 1)]
    return [(tier, size // len(TIERS) + (i < size % len(TIERS)), 1 if tier == "seen-chain" else 2)
            for i, tier in enumerate(TIERS)]


def generate(seed: int = 0, sizes: tuple[int, int, int] = DEFAULT_SIZES, progress: bool = False,
             mix: str = DEFAULT_MIX) -> dict[str, list[dict]]:
    """The train / valid / test splits as problem records (problems.Problem.to_dict() layout); the
    same seed, sizes and mix always give the same problems."""
    if len(sizes) != 3 or any(n < 0 for n in sizes):
        raise SyntheticError(f"synthetic: sizes must be three counts >= 0 (train, valid, test), got {sizes!r}")
    if mix not in MIXES:
        raise SyntheticError(f"synthetic: unknown mix {mix!r} (expected one of {', '.join(MIXES)})")
    chains = Chains(seed, MIXES[mix])
    seen_questions: set[str] = set()
    splits: dict[str, list[dict]] = {}
    for split, size in zip(SPLITS, sizes):
        rng = random.Random(f"synthetic/{seed}/{split}")
        problems: list[dict] = []
        start = time.time()
        for tier, count, min_steps in split_plan(split, size):
            for n_steps, fmt, style in slots(rng, count, min_steps, MIXES[mix]):
                for _ in range(20_000):
                    steps = chains.draw(rng, split, tier, n_steps)
                    problem = steps and make_problem(rng, steps, fmt, style, tier, MIXES[mix])
                    if problem and problem["question"] not in seen_questions:
                        break
                else:
                    # valid and all test tiers but held-pair are built from what train holds
                    reuses_train = split != "train" and tier != "held-pair"
                    raise SyntheticError(f"synthetic: could not find a new {split} {tier or 'problem'} with {n_steps} steps; "
                                         f"sizes {sizes}: " + ("train too small for this split (it is built from train's "
                                         "chains and class pairs): give train more problems" if reuses_train else
                                         f"{split} too large for the distinct problems there are"))
                seen_questions.add(problem["question"])
                chains.record(split, steps)
                problems.append(problem)
                if progress and (len(problems) % 5000 == 0 or len(problems) == size):
                    rate = len(problems) / max(time.time() - start, 1e-9)
                    print(f"synthetic {split}: {len(problems)}/{size} problems, {rate:.0f}/s, "
                          f"ETA {(size - len(problems)) / rate:.0f}s", file=sys.stderr)
        if split == "train":
            chains.close_train()
        rng.shuffle(problems)
        for i, problem in enumerate(problems):
            problem["id"] = f"synthetic/{split}/{i}"
        splits[split] = problems
    return splits


def source_digest() -> str:
    """Digest of this file: data.py keys its cache by it, so a changed generator never serves
    problems it would no longer make."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def splits_digest(splits: dict[str, list[dict]]) -> str:
    """Digest of generated splits, as canonical JSON: DEFAULT_DIGEST pins the default benchmark."""
    return hashlib.sha256(json.dumps(splits, sort_keys=True).encode()).hexdigest()

# ----------------------------------------------------------------------------- the determinacy check
# Independent of how the generator builds a problem: from the record alone (statement, public and
# hidden tests), it enumerates every chain the generator could have drawn that a solver would
# accept and asks whether all of them agree on the hidden tests.


def chain_allowed(steps: list[Step]) -> bool:
    """The generator's chain rules (sample_chain): types fit, primitives are distinct, no pointless
    pair, an aggregation to an integer only last or second to last."""
    kind = steps[0][0].takes
    for i, (prim, _) in enumerate(steps):
        if prim.takes != kind or any(prim is q for q, _ in steps[:i]) or \
                (prim.gives == I and kind != I and len(steps) - i - 1 > 1) or \
                (i and (steps[i - 1][0].name, prim.name) in POINTLESS_PAIRS):
            return False
        kind = prim.gives
    return True


def test_cases(record: dict, takes: str, which: str) -> list[tuple[Any, Any]]:
    """(argument, expected) of a record's public or hidden tests; stdio outputs stay text."""
    cases = []
    for test in record[f"{which}_tests"]:
        if test["kind"] == "call":
            cases.append((test["input"][0], test["output"]))
        else:
            text = test["input"].rstrip("\n")
            cases.append((text if takes == S else [int(t) for t in text.split()], test["output"]))
    return cases


def answer(steps: list[Step], arg: Any, stdio: bool) -> str:
    out = run_chain(steps, arg)
    return stdin_text(out) if stdio else repr(out)


def worked_example(question: str) -> list[Any]:
    line = question.split("Worked example: ", 1)[1].split("\n", 1)[0]
    return [ast.literal_eval(v) for v in line.split(", so the ")[0].removesuffix(".").split(" -> ")]


def goal_chains(question: str, mix: Mix) -> tuple[str, int, Iterator[list[Step]]]:
    """(input type, step count, every allowed chain that reproduces the worked example step by
    step), the chains enumerated lazily: a problem is undetermined as soon as two of them disagree."""
    values = worked_example(question)
    matches = [[step for step in mix.steps[{list: L, str: S, int: I}[type(before)]] if same(step[0].fn(before, step[1]), after)]
               for before, after in zip(values, values[1:])]

    def extend(chain: list[Step]) -> Iterator[list[Step]]:
        if len(chain) == len(matches):
            yield chain
            return
        for step in matches[len(chain)]:
            if chain_allowed(chain + [step]):
                yield from extend(chain + [step])
    return {list: L, str: S}[type(values[0])], len(matches), extend([])


BASES = {noun for nouns in INPUT_NOUNS.values() for noun in nouns} | {"the result"}


def nested_readings(phrase: str, mix: Mix) -> list[list[Step]]:
    """Every chain (execution order) a nested noun phrase can name."""
    if phrase in BASES:
        return [[]]
    readings = []
    for before, after, step in mix.noun_parts:
        if phrase.startswith(before) and phrase.endswith(after) and len(phrase) > len(before) + len(after):
            readings += [inner + [step] for inner in nested_readings(phrase[len(before):len(phrase) - len(after)], mix)]
    return readings


def steps_chains(question: str, mix: Mix) -> tuple[str, int, Iterator[list[Step]]]:
    """Every allowed chain that the listed steps can name: a sequential part ("First ..., then ...")
    in order, then the nested noun phrase of "Print ..." / "Return ..." read from the inside out."""
    task = question.split("\n\n", 1)[0]
    takes = L if task.split(".", 1)[0].endswith(("a list of integers", "a list of integers a")) else S
    rest = task.split(". ", 1)[1]
    at = max(rest.rfind("Print "), rest.rfind("Return "))
    head, phrase = rest[:at].strip(), rest[at:].split(" ", 1)[1].removesuffix(".")
    verbs = head.removesuffix(".").removeprefix("First ").split(", then ") if head else []
    sequences: list[list[Step]] = [[]]
    for verb in verbs:
        matches = [step for step in mix.steps[L] + mix.steps[S] + mix.steps[I]
                   if any(fill(v, step[1]).lower() == verb.lower() for v in step[0].verbs)]
        sequences = [seq + [m] for seq in sequences for m in matches]
    chains = [seq + tail for seq in sequences for tail in nested_readings(phrase, mix)]
    chains = [c for c in chains if c and c[0][0].takes == takes and chain_allowed(c)]
    return takes, len(chains[0]) if chains else 0, iter(chains)


def determined(record: dict, mix: Mix) -> tuple[bool, int]:
    """(whether every chain that a solver would accept gives the same hidden outputs, the step count
    of the statement's chains). A chain is accepted when it fits the statement (reproduces the worked
    example, or follows the listed steps) and passes every public example."""
    parse = goal_chains if record["style"] == "goal" else steps_chains
    takes, n_steps, chains = parse(record["question"], mix)
    stdio = record["fn_name"] is None
    public, hidden = test_cases(record, takes, "public"), test_cases(record, takes, "hidden")
    behaviours = set()
    for steps in chains:
        if all(answer(steps, arg, stdio) == (out if stdio else repr(out)) for arg, out in public):
            behaviours.add(tuple(answer(steps, arg, stdio) for arg, _ in hidden))
            if len(behaviours) > 1:
                break
    return len(behaviours) == 1, n_steps


def check(splits: dict[str, list[dict]], mix: str = DEFAULT_MIX) -> list[str]:
    """Report lines: the share of determined problems per split, then per tier, style and step count."""
    lines = []
    for split, records in splits.items():
        results = [(r, *determined(r, MIXES[mix])) for r in records]
        groups: dict[str, list[bool]] = {}
        for r, ok, n_steps in results:
            for key in ("all", f"tier {r['tier']}" * bool(r["tier"]), f"style {r['style']}", f"steps {n_steps}"):
                groups.setdefault(key, []).append(ok)
        groups.pop("", None)
        lines.append(f"{split}: " + ", ".join(f"{key} {100 * sum(groups[key]) / len(groups[key]):.1f}% of {len(groups[key])}"
                                              for key in sorted(groups, key=lambda k: (k != "all", k))))
    return lines

# ----------------------------------------------------------------------------- command line


def show(problem: dict) -> None:
    print(f"=== {problem['id']} ({problem['difficulty']}, {problem['style']} style"
          f"{', ' + problem['tier'] if problem['tier'] else ''}, {'call ' + problem['fn_name'] if problem['fn_name'] else 'stdio'}, "
          f"{len(problem['public_tests'])} public / {len(problem['hidden_tests'])} hidden tests)")
    print(problem["question"])
    for name, code in zip(("compact", "loops"), problem["solutions"]):
        print(f"--- solution ({name})\n{code}", end="")
    print(f"--- reference plan\n{problem['reference_plan']}\n")


def print_stats(splits: dict[str, list[dict]], seconds: float, mix: Mix) -> None:
    n_phrasings = sum(len(p.nouns) + len(p.verbs) for p in mix.primitives)
    print(f"generated {sum(map(len, splits.values()))} problems in {seconds:.1f}s; {len(mix.primitives)} primitives, "
          f"{n_phrasings} statement phrasings (min {min(len(p.nouns) + len(p.verbs) for p in mix.primitives)} per primitive)")
    for split, problems in splits.items():
        by_fmt = sum(p["fn_name"] is None for p in problems)
        by_style = sum(p["style"] == "goal" for p in problems)
        print(f"\n{split}: {len(problems)} problems, {by_fmt} stdio / {len(problems) - by_fmt} call-based, "
              f"{by_style} goal / {len(problems) - by_style} steps style")
        groups = [(name, [p for p in problems if p["difficulty"] == name]) for name, _ in DIFFICULTY_STEPS]
        groups += [(tier, [p for p in problems if p["tier"] == tier]) for tier in TIERS]
        print(f"  {'group':<13}{'count':>6}  {'question words mean/max':>24}  {'chars mean/max':>15}  "
              f"{'solution[0] chars':>18}  {'plan words':>11}")
        for name, group in groups:
            if not group:
                continue

            def mean_max(values: list[int]) -> str:
                return f"{sum(values) / len(values):.0f}/{max(values)}"
            print(f"  {name:<13}{len(group):>6}  {mean_max([len(p['question'].split()) for p in group]):>24}  "
                  f"{mean_max([len(p['question']) for p in group]):>15}  {mean_max([len(p['solutions'][0]) for p in group]):>18}  "
                  f"{mean_max([len(p['reference_plan'].split()) for p in group]):>11}")


def to_jsonl(splits: dict[str, list[dict]]) -> str:
    """The splits as JSON lines with a "split" field: the file that `--data synthetic:PATH` loads."""
    return "".join(json.dumps({"split": split, **p}) + "\n" for split in SPLITS for p in splits[split])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="generator seed; the same seed always gives the same splits (default 0)")
    parser.add_argument("--sizes", type=int, nargs=3, default=DEFAULT_SIZES, metavar=("TRAIN", "VALID", "TEST"),
                        help="number of problems in the train, valid and test splits (valid and test: split evenly over the three tiers; "
                             f"default {' '.join(map(str, DEFAULT_SIZES))})")
    parser.add_argument("--mix", choices=list(MIXES), default=DEFAULT_MIX,
                        help="difficulty: " + "; ".join(f"{name}, {len(m.primitives)} primitives and {min(m.shares)}-{max(m.shares)} steps"
                                                        for name, m in MIXES.items()) +
                             f" (default {DEFAULT_MIX}: the default benchmark; --check checks as a solver of this mix)")
    parser.add_argument("--split", choices=SPLITS, default=None, help="split that --show prints from (default train) and --check checks (default all)")
    parser.add_argument("--show", type=int, default=0, metavar="N", help="print the first N problems of --split readably (default 0: none)")
    parser.add_argument("--check", action="store_true", help="enumerate, from each problem record alone, every chain of primitives that fits its "
                        "statement and public examples, and print the share of problems where all of them agree on the hidden tests")
    parser.add_argument("--records", default="", metavar="FILE", help="with --check: check the problems of this file "
                        "(JSON lines with a \"split\" field, as --out and data.py's cache write them) instead of generating")
    parser.add_argument("--out", default="", metavar="FILE", help="write the splits as JSON lines to FILE (train with --data synthetic:FILE)")
    parser.add_argument("--stats", action="store_true", help="print counts, generation time and lengths per difficulty and tier (the default when nothing else is asked)")
    args = parser.parse_args()
    if args.records:
        if not args.check:
            parser.error("--records goes with --check")
        splits = {s: [] for s in ([args.split] if args.split else SPLITS)}
        n = 0
        try:
            with open(args.records) as f:
                for n, line in enumerate(f, 1):
                    row = json.loads(line)
                    splits.get(row["split"], []).append(row)
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(f"synthetic.py --records {args.records}: {f'line {n}: ' if n else ''}"
                  f"not a file of problem records ({error!r})", file=sys.stderr)
            sys.exit(2)
        print("\n".join(check(splits, args.mix)))
        return
    try:
        start = time.time()
        splits = generate(args.seed, tuple(args.sizes), progress=True, mix=args.mix)
        seconds = time.time() - start
    except SyntheticError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    if args.out:
        path = Path(args.out)
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(to_jsonl(splits))
        partial.replace(path)
    for problem in splits[args.split or "train"][:args.show]:
        show(problem)
    if args.check:
        print("\n".join(check({s: splits[s] for s in ([args.split] if args.split else SPLITS)}, args.mix)))
    if args.stats or not (args.show or args.check or args.out):
        print_stats(splits, seconds, MIXES[args.mix])


if __name__ == "__main__":
    main()
