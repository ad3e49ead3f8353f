"""Settings of the inference service (environment variables ``PROTOSERVE_*``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from protoserve_runtime.settings import SettingsError, setting


@dataclass(frozen=True)
class InferenceSettings:
    inference_address: str = setting("127.0.0.1:50051", "host:port the inference gRPC server listens on")
    model_repository: Path = setting(Path("models"), "directory of models/<name>/<version>/")
    trusted_types: tuple[str, ...] = setting((), "extra types (comma-separated) a model file may hold")
    max_rows: int = setting(10_000, "most rows one Predict request may carry")
    max_text_length: int = setting(5_000, "most characters of one text feature, unless its card says less")
    max_message_bytes: int = setting(64 * 1024 * 1024, "largest gRPC message accepted or sent, in bytes")
    grace_seconds: float = setting(10.0, "time in-flight calls get to finish after SIGTERM")
    log_level: str = setting("info", "debug, info, warning or error")
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
    repository_poll_seconds: float = setting(
        2.0, "how often each worker looks for new version directories in the model repository; 0 = never"
    )
    serving_state_poll_seconds: float = setting(
        0.2, "how often each worker checks the serving state (default version, routes, policy) for changes"
    )
    inference_metrics_address: str = setting("127.0.0.1:9100", "host:port of /metrics; worker i serves on port + i; empty: off")

    def validate(self) -> None:
        if self.max_rows < 1:
            raise SettingsError("PROTOSERVE_MAX_ROWS must be at least 1")
        if self.max_text_length < 1:
            raise SettingsError("PROTOSERVE_MAX_TEXT_LENGTH must be at least 1")
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
        if self.repository_poll_seconds < 0:
            raise SettingsError("PROTOSERVE_REPOSITORY_POLL_SECONDS must not be negative")
        if self.serving_state_poll_seconds <= 0:
            raise SettingsError("PROTOSERVE_SERVING_STATE_POLL_SECONDS must be more than 0")
        if self.max_message_bytes < 4 * 1024 * 1024:
            raise SettingsError("PROTOSERVE_MAX_MESSAGE_BYTES must be at least 4 MiB")
