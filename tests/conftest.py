"""Shared fixtures. Real models are loaded once per test session and shared."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Nothing may download at run time; set before any Hugging Face import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from procs import milvus_uri, ray_cluster  # noqa: F401  (fixtures of the scale tests)

from rag.settings import Settings
from rag.testing import FakeEncoder

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Each test leaves the environment as it found it.

    Subtle: `rag ingest --no-progress` sets library variables process-wide (TQDM_DISABLE,
    ...); run in-process by a test, they leaked into every later test's subprocesses (the
    kill-mid-ingest test then never saw the progress bar it waits for).
    """
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with every writable path inside the test's tmp dir.

    The extractive reader is off: these settings drive fast tests with fake models, and
    the reader is a real model (tests of the reader path inject rag.testing.FakeReader).
    """
    return Settings(indexes_dir=tmp_path / "indexes", model_cache_dir=tmp_path / "cache", reader=False)


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def real_encoder() -> Iterator[object]:
    from rag.models.embed import build_encoder

    yield build_encoder(Settings())
