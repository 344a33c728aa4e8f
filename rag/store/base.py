"""The base of a generation: FAISS and BM25 over the rows up to ``max_row``, and its manifest.

Bases are built by compaction (``build_base``) and loaded by readers (``Base.load``). A
generation that keeps the previous base hard-links its files (``link_base``): a commit
then writes a manifest and a handful of links, whatever the size of the index.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.store import dense
from rag.store.keyword import BaseBM25, build_bm25
from rag.store.layout import load_npy
from rag.store.manifest import FORMAT, VERSION

IntArray = dense.IntArray
_BATCH = 4096


@dataclass(frozen=True)
class BaseInfo:
    """What ``gen-N/manifest.json`` says about the base in that folder."""

    revision: int  # the store revision the base was built at
    max_row: int  # rows above this are the delta (0: no base yet)
    index_kind: str
    dense_rows: int  # entries in dense.faiss (HNSW: removed rows included)
    bm25_rows: int
    bm25_len: int  # total BM25 terms, for the average document length

    def to_json(self, about: dict[str, Any]) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, **about, "base": asdict(self)}

    @staticmethod
    def read(gen: Path) -> BaseInfo:
        where = gen / "manifest.json"
        # OSError (a removed folder) is the caller's; ValueError covers bad JSON and bytes.
        data = json.loads(where.read_bytes())
        if not isinstance(data, dict) or data.get("format") != FORMAT \
                or data.get("version") != VERSION:
            raise ValueError(f"{where.name} is not a version {VERSION} docchat generation")
        try:
            return BaseInfo(**data["base"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"{where.name} is damaged ({e!r})") from e


EMPTY = BaseInfo(revision=0, max_row=0, index_kind="flat", dense_rows=0, bm25_rows=0, bm25_len=0)


class Base:
    """A loaded base; flat vectors and the BM25 matrix are memory-mapped."""

    def __init__(self, gen: Path, info: BaseInfo, faiss_index: Any, bm25: BaseBM25 | None,
                 dense_rows: IntArray) -> None:
        self.gen = gen
        self.info = info
        self.faiss = faiss_index
        self.bm25 = bm25
        self.dense_rows = dense_rows

    @staticmethod
    def load(gen: Path, dimension: int | None = None) -> Base:
        """Load the base in ``gen``; ``dimension`` (the store's) is checked against FAISS."""
        info = BaseInfo.read(gen)
        faiss_index = None
        dense_rows = np.zeros(0, dtype=np.int64)
        if info.dense_rows:
            faiss_index = dense.read_index(gen / "dense.faiss", mmap=info.index_kind == "flat")
            dense_rows = load_npy(gen / "dense_rows.npy", mmap=True)
            # A swapped or damaged file would otherwise fail (or crash FAISS) at the first
            # search, far from the cause.
            if dimension is not None and faiss_index.d != dimension:
                raise ValueError(f"dense.faiss has dimension {faiss_index.d}, the index "
                                 f"{dimension}")
            if faiss_index.ntotal != info.dense_rows or len(dense_rows) != info.dense_rows:
                raise ValueError(f"dense.faiss holds {faiss_index.ntotal} vectors and "
                                 f"dense_rows.npy {len(dense_rows)}, the manifest says "
                                 f"{info.dense_rows}")
        bm25 = BaseBM25(gen / "bm25", info.bm25_len) if info.bm25_rows else None
        return Base(gen, info, faiss_index, bm25, dense_rows)


def _rows(db: sqlite3.Connection, columns: str, where: str = "", args: tuple[int, ...] = ()
          ) -> Iterator[list[tuple[Any, ...]]]:
    cur = db.execute(f"SELECT row, {columns} FROM chunks {where} ORDER BY row", args)
    while batch := cur.fetchmany(_BATCH):
        yield batch


def _vector_batches(db: sqlite3.Connection, dim: int, where: str = "", args: tuple[int, ...] = ()
                    ) -> Iterator[tuple[IntArray, Any]]:
    for batch in _rows(db, "vector", where, args):
        rows = np.array([r[0] for r in batch], dtype=np.int64)
        vecs = np.frombuffer(b"".join(r[1] for r in batch), dtype=np.float32).reshape(-1, dim)
        yield rows, vecs


def live_rows(db: sqlite3.Connection, max_row: int) -> IntArray:
    # Through the (small) source index: the table itself holds vectors and text.
    return np.array([r for (r,) in db.execute(
        "SELECT row FROM chunks INDEXED BY chunks_source WHERE row <= ? ORDER BY row",
        (max_row,))], dtype=np.int64)


def count_live(db: sqlite3.Connection, max_row: int) -> int:
    return int(db.execute("SELECT count(*) FROM chunks INDEXED BY chunks_source WHERE row <= ?",
                          (max_row,)).fetchone()[0])


def build_base(db: sqlite3.Connection, gen: Path, *, revision: int, kind: str, dim: int,
               hnsw_m: int, prev: BaseInfo | None, prev_gen: Path | None) -> BaseInfo:
    """Build the base of every row now in ``db`` into ``gen`` (a compaction)."""
    import faiss

    max_row = int(db.execute("SELECT coalesce(max(row), 0) FROM chunks").fetchone()[0])
    n_live = int(db.execute("SELECT count(*) FROM chunks INDEXED BY chunks_source").fetchone()[0])
    # HNSW grows from the previous graph (building a million-vector graph takes many
    # minutes; adding the delta, seconds); its removed rows stay in it, filtered, until
    # they are too many. Flat is rebuilt: it is a copy of the vectors either way.
    grow = (kind == "hnsw" and prev is not None and prev_gen is not None
            and prev.index_kind == "hnsw" and prev.dense_rows > 0
            and prev.dense_rows - count_live(db, prev.max_row)
            <= dense.HNSW_DEAD_FRACTION * prev.dense_rows)
    if n_live:
        if grow:
            assert prev is not None and prev_gen is not None
            index = dense.read_index(prev_gen / "dense.faiss", mmap=False)
            old_rows = load_npy(prev_gen / "dense_rows.npy")
            batches = list(_vector_batches(db, dim, "WHERE row > ?", (prev.max_row,)))
            dense.add_batches(index, batches)
            rows = np.concatenate([old_rows, *[b[0] for b in batches]])
        else:
            index = dense.new_index(kind, dim, hnsw_m)
            dense.add_batches(index, _vector_batches(db, dim))
            rows = live_rows(db, max_row)
        faiss.write_index(index, str(gen / "dense.faiss"))
        np.save(gen / "dense_rows.npy", rows, allow_pickle=False)
        del index
        bm25_rows: list[int] = []
        terms: list[list[str]] = []
        # One string object per distinct term: a million chunks hold ~60M term occurrences.
        canon: dict[str, str] = {}
        for batch in _rows(db, "terms"):
            bm25_rows.extend(r[0] for r in batch)
            terms.extend([canon.setdefault(t, t) for t in r[1].split()] for r in batch)
        (gen / "bm25").mkdir()
        total = build_bm25(gen / "bm25", np.array(bm25_rows, dtype=np.int64), terms)
        info = BaseInfo(revision=revision, max_row=max_row, index_kind=kind,
                        dense_rows=len(rows), bm25_rows=len(bm25_rows), bm25_len=total)
    else:
        info = BaseInfo(revision=revision, max_row=max_row, index_kind=kind, dense_rows=0,
                        bm25_rows=0, bm25_len=0)
    return info


def link_base(prev_gen: Path, gen: Path) -> None:
    """Give ``gen`` the base of ``prev_gen``: hard links, no copies."""
    for p in sorted(prev_gen.rglob("*"), key=lambda p: len(p.parts)):
        target = gen / p.relative_to(prev_gen)
        if p.is_dir():
            target.mkdir(exist_ok=True)
        elif p.name != "manifest.json":
            os.link(p, target)


def write_manifest(gen: Path, info: BaseInfo, about: dict[str, Any]) -> None:
    """The generation's manifest: its base, and (for people and tools) what made it."""
    (gen / "manifest.json").write_text(json.dumps(info.to_json(about), indent=1))
