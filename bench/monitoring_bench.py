"""The cost of monitoring: Predict throughput with prediction events on vs off (same run, rounds
alternated), and how many events per second one monitoring consumer applies.

    .venv/bin/python -m bench.monitoring_bench [--seconds 4] [--rounds 3] [--events 50000]

Starts its own Redis and two inference services (events on / off) on free ports, with iris-knn
built into a temporary model repository.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import grpc
import redis.asyncio as aioredis
from protoserve.inference.v1 import inference_service_pb2_grpc

from inference_svc.events import BATCH_FIELD, PredictionEventPublisher, _Record, new_prediction_ids
from monitoring_svc.aggregates import Keys, Window
from monitoring_svc.consumer import EventConsumer
from monitoring_svc.profiles import ProfileStore
from protoserve_models.builtin.build import build_models
from protoserve_models.card import ModelCard
from protoserve_models.model import PredictionBatch
from protoserve_runtime.redis_server import EmbeddedRedis
from tests.harness import ServiceProcess
from tests.inference.rows import predict_request

TICK = os.sysconf("SC_CLK_TCK")
ROW = {"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 4.2, "petal_width": 1.5}


async def throughput(address: str, rows: int, seconds: float, concurrency: int) -> float:
    """Predict requests per second that `concurrency` clients get through in `seconds`."""
    request = predict_request("iris-knn", [ROW] * rows)
    done = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = inference_service_pb2_grpc.InferenceServiceStub(channel)
        await stub.Predict(request)  # warm up
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await stub.Predict(request)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


async def consumer_rate(redis_url: str, repository: Path, events: int) -> float:
    """Events per second one consumer applies from a stream filled beforehand."""
    client = aioredis.Redis.from_url(redis_url)
    stream = "bench:consumer"
    card = ModelCard.read(repository / "iris-knn" / "1")
    import numpy as np

    inputs = np.tile(np.array([list(ROW.values())]), (100, 1))
    outputs = PredictionBatch(probabilities=np.full((100, 3), 1 / 3), label_indices=np.ones(100, dtype=np.int64))
    record = _Record("iris-knn", "1", time.time(), 0.002, 100, card, inputs, outputs, [f"bench-{i}" for i in range(100)])
    entry = {BATCH_FIELD: b"".join(record.encode() * 10)}  # 1,000 events, as the publisher's flushes hold
    for _ in range(0, events, 1000):
        await client.xadd(stream, entry)  # type: ignore[arg-type]
    windows = [Window("5m", 300), Window("1h", 3600), Window("24h", 86400)]
    consumer = EventConsumer(client, stream, "bench", "bench-1", Keys("bench:monitoring"), windows, ProfileStore(repository))
    await consumer.ensure_group()
    started = time.perf_counter()
    applied = 0
    while applied < events:
        applied += await consumer.step(block_ms=100)
    rate = applied / (time.perf_counter() - started)
    await client.aclose()
    return rate


async def publisher_cost(redis_url: str, card: ModelCard, rows: int, requests: int) -> float:
    """CPU microseconds the publisher adds to one request of `rows` rows, in isolation: buffering,
    encoding and writing to Redis (flushed every 1,000 rows, as by default)."""
    import numpy as np

    publisher = PredictionEventPublisher(aioredis.Redis.from_url(redis_url), "bench:publisher", buffer_rows=10**7)
    inputs = np.tile(np.array([list(ROW.values())]), (rows, 1))
    outputs = PredictionBatch(probabilities=np.full((rows, 3), 1 / 3), label_indices=np.ones(rows, dtype=np.int64))
    started = time.process_time()
    for i in range(requests):
        publisher.predictions(card, inputs, outputs, new_prediction_ids(rows), 0.001)
        if (i + 1) * rows % 1000 < rows:
            await publisher.flush()
    await publisher.flush()
    cost = (time.process_time() - started) / requests * 1e6
    await publisher.close()
    return cost


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (robust to a busy machine, unlike throughput)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def measure(service: ServiceProcess, rows: int, seconds: float, concurrency: int) -> tuple[float, float]:
    """(requests per second, server CPU microseconds per request) over one round."""
    assert service.process is not None
    before = cpu_seconds(service.process.pid)
    started = time.perf_counter()
    rate = asyncio.run(throughput(service.address, rows, seconds, concurrency))
    requests = rate * (time.perf_counter() - started)
    return rate, (cpu_seconds(service.process.pid) - before) / requests * 1e6


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one measuring round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per configuration, alternated")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--events", type=int, default=50_000, help="events for the consumer measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_models(root / "models", ["iris-knn"])
        redis_server = EmbeddedRedis(root / "redis")
        url = redis_server.start()
        base = {"PROTOSERVE_MODEL_REPOSITORY": str(root / "models"), "PROTOSERVE_REDIS_URL": url,
                "PROTOSERVE_INFERENCE_METRICS_ADDRESS": "127.0.0.1:0", "PROTOSERVE_LOG_LEVEL": "warning",
                "PROTOSERVE_INFERENCE_WORKERS": "1"}  # one process each: its CPU time is the request cost
        services = {
            "on": ServiceProcess("inference_svc.main", "PROTOSERVE_INFERENCE_ADDRESS", base, root / "on.log"),
            "off": ServiceProcess("inference_svc.main", "PROTOSERVE_INFERENCE_ADDRESS",
                                  {**base, "PROTOSERVE_EVENTS_ENABLED": "false"}, root / "off.log"),
        }
        try:
            for service in services.values():
                service.start()
            print("| rows/request | events off: req/s | events on: req/s | change "
                  "| off: server CPU µs/req | on: server CPU µs/req | change |")
            print("|---|---|---|---|---|---|---|")
            for rows in (1, 100):
                rates: dict[str, list[float]] = {"on": [], "off": []}
                cpu: dict[str, list[float]] = {"on": [], "off": []}
                for round_ in range(args.rounds):  # alternate the order: load on the machine drifts
                    for name in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                        rate, micros = measure(services[name], rows, args.seconds, args.concurrency)
                        rates[name].append(rate)
                        cpu[name].append(micros)
                off, on = median(rates["off"]), median(rates["on"])
                cpu_off, cpu_on = median(cpu["off"]), median(cpu["on"])
                print(f"| {rows} | {off:.0f} | {on:.0f} | {(on - off) / off:+.1%} | {cpu_off:.0f} | {cpu_on:.0f} | "
                      f"{(cpu_on - cpu_off) / cpu_off:+.1%} |")
            card = ModelCard.read(root / "models" / "iris-knn" / "1")
            for rows in (1, 100):
                cost = asyncio.run(publisher_cost(url, card, rows, 20_000 // rows))
                print(f"\npublisher alone, {rows}-row requests: {cost:.0f} µs of CPU per request", end="")
            print()
            rate = asyncio.run(consumer_rate(url, root / "models", args.events))
            print(f"\nmonitoring consumer, one replica: {rate:.0f} events/s ({args.events} iris-knn events)")
        finally:
            for service in services.values():
                service.terminate()
            redis_server.stop()


if __name__ == "__main__":
    main()
