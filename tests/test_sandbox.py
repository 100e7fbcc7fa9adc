"""Tests of judge.py (comparison rules, assert conversion) and sandbox.py: test kinds, verdicts,
the hostile-program suite (each checks the verdict and that nothing leaked), the CLI, pass@k, and
real benchmark data (when ../shared/data exists)."""
import itertools
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
from concurrent.futures import Future
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import judge  # noqa: E402
import sandbox  # noqa: E402
import score  # noqa: E402
from codeplan import pass_at_k  # noqa: E402
from problems import Problem, Test  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SECRET = "codeplan-test-secret-7f3a"


@pytest.fixture(scope="module")
def pool():
    os.environ["CODEPLAN_SANDBOX_SECRET"] = SECRET   # set before the workers start: they must not inherit it
    with sandbox.Pool(workers=2, timeout=1.0, memory_mb=256) as p:
        yield p
    os.environ.pop("CODEPLAN_SANDBOX_SECRET")


def processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, uid) of every live process (zombies left out)."""
    table = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if "Z" not in fields.get("State", ""):
            table[int(status.parent.name)] = (int(fields["PPid"]), int(fields["Uid"].split()[0]))
    return table


class UserPool:
    """A sandbox.Pool run by an ordinary user (uid `uid`, no capabilities) in a server process that
    the root test suite starts through tests/unprivileged.py; `submit` has Pool's signature."""

    def __init__(self, uid: int, userns_allowed: bool, weak: bool = False):
        self.uid = uid
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "unprivileged.py"), "launch", str(ROOT), str(uid),
             "userns" if userns_allowed else "no-userns", "weak" if weak else "strict"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.hello = json.loads(line) if line else {"failed": self.proc.communicate(timeout=60)[1]}
        # a stand-in for the user's shell and editor: a process of the same uid outside the sandbox
        self.bystander = subprocess.Popen(["sleep", "600"], user=uid, group=uid, extra_groups=[])
        self.baseline = {pid for pid, (_, u) in processes().items() if u == uid}

    def submit(self, problem, code, tests="hidden", timeout=None):
        f = Future()
        f.set_result(judge.Verdict(**self.ask({"problem": problem.to_dict(), "code": code, "tests": tests,
                                                "timeout": 1.0 if timeout is None else timeout})))
        return f

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the ordinary user's harness is gone (killed by a program?), exit {self.proc.wait(timeout=60)}"
        return json.loads(line)

    def alive(self) -> bool:
        return self.proc.poll() is None and self.bystander.poll() is None

    def close(self) -> None:
        self.bystander.kill()
        self.bystander.wait()
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def free_uid() -> int:
    """A uid no process uses: the user-mode tests count its processes."""
    used = {u for _, u in processes().values()}
    return next(u for u in range(60000 + os.getpid() % 4000, 65000) if u not in used)


@pytest.fixture(scope="module", params=["caller", "ordinary user"])
def hostile_pool(request, pool):
    """The hostile-program battery runs on the suite's own pool and, when the suite runs as root, on
    a pool run by an ordinary user (a fresh uid) as most researchers run it."""
    if request.param == "caller":
        yield pool
        return
    if os.geteuid() != 0:
        pytest.skip("the suite runs as an ordinary user already: the 'caller' pool is that case")
    user_pool = UserPool(free_uid(), userns_allowed=True)   # its server gets the secret the pool fixture set
    if "failed" in user_pool.hello:
        user_pool.close()
        pytest.skip(f"cannot start a process as an ordinary user here: {user_pool.hello['failed'][-300:]}")
    if "refused" in user_pool.hello:
        user_pool.close()
        pytest.skip("unprivileged user namespaces are unavailable on this machine: the sandbox refuses, "
                    "which test_ordinary_user_without_user_namespaces_is_refused checks")
    try:
        assert user_pool.hello["mode"] == "user namespace" and all(user_pool.hello["layers"].values())
        yield user_pool
        assert user_pool.alive()
    finally:
        user_pool.close()


