"""The table of removed base rows: readers use it instead of a pass over every row, and
never trust it when it does not describe their base (older writers, crashes, old indexes)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import rag.store.reader as reader_module
import rag.store.writer as writer_module
from rag.store import Index, IndexWriter
from rag.store.manifest import FileRecord
from rag.testing import FakeEncoder
from rag.types import Chunk

WORDS = ["alpha", "beta", "gamma", "delta", "river", "valley", "harbour", "lantern", "orchard"]


def _text(i: int, j: int, version: int = 0) -> str:
    rng = np.random.default_rng(i * 1000 + j + version * 7)
    return f"doc{i} part{j} v{version} " + " ".join(rng.choice(WORDS, 10))


def _writer(path: Path, enc: FakeEncoder, kind: str = "flat", rebuild: bool = False
            ) -> IndexWriter:
    return IndexWriter(path, encoder_name=enc.name, dimension=enc.dimension,
                       max_tokens=enc.max_tokens, chunk_tokens=64, chunk_overlap=8,
                       index_kind=kind, hnsw_m=16, rebuild=rebuild)


def _add(w: IndexWriter, enc: FakeEncoder, i: int, version: int = 0) -> None:
    source = f"f{i:03d}.txt"
    chunks = [Chunk(source, None, j, j + 1, _text(i, j, version)) for j in range(3)]
    sha = hashlib.sha256(f"{source}{version}".encode()).hexdigest()
    w.add_file(FileRecord(source, sha, 1, 3, "2026-01-01T00:00:00Z"), chunks,
               enc.embed([c.text for c in chunks]))


def _build(idx: Path, enc: FakeEncoder, kind: str, files: int = 30) -> dict[str, list[int]]:
    """A base of ``files`` files; the rows of each source."""
    with _writer(idx, enc, kind) as w:
        for i in range(files):
            _add(w, enc, i)
        w.commit()
    index = Index(idx)
    by_source: dict[str, list[int]] = {}
    for r, c in zip(index.rows(), index.chunks(index.rows()), strict=True):
        by_source.setdefault(c.source, []).append(r)
    index._db.close()
    return by_source


def _table(idx: Path) -> list[int]:
    db = sqlite3.connect(idx / "store.sqlite")
    try:
        return [r for (r,) in db.execute("SELECT row FROM removed ORDER BY row")]
    finally:
        db.close()


def _no_row_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the reader's full-pass fallback fail loudly: the table must be used."""
    def boom(*_: object) -> None:
        raise AssertionError("the reader scanned every row")

    monkeypatch.setattr(reader_module, "live_rows", boom)
    monkeypatch.setattr(reader_module, "count_live", boom)


