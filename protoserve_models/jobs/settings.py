"""Settings of jobs, read by the inference service and by every job worker (``PROTOSERVE_JOB_*``)."""

from __future__ import annotations

from dataclasses import dataclass

from protoserve_runtime.settings import SettingsError, setting


@dataclass(frozen=True)
class JobSettings:
    job_max_rows: int = setting(1_000_000, "most rows one job may carry")
    job_max_payload_bytes: int = setting(32 * 1024 * 1024, "largest CSV / JSON-lines payload of one job, in bytes")
    job_batch_size: int = setting(10_000, "rows a worker predicts at a time; progress and cancel are checked between batches")
    job_page_size: int = setting(1_000, "rows per stored result page (job_batch_size must be a multiple of it)")
    job_ttl_seconds: int = setting(86_400, "how long a finished job and its results are kept")
    job_visibility_timeout_seconds: float = setting(60.0, "idle time after which another worker reclaims a job")
    job_max_attempts: int = setting(3, "attempts before a job is FAILED and dead-lettered")

    def validate(self) -> None:
        positive = ("job_max_rows", "job_max_payload_bytes", "job_batch_size", "job_page_size",
                    "job_ttl_seconds", "job_max_attempts")
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingsError(f"PROTOSERVE_{name.upper()} must be at least 1")
        if self.job_batch_size % self.job_page_size:
            raise SettingsError("PROTOSERVE_JOB_BATCH_SIZE must be a multiple of PROTOSERVE_JOB_PAGE_SIZE")
        if self.job_visibility_timeout_seconds <= 0:
            raise SettingsError("PROTOSERVE_JOB_VISIBILITY_TIMEOUT_SECONDS must be positive")
