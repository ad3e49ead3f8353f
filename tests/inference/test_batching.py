"""Dynamic batching: stacking while busy, exact split back, bounded queue, deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput

from inference_svc.batching import BatchSettings, ModelBatcher
from protoserve_models.model import LoadedModel, PredictionBatch
from protoserve_models.repository import PROJECT_TRUSTED_TYPES, load_model_file
from protoserve_runtime.errors import DeadlineExceeded, ResourceExhausted
from protoserve_runtime.grpc_errors import status_code_for
from tests.conftest import start_inference


def load(model_repository: Path, name: str) -> LoadedModel:
    return load_model_file(model_repository / name / "1", PROJECT_TRUSTED_TYPES)


class GatedRunner:
    """Runs the real model, but only when the test opens the gate; records each call's rows."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls: list[int] = []

    async def __call__(self, model: LoadedModel, inputs: np.ndarray) -> PredictionBatch:
        self.calls.append(len(inputs))
        await self.gate.wait()
        return model.predict(inputs)


def iris_rows(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low, high = [4, 2, 1, 0.1], [8, 4.5, 7, 2.5]
    return rng.uniform(low, high, size=(count, 4))


def test_busy_model_stacks_queue_and_answers_full_queue(model_repository: Path) -> None:
    model = load(model_repository, "iris-knn")
    rows = iris_rows(4)

    async def scenario() -> None:
        runner = GatedRunner()
        batcher = ModelBatcher(model, runner, BatchSettings(max_batch_size=64, max_queue_delay=0.0, max_queue_size=2))
        first = asyncio.create_task(batcher.submit(rows[:1]))
        await asyncio.sleep(0)  # the idle model takes the first request at once
        await asyncio.sleep(0)
        assert runner.calls == [1]
        queued = [asyncio.create_task(batcher.submit(rows[i:i + 1])) for i in (1, 2)]
        await asyncio.sleep(0)
        assert batcher.queued == 2
        with pytest.raises(ResourceExhausted) as caught:
            await batcher.submit(rows[3:4])
        assert status_code_for(caught.value) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "iris-knn" in caught.value.message and "queued" in caught.value.message
        runner.gate.set()
        answers = [await first] + [await q for q in queued]
        assert runner.calls == [1, 2]  # the two that waited ran as one stacked call
        for i, answer in enumerate(answers):
            np.testing.assert_array_equal(answer.probabilities, model.predict(rows[i:i + 1]).probabilities)

    asyncio.run(scenario())


def test_expired_request_is_dropped_before_compute(model_repository: Path) -> None:
    model = load(model_repository, "iris-knn")
    rows = iris_rows(3)

    async def scenario() -> None:
        runner = GatedRunner()
        batcher = ModelBatcher(model, runner, BatchSettings(max_batch_size=64, max_queue_delay=0.0, max_queue_size=8))
        first = asyncio.create_task(batcher.submit(rows[:1]))
        await asyncio.sleep(0)
        expired = asyncio.create_task(batcher.submit(rows[1:2], deadline=time.monotonic() - 1))
        alive = asyncio.create_task(batcher.submit(rows[2:3], deadline=time.monotonic() + 3600))
        await asyncio.sleep(0)
        runner.gate.set()
        await first
        with pytest.raises(DeadlineExceeded):
            await expired
        np.testing.assert_array_equal((await alive).probabilities, model.predict(rows[2:3]).probabilities)
        assert runner.calls == [1, 1]  # the expired row never reached the model

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def roomy_inference(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service whose queue holds every request of the test below: how many wait at once depends on
    how fast the machine drains them, and a refusal (tested elsewhere) is not what it checks."""
    service = start_inference(model_repository, tmp_path_factory.mktemp("roomy"), PROTOSERVE_MAX_QUEUE_SIZE="1000",
                              PROTOSERVE_INFERENCE_WORKERS="1")
    yield service.address
    service.terminate()


def test_a_thousand_concurrent_requests_each_get_their_own_answer(roomy_inference: str, model_repository: Path) -> None:
    """Distinct rows, all in flight at once over v2 gRPC; each answer equals a direct predict."""
    inference_address = roomy_inference
    model = load(model_repository, "regression-gp")
    rng = np.random.default_rng(7)
    rows = rng.uniform([20, 18, 60, 3], [80, 45, 130, 6.5], size=(1000, 4))  # age, bmi, bp, s5

    async def one(client: triton_aio.InferenceServerClient, i: int) -> tuple[float, float]:
        tensor = InferInput("input", [1, 4], "FP64")
        tensor.set_data_from_numpy(rows[i:i + 1])
        result = await client.infer("regression-gp", [tensor], request_id=str(i))
        assert result.get_response().id == str(i)
        return float(result.as_numpy("mean")[0]), float(result.as_numpy("variance")[0])

    async def scenario() -> list[tuple[float, float]]:
        client = triton_aio.InferenceServerClient(inference_address)
        try:
            return await asyncio.gather(*(one(client, i) for i in range(len(rows))))
        finally:
            await client.close()

    answers = np.array(asyncio.run(scenario()))
    direct = [model.predict(rows[i:i + 1]) for i in range(len(rows))]
    # Stacked rows may differ from single-row calls in the last bits (BLAS summation order).
    np.testing.assert_allclose(answers[:, 0], [d.values[0] for d in direct], rtol=1e-9)
    np.testing.assert_allclose(answers[:, 1], [d.variances[0] for d in direct], rtol=1e-6, atol=1e-9)
    assert len(set(answers[:, 0].tolist())) > 990  # distinct answers: a mix-up could not pass


def test_fast_kernel_calls_run_on_the_loop_and_stack_behind_a_busy_model(model_repository: Path) -> None:
    model = load_model_file(model_repository / "iris-knn" / "1", PROJECT_TRUSTED_TYPES, fast_kernel=True)
    assert model.fast
    rows = iris_rows(18)
    inline_calls: list[int] = []
    predict = model.predict

    def recording(inputs: np.ndarray) -> PredictionBatch:
        inline_calls.append(len(inputs))
        return predict(inputs)

    async def scenario() -> None:
        runner = GatedRunner()
        settings = BatchSettings(max_batch_size=64, max_queue_delay=0.0, max_queue_size=8, inline_max_rows=4)
        batcher = ModelBatcher(model, runner, settings)
        model.predict = recording  # type: ignore[method-assign]
        # An idle model answers a small call in the caller's own step, on the loop.
        first = await batcher.submit(rows[0:1])
        assert inline_calls == [1] and runner.calls == []
        # Ten rows are over the inline limit: they go to the runner (the predict thread), which
        # holds them until the gate opens; small calls that arrive meanwhile queue up behind it...
        big = asyncio.create_task(batcher.submit(rows[4:14]))
        await asyncio.sleep(0.01)
        assert runner.calls == [10]
        small = [asyncio.create_task(batcher.submit(rows[i:i + 1])) for i in (14, 15, 16, 17)]
        await asyncio.sleep(0.01)
        assert batcher.queued == 4 and inline_calls == [1]
        # ...and are stacked into one call on the loop once it is free.
        runner.gate.set()
        answers = await asyncio.gather(*small)
        assert runner.calls == [10] and inline_calls == [1, 10, 4]  # the runner called predict too
        np.testing.assert_array_equal(first.probabilities, predict(rows[0:1]).probabilities)
        np.testing.assert_array_equal((await big).probabilities, predict(rows[4:14]).probabilities)
        for i, answer in zip((14, 15, 16, 17), answers):
            np.testing.assert_array_equal(answer.probabilities, predict(rows[i:i + 1]).probabilities)

    asyncio.run(scenario())
