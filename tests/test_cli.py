"""cli.py: range-checked flags and one-line errors with exit code 2; every script's command line refuses bad input."""
import json
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import cli
from conftest import ROOT
from problems import Problem


def parser() -> cli.Parser:
    p = cli.Parser("demo", prog="demo.py")
    p.add_argument("--count", type=cli.number(int, 1), default=16, help="a count")
    p.add_argument("--share", type=cli.number(float, 0, 1, low_open=True), default=0.5, help="a share")
    return p


def test_values_in_range_parse():
    args = parser().parse_args(["--count", "1", "--share", "1"])
    assert (args.count, args.share) == (1, 1.0)


@pytest.mark.parametrize("argv, message", [
    (["--count", "0"], "demo.py: argument --count: 0 is not allowed: must be an integer >= 1"),
    (["--count", "2.5"], "demo.py: argument --count: '2.5' is not an integer"),
    (["--share", "0"], "demo.py: argument --share: 0 is not allowed: must be a number > 0 and <= 1"),
    (["--share", "nan"], "demo.py: argument --share: nan is not allowed: must be a number > 0 and <= 1"),
])
def test_out_of_range_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        parser().parse_args(argv)
    assert stop.value.code == cli.BAD_INPUT
    assert capsys.readouterr().err == message + "\n"


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "a count (default: 16)" in out and "a share (default: 0.5)" in out


# ----------------------------------------------------------------------------- every script refuses bad input
# Each case runs as its own process (tests/forked_cli.py forks one per case from a process that imported
# torch once) in an empty folder of its own: exit 2, one line on stderr naming what is wrong, no
# traceback, and nothing written there (no run folder, no output file, no data cache).

