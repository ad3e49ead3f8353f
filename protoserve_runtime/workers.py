"""Several worker processes of one service sharing its port (SO_REUSEPORT), one per CPU by default.

The inference and explain services run this way. The kernel spreads connections over the workers;
each has its own event loop and models. Readiness is shared through a ReadyBoard: one byte per
worker in shared memory, set when that worker has loaded its models and cleared when it stops or
dies. Every worker reports health SERVING only while every byte is set, so whichever worker a
health check lands on, SERVING means all of them are ready. Without Redis the workers share the
serving state through a file the supervisor gives them. The parent restarts a worker that dies
after it was ready, stops all (exit 1) when one fails to start, and forwards SIGTERM/SIGINT; the
workers die with it (SIGTERM from the kernel) even when it is killed with -9.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.sharedctypes import RawArray
from pathlib import Path
from typing import Any

from protoserve_runtime.settings import SettingsError
from protoserve_runtime.supervisor import die_with_parent

log = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 1.0
READY_POLL_SECONDS = 0.1


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


@dataclass(frozen=True)
class WorkerGroup:
    """The service whose workers one supervisor runs."""

    name: str  # "inference": its settings are PROTOSERVE_INFERENCE_WORKERS/_ADDRESS, its processes inference-worker-N
    address: str
    grace_seconds: float


def check_address(address: str, workers: int, service: str = "inference") -> None:
    if workers > 1 and address.rsplit(":", 1)[-1] == "0":
        prefix = f"PROTOSERVE_{service.upper()}"
        raise SettingsError(f"{prefix}_WORKERS > 1 needs a fixed port in {prefix}_ADDRESS, not port 0")


async def wait_for_siblings(board: ReadyBoard, index: int) -> None:
    """Mark this worker ready, then wait until every worker is (health stays NOT_SERVING meanwhile)."""
    board.set(index, True)
    while not board.all_ready():
        await asyncio.sleep(READY_POLL_SECONDS)


async def follow_siblings(board: ReadyBoard, set_serving: Callable[[bool], Awaitable[None]]) -> None:
    """Report SERVING while every worker is ready and NOT_SERVING while one is not (forever)."""
    serving = True
    while True:
        await asyncio.sleep(READY_POLL_SECONDS)
        if board.all_ready() != serving:
            serving = not serving
            await set_serving(serving)


class StopSignals:
    """Set once SIGTERM or SIGINT arrives: a supervisor's loop runs until then."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._request)
        signal.signal(signal.SIGINT, self._request)

    def _request(self, signum: int, frame: Any) -> None:
        self.requested = True


def requested_workers(prog: str, description: str) -> int | None:
    """The --workers option of a service's main, if given (its own argv: `protoserve serve` passes more)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--workers", type=int, help="worker processes sharing the port (default: one per CPU)")
    args, _ = parser.parse_known_args()
    return args.workers  # type: ignore[no-any-return]


def run_workers(group: WorkerGroup, workers: int, worker_module: str, settings: Any) -> None:
    """One worker in this process, or ``workers`` processes sharing group.address. ``worker_module``
    builds the service: its ``serve(settings)`` runs here, or its ``worker_main(settings, board, index,
    state_file)`` in each worker process. A supervisor never imports it, so it holds no models nor the
    libraries they need."""
    if workers == 1:
        asyncio.run(importlib.import_module(worker_module).serve(settings))
        return
    check_address(group.address, workers, group.name)
    raise SystemExit(supervise(group, workers, worker_module, (settings,)))


def _worker_process(worker_module: str, parent_pid: int, *args: Any) -> None:
    """A worker process's entry: it stops with its supervisor, then runs the service's worker."""
    die_with_parent(parent_pid)
    importlib.import_module(worker_module).worker_main(*args)


def supervise(group: WorkerGroup, workers: int, worker_module: str, args: tuple[Any, ...]) -> int:
    """Start the workers, restart any that dies, stop them all on SIGTERM/SIGINT."""
    context = multiprocessing.get_context("spawn")  # no fork: gRPC and threads do not survive it
    board = ReadyBoard(workers)
    shared_dir = Path(tempfile.mkdtemp(prefix="protoserve-workers-"))
    state_file = shared_dir / "serving-state.json"  # the workers' serving state when there is no Redis
    processes: list[Any] = [None] * workers
    stop = StopSignals()

    def start(index: int) -> None:
        process = context.Process(
            target=_worker_process, args=(worker_module, os.getpid(), *args, board, index, state_file),
            name=f"{group.name}-worker-{index}",
        )
        process.start()
        processes[index] = process

    for index in range(workers):
        start(index)
    log.info("workers started", extra={"workers": workers, "address": group.address})
    started = [False] * workers  # whether each worker slot has ever been ready
    failed = False
    while not stop.requested:
        multiprocessing.connection.wait([p.sentinel for p in processes], timeout=0.2)
        for index, process in enumerate(processes):
            started[index] = started[index] or bool(board.flags[index])
            if process.exitcode is None or stop.requested:
                continue
            board.set(index, False)
            if not started[index]:  # it failed to start (bad settings, port taken): give up
                log.error("worker failed to start; stopping", extra={"worker": index, "exit_code": process.exitcode})
                stop.requested = failed = True
                break
            log.error("worker exited; restarting it", extra={"worker": index, "exit_code": process.exitcode})
            time.sleep(RESTART_DELAY_SECONDS)
            start(index)
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + group.grace_seconds + 5
    for process in processes:
        process.join(max(0.1, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    shutil.rmtree(shared_dir, ignore_errors=True)
    return 1 if failed else 0
