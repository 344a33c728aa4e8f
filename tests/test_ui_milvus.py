"""The app over the server store (RAG_STORE=milvus): the same page, the index in Milvus.

A real milvus-lite server (tests/procs.py's fixture, a separate process); fake models.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import test_ui_app
from test_ui_app import MANUAL, Models, ask, documents, start, upload

from ingest.collection import Collection, index_revision
from rag.settings import Settings

pytestmark = pytest.mark.scale
models = test_ui_app.models


def test_app_builds_asks_and_removes_over_milvus(
        models: Models, tmp_path: Path, milvus_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_STORE", "milvus")
    monkeypatch.setenv("RAG_STORE_URI", milvus_uri)
    monkeypatch.setenv("RAG_STORE_PREFIX", "ui_test")
    at = start()
    assert documents(at) == {"bread.txt": "ready", "paris.md": "ready"}
    index_dir = tmp_path / "indexes" / "sample"
    assert not (index_dir / "CURRENT").exists()  # the index lives in Milvus
    settings = Settings()
    first = index_revision(Collection("sample", index_dir), settings)
    assert first.startswith("milvus-")

    # The uploader is disabled while the first build's job is still winding down.
    deadline = time.monotonic() + 60
    while at.file_uploader[0].disabled and time.monotonic() < deadline:
        time.sleep(0.2)
        at.run()
    upload(at, [("manual.txt", MANUAL, "text/plain")])
    assert documents(at)["manual.txt"] == "ready"
    assert index_revision(Collection("sample", index_dir), settings) != first  # a new commit
    ask(at, "How long does the espresso machine warranty last from the date of purchase?")
    answer = at.chat_message[1].markdown[0].value
    assert "24 months" in answer and "**\\[1\\]**" in answer
    assert "manual\\.txt" in at.chat_message[1].expander[0].markdown[0].value
