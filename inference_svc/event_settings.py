"""The settings of prediction events (PROTOSERVE_EVENTS_*), apart from the publisher so that reading
the service's settings imports no model libraries."""

from __future__ import annotations

from dataclasses import dataclass

from protoserve_runtime.settings import SettingsError, setting


@dataclass(frozen=True)
class EventSettings:
    events_enabled: bool = setting(True, "publish one event per prediction to the prediction-event stream")
    events_buffer_rows: int = setting(50_000, "most events waiting in memory; more are dropped and counted")
    events_batch_rows: int = setting(1_000, "most events written to Redis in one round trip")
    events_flush_seconds: float = setting(0.05, "how often buffered events are written to Redis")
    events_stream_max_length: int = setting(100_000, "the stream is trimmed to about this many entries (batches)")
    events_timeout_seconds: float = setting(1.0, "a Redis write slower than this fails and its events are dropped")

    def validate(self) -> None:
        if self.events_buffer_rows < 1 or self.events_batch_rows < 1:
            raise SettingsError("PROTOSERVE_EVENTS_BUFFER_ROWS and PROTOSERVE_EVENTS_BATCH_ROWS must be at least 1")
        if self.events_flush_seconds <= 0 or self.events_timeout_seconds <= 0:
            raise SettingsError("PROTOSERVE_EVENTS_FLUSH_SECONDS and PROTOSERVE_EVENTS_TIMEOUT_SECONDS must be positive")
