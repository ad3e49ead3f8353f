"""Gateway fixtures: the gateway as its own process in front of real inference servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from protoserve_runtime.auth import KeyStore
from tests.conftest import start_inference
from tests.explain.conftest import explain_address, explain_service, start_explain  # noqa: F401  (fixtures)
from tests.harness import ServiceProcess, start_side_by_side
from tests.monitoring.system import start_monitoring


class GatewayProcess(ServiceProcess):
    """The gateway started like `protoserve up` does; ready when GET /healthz answers 200."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__("gateway.main", "PROTOSERVE_GATEWAY_ADDRESS", env, log_path)

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False


def start_gateway(log_dir: Path, replicas: list[str], **settings: str) -> GatewayProcess:
    env = {"PROTOSERVE_INFERENCE_REPLICAS": ",".join(replicas), "PROTOSERVE_HEALTH_INTERVAL_SECONDS": "0.2", **settings}
    gateway = GatewayProcess(env, log_dir / "gateway.log")
    gateway.start()
    return gateway


@pytest.fixture(scope="session")
def monitoring_address(model_repository: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A monitoring service whose alert state stays still while REST and gRPC answers are compared."""
    service = start_monitoring(model_repository, tmp_path_factory.mktemp("gateway-monitoring"), redis_url,
                               PROTOSERVE_ALERT_INTERVAL_SECONDS="3600", PROTOSERVE_MONITORING_KEY_PREFIX="gateway-test")
    yield service.address
    service.terminate()


@pytest.fixture(scope="session")
def gateway(
    inference_address: str, explain_address: str, monitoring_address: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """Auth off, CORS for one origin, a small body limit to test 413 with, two workers on one port."""
    service = start_gateway(
        tmp_path_factory.mktemp("gateway"), [inference_address],
        PROTOSERVE_CORS_ORIGINS="http://allowed.example", PROTOSERVE_MAX_BODY_BYTES="65536",
        PROTOSERVE_GATEWAY_WORKERS="2", PROTOSERVE_EXPLAIN_ADDRESS=explain_address,
        PROTOSERVE_MONITORING_ADDRESS=monitoring_address,
    )
    yield service
    service.terminate()


@pytest.fixture(scope="session")
def http(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


SCOPED = ("predict", "explain", "monitor", "admin")


@pytest.fixture(scope="session")
def auth_system(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Inference and gateway with PROTOSERVE_AUTH=on sharing one key file; a key per scope."""
    data_dir = tmp_path_factory.mktemp("auth-data")
    store = KeyStore(data_dir / "api_keys.json")
    keys = {scope: store.create(f"{scope}-key", [scope])[0] for scope in SCOPED}
    settings = {"PROTOSERVE_AUTH": "on", "PROTOSERVE_DATA_DIR": str(data_dir)}
    logs = tmp_path_factory.mktemp("auth-logs")
    inference, explain = start_side_by_side(
        lambda: start_inference(model_repository, logs, PROTOSERVE_INFERENCE_WORKERS="1", **settings),
        lambda: start_explain(model_repository, logs, **settings),
    )
    gateway = start_gateway(logs, [inference.address], PROTOSERVE_EXPLAIN_ADDRESS=explain.address, **settings)
    yield {"keys": keys, "store": store, "inference": inference.address, "explain": explain.address, "gateway": gateway.url}
    gateway.terminate()
    explain.terminate()
    inference.terminate()


CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium (never a downloaded one), driven by Playwright."""
    if not CHROMIUM.exists():  # `make test` stops earlier with how to install it; this says it again
        pytest.fail("Debian's chromium is missing: apt-get update && apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield browser
        browser.close()


def pick_model(page: Page, name: str) -> None:
    """Choose a model and wait until the page has shown its card (the form is busy until then)."""
    page.select_option("#model", name)
    page.wait_for_selector(f'#form[data-model="{name}"]:not([aria-busy])')

