"""The `protoserve` command as a user runs it: `up` starts everything, Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import redis

from protoserve_runtime.redis_server import free_port

PROTOSERVE = str(Path(sys.executable).with_name("protoserve"))


def read_until(process: subprocess.Popen[str], marker: str, timeout: float, log: Path | None = None) -> list[str]:
    """stdout's lines up to the marker's; else fails with them and the log (its stderr), if given."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    said = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
    raise AssertionError(f"{marker!r} not printed (exit code {process.poll()}); got:\n{''.join(lines)}\nstderr:\n{said}")


def test_up_starts_everything_and_ctrl_c_stops_it(model_repository: Path, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "PROTOSERVE_MODEL_REPOSITORY": str(model_repository),
        "PROTOSERVE_INFERENCE_ADDRESS": address,
        "PROTOSERVE_GATEWAY_ADDRESS": (gateway := f"127.0.0.1:{free_port()}"),
        "PROTOSERVE_EXPLAIN_ADDRESS": f"127.0.0.1:{free_port()}",
        "PROTOSERVE_MONITORING_ADDRESS": f"127.0.0.1:{free_port()}",
        "PROTOSERVE_INFERENCE_METRICS_ADDRESS": "127.0.0.1:0",
        "PROTOSERVE_MONITORING_METRICS_ADDRESS": "127.0.0.1:0",
        "PROTOSERVE_EXPLAIN_METRICS_ADDRESS": "127.0.0.1:0",
    }
    for inherited in ("REDIS_URL", "PROTOSERVE_REDIS_URL", "PROTOSERVE_DATA_DIR"):
        env.pop(inherited, None)
    # As `make up` runs it: from a working directory, with the default data dir (relative) in it.
    stderr = tmp_path / "up.stderr"
    with stderr.open("w") as log:
        up = subprocess.Popen([PROTOSERVE, "up"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        printed = "".join(read_until(up, "Press Ctrl-C to stop", timeout=120, log=stderr))
        assert f"inference    grpc://{address}" in printed
        assert f"gateway      http://{gateway}" in printed and "AUTH IS OFF" in printed
        assert json.loads(urllib.request.urlopen(f"http://{gateway}/v1/models", timeout=30).read())["models"]
        assert f"explain      grpc://{env['PROTOSERVE_EXPLAIN_ADDRESS']}" in printed
        redis_url = next(w for w in printed.split() if w.startswith("redis://"))
        assert redis.Redis.from_url(redis_url).config_get("appendonly") == {"appendonly": "yes"}

        predicted = subprocess.run(
            [PROTOSERVE, "predict", "sentiment", "--address", address, "--json", '{"text": "I love it"}'],
            capture_output=True, text=True, timeout=60,
        )
        assert predicted.returncode == 0, predicted.stderr
        assert json.loads(predicted.stdout)["predictions"][0]["classification"]["label"] == "positive"
        unhealthy = subprocess.run([PROTOSERVE, "health", "--address", "127.0.0.1:1"], capture_output=True, text=True)
        assert unhealthy.returncode == 1 and unhealthy.stdout.strip() == "UNREACHABLE"

        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        assert up.stdout is not None
        up.stdout.close()
    # Every child is gone: nothing answers on the service or Redis ports.
    health = subprocess.run([PROTOSERVE, "health", "--address", address], capture_output=True, text=True)
    assert health.stdout.strip() == "UNREACHABLE"
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
        raise AssertionError("the embedded Redis still answers after Ctrl-C")
    except redis.exceptions.ConnectionError:
        pass
    assert (tmp_path / ".protoserve" / "redis" / "redis.log").is_file()


def test_predict_refuses_malformed_json_clearly() -> None:
    result = subprocess.run([PROTOSERVE, "predict", "iris-knn", "--json", "[1, 2]"], capture_output=True, text=True)
    assert result.returncode == 2 and "--json takes a row object" in result.stderr
