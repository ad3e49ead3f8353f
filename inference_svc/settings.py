"""Settings of the inference service (environment variables ``PROTOSERVE_*``), read once by its
composition root; the groups are shared with the other services."""

from __future__ import annotations

from dataclasses import dataclass

from inference_svc.event_settings import EventSettings
from protoserve_models.jobs.settings import JobSettings
from protoserve_models.settings import ModelSettings
from protoserve_models.training.settings import TrainingSettings
from protoserve_runtime.auth import AuthSettings
from protoserve_runtime.redis_settings import RedisSettings
from protoserve_runtime.settings import ServerSettings, ServiceAddresses, SettingsError, group, setting


@dataclass(frozen=True)
class InferenceSettings:
    server: ServerSettings = group(ServerSettings)
    addresses: ServiceAddresses = group(ServiceAddresses)
    models: ModelSettings = group(ModelSettings)
    redis: RedisSettings = group(RedisSettings)
    events: EventSettings = group(EventSettings)
    jobs: JobSettings = group(JobSettings)
    training: TrainingSettings = group(TrainingSettings)
    auth: AuthSettings = group(AuthSettings)
    inference_workers: int = setting(0, "worker processes sharing the inference port; 0 = one per CPU")
    max_batch_size: int = setting(64, "most rows stacked into one model call by the dynamic batcher (1 = no stacking)")
    max_queue_delay_ms: float = setting(0.0, "how long an idle model waits for more requests to stack; 0 = run at once")
    max_queue_size: int = setting(256, "requests that may wait per model version; more get RESOURCE_EXHAUSTED")
    fast_kernels: tuple[str, ...] = setting(
        ("*",), "models (comma-separated; * = all) served by an exact fast kernel where one exists; empty = none"
    )
    inline_max_rows: int = setting(
        64, "a model call of at most this many rows on a fast kernel runs on the event loop; 0 = always on a thread"
    )
    cache_enabled: bool = setting(True, "cache Predict results of deterministic models in Redis")
    cache_ttl_seconds: int = setting(3600, "how long a cached prediction is kept")
    inference_metrics_address: str = setting("127.0.0.1:9100", "host:port of /metrics; worker i serves on port + i; empty: off")

    def validate(self) -> None:
        if self.inference_workers < 0:
            raise SettingsError("PROTOSERVE_INFERENCE_WORKERS must be 0 (one per CPU) or more")
        if self.max_batch_size < 1:
            raise SettingsError("PROTOSERVE_MAX_BATCH_SIZE must be at least 1")
        if self.max_queue_delay_ms < 0:
            raise SettingsError("PROTOSERVE_MAX_QUEUE_DELAY_MS must not be negative")
        if self.max_queue_size < 1:
            raise SettingsError("PROTOSERVE_MAX_QUEUE_SIZE must be at least 1")
        if self.inline_max_rows < 0:
            raise SettingsError("PROTOSERVE_INLINE_MAX_ROWS must not be negative")
        if self.cache_ttl_seconds < 1:
            raise SettingsError("PROTOSERVE_CACHE_TTL_SECONDS must be at least 1")
