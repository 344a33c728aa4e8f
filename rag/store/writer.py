"""The write side: one writer at a time, one SQLite transaction per commit.

``with IndexWriter(...) as w: w.add_file(...); w.remove_file(...); w.commit()``. Leaving
the block without ``commit()`` (an exception, Ctrl-C, a kill) rolls the transaction back;
the live index was never touched. A commit costs what changed: the rows go into the
store, and a new generation folder gets a manifest and hard links to the base. Only when
the delta outgrows ``COMPACT_MIN_ROWS`` / ``COMPACT_FRACTION`` of the base is the base
rebuilt (compaction), after the commit point, so a crash there loses nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from rag.store import removed as removed_table
from rag.store.base import EMPTY, BaseInfo, build_base, link_base, write_manifest
from rag.store.errors import (
    IndexLockedError,
    IndexMismatchError,
    StoreError,
    corrupt,
    unwritable,
)
from rag.store.keyword import bm25_tokenize
from rag.store.layout import (
    GEN,
    SCHEMA,
    STORE,
    add_header_column,
    connect,
    fsync_dir,
    fsync_tree,
    index_exists,
    is_old_format,
    live_generation,
    read_manifest_db,
)
from rag.store.manifest import FORMAT, SETTING_KEYS, VERSION, FileRecord, Manifest, now_iso
from rag.types import Chunk, FloatArray

#: Compact when the rows added or removed since the base pass this many and this
#: fraction of the base. The delta costs each reader memory and each query an exhaustive
#: pass over it; a compaction costs one rebuild of BM25 (and of a flat FAISS index).
COMPACT_MIN_ROWS = 2000
COMPACT_FRACTION = 0.02


class IndexWriter:
    """One write transaction: ``with IndexWriter(...) as w: ...; w.commit()``."""

    def __init__(self, path: Path, *, encoder_name: str, dimension: int, max_tokens: int,
                 chunk_tokens: int, chunk_overlap: int, index_kind: str = "flat",
                 hnsw_m: int = 32, corpus_root: str = "", rebuild: bool = False) -> None:
        if index_kind not in ("flat", "hnsw"):
            raise ValueError(f"index_kind {index_kind!r}: allowed values are 'flat', 'hnsw'")
        self.path = Path(path)
        self._settings: dict[str, str | int] = dict(
            encoder=encoder_name, dimension=dimension, max_tokens=max_tokens,
            chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap, index_kind=index_kind)
        self.hnsw_m = hnsw_m
        self.corpus_root = corpus_root
        self.rebuild = rebuild
        self._lock_fd: int | None = None
        self._db: sqlite3.Connection | None = None
        self._gen: Path | None = None  # the next generation, built aside
        self._live: Path | None = None
        self._base_max_row = 0  # rows up to this are in the live base (0: none)
        self._files: dict[str, FileRecord] = {}
        self._revision = 0
        self._committed = False
        self.compacted = False  # whether the last commit rebuilt the base

    # -- transaction ------------------------------------------------------------------------
    def __enter__(self) -> IndexWriter:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock()
        except OSError as e:
            raise unwritable(self.path, e) from e
        try:
            self._begin()
        except OSError as e:
            self._abort()
            raise unwritable(self.path, e) from e
        except BaseException:
            self._abort()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._committed:
            self._abort()
        else:
            self._unlock()

    def _lock(self) -> None:
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise IndexLockedError(
                f"index {self.path} is being written by process {holder}; wait for it to "
                "finish (two writers at once could lose work)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _begin(self) -> None:
        old_format = is_old_format(self.path)
        try:
            self._live = self._live_generation()
        except StoreError:
            if not self.rebuild:
                raise
            # --rebuild must always get a damaged index back: start from nothing (the
            # damaged generation is removed by the commit's clean-up).
            self._live, old_format = None, False
        # Under the lock, any other generation folder is a leftover of a killed writer.
        for p in self.path.iterdir():
            if p.is_dir() and GEN.match(p.name) and p != self._live:
                shutil.rmtree(p, ignore_errors=True)
        numbers = [int(m.group(1)) for p in self.path.iterdir() if (m := GEN.match(p.name))]
        self._gen = self.path / f"gen-{max(numbers, default=0) + 1:06d}"
        self._gen.mkdir()
        if old_format and self.rebuild:
            self._live = None  # its files are dropped by the commit's clean-up
        try:
            self._open_store(old_format)
        except sqlite3.DatabaseError as e:
            if not self.rebuild:
                raise corrupt(self.path, f"{STORE}: {e}") from e
            # Nothing in a damaged store is worth keeping; a fresh one is the rebuild.
            self._close_db()
            for suffix in ("", "-wal", "-shm", "-journal"):
                (self.path / (STORE + suffix)).unlink(missing_ok=True)
            self._open_store(old_format)

    def _live_generation(self) -> Path | None:
        """The live generation, checked enough to build on; None for a new index."""
        if not index_exists(self.path):
            return None
        live = live_generation(self.path)
        if not is_old_format(self.path):
            try:
                BaseInfo.read(live)
            except (OSError, ValueError) as e:
                raise corrupt(self.path, f"{live.name}: {e}") from e
        return live

    def _close_db(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def _open_store(self, old_format: bool) -> None:
        db = self._db = connect(self.path, readonly=False)
        db.executescript(SCHEMA)
        db.execute("BEGIN IMMEDIATE")
        add_header_column(db)
        if old_format and not self.rebuild:
            try:
                self._migrate_v1()
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise corrupt(self.path, f"its version-1 files cannot be upgraded: {e!r}") from e
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        revision = str(meta.get("revision", "0"))
        self._revision = int(revision) if revision.isdigit() else 0
        self._base_max_row = 0
        if not meta or self.rebuild:
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM files")
            removed_table.forget(db)
            self._files = {}
            return
        manifest = read_manifest_db(db, self.path)
        old = {k: getattr(manifest, k) for k in SETTING_KEYS}
        if old != self._settings:
            diff = ", ".join(f"{k}: index has {old[k]!r}, now {v!r}"
                             for k, v in self._settings.items() if old[k] != v)
            raise IndexMismatchError(
                f"index {self.path} was built with other settings ({diff}); rerun with "
                "--rebuild to re-embed everything with the new settings"
            )
        self._files = dict(manifest.files)
        if self._live is not None:
            try:
                base = BaseInfo.read(self._live)
                self._base_max_row = base.max_row
                if not removed_table.is_current(db, base):
                    # Written before the table existed (or a crash left it describing
                    # another base): derive it once, here, so that no reader has to.
                    removed_table.derive(db, self._live, base)
            except (OSError, ValueError) as e:
                raise corrupt(self.path, f"{self._live.name}: {e}") from e

    def _migrate_v1(self) -> None:
        """Upgrade a version-1 index in place: copy its rows, tokenise them for BM25."""
        assert self._live is not None
        old = self._live / "chunks.sqlite"
        manifest = json.loads((self._live / "manifest.json").read_text())
        src = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
        try:
            cur = src.execute('SELECT id, source, page, start, "end", text, vector FROM chunks '
                              "ORDER BY row")
            while batch := cur.fetchmany(4096):
                terms = bm25_tokenize([r[5] for r in batch])
                self.db.executemany(
                    'INSERT INTO chunks (id, source, page, start, "end", text, terms, vector) '
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(*r[:6], " ".join(t), r[6]) for r, t in zip(batch, terms, strict=True)])
        finally:
            src.close()
        self.db.executemany(
            "INSERT INTO files (source, sha256, pages, chunks, added_at) VALUES (?, ?, ?, ?, ?)",
            [(k, v["sha256"], v["pages"], v["chunks"], v["added_at"])
             for k, v in manifest["files"].items()])
        settings = {k: manifest[k] for k in SETTING_KEYS}
        self._write_meta(settings, manifest.get("corpus_root", ""), manifest.get("created_at", ""))
        self._live = None  # the old generation has no base of this format: build one

    def _write_meta(self, settings: dict[str, str | int], corpus_root: str, created_at: str
                    ) -> None:
        rows = {"format": FORMAT, "version": str(VERSION), "settings": json.dumps(settings),
                "corpus_root": corpus_root, "created_at": created_at,
                "revision": str(self._revision)}
        self.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                            list(rows.items()))

    def _abort(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.rollback()
            self._db.close()
            self._db = None
        if self._gen is not None and not self._committed:
            shutil.rmtree(self._gen, ignore_errors=True)
        self._unlock()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("IndexWriter used outside its `with` block")
        return self._db

    # -- changes ----------------------------------------------------------------------------
    def files(self) -> dict[str, FileRecord]:
        return dict(self._files)

    def remove_file(self, source: str) -> None:
        removed_table.record(self.db, source, self._base_max_row)
        self.db.execute("DELETE FROM chunks WHERE source = ?", (source,))
        self.db.execute("DELETE FROM files WHERE source = ?", (source,))
        self._files.pop(source, None)

    def set_file_stat(self, source: str, size: int, mtime_ns: int) -> None:
        """Record the size and mtime of a file found unchanged by its hash."""
        self.db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE source = ?",
                        (size, mtime_ns, source))
        rec = self._files.get(source)
        if rec is not None:
            self._files[source] = dataclasses.replace(rec, size=size, mtime_ns=mtime_ns)

    def add_file(self, record: FileRecord, chunks: Sequence[Chunk], vectors: FloatArray) -> None:
        dim = self._settings["dimension"]
        if vectors.shape != (len(chunks), dim):
            raise ValueError(
                f"{record.source}: {len(chunks)} chunks but vectors of shape {vectors.shape} "
                f"(expected ({len(chunks)}, {dim}))"
            )
        if any(c.source != record.source for c in chunks):
            raise ValueError(f"{record.source}: chunks from another source in add_file")
        self.remove_file(record.source)
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        # The chunk's contextual header (file, title, period, heading) is keyword-indexed with
        # it, as it is embedded with it (Chunk.indexed_text); the stored text stays the passage.
        terms = bm25_tokenize([c.indexed_text for c in chunks]) if chunks else []
        self.db.executemany(
            'INSERT INTO chunks (id, source, page, start, "end", text, terms, vector, header) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.id, c.source, c.page, c.start, c.end, c.text, " ".join(terms[i]),
              vecs[i].tobytes(), c.header) for i, c in enumerate(chunks)],
        )
        self.db.execute(
            "INSERT INTO files (source, sha256, pages, chunks, added_at, size, mtime_ns) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.source, record.sha256, record.pages, record.chunks, record.added_at,
             record.size, record.mtime_ns))
        self._files[record.source] = record

    # -- commit -----------------------------------------------------------------------------
    def checkpoint(self) -> Manifest:
        """Commit what is there and go on in a fresh transaction, keeping the lock.

        Long ingests call this now and then, so a crash late in the run loses only the
        work since the last checkpoint; no other writer can slip in between.
        """
        manifest = self.commit()
        self._committed = False
        self._gen = None
        self.rebuild = False
        self._begin()
        return manifest

    def _needs_compaction(self, live: BaseInfo) -> bool:
        if self.rebuild or self._live is None:
            return True
        added = int(self.db.execute("SELECT count(*) FROM chunks WHERE row > ?",
                                    (live.max_row,)).fetchone()[0])
        removed = removed_table.count_since_base(self.db, live)
        limit = max(COMPACT_MIN_ROWS, COMPACT_FRACTION * live.bm25_rows)
        return added + removed > limit

    def commit(self) -> Manifest:
        if self._gen is None or self._db is None:
            raise RuntimeError("IndexWriter.commit() outside its `with` block")
        gen, db = self._gen, self._db
        self._revision += 1
        created = now_iso()
        self._write_meta(self._settings, self.corpus_root, created)
        removed_table.mark_current(db, self._revision)
        db.execute("COMMIT")  # the commit point: readers opened from now on see it
        manifest = read_manifest_db(db, self.path)
        live = BaseInfo.read(self._live) if self._live is not None else EMPTY
        self.compacted = self._needs_compaction(live)
        info = live
        if self.compacted:
            # Built from the committed rows, in a read transaction of our own (we hold the
            # lock, so nothing changes under it).
            db.execute("BEGIN")
            try:
                info = build_base(db, gen, revision=self._revision,
                           kind=str(self._settings["index_kind"]),
                           dim=int(self._settings["dimension"]), hnsw_m=self.hnsw_m,
                           prev=live if self._live is not None else None, prev_gen=self._live)
            finally:
                db.execute("COMMIT")
            # Before CURRENT names the new base; a reader that pairs the old base with
            # this table sees that it describes another base and compares rows instead.
            removed_table.after_compaction(db, gen, info)
        else:
            assert self._live is not None
            link_base(self._live, gen)
        write_manifest(gen, info, {**self._settings, "revision": self._revision,
                                   "created_at": created, "files": len(self._files)})
        db.close()
        self._db = None
        fsync_tree(gen)
        pointer = self.path / "CURRENT"
        tmp = self.path / "CURRENT.tmp"
        tmp.write_text(gen.name + "\n")
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, pointer)  # readers now load this generation's base
        fsync_dir(self.path)
        self._committed = True
        self._live = gen
        # Readers that read CURRENT just before the swap retry on the new one.
        for p in self.path.iterdir():
            if p.is_dir() and GEN.match(p.name) and p != gen:
                shutil.rmtree(p, ignore_errors=True)
        return manifest


@contextlib.contextmanager
def no_writer_running(path: Path) -> Iterator[None]:
    """Hold the writer lock briefly (e.g. to delete an index folder safely)."""
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexLockedError(f"index {path} is being written; try again when it is done") from None
        yield
    finally:
        os.close(fd)



