"""A job worker's spans when tracing is on (this module imports OpenTelemetry; only then imported).

A job runs long after the call that submitted it has been answered, so its spans are not children
of that call: each run of a job is the root of its own trace ("run job"), with a span per batch it
predicts; both link to the SubmitJob call's span, whose traceparent the job record keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Link

from protoserve_models.jobs.record import JobRecord
from protoserve_runtime.tracing_sdk import Tracing


class TracedJobSpans:
    def __init__(self, tracing: Tracing) -> None:
        self._tracing = tracing
        self._tracer = tracing.tracer

    def _links(self, record: JobRecord) -> list[Link]:
        submitted = self._tracing.context_of(record.traceparent)
        return [Link(submitted, {"protoserve.link": "submitted by"})] if submitted is not None else []

    @contextmanager
    def job(self, record: JobRecord) -> Iterator[trace.Span]:
        with self._tracer.start_as_current_span(
            "run job", context=trace.set_span_in_context(trace.INVALID_SPAN), kind=trace.SpanKind.CONSUMER,
            links=self._links(record), attributes={
                "protoserve.job.id": record.job_id, "protoserve.job.kind": record.kind or "predict",
                "protoserve.job.attempt": record.attempts, "protoserve.model": record.model,
                "protoserve.model.version": record.version, "protoserve.job.rows": record.rows_total,
            },
        ) as span:
            yield span

    @contextmanager
    def batch(self, record: JobRecord, rows: int) -> Iterator[trace.Span]:
        with self._tracer.start_as_current_span(f"predict {record.model}", links=self._links(record), attributes={
            "protoserve.job.id": record.job_id, "protoserve.model": record.model,
            "protoserve.model.version": record.version, "protoserve.batch.rows": rows,
        }) as span:
            yield span
