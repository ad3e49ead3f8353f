"""The traced stand-ins of the batcher and the prediction-event sink, built by the composition root
only when tracing is on (this module imports OpenTelemetry; nothing imports it otherwise).

A batch serves several calls, each in its own trace. The model call's span goes into the trace of
the batch's first caller, as a child of its server span, and links every other caller's server
span; each caller's queue-wait span (child of its own server span) links back to the model call.
So every trace stays one tree (no span with a parent in another trace), the usual case (an idle
model: one call per batch) reads as a plain tree, and from any request one link leads to the batch
that computed it, and from the batch to every request it served.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, Tracer

from inference_svc.batching import BatchSettings, ModelBatcher, Pending, Runner
from inference_svc.core import BatcherFactory, PredictionSink
from protoserve_models.card import ModelCard
from protoserve_models.inputs import ServedInputs, input_rows
from protoserve_models.model import LoadedModel, PredictionBatch
from protoserve_runtime.errors import ProtoserveError


@dataclass
class TracedPending(Pending):
    """A queued request with the span it was queued under and when."""

    span_context: SpanContext = field(init=False)
    queued_ns: int = field(init=False)

    def __post_init__(self) -> None:
        self.span_context = trace.get_current_span().get_span_context()
        self.queued_ns = time.time_ns()


class TracedBatcher(ModelBatcher):
    pending_type = TracedPending

    def __init__(self, model: LoadedModel, run: Runner, settings: BatchSettings, tracer: Tracer) -> None:
        super().__init__(model, run, settings)
        self._tracer = tracer
        self._attributes = {"protoserve.model": model.name, "protoserve.model.version": model.version}

    def _run_inline(self, inputs: ServedInputs, deadline: float | None) -> PredictionBatch:
        with self._tracer.start_as_current_span(f"predict {self.model.name}", attributes={
            **self._attributes, "protoserve.batch.rows": input_rows(inputs), "protoserve.batch.requests": 1,
            "protoserve.batch.inline": True,
        }):
            return super()._run_inline(inputs, deadline)

    async def _compute(self, batch: list[Pending]) -> None:
        pendings = [p for p in batch if isinstance(p, TracedPending)]
        if not pendings:
            await super()._compute(batch)
            return
        first, now = pendings[0], time.time_ns()
        parent = trace.set_span_in_context(NonRecordingSpan(first.span_context))
        links = [Link(p.span_context) for p in pendings[1:] if p.span_context.is_valid]
        with self._tracer.start_as_current_span(f"predict {self.model.name}", context=parent, links=links, start_time=now,
                                                attributes={**self._attributes,
                                                            "protoserve.batch.rows": sum(p.rows for p in batch),
                                                            "protoserve.batch.requests": len(batch)}) as model_span:
            to_model = [Link(model_span.get_span_context())]
            for position, pending in enumerate(pendings):
                wait = self._tracer.start_span(
                    "batch queue wait", context=trace.set_span_in_context(NonRecordingSpan(pending.span_context)),
                    start_time=pending.queued_ns, links=to_model if position else (),
                    attributes={"protoserve.batch.position": position, "protoserve.batch.wait_ms":
                                (now - pending.queued_ns) / 1e6},
                )
                wait.end(end_time=now)
            await super()._compute(batch)


def traced_batchers(tracer: Tracer) -> BatcherFactory:
    def build(model: LoadedModel, run: Runner, settings: BatchSettings) -> ModelBatcher:
        return TracedBatcher(model, run, settings, tracer)

    return build


class TracedEvents:
    """The prediction-event sink with a span for each request's events handed to the publisher."""

    def __init__(self, sink: PredictionSink, tracer: Tracer, stream: str) -> None:
        self._sink = sink
        self._tracer = tracer
        self._stream = stream

    def predictions(
        self, card: ModelCard, inputs: ServedInputs, outputs: PredictionBatch, ids: Sequence[str], latency_seconds: float
    ) -> None:
        with self._tracer.start_as_current_span("publish prediction events", kind=trace.SpanKind.PRODUCER, attributes={
            "messaging.system": "redis", "messaging.destination.name": self._stream, "messaging.batch.message_count": len(ids),
            "protoserve.model": card.name, "protoserve.model.version": card.version,
        }):
            self._sink.predictions(card, inputs, outputs, ids, latency_seconds)

    def failure(self, model: str, version: str | None, error: ProtoserveError, latency_seconds: float) -> None:
        with self._tracer.start_as_current_span("publish prediction events", kind=trace.SpanKind.PRODUCER, attributes={
            "messaging.system": "redis", "messaging.destination.name": self._stream, "messaging.batch.message_count": 1,
            "protoserve.model": model, "protoserve.failure": type(error).__name__,
        }):
            self._sink.failure(model, version, error, latency_seconds)
