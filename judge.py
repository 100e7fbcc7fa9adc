"""Deciding verdicts: the comparison rules, the assert-to-call conversion, and judging what the
sandbox observed. Everything here runs in the parent (the caller of sandbox.Pool); nothing here
starts a process. sandbox.py runs the programs and hands back raw observations (stdout, stderr,
result records, exit status, timing); `decide_verdict` turns them into a `Verdict`.

Tamper-proofing: the parent decides; expected values never enter a worker.
- stdin/stdout: stdout is compared here (rules in `outputs_match`).
- call tests: the runner serialises the return value into plain data (see sandbox.py); it is
  rebuilt here (`_decode`) and compared with the expected JSON value (`_call_matches`), so an
  object whose `__eq__` always returns True cannot pass.
- assert tests: `assert E == L`, `L == E`, `E is True/False/None`, `E`, `not E`, `math.isclose(E, L)`,
  `abs(E - L) < t`, and `set/sorted/list/tuple/frozenset/len(E) == L`, with or without a message, in
  MBPP test lists or a HumanEval `check(candidate)` body, become "evaluate E in the runner, compare
  with the literal L in the parent" (`convert_asserts`). E may not contain comparisons or boolean
  operators (those would let program objects decide). Other asserts run in the runner, and pass
  only when the runner hands back the worker's nonce for that test (see sandbox.py).

A program with zero executed tests never counts as passed (status harness_error).

Two comparisons (COMPARISONS): "strict" (`outputs_match`) and "apps" (`outputs_match_apps`, the
APPS harness's lenient rules, used by default for APPS problems so that numbers compare with the
papers). Report figures other scripts call: `apps_accuracy` (APPS's test case average and strict
accuracy) and `status_counts` / `format_status_counts` (programs per status).
"""
from __future__ import annotations

import ast
import functools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("passed", "wrong_answer", "runtime_error", "syntax_error", "timeout", "memory_limit",
            "output_limit", "harness_error")
MESSAGE_LEN = 300               # characters of a verdict's message
FLOAT_TOLERANCE = 1e-6          # absolute or relative, for expected tokens that are floats


@dataclass
class Verdict:
    passed: bool
    status: str                 # one of STATUSES
    tests: list[str] = field(default_factory=list)   # per-test statuses (STATUSES or "skipped")
    message: str = ""           # the first failure, truncated
    time: float = 0.0           # seconds the program's runs took

# ----------------------------------------------------------------------------- comparison rules (parent)


_FLOAT_TOKEN = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][+-]?\d+)")


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _tokens_match(expected: str, actual: str) -> bool:
    exp, act = expected.split(), actual.split()
    if len(exp) != len(act):
        return False
    for e, a in zip(exp, act):
        if e == a:
            continue
        if not _FLOAT_TOKEN.fullmatch(e):
            return False
        try:
            ev, av = float(e), float(a)
        except ValueError:
            return False
        if not abs(ev - av) <= FLOAT_TOLERANCE * max(1.0, abs(ev)):
            return False
    return True


def outputs_match(expected: str, actual: str) -> bool:
    """Strict stdout comparison: lines compared in order after stripping trailing whitespace and
    dropping trailing empty lines. Only a line whose expected text holds a float token (one with a
    '.' or an exponent) is compared token by token instead: the same number of whitespace-separated
    tokens, float tokens within 1e-6 absolute or relative, all other tokens exact. No
    order-insensitive matching."""
    exp, act = _lines(expected), _lines(actual)
    return len(exp) == len(act) and all(
        e == a or (any(_FLOAT_TOKEN.fullmatch(t) for t in e.split()) and _tokens_match(e, a))
        for e, a in zip(exp, act))



COMPARISONS = ("strict", "apps")   # stdout/return-value rules; "apps" is the default for APPS problems


def _float_list(lines: list[str]) -> list[float] | None:
    try:
        return [float(line) for line in lines]
    except ValueError:
        return None


def _rounded_sets(line_sets: set[frozenset]) -> set[frozenset] | None:
    try:
        return {frozenset(round(float(t), 3) for t in s) for s in line_sets}
    except ValueError:
        return None