def bad_cases(tmp_path: Path, refusing_url: str, silent_url: str) -> list[tuple]:
    """(script, argv, the line's expected text); progress lines may come before the line only for the
    commands that start work before the bad input shows (marked with a trailing True)."""
    empty, repeated = tmp_path / "empty.jsonl", tmp_path / "repeated.jsonl"
    empty.write_text("\n")
    record = {"task_id": 11, "text": "Add two numbers.", "code": "def add(a, b):\n    return a + b\n",
              "test_list": ["assert add(1, 2) == 3"]}
    repeated.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(Problem(id=f"p{i}", question="Print the sum.", solutions=["print(1)"],
                                                   source="test").to_dict()) + "\n" for i in range(2)))
    teacher_argv = ["--problems", str(problems), "--max-attempts", "1", "--progress-every", "0", "--out"]
    mbpp = tmp_path / "mbpp.jsonl"     # two train problems and a valid one; MBPP has no reference plans
    mbpp.write_text("".join(json.dumps({**record, "task_id": i}) + "\n" for i in (601, 602, 511)))
    folders = {name: tmp_path / name for name in ("empty", "garbage", "keyless", "torn")}
    for folder in folders.values():
        folder.mkdir()
    t5 = {"vocab_size": 100, "d_model": 8, "d_kv": 4, "d_ff": 16, "num_heads": 2, "num_layers": 1}
    (folders["garbage"] / "config.json").write_text("{not json")
    (folders["keyless"] / "config.json").write_text(json.dumps({"vocab_size": 100}))
    (folders["torn"] / "config.json").write_text(json.dumps(t5))
    (folders["torn"] / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    return [
        ("train.py", ["--batch-size", "0"], "argument --batch-size: 0 is not allowed: must be an integer >= 1"),
        ("train.py", ["--grad-accum", "0"], "argument --grad-accum: 0 is not allowed"),
        ("train.py", ["--log-interval", "0"], "argument --log-interval: 0 is not allowed"),
        ("train.py", ["--eval-interval", "0"], "argument --eval-interval: 0 is not allowed"),
        ("train.py", ["--lr", "-1"], "argument --lr: -1 is not allowed: must be a number > 0"),
        ("train.py", ["--steps", "0"], "argument --steps: 0 is not allowed"),
        ("train.py", ["--steps", "-5"], "argument --steps: -5 is not allowed"),
        ("train.py", ["--lambda", "1.5"], "argument --lambda: 1.5 is not allowed"),
        ("train.py", ["--batch-size", "6", "--grad-accum", "4"], "--batch-size 6 must divide by world size x --grad-accum"),
        ("train.py", ["--init", "absent"], "--init absent: no such folder"),
        ("train.py", ["--init", str(folders["empty"])], f"--init {folders['empty']}: no config.json"),
        ("train.py", ["--init", str(folders["garbage"])], "config.json: not readable as JSON"),
        ("train.py", ["--init", str(folders["keyless"])], "config.json has no 'd_model'"),
        ("train.py", ["--init", str(folders["torn"])], "model.safetensors: not a complete safetensors file"),
        ("train.py", ["--data", f"mbpp:{mbpp}", "--device", "cpu"], "pass --plans FILE (python teacher.py --data"),
        ("sandbox.py", ["--data", f"mbpp:{mbpp}", "--samples", "s.jsonl", "--workers", "-2"],
         "argument --workers: -2 is not allowed"),
        ("score.py", ["--data", f"mbpp:{mbpp}", "--samples", "s.jsonl", "--timeout", "0"], "argument --timeout: 0 is not allowed"),
        ("score.py", ["--data", f"mbpp:{empty}", "--samples", "s.jsonl"], "no problems found"),
        ("sample.py", ["--top-p", "0"], "argument --top-p: 0 is not allowed: must be a number > 0 and <= 1"),
        ("sample.py", ["--top-p", "2"], "argument --top-p: 2 is not allowed"),
        ("sample.py", ["--workers", "-1"], "argument --workers: -1 is not allowed: must be an integer >= 0"),
        ("sample.py", ["--max-new-tokens", "-5"], "argument --max-new-tokens: -5 is not allowed"),
        ("sample.py", ["--temperature", "-1"], "argument --temperature: -1 is not allowed: must be a number >= 0"),
        ("sample.py", ["--timeout", "0"], "argument --timeout: 0 is not allowed: must be a number > 0"),
        ("sample.py", ["--timeout", "-1"], "argument --timeout: -1 is not allowed"),
        ("sample.py", ["--n", "2", "--k", "x"], "--k must be comma-separated integers"),
        ("sample.py", ["--n", "-1"], "argument --n: -1 is not allowed"),
        ("sample.py", ["--batch-size", "0"], "argument --batch-size: 0 is not allowed"),
        ("sample.py", ["--per-tier", "-2"], "argument --per-tier: -2 is not allowed"),
        ("sample.py", ["--shard", "2/2"], "--shard must be I/N with 0 <= I < N"),
        ("sample.py", [], "no finished run with a best.pt under runs/"),
        ("sample.py", ["--checkpoint", "absent.pt"], "absent.pt: no such checkpoint file"),
        ("teacher.py", ["--workers", "0"], "argument --workers: 0 is not allowed: must be an integer >= 1"),
        ("teacher.py", ["--read-timeout", "0"], "argument --read-timeout: 0 is not allowed"),
        ("teacher.py", ["--temperature", "-0.5"], "argument --temperature: -0.5 is not allowed"),
        ("teacher.py", [*teacher_argv, "plans-silent.jsonl", "--base-url", silent_url],
         "2 of 2 requests failed (first: p", True),
        ("teacher.py", [*teacher_argv, "plans-refusing.jsonl", "--base-url", refusing_url],
         "2 of 2 requests failed (first: p", True),
        ("reproduce.py", ["--cpu", "--seeds", "0"], "argument --seeds: 0 is not allowed"),
        ("reproduce.py", ["--bootstrap", "50"], "argument --bootstrap: 50 is not allowed: must be an integer >= 100"),
        ("reproduce.py", ["--corrupt-share", "0"], "argument --corrupt-share: 0 is not allowed"),
        ("reproduce.py", ["--jobs", "-1"], "argument --jobs: -1 is not allowed"),
        ("bench.py", ["loop", "--steps", "0"], "argument --steps: 0 is not allowed"),
        ("bench.py", ["sandbox", "--workers", "0"], "argument --workers: 0 is not allowed"),
        ("bench.py", ["sample", "--n", "0"], "argument --n: 0 is not allowed"),
        ("bench.py", ["model", "--sample-batches", "16", "0"], "argument --sample-batches: 0 is not allowed: must be an integer >= 1"),
        ("bench.py", ["model", "--sample-batches", "16,64"], "argument --sample-batches: '16,64' is not an integer"),
        ("bench.py", ["model", "--decoder-steps", "eager", "fast"], "argument --decoder-steps: invalid choice: 'fast'"),
        ("data.py", ["--data", f"mbpp:{empty}"], f"--data mbpp:{empty}: no problems found"),
        ("data.py", ["--data", f"mbpp:{repeated}"], "1 problem ids occur more than once (e.g. '11' 2 times)"),
        ("data.py", ["--show", "-1"], "argument --show: -1 is not allowed"),
        ("synthetic.py", ["--sizes", "10", "10", "10"], "train too small for this split", True),
    ]


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def run_forked(cases: list[dict], tmp_path: Path) -> list[dict]:
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    subprocess.run([sys.executable, str(ROOT / "tests" / "forked_cli.py"), str(tmp_path / "cases.json"),
                    str(tmp_path / "results.json")], check=True, timeout=600)
    return json.loads((tmp_path / "results.json").read_text())


class Refusing(BaseHTTPRequestHandler):
    def do_POST(self):
        self.send_response(501)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_every_script_refuses_bad_input_with_one_line_and_exit_2(tmp_path):
    with socket.socket() as probe:     # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        silent_url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        table = bad_cases(tmp_path, f"http://127.0.0.1:{server.server_address[1]}/v1", silent_url)
        cases = []
        for i, (script, argv, *_) in enumerate(table):
            folder = tmp_path / f"case{i}"
            folder.mkdir()
            cases.append({"script": script, "argv": argv, "cwd": str(folder),
                          "env": {"CODEPLAN_DATA": str(folder / "cache"), "CODEPLAN_API_KEY": "sk-test"}})
        results = run_forked(cases, tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    for (script, argv, expected, *progress), case, result in zip(table, cases, results):
        command = f"{script} {' '.join(argv)}"
        lines = result["stderr"].strip().splitlines()
        assert result["code"] == cli.BAD_INPUT, (command, result)
        assert "Traceback" not in result["stderr"] and lines and expected in lines[-1], (command, result)
        assert all(re.search(r"\d+/\d+", line) for line in lines[:-1]) if progress else len(lines) == 1, (command, result)
        written = tree(Path(case["cwd"]))
        if script == "teacher.py" and progress:     # the failed requests are kept, to be retried by a rerun
            plans = Path(case["cwd"]) / argv[argv.index("--out") + 1]
            assert {json.loads(line)["status"] for line in plans.read_text().splitlines()} == {"failed"}
            assert "rerunning this command retries only those" in lines[-1]
            assert written == sorted([plans.name, plans.name.replace(".jsonl", ".config.json")]), (command, written)
        else:
            assert written == [], (command, written)


def test_help_shows_every_default(tmp_path):
    scripts = ("sample.py", "teacher.py", "reproduce.py", "data.py", "train.py", "synthetic.py")
    cases = [{"script": s, "argv": ["--help"], "cwd": str(tmp_path)} for s in scripts]
    helps = dict(zip(scripts, (r["stdout"] for r in run_forked(cases, tmp_path))))
    text = {s: " ".join(h.split()) for s, h in helps.items()}
    for fragment in ("plans per problem; 0 = direct code with no plan (default: 16)", "(default: 0.6)",
                     "seconds per test in the sandbox (default: 4.0)", "nucleus sampling threshold (default: 0.95)"):
        assert fragment in text["sample.py"]
    assert "concurrent requests (default: 4)" in text["teacher.py"]
    assert "(default: 2000)" in text["reproduce.py"]
    for fragment in ("1 = plans only (default: 0.5)", "steps between valid-loss evaluations (and best.pt) (default: 300)"):
        assert fragment in text["train.py"]
    for fragment in ("gives the same splits (default 0)", "default 20000 900 1500", "(default short:"):
        assert fragment in text["synthetic.py"]
