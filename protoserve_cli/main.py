"""The ``protoserve`` command: run the system, build models, call a model, check health."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protoserve_runtime.services import (
    DEPLOYABLES,
    METRICS_PORT_STRIDE,
    REPLICA_SETTINGS,
    SERVICES,
    WORKER_MODULE,
    ServiceSpec,
    parse_replicas,
    replica_addresses,
    shift_port,
)

DEFAULT_DATA_DIR = Path(".protoserve")


def _data_dir(arg: str | None) -> Path:
    """Absolute, so every process started from here (Redis changes its working directory) agrees."""
    return Path(arg or os.environ.get("PROTOSERVE_DATA_DIR") or DEFAULT_DATA_DIR).absolute()


def wait_ready(spec: ServiceSpec, timeout: float, address: str = "", abort: Callable[[], str] | None = None) -> None:
    """Wait until the service answers ready; abort() returning a reason ends the wait (StartAborted)."""
    from protoserve_runtime import health

    if spec.protocol == "grpc":
        health.wait_serving(address or spec.address, timeout=timeout, abort=abort)
    else:
        health.wait_http_ok(f"http://{address or spec.address}/healthz", timeout=timeout, abort=abort)


def _start_abort(child: Any, stop: Any) -> Callable[[], str]:
    """Why waiting for child to be ready should end: it exited, or Ctrl-C / SIGTERM arrived."""

    def reason() -> str:
        if stop.requested:
            return "stop requested"
        code = child.process.poll() if child.process is not None else None
        return "" if code is None else f"{child.name} exited with code {code} before it was ready"

    return reason


def cmd_up(args: argparse.Namespace) -> int:
    from inference_svc.settings import InferenceSettings
    from protoserve_models.builtin.build import build_models
    from protoserve_runtime.child_logs import LogRelay
    from protoserve_runtime.health import StartAborted
    from protoserve_runtime.redis_server import EmbeddedRedis
    from protoserve_runtime.settings import from_env
    from protoserve_runtime.supervisor import Supervisor
    from protoserve_runtime.workers import StopSignals

    inference_settings = from_env(InferenceSettings)
    if not args.skip_build:
        built = build_models(inference_settings.models.model_repository)
        if built:
            print(f"built models: {', '.join(built)}")
    data_dir = _data_dir(args.data_dir)
    redis_url = os.environ.get("PROTOSERVE_REDIS_URL") or os.environ.get("REDIS_URL")
    embedded: EmbeddedRedis | None = None
    if not redis_url:
        embedded = EmbeddedRedis(data_dir / "redis", port=args.redis_port)
        redis_url = embedded.start()
    env = {"PROTOSERVE_REDIS_URL": redis_url, "PROTOSERVE_DATA_DIR": str(data_dir)}  # api_keys.json lives there
    try:
        replicas = parse_replicas(args.replicas)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env.update(_child_log_settings())
    relay = LogRelay(quiet=os.environ.get("PROTOSERVE_LOG_LEVEL", "info").lower() != "debug")
    supervisor = Supervisor(relay=relay)
    stop = StopSignals()
    status_file = data_dir / STATUS_FILE
    starting = ""
    try:
        for spec in SERVICES:
            addresses = replica_addresses(spec.address, replicas.get(spec.name, 1))
            for index, address in enumerate(addresses):  # several replicas: each on its own port
                name = spec.name if len(addresses) == 1 else f"{spec.name}-{index + 1}"
                own = {spec.address_setting: address}
                if index and spec.name == "inference" and inference_settings.inference_metrics_address:
                    own["PROTOSERVE_INFERENCE_METRICS_ADDRESS"] = shift_port(
                        inference_settings.inference_metrics_address, index * METRICS_PORT_STRIDE)
                starting = name
                child = supervisor.start(name, [sys.executable, "-m", spec.module], {**env, **own})
                wait_ready(spec, 120, address, _start_abort(child, stop))
            if len(addresses) > 1:  # the gateway balances over them
                env[REPLICA_SETTINGS[spec.name]] = ",".join(addresses)
        starting = ""
        for index in range(args.job_workers):  # job workers have no port: they read the Redis Stream
            supervisor.start(f"job-worker-{index + 1}", [sys.executable, "-m", WORKER_MODULE], env)
        print("\nprotoserve is up:")
        where = f"  (embedded, AOF on, data in {data_dir / 'redis'})" if embedded else ""
        print(f"  {'redis':<12} {redis_url}{where}")
        for spec in SERVICES:
            hint = f"   try: {spec.hint.format(address=spec.address)}" if spec.hint else ""
            print(f"  {spec.name:<12} {spec.protocol}://{spec.address}{hint}")
            if replicas.get(spec.name, 1) > 1:
                print(f"  {'':<12} replicas: {env[REPLICA_SETTINGS[spec.name]]}")
        print(f"  {'job workers':<12} {args.job_workers} (reading the job stream in Redis)")
        _print_auth_state()
        print(f"  {'status':<12} protoserve status --data-dir {data_dir}")
        print("Press Ctrl-C to stop.\n", flush=True)
        relay.show_all()
        return 0 if supervise(supervisor, stop, lambda: _write_status(status_file, supervisor)) else 1
    except TimeoutError as exc:
        relay.replay(starting)
        print(f"a service did not become ready: {exc}", file=sys.stderr)
        return 1
    except StartAborted as exc:
        if stop.requested:
            return 0
        relay.replay(starting)
        print(f"protoserve up: {exc} (its log is above); stopping", file=sys.stderr)
        return 1
    finally:
        print("stopping protoserve ...", file=sys.stderr)
        relay.show_all()  # what the services say while they stop
        supervisor.stop_all()
        relay.join()
        status_file.unlink(missing_ok=True)
        if embedded:
            embedded.stop()
        print("stopped.", file=sys.stderr)


STATUS_FILE = "up.json"


def _child_log_settings() -> dict[str, str]:
    """The children write to pipes, where they would choose JSON: they write what this terminal shows
    (readable lines on a terminal, JSON otherwise) unless PROTOSERVE_LOG_FORMAT says."""
    from protoserve_runtime.logging import log_format

    return {"PROTOSERVE_LOG_FORMAT": log_format(os.environ.get("PROTOSERVE_LOG_FORMAT", ""), sys.stderr)}


def _write_status(path: Path, supervisor: Any) -> None:
    """What `protoserve status` reads: each child's pid, state and restarts, written atomically."""
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps({"pid": os.getpid(), "updated": time.time(), "children": supervisor.status()}))
    staged.replace(path)


