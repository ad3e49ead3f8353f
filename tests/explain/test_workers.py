"""Several explain workers on one port: SERVING once all are ready, and each answers correctly."""

from __future__ import annotations

from pathlib import Path

import grpc
import psutil
from protoserve.explain.v1 import explain_service_pb2_grpc

from protoserve_runtime import health
from tests.explain.calls import additivity_gap, attribution, explain_request
from tests.explain.conftest import start_explain
from tests.inference.test_workers import workers_of

EXACT = 1e-6
MAX_CONNECTIONS = 64  # the kernel hashes each connection to a worker: both are hit long before this


def serving_workers(workers: list[psutil.Process], port: int) -> set[int]:
    """The workers holding an established connection on the service's port."""
    return {w.pid for w in workers if any(c.laddr.port == port and c.status == "ESTABLISHED" for c in w.net_connections())}


def test_two_workers_share_the_port_and_explain_alike(model_repository: Path, tmp_path: Path) -> None:
    service = start_explain(model_repository, tmp_path, PROTOSERVE_EXPLAIN_WORKERS="2")  # returns once SERVING
    assert service.process is not None
    port = int(service.address.rsplit(":", 1)[1])
    channels: list[grpc.Channel] = []
    try:
        workers = workers_of(service.process.pid)
        assert len(workers) == 2
        health.wait_serving(service.address, timeout=15)  # still (or again) serving: it did not fall over
        request = explain_request("sentiment", [{"text": "The plot was terrible."}], label="positive")
        answers = []
        while serving_workers(workers, port) != {w.pid for w in workers}:
            assert len(channels) < MAX_CONNECTIONS, "every connection went to one worker"
            # A channel of its own subchannel pool is a connection of its own.
            channels.append(grpc.insecure_channel(service.address, options=[("grpc.use_local_subchannel_pool", 1)]))
            answers.append(explain_service_pb2_grpc.ExplainServiceStub(channels[-1]).Explain(request, timeout=60))
        for answer in answers:
            row = answer.explanations[0]
            assert additivity_gap(row) < EXACT
            assert attribution(row, "terrible").value < 0
            assert row.output_value == answers[0].explanations[0].output_value  # same models in every worker
        for channel in channels:
            channel.close()
        assert service.terminate() == 0
        _gone, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, "SIGTERM to the parent stops every worker"
    finally:
        for channel in channels:
            channel.close()
        service.kill()
