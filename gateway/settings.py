"""Settings of the gateway (environment variables ``PROTOSERVE_*``)."""

from __future__ import annotations

from dataclasses import dataclass

from protoserve_runtime.auth import AuthSettings
from protoserve_runtime.settings import ServerSettings, ServiceAddresses, SettingsError, group, setting

EXPLAIN_SERVICE = "protoserve.explain.v1.ExplainService"
MONITORING_SERVICE = "protoserve.monitoring.v1.MonitoringService"


@dataclass(frozen=True)
class GatewaySettings:
    server: ServerSettings = group(ServerSettings)
    addresses: ServiceAddresses = group(ServiceAddresses)
    auth: AuthSettings = group(AuthSettings)
    gateway_workers: int = setting(1, "gateway worker processes sharing the port (each with its own upstream channels)")
    inference_replicas: tuple[str, ...] = setting(
        (), "inference replicas the gateway balances over, comma-separated (default: PROTOSERVE_INFERENCE_ADDRESS)"
    )
    upstreams: tuple[str, ...] = setting(
        (), "other gRPC services, comma-separated SERVICE=host:port[|host:port...] (full service names)"
    )
    deadline_seconds: float = setting(30.0, "deadline of every gRPC call the gateway makes")
    retries: int = setting(2, "retries of an idempotent call that meets UNAVAILABLE, on another replica")
    health_interval_seconds: float = setting(1.0, "how often the gateway checks each replica's gRPC health")
    max_body_bytes: int = setting(8 * 1024 * 1024, "largest HTTP request body the gateway accepts (413 beyond)")
    cors_origins: tuple[str, ...] = setting((), "origins allowed to call the gateway from a browser, comma-separated")
    cors_credentials: bool = setting(False, "let allowed origins send credentials (never with origin *)")

    def validate(self) -> None:
        if "*" in self.cors_origins and self.cors_credentials:
            raise SettingsError("PROTOSERVE_CORS_ORIGINS=* cannot be combined with PROTOSERVE_CORS_CREDENTIALS=on")
        if self.deadline_seconds <= 0:
            raise SettingsError("PROTOSERVE_DEADLINE_SECONDS must be positive")
        if self.gateway_workers < 1:
            raise SettingsError("PROTOSERVE_GATEWAY_WORKERS must be at least 1")
        if self.retries < 0:
            raise SettingsError("PROTOSERVE_RETRIES must be at least 0")
        if self.max_body_bytes < 1024:
            raise SettingsError("PROTOSERVE_MAX_BODY_BYTES must be at least 1024")
        self.upstream_map()

    @property
    def replicas(self) -> tuple[str, ...]:
        return self.inference_replicas or (self.addresses.inference_address,)

    def upstream_map(self) -> dict[str, tuple[str, ...]]:
        """Full gRPC service name -> replica addresses, for services not served by the inference replicas."""
        result: dict[str, tuple[str, ...]] = {
            EXPLAIN_SERVICE: (self.addresses.explain_address,),
            MONITORING_SERVICE: (self.addresses.monitoring_address,),
        }
        for entry in self.upstreams:
            service, sep, addresses = entry.partition("=")
            replicas = tuple(a.strip() for a in addresses.split("|") if a.strip())
            if not sep or not service.strip() or not replicas:
                raise SettingsError(f"PROTOSERVE_UPSTREAMS entry {entry!r} is not SERVICE=host:port[|host:port]")
            result[service.strip()] = replicas
        return result
