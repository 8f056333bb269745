"""Fixtures of the builder tests: settings whose cache lives in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from reprolab_builder.config import BuilderSettings


def make_settings(cache: Path, registry: str = "127.0.0.1:5000") -> BuilderSettings:
    return BuilderSettings(cache_dir=cache, registry=registry, registry_tls_verify=False)


@pytest.fixture(scope="session")
def lock_settings(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> BuilderSettings:
    """Settings for lock resolution; one cache per session (apt lists, base Python, wheels)."""
    return make_settings(tmp_path_factory.mktemp("builder-cache"))