def outputs_match_apps(expected: str, actual: str) -> bool:
    """The APPS harness's stdout rule (hendrycks/apps eval/testing_util.py), for numbers comparable
    with papers that report APPS: accept when any of these holds, tried in order:
    1. equal after stripping both ends, or after also stripping every line of the output;
    2. the non-empty lines of the output equal the non-empty lines of the expected text, each
       expected line stripped (output lines are not);
    3. every such line is one number, and they agree within numpy.allclose's tolerance
       (absolute 1e-8 plus relative 1e-5 of the expected value);
    4. as sets of lines, each line a set of whitespace-separated tokens: line order, token order
       and repeats are all ignored;
    5. as 4, with every token a number rounded to 3 decimals.
    4 and 5 accept some wrong answers (e.g. a permutation of the right lines); that is the
    harness the benchmark's published numbers were measured with."""
    out = actual.splitlines()
    if "\n".join(out).strip() == expected.strip() or "\n".join(line.strip() for line in out).strip() == expected.strip():
        return True
    want = [line.strip() for line in expected.split("\n") if line]
    if out == want:
        return True
    out = [line for line in out if line]
    if out == want:
        return True
    got_f, want_f = _float_list(out), _float_list(want)
    if got_f is not None and want_f is not None and len(got_f) == len(want_f) and all(
            g == w or abs(g - w) <= 1e-8 + 1e-5 * abs(w) for g, w in zip(got_f, want_f)):
        return True
    got_sets = {frozenset(line.split()) for line in out if line.split()}
    want_sets = {frozenset(line.split()) for line in want}
    if got_sets == want_sets:
        return True
    got_r, want_r = _rounded_sets(got_sets), _rounded_sets(want_sets)
    return got_r is not None and got_r == want_r

# ----------------------------------------------------------------------------- assert conversion (parent)


_PARENT_WRAPPERS = {"set": set, "frozenset": frozenset, "sorted": sorted, "list": list, "tuple": tuple,
                    "len": len, "dict": dict, "float": float, "int": int, "str": str}
_UNSAFE_IN_CHILD = (ast.Compare, ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr, ast.Await,
                    ast.Yield, ast.YieldFrom, ast.comprehension)


def _literal(node: ast.expr) -> tuple[bool, Any]:
    """(True, value) when node is a literal, or a safe wrapper of one such as set((1, 2))."""
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _PARENT_WRAPPERS
            and len(node.args) <= 1 and not node.keywords):
        ok, value = _literal(node.args[0]) if node.args else (True, ())
        if ok:
            try:
                return True, _PARENT_WRAPPERS[node.func.id](*([value] if node.args else []))
            except Exception:
                return False, None
    return False, None


def _child_safe(node: ast.expr) -> bool:
    return not any(isinstance(n, _UNSAFE_IN_CHILD) or (isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not))
                   for n in ast.walk(node))


def _actual(node: ast.expr) -> tuple[str | None, str] | None:
    """Split `wrapper(E)` into ("wrapper", source of E); E must be safe to evaluate in the runner."""
    wrap = None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _PARENT_WRAPPERS
            and len(node.args) == 1 and not node.keywords):
        wrap, node = node.func.id, node.args[0]
    if _literal(node)[0] or not _child_safe(node):
        return None
    return wrap, ast.unparse(node)


def _convert_one(test: ast.expr) -> tuple[str | None, tuple] | None:
    """One assert condition -> (expression the runner evaluates, parent-side check) or None."""
    ok, value = _literal(test)
    if ok:
        return None, ("const", bool(value))
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        split = _actual(test.operand)
        return (split[1], ("falsy", split[0])) if split else None
    if isinstance(test, ast.Call) and len(test.args) == 2 and (
            (isinstance(test.func, ast.Attribute) and test.func.attr == "isclose"
             and isinstance(test.func.value, ast.Name) and test.func.value.id == "math")
            or (isinstance(test.func, ast.Name) and test.func.id == "isclose")):
        kwargs = {}
        for kw in test.keywords:
            ok, kv = _literal(kw.value)
            if not ok or kw.arg not in ("rel_tol", "abs_tol"):
                return None
            kwargs[kw.arg] = kv
        for a, b in ((test.args[0], test.args[1]), (test.args[1], test.args[0])):
            ok, expected = _literal(b)
            split = _actual(a) if ok else None
            if split and split[0] is None:
                return split[1], ("isclose", expected, kwargs)
        return None
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(op, ast.Eq):
            for a, b in ((left, right), (right, left)):
                ok, expected = _literal(b)
                split = _actual(a) if ok else None
                if split:
                    return split[1], ("eq", split[0], expected)
            return None
        if isinstance(op, ast.Is) and isinstance(right, ast.Constant) and right.value in (True, False, None):
            split = _actual(left)
            return (split[1], ("is", split[0], right.value)) if split else None
        if isinstance(op, (ast.Lt, ast.LtE)) and isinstance(left, ast.Call) and isinstance(left.func, ast.Name) \
                and left.func.id == "abs" and len(left.args) == 1 and isinstance(left.args[0], ast.BinOp) \
                and isinstance(left.args[0].op, ast.Sub):
            ok_tol, tol = _literal(right)
            diff = left.args[0]
            for a, b in ((diff.left, diff.right), (diff.right, diff.left)):
                ok, expected = _literal(b)
                split = _actual(a) if ok and ok_tol else None
                if split and split[0] is None:
                    return split[1], ("absdiff", expected, tol, isinstance(op, ast.Lt))
        return None
    split = _actual(test)
    return (split[1], ("truthy", split[0])) if split else None


