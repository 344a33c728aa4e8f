"""Evaluation runs: every question of a QA file retrieved (and answered), then scored."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.documents import Document

from rag.answer.citations import strip_markers
from rag.evaluation.metrics import (
    HIT_CUTOFFS,
    RANK_CUTOFF,
    QAItem,
    best_over_golds,
    contains_answer,
    exact_match,
    hit_at,
    ndcg,
    reciprocal_rank,
    relevant_ranks,
    token_f1,
)
from rag.evaluation.numbers import number_right, states_a_figure
from rag.types import Answer, Encoder, FloatArray

Retrieve = Callable[[str], Sequence[Document]]
#: question -> (reply, abstained), or the chain's Answer (its sources then go in the details).
AnswerFn = Callable[[str], tuple[str, bool] | Answer]
ProgressFn = Callable[[int, int], None]


class BatchedQueryEncoder:
    """An :class:`Encoder` that embeds all evaluation questions in one batched pass first.

    The retriever embeds one query per call; for hundreds of questions that is mostly
    per-call overhead, so the questions are embedded up front (same model, same
    precision) and looked up. Texts not seen before fall through to the wrapped encoder.
    """

    def __init__(self, encoder: Encoder, texts: Sequence[str]) -> None:
        self.inner = encoder
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.max_tokens = encoder.max_tokens
        unique = list(dict.fromkeys(texts))
        vectors = encoder.embed(unique) if unique else np.zeros((0, self.dimension), np.float32)
        self._cache: dict[str, FloatArray] = dict(zip(unique, vectors, strict=True))

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if all(t in self._cache for t in texts):
            if not texts:
                return np.zeros((0, self.dimension), dtype=np.float32)
            return np.stack([self._cache[t] for t in texts]).astype(np.float32, copy=False)
        return self.inner.embed(texts)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_offsets(text)


@dataclass(frozen=True)
class QuestionResult:
    id: str
    ranks: list[int]  # 1-based ranks of the relevant items found in the top k
    n_relevant: int
    answer: str | None = None
    em: float | None = None
    f1: float | None = None
    contains: float | None = None
    abstained: bool | None = None
    #: Gold answers that are one figure: does the reply state it (rag.evaluation.numbers)?
    number_right: bool | None = None
    #: For the per-question file: what was asked, the gold, the sources, how long it took.
    question: str = ""
    golds: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    seconds: float | None = None

    @property
    def verdict(self) -> str:
        """right / wrong / refused (answers scored as numbers when the gold is one)."""
        if self.abstained:
            return "refused"
        right = self.number_right if self.number_right is not None else bool(self.contains)
        return "right" if right else "wrong"

    def detail(self) -> dict[str, Any]:
        return {"id": self.id, "question": self.question, "reply": self.answer, "gold": self.golds,
                "verdict": self.verdict, "numeric": self.number_right is not None,
                "sources": self.sources, "seconds": self.seconds}


@dataclass
class EvalReport:
    k: int
    results: list[QuestionResult] = field(default_factory=list)

    @property
    def judged(self) -> list[QuestionResult]:
        """Questions with relevant items (those without cannot score retrieval)."""
        return [r for r in self.results if r.n_relevant > 0]

    def _mean(self, values: Sequence[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    def to_json(self) -> dict[str, float | int]:
        judged = self.judged
        out: dict[str, float | int] = {
            f"hit@{c}": self._mean([hit_at(r.ranks, c) for r in judged]) for c in HIT_CUTOFFS
        }
        out[f"mrr@{RANK_CUTOFF}"] = self._mean([reciprocal_rank(r.ranks) for r in judged])
        out[f"ndcg@{RANK_CUTOFF}"] = self._mean([ndcg(r.ranks, r.n_relevant) for r in judged])
        out["n"] = len(judged)
        answered = [r for r in self.results if r.em is not None]
        if answered:
            out["em"] = self._mean([r.em or 0.0 for r in answered])
            out["f1"] = self._mean([r.f1 or 0.0 for r in answered])
            out["contains"] = self._mean([r.contains or 0.0 for r in answered])
            # Refusals score 0 above; these say how the misses split between an honest
            # "the documents do not say" and a wrong answer shown as if it were right.
            out["abstained"] = self._mean([float(bool(r.abstained)) for r in answered])
            out["confidently_wrong"] = self._mean(
                [float(not r.abstained and not r.contains) for r in answered])
        numeric = [r for r in answered if r.number_right is not None]
        if numeric:
            # Scored as numbers: right within 1% (scale words understood), refused, or a
            # figure given that is not the gold one (confidently wrong).
            out["numeric_n"] = len(numeric)
            out["numeric_right"] = self._mean([float(bool(r.number_right)) for r in numeric])
            out["numeric_abstained"] = self._mean([float(bool(r.abstained)) for r in numeric])
            out["numeric_wrong"] = self._mean([
                float(not r.abstained and not r.number_right and states_a_figure(r.answer or ""))
                for r in numeric])
        return out

    def details(self) -> list[dict[str, Any]]:
        """One record per answered question, for a user to see where it fails."""
        return [r.detail() for r in self.results if r.em is not None]


def run_eval(
    items: Sequence[QAItem],
    retrieve: Retrieve,
    *,
    k: int = RANK_CUTOFF,
    answer: AnswerFn | None = None,
    progress: ProgressFn | None = None,
) -> EvalReport:
    """Ask every question; ``retrieve`` returns chunk Documents best first (metadata source/page).

    With ``answer`` (question -> generated text), questions with gold answers also get
    EM, F1 and "contains". Only the top ``k`` retrieved chunks are judged, so metrics at
    cut-offs above ``k`` see ``k`` results.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    report = EvalReport(k=k)
    for i, item in enumerate(items, start=1):
        docs = list(retrieve(item.question))[:k]
        retrieved = [(str(d.metadata["source"]), _page(d)) for d in docs]
        ranks = relevant_ranks(retrieved, item.relevant)
        result = QuestionResult(id=item.id, ranks=ranks, n_relevant=len(item.relevant))
        if answer is not None and item.answers:
            t0 = time.perf_counter()
            got = answer(item.question)
            seconds = time.perf_counter() - t0
            if isinstance(got, Answer):
                reply, abstained = got.text, got.abstained
                sources = [{"n": s.n, "source": s.source, "page": s.page, "cited": s.n in got.cited}
                           for s in got.sources]
            else:
                (reply, abstained), sources = got, []
            # Citation markers are not part of the answer: "1889 [1]" is scored as "1889".
            text = strip_markers(reply)
            result = QuestionResult(
                id=item.id,
                ranks=ranks,
                n_relevant=len(item.relevant),
                answer=text,
                em=best_over_golds(exact_match, text, item.answers),
                f1=best_over_golds(token_f1, text, item.answers),
                contains=best_over_golds(contains_answer, text, item.answers),
                abstained=abstained,
                number_right=_number_verdict(text, item.answers, abstained),
                question=item.question,
                golds=list(item.answers),
                sources=sources,
                seconds=round(seconds, 3),
            )
        report.results.append(result)
        if progress is not None:
            progress(i, len(items))
    return report


def _number_verdict(text: str, golds: Sequence[str], abstained: bool) -> bool | None:
    right = number_right(text, golds)
    return right if right is None else right and not abstained  # a refusal is never right


def _page(doc: Document) -> int | None:
    page = doc.metadata.get("page")
    return None if page is None else int(page)
