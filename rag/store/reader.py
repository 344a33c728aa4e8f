"""The read side: ``open_index(path) -> Index``, a whole, consistent view of one revision.

A reader never fails because a writer committed. It loads the base named by ``CURRENT``
(retrying when a writer swapped and removed that generation in between), then opens one
SQLite read transaction and keeps it: every later lookup sees that same revision, however
many commits follow (WAL keeps the old pages for it). Rows added after the base are read
into memory (the delta: exhaustive dense search, a small BM25); rows removed since are
filtered out of base results.

One loaded view per index per process: ``open_index`` hands out the same ``Index`` while
the live generation is unchanged, so a UI with many sessions (or an eval that also builds
a chain) holds one copy; it is released when the last user drops it.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.store import dense
from rag.store.base import Base, count_live, live_rows
from rag.store.errors import IndexCorruptError, StoreError, corrupt, shown
from rag.store.keyword import DeltaBM25, bm25_tokenize
from rag.store.layout import (
    connect,
    has_header_column,
    is_old_format,
    old_format_error,
    read_current,
    read_manifest_db,
)
from rag.store.manifest import FileRecord, check_encoder
from rag.store.removed import read as read_removed
from rag.store.terms import query_keywords
from rag.types import Chunk, Encoder, FloatArray

#: A reader retries when the generation it read from CURRENT vanished under it (a writer
#: committed and removed it). Each retry means another commit landed meanwhile.
_OPEN_ATTEMPTS = 50


def _load_base(path: Path, dimension: int | None = None) -> Base:
    last: Exception | None = None
    for _ in range(_OPEN_ATTEMPTS):
        name = read_current(path)
        try:
            return Base.load(path / name, dimension)
        except (OSError, RuntimeError, ValueError, AttributeError) as e:
            # RuntimeError: FAISS reports a missing or unreadable file that way.
            last = e
            if read_current(path) == name:
                # Nobody swapped the generation under us: it is damaged (or gone).
                why = (f"{name} does not exist" if not (path / name).is_dir()
                       else f"{name} cannot be loaded: {_first_line(e)}")
                raise corrupt(path, why) from e
    raise IndexCorruptError(f"index {shown(path)} changed {_OPEN_ATTEMPTS} times while it was "
                            f"being opened ({last}); try again")


def _first_line(e: Exception) -> str:
    # FAISS errors carry a C++ backtrace over several lines.
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


class Index:
    """A loaded, read-only revision of an index. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if is_old_format(path):
            raise old_format_error(path)
        try:
            self._db = connect(path, readonly=True)
        except sqlite3.Error as e:
            raise corrupt(path, f"store.sqlite: {e}") from e
        try:
            # The snapshot starts at the first read after BEGIN and lasts until close().
            self._db.execute("BEGIN")
            self.manifest = read_manifest_db(self._db, path)
            # An index last written before headers were stored has no such column (its
            # next write adds it): read '' for them.
            self._header = "header" if has_header_column(self._db) else "''"
            base = _load_base(path, self.manifest.dimension)
            self.generation = base.gen
            self._base = base
            self._load_delta()
        except (sqlite3.Error, ValueError) as e:
            # ValueError: vectors whose size is not the recorded dimension.
            self._db.close()
            raise corrupt(path, f"store.sqlite: {e}") from e
        except StoreError:
            self._db.close()
            raise
        self._users = 0
        self._lock = threading.Lock()

    def _load_delta(self) -> None:
        base, dim = self._base, self.manifest.dimension
        info = base.info
        # Rows removed since the base was built: the writer's small table of them, or, where
        # it does not describe this base (an index written before it existed, a compaction
        # racing this open), the base's rows compared with the live ones: a full pass.
        self._removed_dense = np.zeros(0, dtype=np.int64)
        self._bm25_mask: Any = None
        removed = read_removed(self._db, info, self.manifest.revision)
        if removed is not None:
            self._removed_dense = removed
            n_base_live = info.bm25_rows
            if base.bm25 is not None and len(removed):
                # subtle: the BM25 rows are sorted (built in row order); a removed row may be
                # absent from them (an HNSW graph keeps rows BM25 dropped at compaction).
                at = np.minimum(np.searchsorted(base.bm25.rows, removed), base.bm25.n - 1)
                at = at[base.bm25.rows[at] == removed]
                if len(at):
                    self._bm25_mask = np.ones(base.bm25.n, dtype=np.float32)
                    self._bm25_mask[at] = 0.0
                n_base_live -= len(at)
        else:
            n_base_live = count_live(self._db, info.max_row)
            if n_base_live != info.dense_rows or n_base_live != info.bm25_rows:
                live = live_rows(self._db, info.max_row)
                self._removed_dense = np.setdiff1d(base.dense_rows, live, assume_unique=True)
                if base.bm25 is not None:
                    keep = np.isin(base.bm25.rows, live, assume_unique=True)
                    self._bm25_mask = keep.astype(np.float32)
        rows: list[int] = []
        vecs: list[bytes] = []
        terms: list[str] = []
        for r, v, t in self._db.execute(
            "SELECT row, vector, terms FROM chunks WHERE row > ? ORDER BY row", (info.max_row,)
        ):
            rows.append(r)
            vecs.append(v)
            terms.append(t)
        self._delta_rows = np.array(rows, dtype=np.int64)
        self._delta_vecs = np.frombuffer(b"".join(vecs), dtype=np.float32).reshape(-1, dim)
        self._delta_bm25 = DeltaBM25(terms)
        self._count = n_base_live + len(rows)

    # -- the narrow read interface (rag.store.protocols.IndexReader) ---------------------
    def __len__(self) -> int:
        return self._count

    @property
    def revision(self) -> int:
        return self.manifest.revision

    @property
    def ef_search(self) -> int | None:
        """efSearch of the HNSW base (None for flat): what a search really uses."""
        f = self._base.faiss
        return None if f is None else dense.ef_search(f)

    def files(self) -> list[FileRecord]:
        return sorted(self.manifest.files.values(), key=lambda f: f.source)

    def dense_search(self, vectors: FloatArray, k: int) -> list[list[tuple[int, float]]]:
        queries = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._count == 0:
            return [[] for _ in range(len(queries))]
        f = self._base.faiss
        if f is not None:
            found = dense.search_base(f, queries, k, self._removed_dense)
        else:
            found = (np.zeros((len(queries), 0), dtype=np.float32),
                     np.zeros((len(queries), 0), dtype=np.int64))
        return dense.merge(found, self._delta_rows, self._delta_vecs, queries, k)

    def bm25_search(self, query: str, k: int) -> list[tuple[int, float]]:
        # Query-side only: instruction words ("give a response", "round") are not content.
        tokens = bm25_tokenize([query_keywords(query)])[0]
        if not tokens:
            return []
        bm25 = self._base.bm25
        parts: list[tuple[Any, Any]] = []
        if bm25 is not None:
            parts.append((bm25.rows, bm25.scores(tokens, self._bm25_mask)))
        if self._delta_bm25.n:
            parts.append((self._delta_rows, self._delta_bm25.scores(tokens, bm25)))
        hits: list[tuple[int, float]] = []
        for rows, scores in parts:
            n = min(k, len(scores))
            top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(n)
            hits.extend((int(rows[i]), float(scores[i])) for i in top if scores[i] > 0)
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]

    def _select(self, columns: str, rows: Sequence[int]) -> Iterator[tuple[Any, ...]]:
        # In slices: SQLite caps the number of bound variables in one statement.
        for i in range(0, len(rows), 10_000):
            part = [int(r) for r in rows[i : i + 10_000]]
            marks = ",".join("?" * len(part))
            yield from self._db.execute(
                f"SELECT row, {columns} FROM chunks WHERE row IN ({marks})", part
            )

    def rows(self) -> list[int]:
        """Row ids of every chunk, in insertion order (they have gaps after removals)."""
        return [r for (r,) in self._db.execute("SELECT row FROM chunks ORDER BY row")]

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        if not rows:
            return []
        by_row = {r[0]: Chunk(source=r[2], page=r[3], start=r[4], end=r[5], text=r[6], id=r[1],
                              header=r[7])
                  for r in self._select(f'id, source, page, start, "end", text, {self._header}',
                                        rows)}
        missing = [r for r in rows if r not in by_row]
        if missing:
            raise IndexCorruptError(f"index {self.path}: rows {missing[:5]} missing from chunks")
        return [by_row[r] for r in rows]

    def document_chunks(self, source: str) -> list[Chunk]:
        rows = [r for (r,) in self._db.execute(
            'SELECT row FROM chunks WHERE source = ? ORDER BY page, start, "end"', (source,))]
        return self.chunks(rows)

    def vectors(self, rows: Sequence[int]) -> FloatArray:
        if not rows:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        got = {r[0]: r[1] for r in self._select("vector", rows)}
        return np.stack([np.frombuffer(got[r], dtype=np.float32) for r in rows])

    # -- sharing ---------------------------------------------------------------------------
    def _acquire(self) -> Index:
        with self._lock:
            self._users += 1
        return self

    def close(self) -> None:
        """Done with this handle; the view closes when its last user is done."""
        with self._lock:
            self._users -= 1
            last = self._users <= 0
        if last:
            with _CACHE_LOCK:
                if _CACHE.get(self.path) is not None and _CACHE[self.path]() is self:
                    del _CACHE[self.path]
            self._db.close()


_CACHE: dict[Path, weakref.ref[Index]] = {}
_CACHE_LOCK = threading.Lock()


def open_index(path: Path, encoder: Encoder | Any = None) -> Index:
    """The live revision of the index at ``path``, shared with other users in this process.

    With ``encoder`` given, check the index was built by it. Call ``close()`` when done.
    """
    path = Path(path).absolute()
    with _CACHE_LOCK:
        ref = _CACHE.get(path)
        index = ref() if ref is not None else None
        current = read_current(path)
        if index is None or index.generation.name != current or index._users <= 0:
            index = Index(path)
            _CACHE[path] = weakref.ref(index)
        index._acquire()
    if encoder is not None:
        try:
            check_encoder(index.manifest, index.path, encoder.name, encoder.dimension)
        except StoreError:
            index.close()
            raise
    return index
