"""The soak: steady mixed load for a while, with every process's RSS and descriptors and the
Redis key count sampled after warm-up and at the end. Shared by the test and bench/soak.py."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from tests.reliability.load import Load, Record
from tests.reliability.system import System


@dataclass
class SoakResult:
    record: Record
    seconds: float
    after_warmup: dict[str, tuple[int, int]]  # service/pid -> (RSS bytes, descriptors)
    at_end: dict[str, tuple[int, int]]
    keys_after_warmup: int
    keys_at_end: int
    jobs_lost: int = 0
    jobs_duplicated: int = 0

    def rss_growth(self) -> dict[str, float]:
        """Relative RSS growth of each process alive at both samples."""
        return {name: self.at_end[name][0] / rss - 1 for name, (rss, _) in self.after_warmup.items()
                if name in self.at_end}

    def grown(self, relative: float = 0.05, floor: int = 2 << 20) -> dict[str, float]:
        """Processes whose RSS grew by more than ``relative`` and by more than ``floor`` bytes (the
        floor keeps a 5 MiB Redis from failing on one allocator arena)."""
        return {name: g for name, g in self.rss_growth().items()
                if g >= relative and self.at_end[name][0] - self.after_warmup[name][0] > floor}

    def fd_growth(self) -> dict[str, int]:
        return {name: self.at_end[name][1] - fds for name, (_, fds) in self.after_warmup.items() if name in self.at_end}


def redis_keys(system: System) -> int:
    client = redis.Redis.from_url(system.redis_url)
    try:
        return int(client.dbsize())
    finally:
        client.close()


def soak(system: System, seconds: float, warmup: float, rate: float = 20.0) -> SoakResult:
    start = time.monotonic()
    with Load(system, rate=rate) as load:
        time.sleep(warmup)
        after_warmup, keys_after_warmup = system.resources(), redis_keys(system)
        time.sleep(max(0.0, seconds - warmup))
        at_end, keys_at_end = system.resources(), redis_keys(system)
    result = SoakResult(load.record, time.monotonic() - start, after_warmup, at_end, keys_after_warmup, keys_at_end)
    if load.jobs is not None:
        result.jobs_lost, result.jobs_duplicated = len(load.jobs.lost), load.jobs.duplicated()
    return result
