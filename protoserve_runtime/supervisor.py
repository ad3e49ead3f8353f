"""Runs each service as its own child process, as ``protoserve up`` does, restarts one that dies
(with backoff), and stops them all.

Every child dies with its parent: a supervisor killed with -9 (or by the OOM killer) leaves no
service behind holding its port; the kernel sends the child SIGTERM (PR_SET_PDEATHSIG), so it
drains and stops as on any other SIGTERM.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from protoserve_runtime.child_logs import LogRelay

PR_SET_PDEATHSIG = 1  # linux/prctl.h


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl (Linux), looked up once: never between fork and exec, where a lookup (it may
    run a subprocess) could wait forever on a lock another thread of the parent held."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl  # type: ignore[no-any-return]


def die_with_parent(parent_pid: int | None = None) -> None:
    """Ask the kernel to send this process SIGTERM when its parent dies (Linux; a no-op elsewhere).
    With parent_pid, exit at once if the parent is already gone (it died before the request)."""
    prctl = _prctl()
    if prctl is None:
        return
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def child_setup() -> Callable[[], None]:
    """A preexec_fn for a child that dies with this process: only a prctl call between fork and
    exec, its function looked up here, in the parent."""
    _prctl()
    return functools.partial(die_with_parent, os.getpid())


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # time.monotonic() of the last start
    restarts: int = 0
    quick_exits: int = 0  # exits in a row that came soon after a start
    restart_at: float | None = None  # when a restart is due, while one is


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff between restarts; a child that keeps dying soon after it starts is given up on."""

    delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
    stable_seconds: float = 60.0  # a child that ran this long died for a new reason: its backoff starts over
    max_quick_exits: int = 5


# Tells a child how many times it was restarted: the services export it as protoserve_process_restarts.
RESTARTS_VARIABLE = "PROTOSERVE_RESTARTS"


class Supervisor:
    def __init__(self, policy: RestartPolicy | None = None, relay: LogRelay | None = None) -> None:
        self.children: list[Child] = []
        self.policy = policy or RestartPolicy()
        self.relay = relay  # None: the children write to this process's stderr directly

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Child:
        child = Child(name, list(argv), dict(env or {}))
        self._spawn(child)
        self.children.append(child)
        return child

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.argv, env={**os.environ, **child.env, RESTARTS_VARIABLE: str(child.restarts)},
            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE if self.relay else None,
            preexec_fn=child_setup(),
        )
        if self.relay is not None:
            assert child.process.stderr is not None
            self.relay.attach(child.name, child.process.stderr)
        child.started = time.monotonic()
        child.restart_at = None

    def status(self) -> list[dict[str, object]]:
        """Each child: its name, pid, state (running, restarting or exited) and restarts so far."""
        rows: list[dict[str, object]] = []
        for child in self.children:
            alive = child.process is not None and child.process.poll() is None
            state = "running" if alive else "restarting" if child.restart_at is not None else "exited"
            rows.append({"name": child.name, "pid": child.process.pid if child.process else 0, "state": state,
                         "restarts": child.restarts})
        return rows

    def first_exited(self) -> Child | None:
        return next(iter(self.exited()), None)

    def exited(self) -> list[Child]:
        """Children that have ended and are not waiting for a restart."""
        return [c for c in self.children if c.restart_at is None and c.process and c.process.poll() is not None]

    def schedule_restart(self, child: Child) -> float | None:
        """Plan child's restart after its backoff; None when it keeps dying soon after starting."""
        if time.monotonic() - child.started >= self.policy.stable_seconds:
            child.quick_exits = 0
        child.quick_exits += 1
        if child.quick_exits > self.policy.max_quick_exits:
            return None
        delay = self.policy.delays[min(child.quick_exits, len(self.policy.delays)) - 1]
        child.restart_at = time.monotonic() + delay
        return delay

    def restart_due(self) -> list[Child]:
        """Start again the children whose restart is due; returns them."""
        now = time.monotonic()
        due = [c for c in self.children if c.restart_at is not None and c.restart_at <= now]
        for child in due:
            child.restarts += 1
            self._spawn(child)
        return due

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
