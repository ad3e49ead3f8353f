"""The promotion policy: a new version (the challenger) becomes the default only if it beats the
default version (the champion) on the same held-out rows by the margin; MANUAL never promotes; a
model's first version is promoted, there being nothing else to serve."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from protoserve_models.card import Task
from protoserve_models.training.record import Mode

METRIC_BY_TASK: dict[Task, str] = {"classification": "accuracy", "regression": "r2"}


@dataclass(frozen=True)
class Decision:
    mode: str
    promoted: bool
    champion_version: str
    metric: str
    challenger_score: float
    champion_score: float
    margin: float
    reason: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def decide(mode: Mode, task: Task, challenger: float | None, champion_version: str, champion: float | None,
           margin: float, champion_error: str = "") -> Decision:
    """challenger None: the task has no held-out score (an anomaly detector, a clusterer)."""
    metric = METRIC_BY_TASK.get(task, "")

    def result(promoted: bool, reason: str) -> Decision:
        return Decision(f"PROMOTION_MODE_{mode}", promoted, champion_version, metric, challenger or 0.0,
                        champion if champion is not None else 0.0, margin, reason)

    if not champion_version:
        return result(True, "the model's first version is promoted: there is no default version to compare with")
    if challenger is None:
        kind = task.replace("_", " ")
        return result(False, f"not promoted: a {kind} model has no held-out score to compare versions on; "
                             "promote it with PromoteVersion")
    if mode == "MANUAL":
        return result(False, f"MANUAL: not promoted; {metric} {challenger:.4f} vs {champion_version}'s "
                             f"{(champion or 0.0):.4f}; promote it with PromoteVersion")
    if champion is None:
        return result(False, f"not promoted: the default version {champion_version} could not be scored ({champion_error})")
    needed = champion + margin
    if challenger >= needed:
        return result(True, f"promoted: held-out {metric} {challenger:.4f} >= {champion:.4f} "
                            f"(version {champion_version}) + margin {margin:g}")
    return result(False, f"not promoted: held-out {metric} {challenger:.4f} < {champion:.4f} "
                         f"(version {champion_version}) + margin {margin:g}")
