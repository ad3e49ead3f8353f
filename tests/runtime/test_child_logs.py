"""`protoserve up` keeps its children's start-up detail back until the summary, shows warnings and
anything that is not a log line at once, and tells a failed start's story."""

from __future__ import annotations

import io
import subprocess
import sys

from protoserve_runtime.child_logs import LogRelay, line_level

SAYS = r"""
import json, sys
print(json.dumps({"level": "info", "message": "model version loaded"}), file=sys.stderr)
print("12:03:04 DEBUG    inference  listening", file=sys.stderr)
print(json.dumps({"level": "warning", "message": "AUTH IS OFF"}), file=sys.stderr)
print("Traceback (most recent call last):", file=sys.stderr)
print("12:03:05 ERROR    inference  cannot bind", file=sys.stderr)
"""


def said_by_child(relay: LogRelay) -> None:
    child = subprocess.Popen([sys.executable, "-c", SAYS], stderr=subprocess.PIPE)
    assert child.stderr is not None
    relay.attach("inference", child.stderr)
    child.wait(30)
    relay.join()


def test_start_up_detail_is_kept_back_and_replayed_for_a_failed_start() -> None:
    out = io.StringIO()
    relay = LogRelay(quiet=True, out=out)
    said_by_child(relay)
    shown = out.getvalue().splitlines()
    assert shown == ['{"level": "warning", "message": "AUTH IS OFF"}', "Traceback (most recent call last):",
                     "12:03:05 ERROR    inference  cannot bind"]
    relay.replay("inference")
    assert out.getvalue().splitlines()[3:] == ['{"level": "info", "message": "model version loaded"}',
                                               "12:03:04 DEBUG    inference  listening"]


def test_after_the_summary_every_line_is_shown() -> None:
    out = io.StringIO()
    relay = LogRelay(quiet=True, out=out)
    relay.show_all()
    said_by_child(relay)
    assert len(out.getvalue().splitlines()) == 5


def test_levels_of_both_formats() -> None:
    assert line_level('{"time": "x", "level": "info", "message": "m"}') == "info"
    assert line_level("12:03:04 WARNING  gateway    slow") == "warning"
    assert line_level("Traceback (most recent call last):") == ""
    assert line_level('{"not": "closed"') == ""
