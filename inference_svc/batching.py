"""Adaptive dynamic batching per model version.

A request that finds its model idle runs at once (after an optional wait of up to
``max_queue_delay`` for company); requests that arrive while the model is busy queue up and are
stacked into the next call, up to ``max_batch_size`` rows. The queue is bounded: a full queue
answers ResourceExhausted instead of growing. A request whose deadline has passed, or whose
caller went away, is dropped before it is computed. Each caller gets exactly its own rows back.

A call on a fast kernel (``LoadedModel.fast``) of at most ``inline_max_rows`` rows is computed on
the event loop: tens of microseconds, less than the hop to a thread and back. When the model is
idle such a call is computed in the caller's own step, without a queue entry or a task; behind a
busy model it queues and is stacked like any other.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from protoserve_models.inputs import ServedInputs, input_rows, stack_inputs
from protoserve_models.model import LoadedModel, PredictionBatch
from protoserve_runtime.errors import DeadlineExceeded, ResourceExhausted

Runner = Callable[[LoadedModel, ServedInputs], Awaitable[PredictionBatch]]


@dataclass(frozen=True)
class BatchSettings:
    max_batch_size: int  # rows per model call; a larger single request still runs, alone
    max_queue_delay: float  # seconds an idle model waits for more rows; 0 = run at once
    max_queue_size: int  # requests waiting per model version before ResourceExhausted
    inline_max_rows: int = 0  # a call of at most this many rows on a fast kernel skips the thread hop


def deadline_after(seconds: float | None) -> float | None:
    """A time.monotonic() deadline from the caller's time remaining (None: no deadline)."""
    return None if seconds is None else time.monotonic() + seconds


@dataclass
class Pending:
    inputs: ServedInputs  # a numpy array or a DataFrame model's checked columns (check_rows)
    deadline: float | None
    future: asyncio.Future[PredictionBatch]

    @property
    def rows(self) -> int:
        return input_rows(self.inputs)


class ModelBatcher:
    """The queue and the one running call of one loaded model version (one event loop)."""

    pending_type: type[Pending] = Pending  # what a queued request is recorded as (inference_svc/traced.py adds its trace)

    def __init__(self, model: LoadedModel, run: Runner, settings: BatchSettings) -> None:
        self.model = model
        self._run = run
        self._settings = settings
        self._queue: deque[Pending] = deque()
        self._queued_rows = 0
        self._busy = False
        self._filled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None  # held so the running drain is not collected

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _inline(self, rows: int) -> bool:
        return self.model.fast and rows <= self._settings.inline_max_rows

    async def submit(self, inputs: ServedInputs, deadline: float | None = None) -> PredictionBatch:
        if len(self._queue) >= self._settings.max_queue_size:
            raise ResourceExhausted(
                f"model {self.model.name!r} version {self.model.version} has {len(self._queue)} requests "
                "queued, its limit; retry later"
            )
        if not self._busy and self._inline(input_rows(inputs)):
            return self._run_inline(inputs, deadline)
        future: asyncio.Future[PredictionBatch] = asyncio.get_running_loop().create_future()
        self._queue.append(self.pending_type(inputs, deadline, future))
        self._queued_rows += input_rows(inputs)
        if self._queued_rows >= self._settings.max_batch_size:
            self._filled.set()
        if not self._busy:
            self._busy = True
            self._task = asyncio.create_task(self._drain())
        return await future

    def _run_inline(self, inputs: ServedInputs, deadline: float | None) -> PredictionBatch:
        """An idle model on a fast kernel answers in the caller's own step: no queue, no task, no
        turn of the loop (nothing could join the batch while the loop runs it anyway)."""
        if deadline is not None and deadline <= time.monotonic():
            raise DeadlineExceeded("the deadline passed before the request was computed")
        return self.model.predict(inputs)

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._wait_for_company()
                batch = self._take()
                if batch:
                    await self._compute(batch)
        finally:
            self._busy = False

    async def _wait_for_company(self) -> None:
        delay = self._settings.max_queue_delay
        if delay <= 0 or self._queued_rows >= self._settings.max_batch_size:
            return
        self._filled.clear()
        try:
            await asyncio.wait_for(self._filled.wait(), delay)
        except TimeoutError:
            pass

    def _take(self) -> list[Pending]:
        """The next requests to stack, up to max_batch_size rows; expired ones are answered now."""
        batch: list[Pending] = []
        rows = 0
        now = time.monotonic()
        while self._queue:
            pending = self._queue[0]
            if batch and rows + pending.rows > self._settings.max_batch_size:
                break
            self._queue.popleft()
            self._queued_rows -= pending.rows
            if pending.future.done():  # the caller was cancelled
                continue
            if pending.deadline is not None and pending.deadline <= now:
                pending.future.set_exception(DeadlineExceeded("the deadline passed while the request was queued"))
                continue
            batch.append(pending)
            rows += pending.rows
        return batch

    async def _compute(self, batch: list[Pending]) -> None:
        inputs = stack_inputs([p.inputs for p in batch])  # rows in order; one DataFrame per call, if any
        try:
            if self._inline(input_rows(inputs)):
                outputs = self.model.predict(inputs)
            else:
                outputs = await self._run(self.model, inputs)
        except Exception as exc:  # every caller of the batch learns of the failure
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        start = 0
        for pending in batch:
            stop = start + pending.rows
            if not pending.future.done():
                pending.future.set_result(outputs if len(batch) == 1 else outputs.take(start, stop))
            start = stop
