"""Several inference worker processes sharing one port (SO_REUSEPORT), one per CPU by default.

The kernel spreads connections over the workers; each has its own event loop, models and
batchers. Readiness is shared through a ReadyBoard: one byte per worker in shared memory, set
when that worker has loaded its models and cleared when it stops or dies. Every worker reports
health SERVING (and v2 ServerReady true) only while every byte is set, so whichever worker a
health check lands on, SERVING means all of them are ready. Model loads and unloads asked of one
worker reach all of them through the serving state (Redis, else a file they share). The parent restarts a worker that
dies after it was ready, stops all (exit 1) when one fails to start, and forwards SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from multiprocessing.sharedctypes import RawArray
from pathlib import Path
from typing import Any

from inference_svc.settings import InferenceSettings
from protoserve_runtime.settings import SettingsError

log = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 1.0


class ReadyBoard:
    """One shared byte per worker: 1 when that worker is ready."""

    def __init__(self, size: int, flags: Any = None) -> None:
        self.size = size
        self.flags = flags if flags is not None else RawArray("b", size)

    def set(self, index: int, ready: bool) -> None:
        self.flags[index] = 1 if ready else 0

    def all_ready(self) -> bool:
        return all(self.flags[i] for i in range(self.size))


def worker_count(requested: int) -> int:
    """The number of workers: as requested, or one per CPU this process may run on when 0."""
    if requested > 0:
        return requested
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_address(address: str, workers: int) -> None:
    if workers > 1 and address.rsplit(":", 1)[-1] == "0":
        raise SettingsError(
            "PROTOSERVE_INFERENCE_WORKERS > 1 needs a fixed port in PROTOSERVE_INFERENCE_ADDRESS, not port 0"
        )


Worker = Callable[[InferenceSettings, ReadyBoard, int, Path], None]


def supervise(settings: InferenceSettings, workers: int, worker: Worker) -> int:
    """Start the workers, restart any that dies, stop them all on SIGTERM/SIGINT."""
    context = multiprocessing.get_context("spawn")  # no fork: gRPC and threads do not survive it
    board = ReadyBoard(workers)
    shared_dir = Path(tempfile.mkdtemp(prefix="protoserve-workers-"))
    state_file = shared_dir / "serving-state.json"  # the workers' serving state when there is no Redis
    processes: list[Any] = [None] * workers
    stopping = False

    def request_stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def start(index: int) -> None:
        process = context.Process(target=worker, args=(settings, board, index, state_file), name=f"inference-worker-{index}")
        process.start()
        processes[index] = process

    for index in range(workers):
        start(index)
    log.info("workers started", extra={"workers": workers, "address": settings.inference_address})
    started = [False] * workers  # whether each worker slot has ever been ready
    failed = False
    while not stopping:
        multiprocessing.connection.wait([p.sentinel for p in processes], timeout=0.2)
        for index, process in enumerate(processes):
            started[index] = started[index] or bool(board.flags[index])
            if process.exitcode is None or stopping:
                continue
            board.set(index, False)
            if not started[index]:  # it failed to start (bad settings, port taken): give up
                log.error("worker failed to start; stopping", extra={"worker": index, "exit_code": process.exitcode})
                stopping = failed = True
                break
            log.error("worker exited; restarting it", extra={"worker": index, "exit_code": process.exitcode})
            time.sleep(RESTART_DELAY_SECONDS)
            start(index)
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + settings.grace_seconds + 5
    for process in processes:
        process.join(max(0.1, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    shutil.rmtree(shared_dir, ignore_errors=True)
    return 1 if failed else 0
