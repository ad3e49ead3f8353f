"""A short soak (about a minute; bench/soak.py runs ten): no errors, RSS and descriptors flat,
Redis keys bounded."""

from __future__ import annotations

from tests.reliability.soak import soak
from tests.reliability.system import System


def test_short_soak_has_no_errors_and_no_leaks(system: System) -> None:
    result = soak(system, seconds=60, warmup=20)
    summary = result.record.summary()
    assert not result.record.failures(), summary
    assert (result.jobs_lost, result.jobs_duplicated) == (0, 0)
    assert sum(sum(c.values()) for c in summary.values()) > 200, summary  # the load really ran
    assert all(system.alive().values()), system.alive()
    assert not result.grown(), result.rss_growth()
    assert max(result.fd_growth().values()) <= 4, result.fd_growth()
    assert result.keys_at_end <= result.keys_after_warmup + 50, (result.keys_after_warmup, result.keys_at_end)
