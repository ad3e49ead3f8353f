"""The gRPC adapter for protoserve.jobs.v1.JobService: messages in, job core call, messages out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf import timestamp_pb2
from protoserve.jobs.v1 import job_service_pb2 as pb
from protoserve.jobs.v1 import job_service_pb2_grpc as pb_grpc

from inference_svc.converters import result_to_proto
from inference_svc.jobs.core import JobCore, Submission
from protoserve_models.jobs.payload import PayloadFormat
from protoserve_models.jobs.record import JobRecord
from protoserve_models.messages import struct_to_row
from protoserve_runtime.errors import InvalidArgument
from protoserve_runtime.grpc_errors import translate_errors, translate_stream_errors
from protoserve_runtime.server import ServiceBinding

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["JobService"].full_name
_FORMATS: dict[int, PayloadFormat | None] = {
    pb.PAYLOAD_FORMAT_UNSPECIFIED: None,
    pb.PAYLOAD_FORMAT_CSV: "csv",
    pb.PAYLOAD_FORMAT_JSON_LINES: "jsonl",
}


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp | None:
    if not seconds:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def job_to_proto(record: JobRecord) -> pb.Job:
    return pb.Job(
        job_id=record.job_id,
        model=record.model,
        version=record.version,
        state=pb.JobState.Value(f"JOB_STATE_{record.state.value}"),
        rows_total=record.rows_total,
        rows_done=record.rows_done,
        progress=record.rows_done / record.rows_total if record.rows_total else 0.0,
        create_time=_timestamp(record.created),
        start_time=_timestamp(record.started),
        finish_time=_timestamp(record.finished),
        error=record.error,
        attempts=record.attempts,
        idempotency_key=record.idempotency_key,
        result_pages=record.pages,
        page_size=record.page_size,
    )


def _page_number(token: str, field: str) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise InvalidArgument.for_field(field, "not a token this service gave")
    return int(token)


class JobServicer(pb_grpc.JobServiceServicer):
    def __init__(self, core: JobCore) -> None:
        self._core = core

    @translate_errors
    async def SubmitJob(self, request: pb.SubmitJobRequest, context: grpc.aio.ServicerContext) -> pb.SubmitJobResponse:
        submission = Submission(
            model=request.model,
            version=request.version or None,
            rows=[struct_to_row(row) for row in request.rows],
            payload=request.payload,
            payload_format=_FORMATS.get(request.payload_format),
            idempotency_key=request.idempotency_key,
        )
        return pb.SubmitJobResponse(job=job_to_proto(await self._core.submit(submission)))

    @translate_errors
    async def GetJob(self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext) -> pb.GetJobResponse:
        record = await self._core.get(request.job_id)
        response = pb.GetJobResponse(job=job_to_proto(record))
        if request.skip_results:
            return response
        page = await self._core.results(record, _page_number(request.results_page_token, "results_page_token"))
        if page.result is not None:
            response.first_row = page.first_row
            response.predictions.extend(result_to_proto(page.result))
        if page.next_page is not None:
            response.next_results_page_token = str(page.next_page)
        return response

    @translate_errors
    async def ListJobs(self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext) -> pb.ListJobsResponse:
        records, next_offset = await self._core.list(request.page_size, _page_number(request.page_token, "page_token"))
        return pb.ListJobsResponse(
            jobs=[job_to_proto(r) for r in records], next_page_token="" if next_offset is None else str(next_offset)
        )

    @translate_errors
    async def CancelJob(self, request: pb.CancelJobRequest, context: grpc.aio.ServicerContext) -> pb.CancelJobResponse:
        return pb.CancelJobResponse(job=job_to_proto(await self._core.cancel(request.job_id)))

    @translate_stream_errors
    async def WatchJob(
        self, request: pb.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchJobResponse]:
        async for record in self._core.watch(request.job_id):
            yield pb.WatchJobResponse(job=job_to_proto(record))


def binding(core: JobCore) -> ServiceBinding:
    servicer = JobServicer(core)
    return ServiceBinding(SERVICE_NAME, lambda server: pb_grpc.add_JobServiceServicer_to_server(servicer, server))
