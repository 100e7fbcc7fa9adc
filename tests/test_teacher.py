"""teacher.py and its HTTP client llm_client.py against a real chat-completions server on 127.0.0.1 with injected faults.

The server picks its behaviour from a marker "[[name]]" in the problem statement: each name has
a script of behaviours consumed one per request (the last one repeats).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import llm_client
import teacher
from problems import Problem, choose_solutions

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-test-9f2c0ffee-DO-NOT-LEAK"
MARKER = re.compile(r"\[\[([\w-]+)\]\]")


class FakeTeacher:
    """ThreadingHTTPServer speaking /v1/chat/completions; counts requests per marker."""

    def __init__(self, script: dict[str, list[str]] | None = None, delay: float = 0.0, slow: float = 1.0):
        self.script, self.delay, self.slow = script or {}, delay, slow
        self.counts: Counter[str] = Counter()
        self.payloads: list[dict] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    fake.answer(self, json.loads(body))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (read timeout) before we answered

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler, payload: dict) -> None:
        if handler.path != "/v1/chat/completions":
            return self.send(handler, 404, {"error": {"message": f"no route {handler.path}"}})
        auth = handler.headers.get("Authorization", "")
        if auth != f"Bearer {SECRET}":  # echo the key back, as OpenAI does, to test redaction
            return self.send(handler, 401, {"error": {"message": f"Incorrect API key provided: {auth[7:]}"}})
        name = MARKER.search(payload["messages"][-1]["content"]).group(1)
        with self.lock:
            self.payloads.append(payload)
            script = self.script.get(name, ["ok"])
            behaviour = script[min(self.counts[name], len(script) - 1)]
            self.counts[name] += 1
        time.sleep(self.delay)
        if behaviour == "429":
            return self.send(handler, 429, {"error": {"message": "rate limited"}}, {"Retry-After": "0.05"})
        if behaviour in ("500", "503", "404", "401"):
            return self.send(handler, int(behaviour), {"error": {"message": f"injected {behaviour}"}})
        if behaviour == "badjson":
            return self.send(handler, 200, '{"choices": [{"message": {"content": "1. Re')
        if behaviour == "nochoices":
            return self.send(handler, 200, {"object": "chat.completion", "id": "x"})
        if behaviour == "slow":
            time.sleep(self.slow)
        content = {"ok": f"Here is the plan:\n1. Read the input of {name}.\n2. Add the numbers.\n3. Print the sum.",
                   "slow": f"1. Read the input of {name}.\n2. Print it.",
                   "code": "```python\nprint(sum(map(int, input().split())))\n```\nprint(a + b)",
                   "empty": ""}[behaviour]
        self.send(handler, 200, {"choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": content}}],
                                 "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})

    @staticmethod
    def send(handler, status: int, body, headers: dict | None = None) -> None:
        raw = (body if isinstance(body, str) else json.dumps(body)).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(raw)


def problem(name: str, solutions: list[str] | None = None) -> Problem:
    return Problem(id=name, question=f"[[{name}]] Read two integers and print their sum.",
                   solutions=["a, b = map(int, input().split())\nprint(a + b)\n"] if solutions is None else solutions,
                   source="test")


def fast_config(url: str, **overrides) -> teacher.TeacherConfig:
    settings = dict(base_url=url, model="teacher-test", workers=4, connect_timeout=2.0, read_timeout=0.3,
                    max_attempts=3, backoff_base=0.001, backoff_max=0.2)
    return teacher.TeacherConfig(**{**settings, **overrides})


def records(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]

# ----------------------------------------------------------------------------- prompts and cleaning


def test_prompts_show_what_each_mode_allows():
    q, code = "[[x]] Print the sum.", "print(1 + 2)"
    backward, code_only, forward = (teacher.build_messages(m, q, code) for m in teacher.TEACHER_MODES)
    for messages in (backward, code_only, forward):
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
        assert messages[2]["content"] == teacher.EXAMPLE_PLAN
    assert q in backward[-1]["content"] and code in backward[-1]["content"]
    assert code in code_only[-1]["content"] and q not in code_only[-1]["content"]
    assert q in forward[-1]["content"] and code not in forward[-1]["content"]
    assert teacher.EXAMPLE_CODE.strip() not in forward[1]["content"]


def test_solutions_shortest_first_distinct_and_capped():
    p = problem("s", ["print(1 + 1)\n", "print(2)", "  ", "print(2)\n", "x = 2\nprint(x)"])
    assert choose_solutions(p, 1) == [(1, "print(2)")]
    assert [i for i, _ in choose_solutions(p, 5)] == [1, 0, 4]
    jobs, unsolved = teacher.plan_jobs([p, problem("none", [])], "backward", 2)
    assert [(j.problem.id, j.solution_index) for j in jobs] == [("s", 1), ("s", 0)] and unsolved == 1
    jobs, unsolved = teacher.plan_jobs([p, problem("none", [])], "forward", 2)
    assert [(j.problem.id, j.solution_index) for j in jobs] == [("s", None), ("none", None)] and unsolved == 0


@pytest.mark.parametrize("answer, plan", [
    ("Here is the plan:\n1. Read n.\n2. Print twice n.\n\nThis runs in O(1).", "1. Read n.\n2. Print twice n."),
    ("**Step 1:** Read n\nStep 2) Double it\n   - with a shift\n3: Print", "1. Read n\n2. Double it; with a shift\n3. Print"),
    ("- Read the number\n* Print double", "1. Read the number\n2. Print double"),
    ("Read the number. Then print its double.", "1. Read the number.\n2. Then print its double."),
    ("1. Input: n\n2. Complexity: O(n)\n3. Done", "1. Input: n\n2. Complexity: O(n)\n3. Done"),
])
def test_answers_become_numbered_steps(answer, plan):
    cleaned = teacher.clean_plan(answer, "n = int(input())\nprint(n * 2)\n")
    assert (cleaned.status, cleaned.plan) == ("ok", plan)


def test_code_in_answers_is_removed_or_rejected():
    solution = "n = int(input())\nfor i in range(n):\n    print(i * i)\n"
    fenced = teacher.clean_plan(f"```python\n{solution}```\n1. Read n.\n2. Print each square.", solution)
    assert fenced.status == "ok" and fenced.plan == "1. Read n.\n2. Print each square." and "fenced" in fenced.notes[0]
    one_line = teacher.clean_plan("1. Read n.\n2. for i in range(n):\n3. Print i squared for each i.", solution)
    assert one_line.status == "ok" and "range" not in one_line.plan and "removed 1 code line(s)" in one_line.notes
    mostly = teacher.clean_plan("1. n = int(input())\n2. print(i * i)\n3. Done.", solution)
    assert mostly.status == "rejected" and "mostly code" in mostly.reason
    only = teacher.clean_plan(solution, solution)
    assert only.status == "rejected" and only.plan == ""
    assert teacher.clean_plan("  \n", solution).status == "failed"
    assert teacher.clean_plan("### Plan\n\n", solution) == teacher.Cleaned("failed", reason="no plan steps in answer")


def test_retry_after_seconds_and_http_date():
    assert llm_client.parse_retry_after("2.5") == 2.5
    assert 0 < llm_client.parse_retry_after(time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))) <= 30
    assert llm_client.parse_retry_after("soon") is None and llm_client.parse_retry_after(None) is None

# ----------------------------------------------------------------------------- faults


def test_faults_are_retried_or_recorded(tmp_path):
    script = {"r429": ["429", "429", "ok"], "e500": ["500", "ok"], "e503": ["503"], "slow": ["slow", "ok"],
              "badjson": ["badjson", "ok"], "nochoices": ["nochoices"], "notfound": ["404"],
              "code": ["code"], "empty": ["empty"]}
    names = ["ok"] + list(script)
    sleeps = []
    out = tmp_path / "plans.jsonl"
    with FakeTeacher(script) as server:
        config = fast_config(server.url)
        client = llm_client.ChatClient(config, SECRET, sleep=lambda s: (sleeps.append(s), time.sleep(s)))
        summary = teacher.run_teacher([problem(n) for n in names], str(out), config, client)
        print(summary.line())
        assert server.counts == {"ok": 1, "r429": 3, "e500": 2, "e503": 3, "slow": 2, "badjson": 2,
                                 "nochoices": 3, "notfound": 1, "code": 1, "empty": 1}
        payload = server.payloads[0]
        assert (payload["model"], payload["temperature"], payload["max_tokens"]) == ("teacher-test", 0.2, 512)
        status = {r["task_id"]: r for r in records(out)}
        assert {n for n, r in status.items() if r["status"] == "ok"} == {"ok", "r429", "e500", "slow", "badjson"}
        assert status["ok"]["plan"] == "1. Read the input of ok.\n2. Add the numbers.\n3. Print the sum."
        assert status["code"]["status"] == "rejected" and status["code"]["plan"] == ""
        assert "HTTP 503" in status["e503"]["reason"] and "gave up after 3" in status["e503"]["reason"]
        assert "no choices" in status["nochoices"]["reason"]
        assert status["notfound"]["reason"] == "HTTP 404: injected 404" and status["notfound"]["attempts"] == 1
        assert status["empty"]["reason"] == "empty answer"
        assert (summary.ok, summary.rejected, summary.failed, summary.retried) == (5, 1, 4, 9)
        assert (summary.prompt_tokens, summary.completion_tokens) == (700, 140)
        assert sum(s >= 0.05 for s in sleeps) >= 2  # both 429 waits honoured Retry-After
        assert all(s <= config.backoff_max for s in sleeps)

        # a rerun asks again only for the failed ones; done plans are neither asked nor written twice
        again = teacher.run_teacher([problem(n) for n in names], str(out), config, client)
        assert again.already_done == 6 and again.failed == 4 and again.ok == 0
        assert server.counts["ok"] == 1 and server.counts["e503"] == 6 and server.counts["notfound"] == 2
    assert teacher.read_plans(str(out)) == {n: [status[n]["plan"]] for n in ("ok", "r429", "e500", "slow", "badjson")}


def test_rejected_key_stops_the_run(tmp_path):
    with FakeTeacher() as server:
        config = fast_config(server.url, workers=1)
        with pytest.raises(llm_client.AuthError) as error:
            teacher.run_teacher([problem(f"p{i}") for i in range(6)], str(tmp_path / "p.jsonl"), config,
                                llm_client.ChatClient(config, "sk-wrong-key-123"))
    assert "401" in str(error.value) and "sk-wrong-key-123" not in str(error.value)
    assert records(tmp_path / "p.jsonl") == []  # nothing was asked after the first answer


def test_cli_never_leaks_the_key_and_dry_run_sends_nothing(tmp_path):
    problems = tmp_path / "tiny.jsonl"
    problems.write_text("".join(json.dumps(problem(f"t{i}").to_dict()) + "\n" for i in range(3)))
    out = tmp_path / "plans" / "tiny.jsonl"
    with FakeTeacher() as server:
        def cli(*extra, key=SECRET):
            env = {**os.environ, "CODEPLAN_API_KEY": key, "CODEPLAN_BASE_URL": server.url, "CODEPLAN_MODEL": "m"}
            return subprocess.run([sys.executable, str(ROOT / "teacher.py"), "--problems", str(problems),
                                   "--out", str(out), "--progress-every", "0", *extra],
                                  env=env, capture_output=True, text=True, timeout=60)
        dry = cli("--dry-run")
        assert dry.returncode == 0 and "3 requests" in dry.stdout and "characters / 4" in dry.stdout
        assert sum(server.counts.values()) == 0 and not out.exists()
        done = cli("--workers", "2")
        assert done.returncode == 0, done.stderr
        assert "ok=3" in done.stdout and "3/3 requests" in done.stderr
        config = json.loads((tmp_path / "plans" / "tiny.config.json").read_text())
        assert config["api_key_from"] == "CODEPLAN_API_KEY" and config["base_url"] == server.url
        refused = cli("--out", str(tmp_path / "other.jsonl"), key="sk-bad-" + SECRET)
        assert refused.returncode == 2 and "401" in refused.stderr and "Traceback" not in refused.stderr
    written = out.read_text() + (tmp_path / "plans" / "tiny.config.json").read_text()
    for text in (written, dry.stdout, dry.stderr, done.stdout, done.stderr, refused.stdout, refused.stderr):
        assert SECRET not in text

# ----------------------------------------------------------------------------- crash safety


def test_kill_9_then_rerun_gives_every_plan_once(tmp_path):
    n = 40
    problems = tmp_path / "many.jsonl"
    problems.write_text("".join(json.dumps(problem(f"k{i:02d}").to_dict()) + "\n" for i in range(n)))
    out = tmp_path / "many-plans.jsonl"
    env = {**os.environ, "CODEPLAN_API_KEY": SECRET}
    command = [sys.executable, str(ROOT / "teacher.py"), "--problems", str(problems), "--out", str(out),
               "--workers", "3", "--progress-every", "0"]
    with FakeTeacher(delay=0.1) as server:
        env["CODEPLAN_BASE_URL"] = server.url
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and process.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 8:
                break
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL, "the teacher finished before it could be killed"
        before = out.read_bytes().count(b"\n")
        server.delay = 0.0
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert rerun.returncode == 0, rerun.stderr
    rows = records(out)
    ids = Counter(r["task_id"] for r in rows if r["status"] == "ok")
    print(f"kill-and-resume: {before} records before the kill, {len(rows)} after the rerun, "
          f"{sum(c - 1 for c in ids.values())} duplicates; {rerun.stdout.strip()}")
    assert 8 <= before < n
    assert ids == Counter({f"k{i:02d}": 1 for i in range(n)}) and len(rows) == n
    assert f"already_done={before}" in rerun.stdout


def test_torn_last_line_is_reported_and_repaired(tmp_path, capsys):
    out = tmp_path / "plans.jsonl"
    with FakeTeacher() as server:
        config = fast_config(server.url)
        client = llm_client.ChatClient(config, SECRET)
        teacher.run_teacher([problem("a")], str(out), config, client)
        with open(out, "ab") as f:
            f.write(b'{"task_id": "b", "plan": "1. Re')  # what kill -9 during a write could leave
        summary = teacher.run_teacher([problem(n) for n in "abc"], str(out), config, client)
        assert server.counts == {"a": 1, "b": 1, "c": 1}
    assert "torn last line" in capsys.readouterr().err
    assert (summary.already_done, summary.ok) == (1, 2)
    assert sorted(r["task_id"] for r in records(out)) == ["a", "b", "c"]


def test_model_change_on_the_same_file_is_refused(tmp_path):
    out = tmp_path / "plans.jsonl"
    with FakeTeacher() as server:
        config = fast_config(server.url)
        teacher.run_teacher([problem("a")], str(out), config, llm_client.ChatClient(config, SECRET))
        other = fast_config(server.url, model="another-model")
        with pytest.raises(teacher.TeacherError, match="another --out"):
            teacher.run_teacher([problem("a")], str(out), other, llm_client.ChatClient(other, SECRET))

def test_a_file_holding_another_splits_plans_is_refused(tmp_path):
    out = tmp_path / "plans.jsonl"
    train_a = problem("a")
    test_a = dataclasses.replace(train_a, question="[[a]] Print the product of two integers.")   # same id, other problem
    with FakeTeacher() as server:
        config = fast_config(server.url)
        teacher.run_teacher([train_a], str(out), config, llm_client.ChatClient(config, SECRET), split="train")
        assert [(r["split"], r["question_digest"]) for r in records(out)] == [("train", teacher.question_digest(train_a))]
        with pytest.raises(teacher.TeacherError, match="made for other problems"):
            teacher.run_teacher([test_a], str(out), config, llm_client.ChatClient(config, SECRET), split="test")
    assert len(records(out)) == 1

# ----------------------------------------------------------------------------- reading plans, reference plans


def test_read_plans_orders_filters_and_names_bad_lines(tmp_path):
    path = tmp_path / "plans.jsonl"
    rows = [{"task_id": "x", "plan": "1. Second.", "mode": "backward", "solution_index": 3, "status": "ok"},
            {"task_id": "x", "plan": "", "mode": "backward", "solution_index": 5, "status": "failed"},
            {"task_id": "x", "plan": "1. First.", "mode": "backward", "solution_index": 0, "status": "ok"},
            {"task_id": "y", "plan": "1. Code.", "mode": "backward", "solution_index": 0, "status": "rejected"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"task_id": "z", "pl')
    assert teacher.read_plans(str(path)) == {"x": ["1. First.", "1. Second."]}
    path.write_text(json.dumps(rows[0]) + "\nnot json\n" + json.dumps(rows[2]) + "\n")
    with pytest.raises(teacher.TeacherError, match=r"plans.jsonl: line 2: malformed"):
        teacher.read_plans(str(path))


def test_reference_plans_round_trip(tmp_path):
    problems = [Problem(id="r1", question="q", reference_plan="1) Read.\n2) Print."),
                Problem(id="r2", question="q", reference_plan="- Loop.\n- Stop.")]
    path = tmp_path / "ref.jsonl"
    assert teacher.write_reference_plans(problems, str(path)) == 2
    assert {r["model"] for r in records(path)} == {"reference"}
    assert teacher.read_plans(str(path)) == {"r1": ["1. Read.\n2. Print."], "r2": ["1. Loop.\n2. Stop."]}
    with pytest.raises(teacher.TeacherError, match="problem r3"):
        teacher.write_reference_plans([Problem(id="r3", question="q")], str(tmp_path / "bad.jsonl"))


def test_plans_are_checked_against_the_problems_in_use(tmp_path, capsys):
    problems = [Problem(id="0001", question="Sum two numbers.", reference_plan="1. Add."),
                Problem(id="0002", question="Sort a list.", reference_plan="1. Sort.")]
    path = tmp_path / "train.jsonl"
    teacher.write_reference_plans(problems, str(path), "train")
    assert [r["split"] for r in records(path)] == ["train", "train"]
    assert teacher.read_plans(str(path), problems) == {"0001": ["1. Add."], "0002": ["1. Sort."]}
    assert teacher.read_plans(str(path), problems[1:]) == {"0001": ["1. Add."], "0002": ["1. Sort."]}  # a subset is fine
    assert capsys.readouterr().err == ""
    # APPS: test ids repeat train ids; the train plans must not condition the test problems
    test_split = [dataclasses.replace(problems[0], question="Count vowels.")]
    with pytest.raises(teacher.TeacherError, match=r"train.jsonl: 1 plans were made for other problems.*'train'.*0001"):
        teacher.read_plans(str(path), test_split)
    # a file from before plans files recorded their problems: read as before, with a warning
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k not in ("split", "question_digest")}) + "\n"
                            for r in records(path)))
    assert teacher.read_plans(str(path), test_split) == {"0001": ["1. Add."], "0002": ["1. Sort."]}
    assert "1 plans do not record which problem they were made for" in capsys.readouterr().err


def test_synthetic_default_writes_reference_plans_offline(tmp_path):
    import data
    pytest.importorskip("synthetic", reason="synthetic.py (the synthetic benchmark) is not written yet")
    if not hasattr(data, "load_problems"):
        pytest.skip("data.load_problems is not written yet")
    env = {**os.environ, "CODEPLAN_DATA": str(tmp_path / "cache"), "CODEPLAN_BASE_URL": "http://127.0.0.1:9"}
    done = subprocess.run([sys.executable, str(ROOT / "teacher.py"), "--data", "synthetic", "--limit", "50"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)   # generates the benchmark
    assert done.returncode == 0, done.stderr
    for split in ("train", "valid"):
        plans = teacher.read_plans(str(tmp_path / "plans" / f"synthetic-{split}-reference.jsonl"))
        assert len(plans) == 50 and all(p[0].startswith("1. ") for p in plans.values())
        assert {r["split"] for r in records(tmp_path / "plans" / f"synthetic-{split}-reference.jsonl")} == {split}
