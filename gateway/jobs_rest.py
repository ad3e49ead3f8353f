"""REST conventions of the job routes that a proto annotation cannot say: SubmitJob answers
202 Accepted with a Location, and a finished job's results download as CSV or JSON lines."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from protoserve.common.v1 import prediction_pb2
from protoserve.jobs.v1 import job_service_pb2 as jobs_pb
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.calls import Caller
from gateway.errors import HttpError

SUBMIT_JOB = "/protoserve.jobs.v1.JobService/SubmitJob"
GET_JOB = "/protoserve.jobs.v1.JobService/GetJob"
FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def accepted(full_method: str, answer: dict[str, Any]) -> dict[str, str] | None:
    """Headers of a 202 answer for a submit, or None when the route answers 200 as usual."""
    if full_method != SUBMIT_JOB:
        return None
    return {"location": f"/v1/jobs/{answer['job']['job_id']}"}


def prediction_fields(prediction: prediction_pb2.Prediction) -> dict[str, Any]:
    if prediction.HasField("classification"):
        c = prediction.classification
        return {"label": c.label, "score": c.score, **{f"p_{p.label}": p.probability for p in c.probabilities}}
    r = prediction.regression
    return {"value": r.value, "variance": r.variance, "standard_deviation": r.standard_deviation}


class JobResults:
    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    def routes(self) -> list[Route]:
        return [Route("/v1/jobs/{job_id}/results", self.download, methods=["GET"])]

    async def _page(self, request: Request, job_id: str, token: str) -> jobs_pb.GetJobResponse:
        message = jobs_pb.GetJobRequest(job_id=job_id, results_page_token=token)
        answer: jobs_pb.GetJobResponse = await self.caller.call(
            request, GET_JOB, message, jobs_pb.GetJobResponse.FromString, True
        )
        return answer

    async def download(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        kind = request.query_params.get("format", "csv")
        if kind not in FORMATS:
            raise HttpError.bad_request(f"format must be one of {', '.join(FORMATS)}, not {kind!r}")
        self.caller.authorize(request, GET_JOB)
        first = await self._page(request, job_id, "")
        if first.job.state != jobs_pb.JOB_STATE_SUCCEEDED:
            state = jobs_pb.JobState.Name(first.job.state)
            raise HttpError(409, "FAILED_PRECONDITION", f"job {job_id} is {state}; results exist once it SUCCEEDED")

        async def lines() -> AsyncIterator[str]:
            page, header = first, None
            while True:
                for offset, prediction in enumerate(page.predictions):
                    row = {"row": page.first_row + offset, **prediction_fields(prediction)}
                    if kind == "jsonl":
                        yield json.dumps(row) + "\n"
                        continue
                    out = io.StringIO()
                    if header is None:
                        header = list(row)
                        csv.writer(out).writerow(header)
                    csv.writer(out).writerow([row[k] for k in header])
                    yield out.getvalue()
                if not page.next_results_page_token:
                    return
                page = await self._page(request, job_id, page.next_results_page_token)

        disposition = f'attachment; filename="{job_id}.{kind}"'
        return StreamingResponse(lines(), media_type=FORMATS[kind], headers={"content-disposition": disposition})
