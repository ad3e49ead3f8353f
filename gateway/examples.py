"""Real rows for the OpenAPI document: each model's example row (from its card's reference sample),
so that "Try it out" in /docs and API fuzzers reach the models with requests they accept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from protoserve.inference.v1 import inference_service_pb2 as pb
from starlette.requests import Request

from gateway.calls import Caller
from gateway.errors import HttpError

SERVICE = "/protoserve.inference.v1.InferenceService/"
FRESH_SECONDS = 10.0  # models come and go; the document follows them this closely


class ModelExamples:
    """Each model's example row, asked of the inference service with the caller's own key."""

    def __init__(self, caller: Caller) -> None:
        self._caller = caller
        self._rows: dict[str, dict[str, Any]] = {}
        self._fetched = -FRESH_SECONDS

    async def rows(self, request: Request) -> Mapping[str, dict[str, Any]]:
        """Model name -> a row it accepts; empty when the models cannot be read (say, no key)."""
        if time.monotonic() - self._fetched < FRESH_SECONDS:
            return self._rows
        try:
            listing = await self._caller.call(request, SERVICE + "ListModels", pb.ListModelsRequest(),
                                              pb.ListModelsResponse.FromString, idempotent=True)
            answers = await asyncio.gather(*(
                self._caller.call(request, SERVICE + "GetModel", pb.GetModelRequest(model=m.name),
                                  pb.GetModelResponse.FromString, idempotent=True)
                for m in listing.models
            ))
        except HttpError:
            return {}
        self._rows = {a.card.name: json_format.MessageToDict(a.card.example_row)
                      for a in answers if a.card.HasField("example_row")}
        self._fetched = time.monotonic()
        return self._rows
