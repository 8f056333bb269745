from __future__ import annotations

from typing import Any

import pytest

from .chartlib import documents, load_values, render


@pytest.fixture(scope="session")
def default_docs() -> list[dict[str, Any]]:
    """The chart's defaults plus only the values an install requires (tests/chart/required.yaml)."""
    return documents(render(load_values("required.yaml")))


@pytest.fixture(scope="session")
def full_docs() -> list[dict[str, Any]]:
    """Everything switched on, existingSecret forms (tests/chart/everything-on.yaml)."""
    return documents(render(load_values("everything-on.yaml")))