def sandbox_processes(pool) -> list[int]:
    """Live processes a program could have left behind: for a root pool, any process of a sandbox
    uid; for an ordinary user's pool, any process of that uid that was not there before; for the
    suite's own pool when the suite is not root, anything below the workers' fork servers."""
    table = processes()
    if isinstance(pool, UserPool):
        return [pid for pid, (_, uid) in table.items() if uid == pool.uid and pid not in pool.baseline]
    if os.geteuid() == 0:
        uids = {w.uid for w in pool._workers}
        return [pid for pid, (_, uid) in table.items() if uid in uids]
    servers = {w.proc.pid for w in pool._workers}
    if pool.layers["pid"]:   # the fork server is PID 1 of its namespace, a child of the process started
        servers |= {pid for pid, (ppid, _) in table.items() if ppid in servers}

    def below_a_server(pid: int) -> bool:
        while pid in table and pid not in servers:
            pid = table[pid][0]
        return pid in servers
    return [pid for pid in table if pid not in servers and below_a_server(pid)]


def stdio(*pairs) -> Problem:
    return Problem(id="stdio", question="", hidden_tests=[Test("stdio", i, o) for i, o in pairs])


def call(fn_name, *pairs) -> Problem:
    return Problem(id="call", question="", fn_name=fn_name, hidden_tests=[Test("call", i, o) for i, o in pairs])


def asserts(*sources, setup="") -> Problem:
    return Problem(id="assert", question="", hidden_tests=[Test("assert", s) for s in sources], test_setup=setup)


def run(pool, problem, code, tests="hidden", timeout=None):
    return pool.submit(problem, textwrap.dedent(code), tests, timeout).result()


ADD_STDIO = stdio(("1 2\n", "3\n"), ("10 -4\n", "6\n"))
ADD = "a, b = map(int, input().split())\nprint(a + b)\n"

# ----------------------------------------------------------------------------- comparison rules


@pytest.mark.parametrize("expected, actual, ok", [
    ("3\n", "3", True),
    ("1 2\n3\n", "1 2   \n3\n\n\n", True),          # trailing whitespace and trailing empty lines
    ("1 2\n3\n", "3\n1 2\n", False),                 # order matters
    ("1 2\n", " 1 2\n", False),                       # leading whitespace is significant...
    ("0.5 1\n", "0.5000001 1\n", True),               # ...floats where the expected token is a float
    ("0.5 1\n", "0.5 1.0000001\n", False),            # an integer token is compared exactly
    ("1e-3\n", "0.001\n", True),
    ("0.5\n", "0.51\n", False),
    ("2.5\n", "abc\n", False),
    ("a\n\nb\n", "a\nb\n", False),                    # inner empty lines count
    ("", "", True),
    ("x\r\ny\r\n", "x\ny\n", True),
])
def test_outputs_match(expected, actual, ok):
    assert judge.outputs_match(expected, actual) is ok


@pytest.mark.parametrize("source, convertible", [
    ("assert f(1) == 2", True),
    ("assert f(1) == 2, 'msg'", True),
    ("assert (f(1)) == [1, (2, 3)]", True),
    ("assert 2 == f(1)", True),
    ("assert not f(1)", True),
    ("assert f(1)", True),
    ("assert f(1) is True", True),
    ("assert math.isclose(f(1), 2.5, rel_tol=0.001)", True),
    ("assert abs(f(1) - 2.5) < 1e-6", True),
    ("assert set(f(1)) == set([1, 2])", True),
    ("assert sorted(f(1)) == [1, 2]", True),
    ("def check(candidate):\n    assert candidate(1) == 2\n    assert True\ncheck(f)\n", True),
    ("assert f(1) == g(2)", False),                   # expected side is not a literal
    ("assert f(1) == 2 or f(1) == 3", False),         # boolean operators would run in the child
    ("assert f(1) in (2, 3)", False),
    ("for i in range(3):\n    assert f(i) == i\n", False),
])
def test_convert_asserts(source, convertible):
    assert (judge.convert_asserts(source) is not None) is convertible


