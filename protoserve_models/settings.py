"""Settings of every service that loads models (inference, explain, the job worker, monitoring's
cards): one declaration, so that each loads the same models the same way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from protoserve_runtime.settings import SettingsError, setting


@dataclass(frozen=True)
class ModelSettings:
    model_repository: Path = setting(Path("models"), "directory of models/<name>/<version>/")
    trusted_types: tuple[str, ...] = setting((), "extra types (comma-separated) a model file may hold")
    max_rows: int = setting(10_000, "most rows one Predict request may carry")
    max_text_length: int = setting(5_000, "most characters of one text feature, unless its card says less")
    repository_poll_seconds: float = setting(
        2.0, "how often each worker looks for new version directories in the model repository; 0 = never"
    )
    model_threads: int = setting(
        0, "threads (OpenMP, BLAS) one model call may use in the inference and explain services' workers; "
        "0 = the libraries' default (a thread per core). OMP_NUM_THREADS, if set, wins"
    )
    serving_state_poll_seconds: float = setting(
        0.2, "how often each worker checks the serving state (default version, routes, policy) for changes"
    )

    def validate(self) -> None:
        if self.max_rows < 1:
            raise SettingsError("PROTOSERVE_MAX_ROWS must be at least 1")
        if self.max_text_length < 1:
            raise SettingsError("PROTOSERVE_MAX_TEXT_LENGTH must be at least 1")
        if self.model_threads < 0:
            raise SettingsError("PROTOSERVE_MODEL_THREADS must not be negative")
        if self.repository_poll_seconds < 0:
            raise SettingsError("PROTOSERVE_REPOSITORY_POLL_SECONDS must not be negative")
        if self.serving_state_poll_seconds <= 0:
            raise SettingsError("PROTOSERVE_SERVING_STATE_POLL_SECONDS must be more than 0")
