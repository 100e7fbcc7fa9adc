"""Runs many command lines of the project's scripts cheaply: `python forked_cli.py CASES.json RESULTS.json`.

Importing torch takes seconds on a busy 2-core machine, and each refused command line needs milliseconds
after it. This process imports the scripts' modules once, then runs every case in a forked child of its
own, as `python SCRIPT ARGS...` would in the case's folder: the child's exit code, stdout and stderr are
what a user would see (an uncaught exception prints its traceback and exits 1, as the interpreter does).

A case is {"script": "sample.py", "argv": [...], "cwd": FOLDER, "env": {...}}; a result is
{"code": int, "stdout": str, "stderr": str}.
"""
import json
import os
import runpy
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def exit_code(stop: SystemExit) -> int:
    """What the interpreter makes of sys.exit(code): None -> 0, an int as is, anything else printed, 1."""
    if stop.code is None or isinstance(stop.code, int):
        return stop.code or 0
    print(stop.code, file=sys.stderr)
    return 1


def run_case(case: dict, out_path: str, err_path: str) -> None:
    """In the forked child: become `python SCRIPT ARGV...` in the case's folder, then exit."""
    for fd, path in ((1, out_path), (2, err_path)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    os.chdir(case["cwd"])
    os.environ.update(case.get("env", {}))
    script = str(ROOT / case["script"])
    sys.argv = [script, *case["argv"]]
    try:
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = exit_code(stop)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text())
    sys.path.insert(0, str(ROOT))
    for script in sorted({case["script"] for case in cases}):
        __import__(script.removesuffix(".py"))     # the slow imports, once, before any fork
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        out_path, err_path = os.path.join(scratch, "out"), os.path.join(scratch, "err")
        for case in cases:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                run_case(case, out_path, err_path)
            _, status = os.waitpid(pid, 0)
            results.append({"code": os.waitstatus_to_exitcode(status), "stdout": Path(out_path).read_text(),
                            "stderr": Path(err_path).read_text()})
    Path(sys.argv[2]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
