"""Dense search: a FAISS base (flat or HNSW, ids = chunk rows) plus the delta, exhaustive.

The base is written once per compaction and never changed after; readers memory-map it
(flat) and filter the rows removed since with an ``IDSelector``, so a removal costs the
writer nothing. HNSW cannot delete; its removed rows stay in the graph, filtered, until
they pass ``HNSW_DEAD_FRACTION`` of it and the next compaction rebuilds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.types import FloatArray

IntArray = npt.NDArray[np.int64]

#: Candidates each HNSW search keeps (FAISS's default is 16). At 1M chunks whose vectors
#: cluster as real text does (benchmarks/bench_index.py --vectors paragraph), efSearch
#: 128 / 512 / 2048 found 0.82 / 0.93 / 0.97 of the exact top 10 in 0.7 / 1.1 / 3.2 ms per
#: query: recall is worth the ~3 ms.
HNSW_EF_SEARCH = 2048
HNSW_EF_CONSTRUCTION = 80
HNSW_DEAD_FRACTION = 0.2


def new_index(kind: str, dim: int, hnsw_m: int) -> Any:
    import faiss

    inner: Any
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        inner = faiss.IndexFlatIP(dim)
    return faiss.IndexIDMap2(inner)


def add_batches(index: Any, batches: Iterable[tuple[IntArray, FloatArray]]) -> None:
    for rows, vecs in batches:
        index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), rows)


def read_index(path: Path, *, mmap: bool) -> Any:
    import faiss

    # IO_FLAG_MMAP alone maps only inverted lists: a flat index's vectors were still read
    # into memory (1.5 GB and most of a reader's open time at 1M chunks). MMAP_IFC maps
    # them (faiss >= 1.10); the file is never written after its compaction.
    flags = faiss.IO_FLAG_MMAP | getattr(faiss, "IO_FLAG_MMAP_IFC", 0) if mmap else 0
    index: Any = faiss.read_index(str(path), flags)
    inner = faiss.downcast_index(index.index)
    if hasattr(inner, "hnsw"):
        # subtle: read_index hands back the IDMap's inner index as a plain ``Index``;
        # only the downcast object has ``hnsw`` (setting it on the plain one did nothing).
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def ef_search(index: Any) -> int | None:
    import faiss

    inner = faiss.downcast_index(index.index)
    return int(inner.hnsw.efSearch) if hasattr(inner, "hnsw") else None


def search_base(index: Any, queries: FloatArray, k: int, removed: IntArray
                ) -> tuple[npt.NDArray[np.float32], IntArray]:
    import faiss as faiss_module

    faiss: Any = faiss_module  # its stubs lack the search-parameter classes

    params: Any = None
    if len(removed):
        sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(removed))
        if ef_search(index) is not None:
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=HNSW_EF_SEARCH)
        else:
            params = faiss.SearchParameters(sel=sel)
    elif ef_search(index) is not None:
        params = faiss.SearchParametersHNSW(efSearch=HNSW_EF_SEARCH)
    scores, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), k,
                                params=params)
    return scores, rows


def merge(base: tuple[npt.NDArray[np.float32], IntArray], delta_rows: IntArray,
          delta_vecs: FloatArray, queries: FloatArray, k: int) -> list[list[tuple[int, float]]]:
    """Best ``k`` of the base hits and the exhaustively scored delta, per query."""
    scores, rows = base
    out: list[list[tuple[int, float]]] = []
    delta_scores = delta_vecs @ queries.T if len(delta_rows) else None
    for q in range(len(queries)):
        hits = [(int(r), float(s)) for r, s in zip(rows[q], scores[q], strict=True) if r >= 0]
        if delta_scores is not None:
            col = delta_scores[:, q]
            top = np.argsort(-col)[:k]
            hits.extend((int(delta_rows[i]), float(col[i])) for i in top)
        hits.sort(key=lambda h: (-h[1], h[0]))
        out.append(hits[:k])
    return out
