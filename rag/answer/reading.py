"""The chain's reading step: which answer the passages hold and what the decoder reads.

1. Text that addresses a model is blanked (``rag.answer.verify.mask_injections``).
2. A table cell or contents entry the question names exactly, or the title or name of the
   document it asks for, is looked up (``rag.answer.lookup``); the extractive reader's spans follow.
3. No span the reader believes over "no answer here", or a best span whose margin and the
   share of the question its sentence repeats are together too low (``min_support``):
   nothing to read (the chain refuses).
4. The reader's best spans are re-ranked: the local decoder votes on them, and a span whose
   sentence repeats more of the question gains (``rag.answer.span_scores.rescore``).
5. The decoder is given the one or two sentences holding the best spans, masked as the
   reader saw them, or just what was looked up ("Capital: Vienna").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rag.answer.answer_types import compatible
from rag.answer.lookup import document_lookup, is_lookup, lookup, statement
from rag.answer.span_scores import question_overlap, rescore
from rag.answer.verify import Evidence, mask_injections, select_evidence
from rag.models.span_reader import SpanReader
from rag.types import ReplyScorer, Source, Span


@dataclass
class Reading:
    evidence: list[Evidence]  # the sentences the answer may rest on
    quoted: list[Source]  # what the decoder reads of each evidence, numbered as retrieved


#: Weight of ``question_overlap`` (0..1) against the reader's margin in the support check.
OVERLAP_WEIGHT = 10.0


def support(question: str, passages: Sequence[str], span: Span) -> float:
    """The reader's margin + ``OVERLAP_WEIGHT`` x the question's overlap with the span's
    sentence: high for a confident span, or one whose sentence is about what was asked."""
    return span.margin + OVERLAP_WEIGHT * question_overlap(question, passages[span.passage], span)


def supported_span(question: str, passages: Sequence[str], span: Span, min_support: float) -> bool:
    """``support`` reaches ``min_support``. Looked-up answers were matched by name already."""
    return is_lookup(span) or min_support <= 0 or support(question, passages, span) >= min_support


def read_sources(question: str, sources: Sequence[Source], reader: SpanReader, *, min_margin: float,
                 scorer: ReplyScorer | None, decoder_weight: float, timings: dict[str, float],
                 min_support: float = 0.0, overlap_weight: float = 0.0,
                 ) -> tuple[list[Span], Reading | None]:
    """(the spans found, best first; what the decoder reads, None when the passages do not
    answer)."""
    t = time.perf_counter()
    masked = [mask_injections(s.text) for s in sources]
    looked_up = lookup(question, masked) or document_lookup(question, sources, masked)
    # A span of the wrong type ("population" asked, a place found) is no answer; when none
    # of the right type is left, the passages do not answer.
    spans = looked_up + [s for s in reader.read(question, masked) if compatible(question, s.text)]
    timings["read_s"] = time.perf_counter() - t
    if (not spans or spans[0].margin < min_margin
            or not supported_span(question, masked, spans[0], min_support)):
        return spans, None
    if not looked_up:
        t = time.perf_counter()
        spans = rescore(question, spans, masked, scorer, weight=decoder_weight, min_margin=min_margin,
                        overlap_weight=overlap_weight)
        timings["score_s"] = time.perf_counter() - t
    evidence = select_evidence(spans, sources)
    # Sources are numbered 1.. in retrieval order, so source n is masked[n - 1].
    quoted = [replace(e.source, text=masked[e.source.n - 1][e.start:e.end].strip()) for e in evidence]
    if is_lookup(spans[0]):
        evidence = evidence[:1]
        src = evidence[0].source
        quoted = [replace(src, text=statement(masked[src.n - 1], spans[0]))]
    return spans, Reading(evidence, quoted)
