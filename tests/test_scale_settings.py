"""The scale settings, without starting anything: defaults stay local, bad values are
refused with the allowed ones, and the local path never imports Ray or the Milvus client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.settings import Settings
from rag.store.milvus import collection_names

REPO = Path(__file__).resolve().parent.parent


def test_defaults_are_one_machine() -> None:
    s = Settings()
    assert (s.decoder, s.store, s.ingest_engine, s.ray_address) == ("local", "faiss", "local", None)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("decoder", "http://x:8000/v1", "'local' or 'openai:"),
    ("store", "qdrant", "faiss"),
    ("ingest_engine", "spark", "local"),
    ("store_prefix", "my-prefix", "pattern"),
])
def test_bad_values_name_what_is_allowed(field: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings().with_overrides(**{field: value})


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_DECODER", "openai:http://gpu-1:8000/v1")
    monkeypatch.setenv("RAG_STORE", "milvus")
    monkeypatch.setenv("RAG_STORE_TOKEN", "root:Milvus")
    monkeypatch.setenv("RAG_INGEST_ENGINE", "ray")
    s = Settings()
    assert s.decoder == "openai:http://gpu-1:8000/v1" and s.store == "milvus"
    assert s.store_token is not None and s.store_token.get_secret_value() == "root:Milvus"
    assert "Milvus" not in repr(s)  # credentials are not printed


def test_collection_names_are_valid_and_distinct() -> None:
    a, b = collection_names("docchat", "my-docs")[0], collection_names("docchat", "my_docs")[0]
    assert a != b and all(c.isalnum() or c == "_" for c in a + b)


def test_local_ingest_imports_neither_ray_nor_milvus(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Local ingestion needs no cluster.")
    code = (
        "import sys\nfrom pathlib import Path\nfrom ingest.pipeline import ingest_folder\n"
        "from rag.settings import Settings\nfrom rag.testing import FakeEncoder\n"
        f"s = ingest_folder(Path({str(tmp_path / 'docs')!r}), Path({str(tmp_path / 'idx')!r}), "
        "Settings(parse_workers=1), encoder=FakeEncoder())\n"
        "assert s.files_ok == 1, s\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'pymilvus')))\n")
    got = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120, check=False)
    assert got.returncode == 0, got.stderr[-2000:]
    assert got.stdout.strip().splitlines()[-1] == "[]"


def test_unreachable_milvus_is_one_clear_error(tmp_path: Path) -> None:
    from ingest.pipeline import ingest_folder
    from rag.store import StoreError
    from rag.testing import FakeEncoder

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Nothing to see.")
    s = Settings(store="milvus", store_uri="http://127.0.0.1:1", parse_workers=1)
    # StoreError is what `rag ingest` turns into one "error: ..." line.
    with pytest.raises(StoreError, match=r"cannot reach Milvus at http://127.0.0.1:1 .*RAG_STORE_URI"):
        ingest_folder(tmp_path / "docs", tmp_path / "idx", s, encoder=FakeEncoder())
