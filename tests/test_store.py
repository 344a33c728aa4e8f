"""The index store: incremental commits, readers during commits, HNSW, sharing, old format."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

import rag.store.writer as writer_module
from rag.store import (
    Index,
    IndexMismatchError,
    IndexWriter,
    open_index,
    read_manifest,
)
from rag.store.dense import HNSW_EF_SEARCH
from rag.store.manifest import FileRecord
from rag.testing import FakeEncoder
from rag.types import Chunk

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "iota", "kappa",
         "lambda", "omicron", "sigma", "tau", "upsilon", "omega", "river", "valley",
         "harbour", "lantern", "orchard", "meadow"]


def _text(i: int, j: int) -> str:
    rng = np.random.default_rng(i * 1000 + j)
    return f"doc{i} part{j} " + " ".join(rng.choice(WORDS, 12))


def _writer(path: Path, enc: FakeEncoder, kind: str = "flat", rebuild: bool = False
            ) -> IndexWriter:
    return IndexWriter(path, encoder_name=enc.name, dimension=enc.dimension,
                       max_tokens=enc.max_tokens, chunk_tokens=64, chunk_overlap=8,
                       index_kind=kind, hnsw_m=16, rebuild=rebuild)


def _add(w: IndexWriter, enc: FakeEncoder, i: int, n: int = 3) -> None:
    source = f"f{i:03d}.txt"
    chunks = [Chunk(source, None, j, j + 1, _text(i, j)) for j in range(n)]
    sha = hashlib.sha256(source.encode()).hexdigest()
    w.add_file(FileRecord(source, sha, 1, n, "2026-01-01T00:00:00Z"), chunks,
               enc.embed([c.text for c in chunks]))


@pytest.fixture
def small_compaction(monkeypatch: pytest.MonkeyPatch) -> None:
    # Compact after a few dozen rows, so tests see bases, deltas and compactions.
    monkeypatch.setattr(writer_module, "COMPACT_MIN_ROWS", 20)


def _exhaustive(index: Index, enc: FakeEncoder, query: str, k: int) -> list[int]:
    rows = index.rows()
    sims = index.vectors(rows) @ enc.embed([query])[0]
    order = np.argsort(-sims, kind="stable")[:k]
    return [rows[i] for i in order]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_incremental_commits_match_an_exhaustive_search(tmp_path: Path, kind: str,
                                                        small_compaction: None) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    compacted = []
    for step in range(12):
        with _writer(idx, enc, kind) as w:
            for i in range(step * 4, step * 4 + 4):
                _add(w, enc, i)
            if step % 3 == 2:
                w.remove_file(f"f{step * 4 - 3:03d}.txt")  # one file of the previous step
            w.commit()
            compacted.append(w.compacted)
    assert compacted[0] and any(compacted[1:]) and not all(compacted[1:])
    index = Index(idx)
    assert len(index) == len(index.rows()) == 3 * (48 - 4)
    for q in ("doc7 river", "doc40 omega valley", "doc5 part1"):  # doc5 was removed
        got = [r for r, _ in index.dense_search(enc.embed([q]), 5)[0]]
        assert got == _exhaustive(index, enc, q, 5)
    assert all(c.source != "f005.txt" for c in index.chunks(index.rows()))
    hits = index.bm25_search("doc40", 5)
    assert {c.source for c in index.chunks([r for r, _ in hits])} == {"f040.txt"}
    assert index.bm25_search("doc5", 5) == []  # removed: not found by keyword either
    if kind == "hnsw":
        assert index.ef_search == HNSW_EF_SEARCH
    index.close()


def test_hnsw_index_is_built_searched_and_uses_its_ef_search(tmp_path: Path) -> None:
    enc = FakeEncoder()
    with _writer(tmp_path / "h", enc, "hnsw") as w:
        for i in range(40):
            _add(w, enc, i)
        w.commit()
    index = open_index(tmp_path / "h", enc)
    import faiss

    inner = faiss.downcast_index(index._base.faiss.index)
    assert isinstance(inner, faiss.IndexHNSWFlat)
    assert index.ef_search == inner.hnsw.efSearch == HNSW_EF_SEARCH != 16  # FAISS's default
    q = enc.embed(["doc17 part2"])
    assert index.dense_search(q, 1)[0][0][0] == _exhaustive(index, enc, "doc17 part2", 1)[0]
    index.close()


def test_a_commit_touches_only_what_changed(tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    with _writer(idx, enc) as w:
        for i in range(30):
            _add(w, enc, i)
        w.commit()
    first = (idx / "CURRENT").read_text().strip()
    dense_inode = (idx / first / "dense.faiss").stat().st_ino
    with _writer(idx, enc) as w:
        _add(w, enc, 99)
        w.commit()
        assert not w.compacted
    live = (idx / "CURRENT").read_text().strip()
    assert live != first and not (idx / first).exists()
    # The base was linked, not copied or rebuilt.
    assert (idx / live / "dense.faiss").stat().st_ino == dense_inode
    assert "f099.txt" in read_manifest(idx).files


def test_readers_never_fail_while_a_writer_commits(tmp_path: Path,
                                                   small_compaction: None) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    with _writer(idx, enc) as w:
        _add(w, enc, 0)
        w.commit()
    commits = 40
    done = threading.Event()
    failures: list[str] = []
    opens = [0]

    def write() -> None:
        try:
            for i in range(1, commits + 1):
                with _writer(idx, enc) as w:
                    _add(w, enc, i)
                    if i % 4 == 0:
                        w.remove_file(f"f{i - 2:03d}.txt")
                    w.commit()
        finally:
            done.set()

    def read() -> None:
        while not done.is_set():
            try:
                index = Index(idx)  # a fresh open each time, not the shared one
                files = index.manifest.files
                rows = index.rows()
                chunks = index.chunks(rows)
                # Whole: the chunks are exactly those of the files of this revision.
                assert len(index) == len(rows) == sum(f.chunks for f in files.values())
                assert {c.source for c in chunks} == set(files)
                hits = index.dense_search(enc.embed(["doc3 river"]), 5)[0]
                index.chunks([r for r, _ in hits])
                index.chunks([r for r, _ in index.bm25_search("river doc2", 5)])
                index.close()
                opens[0] += 1
            except Exception as e:  # any failure, not only the store's (a thread would swallow it)
                failures.append(repr(e))

    readers = [threading.Thread(target=read) for _ in range(3)]
    writer = threading.Thread(target=write)
    for t in [*readers, writer]:
        t.start()
    for t in [writer, *readers]:
        t.join()
    assert failures == []
    assert opens[0] >= 100  # hundreds in practice; enough to have raced many commits
    assert len(Index(idx).manifest.files) == 1 + commits - commits // 4


def test_a_reader_keeps_its_revision_after_commits(tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    with _writer(idx, enc) as w:
        for i in range(5):
            _add(w, enc, i)
        w.commit()
    old = open_index(idx)
    rows = old.rows()
    with _writer(idx, enc) as w:
        w.remove_file("f001.txt")
        _add(w, enc, 7)
        w.commit()
    # The old view still finds and fetches the removed file's chunks, and not the new one.
    assert len(old.chunks(rows)) == len(rows) == 15
    assert "f007.txt" not in old.manifest.files
    new = open_index(idx)
    assert new is not old and len(new) == 15 and "f001.txt" not in new.manifest.files
    old.close()
    new.close()


def test_one_loaded_view_per_index(tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    with _writer(idx, enc) as w:
        _add(w, enc, 0)
        w.commit()
    a = open_index(idx, enc)
    b = open_index(idx, enc)
    assert a is b
    a.close()
    assert len(b.chunks(b.rows())) == 3  # still open for the other user
    b.close()
    with pytest.raises(IndexMismatchError):
        open_index(idx, FakeEncoder(dimension=32))
    c = open_index(idx)
    assert c is not a  # the closed one was released
    c.close()


def test_rebuild_after_a_crashed_compaction_leftover(tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    with _writer(idx, enc) as w:
        _add(w, enc, 0)
        w.commit()
    (idx / "gen-000009").mkdir()  # a killed writer's half-built generation
    (idx / "gen-000009" / "dense.faiss").write_bytes(b"garbage")
    assert len(open_index(idx)) == 3
    with _writer(idx, enc) as w:
        _add(w, enc, 1)
        w.commit()
    assert [p.name for p in idx.iterdir() if p.is_dir()] == [(idx / "CURRENT").read_text().strip()]


def _write_v1(idx: Path, enc: FakeEncoder) -> None:
    """A version-1 index as the previous release wrote it (one full copy per generation)."""
    gen = idx / "gen-000003"
    gen.mkdir(parents=True)
    db = sqlite3.connect(gen / "chunks.sqlite")
    db.execute('CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT NOT NULL, source TEXT NOT '
               'NULL, page INTEGER, start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT '
               'NOT NULL, vector BLOB NOT NULL)')
    files = {}
    for i in range(3):
        c = Chunk(f"f{i}.txt", None, 0, 5, _text(i, 0))
        db.execute('INSERT INTO chunks (id, source, page, start, "end", text, vector) VALUES '
                   "(?, ?, ?, ?, ?, ?, ?)",
                   (c.id, c.source, c.page, c.start, c.end, c.text, enc.embed([c.text])[0].tobytes()))
        files[c.source] = {"source": c.source, "sha256": "0" * 64, "pages": 1, "chunks": 1,
                           "added_at": "2026-01-01T00:00:00+00:00"}
    db.commit()
    db.close()
    manifest = {"format": "docchat-index", "version": 1, "encoder": enc.name,
                "dimension": enc.dimension, "max_tokens": enc.max_tokens, "chunk_tokens": 64,
                "chunk_overlap": 8, "index_kind": "flat", "corpus_root": "/c", "files": files,
                "created_at": "2026-01-01T00:00:00+00:00"}
    (gen / "manifest.json").write_text(json.dumps(manifest))
    (idx / "CURRENT").write_text("gen-000003\n")


def test_version_1_index_says_how_to_upgrade_and_is_upgraded_by_a_write(tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "old"
    _write_v1(idx, enc)
    with pytest.raises(IndexMismatchError, match=r"format version 1.*upgrade it in place"):
        open_index(idx)
    with pytest.raises(IndexMismatchError, match="format version 1"):
        read_manifest(idx)
    with _writer(idx, enc) as w:  # no changes: the upgrade alone
        assert set(w.files()) == {"f0.txt", "f1.txt", "f2.txt"}
        w.commit()
    index = open_index(idx, enc)
    assert len(index) == 3
    assert index.chunks([r for r, _ in index.bm25_search("doc1 part0", 1)])[0].source == "f1.txt"
    assert not any((p / "chunks.sqlite").exists() for p in idx.iterdir() if p.is_dir())
    index.close()


def test_interrupted_write_keeps_the_old_revision(tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    with _writer(idx, enc) as w:
        _add(w, enc, 0)
        w.commit()
    before = (idx / "CURRENT").read_text()
    with pytest.raises(KeyboardInterrupt), _writer(idx, enc) as w:
        _add(w, enc, 1)
        w.remove_file("f000.txt")
        raise KeyboardInterrupt
    assert (idx / "CURRENT").read_text() == before
    index = open_index(idx)
    assert set(index.manifest.files) == {"f000.txt"} and len(index) == 3
    index.close()



def test_chunk_headers_are_stored_and_an_older_store_gains_the_column(tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    with _writer(idx, enc) as w:
        _add(w, enc, 1)
        w.commit()
    # An index written before headers were kept: its chunks table has no header column.
    db = sqlite3.connect(idx / "store.sqlite")
    db.execute("ALTER TABLE chunks DROP COLUMN header")
    db.commit()
    db.close()
    index = open_index(idx, enc)  # read as before, headers empty
    assert [c.header for c in index.chunks(index.rows())] == ["", "", ""]
    index.close()
    with _writer(idx, enc) as w:  # the next write adds the column; old rows keep ''
        chunk = Chunk("f.pdf", 2, 0, 5, "Total assets 1,204",
                      header="ACME 2023 10K\nConsolidated Balance Sheets")
        w.add_file(FileRecord("f.pdf", "0" * 64, 2, 1, "2026-01-01T00:00:00Z"), [chunk],
                   enc.embed([chunk.indexed_text]))
        w.commit()
    index = open_index(idx, enc)
    got = index.chunks(index.rows())
    index.close()
    assert [c.header for c in got] == ["", "", "", "ACME 2023 10K\nConsolidated Balance Sheets"]
    assert got[-1] == chunk  # the header comes back with the chunk
    assert Chunk.from_document(got[-1].to_document()) == chunk
