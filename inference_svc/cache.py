"""The prediction cache: Predict results kept in Redis by (model, version, canonical input hash).

Only deterministic models are cached (their card says so). The hash is taken over the validated
input array (or DataFrame), so key order and 1 vs 1.0 in a request do not matter, and the key holds the version,
so a new version never answers with an old version's result. Redis trouble never fails a Predict:
the model answers, the trouble is logged and counted.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import redis
import redis.asyncio

from protoserve_models.batch_codec import decode_batch, encode_arrays, encode_batch
from protoserve_models.columns import ColumnInputs
from protoserve_models.inputs import ServedInputs, input_rows
from protoserve_models.model import LoadedModel, PredictionBatch

log = logging.getLogger(__name__)
_WARN_EVERY_SECONDS = 30.0


@dataclass
class CacheStats:
    """Counters a metrics exporter can read: lookups that hit, missed, or could not reach Redis."""

    hits: int = 0
    misses: int = 0
    errors: int = 0
    bypassed: int = 0


def input_digest(inputs: ServedInputs) -> str:
    if isinstance(inputs, ColumnInputs):
        inputs = inputs.frame()  # built once: the estimator, if it is called, gets the same one
    if isinstance(inputs, pd.DataFrame):  # its canonical encoding: column names, dtypes and values
        return hashlib.sha256(encode_arrays({"inputs": inputs})).hexdigest()
    digest = hashlib.sha256()
    if inputs.dtype == object:  # text: the strings, unambiguously delimited
        for text in inputs.tolist():
            encoded = str(text).encode()
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
    else:
        digest.update(str(inputs.shape).encode())
        digest.update(np.ascontiguousarray(inputs, dtype="<f8").tobytes())
    return digest.hexdigest()


class PredictionCache:
    def __init__(self, client: redis.asyncio.Redis, prefix: str, ttl_seconds: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self.stats = CacheStats()
        self._last_warning = 0.0

    def key(self, model: LoadedModel, inputs: ServedInputs) -> str:
        return f"{self._prefix}:predcache:{model.name}:{model.version}:{input_digest(inputs)}"

    async def get_or_predict(
        self,
        model: LoadedModel,
        inputs: ServedInputs,
        predict: Callable[[], Awaitable[PredictionBatch]],
        skip_cache: bool = False,
    ) -> tuple[PredictionBatch, bool]:
        """The outputs and whether they came from the cache."""
        if skip_cache or not model.card.deterministic:
            self.stats.bypassed += 1
            return await predict(), False
        key = self.key(model, inputs)
        try:
            blob: Any = await self._client.get(key)
        except (redis.exceptions.RedisError, OSError) as exc:
            self._warn("read", exc)
            return await predict(), False
        if blob is not None:
            try:
                batch = decode_batch(blob)
            except ValueError:
                log.warning("unreadable cache entry ignored", extra={"key": key})
            else:
                if len(batch) == input_rows(inputs):
                    self.stats.hits += 1
                    return batch, True
        self.stats.misses += 1
        batch = await predict()
        try:
            await self._client.set(key, encode_batch(batch), ex=self._ttl)
        except (redis.exceptions.RedisError, OSError) as exc:
            self._warn("write", exc)
        return batch, False

    def _warn(self, action: str, exc: Exception) -> None:
        self.stats.errors += 1
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_SECONDS:  # one line per episode, not per request
            self._last_warning = now
            log.warning(
                "prediction cache unavailable; predicting uncached",
                extra={"action": action, "error": repr(exc), "cache_errors": self.stats.errors},
            )

    async def close(self) -> None:
        await self._client.aclose()
