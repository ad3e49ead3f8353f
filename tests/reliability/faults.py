"""One fault under load: SIGKILL a process, restart it (as a supervisor would), and measure.
Shared by the tests and bench/faults.py."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tests.reliability.load import Load, Record
from tests.reliability.system import System, wait_until

# Services a supervisor restarts; the others must be survived by what is left running.
RESTARTED = {"gateway", "redis"}


@dataclass
class FaultResult:
    target: str
    record: Record
    killed_at: float
    failed: int  # calls that failed from the kill on
    calls: int
    recovered_seconds: float | None  # kill -> every kind of call succeeding again
    jobs_lost: int | None = None  # None where the system has no jobs
    jobs_duplicated: int | None = None


def inject(system: System, target: str, *, before: float = 3.0, down: float = 2.0, after: float = 4.0,
           rate: float = 20.0) -> FaultResult:
    """Load for ``before`` s, SIGKILL ``target``, restart it after ``down`` s, load ``after`` s more."""
    with Load(system, rate=rate) as load:
        time.sleep(before)
        killed_at = time.monotonic()
        system.kill(target)
        time.sleep(down)
        system.restart(target)
        wait_until(lambda: load.record.recovered_after(killed_at) is not None, timeout=60)
        time.sleep(after)
    record = load.record
    result = FaultResult(target, record, killed_at, len(record.failures(since=killed_at)),
                         sum(1 for o in record.outcomes if o.at >= killed_at), record.recovered_after(killed_at))
    if load.jobs is not None:
        result.jobs_lost, result.jobs_duplicated = len(load.jobs.lost), load.jobs.duplicated()
    return result
