"""Runs each service as its own child process, as ``protoserve up`` does, and stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


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
        child.process = subprocess.Popen(
            child.argv, env={**os.environ, **child.env}, stdin=subprocess.DEVNULL
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
