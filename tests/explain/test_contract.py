"""The explain service's contract: reflection serves it, and it carries the gateway's REST route."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from google.api import annotations_pb2
from protoserve.explain.v1 import explain_service_pb2 as pb

from explain_svc.settings import ExplainSettings
from protoserve_runtime.services import by_name
from protoserve_runtime.settings import describe
from tests.harness import REPO_ROOT

GRPCURL = str(Path(sys.executable).with_name("grpcurl"))


def test_explain_has_its_rest_route() -> None:
    method = pb.DESCRIPTOR.services_by_name["ExplainService"].methods_by_name["Explain"]
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    assert (rule.post, rule.body) == ("/v1/models/{model}:explain", "*")


def test_protoserve_up_starts_it() -> None:
    assert by_name("explain").module == "explain_svc.main"


def test_docs_grpcurl_examples_work_as_pasted(explain_address: str) -> None:
    doc = (REPO_ROOT / "docs/explain.md").read_text()
    commands = re.findall(r"^grpcurl .*?(?<!\\)$", doc, flags=re.M | re.S)
    assert len(commands) >= 2
    for command in commands:
        command = command.replace("\\\n", " ").replace("127.0.0.1:50053", explain_address)
        result = subprocess.run(command.replace("grpcurl", GRPCURL, 1), shell=True, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        if " list" not in command:
            assert json.loads(result.stdout)["explanations"]


def test_reflection_lists_the_service(explain_address: str) -> None:
    listed = subprocess.run([GRPCURL, "-plaintext", explain_address, "list"], capture_output=True, text=True, timeout=60)
    assert "protoserve.explain.v1.ExplainService" in listed.stdout.split()
    assert "grpc.health.v1.Health" in listed.stdout.split()


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for variable, _default, help_text in describe(ExplainSettings):
        assert f"`{variable}`" in readme, f"{variable} is missing from the README"
        assert help_text
