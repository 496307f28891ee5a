"""Shared fixtures for every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight GLM-4.1V (thinkcap.tiny_model), built once per test session."""
    from thinkcap.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 synthetic records (images and videos) for tasks/, training/ and benches/ tests."""
    from tasks.synthetic import make_dataset

    return make_dataset(tmp_path_factory.mktemp("synthetic"), n=24, seed=0)


@pytest.fixture(scope="session")
def warm_model_dir(tiny_model_dir: Path, synthetic_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model after ~100 supervised steps on the format (about 20 s on one core): it writes
    `<think>` and long enough thoughts for a 16-token budget to force answers, and mostly closes
    with a boxed answer, so rewards vary within groups."""
    from training.sft import warm_up
    from training.sft_config import SFTConfig

    return warm_up(SFTConfig(model=str(tiny_model_dir), train_data=str(synthetic_data),
                             output_dir=str(tmp_path_factory.mktemp("warm")), steps=100, batch_size=8, lr=1e-2,
                             think_sentences_min=3, think_sentences_max=8, progress_bar=False))
