"""``protoserve models build``: train the built-in models and write them to the model repository."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import skops.io as sio

from protoserve_models.builtin.recipes import RECIPES, load_config
from protoserve_models.card import CARD_FILE, MODEL_FILE

log = logging.getLogger(__name__)


def is_built(repository: Path, name: str, version: str = "1") -> bool:
    directory = repository / name / version
    return (directory / MODEL_FILE).is_file() and (directory / CARD_FILE).is_file()


def build_models(repository: Path, names: Iterable[str] | None = None, force: bool = False) -> list[str]:
    """Build the named built-in models (all by default) that are missing, or all with force."""
    config = load_config()
    wanted = list(names) if names else list(RECIPES)
    unknown = [n for n in wanted if n not in RECIPES]
    if unknown:
        raise ValueError(f"unknown built-in model(s) {unknown}; known: {sorted(RECIPES)}")
    built = []
    for name in wanted:
        if is_built(repository, name) and not force:
            log.info("model already built", extra={"model": name})
            continue
        started = time.perf_counter()
        result = RECIPES[name](config)
        target = repository / name / result.card.version
        # Write beside the target and rename, so a server never sees half a model.
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        sio.dump(result.estimator, staging / MODEL_FILE)
        (staging / CARD_FILE).write_text(result.card.to_json(), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        log.info("model built", extra={"model": name, "version": result.card.version,
                                       "seconds": round(time.perf_counter() - started, 1),
                                       "metrics": result.card.metrics})
        built.append(name)
    return built
