"""Hybrid retrieval: dense (FAISS) and BM25 lists fused by reciprocal rank.

BM25 wins on names, numbers and rare words; the dense encoder on paraphrase. On SQuAD dev
(one paragraph per document) hit@5 was 0.864 dense, 0.925 BM25 and 0.935 fused, so hybrid
is the default. Every returned document carries ``dense_score`` (the cosine of question and
passage) whatever the mode: abstention is calibrated on that one scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict

from rag.retrieval.statements import Statement, page_statements, question_statements
from rag.settings import RetrieverMode, Settings
from rag.store import Index, IndexReader
from rag.types import Chunk, Encoder, FloatArray

MODES: tuple[RetrieverMode, ...] = ("hybrid", "dense", "bm25")


class DenseSearch(Protocol):
    """The seam where a server vector database replaces FAISS."""

    def search(self, vector: FloatArray, k: int) -> list[tuple[Chunk, float]]:
        """Nearest chunks to a unit query vector, best first, with cosine similarity."""
        ...


class FaissSearch:
    def __init__(self, index: Index) -> None:
        self.index = index

    def search(self, vector: FloatArray, k: int) -> list[tuple[Chunk, float]]:
        hits = self.index.dense_search(vector[None, :], k)[0]
        chunks = self.index.chunks([r for r, _ in hits])
        return [(c, s) for c, (_, s) in zip(chunks, hits, strict=True)]


class VectorStoreSearch:
    """Any LangChain ``VectorStore`` (Qdrant, pgvector, ...) as the dense side.

    The store's documents must carry our chunk metadata (source, page, start, end, id, and
    header for the statement ranking),
    and its scores must be cosine similarities (configure the store's distance so). The
    base ``VectorStore`` has no scored search by vector, but the stores worth using (FAISS,
    Qdrant, PGVector, Chroma, ...) do: reject the others here rather than mid-query.
    """

    def __init__(self, store: VectorStore) -> None:
        if not hasattr(store, "similarity_search_with_score_by_vector"):
            raise TypeError(
                f"{type(store).__name__} has no similarity_search_with_score_by_vector; "
                "hybrid retrieval needs scored search by vector"
            )
        self.store = store

    def search(self, vector: FloatArray, k: int) -> list[tuple[Chunk, float]]:
        scored: Any = self.store.similarity_search_with_score_by_vector
        found = scored([float(x) for x in vector], k=k)
        return [(Chunk.from_document(d), float(s)) for d, s in found]


def one_per_page(ranked: Sequence[str], by_id: dict[str, Chunk]) -> list[str]:
    """``ranked`` chunk ids with only each PDF page's best chunk kept in place; a page's
    other chunks follow after all of those, in order. Chunks without a page (text,
    Markdown, HTML) keep their places: their unit is the document, which may hold many
    answers.

    On long PDFs several chunks of one page (a statement's rows) often filled the top of
    the list: one passage per page lifted page hit@5 on the 23-filing slice (docs/
    benchmarks.md, "Long PDFs"), and a user reading sources gains nothing from the same
    page twice. Giving a page credit for its other chunks as well (best + 0.1 x the rest)
    helped the filings but put the wrong page first on the sample PDFs, whose pages repeat
    one text: not kept.
    """
    seen: set[tuple[str, int]] = set()
    first: list[str] = []
    rest: list[str] = []
    for cid in ranked:
        chunk = by_id[cid]
        if chunk.page is None:
            first.append(cid)
            continue
        key = (chunk.source, chunk.page)
        (rest if key in seen else first).append(cid)
        seen.add(key)
    return first + rest


def statement_ranking(ranked: Sequence[str], by_id: dict[str, Chunk],
                      wanted: frozenset[Statement]) -> list[str]:
    """The best chunk of each candidate page that is one of the financial statements
    ``wanted`` (``rag.retrieval.statements.question_statements`` of the question), in ``ranked`` order.

    Fused as a third list, it lifts the statement page over the notes and MD&A pages that
    discuss the same figures (page hit@5 on the 23-filing slice: docs/benchmarks.md, "Long
    real PDFs"), and it orders statement pages among themselves by the other two lists, so
    the right filing's statement still comes before another filing's.
    """
    kinds: dict[str, frozenset[str]] = {}  # a page's chunks share one heading
    seen: set[tuple[str, int | None]] = set()
    out: list[str] = []
    for cid in ranked:
        chunk = by_id[cid]
        key = (chunk.source, chunk.page)
        heading = chunk.heading
        if key in seen or not heading:
            continue
        if heading not in kinds:
            kinds[heading] = page_statements(heading)
        if wanted & kinds[heading]:
            seen.add(key)
            out.append(cid)
    return out


def rrf(rankings: Sequence[Sequence[str]], k: int = 60) -> dict[str, float]:
    """Reciprocal rank fusion (Cormack et al. 2009): sum of 1 / (k + rank) over the lists."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return fused


class HybridRetriever(BaseRetriever):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any  # rag.store.Index (BM25 side and chunk lookup)
    encoder: Any  # rag.types.Encoder
    dense: Any = None  # DenseSearch; FAISS over ``index`` when None
    mode: RetrieverMode = "hybrid"
    k: int = 4
    fetch_k: int = 200  # as Settings.fetch_k
    rrf_k: int = 60
    distinct_pages: bool = True  # one passage per PDF page in the top k (one_per_page)
    statement_pages: bool = True  # the statement a question needs fused in (statement_ranking)

    def model_post_init(self, context: Any) -> None:
        if self.mode not in MODES:
            raise ValueError(f"retriever mode {self.mode!r}: allowed values are {', '.join(MODES)}")
        if self.dense is None:
            self.dense = FaissSearch(self.index)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self.search(query)

    def search(self, query: str, *, k: int | None = None,
               mode: RetrieverMode | None = None) -> list[Document]:
        k = k or self.k
        mode = mode or self.mode
        if mode not in MODES:
            raise ValueError(f"retriever mode {mode!r}: allowed values are {', '.join(MODES)}")
        if not query.strip():
            return []
        qvec = self.encoder.embed([query])[0]
        fetch = max(self.fetch_k, k)
        by_id: dict[str, Chunk] = {}
        dense_scores: dict[str, float] = {}
        bm25_scores: dict[str, float] = {}
        dense_rank: list[str] = []
        bm25_rank: list[str] = []
        if mode in ("hybrid", "dense"):
            for chunk, score in self.dense.search(qvec, fetch):
                by_id[chunk.id] = chunk
                dense_scores[chunk.id] = score
                dense_rank.append(chunk.id)
        if mode in ("hybrid", "bm25"):
            hits = self.index.bm25_search(query, fetch)
            rows = [r for r, _ in hits]
            for chunk, (_, score) in zip(self.index.chunks(rows), hits, strict=True):
                # A dense side without headers (a LangChain store) must not hide the
                # index's header: the statement ranking reads it.
                if chunk.id not in by_id or not by_id[chunk.id].header:
                    by_id[chunk.id] = chunk
                bm25_scores[chunk.id] = score
                bm25_rank.append(chunk.id)
            self._fill_dense_scores(qvec, rows, bm25_rank, dense_scores)

        if mode == "hybrid":
            ranking = rrf([dense_rank, bm25_rank], self.rrf_k)
            wanted = question_statements(query) if self.statement_pages else frozenset()
            if wanted:
                fused = sorted(ranking, key=lambda cid: (-ranking[cid], cid))
                statements = statement_ranking(fused, by_id, wanted)
                if statements:
                    ranking = rrf([dense_rank, bm25_rank, statements], self.rrf_k)
        elif mode == "dense":
            ranking = dense_scores
        else:
            ranking = bm25_scores
        best = sorted(ranking, key=lambda cid: (-ranking[cid], cid))
        if self.distinct_pages:
            best = one_per_page(best, by_id)
        best = best[:k]
        return [
            by_id[cid].to_document(
                score=ranking[cid], dense_score=dense_scores.get(cid),
                bm25_score=bm25_scores.get(cid), rank=rank,
            )
            for rank, cid in enumerate(best, start=1)
        ]

    def _fill_dense_scores(self, qvec: FloatArray, rows: list[int], ids: list[str],
                           dense_scores: dict[str, float]) -> None:
        # BM25-only hits have no cosine yet; compute it from the stored vectors so every
        # returned passage is scored on the scale abstention is calibrated on.
        todo = [(r, cid) for r, cid in zip(rows, ids, strict=True) if cid not in dense_scores]
        if not todo:
            return
        vecs = self.index.vectors([r for r, _ in todo])
        sims = vecs @ np.asarray(qvec, dtype=np.float32)
        for (_, cid), s in zip(todo, sims, strict=True):
            dense_scores[cid] = float(s)


def build_retriever(settings: Settings, index: IndexReader, encoder: Encoder) -> HybridRetriever:
    return HybridRetriever(index=index, encoder=encoder, mode=settings.retriever, k=settings.k,
                           fetch_k=settings.fetch_k, rrf_k=settings.rrf_k,
                           distinct_pages=settings.distinct_pages,
                           statement_pages=settings.statement_pages)
