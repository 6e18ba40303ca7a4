"""Run-level files in OUT: the lock, run.json (written at start) and summary.json (written last)."""
from __future__ import annotations

import json
import os
import socket
import time

from .schema import VtonError
from .storage import OutputFolder

LOCK = ".lock"
RUN_JSON = "run.json"
SUMMARY_JSON = "summary.json"
STALE_AFTER_S = 600  # a lock not refreshed for this long belongs to a dead run on another host


class RunLockedError(VtonError):
    """Another live run holds OUT."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """A lock file in OUT; a dead run's lock (its process gone, or not refreshed) is taken over."""

    def __init__(self, out: OutputFolder):
        self.out = out
        self.owner = {"host": socket.gethostname(), "pid": os.getpid()}

    def _holder(self) -> dict | None:
        try:
            return json.loads(self.out.read_bytes(LOCK))
        except (FileNotFoundError, OSError, ValueError):
            return None

    def _is_live(self, holder: dict) -> bool:
        if holder.get("host") == self.owner["host"]:
            return holder.get("pid") != self.owner["pid"] and _alive(int(holder.get("pid", 0)))
        return time.time() - float(holder.get("heartbeat", 0)) < STALE_AFTER_S

    def acquire(self) -> None:
        holder = self._holder()
        if holder is not None and self._is_live(holder):
            raise RunLockedError(
                f"another run (pid {holder.get('pid')} on {holder.get('host')}) is writing to "
                f"{self.out.root}; wait for it to finish or stop it first")
        self.refresh()

    def refresh(self) -> None:
        self.out.write_bytes(LOCK, json.dumps({**self.owner, "heartbeat": time.time()}).encode())

    def release(self) -> None:
        holder = self._holder()
        if holder is not None and holder.get("pid") == self.owner["pid"] and holder.get("host") == self.owner["host"]:
            self.out.delete(LOCK)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def write_json(out: OutputFolder, relative: str, document: dict) -> None:
    out.write_bytes(relative, (json.dumps(document, indent=2, default=str) + "\n").encode())


def read_json(out: OutputFolder, relative: str) -> dict | None:
    if not out.exists(relative):
        return None
    return json.loads(out.read_bytes(relative))
