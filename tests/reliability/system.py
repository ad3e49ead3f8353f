"""The whole system on loopback for reliability tests and benches: Redis, inference replicas,
explain, the gateway, and the services and workers that exist (monitoring, job workers).

Every process is a real one started as `protoserve up` starts it; each can be killed with SIGKILL
and started again on the same address, and every process's RSS and open descriptors can be read.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from protoserve_runtime.auth import KeyStore
from protoserve_runtime.redis_server import EmbeddedRedis
from tests.gateway.conftest import GatewayProcess
from tests.harness import REPO_ROOT, ServiceProcess

SCOPES = ("predict", "explain", "monitor", "admin")


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


HAS_JOBS = has_module("protoserve.jobs.v1.job_service_pb2")
HAS_MONITORING = has_module("monitoring_svc.main")


class Restartable(ServiceProcess):
    """A service that comes back on the address it had, as a supervisor would restart it."""

    def restart(self, timeout: float = 120.0) -> None:
        env = {**os.environ, **self.extra_env, self.address_setting: self.address}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", self.module], env=env, stdout=log, stderr=log,
                                            cwd=REPO_ROOT)
        self._wait(timeout)


class RestartableGateway(GatewayProcess, Restartable):
    pass


class Worker:
    """One `protoserve worker` process (job consumer)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([str(Path(sys.executable).with_name("protoserve")), "worker"],
                                            env={**os.environ, **self.env}, stdout=log, stderr=log, cwd=REPO_ROOT)

    restart = start

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def terminate(self, timeout: float = 30.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class System:
    """Start with ``System.start(root, model_repository)``; stop with ``stop()``."""

    root: Path
    redis: EmbeddedRedis
    redis_url: str
    keys: dict[str, str]
    services: dict[str, ServiceProcess | Worker] = field(default_factory=dict)

    @classmethod
    def start(cls, root: Path, model_repository: Path, *, replicas: int = 2, workers: int = 1,
              auth: bool = True, **settings: str) -> System:
        data_dir = root / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        store = KeyStore(data_dir / "api_keys.json")
        keys = {scope: store.create(f"{scope}-key", [scope])[0] for scope in SCOPES}
        # every scope but admin: may call everything except what changes the served models
        keys["user"] = store.create("user-key", [s for s in SCOPES if s != "admin"])[0]
        redis = EmbeddedRedis(root / "redis")
        redis_url = redis.start()
        system = cls(root, redis, redis_url, keys)
        env = {"PROTOSERVE_MODEL_REPOSITORY": str(model_repository), "PROTOSERVE_DATA_DIR": str(data_dir),
               "PROTOSERVE_AUTH": "on" if auth else "off", "PROTOSERVE_REDIS_URL": redis_url,
               "PROTOSERVE_REDIS_PREFIX": f"rel-{uuid.uuid4().hex[:8]}", "PROTOSERVE_INFERENCE_WORKERS": "1",
               "PROTOSERVE_EXPLAIN_WORKERS": "1",
               **{f"PROTOSERVE_{s}_METRICS_ADDRESS": "127.0.0.1:0" for s in ("INFERENCE", "EXPLAIN", "MONITORING")},
               "PROTOSERVE_JOB_TTL_SECONDS": "15",  # finished jobs expire within a soak's warm-up
               "PROTOSERVE_MONITORING_FEEDBACK_TTL_SECONDS": "15",  # and so do feedback records
               **settings}
        try:
            system._start_all(env, replicas, workers)
        except BaseException:
            system.stop()
            raise
        return system

    def _add(self, name: str, service: ServiceProcess | Worker) -> None:
        self.services[name] = service
        service.start()

    def _start_all(self, env: dict[str, str], replicas: int, workers: int) -> None:
        for i in range(replicas):
            self._add(f"inference-{i}", Restartable("inference_svc.main", "PROTOSERVE_INFERENCE_ADDRESS", env,
                                                    self.root / f"inference-{i}.log"))
        self._add("explain", Restartable("explain_svc.main", "PROTOSERVE_EXPLAIN_ADDRESS", env,
                                         self.root / "explain.log"))
        gateway_env = {**env, "PROTOSERVE_EXPLAIN_ADDRESS": self.address("explain"),
                       "PROTOSERVE_INFERENCE_REPLICAS": ",".join(self.address(f"inference-{i}") for i in range(replicas)),
                       "PROTOSERVE_HEALTH_INTERVAL_SECONDS": "0.2"}
        if HAS_MONITORING:
            self._add("monitoring", Restartable("monitoring_svc.main", "PROTOSERVE_MONITORING_ADDRESS", env,
                                                self.root / "monitoring.log"))
            gateway_env["PROTOSERVE_MONITORING_ADDRESS"] = self.address("monitoring")
        if HAS_JOBS:
            for i in range(workers):
                self._add(f"worker-{i}", Worker(env, self.root / f"worker-{i}.log"))
        self._add("gateway", RestartableGateway(gateway_env, self.root / "gateway.log"))

    def address(self, name: str) -> str:
        service = self.services[name]
        assert isinstance(service, ServiceProcess)
        return service.address

    @property
    def gateway_url(self) -> str:
        return f"http://{self.address('gateway')}"

    def bearer(self, scope: str = "admin") -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[scope]}"}

    def metadata(self, scope: str = "admin") -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.keys[scope]}"),)

    def kill(self, name: str) -> None:
        """SIGKILL a service and every process it started (worker processes share its port)."""
        if name == "redis":
            assert self.redis.process is not None
            self.redis.process.kill()
            self.redis.process.wait()
            return
        service = self.services[name]
        assert service.process is not None
        for child in _tree(service.process.pid)[1:]:
            child.kill()
        service.kill()

    def restart(self, name: str) -> None:
        if name == "redis":
            self.redis.start()  # same port and data dir: the AOF brings the data back
            return
        service = self.services[name]
        assert isinstance(service, (Restartable, Worker))
        service.restart()

    def pids(self) -> dict[str, list[int]]:
        """Every live process of the system by service, Redis included."""
        out = {name: [p.pid for p in _tree(s.process.pid)] for name, s in self.services.items()
               if s.process is not None and s.process.poll() is None}
        if self.redis.process is not None:
            out["redis"] = [self.redis.process.pid]
        return out

    def resources(self) -> dict[str, tuple[int, int]]:
        """(RSS bytes, open descriptors) of every process, keyed ``service/pid``."""
        usage = {}
        for name, pids in self.pids().items():
            for pid in pids:
                try:
                    proc = psutil.Process(pid)
                    usage[f"{name}/{pid}"] = (proc.memory_info().rss, proc.num_fds())
                except psutil.NoSuchProcess:
                    continue
        return usage

    def logs(self) -> str:
        return "\n".join(s.log_text() for s in self.services.values())

    def alive(self) -> dict[str, bool]:
        return {name: s.process is not None and s.process.poll() is None for name, s in self.services.items()}

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            try:
                service.terminate()
            except subprocess.TimeoutExpired:
                service.kill()
        self.redis.stop()


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def wait_until(predicate: object, timeout: float, interval: float = 0.1) -> float:
    """Seconds until ``predicate()`` is true; AssertionError after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if callable(predicate) and predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s: {predicate}")
