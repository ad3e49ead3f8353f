"""TLS and mutual TLS between protoserve's processes, from certificate paths in settings.

Every service reads the same four settings. With none set, everything is plaintext (a laptop).
With a certificate and key, gRPC servers and the gateway serve TLS; with a CA as well, servers
require client certificates signed by it (mTLS) and clients check the server against it and
present their own certificate and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from protoserve_runtime.grpc_options import channel_options
from protoserve_runtime.settings import SettingsError, from_env, setting


@dataclass(frozen=True)
class TlsSettings:
    tls_cert: Path | None = setting(
        None, "PEM certificate this process presents (as server, and as client in mTLS); unset = plaintext"
    )
    tls_key: Path | None = setting(None, "PEM private key of PROTOSERVE_TLS_CERT")
    tls_ca: Path | None = setting(
        None, "PEM CA bundle: servers require client certificates it signed (mTLS); clients verify servers with it"
    )
    tls_server_name: str = setting("", "name clients expect in servers' certificates (default: the host of the address)")

    def validate(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError("PROTOSERVE_TLS_CERT and PROTOSERVE_TLS_KEY must be set together")
        for path in (self.tls_cert, self.tls_key, self.tls_ca):
            if path is not None and not path.is_file():
                raise SettingsError(f"TLS file {path} does not exist")

    @property
    def enabled(self) -> bool:
        """Whether clients speak TLS (a CA to verify servers is enough for a client)."""
        return self.tls_cert is not None or self.tls_ca is not None


def load() -> TlsSettings:
    return from_env(TlsSettings)


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def server_credentials(settings: TlsSettings) -> grpc.ServerCredentials | None:
    """TLS server credentials (client certificates required when a CA is set), or None for plaintext."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    ca = _read(settings.tls_ca)
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


def channel_credentials(settings: TlsSettings) -> grpc.ChannelCredentials | None:
    if not settings.enabled:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(settings.tls_ca),
        private_key=_read(settings.tls_key),
        certificate_chain=_read(settings.tls_cert),
    )


def _client_options(settings: TlsSettings, max_message_bytes: int) -> list[tuple[str, Any]]:

    options: list[tuple[str, Any]] = list(channel_options(max_message_bytes))
    # Round robin over every address a name resolves to (dns:///inference:50051 behind a headless
    # Service or compose replicas): client-side balancing; one address behaves as before.
    options.append(("grpc.service_config", '{"loadBalancingConfig": [{"round_robin": {}}]}'))
    if settings.tls_server_name:
        options.append(("grpc.ssl_target_name_override", settings.tls_server_name))
    return options


def channel(address: str, settings: TlsSettings | None = None, max_message_bytes: int = 64 * 1024 * 1024) -> grpc.Channel:
    """A blocking client channel to address: TLS when the settings say so, plaintext otherwise."""
    settings = settings or load()
    credentials = channel_credentials(settings)
    options = _client_options(settings, max_message_bytes)
    if credentials is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, credentials, options=options)


def aio_channel(address: str, settings: TlsSettings, max_message_bytes: int) -> grpc.aio.Channel:
    """The asyncio twin of ``channel``, for the gateway's upstreams."""
    credentials = channel_credentials(settings)
    options = _client_options(settings, max_message_bytes)
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, credentials, options=options)


def http_server_options(settings: TlsSettings) -> dict[str, Any]:
    """uvicorn's TLS keyword arguments for the gateway. Browsers have no client certificates, so the
    gateway's HTTP side is TLS only; its CA and certificate serve its mTLS calls to the services."""
    if settings.tls_cert is None or settings.tls_key is None:
        return {}
    return {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
