"""The serving state kept in a file shared by the worker processes of one replica (no Redis).

Without Redis there is nothing shared between replicas, but the workers of one replica still must
agree: an Open Inference Protocol RepositoryModelLoad/Unload reaches one worker and all must carry
it out. The same ModelServing documents and revision as in Redis (serving_state.py), in one small
JSON file under an exclusive lock; the workers poll its revision like they poll Redis's.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protoserve_models.serving_state import Change, ModelServing


@dataclass
class LocalStateStore:
    path: Path  # {"revision": n, "models": {name: document}}
    shared = False  # reaches the workers of this replica only

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        with self.path.open(encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            return dict(json.loads(handle.read() or "{}"))

    async def revision(self) -> int:
        return int(self._read().get("revision", 0))

    async def read_all(self) -> tuple[int, dict[str, ModelServing]]:
        record = self._read()
        models = record.get("models", {})
        return int(record.get("revision", 0)), {name: ModelServing.from_json(doc) for name, doc in models.items()}

    async def update(self, model: str, change: Change) -> tuple[ModelServing, ModelServing]:
        with self.path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            record = json.loads(handle.read() or "{}")
            models = record.setdefault("models", {})
            before = ModelServing.from_json(models.get(model))
            after = change(before)  # may raise: nothing is written
            models[model] = after.to_json()
            record["revision"] = int(record.get("revision", 0)) + 1
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(record))
            handle.flush()
        return before, after

    async def close(self) -> None:
        return None