@functools.lru_cache(maxsize=4096)
def convert_asserts(source: str) -> tuple[list[str], list[tuple[str | None, dict, tuple]]] | None:
    """Assert-test source -> (import statements to run first, [(expr, names to bind, check)]), or
    None when any statement cannot be decided in the parent. Handles plain assert lists (MBPP) and
    HumanEval's `def check(candidate): ...` followed by `check(entry_point)`."""
    try:
        module = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    imports, checks, body, bind = [], [], [], {}
    stmts = list(module.body)
    if stmts and isinstance(stmts[-1], ast.Expr) and isinstance(stmts[-1].value, ast.Call):
        call = stmts[-1].value
        defs = [s for s in stmts if isinstance(s, ast.FunctionDef) and isinstance(call.func, ast.Name)
                and s.name == call.func.id]
        if len(defs) != 1 or len(call.args) != 1 or not isinstance(call.args[0], ast.Name) or call.keywords:
            return None
        check_def = defs[0]
        if len(check_def.args.args) != 1 or check_def.decorator_list:
            return None
        bind = {check_def.args.args[0].arg: call.args[0].id}
        for s in stmts[:-1]:
            if s is check_def or isinstance(s, (ast.Import, ast.ImportFrom)):
                imports += [ast.unparse(s)] if s is not check_def else []
            elif not (isinstance(s, (ast.Assign, ast.Expr)) and _literal(s.value)[0]):
                return None
        body = check_def.body
    else:
        body = stmts
    for s in body:
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            imports.append(ast.unparse(s))
        elif isinstance(s, ast.Expr) and _literal(s.value)[0] or isinstance(s, ast.Pass):
            continue
        elif isinstance(s, ast.Assert):
            converted = _convert_one(s.test)
            if converted is None:
                return None
            checks.append((converted[0], bind, converted[1]))
        else:
            return None
    return (imports, checks) if checks else None


def _decode(v: Any) -> Any:
    """Rebuild a value the runner serialised (tags: l list, t tuple, s set, f frozenset, d dict,
    b bytes, c complex, i big int)."""
    if not isinstance(v, dict):
        return v
    (tag, x), = v.items()
    if tag == "l":
        return [_decode(e) for e in x]
    if tag == "t":
        return tuple(_decode(e) for e in x)
    if tag == "s":
        return {_decode(e) for e in x}
    if tag == "f":
        return frozenset(_decode(e) for e in x)
    if tag == "d":
        return {_decode(k): _decode(e) for k, e in x}
    if tag == "b":
        return x.encode("latin-1")
    if tag == "c":
        return complex(*x)
    return int(x, 16)


def _check(check: tuple, actual: Any) -> bool:
    kind = check[0]
    if kind == "const":
        return check[1]
    if kind in ("eq", "is", "truthy", "falsy") and check[1] is not None:
        actual = _PARENT_WRAPPERS[check[1]](actual)
    if kind == "eq":
        return actual == check[2]
    if kind == "is":
        return actual is check[2]
    if kind == "truthy":
        return bool(actual)
    if kind == "falsy":
        return not actual
    if kind == "isclose":
        return isinstance(actual, (int, float)) and math.isclose(actual, check[1], **check[2])
    expected, tol, strict = check[1:]
    if not isinstance(actual, (int, float, complex)):
        return False
    return abs(actual - expected) < tol if strict else abs(actual - expected) <= tol