def _check_gone(index: Index, enc: FakeEncoder, gone: dict[str, list[int]]) -> None:
    """Removed rows are never found, by their own vector or by their own words."""
    dead = {r for rows in gone.values() for r in rows}
    live = index.rows()
    assert not dead & set(live) and len(index) == len(live)
    for source in gone:
        i = int(source[1:4])
        for j in range(3):
            text = _text(i, j)
            found = [r for r, _ in index.dense_search(enc.embed([text]), 10)[0]]
            assert found and not dead & set(found)
            sims = index.vectors(live) @ enc.embed([text])[0]
            assert found[0] == live[int(np.argmax(sims))]
        assert not dead & {r for r, _ in index.bm25_search(f"doc{i} part0 part1", 20)}


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_removed_base_rows_are_never_found_after_reopen(tmp_path: Path, kind: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    rows = _build(idx, enc, kind)
    with _writer(idx, enc, kind) as w:
        w.remove_file("f003.txt")
        w.remove_file("f010.txt")
        _add(w, enc, 5, version=1)  # a changed file: its old rows are removed too
        _add(w, enc, 40)  # a new file, in the delta
        w.commit()
        assert not w.compacted
    gone = {s: rows[s] for s in ("f003.txt", "f005.txt", "f010.txt")}
    assert _table(idx) == sorted(r for v in gone.values() for r in v)
    _no_row_scan(monkeypatch)
    index = Index(idx)
    assert len(index) == 3 * (30 - 2 + 1)
    _check_gone(index, enc, gone)
    assert {index.chunks([r])[0].source for r, _ in index.bm25_search("doc40", 3)} == {"f040.txt"}
    index.close()


def test_a_rebuilt_base_empties_the_table(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    rows = _build(idx, enc, "flat")
    monkeypatch.setattr(writer_module, "COMPACT_MIN_ROWS", 10)
    with _writer(idx, enc) as w:
        w.remove_file("f003.txt")
        w.commit()
        assert not w.compacted
    assert _table(idx) == rows["f003.txt"]
    with _writer(idx, enc) as w:
        for i in range(40, 44):
            _add(w, enc, i)
        w.commit()
        assert w.compacted
    assert _table(idx) == []
    _no_row_scan(monkeypatch)
    index = Index(idx)
    assert index._removed_dense.size == 0 and index._bm25_mask is None
    _check_gone(index, enc, {"f003.txt": rows["f003.txt"]})
    index.close()


def test_a_grown_hnsw_graph_keeps_its_removed_rows_in_the_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    rows = _build(idx, enc, "hnsw")
    monkeypatch.setattr(writer_module, "COMPACT_MIN_ROWS", 10)
    with _writer(idx, enc, "hnsw") as w:
        w.remove_file("f003.txt")
        for i in range(40, 44):
            _add(w, enc, i)
        w.commit()
        assert w.compacted
    gen = idx / (idx / "CURRENT").read_text().strip()
    assert set(rows["f003.txt"]) <= set(np.load(gen / "dense_rows.npy").tolist())  # grown
    assert _table(idx) == rows["f003.txt"]  # still in the graph: still filtered
    _no_row_scan(monkeypatch)
    index = Index(idx)
    assert len(index) == 3 * (30 - 1 + 4)
    _check_gone(index, enc, {"f003.txt": rows["f003.txt"]})
    index.close()


def _as_previous_release(idx: Path) -> None:
    """What the index looks like when written by the code before the table existed."""
    db = sqlite3.connect(idx / "store.sqlite")
    db.execute("DROP TABLE removed")
    db.execute("DELETE FROM meta WHERE key IN ('removed_base', 'removed_at')")
    db.commit()
    db.close()


def test_an_index_written_before_the_table_opens_and_a_write_derives_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    rows = _build(idx, enc, "flat")
    with _writer(idx, enc) as w:
        w.remove_file("f007.txt")
        w.commit()
    _as_previous_release(idx)
    gone = {"f007.txt": rows["f007.txt"]}
    index = Index(idx)  # no table: the full comparison, still right
    _check_gone(index, enc, gone)
    index.close()
    with _writer(idx, enc) as w:  # no changes: the derivation alone
        w.commit()
        assert not w.compacted
    assert _table(idx) == rows["f007.txt"]
    _no_row_scan(monkeypatch)
    index = Index(idx)
    _check_gone(index, enc, gone)
    index.close()


def test_a_commit_by_a_writer_that_ignores_the_table_is_not_trusted(tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    rows = _build(idx, enc, "flat")
    # An older docchat removes a file: rows and revision change, the table does not.
    db = sqlite3.connect(idx / "store.sqlite")
    db.execute("DELETE FROM chunks WHERE source = 'f012.txt'")
    db.execute("DELETE FROM files WHERE source = 'f012.txt'")
    db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'")
    db.commit()
    db.close()
    assert _table(idx) == []
    index = Index(idx)
    _check_gone(index, enc, {"f012.txt": rows["f012.txt"]})
    index.close()


def test_a_crash_between_a_compaction_and_the_swap(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    rows = _build(idx, enc, "flat")
    with _writer(idx, enc) as w:
        w.remove_file("f020.txt")
        w.commit()
    monkeypatch.setattr(writer_module, "COMPACT_MIN_ROWS", 0)
    monkeypatch.setattr(writer_module, "COMPACT_FRACTION", 0.0)

    def killed(_: Path) -> None:
        raise KeyboardInterrupt

    # The table now describes the new base, but CURRENT still names the old one.
    with monkeypatch.context() as m:
        m.setattr(writer_module, "fsync_tree", killed)
        with pytest.raises(KeyboardInterrupt), _writer(idx, enc) as w:
            w.remove_file("f021.txt")
            w.commit()
    gone = {s: rows[s] for s in ("f020.txt", "f021.txt")}
    index = Index(idx)  # the table is for another base: the full comparison
    _check_gone(index, enc, gone)
    index.close()
    monkeypatch.setattr(writer_module, "COMPACT_MIN_ROWS", 10_000)
    with _writer(idx, enc) as w:  # the next write derives the table again
        _add(w, enc, 50)
        w.commit()
        assert not w.compacted
    assert _table(idx) == rows["f020.txt"] + rows["f021.txt"]
    with _writer(idx, enc) as w:
        w.remove_file("f022.txt")
        w.commit()
        assert not w.compacted
    gone["f022.txt"] = rows["f022.txt"]
    _no_row_scan(monkeypatch)
    index = Index(idx)
    _check_gone(index, enc, gone)
    index.close()


def test_a_reader_between_a_rebuild_commit_and_its_new_base(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "idx"
    rows = _build(idx, enc, "flat", files=10)

    def killed(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    # The rebuild's rows are committed; its base is never built: CURRENT names the old one,
    # every row of which is gone.
    monkeypatch.setattr(writer_module, "build_base", killed)
    with pytest.raises(KeyboardInterrupt), _writer(idx, enc, rebuild=True) as w:
        for i in (0, 60, 61):
            _add(w, enc, i, version=2)
        w.commit()
    index = Index(idx)
    assert len(index) == 9
    _check_gone(index, enc, rows)
    assert {c.source for c in index.chunks(index.rows())} == {"f000.txt", "f060.txt", "f061.txt"}
    index.close()
