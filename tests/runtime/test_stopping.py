"""Nothing outlives its supervisor, and a service that cannot start stops `protoserve up` with its name."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from protoserve_runtime import health
from protoserve_runtime.redis_server import free_port
from tests.harness import FREE_METRICS_PORTS

PROTOSERVE = str(Path(sys.executable).with_name("protoserve"))


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:  # field 4, ppid, after the command name
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_workers_die_with_a_supervisor_killed_with_sigkill(model_repository: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **FREE_METRICS_PORTS, "PROTOSERVE_MODEL_REPOSITORY": str(model_repository),
           "PROTOSERVE_INFERENCE_ADDRESS": f"127.0.0.1:{port}", "PROTOSERVE_INFERENCE_WORKERS": "2"}
    env.pop("PROTOSERVE_REDIS_URL", None)
    env.pop("REDIS_URL", None)
    with open(tmp_path / "inference.log", "wb") as log:
        supervisor = subprocess.Popen([sys.executable, "-m", "inference_svc.main"], env=env, stdout=log, stderr=log)
    try:
        health.wait_serving(f"127.0.0.1:{port}", timeout=120)
        workers = children_of(supervisor.pid)
        assert len(workers) >= 2, workers  # the two workers (and multiprocessing's resource tracker)
        supervisor.kill()
        supervisor.wait()
        assert wait_until(lambda: not any(alive(pid) for pid in workers), 60), \
            f"workers outlived their supervisor: {[pid for pid in workers if alive(pid)]}"
        assert wait_until(lambda: port_is_free(port), 10), "the port is still held"
    finally:
        for pid in children_of(supervisor.pid) if supervisor.poll() is None else ():
            os.kill(pid, signal.SIGKILL)
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()


def test_up_names_the_service_that_failed_to_start_and_stops(model_repository: Path, tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    inference = f"127.0.0.1:{free_port()}"
    env = {**os.environ, **FREE_METRICS_PORTS, "PROTOSERVE_MODEL_REPOSITORY": str(model_repository),
           "PROTOSERVE_INFERENCE_ADDRESS": inference,
           "PROTOSERVE_EXPLAIN_ADDRESS": f"127.0.0.1:{taken.getsockname()[1]}",  # explain cannot listen there
           "PROTOSERVE_MONITORING_ADDRESS": f"127.0.0.1:{free_port()}",
           "PROTOSERVE_GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
           "PROTOSERVE_EXPLAIN_WORKERS": "1"}
    for inherited in ("REDIS_URL", "PROTOSERVE_REDIS_URL"):
        env.pop(inherited, None)
    try:
        up = subprocess.run([PROTOSERVE, "up", "--skip-build", "--data-dir", str(tmp_path / "data")], env=env,
                            capture_output=True, text=True, timeout=240)
    finally:
        taken.close()
    assert up.returncode == 1, up.stderr[-2000:]
    assert "protoserve up: explain exited with code" in up.stderr, up.stderr[-2000:]
    assert "stopped." in up.stderr
    assert health.check(inference) == "UNREACHABLE"  # inference, started before it, was stopped too


def test_ctrl_c_while_a_service_starts_stops_everything(model_repository: Path, tmp_path: Path) -> None:
    inference = f"127.0.0.1:{free_port()}"
    env = {**os.environ, **FREE_METRICS_PORTS, "PROTOSERVE_MODEL_REPOSITORY": str(model_repository),
           "PROTOSERVE_INFERENCE_ADDRESS": inference, "PROTOSERVE_INFERENCE_WORKERS": "1"}
    for inherited in ("REDIS_URL", "PROTOSERVE_REDIS_URL"):
        env.pop(inherited, None)
    up = subprocess.Popen([PROTOSERVE, "up", "--skip-build", "--data-dir", str(tmp_path / "data")], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: len(children_of(up.pid)) >= 2, 60), "up started no service"  # Redis, inference
        started = children_of(up.pid)
        up.send_signal(signal.SIGINT)  # while inference is still loading its models
        assert up.wait(60) == 0
        assert wait_until(lambda: not any(alive(pid) for pid in started), 30)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        assert up.stderr is not None
        up.stderr.close()


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_up_restarts_a_child_killed_with_sigkill_and_the_others_keep_serving(model_repository: Path,
                                                                             tmp_path: Path) -> None:
    addresses = {name: f"127.0.0.1:{free_port()}" for name in ("INFERENCE", "EXPLAIN", "MONITORING", "GATEWAY")}
    monitoring_metrics = f"127.0.0.1:{free_port()}"
    env = {**os.environ, **FREE_METRICS_PORTS, "PROTOSERVE_MODEL_REPOSITORY": str(model_repository),
           **{f"PROTOSERVE_{name}_ADDRESS": address for name, address in addresses.items()},
           "PROTOSERVE_INFERENCE_WORKERS": "1", "PROTOSERVE_EXPLAIN_WORKERS": "1",
           "PROTOSERVE_MONITORING_METRICS_ADDRESS": monitoring_metrics, "PROTOSERVE_LOG_FORMAT": "json"}
    for inherited in ("REDIS_URL", "PROTOSERVE_REDIS_URL"):
        env.pop(inherited, None)
    up = subprocess.Popen([PROTOSERVE, "up", "--skip-build", "--data-dir", str(tmp_path / "data")], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said: list[str] = []
    readers = [threading.Thread(target=lambda stream=stream: said.extend(stream), daemon=True)
               for stream in (up.stdout, up.stderr)]
    for reader in readers:
        reader.start()
    try:
        assert wait_until(lambda: any("Press Ctrl-C" in line for line in said), 180), "".join(said)[-3000:]
        # The start is told in the summary: the info lines of the services' start (models loaded,
        # listening; inference and explain start only once here) are kept back, warnings are shown.
        start_detail = [line for line in said if '"message": "model version loaded"' in line
                        and ('"service": "inference"' in line or '"service": "explain"' in line)]
        assert not start_detail, start_detail
        assert any('"level": "warning"' in line and "AUTH IS OFF" in line for line in said)
        children = {cmdline(pid): pid for pid in children_of(up.pid)}
        killed = {name: next(pid for line, pid in children.items() if module in line)
                  for name, module in (("monitoring", "monitoring_svc.main"), ("job-worker-1", "worker_svc.main"))}
        for pid in killed.values():
            os.kill(pid, signal.SIGKILL)
        for name in killed:
            assert wait_until(lambda name=name: any(f"{name} restarted" in line for line in said), 60), "".join(said)[-3000:]
            assert any(f"{name} exited with code -9; restarting it" in line for line in said)
        assert health.check(addresses["INFERENCE"]) == "SERVING"  # the others never stopped
        assert wait_until(lambda: health.check(addresses["MONITORING"]) == "SERVING", 120)
        # The restarts in `protoserve status` and in the restarted service's metrics.
        status = json.loads(subprocess.run([PROTOSERVE, "status", "--json", "--data-dir", str(tmp_path / "data")],
                                           capture_output=True, text=True, check=True, timeout=30).stdout)
        restarts = {child["name"]: (child["state"], child["restarts"]) for child in status["children"]}
        assert restarts == {"inference": ("running", 0), "explain": ("running", 0), "monitoring": ("running", 1),
                            "gateway": ("running", 0), "job-worker-1": ("running", 1)}
        metrics = httpx.get(f"http://{monitoring_metrics}/metrics", timeout=10).text
        assert "\nprotoserve_process_restarts 1.0\n" in metrics
        assert up.poll() is None
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for reader in readers:
            reader.join(10)
        for stream in (up.stdout, up.stderr):
            assert stream is not None
            stream.close()
