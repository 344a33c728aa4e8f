"""The index on disk: chunk store (SQLite), dense index (FAISS), BM25 (bm25s), manifest.

Layout (see docs/architecture.md)::

    INDEX_DIR/CURRENT        name of the live generation
    INDEX_DIR/.lock          flock of the one writer
    INDEX_DIR/gen-000007/    manifest.json, chunks.sqlite, dense.faiss, bm25/

A generation is never modified once ``CURRENT`` names it. A writer builds the next one
aside and swaps ``CURRENT`` with ``os.replace``, so a crash, kill or Ctrl-C at any moment
leaves a complete, loadable index behind. Nothing here uses pickle: a user may be handed
an index folder by someone else.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from rag.keywords import keyword_text, query_keywords
from rag.types import Chunk, FloatArray

FORMAT = "docchat-index"
VERSION = 1
_GEN = re.compile(r"^gen-(\d{6})$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    page INTEGER,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL,
    header TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
"""


class StoreError(Exception):
    """Base of the index errors; messages name the index, the reason and what to do."""


class IndexMissingError(StoreError):
    pass


class IndexLockedError(StoreError):
    pass


class IndexMismatchError(StoreError):
    pass


class IndexCorruptError(StoreError):
    pass


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class FileRecord:
    source: str
    sha256: str
    pages: int
    chunks: int
    added_at: str


