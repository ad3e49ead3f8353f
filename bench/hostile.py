"""Hostile input at volume: schemathesis against the gateway's OpenAPI (thousands of cases, with
a key) and the property-based protobuf fuzzer against every gRPC service of the system.

    .venv/bin/python -m bench.hostile --schemathesis-examples 1000 --grpc-cases 500
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bench.reliability_system import arguments, running_system
from tests.harness import REPO_ROOT

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--schemathesis-examples", type=int, default=1000, help="per operation")
    parser.add_argument("--grpc-cases", type=int, default=500, help="per RPC")
    args = parser.parse_args()
    with running_system(args.models) as system:
        print("| target | tool | cases | 5xx / INTERNAL / UNKNOWN | crashes |\n|---|---|---|---|---|")
        for name in [n for n in system.services if n in ("inference-0", "explain", "monitoring")]:
            run = subprocess.run([sys.executable, "-m", "tests.reliability.grpc_fuzz", system.address(name),
                                  "--cases", str(args.grpc_cases), "--key", system.keys["user"]],
                                 capture_output=True, text=True, cwd=REPO_ROOT)
            report = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"| {name} | hypothesis protobuf fuzzer | {report['cases']} | {report['bad_count']} | "
                  f"{0 if report['alive'] else 1} |", flush=True)
            for line in report["bad"][:5]:
                print(f"|  | {line[:200]} | | | |")
        run = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run", f"{system.gateway_url}/openapi.json",
             "--checks", CHECKS, "--max-examples", str(args.schemathesis_examples), "--seed", "7",
             "--phases", "examples,coverage,fuzzing", "--workers", "2", "--request-timeout", "30", "--no-color",
             "-H", f"Authorization: Bearer {system.keys['user']}"],
            capture_output=True, text=True, cwd=REPO_ROOT)
        generated = re.search(r"(\d+) generated", run.stdout)
        failures = "0" if run.returncode == 0 else "see output"
        crashed = 0 if all(system.alive().values()) else 1
        print(f"| gateway | schemathesis | {generated.group(1) if generated else '?'} | {failures} | {crashed} |")
        if run.returncode != 0:
            print(run.stdout[-4000:])


if __name__ == "__main__":
    main()
