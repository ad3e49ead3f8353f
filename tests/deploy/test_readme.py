"""The README's Deploy section: its protoserve commands parse, the files it names exist."""

from __future__ import annotations

import re
import shlex

from tests.deploy.manifests import check_command
from tests.harness import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
DEPLOY_SECTION = README.split("## Deploy", 1)[1].split("\n## ", 1)[0]
COMMANDS = [line.split("#", 1)[0].strip() for line in re.findall(r"^(?:make|\.venv/bin/protoserve|docker|kubectl) .*$",
                                                                  DEPLOY_SECTION, flags=re.M)]


def test_the_three_paths_are_shown() -> None:
    assert "make up" in COMMANDS
    assert "docker compose up -d --build" in COMMANDS
    assert "kubectl apply -k deploy/k8s" in COMMANDS


def test_protoserve_commands_parse_and_named_files_exist() -> None:
    for command in COMMANDS:
        argv = shlex.split(command)
        if argv[0] == ".venv/bin/protoserve":
            check_command(["protoserve", *argv[1:]])
    for path in re.findall(r"`((?:deploy|\.ci)/[\w./-]+)`", DEPLOY_SECTION):
        assert (REPO_ROOT / path).exists(), path
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^make (\w+)", "\n".join(COMMANDS), flags=re.M):
        assert re.search(rf"^{target}:", makefile, flags=re.M), f"make {target}"