def _jsonish(v: Any) -> Any:
    """What a return value looks like after a JSON round trip (APPS expectations are JSON)."""
    if isinstance(v, (list, tuple)):
        return [_jsonish(e) for e in v]
    if isinstance(v, dict):
        return {k if isinstance(k, str) else json.dumps(k): _jsonish(e) for k, e in v.items()}
    return v


def _call_matches(expected: Any, actual: Any, comparison: str = "strict") -> bool:
    """Call-test rule: equal after a JSON round trip of the return value (tuples become lists, dict
    keys strings), since expectations are JSON. APPS's one-element-list wrappers are data.py's job;
    the "apps" comparison also accepts either side of such a wrapper, as the APPS harness does."""
    actual = _jsonish(actual)
    if actual == expected:
        return True
    return comparison == "apps" and (actual == [expected] or (
        isinstance(expected, list) and len(expected) > 0 and actual == expected[0]))

# ----------------------------------------------------------------------------- judging a unit's observations (parent)


def _error_status(error: list) -> str:
    return "memory_limit" if error and error[0] == "MemoryError" else "runtime_error"


def _judge_stdio(res: dict, expected: str, comparison: str) -> tuple[str, str]:
    records = res.get("records", [])
    events = {r.get("event") for r in records if isinstance(r, dict)}
    error = next((r["error"] for r in records if isinstance(r, dict) and "error" in r), None)
    if res.get("over"):
        return "output_limit", f"{res['over']} exceeded its limit"
    if res.get("timed_out"):
        return "timeout", "time limit exceeded"
    if "syntax_error" in events:
        return "syntax_error", ": ".join(error)
    if error:
        return _error_status(error), ": ".join(error)
    if "done" not in events and res.get("exit") != 0:
        return "runtime_error", f"exit status {res.get('exit')}: {res.get('stderr', '')[-200:]}"
    if (outputs_match_apps if comparison == "apps" else outputs_match)(expected, res.get("stdout", "")):
        return "passed", ""
    return "wrong_answer", f"expected {expected[:100]!r}, got {res.get('stdout', '')[:100]!r}"


def _judge_batch(res: dict, judges: list, comparison: str) -> list[tuple[str, str]]:
    records = [r for r in res.get("records", []) if isinstance(r, dict)]
    first = records[0] if records else {}
    if first.get("event") == "syntax_error":
        return [("syntax_error", ": ".join(first["error"]))] * len(judges)
    if first.get("event") == "load_error":
        return [(_error_status(first["error"]), "while loading: " + ": ".join(first["error"]))] * len(judges)
    by_index = {r.get("index"): r.get("steps", []) for r in records if r.get("event") == "test"}
    out, stopped = [], False
    for kind, _, expected in judges:
        index = len(out)
        if stopped:
            out.append(("skipped", ""))
            continue
        if index not in by_index:
            stopped = True
            if res.get("over"):
                out.append(("output_limit", f"{res['over']} exceeded its limit"))
            elif res.get("timed_out"):
                out.append(("timeout", "time limit exceeded"))
            else:
                out.append(("runtime_error", f"exited before the test finished (exit {res.get('exit')})"
                            + (": " + res["stderr"][-200:] if res.get("stderr") else "")))
            continue
        out.append(_judge_steps(kind, expected, by_index[index], comparison))
    return out


def _judge_steps(kind: str, expected: Any, steps: list, comparison: str) -> tuple[str, str]:
    values = []
    for step in steps:
        if not isinstance(step, dict):
            return "harness_error", "malformed step record"
        if "error" in step:
            return _error_status(step["error"]), ": ".join(map(str, step["error"]))
        if "unserialisable" in step:
            return "wrong_answer", f"returned a value that is not plain data ({step['unserialisable']})"
        if "nonce" in step and step["nonce"] is not True:
            return "runtime_error", "the test did not run to completion"
        if "value" in step:
            values.append(_decode(step["value"]))
    if kind == "raw":
        return ("passed", "") if steps and steps[-1].get("nonce") is True else ("runtime_error", "no completion signal")
    if kind == "call":
        if not values:
            return "runtime_error", "no return value"
        ok = _call_matches(expected, values[0], comparison)
        return ("passed", "") if ok else ("wrong_answer", f"expected {expected!r:.100}, got {values[0]!r:.100}")
    checks = expected
    live = [c for c in checks if c[0] != "const"]
    if len(values) != len(live):
        return "runtime_error", "not every assert ran"
    it = iter(values)
    for check in checks:
        actual = None if check[0] == "const" else next(it)
        try:
            ok = _check(check, actual)
        except Exception:
            ok = False
        if not ok:
            return "wrong_answer", f"assert failed: got {actual!r:.100} ({check[0]} {check[2:]!r:.100})"
    return "passed", ""