@pytest.mark.parametrize("expected, actual, ok", [
    ("1 2\n3\n", " 1 2\n3  \n\n", True),           # 1: whole text, and every line, stripped
    ("a\n\nb\n", "a\nb\n", True),                  # 2: empty lines dropped
    ("a\n b\n", "a\nb\n", True),                    # 2: expected lines stripped
    ("0.5\n2\n", "0.500004\n2.0\n", True),          # 3: one number per line, allclose
    ("0.5\n", "0.5006\n", False),                    # outside 1e-5 relative, and rounds to 0.501
    ("1 2\n3 4\n", "4 3\n2 1\n", True),             # 4: lines and tokens as sets
    ("1 1 2\n", "2 1\n", True),                      # 4: repeats ignored
    ("0.1234 5\n", "5 0.12341\n", True),             # 5: numbers rounded to 3 decimals
    ("0.123 5\n", "5 0.124\n", False),
    ("1 2\n", "1 3\n", False),
    ("YES\n", "yes\n", False),                       # case still matters
    ("3\n", "", False),
])
def test_outputs_match_apps(expected, actual, ok):
    assert judge.outputs_match_apps(expected, actual) is ok


def test_apps_comparison_is_the_default_for_apps_data(pool):
    swapped = "print('2 1')\nprint('3')\n"      # right lines, tokens in another order
    for source, comparison, passed in (("apps", None, True), ("mbpp", None, False)):
        p = Problem(id="io", question="", source=source, hidden_tests=[Test("stdio", "", "1 2\n3\n")])
        assert run(pool, p, swapped).passed is passed
    p = Problem(id="io", question="", source="apps", hidden_tests=[Test("stdio", "", "1 2\n3\n")])
    with sandbox.Pool(workers=1, timeout=1.0, memory_mb=256, comparison="strict") as strict:
        assert run(strict, p, swapped).status == "wrong_answer"
    wrapped = Problem(id="c", question="", source="apps", fn_name="f", hidden_tests=[Test("call", [1], [2, 3])])
    assert run(pool, wrapped, "def f(x):\n    return 2\n").passed          # APPS also accepts outputs[i][0]
    assert not run(pool, call("f", ([1], [2, 3])), "def f(x):\n    return 2\n").passed   # strict does not
    with pytest.raises(sandbox.SandboxError):
        sandbox.Pool(workers=1, comparison="loose")


def test_apps_accuracy_and_status_counts():
    tests = {"a": [["passed", "wrong_answer", "passed", "passed"]],                  # 3/4, not strict
             "b": [["passed", "passed"], ["timeout", "skipped"]],                    # (1 + 0)/2, strict 1/2
             "c": [["syntax_error"] * 3]}                                             # 0
    average, strict = judge.apps_accuracy(tests)
    assert average == pytest.approx((0.75 + 0.5 + 0) / 3) and strict == pytest.approx((0 + 0.5 + 0) / 3)
    with pytest.raises(ValueError):
        judge.apps_accuracy({"a": []})
    counts = judge.status_counts(["passed", "timeout", "passed", "memory_limit"])
    assert list(counts) == list(judge.BREAKDOWN) and counts["passed"] == 2 and counts["wrong_answer"] == 0
    line = judge.format_status_counts(counts)
    assert line.startswith("programs 4: passed 2 (50.0%)") and "timeout 1 (25.0%)" in line and "memory limit 1" in line
    with pytest.raises(ValueError):
        judge.status_counts(["exploded"])


# ----------------------------------------------------------------------------- test kinds and verdicts


