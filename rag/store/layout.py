"""Where the index lives on disk, and the SQLite store every generation shares.

::

    INDEX_DIR/store.sqlite   chunk rows (text, vector, BM25 terms), files, settings (WAL)
    INDEX_DIR/CURRENT        name of the live generation, e.g. "gen-000007"
    INDEX_DIR/.lock          flock of the one writer
    INDEX_DIR/gen-000007/    manifest.json, dense.faiss, bm25/: the base indexes

The SQLite store is the truth, and its transactions are the atomicity: a commit is one
SQLite commit (WAL, synchronous=FULL), so a crash leaves the old or the new rows. A
generation folder holds only derived *bases* (FAISS and BM25 over the rows up to
``max_row``, built now and then); rows added since, and rows removed since, are the
*delta* that readers apply on top. A generation that keeps its base hard-links the files
of the previous one, so a commit writes only what changed.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.store.errors import (
    IndexMismatchError,
    IndexMissingError,
    StoreError,
    corrupt,
    rebuild_hint,
    shown,
)
from rag.store.manifest import FORMAT, SETTING_KEYS, VERSION, FileRecord, Manifest

GEN = re.compile(r"^gen-(\d{6})$")
STORE = "store.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    source TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    pages INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    added_at TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    mtime_ns INTEGER NOT NULL DEFAULT 0
);
-- AUTOINCREMENT: a row id is never reused, so a base built earlier can name rows by id
-- and a reader can tell a removed row from a new one.
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    page INTEGER,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    terms TEXT NOT NULL,
    vector BLOB NOT NULL,
    header TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
-- Rows of the live base deleted since it was built (rag/store/removed.py): readers read
-- this instead of comparing every row. Older indexes lack it until their next write.
CREATE TABLE IF NOT EXISTS removed (row INTEGER PRIMARY KEY);
"""


def index_exists(path: Path) -> bool:
    return (Path(path) / "CURRENT").is_file()


def read_current(path: Path) -> str:
    pointer = path / "CURRENT"
    try:
        data = pointer.read_bytes()
    except FileNotFoundError:
        raise IndexMissingError(
            f"no index at {shown(path)}: build one with `rag ingest CORPUS_DIR --index "
            f"{shown(path)}`"
        ) from None
    except OSError as e:  # e.g. CURRENT is a folder, or unreadable
        raise corrupt(path, f"CURRENT cannot be read: {e.strerror or e}") from e
    name = data.decode("ascii", "replace").strip()
    if not GEN.match(name):
        raise corrupt(path, f"CURRENT holds {data[:40]!r}, not a generation name")
    return name


def live_generation(path: Path) -> Path:
    """The folder CURRENT names; raises IndexCorruptError when it is not there."""
    gen = path / read_current(path)
    if not gen.is_dir():
        raise corrupt(path, f"CURRENT names {gen.name}, which does not exist")
    return gen


def is_old_format(path: Path) -> bool:
    """A version-1 index: a full chunks.sqlite in its live generation."""
    if not index_exists(path):
        return False
    try:
        return (live_generation(path) / "chunks.sqlite").is_file()
    except StoreError:
        return False


def old_format_error(path: Path) -> IndexMismatchError:
    return IndexMismatchError(
        f"index {shown(path)} has format version 1, this program reads version {VERSION}: run "
        f"`rag ingest CORPUS_DIR --index {shown(path)}` once to upgrade it in place (nothing is "
        f"re-embedded), or {rebuild_hint(path)}"
    )


def add_header_column(db: sqlite3.Connection) -> None:
    """Give a store written before chunk headers were kept their column (empty headers).

    The header (``Chunk.header``) was only embedded and keyword-indexed at first; the
    retriever now reads it back (``rag.retrieval.statements``) and sources show its page heading. Old
    rows keep '' until their file is re-ingested: nothing fails, those pages only lack both.
    """
    if not has_header_column(db):
        db.execute("ALTER TABLE chunks ADD COLUMN header TEXT NOT NULL DEFAULT ''")


def has_header_column(db: sqlite3.Connection) -> bool:
    return any(r[1] == "header" for r in db.execute("PRAGMA table_info(chunks)"))


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    # isolation_level=None: transactions are begun and ended explicitly, below and in the
    # writer, so that a reader's snapshot starts exactly where we say.
    db = sqlite3.connect(path / STORE, isolation_level=None, check_same_thread=False,
                         timeout=30.0)
    if readonly:
        db.execute("PRAGMA query_only = 1")
    else:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")  # a commit survives power loss too
    return db


def read_manifest_db(db: sqlite3.Connection, where: Path) -> Manifest:
    """The manifest as of the connection's current transaction."""
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            raise corrupt(where, f"{STORE} is not a docchat index")
        if int(meta.get("version", 0)) != VERSION:
            raise IndexMismatchError(
                f"{shown(where)} has index format version {meta.get('version')}, this program "
                f"reads version {VERSION}: {rebuild_hint(where)}"
            )
        files = {r[0]: FileRecord(*r) for r in db.execute(
            "SELECT source, sha256, pages, chunks, added_at, size, mtime_ns FROM files "
            "ORDER BY source")}
        settings: dict[str, Any] = json.loads(meta["settings"])
        return Manifest(
            encoder=str(settings["encoder"]), dimension=int(settings["dimension"]),
            max_tokens=int(settings["max_tokens"]), chunk_tokens=int(settings["chunk_tokens"]),
            chunk_overlap=int(settings["chunk_overlap"]),
            index_kind=str(settings["index_kind"]), corpus_root=meta.get("corpus_root", ""),
            files=files, created_at=meta.get("created_at", ""), version=VERSION,
            revision=int(meta.get("revision", 0)),
        )
    except sqlite3.Error as e:
        raise corrupt(where, f"{STORE}: {e}") from e
    except (KeyError, TypeError, ValueError) as e:
        raise corrupt(where, f"{STORE}: {e!r}") from e


def manifest_settings(m: Manifest) -> dict[str, str | int]:
    return {k: getattr(m, k) for k in SETTING_KEYS}


def read_manifest(path: Path) -> Manifest:
    """The live manifest (settings and files) of the index at ``path``."""
    path = Path(path)
    read_current(path)  # the clear "no index" error first
    if is_old_format(path):
        raise old_format_error(path)
    try:
        db = connect(path, readonly=True)
    except sqlite3.Error as e:
        raise corrupt(path, f"{STORE}: {e}") from e
    try:
        return read_manifest_db(db, path)
    finally:
        db.close()


# subtle: numpy reads a .npy header with ast.literal_eval, and a CPython without the fix of
# gh-106905 (3.11.7 here and in CI) can fail that with "SystemError: AST constructor recursion
# depth mismatch" when two threads parse at once: readers opened side by side by the app's or the API's
# threads then failed at random (seen in tests/test_store.py's concurrent readers). Every
# .npy read of the store, bm25s's own included, goes through this lock.
_NPY_LOCK = threading.Lock()


@contextmanager
def npy_reads() -> Iterator[None]:
    """Hold while reading .npy files (``np.load``, ``bm25s.BM25.load``)."""
    with _NPY_LOCK:
        yield


def load_npy(path: Path, *, mmap: bool = False) -> npt.NDArray[Any]:
    """``np.load`` of one array (no pickles), memory-mapped read-only when ``mmap``."""
    with npy_reads():
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)  # type: ignore[no-any-return]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    for p in sorted(path.rglob("*")):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    for d in [path, *[p for p in path.rglob("*") if p.is_dir()]]:
        fsync_dir(d)
