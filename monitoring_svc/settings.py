"""Settings of the monitoring service (environment variables ``PROTOSERVE_*``)."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from protoserve_models.settings import ModelSettings
from protoserve_runtime.auth import AuthSettings
from protoserve_runtime.redis_settings import RedisSettings
from protoserve_runtime.settings import ServerSettings, ServiceAddresses, SettingsError, group, setting

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(name: str) -> int:
    """Seconds in a window name such as 30s, 5m, 1h or 7d."""
    match = _DURATION.match(name)
    if not match or int(match.group(1)) == 0:
        raise SettingsError(f"{name!r} is not a window: use a number and s, m, h or d, such as 5m")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class MonitoringSettings:
    server: ServerSettings = group(ServerSettings)
    addresses: ServiceAddresses = group(ServiceAddresses)
    models: ModelSettings = group(ModelSettings)  # the cards: training profiles for drift
    redis: RedisSettings = group(RedisSettings)
    auth: AuthSettings = group(AuthSettings)
    monitoring_metrics_address: str = setting("127.0.0.1:9300", "host:port of the /metrics endpoint; empty turns it off")
    monitoring_key_prefix: str = setting("protoserve:monitoring", "prefix of every Redis key the monitoring service writes")
    monitoring_group: str = setting("monitoring", "consumer group of the monitoring replicas")
    monitoring_consumer: str = setting(socket.gethostname(), "this replica's consumer name; stable across restarts")
    monitoring_batch_entries: int = setting(10, "most stream entries (each a publisher's flush of events) applied in one step")
    monitoring_claim_idle_seconds: float = setting(60.0, "events a stopped replica left unacknowledged this long are taken over")
    monitoring_windows: tuple[str, ...] = setting(("5m", "1h", "24h"), "sliding windows, comma-separated (s, m, h, d)")
    monitoring_feedback_ttl_seconds: int = setting(7 * 86400, "how long a prediction can receive feedback")
    monitoring_example_max_bytes: int = setting(
        8192, "largest input (encoded) kept with a logged prediction for labeled examples; 0 keeps none"
    )
    labeled_examples_max: int = setting(100_000, "labeled examples kept per model; the stream is trimmed to about this")
    drift_psi_threshold: float = setting(0.2, "PSI at or above this is a shift")
    drift_p_value: float = setting(0.01, "a KS or chi-squared p-value at or below this is significant")
    drift_oov_increase: float = setting(0.2, "text: OOV rate this much above the reference's is drift")
    drift_min_rows: int = setting(200, "fewer live rows in a window than this are not judged for drift")
    alert_window: str = setting("5m", "the window alert rules are evaluated on (one of the windows)")
    alert_interval_seconds: float = setting(10.0, "how often alert rules are evaluated")
    alert_drift: bool = setting(True, "alert when a feature drifts")
    alert_accuracy_below: float = setting(0.7, "alert when accuracy from feedback is below this; 0 turns it off")
    alert_accuracy_min_labeled: int = setting(50, "labeled predictions needed before the accuracy rule is judged")
    alert_latency_p99_ms: float = setting(1000.0, "alert when p99 latency is above this many ms; 0 turns it off")
    alert_error_rate_above: float = setting(0.05, "alert when the share of failed requests is above this; 0 turns it off")
    alert_min_requests: int = setting(20, "requests needed in the window before latency and error rules are judged")

    def validate(self) -> None:
        windows = [parse_window(w) for w in self.monitoring_windows]
        if not windows:
            raise SettingsError("PROTOSERVE_MONITORING_WINDOWS needs at least one window")
        if self.alert_window not in self.monitoring_windows:
            raise SettingsError("PROTOSERVE_ALERT_WINDOW must be one of PROTOSERVE_MONITORING_WINDOWS")
        if self.labeled_examples_max < 1:
            raise SettingsError("PROTOSERVE_LABELED_EXAMPLES_MAX must be at least 1")
        if self.monitoring_example_max_bytes < 0:
            raise SettingsError("PROTOSERVE_MONITORING_EXAMPLE_MAX_BYTES must not be negative")
        if self.monitoring_batch_entries < 1 or self.alert_interval_seconds <= 0:
            raise SettingsError("PROTOSERVE_MONITORING_BATCH_ENTRIES and PROTOSERVE_ALERT_INTERVAL_SECONDS must be positive")

    @property
    def windows(self) -> list[tuple[str, int]]:
        """(name, seconds) of each window, shortest first."""
        return sorted(((w, parse_window(w)) for w in self.monitoring_windows), key=lambda w: w[1])
