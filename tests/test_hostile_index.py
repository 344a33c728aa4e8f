"""Issue 11, items 5-7: a damaged index or a wrong command gets one line, never a traceback;
`--rebuild` always recovers; exit codes say whether a usable index resulted.

`rag ingest` and `rag ask` run in-process through the real command line (rag_cli.main),
with the fake encoder and generator.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import rag.models.embed
from rag.answer.build import build_chain
from rag.answer.chain import RagChain
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator
from rag_cli import ask as cli_ask
from rag_cli.main import main


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    enc = FakeEncoder()
    monkeypatch.setattr(rag.models.embed, "build_encoder", lambda settings: enc)

    def fake_chain(settings: Settings, index_dir: Path) -> RagChain:
        return build_chain(settings, index_dir, encoder=enc, generator=FakeGenerator())

    monkeypatch.setattr(cli_ask, "build_chain", fake_chain)
    monkeypatch.setenv("RAG_PARSE_WORKERS", "1")
    monkeypatch.setenv("RAG_READER", "false")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "tower.txt").write_text("The Eiffel Tower was completed in 1889. It is 330 metres tall.")
    (root / "notes.md").write_text("# Notes\n\nThe bridge opened in 1932 after eight years of work.")
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def ingest(capsys: pytest.CaptureFixture[str], corpus: Path, idx: Path, *flags: str
           ) -> tuple[int, str, str]:
    return run(capsys, "ingest", str(corpus), "--index", str(idx), "--no-progress", *flags)


def ask(capsys: pytest.CaptureFixture[str], idx: Path, question: str = "When was the tower "
        "completed?") -> tuple[int, str, str]:
    return run(capsys, "ask", question, "--index", str(idx), "--json")


def live_gen(idx: Path) -> Path:
    return idx / (idx / "CURRENT").read_text().strip()


def _garbage_store(idx: Path) -> None:
    (idx / "store.sqlite").write_bytes(b"this is not a database" * 100)
    for extra in ("store.sqlite-wal", "store.sqlite-shm"):
        (idx / extra).unlink(missing_ok=True)


def _truncated_store(idx: Path) -> None:
    db = idx / "store.sqlite"
    for extra in ("store.sqlite-wal", "store.sqlite-shm"):
        (idx / extra).unlink(missing_ok=True)
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])


def _current_not_utf8(idx: Path) -> None:
    (idx / "CURRENT").write_bytes(b"\xff\xfegen-\x80\n")


def _current_missing_generation(idx: Path) -> None:  # item 6
    shutil.rmtree(live_gen(idx))


def _v1_manifest_files_is_a_list(idx: Path) -> None:
    # A version-1 index (a full chunks.sqlite per generation) whose manifest is damaged.
    gen = live_gen(idx)
    (idx / "store.sqlite").unlink()
    (gen / "chunks.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    (gen / "manifest.json").write_text(json.dumps({"version": 1, "files": ["tower.txt"]}))


def _v1_garbage_chunks_sqlite(idx: Path) -> None:
    gen = live_gen(idx)
    (idx / "store.sqlite").unlink()
    (gen / "chunks.sqlite").write_bytes(b"garbage" * 50)
    (gen / "manifest.json").write_text("{not json")


def _faiss_of_another_dimension(idx: Path) -> None:
    import faiss

    other = faiss.IndexFlatIP(8)
    rows = np.load(live_gen(idx) / "dense_rows.npy")
    other.add(np.ones((len(rows), 8), dtype=np.float32))
    faiss.write_index(other, str(live_gen(idx) / "dense.faiss"))


def _faiss_idmap_of_another_dimension(idx: Path) -> None:
    import faiss

    other = faiss.IndexIDMap2(faiss.IndexFlatIP(8))
    rows = np.load(live_gen(idx) / "dense_rows.npy")
    other.add_with_ids(np.ones((len(rows), 8), dtype=np.float32), rows)
    faiss.write_index(other, str(live_gen(idx) / "dense.faiss"))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "garbage store.sqlite": _garbage_store,
    "truncated store.sqlite": _truncated_store,
    "CURRENT not UTF-8": _current_not_utf8,
    "CURRENT names a missing generation": _current_missing_generation,
    "v1 manifest files is a list": _v1_manifest_files_is_a_list,
    "v1 garbage chunks.sqlite": _v1_garbage_chunks_sqlite,
    "FAISS not an id map": _faiss_of_another_dimension,
    "FAISS of another dimension": _faiss_idmap_of_another_dimension,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_index_one_line_then_rebuild_recovers(
    damage: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = tmp_path / "idx"
    assert ingest(capsys, corpus, idx)[0] == 0
    DAMAGE[damage](idx)

    rc, _, err = ask(capsys, idx)
    assert rc != 0
    assert_one_line_error(err, str(idx), "--rebuild")

    rc, _, err = ingest(capsys, corpus, idx)
    if rc != 0:  # an incremental run may repair it itself; if not, it says how
        assert_one_line_error(err, str(idx), "--rebuild")

    rc, out, err = ingest(capsys, corpus, idx, "--rebuild", "--json")
    assert rc == 0, err
    assert "Traceback" not in err
    assert json.loads(out)["total_files"] == 2
    rc, out, err = ask(capsys, idx)
    assert rc == 0, err
    assert "1889" in json.loads(out)["answer"]


def test_index_path_is_a_file(corpus: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "afile"
    target.write_text("hello")
    rc, _, err = ingest(capsys, corpus, target)
    assert rc == 2
    assert_one_line_error(err, str(target), "not a folder")
    rc, _, err = ask(capsys, target)
    assert rc == 2
    assert_one_line_error(err, str(target))
    assert target.read_text() == "hello"


def test_index_path_not_writable(corpus: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    # Root may write anywhere; /proc refuses everyone.
    idx = Path("/proc/docchat-index") if os.geteuid() == 0 else tmp_path / "ro" / "idx"
    if os.geteuid() != 0:
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o500)
    rc, _, err = ingest(capsys, corpus, idx)
    assert rc == 1
    assert_one_line_error(err, str(idx), "cannot")


@pytest.mark.parametrize("command", ["ingest", "ask"])
def test_bogus_device_is_a_usage_error(command: str, corpus: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    idx = tmp_path / "idx"
    assert ingest(capsys, corpus, idx)[0] == 0
    monkeypatch.setenv("RAG_DEVICE", "bogus")
    rc, _, err = ingest(capsys, corpus, idx) if command == "ingest" else ask(capsys, idx)
    assert rc == 2
    assert_one_line_error(err, "RAG_DEVICE", "'bogus'", "'cpu'")


def test_non_utf8_question_and_index_path(corpus: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    idx = tmp_path / "idx"
    assert ingest(capsys, corpus, idx)[0] == 0
    # What Python makes of a non-UTF-8 byte on the command line (surrogateescape).
    rc, _, err = ask(capsys, idx, "when was the tower \udcff completed?")
    assert rc == 2
    assert_one_line_error(err, "question", "UTF-8")
    bad = str(tmp_path / "idx\udcff")
    rc, _, err = run(capsys, "ask", "when?", "--index", bad)
    assert rc == 2
    assert_one_line_error(err, "UTF-8")
    rc, _, err = run(capsys, "ingest", str(corpus), "--index", bad, "--no-progress")
    assert rc == 2
    assert_one_line_error(err, "UTF-8")


def test_corrupt_pdf_added_to_indexed_folder_exits_0(corpus: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Item 7: the index is fine and up to date; the summary lists the failure.
    idx = tmp_path / "idx"
    assert ingest(capsys, corpus, idx)[0] == 0
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    rc, out, err = ingest(capsys, corpus, idx, "--json")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["files_ok"] == 0 and summary["files_unchanged"] == 2
    assert [f["path"] for f in summary["files_failed"]] == ["broken.pdf"]
    assert "nothing could be ingested" not in err


def test_nothing_usable_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    rc, _, err = ingest(capsys, bad, tmp_path / "idx")
    assert rc == 1 and "no usable index" in err
