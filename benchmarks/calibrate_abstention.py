"""Calibrate the abstention threshold: best dense cosine for answerable vs unanswerable questions.

    python benchmarks/calibrate_abstention.py \\
        [--index INDEX_DIR] [--corpus corpora/squad/docs] [--k 4] [--retriever hybrid]

The chain abstains when the best ``dense_score`` (cosine of question and passage) among the
retrieved passages is below ``RAG_ABSTAIN_THRESHOLD``. This asks the answerable questions
(corpora/squad/qa.jsonl) and questions whose answers are not in the corpus
(corpora/squad/unanswerable.jsonl: SQuAD questions about other articles), prints both
score distributions, and picks the threshold with the lowest mean of the false-abstain rate
(answerable questions refused) and the false-answer rate (unanswerable ones answered).
Without --index the corpus is ingested into a temporary index with the real encoder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from common import ROOT, build_index

from rag.evaluation.metrics import QAItem, load_qa
from rag.evaluation.run import BatchedQueryEncoder
from rag.models.embed import build_encoder
from rag.retrieval.hybrid import HybridRetriever
from rag.settings import RetrieverMode, Settings
from rag.store import index_exists, open_index
from rag.types import Encoder


def best_cosines(index_dir: Path, encoder: Encoder, items: Sequence[QAItem], mode: RetrieverMode,
                 k: int) -> np.ndarray:
    index = open_index(index_dir, encoder)
    try:
        batched = BatchedQueryEncoder(encoder, [i.question for i in items])
        retriever = HybridRetriever(index=index, encoder=batched, mode=mode, k=k)
        out = []
        for item in items:
            scores = [d.metadata["dense_score"] for d in retriever.invoke(item.question)]
            out.append(max((float(s) for s in scores if s is not None), default=-1.0))
        return np.asarray(out)
    finally:
        index.close()


def rates(pos: np.ndarray, neg: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false-abstain rate on answerable, false-answer rate on unanswerable) at a threshold."""
    return float(np.mean(pos < threshold)), float(np.mean(neg >= threshold))


def pick_threshold(pos: np.ndarray, neg: np.ndarray) -> float:
    grid = np.round(np.arange(0.0, 1.0001, 0.005), 3)
    errors = [sum(rates(pos, neg, float(t))) / 2 for t in grid]
    best = min(errors)
    # Ties: the middle of the best plateau, so the value does not sit on a data point.
    ties = [float(t) for t, e in zip(grid, errors, strict=True) if e == best]
    return ties[len(ties) // 2]


def describe(name: str, scores: np.ndarray) -> str:
    q = np.percentile(scores, [5, 10, 25, 50, 75, 90, 95])
    return (f"| {name} | {len(scores)} | {scores.mean():.3f} | "
            + " | ".join(f"{v:.3f}" for v in q) + " |")


def histogram(pos: np.ndarray, neg: np.ndarray) -> list[str]:
    edges = np.round(np.arange(0.0, 1.0001, 0.05), 2)
    hp, _ = np.histogram(pos, edges)
    hn, _ = np.histogram(neg, edges)
    lines = ["| cosine | answerable | unanswerable |", "|---|---|---|"]
    for lo, hi, a, b in zip(edges[:-1], edges[1:], hp, hn, strict=True):
        if a or b:
            lines.append(f"| {lo:.2f}-{hi:.2f} | {a} | {b} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, default=None, help="existing index of --corpus")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpora" / "squad" / "docs")
    parser.add_argument("--qa", type=Path, default=ROOT / "corpora" / "squad" / "qa.jsonl")
    parser.add_argument("--unanswerable", type=Path,
                        default=ROOT / "corpora" / "squad" / "unanswerable.jsonl")
    parser.add_argument("--k", type=int, default=None, help="passages retrieved (default RAG_K)")
    parser.add_argument("--retriever", choices=["hybrid", "dense", "bm25"], default=None)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    settings = Settings()  # type: ignore[call-arg]  # mypy misreads Field(default)
    mode: RetrieverMode = args.retriever or settings.retriever
    k = args.k or settings.k
    encoder = build_encoder(settings)
    answerable, unanswerable = load_qa(args.qa), load_qa(args.unanswerable)
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = args.index
        if index_dir is None or not index_exists(index_dir):
            index_dir = Path(tmp) / "index"
            build_index(args.corpus, index_dir, settings, encoder)
        pos = best_cosines(index_dir, encoder, answerable, mode, k)
        neg = best_cosines(index_dir, encoder, unanswerable, mode, k)

    chosen = pick_threshold(pos, neg)
    print(f"best dense cosine among the top {k} ({mode}), encoder {encoder.name} "
          f"({getattr(encoder, 'precision', '?')})\n")
    print("| questions | n | mean | p5 | p10 | p25 | p50 | p75 | p90 | p95 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(describe("answerable (qa.jsonl)", pos))
    print(describe("unanswerable", neg))
    print()
    print("\n".join(histogram(pos, neg)))
    print("\n| threshold | false abstain | false answer | mean error |\n|---|---|---|---|")
    shown = sorted({0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, chosen, settings.abstain_threshold})
    for t in shown:
        fa, fn = rates(pos, neg, t)
        mark = " (chosen)" if t == chosen else ""
        mark += " (current setting)" if t == settings.abstain_threshold else ""
        print(f"| {t:.3f}{mark} | {fa:.3f} | {fn:.3f} | {(fa + fn) / 2:.3f} |")
    fa, fn = rates(pos, neg, chosen)
    print(f"\nchosen threshold {chosen:.3f}: false-abstain {fa:.3f}, false-answer {fn:.3f}")
    if args.json:
        print(json.dumps({"threshold": chosen, "false_abstain": fa, "false_answer": fn,
                          "n_answerable": len(pos), "n_unanswerable": len(neg),
                          "answerable_median": float(np.median(pos)),
                          "unanswerable_median": float(np.median(neg))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
