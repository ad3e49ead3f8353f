"""Redis clients every service makes the same way.

A restarted Redis drops pooled connections; each command is retried on a fresh connection with
backoff for about 3 s, so a Redis restart costs callers latency, not errors. The fast client is for
optional work on a request path (the prediction cache): it fails at once instead.
"""

from __future__ import annotations

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

_BACKOFF = ExponentialBackoff(cap=1.0, base=0.05)
_RETRIES = 7
_RETRY_ON = [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]


def async_client(url: str, socket_timeout: float = 10) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=socket_timeout, retry=AsyncRetry(_BACKOFF, _RETRIES),
        retry_on_error=_RETRY_ON,
    )


def fast_async_client(url: str) -> redis.asyncio.Redis:
    """For the cache on the Predict path: fail fast and never retry, the model can answer instead."""
    return redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=0.25, socket_timeout=0.5, retry=AsyncRetry(_BACKOFF, 0)
    )


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=30, retry=Retry(_BACKOFF, _RETRIES), retry_on_error=_RETRY_ON,
    )
