"""Settings of the explainability service that the inference service does not have.

The repository, trusted types, input limits, message size, grace and log level are read from the
same ``PROTOSERVE_*`` variables as the inference service (InferenceSettings), so both processes
load the same models the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from protoserve_models.settings import ModelSettings
from protoserve_runtime.auth import AuthSettings
from protoserve_runtime.redis_settings import RedisSettings
from protoserve_runtime.settings import ServerSettings, ServiceAddresses, SettingsError, group, setting


@dataclass(frozen=True)
class ExplainSettings:
    server: ServerSettings = group(ServerSettings)
    addresses: ServiceAddresses = group(ServiceAddresses)
    models: ModelSettings = group(ModelSettings)
    redis: RedisSettings = group(RedisSettings)
    auth: AuthSettings = group(AuthSettings)
    explain_max_cost: int = setting(
        1_000_000, "most rows x features x samples one Explain request may cost; more is refused"
    )
    explain_background_rows: int = setting(
        100, "rows of the card's reference sample the model-agnostic explainers (exact and permutation SHAP) use as background"
    )
    explain_permutations: int = setting(10, "feature permutations the sampling explainer tries per row")
    explain_exact_max_features: int = setting(
        8, "models with at most this many features get exact SHAP (2^features coalitions) instead of sampling"
    )
    explain_metrics_address: str = setting("127.0.0.1:9200", "host:port of the explain /metrics endpoint; empty turns it off")
    explain_workers: int = setting(0, "worker processes sharing the explain port; 0 = one per CPU")

    def validate(self) -> None:
        for name in ("explain_max_cost", "explain_background_rows", "explain_permutations", "explain_exact_max_features"):
            if getattr(self, name) < 1:
                raise SettingsError(f"PROTOSERVE_{name.upper()} must be at least 1")
        if self.explain_workers < 0:
            raise SettingsError("PROTOSERVE_EXPLAIN_WORKERS must be 0 (one per CPU) or more")