def supervise(supervisor: Any, stop: Any, report: Callable[[], None] = lambda: None) -> bool:
    """Keep every child running until Ctrl-C / SIGTERM: one that dies is restarted with backoff and
    the others keep serving. False when a child keeps dying soon after it starts (it is named).
    report() is called at the start and after every exit and restart."""
    report()
    while not stop.requested:
        changed = False
        for child in supervisor.exited():
            changed = True
            code = child.process.returncode
            delay = supervisor.schedule_restart(child)
            if delay is None:
                print(f"protoserve up: {child.name} keeps failing (exit code {code}, {child.quick_exits - 1} restarts "
                      "in a row each soon after it started; its log is above); stopping", file=sys.stderr)
                return False
            print(f"protoserve up: {child.name} exited with code {code}; restarting it in {delay:g} s",
                  file=sys.stderr, flush=True)
        for child in supervisor.restart_due():
            changed = True
            print(f"protoserve up: {child.name} restarted (restart {child.restarts}, pid {child.process.pid})",
                  file=sys.stderr, flush=True)
        if changed:
            report()
        time.sleep(0.2)
    return True


def cmd_status(args: argparse.Namespace) -> int:
    """What `protoserve up` (running from the same data directory) supervises, and the restarts."""
    path = _data_dir(args.data_dir) / STATUS_FILE
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        print(f"protoserve up is not running from {path.parent} (no {path.name})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"protoserve up, pid {status['pid']}")
    print(f"  {'process':<16} {'state':<11} {'pid':>8} {'restarts':>9}")
    for child in status["children"]:
        print(f"  {child['name']:<16} {child['state']:<11} {child['pid']:>8} {child['restarts']:>9}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from worker_svc.main import main as worker_main

    worker_main()
    return 0


def _print_auth_state() -> None:
    from protoserve_runtime.auth import AuthSettings
    from protoserve_runtime.settings import from_env

    settings = from_env(AuthSettings)
    if settings.auth:
        print(f"  auth is ON: API keys from {settings.keys_file} (protoserve keys create NAME --scopes predict)")
    else:
        print("\n  !!! AUTH IS OFF: anyone who can reach these ports may call every service.")
        print("  !!! For anything but local use: PROTOSERVE_AUTH=on and `protoserve keys create`.\n")


def cmd_serve(args: argparse.Namespace) -> int:
    import runpy

    runpy.run_module(DEPLOYABLES[args.service], run_name="__main__")
    return 0


def cmd_models_build(args: argparse.Namespace) -> int:
    from inference_svc.settings import InferenceSettings
    from protoserve_models.builtin.build import build_models
    from protoserve_runtime import logging as json_logging
    from protoserve_runtime.settings import from_env

    json_logging.configure("build")
    settings = from_env(InferenceSettings)
    repository = Path(args.repository) if args.repository else settings.models.model_repository
    built = build_models(repository, args.names or None, force=args.force)
    print(f"built: {', '.join(built) if built else 'nothing (all present; --force rebuilds)'}")
    return 0


def cmd_models_add(args: argparse.Namespace) -> int:
    from protoserve_models.adding import AddModelError, add_model
    from protoserve_models.card import ModelCard
    from protoserve_models.loading import UntrustedModelError
    from protoserve_models.model_files import ModelFileError
    from protoserve_runtime.errors import InvalidArgument

    repository = Path(args.repository or os.environ.get("PROTOSERVE_MODEL_REPOSITORY") or "models")
    trusted = [t for t in os.environ.get("PROTOSERVE_TRUSTED_TYPES", "").split(",") if t] + args.trust
    try:
        directory = add_model(args.name, Path(args.model_file), args.sample, args.target, repository,
                              trust_pickle=args.trust_pickle, trusted_types=trusted,
                              strict_categories=args.strict_categories)
    except (AddModelError, ModelFileError, UntrustedModelError, InvalidArgument, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    card = ModelCard.read(directory)
    print(f"added {card.name} version {card.version} at {directory}")
    answers = {"classification": f"labels {', '.join(card.labels)}" + ("" if card.probabilities else " (no probabilities)"),
               "regression": f"outputs {', '.join(card.outputs)}" if card.outputs else "one value",
               "anomaly_detection": "inlier or outlier", "clustering": f"{len(card.labels)} clusters"}
    print(f"  {card.task} ({card.algorithm}), takes a {card.input_format}, answers {answers[card.task]}")
    for feature in card.inputs:
        extra = f" {{{', '.join(feature.categories)}}}" if feature.categories else ""
        print(f"  {feature.name}: {feature.type}{' or null' if feature.nullable else ''}{extra}")
    if card.metrics:
        print("  on the sample: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(card.metrics.items())))
    return 0


def _inference_stub(address: str) -> Any:
    from protoserve.inference.v1 import inference_service_pb2_grpc

    from protoserve_runtime import tls

    return inference_service_pb2_grpc.InferenceServiceStub(tls.channel(address))


def _rows_from_json(text: str) -> list[dict[str, Any]]:
    data = json.loads(text)
    if isinstance(data, dict) and "rows" in data:
        data = data["rows"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ValueError("--json takes a row object, a list of rows, or {\"rows\": [...]}")
    return data


def cmd_predict(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf import json_format, struct_pb2
    from protoserve.inference.v1 import inference_service_pb2 as pb

    try:
        rows = _rows_from_json(args.json)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    request = pb.PredictRequest(model=args.model, version=args.version or "")
    for row in rows:
        struct = struct_pb2.Struct()
        struct.update(row)
        request.rows.append(struct)
    try:
        response = _inference_stub(args.address).Predict(request, timeout=args.timeout)
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
        return 1
    print(json_format.MessageToJson(response, indent=2))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from protoserve_runtime import health

    status = health.check(args.address, args.service)
    print(status)
    return 0 if status == "SERVING" else 1


def cmd_info(args: argparse.Namespace) -> int:
    import grpc

    from protoserve_runtime import server_info, tls

    try:
        with tls.channel(args.address) as channel:
            info = server_info.fetch(channel, timeout=args.timeout)
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
        return 1
    print(f"{info.service} {info.version} ({', '.join(info.grpc_services)})")
    return 0


def cmd_redis(args: argparse.Namespace) -> int:
    from protoserve_runtime.redis_server import EmbeddedRedis

    server = EmbeddedRedis(_data_dir(args.data_dir) / "redis", port=args.port)
    print(server.start(), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        assert server.process is not None
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from protoserve_runtime import auth, errors

    store = auth.KeyStore(_data_dir(args.data_dir) / "api_keys.json")
    if args.keys_command == "create":
        try:
            key, record = store.create(args.name, args.scopes.split(","))
        except errors.InvalidArgument as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        print(f"created key {record.id} ({record.name}) with scopes {','.join(record.scopes)}; it is shown only once:")
        print(key)
    elif args.keys_command == "list":
        lines = auth.describe_keys(store.list())
        print("\n".join(lines) if lines else f"no keys in {store.path}")
    elif not store.revoke(args.id):
        print(f"error: no key with id {args.id!r}", file=sys.stderr)
        return 1
    else:
        print(f"revoked {args.id}")
    return 0


def parser() -> argparse.ArgumentParser:
    default_address = os.environ.get("PROTOSERVE_INFERENCE_ADDRESS", "127.0.0.1:50051")
    root = argparse.ArgumentParser(prog="protoserve", description="Serve scikit-learn models over gRPC.")
    sub = root.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="build missing models, start Redis and every service; Ctrl-C stops all")
    up.add_argument("--data-dir", help="where the embedded Redis keeps its data (default .protoserve)")
    up.add_argument("--redis-port", type=int, default=0, help="port of the embedded Redis (default: a free one)")
    up.add_argument("--skip-build", action="store_true", help="do not build missing built-in models")
    up.add_argument("--replicas", action="append", default=[], metavar="NAME=N",
                    help="run N replicas of a service on consecutive ports behind the gateway (e.g. inference=3)")
    up.add_argument("--job-workers", type=int, default=1, metavar="N",
                    help="job worker processes to start (default 1; 0 for none)")
    up.set_defaults(func=cmd_up)

    status = sub.add_parser("status", help="what `protoserve up` runs: each process, its state and restarts")
    status.add_argument("--data-dir", help="the data directory protoserve up was started with (default .protoserve)")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=cmd_status)

    serve = sub.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=list(DEPLOYABLES))
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run one job worker in the foreground (needs PROTOSERVE_REDIS_URL)")
    worker.set_defaults(func=cmd_worker)

    models = sub.add_parser("models", help="manage the model repository")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    build = models_sub.add_parser("build", help="train the built-in models into the repository")
    build.add_argument("names", nargs="*", help="models to build (default: all)")
    build.add_argument("--force", action="store_true", help="rebuild models that exist")
    build.add_argument("--repository", help="model repository (default PROTOSERVE_MODEL_REPOSITORY or models)")
    build.set_defaults(func=cmd_models_build)
    add = models_sub.add_parser("add", help="add a fitted scikit-learn model as the next version of NAME")
    add.add_argument("name", metavar="NAME")
    add.add_argument("model_file", metavar="MODEL_FILE", help=".skops file; .joblib/.pkl or MLflow directory with --trust-pickle")
    add.add_argument("--sample", metavar="DATA", help="CSV or Parquet rows of the model's data (default: MLflow input example)")
    add.add_argument("--target", metavar="COLUMN", help="the sample's label column, for metrics (comma-separated for several)")
    add.add_argument("--repository", help="model repository (default PROTOSERVE_MODEL_REPOSITORY or models)")
    add.add_argument("--trust-pickle", action="store_true", help="read a pickle (it runs code as it loads): only your own")
    add.add_argument("--trust", action="append", default=[], metavar="TYPE", help="a type the model may hold beyond the defaults")
    add.add_argument("--strict-categories", action="store_true", help="refuse categories the sample never showed")
    add.set_defaults(func=cmd_models_add)

    predict = sub.add_parser("predict", help="call Predict on a running inference service")
    predict.add_argument("model")
    predict.add_argument("--json", required=True, help='rows, e.g. \'[{"text": "great"}]\'')
    predict.add_argument("--version", help="pin a model version")
    predict.add_argument("--address", default=default_address)
    predict.add_argument("--timeout", type=float, default=10.0)
    predict.set_defaults(func=cmd_predict)

    health = sub.add_parser("health", help="grpc.health.v1 check; exit 0 when SERVING")
    health.add_argument("--address", default=default_address)
    health.add_argument("--service", default="")
    health.set_defaults(func=cmd_health)

    info = sub.add_parser("info", help="which service answers at an address, and its version (GetServerInfo)")
    info.add_argument("--address", default=default_address)
    info.add_argument("--timeout", type=float, default=5.0)
    info.set_defaults(func=cmd_info)

    keys = sub.add_parser("keys", help="manage API keys (stored hashed in <data dir>/api_keys.json)")
    keys.add_argument("--data-dir", help="where api_keys.json is kept (default PROTOSERVE_DATA_DIR or .protoserve)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("name", help="who or what the key is for")
    create.add_argument("--scopes", default="predict", help="comma-separated: predict, explain, monitor, admin")
    keys_sub.add_parser("list", help="list keys (ids, names, scopes; never the keys)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("id")
    keys.set_defaults(func=cmd_keys)

    redis_cmd = sub.add_parser("redis", help="run the embedded Redis in the foreground")
    redis_cmd.add_argument("--data-dir")
    redis_cmd.add_argument("--port", type=int, default=6379)
    redis_cmd.set_defaults(func=cmd_redis)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        sys.exit(args.func(args))
    except KeyboardInterrupt:  # Ctrl-C before the services run (building the models): no traceback
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
