"""The decoder's vote on the reader's candidate answers.

The reader ranks its spans well enough that the right one is among its six best for about
9 questions in 10, but first only for about 7 (docs/benchmarks.md, "Answers"). The local
decoder, asked how likely it finds each candidate as its reply to the question over the
candidate's sentence, knows something the reader does not: added to the reader's margin
with a small weight, its mean log-probability per token lifted the top span's F1 on the
tuning articles from 71.9 to 74.4 (200 questions the weight was picked on) and from 67.7 to
71.1 (143 other questions), gold paragraph given (``benchmarks/score_spans.py``). Alone the
decoder ranks worse than the reader (F1 53-65): it votes, it does not choose.

Since stop 21 the share of the question's words that a span's sentence repeats
(``question_overlap``) is added too, and the vote weighs 0.5: on the tuning articles, from
the passages the chain retrieves, F1 and answers containing the gold both rose
(``benchmarks/calibrate_reader.py --ranking``; rag/settings.py has the figures).
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.text import content_stems, sentence_spans
from rag.types import ReplyScorer, Span

#: How many of the reader's best spans the decoder scores (one batched forward pass).
CANDIDATES = 6
#: As measured in benchmarks/score_spans.py: the weight was picked with this prompt.
SCORE_SYSTEM = "Answer the question with a short phrase from the context."


def sentence_around(passage: str, span: Span) -> str:
    """The sentence holding the span (up to the span's end when it runs past it)."""
    for a, b in sentence_spans(passage):
        if a <= span.start < b:
            return passage[a:max(b, span.end)].strip()
    return passage[span.start:span.end]


def question_overlap(question: str, passage: str, span: Span) -> float:
    """Share of the question's content words that the sentence holding ``span`` also says,
    outside the span itself (words compared by their first five letters: "limits" and
    "limited"). A span in a sentence about something else answers another question.
    """
    asked = content_stems(question, prefix=5)
    if not asked:
        return 1.0  # nothing to compare with: no evidence against the span
    said = content_stems(sentence_around(passage, span), prefix=5) - content_stems(span.text, prefix=5)
    return len(asked & said) / len(asked)


def vote_prompt(question: str, sentence: str) -> list[dict[str, str]]:
    """The chat the decoder is asked to reply to when it votes on a span of ``sentence``."""
    return [{"role": "system", "content": SCORE_SYSTEM},
            {"role": "user", "content": f"Context: {sentence}\nQuestion: {question}"}]


def rescore(question: str, spans: Sequence[Span], passages: Sequence[str], scorer: ReplyScorer | None,
            *, weight: float, min_margin: float, overlap_weight: float = 0.0) -> list[Span]:
    """``spans`` (the reader's, best first) with its best candidates re-ordered by margin +
    ``weight`` x the decoder's mean log-probability of each as the reply + ``overlap_weight``
    x the share of the question its sentence repeats (``question_overlap``).

    Only spans the reader would answer with on their own (margin >= ``min_margin``) are
    candidates: the decoder and the overlap may pick among them, never lift one the reader
    does not believe. No ``scorer`` (a remote chat model), or weight 0: no vote.
    """
    cands = [s for s in spans[:CANDIDATES] if s.margin >= min_margin]
    if weight <= 0:
        scorer = None
    if len(cands) < 2 or (scorer is None and overlap_weight <= 0):
        return list(spans)
    scores = [s.margin + overlap_weight * question_overlap(question, passages[s.passage], s)
              for s in cands]
    if scorer is not None:
        prompts = [vote_prompt(question, sentence_around(passages[s.passage], s)) for s in cands]
        votes = scorer.reply_log_probs(prompts, [s.text for s in cands])
        scores = [x + weight * v for x, v in zip(scores, votes, strict=True)]
    order = sorted(range(len(cands)), key=lambda i: scores[i], reverse=True)
    picked = [cands[i] for i in order]
    return picked + [s for s in spans if s not in picked]
