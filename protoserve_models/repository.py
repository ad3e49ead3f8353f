"""The model repository on disk: ``<root>/<name>/<version>/{model.skops,card.json}``.

Models are read with skops, never pickle: a file that holds a type outside the allow-list is
refused at load, as is a model that cannot answer its card's reference sample; its version is
marked FAILED with the reason and the other versions keep serving.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from protoserve_models.card import CardError, ModelCard
from protoserve_models.loading import load_version
from protoserve_models.model import LoadedModel
from protoserve_runtime.errors import InvalidArgument, NotFound, Unavailable

log = logging.getLogger(__name__)

MODEL_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
VERSION_PATTERN = re.compile(r"^[1-9][0-9]{0,8}$")

# The project's own estimator parts. Beside these, the types of scikit-learn, numpy and scipy
# (protoserve_models.loading) and skops's defaults are trusted.
PROJECT_TRUSTED_TYPES = ("protoserve_models.builtin.text_features.VaderLexiconFeatures",)


class VersionState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    UNLOADED = "unloaded"


@dataclass
class VersionEntry:
    version: str
    state: VersionState
    reason: str = ""
    model: LoadedModel | None = None
    card: ModelCard | None = None


def load_model_file(directory: Path, trusted: Iterable[str], fast_kernel: bool = False) -> LoadedModel:
    """Read one version directory; refuse any type that is not trusted, and a model that cannot
    answer its card's reference sample. fast_kernel: serve it with an exact fast kernel when its
    estimator has one (protoserve_models/kernels.py)."""
    return load_version(directory, trusted, fast_kernel)


def check_model_name(name: str, field: str = "model") -> str:
    if not MODEL_NAME_PATTERN.match(name):
        raise InvalidArgument.for_field(
            field, f"{name!r} is not a model name (lowercase letters, digits, '.', '_', '-')"
        )
    return name


def check_version(version: str, field: str = "version") -> str:
    if not VERSION_PATTERN.match(version):
        raise InvalidArgument.for_field(field, f"{version!r} is not a version (a positive whole number)")
    return version


def _readable_card(directory: Path) -> ModelCard | None:
    try:
        return ModelCard.read(directory)
    except CardError:
        return None


class ModelRepository:
    """Every model version under root, loaded into memory; thread-safe lookups."""

    def __init__(self, root: Path, trusted_types: Iterable[str] = (), fast_kernels: Iterable[str] = ()) -> None:
        self.root = root
        self.trusted_types = tuple(PROJECT_TRUSTED_TYPES) + tuple(trusted_types)
        self.fast_kernels = frozenset(fast_kernels)  # model names, or "*" for every model
        self._models: dict[str, dict[str, VersionEntry]] = {}
        self._lock = threading.Lock()

    def discover(self) -> dict[str, list[str]]:
        """Model names and their version directories on disk, sorted."""
        found: dict[str, list[str]] = {}
        if not self.root.is_dir():
            return found
        for model_dir in sorted(self.root.iterdir()):
            if not (model_dir.is_dir() and MODEL_NAME_PATTERN.match(model_dir.name)):
                continue
            versions = [v.name for v in model_dir.iterdir() if v.is_dir() and VERSION_PATTERN.match(v.name)]
            if versions:
                found[model_dir.name] = sorted(versions, key=int)
        return found

    def load_all(self) -> None:
        for name, versions in self.discover().items():
            for version in versions:
                self.load(name, version)

    def load(self, name: str, version: str) -> VersionEntry:
        entry = VersionEntry(version, VersionState.LOADING)
        with self._lock:
            self._models.setdefault(name, {})[version] = entry
        directory = self.root / name / version
        try:
            fast = "*" in self.fast_kernels or name in self.fast_kernels
            model = load_model_file(directory, self.trusted_types, fast)
            if model.card.name != name or model.card.version != version:
                raise CardError(
                    f"card says {model.card.name}/{model.card.version}, directory is {name}/{version}"
                )
        except Exception as exc:  # any failure marks only this version FAILED
            entry.state, entry.reason = VersionState.FAILED, str(exc)
            entry.card = _readable_card(directory)  # so that its card can still be shown beside the reason
            log.error("model version failed to load", extra={"model": name, "version": version, "reason": str(exc)})
            return entry
        entry.model, entry.card, entry.state = model, model.card, VersionState.READY
        log.info("model version loaded", extra={"model": name, "version": version})
        return entry

    def unload(self, name: str, version: str) -> None:
        """Drop a version from the table of loaded models; calls that already hold it finish on it."""
        with self._lock:
            entry = self._models.get(name, {}).get(version)
            if entry is not None:
                entry.model, entry.state, entry.reason = None, VersionState.UNLOADED, "not loaded"
        log.info("model version unloaded", extra={"model": name, "version": version})

    def add_available(self, name: str, version: str) -> None:
        """Record a version found on disk that is not loaded."""
        with self._lock:
            self._models.setdefault(name, {}).setdefault(version, VersionEntry(version, VersionState.UNLOADED, "not loaded"))

    def forget(self, name: str, version: str) -> None:
        """Drop a version that left the disk."""
        with self._lock:
            versions = self._models.get(name, {})
            versions.pop(version, None)
            if not versions:
                self._models.pop(name, None)

    def ready_versions(self, name: str) -> set[str]:
        with self._lock:
            return {v for v, e in self._models.get(name, {}).items() if e.state is VersionState.READY}

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def versions(self, name: str) -> list[VersionEntry]:
        with self._lock:
            entries = self._models.get(name)
            if entries is None:
                raise NotFound(f"model {name!r} not found")
            return sorted(entries.values(), key=lambda e: int(e.version))

    def default_version(self, name: str, preferred: str = "") -> str | None:
        """preferred (the serving state's default) when it is ready here, else the newest ready version."""
        check_model_name(name)
        ready = [e.version for e in self.versions(name) if e.state is VersionState.READY]
        if preferred and preferred in ready:
            return preferred
        return ready[-1] if ready else None

    def get(self, name: str, version: str | None = None) -> LoadedModel:
        """The model that answers for name (and version, when one is pinned)."""
        check_model_name(name)
        entries = self.versions(name)
        if version:
            check_version(version)
            entry = next((e for e in entries if e.version == version), None)
            if entry is None:
                raise NotFound(f"model {name!r} has no version {version!r}")
        else:
            ready = [e for e in entries if e.state is VersionState.READY]
            if not ready:
                states = "; ".join(f"version {e.version} is {e.state.value}" + (f": {e.reason}" if e.reason else "")
                                   for e in entries)
                raise Unavailable(f"model {name!r} has no ready version ({states})")
            entry = ready[-1]
        if entry.state is not VersionState.READY or entry.model is None:
            raise Unavailable(f"model {name!r} version {entry.version} is {entry.state.value}: {entry.reason}")
        return entry.model
