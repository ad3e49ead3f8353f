"""Alerts: rules evaluated on one window, firing alerts and their history in Redis, and a watch.

One replica at a time evaluates (it holds a short Redis lock); every change of state is appended
to the alert log stream, which ListAlerts reads back and WatchAlerts follows from any replica.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, replace

from prometheus_client import Gauge
from redis.exceptions import RedisError

from monitoring_svc.aggregates import Keys, RedisClient
from monitoring_svc.summary import Accuracy, FeatureDrift, Traffic

log = logging.getLogger(__name__)

ALERT_LOG_LENGTH = 10_000
ALERTS_FIRING = Gauge("protoserve_monitoring_alerts_firing", "Alerts firing now, by rule.", ["rule"])

RULES = ("feature_drift", "accuracy_below", "latency_p99_above", "error_rate_above")


@dataclass(frozen=True)
class Alert:
    rule: str
    state: str  # firing or resolved
    model: str
    version: str
    feature: str
    value: float
    threshold: float
    message: str
    time: float
    window: str

    @property
    def id(self) -> str:
        return ":".join(p for p in (self.rule, self.model, self.version, self.feature) if p)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Alert:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class AlertRules:
    window: str
    drift: bool
    accuracy_below: float
    accuracy_min_labeled: int
    latency_p99_ms: float
    error_rate_above: float
    min_requests: int


@dataclass(frozen=True)
class ModelWindow:
    """What the rules look at for one model version."""

    model: str
    version: str
    traffic: Traffic
    accuracy: Accuracy
    drift: list[FeatureDrift]
    is_classifier: bool


def conditions(rules: AlertRules, seen: ModelWindow, now: float) -> list[Alert]:
    """The alerts whose condition holds now."""

    def alert(rule: str, value: float, threshold: float, message: str, feature: str = "") -> Alert:
        return Alert(rule, "firing", seen.model, seen.version, feature, value, threshold, message, now, rules.window)

    found = []
    name = f"{seen.model} version {seen.version}"
    if rules.drift:
        for d in seen.drift:
            if d.drifted:
                psi = next((t.statistic for t in d.tests if t.name.endswith("psi")), 0.0)
                threshold = next((t.threshold for t in d.tests if t.name.endswith("psi")), 0.0)
                message = f"{name}: input {d.feature!r} drifted from the reference (PSI {psi:.3f})"
                found.append(alert("feature_drift", psi, threshold, message, d.feature))
    acc = seen.accuracy
    judged = rules.accuracy_below > 0 and seen.is_classifier and acc.labeled_count >= rules.accuracy_min_labeled
    if judged and acc.accuracy < rules.accuracy_below:
        found.append(alert("accuracy_below", acc.accuracy, rules.accuracy_below,
                           f"{name}: accuracy {acc.accuracy:.3f} on {acc.labeled_count} labeled predictions"))
    t = seen.traffic
    if t.request_count >= rules.min_requests:
        if rules.latency_p99_ms > 0 and t.latency_p99_ms > rules.latency_p99_ms:
            message = f"{name}: p99 latency {t.latency_p99_ms:.1f} ms"
            found.append(alert("latency_p99_above", t.latency_p99_ms, rules.latency_p99_ms, message))
        if rules.error_rate_above > 0 and t.error_rate > rules.error_rate_above:
            found.append(alert("error_rate_above", t.error_rate, rules.error_rate_above,
                               f"{name}: {t.error_rate:.1%} of {t.request_count} requests failed"))
    return found


class AlertStore:
    def __init__(self, client: RedisClient, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    async def firing(self, model: str = "") -> list[Alert]:
        raw = await self.client.hgetall(self.keys.alerts_firing)
        alerts = [Alert.from_json(v) for v in raw.values()]
        return sorted((a for a in alerts if not model or a.model == model), key=lambda a: (a.time, a.id))

    async def history(self, model: str = "", limit: int = 100) -> list[Alert]:
        entries = await self.client.xrevrange(self.keys.alerts_log, count=max(limit, 1) * (10 if model else 1))
        alerts = [Alert.from_json(fields[b"a"]) for _, fields in entries]
        return [a for a in alerts if not model or a.model == model][:limit]

    async def last_evaluation(self) -> float:
        raw = await self.client.get(self.keys.alerts_evaluated)
        return float(raw) if raw else 0.0

    async def apply(self, now_true: list[Alert], now: float) -> list[Alert]:
        """Fire the new conditions, resolve the ones that ended; returns the changes."""
        firing = {a.id: a for a in await self.firing()}
        current = {a.id: a for a in now_true}
        changes = [a for i, a in current.items() if i not in firing]
        changes += [replace(a, state="resolved", time=now) for i, a in firing.items() if i not in current]
        async with self.client.pipeline(transaction=True) as pipe:
            for change in changes:
                if change.state == "firing":
                    pipe.hset(self.keys.alerts_firing, change.id, change.to_json())
                else:
                    pipe.hdel(self.keys.alerts_firing, change.id)
                pipe.xadd(self.keys.alerts_log, {"a": change.to_json()}, maxlen=ALERT_LOG_LENGTH, approximate=True)
            pipe.set(self.keys.alerts_evaluated, repr(now))
            await pipe.execute()
        for rule in RULES:
            ALERTS_FIRING.labels(rule).set(sum(a.rule == rule for a in current.values()))
        return changes

    async def watch(self, model: str = "", block_ms: int = 1000) -> AsyncIterator[Alert]:
        """The alerts firing now, then every change as it is logged, until the caller stops."""
        tail = await self.client.xrevrange(self.keys.alerts_log, count=1)
        last_id: bytes | str = tail[0][0] if tail else "0-0"
        for alert in await self.firing(model):
            yield alert
        while True:
            response = await self.client.xread({self.keys.alerts_log: last_id}, block=block_ms, count=100)
            for _, entries in response or []:
                for entry_id, fields in entries:
                    last_id = entry_id
                    alert = Alert.from_json(fields[b"a"])
                    if not model or alert.model == model:
                        yield alert


class AlertEvaluator:
    """Evaluates the rules every interval on the replica that holds the lock."""

    def __init__(
        self,
        store: AlertStore,
        rules: AlertRules,
        observe: Callable[[float], Awaitable[list[ModelWindow]]],
        interval_seconds: float,
        replica: str,
    ) -> None:
        self.store = store
        self.rules = rules
        self.observe = observe
        self.interval_seconds = interval_seconds
        self.replica = replica

    async def _lead(self) -> bool:
        client, key = self.store.client, self.store.keys.alerts_lock
        ttl_ms = int(self.interval_seconds * 3000)
        if await client.set(key, self.replica, nx=True, px=ttl_ms):
            return True
        holder = await client.get(key)
        if holder is not None and holder.decode() == self.replica:
            await client.pexpire(key, ttl_ms)
            return True
        return False

    async def evaluate_once(self) -> list[Alert]:
        now = time.time()
        found = [a for seen in await self.observe(now) for a in conditions(self.rules, seen, now)]
        return await self.store.apply(found, now)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self._lead():
                    for change in await self.evaluate_once():
                        log.info("alert " + change.state, extra={"alert": change.id, "detail": change.message})
            except (RedisError, OSError) as exc:
                log.warning("alert evaluation waits for Redis", extra={"error": repr(exc)})
            except Exception:  # a bug must not stop alerting for good: log it, try again next time
                log.exception("alert evaluation failed")
            try:
                await asyncio.wait_for(stop.wait(), self.interval_seconds)
            except TimeoutError:
                pass
