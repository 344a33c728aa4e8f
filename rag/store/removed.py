"""Rows of the base that are no longer in the store: a small table, kept by the writer.

A reader must filter the base rows removed since the base was built. Finding them by
comparing the base with the live rows costs a pass over every row (16 s and 3 GB at a
million chunks); the writer knows them when it deletes them, so it records them, in the
same transaction, in ``removed``. A reader reads that table: its size is what was removed
since the last compaction (plus, for an HNSW base grown in place, the removed rows still
in its graph), never the size of the index.

Two meta keys say what the table describes, so a reader never trusts a stale one:

- ``removed_base``: the revision of the base it is relative to (set by the compaction
  that built that base, in a transaction before ``CURRENT`` names it);
- ``removed_at``: the store revision it is current at (set by every commit of this code;
  a writer that does not know the table, an older docchat, leaves it behind).

When either does not match (an index written before the table existed, a reader that
loaded a base just as a compaction replaced it, a crash between a compaction's two
steps), the reader falls back to comparing the rows, and the next writer derives the
table again from the rows, once.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from rag.store.base import BaseInfo, IntArray, live_rows
from rag.store.layout import load_npy

#: The table and its meta keys (``layout.SCHEMA`` creates the table).
BASE_KEY = "removed_base"
AT_KEY = "removed_at"


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(db: sqlite3.Connection, key: str, value: int) -> None:
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))


def _all(db: sqlite3.Connection) -> IntArray:
    return np.array([r for (r,) in db.execute("SELECT row FROM removed ORDER BY row")],
                    dtype=np.int64)


def read(db: sqlite3.Connection, info: BaseInfo, revision: int) -> IntArray | None:
    """The base rows removed, sorted; None when the table does not describe this base at
    this revision (the caller then compares rows instead)."""
    has_table = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'removed'").fetchone()
    if (not has_table or _meta(db, BASE_KEY) != str(info.revision)
            or _meta(db, AT_KEY) != str(revision)):
        return None
    return _all(db)


def record(db: sqlite3.Connection, source: str, base_max_row: int) -> None:
    """Before ``source``'s rows are deleted: note those the base holds (rows above its
    ``max_row`` are the delta, which a reader reads from the store itself)."""
    if base_max_row > 0:
        db.execute("INSERT OR IGNORE INTO removed (row) SELECT row FROM chunks "
                   "WHERE source = ? AND row <= ?", (source, base_max_row))


def base_rows(gen: Path, info: BaseInfo) -> IntArray:
    """Every row the base in ``gen`` holds, dense or BM25 (HNSW keeps removed rows)."""
    parts = [np.zeros(0, dtype=np.int64)]
    if info.dense_rows:
        parts.append(load_npy(gen / "dense_rows.npy"))
    if info.bm25_rows:
        parts.append(load_npy(gen / "bm25" / "rows.npy"))
    return np.unique(np.concatenate(parts))


def is_current(db: sqlite3.Connection, info: BaseInfo) -> bool:
    """Whether the table describes ``info``'s base at the store's revision."""
    return read(db, info, int(_meta(db, "revision") or 0)) is not None


def derive(db: sqlite3.Connection, gen: Path, info: BaseInfo) -> None:
    """Fill the table from the rows, once (inside the writer's transaction): for an index
    written before the table existed, or after a crash left it describing another base."""
    dead = np.setdiff1d(base_rows(gen, info), live_rows(db, info.max_row), assume_unique=True)
    db.execute("DELETE FROM removed")
    db.executemany("INSERT INTO removed (row) VALUES (?)", [(int(r),) for r in dead])
    _set_meta(db, BASE_KEY, info.revision)


def forget(db: sqlite3.Connection) -> None:
    """Every row goes (a rebuild): until the new base is named, the table describes no
    base, so a reader of the old base compares rows rather than trust an empty table."""
    db.execute("DELETE FROM removed")
    db.execute("DELETE FROM meta WHERE key = ?", (BASE_KEY,))


def mark_current(db: sqlite3.Connection, revision: int) -> None:
    """The table is up to date at ``revision`` (part of every commit of this code)."""
    _set_meta(db, AT_KEY, revision)


def after_compaction(db: sqlite3.Connection, gen: Path, info: BaseInfo) -> None:
    """Make the table describe the new base in ``gen``, in its own transaction, before
    ``CURRENT`` names it: a rebuilt base holds no removed row (the table empties); an HNSW
    graph grown in place still holds those it held (they stay)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        old = _all(db)
        keep = old[np.isin(old, base_rows(gen, info))] if len(old) else old
        gone = np.setdiff1d(old, keep, assume_unique=True)
        db.executemany("DELETE FROM removed WHERE row = ?", [(int(r),) for r in gone])
        _set_meta(db, BASE_KEY, info.revision)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def count_since_base(db: sqlite3.Connection, info: BaseInfo) -> int:
    """Base rows removed since the base was built: the table less the removed rows an
    HNSW graph carried over from before (the base's dense rows beyond its BM25 rows)."""
    n = int(db.execute("SELECT count(*) FROM removed").fetchone()[0])
    return max(0, n - (info.dense_rows - info.bm25_rows))
