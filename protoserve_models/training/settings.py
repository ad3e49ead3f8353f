"""Settings of training runs, read by the inference service (checks at TrainModel) and every worker."""

from __future__ import annotations

from dataclasses import dataclass

from protoserve_runtime.settings import SettingsError, setting


@dataclass(frozen=True)
class TrainingSettings:
    training_max_csv_bytes: int = setting(16 * 1024 * 1024, "largest CSV one TrainModel request may upload, in bytes")
    promotion_margin: float = setting(
        0.01, "AUTO promotion: the new version must score at least the default version's score plus this (accuracy or R²)"
    )

    def validate(self) -> None:
        if self.training_max_csv_bytes < 1:
            raise SettingsError("PROTOSERVE_TRAINING_MAX_CSV_BYTES must be at least 1")
        if not -1.0 <= self.promotion_margin <= 1.0:
            raise SettingsError("PROTOSERVE_PROMOTION_MARGIN must be between -1 and 1")
