"""Shared fixtures for every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight GLM-4.1V (thinkcap.tiny_model), built once per test session."""
    from thinkcap.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))
