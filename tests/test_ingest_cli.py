"""The ingest script: flags, --json summary, exit codes (fake encoder, in-process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rag.models.embed
from rag.settings import Settings
from rag.store import IndexWriter
from rag.testing import FakeEncoder
from rag_cli.ingest import main

ROOT = Path(__file__).resolve().parents[1]
PDFS = Path(__file__).parent / "data" / "pdfs"


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> FakeEncoder:
    enc = FakeEncoder()
    monkeypatch.setattr(rag.models.embed, "build_encoder", lambda settings: enc)
    monkeypatch.setenv("RAG_PARSE_WORKERS", "1")
    return enc


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    shutil.copy(PDFS / "multicolumn.pdf", root / "multicolumn.pdf")
    (root / "readme.md").write_text("# Readme\n\nInstall with pip.\n")
    (root / "diagram.png").write_bytes(b"\x89PNG")
    return root


def test_json_summary_and_exit_0(corpus: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([str(corpus), "--index", str(tmp_path / "idx"), "--json", "--no-progress"])
    out = capsys.readouterr().out
    summary = json.loads(out)  # exactly one JSON object on stdout
    assert rc == 0
    assert summary["files_ok"] == 2
    assert summary["files_skipped"] == [{"path": "diagram.png",
                                         "reason": "unsupported file type '.png'"}]
    assert summary["files_failed"] == []
    assert summary["pages"] == 4 and summary["chunks"] > 0 and summary["chunks_per_s"] > 0
    assert {"seconds", "total_chunks", "files_unchanged", "files_removed"} <= set(summary)


def test_rebuild_flag_and_incremental(corpus: Path, tmp_path: Path, fake_encoder: FakeEncoder,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(corpus), "--index", str(tmp_path / "idx"), "--json", "--no-progress"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0  # nothing changed: still success
    second = json.loads(capsys.readouterr().out)
    assert second["chunks"] == 0 and second["files_unchanged"] == 2
    assert main([*args, "--rebuild"]) == 0
    third = json.loads(capsys.readouterr().out)
    assert third["chunks"] == first["chunks"] and fake_encoder.calls == 2 * first["chunks"]


def test_human_summary_lists_problems(corpus: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    rc = main([str(corpus), "--index", str(tmp_path / "idx"), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0  # the good files made it
    assert "ingested 2 file(s)" in captured.out
    assert "failed: broken.pdf: corrupt" in captured.out
    assert "skipped: diagram.png" in captured.out
    assert "broken.pdf" in captured.err  # the warning as it happened


def test_missing_corpus_is_a_usage_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([str(tmp_path / "no-such-folder"), "--index", str(tmp_path / "idx")])
    assert rc == 2
    assert "no-such-folder" in capsys.readouterr().err
    assert not (tmp_path / "idx").exists()


def test_nothing_ingested_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "junk.txt").write_bytes(bytes(range(256)) * 8)
    rc = main([str(bad), "--index", str(tmp_path / "idx"), "--json", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 1
    assert json.loads(captured.out)["files_failed"][0]["path"] == "junk.txt"
    assert "nothing could be ingested" in captured.err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), "--index", str(tmp_path / "idx2"), "--no-progress"]) == 1


def test_locked_index_exits_1_with_message(corpus: Path, tmp_path: Path,
                                           fake_encoder: FakeEncoder,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    idx = tmp_path / "idx"
    assert main([str(corpus), "--index", str(idx), "--no-progress"]) == 0
    capsys.readouterr()
    m = json.loads((idx / (idx / "CURRENT").read_text().strip() / "manifest.json").read_text())
    with IndexWriter(idx, encoder_name=m["encoder"], dimension=m["dimension"],
                     max_tokens=m["max_tokens"], chunk_tokens=m["chunk_tokens"],
                     chunk_overlap=m["chunk_overlap"]):
        rc = main([str(corpus), "--index", str(idx), "--no-progress"])
    assert rc == 1
    assert "being written" in capsys.readouterr().err


def test_bad_flag_value_is_a_usage_error(corpus: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([str(corpus), "--index", str(tmp_path / "i"), "--batch-size", "0"])
    assert rc == 2 and "embed_batch_size" in capsys.readouterr().err


def test_default_index_goes_under_indexes_dir(corpus: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_INDEXES_DIR", str(tmp_path / "indexes"))
    assert main([str(corpus), "--no-progress"]) == 0
    assert (Settings().index_path("default") / "CURRENT").is_file()  # type: ignore[call-arg]


def test_python_m_ingest_entry_point(tmp_path: Path) -> None:
    # The module entry point itself; a missing folder fails before any model is loaded.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "ingest", str(tmp_path / "missing"), "--index",
                        str(tmp_path / "i")], capture_output=True, text=True, env=env, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 2 and "missing" in r.stderr and "does not exist" in r.stderr
    r = subprocess.run([sys.executable, "-m", "ingest", "--help"], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "--rebuild" in r.stdout and "--json" in r.stdout
