"""An append-only JSON Lines file that survives crashes: teacher.py's plans file and sample.py's journal.

Each record is one os.write on an O_APPEND descriptor, then fsync, under a lock, so concurrent
workers never interleave and a kill leaves at most one torn last line, which opening the file again
repairs. Readers skip a torn last line (no newline after it) the same way.
"""
from __future__ import annotations

import json
import os
import threading


def json_line(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def repair_torn_tail(path: str) -> str | None:
    """A crash mid-write can leave a last line without its newline. If that line is a whole
    record, its newline is added; otherwise the partial line is cut off. Returns what was done."""
    if not os.path.exists(path):
        return None
    with open(path, "rb+") as f:
        content = f.read()
        if not content or content.endswith(b"\n"):
            return None
        start = content.rfind(b"\n") + 1
        tail = content[start:]
        try:
            whole = isinstance(json.loads(tail), dict)
        except ValueError:
            whole = False
        if whole:
            f.write(b"\n")
            action = f"{path}: last line had no newline; completed it"
        else:
            f.truncate(start)
            action = f"{path}: removed a torn last line ({len(tail)} bytes) left by an interrupted run"
        f.flush()
        os.fsync(f.fileno())
    return action


class Journal:
    """The file opened for appending; `repair` says what opening it repaired (None: nothing)."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        created = not os.path.exists(path)
        self.repair = repair_torn_tail(path)
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created:  # the new directory entry must survive a power cut too, not just the records
            directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def append(self, record: dict) -> None:
        line = json_line(record)
        with self._lock:
            written = os.write(self._fd, line)
            if written != len(line):  # never seen on regular files; a repaired tail is better than a lie
                raise OSError(f"{self.path}: short write ({written} of {len(line)} bytes)")
            os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)
