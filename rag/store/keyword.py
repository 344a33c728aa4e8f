"""BM25 over the base (bm25s, memory-mapped) and over the delta (a small in-memory index).

Both score with the same formula as bm25s's default ("lucene": idf = ln(1 + (N - df +
0.5) / (df + 0.5)), tf part tf / (tf + k1 (1 - b + b dl / avgdl)), k1 = 1.5, b = 0.75),
so a freshly compacted index ranks exactly as a from-scratch bm25s build. Between
compactions the base keeps its own statistics and the delta is scored with base and
delta counts together; removed rows still count in the base's statistics until the next
compaction, as in Lucene. The drift is bounded by the compaction threshold.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.store.layout import load_npy, npy_reads
from rag.store.terms import keyword_text

K1 = 1.5
B = 0.75

IntArray = npt.NDArray[np.int64]

_STEMMER: Any = None


def _bm25s() -> Any:
    import logging

    import bm25s

    # subtle: bm25s sets its logger to DEBUG when imported, so its "Building index from
    # tokens" reached the root handler: a stray DEBUG line in every `rag ingest`.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def bm25_tokenize(texts: list[str]) -> list[list[str]]:
    """English stopwords + Snowball stemming: the setting the reference figures used."""
    bm25s = _bm25s()
    import Stemmer

    global _STEMMER
    if _STEMMER is None:
        _STEMMER = Stemmer.Stemmer("english")
    # Numbers and fiscal years written one way on both sides ("FY2018" -> "FY 2018",
    # "1,577" -> "1577"): rag.store.terms.
    tokens = bm25s.tokenize([keyword_text(t) for t in texts], stopwords="en", stemmer=_STEMMER,
                            return_ids=False, show_progress=False)
    return [list(t) for t in tokens]


def build_bm25(folder: Path, rows: IntArray, terms: list[list[str]]) -> int:
    """Write a bm25s index of ``terms`` (one list per row) into ``folder``; total length."""
    bm25s = _bm25s()

    retriever = bm25s.BM25(k1=K1, b=B)
    retriever.index(terms, show_progress=False)
    retriever.save(str(folder), allow_pickle=False)
    np.save(folder / "rows.npy", rows.astype(np.int64), allow_pickle=False)
    return sum(len(t) for t in terms)


class BaseBM25:
    """A loaded bm25s base; its score matrix is memory-mapped, not copied."""

    def __init__(self, folder: Path, total_len: int) -> None:
        bm25s = _bm25s()

        with npy_reads():
            self._bm25 = bm25s.BM25.load(str(folder), mmap=True)
        self.rows: IntArray = load_npy(folder / "rows.npy", mmap=True)
        self.vocab: dict[str, int] = self._bm25.vocab_dict
        indptr = self._bm25.scores["indptr"]
        self.df: IntArray = np.diff(np.asarray(indptr)).astype(np.int64)
        self.n = len(self.rows)
        self.total_len = total_len

    def doc_freq(self, term: str) -> int:
        i = self.vocab.get(term)
        return 0 if i is None else int(self.df[i])

    def scores(self, tokens: Sequence[str], mask: npt.NDArray[np.float32] | None
               ) -> npt.NDArray[np.float32]:
        known = [t for t in tokens if t in self.vocab]
        if not known:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known, weight_mask=mask), dtype=np.float32)


class DeltaBM25:
    """Rows added since the base: an inverted index in memory, built when a reader opens."""

    def __init__(self, terms: Sequence[str]) -> None:
        postings: dict[str, tuple[list[int], list[int]]] = {}
        self.lengths = np.zeros(len(terms), dtype=np.float32)
        for doc, text in enumerate(terms):
            tokens = text.split()
            self.lengths[doc] = len(tokens)
            for term, tf in Counter(tokens).items():
                docs, tfs = postings.setdefault(term, ([], []))
                docs.append(doc)
                tfs.append(tf)
        self.postings = {t: (np.array(d, dtype=np.int64), np.array(f, dtype=np.float32))
                         for t, (d, f) in postings.items()}
        self.n = len(terms)
        self.total_len = float(self.lengths.sum())

    def doc_freq(self, term: str) -> int:
        p = self.postings.get(term)
        return 0 if p is None else len(p[0])

    def scores(self, tokens: Sequence[str], base: BaseBM25 | None) -> npt.NDArray[np.float32]:
        """Scores of the delta rows, with statistics over base and delta together."""
        out = np.zeros(self.n, dtype=np.float32)
        n = self.n + (base.n if base is not None else 0)
        total = self.total_len + (base.total_len if base is not None else 0)
        if self.n == 0 or n == 0 or total == 0:
            return out
        avgdl = total / n
        norm = K1 * (1 - B + B * self.lengths / avgdl)
        for term in tokens:  # a repeated query word counts again, as in bm25s
            p = self.postings.get(term)
            if p is None:
                continue
            df = len(p[0]) + (base.doc_freq(term) if base is not None else 0)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            docs, tf = p
            out[docs] += idf * tf / (tf + norm[docs])
        return out
