"""Retrieval and answer quality: hit@k, MRR@10, nDCG@10 and SQuAD EM/F1 over a QA file.

Relevance is binary and judged per *relevant item* (a document, or one page of it): a
retrieved chunk is a hit when its source (and page, when the item names one) matches. The
retriever returns chunks, several of which may come from one relevant document; each item
counts once, at the rank of its best chunk, as standard IR metrics over documents do. The
ideal DCG is computed from the number of relevant items (capped at the cut-off).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.text import normalize_answer

HIT_CUTOFFS = (1, 5, 10)
RANK_CUTOFF = 10  # MRR@10, nDCG@10

#: question -> (reply text, whether the reply is a refusal)


class QAFormatError(ValueError):
    """A QA file line that does not follow the format; the message names file, line, reason."""


@dataclass(frozen=True)
class Relevant:
    source: str  # relative to the corpus root, POSIX separators
    page: int | None = None  # 1-based; None = any page of the source

    def matches(self, source: str, page: int | None) -> bool:
        return source == self.source and (self.page is None or page == self.page)


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: list[str]
    relevant: list[Relevant]


# --- QA files -------------------------------------------------------------------------------

_QA_KEYS = {"id", "question", "answers", "relevant"}


def parse_qa_line(obj: Any) -> QAItem:
    """Validate one decoded QA object; raises ValueError with the reason."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    missing = sorted(_QA_KEYS - obj.keys())
    if missing:
        raise ValueError(f"missing key(s) {missing}; required: {sorted(_QA_KEYS)}")
    unknown = sorted(obj.keys() - _QA_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; allowed: {sorted(_QA_KEYS)}")
    qid, question, answers, relevant = obj["id"], obj["question"], obj["answers"], obj["relevant"]
    if not isinstance(qid, str) or not qid:
        raise ValueError(f"'id' must be a non-empty string, got {qid!r}")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"'question' must be a non-empty string, got {question!r}")
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ValueError(f"'answers' must be a list of strings, got {answers!r}")
    if not isinstance(relevant, list):
        raise ValueError(f"'relevant' must be a list of {{source, page}} objects, got {relevant!r}")
    items: list[Relevant] = []
    for r in relevant:
        if not isinstance(r, dict) or not isinstance(r.get("source"), str) or not r["source"]:
            raise ValueError(f"each 'relevant' entry needs a non-empty string 'source', got {r!r}")
        if set(r) - {"source", "page"}:
            raise ValueError(f"unknown key(s) in 'relevant' entry {r!r}; allowed: page, source")
        page = r.get("page")
        # bool is an int subclass: reject it explicitly, true is not page 1.
        if page is not None and (not isinstance(page, int) or isinstance(page, bool) or page < 1):
            raise ValueError(f"'page' must be a 1-based integer, got {page!r}")
        items.append(Relevant(source=r["source"], page=page))
    return QAItem(id=qid, question=question.strip(), answers=list(answers), relevant=items)


def load_qa(path: Path) -> list[QAItem]:
    """Read a QA JSONL file; blank lines are skipped, anything else invalid is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QAFormatError(f"{path}: QA file not found") from None
    except UnicodeDecodeError as e:
        raise QAFormatError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    items: list[QAItem] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = parse_qa_line(json.loads(line))
        except json.JSONDecodeError as e:
            reason = f"invalid JSON: {e.msg} (column {e.colno})"
            raise QAFormatError(f"{path}:{lineno}: {reason}") from None
        except ValueError as e:
            raise QAFormatError(f"{path}:{lineno}: {e}") from None
        if item.id in seen:
            first = seen[item.id]
            reason = f"duplicate id {item.id!r} (first on line {first})"
            raise QAFormatError(f"{path}:{lineno}: {reason}")
        seen[item.id] = lineno
        items.append(item)
    if not items:
        raise QAFormatError(f"{path}: no questions in the file")
    return items


# --- retrieval metrics -------------------------------------------------------------------------


def relevant_ranks(
    retrieved: Sequence[tuple[str, int | None]], relevant: Sequence[Relevant]
) -> list[int]:
    """1-based rank at which each relevant item is first found, sorted; unfound items omitted.

    Each retrieved position is credited to at most one item that is still unfound, so an
    item hit by many chunks counts once (at its best rank) and one chunk never counts twice.
    """
    found: set[int] = set()
    ranks: list[int] = []
    for rank, (source, page) in enumerate(retrieved, start=1):
        for i, item in enumerate(relevant):
            if i not in found and item.matches(source, page):
                found.add(i)
                ranks.append(rank)
                break
        if len(found) == len(relevant):
            break
    return ranks


def hit_at(ranks: Sequence[int], k: int) -> float:
    return 1.0 if ranks and min(ranks) <= k else 0.0


def reciprocal_rank(ranks: Sequence[int], k: int = RANK_CUTOFF) -> float:
    best = min(ranks, default=0)
    return 1.0 / best if 0 < best <= k else 0.0


def ndcg(ranks: Sequence[int], n_relevant: int, k: int = RANK_CUTOFF) -> float:
    """Binary-relevance nDCG@k; IDCG places min(n_relevant, k) relevant items first."""
    if n_relevant <= 0:
        raise ValueError("nDCG needs at least one relevant item")
    dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r <= k)
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(n_relevant, k) + 1))
    return dcg / idcg


# --- answer metrics (the official SQuAD v1.1 evaluation, max over gold answers) ---------------

def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains_answer(prediction: str, gold: str) -> float:
    """Gold answer (normalised) appears in the normalised prediction, on word boundaries."""
    g = normalize_answer(gold)
    return float(bool(g) and f" {g} " in f" {normalize_answer(prediction)} ")


def best_over_golds(
    metric: Callable[[str, str], float], prediction: str, golds: Sequence[str]
) -> float:
    return max((metric(prediction, g) for g in golds), default=0.0)


def squad_scores(pairs: Iterable[tuple[str, Sequence[str]]]) -> tuple[float, float]:
    """Mean EM and F1 (fractions in [0, 1]) over (prediction, gold answers) pairs."""
    em = f1 = 0.0
    n = 0
    for prediction, golds in pairs:
        em += best_over_golds(exact_match, prediction, golds)
        f1 += best_over_golds(token_f1, prediction, golds)
        n += 1
    if n == 0:
        raise ValueError("no (prediction, answers) pairs to score")
    return em / n, f1 / n