@dataclass(frozen=True)
class Manifest:
    encoder: str
    dimension: int
    max_tokens: int
    chunk_tokens: int
    chunk_overlap: int
    index_kind: str
    corpus_root: str = ""
    files: dict[str, FileRecord] = field(default_factory=dict)
    created_at: str = ""
    version: int = VERSION

    @property
    def chunk_count(self) -> int:
        return sum(f.chunks for f in self.files.values())

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = FORMAT
        return d

    @staticmethod
    def from_json(data: dict[str, Any], where: Path) -> Manifest:
        if data.get("format") != FORMAT:
            raise IndexCorruptError(f"{where} is not a docchat index manifest")
        if data.get("version") != VERSION:
            raise IndexMismatchError(
                f"{where} has index format version {data.get('version')}, this program reads "
                f"version {VERSION}: rebuild it with `rag ingest CORPUS --index DIR --rebuild`"
            )
        try:
            files = {k: FileRecord(**v) for k, v in data["files"].items()}
            return Manifest(
                encoder=str(data["encoder"]), dimension=int(data["dimension"]),
                max_tokens=int(data["max_tokens"]), chunk_tokens=int(data["chunk_tokens"]),
                chunk_overlap=int(data["chunk_overlap"]), index_kind=str(data["index_kind"]),
                corpus_root=str(data.get("corpus_root", "")), files=files,
                created_at=str(data.get("created_at", "")), version=VERSION,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise IndexCorruptError(f"{where} is damaged ({e!r}): rebuild the index") from e


# --- reading -----------------------------------------------------------------------------


def index_exists(path: Path) -> bool:
    return (path / "CURRENT").is_file()


def _live_generation(path: Path) -> Path:
    pointer = path / "CURRENT"
    if not pointer.is_file():
        raise IndexMissingError(
            f"no index at {path}: build one with `rag ingest CORPUS_DIR --index {path}`"
        )
    name = pointer.read_text().strip()
    if not _GEN.match(name) or not (path / name / "manifest.json").is_file():
        raise IndexCorruptError(
            f"{pointer} names {name!r}, which is not a complete generation: rebuild with --rebuild"
        )
    return path / name


def read_manifest(path: Path) -> Manifest:
    return _manifest_of(_live_generation(path))


def _manifest_of(gen: Path) -> Manifest:
    where = gen / "manifest.json"
    try:
        data = json.loads(where.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise IndexCorruptError(f"{where} cannot be read ({e}): rebuild the index") from e
    return Manifest.from_json(data, where)


def check_encoder(manifest: Manifest, path: Path, encoder_name: str, dimension: int) -> None:
    if manifest.encoder != encoder_name or manifest.dimension != dimension:
        raise IndexMismatchError(
            f"index {path} was built with encoder {manifest.encoder!r} (dimension "
            f"{manifest.dimension}), but the configured encoder is {encoder_name!r} (dimension "
            f"{dimension}). Set RAG_ENCODER_MODEL={manifest.encoder!r} to use it, or rebuild it "
            f"with `rag ingest CORPUS_DIR --index {path} --rebuild`."
        )


_STEMMER: Any = None


def bm25_tokenize(texts: list[str]) -> list[list[str]]:
    """English stopwords + Snowball stemming: the setting the reference figures used."""
    import bm25s
    import Stemmer

    global _STEMMER
    if _STEMMER is None:
        _STEMMER = Stemmer.Stemmer("english")
    tokens = bm25s.tokenize([keyword_text(t) for t in texts], stopwords="en",
                            stemmer=_STEMMER, return_ids=False, show_progress=False)
    return list(tokens)


class Index:
    """A loaded, read-only generation of an index. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        import bm25s
        import faiss

        self.path = path
        # One read of CURRENT: a writer may swap it while we load.
        self.generation = _live_generation(path)
        self.manifest = _manifest_of(self.generation)
        gen = self.generation
        try:
            # immutable=1: the generation never changes, so SQLite needs no locks or journal
            # and keeps reading even after a writer removed the folder of an old generation.
            uri = f"file:{gen / 'chunks.sqlite'}?mode=ro&immutable=1"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._faiss = faiss.read_index(str(gen / "dense.faiss"))
            self._bm25: Any = None
            self._bm25_rows = np.zeros(0, dtype=np.int64)
            if (gen / "bm25").is_dir():
                self._bm25 = bm25s.BM25.load(str(gen / "bm25"), mmap=False)
                self._bm25_rows = np.load(gen / "bm25" / "rows.npy", allow_pickle=False)
        except (OSError, RuntimeError, sqlite3.Error, ValueError) as e:
            raise IndexCorruptError(f"index {path} ({gen.name}) cannot be loaded: {e}") from e
        if hasattr(self._faiss, "index") and hasattr(self._faiss.index, "hnsw"):
            self._faiss.index.hnsw.efSearch = 128

    def __len__(self) -> int:
        return int(self._faiss.ntotal)

    def files(self) -> list[FileRecord]:
        return sorted(self.manifest.files.values(), key=lambda f: f.source)

    def dense_search(self, vectors: FloatArray, k: int) -> list[list[tuple[int, float]]]:
        if len(self) == 0:
            return [[] for _ in range(len(vectors))]
        scores, rows = self._faiss.search(np.ascontiguousarray(vectors, dtype=np.float32),
                                          min(k, len(self)))
        return [
            [(int(r), float(s)) for r, s in zip(rs, ss, strict=True) if r >= 0]
            for rs, ss in zip(rows, scores, strict=True)
        ]

    def bm25_search(self, query: str, k: int) -> list[tuple[int, float]]:
        if self._bm25 is None:
            return []
        vocab = self._bm25.vocab_dict
        tokens = [t for t in bm25_tokenize([query_keywords(query)])[0] if t in vocab]
        if not tokens:
            return []
        n = min(k, len(self._bm25_rows))
        docs, scores = self._bm25.retrieve([tokens], k=n, show_progress=False, n_threads=1)
        return [
            (int(self._bm25_rows[d]), float(s))
            for d, s in zip(docs[0], scores[0], strict=True) if s > 0
        ]

    def _select(self, columns: str, rows: Sequence[int]) -> Iterator[tuple[Any, ...]]:
        # In slices: SQLite caps the number of bound variables in one statement.
        for i in range(0, len(rows), 10_000):
            part = [int(r) for r in rows[i : i + 10_000]]
            marks = ",".join("?" * len(part))
            yield from self._db.execute(
                f"SELECT row, {columns} FROM chunks WHERE row IN ({marks})", part
            )

    def rows(self) -> list[int]:
        """Row ids of every chunk, in insertion order (they have gaps after deletions)."""
        return [r for (r,) in self._db.execute("SELECT row FROM chunks ORDER BY row")]

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        if not rows:
            return []
        by_row = {r[0]: Chunk(source=r[2], page=r[3], start=r[4], end=r[5], text=r[6], id=r[1])
                  for r in self._select('id, source, page, start, "end", text', rows)}
        missing = [r for r in rows if r not in by_row]
        if missing:
            raise IndexCorruptError(f"index {self.path}: rows {missing[:5]} missing from chunks")
        return [by_row[r] for r in rows]

    def vectors(self, rows: Sequence[int]) -> FloatArray:
        if not rows:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        got = {r[0]: r[1] for r in self._select("vector", rows)}
        return np.stack([np.frombuffer(got[r], dtype=np.float32) for r in rows])

    def close(self) -> None:
        self._db.close()


def open_index(path: Path, encoder: Any = None) -> Index:
    """Load the live generation; with ``encoder`` given, check it matches the index's."""
    index = Index(Path(path))
    if encoder is not None:
        check_encoder(index.manifest, index.path, encoder.name, encoder.dimension)
    return index


# --- writing -----------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for p in sorted(path.rglob("*")):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    for d in [path, *[p for p in path.rglob("*") if p.is_dir()]]:
        _fsync_dir(d)


class IndexWriter:
    """One write transaction: ``with IndexWriter(...) as w: ...; w.commit()``.

    Leaving the block without ``commit()`` (an exception, Ctrl-C) discards the new
    generation; the live one was never touched.
    """

    def __init__(self, path: Path, *, encoder_name: str, dimension: int, max_tokens: int,
                 chunk_tokens: int, chunk_overlap: int, index_kind: str = "flat",
                 hnsw_m: int = 32, corpus_root: str = "", rebuild: bool = False) -> None:
        if index_kind not in ("flat", "hnsw"):
            raise ValueError(f"index_kind {index_kind!r}: allowed values are 'flat', 'hnsw'")
        self.path = Path(path)
        # What makes two generations compatible: chunks of one must be searchable beside
        # chunks of the other.
        self._settings: dict[str, str | int] = dict(
            encoder=encoder_name, dimension=dimension, max_tokens=max_tokens,
            chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap, index_kind=index_kind)
        self.hnsw_m = hnsw_m
        self.corpus_root = corpus_root
        self.rebuild = rebuild
        self._lock_fd: int | None = None
        self._db: sqlite3.Connection | None = None
        self._gen: Path | None = None
        self._files: dict[str, FileRecord] = {}
        self._committed = False

    # -- transaction ------------------------------------------------------------------------
    def __enter__(self) -> IndexWriter:
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self._begin()
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
        live: Path | None = None
        if index_exists(self.path):
            live = _live_generation(self.path)
        # Under the lock, any other generation folder is a leftover of a killed writer.
        for p in self.path.iterdir():
            if p.is_dir() and _GEN.match(p.name) and p != live:
                shutil.rmtree(p, ignore_errors=True)
        numbers = [int(m.group(1)) for p in self.path.iterdir() if (m := _GEN.match(p.name))]
        self._gen = self.path / f"gen-{max(numbers, default=0) + 1:06d}"
        self._gen.mkdir()
        if live is not None and not self.rebuild:
            manifest = _manifest_of(live)
            old = {k: getattr(manifest, k) for k in self._settings}
            if old != self._settings:
                diff = ", ".join(f"{k}: index has {old[k]!r}, now {v!r}"
                                 for k, v in self._settings.items() if old[k] != v)
                raise IndexMismatchError(
                    f"index {self.path} was built with other settings ({diff}); rerun with "
                    "--rebuild to re-embed everything with the new settings"
                )
            shutil.copyfile(live / "chunks.sqlite", self._gen / "chunks.sqlite")
            self._files = dict(manifest.files)
        self._db = sqlite3.connect(self._gen / "chunks.sqlite")
        self._db.executescript(_SCHEMA)
        # Chunk stores written before chunks had headers: add the column (empty headers).
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(chunks)")}
        if "header" not in columns:
            self._db.execute("ALTER TABLE chunks ADD COLUMN header TEXT NOT NULL DEFAULT ''")

    def _abort(self) -> None:
        if self._db is not None:
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
        self.db.execute("DELETE FROM chunks WHERE source = ?", (source,))
        self._files.pop(source, None)

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
        self.db.executemany(
            'INSERT INTO chunks (id, source, page, start, "end", text, vector, header) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.id, c.source, c.page, c.start, c.end, c.text, vecs[i].tobytes(), c.header)
             for i, c in enumerate(chunks)],
        )
        self._files[record.source] = record

    # -- commit -----------------------------------------------------------------------------
    def _rows(self, columns: str) -> Iterator[list[tuple[Any, ...]]]:
        cur = self.db.execute(f"SELECT row, {columns} FROM chunks ORDER BY row")
        while batch := cur.fetchmany(4096):
            yield batch

    def _build_faiss(self, gen: Path) -> None:
        import faiss

        dim = int(self._settings["dimension"])
        inner: Any
        if self._settings["index_kind"] == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = 80
        else:
            inner = faiss.IndexFlatIP(dim)
        index = faiss.IndexIDMap2(inner)
        for batch in self._rows("vector"):
            ids = np.array([r[0] for r in batch], dtype=np.int64)
            vecs = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in batch])
            index.add_with_ids(vecs, ids)
        faiss.write_index(index, str(gen / "dense.faiss"))

    def _build_bm25(self, gen: Path) -> None:
        import bm25s

        rows: list[int] = []
        texts: list[str] = []
        for batch in self._rows("header, text"):
            rows.extend(r[0] for r in batch)
            # The header is keyword-indexed with the passage (see Chunk.indexed_text).
            texts.extend(f"{r[1]}\n{r[2]}" if r[1] else r[2] for r in batch)
        if not texts:
            return  # an empty index has no BM25 part; Index.bm25_search returns nothing
        retriever = bm25s.BM25()
        retriever.index(bm25_tokenize(texts), show_progress=False)
        retriever.save(str(gen / "bm25"), allow_pickle=False)
        np.save(gen / "bm25" / "rows.npy", np.array(rows, dtype=np.int64), allow_pickle=False)

    def checkpoint(self) -> Manifest:
        """Commit what is there and go on in a fresh generation, keeping the lock.

        Long ingests call this now and then, so a crash late in the run loses only the
        work since the last checkpoint; no other writer can slip in between.
        """
        manifest = self.commit()
        self._committed = False
        self._gen = None
        self.rebuild = False
        self._begin()
        return manifest

    def commit(self) -> Manifest:
        if self._gen is None or self._db is None:
            raise RuntimeError("IndexWriter.commit() outside its `with` block")
        gen = self._gen
        self._db.commit()
        self._build_faiss(gen)
        self._build_bm25(gen)
        self._db.close()
        self._db = None
        manifest = Manifest(
            encoder=str(self._settings["encoder"]), dimension=int(self._settings["dimension"]),
            max_tokens=int(self._settings["max_tokens"]),
            chunk_tokens=int(self._settings["chunk_tokens"]),
            chunk_overlap=int(self._settings["chunk_overlap"]),
            index_kind=str(self._settings["index_kind"]), corpus_root=self.corpus_root,
            files=dict(sorted(self._files.items())), created_at=now_iso(),
        )
        (gen / "manifest.json").write_text(json.dumps(manifest.to_json(), indent=1))
        _fsync_tree(gen)
        pointer = self.path / "CURRENT"
        tmp = self.path / "CURRENT.tmp"
        tmp.write_text(gen.name + "\n")
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, pointer)  # the commit point
        _fsync_dir(self.path)
        self._committed = True
        for p in self.path.iterdir():
            if p.is_dir() and _GEN.match(p.name) and p != gen:
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
