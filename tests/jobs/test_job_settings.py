"""Job and Redis settings: documented, and bad values refused at start naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_svc.settings import InferenceSettings
from protoserve_models.jobs.settings import JobSettings
from protoserve_runtime.redis_settings import RedisSettings
from protoserve_runtime.settings import SettingsError, describe, from_env


def test_every_job_and_redis_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for cls in (JobSettings, RedisSettings):
        for variable, _default, help_text in describe(cls):
            assert f"`{variable}`" in readme, f"{variable} is missing from the README"
            assert help_text


@pytest.mark.parametrize(
    ("cls", "variable", "value", "words"),
    [
        (JobSettings, "PROTOSERVE_JOB_BATCH_SIZE", "1500", "multiple of PROTOSERVE_JOB_PAGE_SIZE"),
        (JobSettings, "PROTOSERVE_JOB_MAX_ATTEMPTS", "0", "PROTOSERVE_JOB_MAX_ATTEMPTS must be at least 1"),
        (JobSettings, "PROTOSERVE_JOB_VISIBILITY_TIMEOUT_SECONDS", "-1", "must be positive"),
        (InferenceSettings, "PROTOSERVE_CACHE_TTL_SECONDS", "0", "at least 1"),
        (InferenceSettings, "PROTOSERVE_CACHE_ENABLED", "maybe", "PROTOSERVE_CACHE_ENABLED='maybe'"),
        (RedisSettings, "PROTOSERVE_REDIS_PREFIX", "two words", "non-empty word"),
    ],
)
def test_bad_values_name_the_variable(cls: type, variable: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        from_env(cls, {variable: value})
