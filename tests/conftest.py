"""Shared fixtures: the worked examples from ../shared/examples and the bundled samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "traces" / "samples"
CASES = Path(__file__).resolve().parent / "data" / "cases"


@pytest.fixture
def samples_dir() -> Path:
    return SAMPLES


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("COLUMNS", "200")
