"""TLS at the gateway and mutual TLS between services, with certificates made in the test."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
import httpx
import pytest
from protoserve.inference.v1 import inference_service_pb2 as pb
from protoserve.inference.v1 import inference_service_pb2_grpc as pb_grpc

from protoserve_runtime import health, tls
from protoserve_runtime.settings import SettingsError, describe, from_env
from tests.conftest import start_inference
from tests.deploy.certs import make_certificates
from tests.gateway.conftest import GatewayProcess
from tests.gateway.test_rest import IRIS_ROW
from tests.harness import REPO_ROOT


class HttpsGateway(GatewayProcess):
    def __init__(self, env: dict[str, str], log_path: Path, ca: Path) -> None:
        super().__init__(env, log_path)
        self.ca = ca

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    def ready(self) -> bool:
        try:
            trusted = ssl.create_default_context(cafile=self.ca)
            return httpx.get(self.url + "/healthz", timeout=1.0, verify=trusted).status_code == 200
        except httpx.TransportError:
            return False


def test_mutual_tls_between_gateway_and_inference_and_tls_at_the_gateway(
    model_repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificates = make_certificates(tmp_path / "certs")
    for name, value in certificates.env().items():  # this process's clients (health, stubs) use them too
        monkeypatch.setenv(name, value)
    inference = start_inference(model_repository, tmp_path, PROTOSERVE_INFERENCE_WORKERS="1")
    gateway = HttpsGateway({"PROTOSERVE_INFERENCE_REPLICAS": inference.address}, tmp_path / "gateway.log", certificates.ca)
    try:
        assert health.check(inference.address) == "SERVING"  # over mTLS
        with tls.channel(inference.address) as channel:
            reply = pb_grpc.InferenceServiceStub(channel).Predict(
                pb.PredictRequest(model="iris-knn", rows=[IRIS_ROW]), timeout=10)
            assert reply.predictions[0].classification.label == "setosa"
        # Without a client certificate, or in plaintext, the inference service lets nobody in.
        only_ca = from_env(tls.TlsSettings, tls_cert=None, tls_key=None)
        for channel in (tls.channel(inference.address, only_ca), grpc.insecure_channel(inference.address)):
            with channel, pytest.raises(grpc.RpcError) as refused:
                pb_grpc.InferenceServiceStub(channel).ListModels(pb.ListModelsRequest(), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

        gateway.start()
        with httpx.Client(base_url=gateway.url, verify=ssl.create_default_context(cafile=certificates.ca), timeout=30) as client:
            response = client.post("/v1/models/iris-knn:predict", json={"rows": [IRIS_ROW]})  # HTTPS, then mTLS upstream
            assert response.status_code == 200, response.text
            assert response.json()["predictions"][0]["classification"]["label"] == "setosa"
        with pytest.raises(httpx.TransportError):  # an untrusting client refuses the self-signed chain
            httpx.get(gateway.url + "/healthz", timeout=5)
    finally:
        gateway.kill()
        inference.kill()


def test_tls_settings_fail_at_start_with_the_variable_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="PROTOSERVE_TLS_CERT and PROTOSERVE_TLS_KEY"):
        from_env(tls.TlsSettings, {"PROTOSERVE_TLS_CERT": str(tmp_path)})
    with pytest.raises(SettingsError, match="does not exist"):
        from_env(tls.TlsSettings, {"PROTOSERVE_TLS_CA": str(tmp_path / "missing.pem")})
    assert tls.server_credentials(from_env(tls.TlsSettings, {})) is None


def test_tls_settings_are_documented_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for variable, _default, _help in describe(tls.TlsSettings):
        assert f"`{variable}`" in readme, f"{variable} is missing from the README"
