"""Loads and unloads recorded by one worker are seen, once, by the others."""

from __future__ import annotations

from multiprocessing.sharedctypes import RawValue
from pathlib import Path

from inference_svc.repository_sync import Change, RepositorySync


def test_changes_reach_siblings_once(tmp_path: Path) -> None:
    path, generation = tmp_path / "changes.json", RawValue("q", 0)
    taker, sibling, late = (RepositorySync(path, generation) for _ in range(3))
    assert not sibling.changed() and sibling.pending() == []
    unload = taker.publish("risk", "unload")
    taker.mark_applied(unload)
    assert taker.pending() == []  # the worker that took the call has applied it already
    assert sibling.changed()
    assert sibling.pending() == [Change("risk", "unload", 1)]
    sibling.mark_applied(unload)
    assert not sibling.changed() and sibling.pending() == []
    taker.mark_applied(taker.publish("iris-knn", "unload"))
    taker.mark_applied(taker.publish("risk", "load"))  # the newest operation per model wins
    assert sibling.pending() == [Change("iris-knn", "unload", 2), Change("risk", "load", 3)]
    assert [c.sequence for c in late.pending()] == [2, 3]
