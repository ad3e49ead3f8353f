"""How a version's state is named on each surface: one table, read by every adapter.

The protobuf enums are derived by name (``MODEL_VERSION_STATE_<STATE>`` in the common messages,
``VERSION_STATE_<LIFECYCLE NAME>`` in ModelService); the lifecycle shows a version on disk that is
not loaded as *available*, and the Open Inference Protocol's repository index knows only READY,
LOADING and UNAVAILABLE.
"""

from __future__ import annotations

from typing import NamedTuple

from protoserve_models.repository import VersionState


class StateNames(NamedTuple):
    lifecycle: str  # ListVersions (ModelService.VersionState, lower case)
    repository_index: str  # the Open Inference Protocol's model-repository extension


STATE_NAMES: dict[VersionState, StateNames] = {
    VersionState.LOADING: StateNames("loading", "LOADING"),
    VersionState.READY: StateNames("ready", "READY"),
    VersionState.FAILED: StateNames("failed", "UNAVAILABLE"),
    VersionState.UNLOADED: StateNames("available", "UNAVAILABLE"),
}
NOT_LOADED = STATE_NAMES[VersionState.UNLOADED]  # a version on disk this process has not read


def common_enum_name(state: VersionState) -> str:
    return f"MODEL_VERSION_STATE_{state.name}"


def lifecycle_enum_name(lifecycle: str) -> str:
    return f"VERSION_STATE_{lifecycle.upper()}"
