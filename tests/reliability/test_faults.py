"""kill -9 of each kind of process under load: the system recovers, nothing but calls in flight
to the dead process fails, and every process is serving again afterwards."""

from __future__ import annotations

import pytest

from tests.reliability.faults import inject
from tests.reliability.system import HAS_JOBS, HAS_MONITORING, System


@pytest.mark.parametrize("target", ["inference-0", "explain", *(["monitoring"] if HAS_MONITORING else []),
                                    *(["worker-0"] if HAS_JOBS else []), "gateway", "redis"])
def test_recovers_from_kill(system: System, target: str) -> None:
    result = inject(system, target)
    assert result.recovered_seconds is not None, result.record.summary()
    assert all(system.alive().values()), system.alive()
    assert result.jobs_lost in (0, None) and result.jobs_duplicated in (0, None), (result.jobs_lost, result.jobs_duplicated)
    # calls done before the kill all succeeded: failures are the fault's, not the load's (a call
    # still in flight to the killed process when it died may fail: that is the fault's)
    early = [o for o in result.record.failures() if o.at + o.seconds < result.killed_at]
    assert not early, (result.killed_at, early[:5], result.record.summary())
