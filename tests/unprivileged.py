"""Running sandbox.Pool as an ordinary user from a test suite that runs as root (as here and in CI).

`launch(root, uid, userns_allowed)` starts, as root, a launcher that gives itself a private mount
namespace, makes the interpreter and the repository reachable for `uid` (a pyenv under a 0700 /root
is not), mounts a private home for `uid` at /mnt/home, optionally forbids user namespaces (it enters
a user namespace whose max_user_namespaces is 0, which is what a machine without unprivileged user
namespaces looks like), drops to `uid` and runs `serve`: a Pool behind a JSON-lines pipe.
"""
import json
import os
import sys
import tempfile

HOME = "/mnt/home"


def launch(root: str, uid: int, userns_allowed: bool, weak: bool) -> None:
    sys.path.insert(0, root)
    import sandbox
    lib = sandbox._libc
    if not sandbox._unshare(sandbox.CLONE_NEWNS) or lib.mount(b"none", b"/", None, sandbox.MS_REC | sandbox.MS_PRIVATE, None):
        raise OSError("cannot make a private mount namespace")
    stash = tempfile.mkdtemp()
    sandbox._expose(sandbox._hidden_prefixes((sys.prefix, sys.base_prefix, sys.exec_prefix, root)), stash)
    os.rmdir(stash)
    if lib.mount(b"tmpfs", b"/mnt", b"tmpfs", 0, b"size=1m,mode=0755"):
        raise OSError("cannot mount a tmpfs on /mnt")
    os.mkdir(HOME, 0o700)
    os.chown(HOME, uid, uid)
    if not userns_allowed:
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        child = os.fork()
        if child:
            os.read(to_parent, 1)
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{child}/{name}", "w") as f:
                    f.write("0 0 65536\n")
            os.write(from_parent, b"x")
            code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
            os._exit(code if code >= 0 else 128 - code)
        if not sandbox._unshare(sandbox.CLONE_NEWUSER):
            os._exit(90)
        os.write(from_child, b"x")
        os.read(to_child, 1)
        with open("/proc/sys/user/max_user_namespaces", "w") as f:
            f.write("0\n")
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    os.chdir(HOME)
    os.execve(sys.executable, [sys.executable, "-I", __file__, "serve", root, "weak" if weak else "strict"],
              {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": HOME, "LANG": "C.UTF-8",
               **{k: v for k, v in os.environ.items() if k == "CODEPLAN_SANDBOX_SECRET"}})


def serve(root: str, weak: bool) -> None:
    sys.path.insert(0, root)
    from dataclasses import asdict
    import sandbox
    from problems import Problem
    with open(f"{HOME}/keep.txt", "w") as f:
        f.write("precious")
    try:
        pool = sandbox.Pool(workers=2, timeout=1.0, memory_mb=256, allow_weak_isolation=weak)
    except sandbox.IsolationError as e:
        print(json.dumps({"refused": str(e)}), flush=True)
        return
    print(json.dumps({"mode": pool.mode, "layers": pool.layers, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if "home" in req:
            answer = {name: open(os.path.join(HOME, name)).read() for name in sorted(os.listdir(HOME))}
        else:
            answer = asdict(pool.submit(Problem.from_dict(req["problem"]), req["code"], req["tests"],
                                        req["timeout"]).result())
        print(json.dumps(answer), flush=True)
    pool.close()


if __name__ == "__main__":
    if sys.argv[1] == "launch":
        launch(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "userns", sys.argv[5] == "weak")
    else:
        serve(sys.argv[2], sys.argv[3] == "weak")
