"""The resident memory of one inference worker serving every built-in model and the bench's models
users bring (penguins-pipeline, cancer-trees), after it reports SERVING and has answered one call
for each bench model (iris-knn and those two: a call builds the model's batcher and label table).

    .venv/bin/python -m bench.worker_memory              # two starts; RSS and USS per process
    .venv/bin/python -m bench.worker_memory --workers 2  # a supervisor and two workers

The service runs as `python -m inference_svc.main` with one worker (PROTOSERVE_INFERENCE_WORKERS=1,
or --workers) and metrics on a free port, from a repository in bench/.work/memory holding the four built-in
models and the two added with `protoserve models add` (bench/user_models.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

import psutil

from bench import loadgen, payloads
from bench.run import WORK
from bench.user_models import MODELS, add
from protoserve_models.builtin.build import build_models
from protoserve_models.builtin.recipes import RECIPES
from protoserve_runtime.redis_server import free_port

STARTS = 2
USER_MODELS = ("penguins-pipeline", "cancer-trees")


def repository() -> tuple[os.PathLike[str], list[str]]:
    folder = WORK / "memory" / "models"
    build_models(folder)
    for name in USER_MODELS:
        add(folder, name, MODELS[name].fit(WORK / "estimators"))
    return folder, [*RECIPES, *USER_MODELS]


def measure(folder: os.PathLike[str], names: list[str], workers: int) -> list[tuple[str, int, int]]:
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "PROTOSERVE_MODEL_REPOSITORY": str(folder), "PROTOSERVE_INFERENCE_ADDRESS": address,
           "PROTOSERVE_INFERENCE_WORKERS": str(workers), "PROTOSERVE_LOG_LEVEL": "warning",
           "PROTOSERVE_INFERENCE_METRICS_ADDRESS": "127.0.0.1:0"}
    process = subprocess.Popen([sys.executable, "-m", "inference_svc.main"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not loadgen.server_ready(address):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the inference service did not become ready")
            time.sleep(0.2)
        for name in names:
            if name in MODELS:
                loadgen.call(address, payloads.grpc_request(MODELS[name], 1))
        time.sleep(1)
        root = psutil.Process(process.pid)
        return [(p.name(), p.memory_info().rss, p.memory_full_info().uss) for p in [root, *root.children(recursive=True)]]
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.worker_memory", description="the memory of the inference service's processes")
    parser.add_argument("--workers", type=int, default=1, help="inference worker processes (more than 1: a supervisor too)")
    workers = parser.parse_args().workers
    shutil.rmtree(WORK / "memory", ignore_errors=True)
    folder, names = repository()
    print(f"models: {', '.join(names)}")
    for start in range(1, STARTS + 1):
        for name, rss, uss in measure(folder, names, workers):
            print(f"start {start}: {name:<10} RSS {rss / 2**20:7.1f} MiB   USS {uss / 2**20:7.1f} MiB")


if __name__ == "__main__":
    main()
