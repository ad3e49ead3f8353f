"""Runs each service as its own child process, as ``protoserve up`` does, and stops them all.

Every child dies with its parent: a supervisor killed with -9 (or by the OOM killer) leaves no
service behind holding its port; the kernel sends the child SIGTERM (PR_SET_PDEATHSIG), so it
drains and stops as on any other SIGTERM.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int | None = None) -> None:
    """Ask the kernel to send this process SIGTERM when its parent dies (Linux; a no-op elsewhere).
    With parent_pid, exit at once if the parent is already gone (it died before the request)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Child:
        child = Child(name, list(argv), dict(env or {}))
        parent = os.getpid()
        child.process = subprocess.Popen(
            child.argv, env={**os.environ, **child.env}, stdin=subprocess.DEVNULL,
            preexec_fn=lambda: die_with_parent(parent),  # only a prctl call between fork and exec
        )
        self.children.append(child)
        return child

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process and c.process.poll() is not None), None)

    def stop_all(self, timeout: float = 15.0) -> None:
        """SIGTERM in reverse start order (front doors first), then SIGKILL what is left."""
        for child in reversed(self.children):
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{child.name} did not stop in {timeout:.0f}s; killing it", file=sys.stderr)
                child.process.kill()
                child.process.wait()