def test_stdio_pass_and_wrong_answer(pool):
    assert run(pool, ADD_STDIO, ADD).status == "passed"
    v = run(pool, ADD_STDIO, "a, b = map(int, input().split())\nprint(a - b)\n")
    assert (v.passed, v.status, v.tests) == (False, "wrong_answer", ["wrong_answer", "wrong_answer"])
    assert run(pool, ADD_STDIO, "import sys\nprint(sum(map(int, sys.stdin.read().split())))\nsys.exit(0)").passed
    assert run(pool, stdio(("2\n", "1\n2\n")), "for i in range(int(input())): print(i + 1)").passed


def test_statuses(pool):
    assert run(pool, ADD_STDIO, "print(1 +").status == "syntax_error"
    v = run(pool, ADD_STDIO, "print(1 / 0)")
    assert v.status == "runtime_error" and "ZeroDivisionError" in v.message
    assert run(pool, ADD_STDIO, "import sys\nsys.exit(3)").status == "runtime_error"
    v = run(pool, ADD_STDIO, "while True:\n    pass\n")
    assert (v.status, v.tests) == ("timeout", ["timeout", "skipped"])
    assert run(pool, ADD_STDIO, "x = ' ' * (1 << 40)").status == "memory_limit"
    assert run(pool, ADD_STDIO, "while True:\n    print('x' * 1000)\n").status == "output_limit"
    v = run(pool, Problem(id="empty", question=""), ADD)
    assert not v.passed and v.status == "harness_error"   # zero tests is never a pass


def test_call_tests(pool):
    p = call("add", ([1, 2], 3), ([[1], [2]], [1, 2]), ([(1, 2), [3]], [1, 2, 3]))
    assert run(pool, p, "def add(a, b):\n    return a + b\n").tests == ["passed"] * 3
    assert run(pool, p, "class Solution:\n    def add(self, a: List[int], b) -> int:\n        return a + b\n").passed
    assert run(pool, call("pair", ([1], [1, 1])), "def pair(x):\n    return (x, x)\n").passed   # tuple ~ JSON list
    v = run(pool, p, "def add(a, b):\n    return a - b if isinstance(a, int) else a + b\n")
    assert v.tests == ["wrong_answer", "passed", "passed"]
    assert run(pool, call("f", ([], {"a": 1})), "def f():\n    return {'a': 1.0}\n").passed


def test_assert_tests(pool):
    p = asserts("assert add(1, 2) == 3", "assert set(pairs(2)) == set([(0, 1), (1, 0)])",
                "assert math.isclose(half(3), 1.5, rel_tol=1e-9)", setup="import math")
    code = "def add(a, b): return a + b\ndef pairs(n): return [(0, 1), (1, 0)]\ndef half(x): return x / 2\n"
    assert run(pool, p, code).tests == ["passed"] * 3
    v = run(pool, p, code.replace("a + b", "a * b"))
    assert v.tests == ["wrong_answer", "passed", "passed"] and v.status == "wrong_answer"
    loop = asserts("for i in range(3):\n    assert add(i, 0) == i\n")   # not convertible: runs in the child
    assert run(pool, loop, "def add(a, b): return a + b").passed
    assert run(pool, loop, "def add(a, b): return a + b + 1").status == "runtime_error"   # AssertionError
    assert run(pool, asserts("assert add(1, 1) == 2"), "def add(a, b): return 2 if a == 1 else 0").passed


def test_humaneval_prompt_prepended(pool):
    prompt = "def inc(x):\n    \"\"\"Add one.\"\"\"\n"
    p = Problem(id="HumanEval/x", question=prompt, starter_code=prompt, fn_name="inc", source="humaneval",
                hidden_tests=[Test("assert", "def check(candidate):\n    assert candidate(1) == 2\n\ncheck(inc)\n")])
    assert pool.submit(p, "    return x + 1\n").result().passed       # a completion of the prompt
    assert run(pool, p, "def inc(x):\n    return x + 1\n").passed     # a full program
    assert not pool.submit(p, "    return x\n").result().passed


