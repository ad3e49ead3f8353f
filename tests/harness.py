"""Test harness: real service processes on ephemeral ports, each with its own data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from protoserve_runtime import health
from protoserve_runtime.redis_server import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
# Services under test serve /metrics on free ports, so that several run side by side.
FREE_METRICS_PORTS = {
    f"PROTOSERVE_{name}_METRICS_ADDRESS": "127.0.0.1:0" for name in ("INFERENCE", "EXPLAIN", "MONITORING")
}
# Fresh connections a check must hold on to count as every worker's. The kernel spreads them over the
# workers at random, so with two workers all of them land on the same one with odds 2**-31: eight
# connections (odds 1/128) let a wait pass while one worker was still behind, about one run in twenty.
CONNECTIONS_FOR_EVERY_WORKER = 32
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def fresh_port() -> int:
    """A free port never handed to another service of this test run. Services started side by side
    each pick one before any binds it, and two inference services on one port would share it
    (SO_REUSEPORT) instead of failing."""
    with _handed_out_lock:
        port = free_port()
        while port in _handed_out:
            port = free_port()
        _handed_out.add(port)
        return port


def start_side_by_side(*starts: Callable[[], ServiceProcess]) -> list[ServiceProcess]:
    """Run several services' start functions at once (each mostly imports and loads models, and the
    machine has two cores); if one fails, the ones that started are stopped and its error raised."""
    with ThreadPoolExecutor(max_workers=len(starts)) as pool:
        futures = [pool.submit(start) for start in starts]
        errors = [future.exception() for future in futures]
    failed = next((error for error in errors if error is not None), None)
    if failed is not None:
        for future, error in zip(futures, errors):
            if error is None:
                future.result().kill()
        raise failed
    return [future.result() for future in futures]


class ServiceProcess:
    """One service started as ``python -m MODULE`` with PROTOSERVE_* settings, like `protoserve up` does."""

    def __init__(self, module: str, address_setting: str, env: Mapping[str, str], log_path: Path) -> None:
        self.module = module
        self.address_setting = address_setting
        self.extra_env = dict(env)
        self.log_path = log_path
        self.address = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> str:
        for _attempt in range(3):  # a port picked free can be taken before the child binds it
            self.address = f"127.0.0.1:{fresh_port()}"
            env = {**os.environ, **FREE_METRICS_PORTS, **self.extra_env, self.address_setting: self.address}
            log = self.log_path.open("ab")
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module], env=env, stdout=log, stderr=log, cwd=REPO_ROOT
            )
            log.close()
            try:
                self._wait(timeout)
                return self.address
            except RuntimeError:
                self.kill()
        raise RuntimeError(f"{self.module} did not start; log: {self.log_path}\n{self.log_text()[-4000:]}")

    def _wait(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("exited")
            if self.ready():
                return
            time.sleep(0.1)
        raise RuntimeError("timed out")

    def ready(self) -> bool:
        """Whether the service answers; gRPC health by default, HTTP services override it."""
        return health.check(self.address, timeout=1.0) == "SERVING"

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