def decide_verdict(judges: list[tuple], results: list[dict], comparison: str = "strict") -> Verdict:
    """The verdict from the worker's results, one per unit sandbox.py planned. `judges` holds one
    (kind, index, expected) per test: index is the stdio test's unit, or the test's position in the
    batch unit (always the last unit). `comparison` is one of COMPARISONS."""
    if comparison not in COMPARISONS:
        raise ValueError(f"comparison must be one of {COMPARISONS}, got {comparison!r}")
    batch_judges = [j for j in judges if j[0] != "stdio"]
    batch_res = results[-1] if batch_judges else {}
    if "harness_error" in batch_res:
        batch_out = iter([("harness_error", batch_res["harness_error"])] * len(batch_judges))
    else:
        batch_out = iter(_judge_batch(batch_res, batch_judges, comparison) if batch_judges else [])
    per_test = []
    for kind, index, expected in judges:
        if kind != "stdio":
            per_test.append(next(batch_out))
            continue
        res = results[index]
        if "harness_error" in res:
            per_test.append(("harness_error", res["harness_error"]))
        elif res.get("skipped") and "records" not in res:
            per_test.append(("skipped", ""))
        else:
            per_test.append(_judge_stdio(res, expected, comparison))
    elapsed = sum(r.get("time", 0.0) for r in results)
    statuses = [s for s, _ in per_test]
    failure = next(((i, s, m) for i, (s, m) in enumerate(per_test) if s not in ("passed", "skipped")), None)
    if not per_test or "passed" not in statuses and failure is None:
        return Verdict(False, "harness_error", statuses, "no tests were run", elapsed)
    if failure is None:
        return Verdict(True, "passed", statuses, "", elapsed)
    i, status, message = failure
    return Verdict(False, status, statuses, f"test {i}: {message}"[:MESSAGE_LEN], elapsed)

# ----------------------------------------------------------------------------- report figures (parent)

BREAKDOWN = ("passed", "wrong_answer", "runtime_error", "syntax_error", "timeout", "memory_limit",
             "output_limit", "harness_error")   # the order reports list program statuses in


def status_counts(statuses) -> dict[str, int]:
    """Programs per final status (Verdict.status), every status of BREAKDOWN present, in its order."""
    counts = dict.fromkeys(BREAKDOWN, 0)
    for status in statuses:
        if status not in counts:
            raise ValueError(f"unknown verdict status {status!r}")
        counts[status] += 1
    return counts


def format_status_counts(counts: dict[str, int]) -> str:
    """One line: 'programs 40: passed 12 (30.0%), wrong answer 20 (50.0%), ...' (zeros included)."""
    total = sum(counts.values())
    parts = [f"{name.replace('_', ' ')} {n} ({100 * n / total:.1f}%)" if total else f"{name.replace('_', ' ')} 0"
             for name, n in counts.items()]
    return f"programs {total}: " + ", ".join(parts)


def apps_accuracy(tests_by_problem: dict[str, list[list[str]]]) -> tuple[float, float]:
    """APPS's two figures (hendrycks/apps eval/test_one_solution.py), as fractions: (test case
    average, strict accuracy). `tests_by_problem` maps a problem to its programs' per-test statuses
    (Verdict.tests). Test case average: per program the share of tests passed, averaged over the
    problem's programs, then over problems; strict accuracy: per program 1 if every test passed,
    averaged the same way. With one program per problem these are APPS's numbers; with several,
    the expected value for one program drawn at random (strict accuracy then equals pass@1). A
    test not run (skipped after a timeout, or every test of a program that does not compile)
    counts as failed, as in APPS."""
    if not tests_by_problem:
        raise ValueError("no problems to score")
    average, strict = 0.0, 0.0
    for problem, programs in tests_by_problem.items():
        if not programs or not all(programs):
            raise ValueError(f"problem {problem}: need at least one program, each with at least one test")
        average += sum(t.count("passed") / len(t) for t in programs) / len(programs)
        strict += sum(all(s == "passed" for s in t) for t in programs) / len(programs)
    return average / len(tests_by_problem), strict / len(tests_by_problem)