def test_public_tests_selected(pool):
    p = Problem(id="pub", question="", public_tests=[Test("stdio", "1 1\n", "2\n")],
                hidden_tests=[Test("stdio", "1 1\n", "3\n")])
    assert run(pool, p, ADD, tests="public").passed and not run(pool, p, ADD).passed

# ----------------------------------------------------------------------------- hostile programs


def test_infinite_loop_and_fork_bomb_leave_nothing(hostile_pool):
    assert run(hostile_pool, ADD_STDIO, "while True:\n    pass\n").status == "timeout"
    bomb = """
        import os, time
        for _ in range(12):
            try:
                os.fork()
            except OSError:
                pass
        time.sleep(30)
        """
    v = run(hostile_pool, ADD_STDIO, bomb)
    assert not v.passed and v.status == "timeout"
    assert sandbox_processes(hostile_pool) == []


def test_memory_bomb(hostile_pool):
    # a wide time limit: on a loaded machine the 256 MB must still run out before the clock does
    v = run(hostile_pool, ADD_STDIO, "chunks = []\nwhile True:\n    chunks.append(' ' * 10**7)\n", timeout=20.0)
    assert v.status == "memory_limit" and sandbox_processes(hostile_pool) == []


def test_setsid_orphan_is_killed(hostile_pool):
    orphan = """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(60)
            os._exit(0)
        a, b = map(int, input().split())
        print(a + b)
        """
    v = run(hostile_pool, ADD_STDIO, orphan)
    assert v.passed            # the orphan holds stdout open; the verdict does not wait for it
    assert sandbox_processes(hostile_pool) == []


