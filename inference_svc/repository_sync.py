"""Model loads and unloads asked of one worker, carried out by every worker.

Each worker process holds its own models, and a RepositoryModelLoad/Unload call reaches only one
of them. That worker records the operation in a small JSON file shared by the workers (under an
exclusive file lock) and bumps a generation counter in shared memory; every worker watches the
counter and applies the operations it has not applied yet. A worker that starts later (a
replacement) applies the recorded unloads after loading the repository, so all stay alike.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import RawValue
from pathlib import Path
from typing import Any, Literal

Operation = Literal["load", "unload"]


@dataclass(frozen=True)
class Change:
    model: str
    operation: Operation
    sequence: int


@dataclass
class RepositorySync:
    path: Path  # the shared record: {model: {"operation": ..., "sequence": n}}
    generation: Any = field(default_factory=lambda: RawValue("q", 0))
    _applied: dict[str, int] = field(default_factory=dict)
    _seen: int = 0

    def publish(self, model: str, operation: Operation) -> Change:
        """Record an operation for every worker; the caller applies it itself, then mark_applied."""
        with self.path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            record = json.loads(handle.read() or "{}")
            sequence = int(self.generation.value) + 1
            record[model] = {"operation": operation, "sequence": sequence}
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(record))
            handle.flush()
            self.generation.value = sequence
        return Change(model, operation, sequence)

    def mark_applied(self, change: Change) -> None:
        self._applied[change.model] = max(self._applied.get(change.model, 0), change.sequence)

    def changed(self) -> bool:
        return int(self.generation.value) != self._seen

    def pending(self) -> list[Change]:
        """Operations this worker has not applied yet, oldest first."""
        self._seen = int(self.generation.value)
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            record = json.loads(handle.read() or "{}")
        changes = [Change(m, entry["operation"], int(entry["sequence"])) for m, entry in record.items()]
        return sorted((c for c in changes if c.sequence > self._applied.get(c.model, 0)), key=lambda c: c.sequence)