def test_writing_and_deleting_outside_workdir(hostile_pool, tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    tmp_path.chmod(0o755)
    targets = [tmp_path / "pwned.txt", Path(f"/tmp/codeplan-pwned-{os.getpid()}"), ROOT / "pwned.txt"]
    code = f"""
        import os, shutil
        for path in {[str(t) for t in targets]!r}:
            try:
                open(path, "w").write("x")
            except OSError:
                pass
        for attempt in (lambda: os.remove({str(keep)!r}), lambda: shutil.rmtree({str(tmp_path)!r})):
            try:
                attempt()
            except OSError:
                pass
        open("inside.txt", "w").write("fine")
        print(open("inside.txt").read())
        """
    assert run(hostile_pool, stdio(("", "fine\n")), code).passed   # the working dir itself is writable
    assert [t for t in targets if t.exists()] == []
    assert keep.read_text() == "precious"
    if isinstance(hostile_pool, UserPool):   # the user's own files: writable for the user, not for its programs
        home = "/mnt/home"
        code = f"""
            import os
            for attempt in (lambda: open("{home}/pwned.txt", "w"), lambda: os.remove("{home}/keep.txt"),
                            lambda: os.chmod("{home}", 0o777)):
                try:
                    attempt()
                except OSError as e:
                    print(e.errno)
            """
        assert run(hostile_pool, stdio(("", "30\n30\n30\n")), code).passed   # EROFS, each time
        assert hostile_pool.ask({"home": 1}) == {"keep.txt": "precious"}


def test_parent_environment_is_invisible(hostile_pool):
    code = f"""
        import os, glob
        seen = {SECRET!r} in repr(dict(os.environ))
        for path in glob.glob("/proc/*/environ"):
            try:
                seen = seen or {SECRET!r} in open(path, errors="replace").read()
            except OSError:
                pass
        print("FOUND" if seen else "CLEAN")
        """
    v = run(hostile_pool, stdio(("", "CLEAN\n")), code)
    assert v.passed, v.message


def test_no_network(hostile_pool):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    code = """
        import socket
        port = int(input())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5)
            print("CONNECTED")
        except OSError:
            print("BLOCKED")
        """
    v = run(hostile_pool, stdio((f"{listener.getsockname()[1]}\n", "BLOCKED\n")), code)
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()
    assert v.passed, v.message


def test_early_exit_cannot_pass_asserts(hostile_pool):
    raw = asserts("for i in range(2):\n    assert add(i, 0) == i\n")
    converted = asserts("assert add(1, 2) == 3")
    exits = ["import os\nos._exit(0)\n",
             "import sys\nsys.exit(0)\n",
             "import atexit, sys\natexit.register(lambda: sys.exit(0))\ndef add(a, b):\n    raise SystemExit(0)\n",
             "import os\ndef add(a, b):\n    os._exit(0)\n",
             "import sys\ndef add(a, b):\n    sys.exit(0)\n"]
    for code in exits:
        for p in (raw, converted):
            v = run(hostile_pool, p, code)
            assert not v.passed and v.status == "runtime_error", (code, v)


def test_fake_markers_and_forged_records_fail(hostile_pool):
    forged = """
        import os, json
        print("passed")
        print(json.dumps({"event": "done"}))
        for fd in range(3, 10):
            try:
                os.write(fd, b'{"event": "test", "index": 0, "steps": [{"nonce": "00000000000000000000000000000000"}]}\\n')
            except OSError:
                pass
        os._exit(0)
        """
    assert not run(hostile_pool, asserts("for i in range(2):\n    assert add(i, 0) == i\n"), forged).passed
    assert not run(hostile_pool, ADD_STDIO, forged).passed


def test_always_equal_objects_and_patched_builtins_fail(hostile_pool):
    always = """
        class Anything(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        class Weird:
            def __eq__(self, other):
                return True
        def add(a, b):
            return Anything(0) if a else Weird()
        """
    assert run(hostile_pool, call("add", ([1, 2], 3)), always).status == "wrong_answer"
    assert run(hostile_pool, call("add", ([0, 2], 2)), always).status == "wrong_answer"
    assert run(hostile_pool, asserts("assert add(1, 2) == 3"), always).status == "wrong_answer"
    assert run(hostile_pool, asserts("assert add(0, 2) == 2"), always).status == "wrong_answer"
    patched = """
        import builtins, json
        builtins.type = lambda *a: int
        builtins.isinstance = lambda *a: True
        json.dumps = lambda *a, **k: '{"event": "test", "index": 0, "steps": [{"value": 3}]}'
        def add(a, b):
            return 0
        """
    assert run(hostile_pool, call("add", ([1, 2], 3)), patched).status == "wrong_answer"


def test_killing_the_parent_fails_and_pool_carries_on(hostile_pool):
    for code in ("import os\nos.kill(os.getppid(), 9)\nprint(3)\n",
                 "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint(3)\n",
                 "import os\nos.killpg(0, 9)\n",
                 "import os\nos.killpg(os.getpgid(os.getppid()), 9)\n",
                 "import os\nfor p in os.listdir('/proc'):\n    if p.isdigit() and int(p) != os.getpid():\n"
                 "        try:\n            os.kill(int(p), 9)\n        except OSError:\n            pass\nprint(3)\n"):
        v = run(hostile_pool, ADD_STDIO, code)
        assert not v.passed
    assert run(hostile_pool, ADD_STDIO, ADD).passed
    assert sandbox_processes(hostile_pool) == []
    if isinstance(hostile_pool, UserPool):
        assert hostile_pool.alive()   # the harness and the user's other process, same uid, both still there


def test_ordinary_user_without_user_namespaces_is_refused():
    """Where an ordinary user cannot make user namespaces (here: a user namespace whose
    max_user_namespaces is 0), a Pool refuses and names the missing layers; with the opt-in it runs."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a machine without user namespaces for an ordinary user")
    refused = UserPool(free_uid(), userns_allowed=False)
    refused.close()   # the server has exited already: it had nothing to serve
    if "failed" in refused.hello:
        pytest.skip(f"cannot start a process as an ordinary user here: {refused.hello['failed'][-300:]}")
    assert "refusing to run untrusted programs" in refused.hello["refused"]
    assert "network, pid, user, mount, proc" in refused.hello["refused"] and "--allow-weak-isolation" in refused.hello["refused"]
    weak = UserPool(free_uid(), userns_allowed=False, weak=True)
    try:
        assert weak.hello["mode"] == "none" and not any(weak.hello["layers"].values())
        assert run(weak, ADD_STDIO, ADD).passed
        if os.uname().machine in sandbox._SIGNAL_SYSCALLS:   # even then, no signal leaves the program's tree
            for target in ("-1", "os.getppid()", "-os.getpgid(os.getppid())"):
                code = f"import os\ntry:\n    os.kill({target}, 9)\nexcept PermissionError:\n    print(3)\n"
                assert run(weak, ADD_STDIO, code).tests[0] == "passed", target
            own = "import os\nos.kill(os.getpid(), 0)\nos.killpg(0, 0)\nif os.fork() == 0:\n" \
                  "    os.kill(os.getppid(), 0)\n    os._exit(0)\nos.wait()\nprint(3)\n"
            assert run(weak, ADD_STDIO, own).tests[0] == "passed"
            assert weak.alive()
    finally:
        weak.close()

# ----------------------------------------------------------------------------- pass@k and the CLI


def test_pass_at_k_matches_math_comb():
    for n, c, k in itertools.product(range(1, 16), range(0, 16), range(1, 16)):
        if c > n or k > n:
            continue
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12), (n, c, k)
    assert pass_at_k(200, 0, 100) == 0.0 and pass_at_k(10, 3, 8) == 1.0   # c=0; k > n-c
    assert pass_at_k(200, 13, 1) == pytest.approx(13 / 200)
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 6)


def test_cli_scores_samples(tmp_path):
    rows = [{"task_id": 1, "text": "add", "code": "def add(a, b):\n    return a + b\n",
             "test_list": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"], "test_setup_code": ""},
            {"task_id": 2, "text": "neg", "code": "def neg(a):\n    return -a\n",
             "test_list": ["assert neg(1) == -1"], "test_setup_code": ""},
            {"task_id": 3, "text": "unsampled", "code": "def one():\n    return 1\n",
             "test_list": ["assert one() == 1"], "test_setup_code": ""}]
    (tmp_path / "mbpp.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(s) + "\n" for s in [
        {"task_id": "1", "code": rows[0]["code"], "rank": 0, "plan": "add them"},
        {"task_id": "1", "code": "def add(a, b):\n    return a + b if a == 1 else 0\n"},
        {"task_id": 2, "code": "def neg(a):\n    return a\n"}, {"task_id": 2, "code": "while True: pass"}]))
    cmd = [sys.executable, str(ROOT / "sandbox.py"), "--data", f"mbpp:{tmp_path / 'mbpp.jsonl'}",
           "--samples", str(samples), "--k", "1,2,5", "--timeout", "0.5", "--workers", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in (tmp_path / "samples_results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in results] == ["passed", "wrong_answer", "wrong_answer", "timeout"]
    assert results[0]["tests"] == ["passed", "passed"] and results[0]["task_id"] == "1"
    # identifying fields of a sample (rank, plan_id) are carried over; nothing else of it is
    assert list(results[0]) == ["task_id", "rank", "passed", "status", "tests", "time"] and results[0]["rank"] == 0
    assert list(results[1]) == ["task_id", "passed", "status", "tests", "time"]
    all_row = next(line for line in out.stdout.splitlines() if line.startswith("all"))
    # pass@1 = (1/2 + 0)/2, pass@2 = (1 + 0)/2; test-avg = ((1 + 0.5)/2 + 0)/2 (the second program
    # passes add(1, 2) == 3 only); strict = (1/2 + 0)/2
    assert all_row.split()[1:] == ["2", "25.00%", "50.00%", "37.50%", "25.00%"]
    assert ("programs 4: passed 1 (25.0%), wrong answer 2 (50.0%), runtime error 0 (0.0%), syntax error 0 (0.0%), "
            "timeout 1 (25.0%)") in out.stdout
    assert "pass@5" not in out.stdout and "1 of 3 problems have no samples" in out.stdout
    samples.write_text(json.dumps({"task_id": "999", "code": "x"}) + "\n")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "999" in out.stderr and "Traceback" not in out.stderr

def test_score_reports_the_rows_of_sample_py(tmp_path, capsys):
    """score.score aggregates with codeplan.pass_at_k_report: the same rows, in the same order, as sample.py."""
    import codeplan
    echo = dict(public_tests=[Test("stdio", "1\n", "1\n")], hidden_tests=[Test("stdio", "2\n", "2\n")])
    problems = [Problem(id="a", question="echo", difficulty="competition", tier="new-chain", **echo),
                Problem(id="b", question="echo", difficulty="introductory", tier="seen-chain", **echo),
                Problem(id="c", question="echo", difficulty="introductory", tier="new-chain", **echo)]
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps({"split": "test", **p.to_dict()}) + "\n" for p in problems))
    samples = tmp_path / "samples.jsonl"
    right, wrong = "print(input())\n", "print(0)\n"
    samples.write_text("".join(json.dumps({"task_id": t, "code": c}) + "\n" for t, c in
                               [("a", right), ("a", wrong), ("b", wrong), ("b", wrong), ("c", right), ("c", right)]))
    score.score(f"synthetic:{tmp_path / 'problems.jsonl'}", samples, [1, 2], timeout=2.0, workers=1)
    table = {line.split()[0] if not line.startswith("tier") else " ".join(line.split()[:2]): line.split()[-5:-2]
             for line in capsys.readouterr().out.splitlines() if line.endswith("%")}
    expected = codeplan.report_groups(problems)
    assert list(table) == list(expected) == ["all", "introductory", "competition", "tier new-chain", "tier seen-chain"]
    assert table["all"] == ["3", "50.00%", "66.67%"]          # pass@1 = (1/2 + 0 + 1)/3, pass@2 = (1 + 0 + 1)/3
    assert table["tier new-chain"] == ["2", "75.00%", "100.00%"] and table["introductory"] == ["2", "50.00%", "50.00%"]


# ----------------------------------------------------------------------------- real benchmark data

# MBPP ground truths that do not pass their own tests under this sandbox, with the reason. Empty: all 974 pass.
MBPP_EXCEPTIONS: dict[str, str] = {}


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data not present")
def test_real_ground_truths_pass(pool):
    humaneval = data.load_problems(f"humaneval:{SHARED / 'humaneval' / 'HumanEval.jsonl.gz'}")
    mbpp = data.load_problems(f"mbpp:{SHARED / 'mbpp' / 'mbpp.jsonl'}")
    apps = data.load_problems(f"apps:{SHARED / 'apps' / 'original' / 'train'}")
    assert (len(humaneval), len(mbpp)) == (164, 974)
    jobs = [(p, p.solutions[0]) for p in humaneval + mbpp] + [(p, s) for p in apps for s in p.solutions]
    # a generous timeout: this checks correctness, and e.g. MBPP 123's ground truth takes seconds on a busy machine
    futures = [pool.submit(p, code, "hidden", 30.0) for p, code in jobs]
    failed = {(p.source, p.id): f.result().message for (p, _), f in zip(jobs, futures) if not f.result().passed}
    assert {k: m for k, m in failed.items() if k[0] != "mbpp" or k[1] not in MBPP_EXCEPTIONS} == {}
    assert len(jobs) - len(failed) >= 164 + 974 - len(MBPP_EXCEPTIONS) + 1
