"""Pick the chain's reading thresholds and weights on the tuning articles (never the evaluation ones).

Builds a temporary index of the reader's TUNE_ARTICLES (scripts/train_reader.py), asks
their questions (answerable) and questions from the training articles, which are not in
that index (unanswerable), retrieves with the default hybrid retriever, runs the reader on
the top passages and prints how many of each would be refused, and the reader's F1 on the
answerable ones, for a sweep of: the cosine threshold and the reader's margin; the support
check (min_support); the support that lets a passage far from the question be answered from
(confident_support). With --ranking the local decoder also votes on the reader's best spans
and the F1 / contains of the chosen span is printed for a sweep of the vote's and the
question overlap's weights (rag.answer.span_scores.rescore), then how many right answers must be
refused to make the answers given right 95 / 90 / 85 / 80% of the time (``sure_table``).

    python benchmarks/calibrate_reader.py [--questions 300] [--ranking]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from common import ROOT, build_index
from train_reader import TRAIN_ARTICLES, TUNE_ARTICLES

from rag.answer.reading import OVERLAP_WEIGHT, support
from rag.answer.span_scores import CANDIDATES, question_overlap, sentence_around, vote_prompt
from rag.answer.steps import to_sources
from rag.answer.verify import mask_injections
from rag.evaluation.metrics import best_over_golds, contains_answer, token_f1
from rag.models.embed import build_encoder
from rag.models.generate import build_generator
from rag.models.span_reader import build_reader
from rag.retrieval.hybrid import build_retriever
from rag.settings import Settings
from rag.store import open_index


class Cand(NamedTuple):
    """One of the reader's candidate spans, as recorded for the sweeps."""

    margin: float
    overlap: float  # rag.answer.span_scores.question_overlap
    vote: float  # the decoder's (0 without --ranking)
    f1: float
    contains: float
    passage: int
    start: int
    end: int

    def score(self, vote_weight: float, overlap_weight: float) -> float:
        """The ranking of rag.answer.span_scores.rescore, replayed on the recorded vote."""
        return self.margin + vote_weight * self.vote + overlap_weight * self.overlap

    def overlaps(self, other: Cand) -> bool:
        return self.passage == other.passage and self.start < other.end and other.start < self.end


@dataclass
class Row:
    answerable: bool
    cosine: float  # best dense cosine of the retrieved passages
    margin: float  # the reader's best span
    f1: float  # of the reader's best span
    support: float  # rag.answer.reading.support of the best span
    cands: list[Cand]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad", type=Path, default=ROOT.parent / "shared/evaldata/squad_v1.1/dev-v1.1.json")
    ap.add_argument("--questions", type=int, default=300, help="of each kind")
    ap.add_argument("--reader", type=Path, default=None, help="reader weights (default: shipped)")
    ap.add_argument("--ranking", action="store_true",
                    help="also let the decoder vote and print the ranking sweep (a few minutes more)")
    args = ap.parse_args()
    data = {a["title"]: a for a in json.loads(args.squad.read_text())["data"]}
    rng = random.Random(7)
    answerable = [(qa["question"], [a["text"] for a in qa["answers"]])
                  for t in TUNE_ARTICLES for p in data[t]["paragraphs"] for qa in p["qas"]]
    unanswerable = [(qa["question"], []) for t in TRAIN_ARTICLES for p in data[t]["paragraphs"]
                    for qa in p["qas"]]
    answerable = rng.sample(answerable, min(args.questions, len(answerable)))
    unanswerable = rng.sample(unanswerable, min(args.questions, len(unanswerable)))

    settings = Settings()
    encoder = build_encoder(settings)
    reader = build_reader("cpu", args.reader) if args.reader else build_reader("cpu")
    scorer = build_generator(settings) if args.ranking else None
    with tempfile.TemporaryDirectory(prefix="docchat-calib-") as tmp:
        corpus = Path(tmp, "docs")
        corpus.mkdir()
        for t in TUNE_ARTICLES:
            paras = "\n\n".join(p["context"].strip() for p in data[t]["paragraphs"])
            (corpus / f"{t}.md").write_text(f"# {t.replace('_', ' ')}\n\n{paras}\n")
        build_index(corpus, Path(tmp, "idx"), settings, encoder)
        index = open_index(Path(tmp, "idx"), encoder)
        retriever = build_retriever(settings, index, encoder)
        rows: list[Row] = []
        for kind, items in (("answerable", answerable), ("unanswerable", unanswerable)):
            for q, golds in items:
                docs = retriever.invoke(q)[: settings.k]
                cosines = [float(d.metadata["dense_score"]) for d in docs
                           if d.metadata.get("dense_score") is not None]
                masked = [mask_injections(s.text) for s in to_sources(docs)]
                spans = reader.read(q, masked)
                cands = [sp for sp in spans[:CANDIDATES] if sp.margin >= settings.reader_min_margin]
                votes = [0.0] * len(cands)
                if scorer is not None and len(cands) >= 2:
                    votes = scorer.reply_log_probs(
                        [vote_prompt(q, sentence_around(masked[sp.passage], sp)) for sp in cands],
                        [sp.text for sp in cands])
                rows.append(Row(
                    kind == "answerable", max(cosines, default=-1.0),
                    spans[0].margin if spans else -99.0,
                    best_over_golds(token_f1, spans[0].text, golds) if spans and golds else 0.0,
                    support(q, masked, spans[0]) if spans else -99.0,
                    [Cand(sp.margin, question_overlap(q, masked[sp.passage], sp), v,
                          best_over_golds(token_f1, sp.text, golds) if golds else 0.0,
                          best_over_golds(contains_answer, sp.text, golds) if golds else 0.0,
                          sp.passage, sp.start, sp.end)
                     for sp, v in zip(cands, votes, strict=True)]))
        index.close()
    pos = [r for r in rows if r.answerable]
    neg = [r for r in rows if not r.answerable]
    print(f"{len(pos)} answerable ({', '.join(TUNE_ARTICLES)}), {len(neg)} unanswerable; "
          f"cosine threshold {settings.abstain_threshold}")
    print(f"reader F1 on answerable (top {settings.k} retrieved passages): "
          f"{100 * sum(r.f1 for r in pos) / len(pos):.1f}")

    def table(refused: Callable[[Row], bool]) -> str:
        pr = sum(map(refused, pos)) / len(pos)
        nr = sum(map(refused, neg)) / len(neg)
        f1 = 100 * sum(r.f1 for r in pos if not refused(r)) / len(pos)
        return f"{pr:18.3f}  {nr:20.3f}  {f1:6.1f}"

    print("cosine  margin  answerable_refused  unanswerable_refused  F1 (refusals count 0)")
    for c in (0.0, 0.2, 0.25, 0.3, 0.35, 0.4):
        for t in (-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0):
            print(f"{c:6.2f}  {t:6.1f}  " + table(lambda r, c=c, t=t: r.cosine < c or r.margin < t))
    c, t = settings.abstain_threshold, settings.reader_min_margin
    print(f"\nat cosine {c} and margin {t}: refusing also when margin + {OVERLAP_WEIGHT:g} x "
          "overlap < min_support (rag.answer.reading.supported_span)")
    print("min_support  answerable_refused  unanswerable_refused  F1")
    for sup in (0.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0):
        print(f"{sup:11.1f}  " + table(lambda r, s=sup: r.cosine < c or r.margin < t or r.support < s))
    sup = settings.reader_min_support
    print(f"\nat margin {t} and min_support {sup}: below cosine {c}, answered only when the "
          "support reaches confident_support (RagChain, reader_confident_support; inf = never)")
    print("confident_support  answerable_refused  unanswerable_refused  F1")
    for conf in (float("inf"), 25.0, 22.0, 20.0, 18.0, 16.0, 14.0):
        print(f"{conf:17.1f}  " + table(
            lambda r, k=conf: (r.cosine < c and r.support < k) or r.margin < t or r.support < sup))
    if scorer is not None:
        conf = settings.reader_confident_support

        def answered(r: Row) -> bool:
            return not ((r.cosine < c and r.support < conf) or r.margin < t or r.support < sup)

        print("\nranking the reader's candidates (rag.answer.span_scores.rescore) by margin + vote_weight x "
              "the decoder's vote + overlap_weight x overlap; answerable questions the thresholds "
              "above answer (refusals count 0)")
        print("vote_weight  overlap_weight  F1  contains")
        for vw in (0.0, 0.25, 0.5, 0.75, 1.0):
            for ow in (0.0, 1.0, 2.0, 3.0, 4.0):
                f1 = contains = 0.0
                for r in pos:
                    if answered(r) and r.cands:
                        best = max(r.cands, key=lambda x, vw=vw, ow=ow: x.score(vw, ow))
                        f1 += best.f1
                        contains += best.contains
                print(f"{vw:11.2f}  {ow:14.1f}  {100 * f1 / len(pos):4.1f}  {contains / len(pos):8.3f}")
        sure_table(pos, answered, settings.reader_decoder_weight, settings.reader_overlap_weight)
    return 0


def sure_table(pos: list[Row], answered: Callable[[Row], bool], vw: float, ow: float) -> None:
    """How many right answers must be refused to make the answers given right that often.

    Each answered question's chosen span (the chain's ranking) has a margin and a lead: its
    ranking score minus that of the best candidate that does not overlap it (another answer,
    not a longer or shorter form of the same one). Refusing the least sure first, by either,
    the share of answers kept and the answers that contain the gold are printed for a target
    accuracy of what is answered.
    """
    chosen: list[tuple[float, float, float]] = []  # (margin, lead, contains)
    for r in pos:
        if not (answered(r) and r.cands):
            continue
        best, *rest = sorted(r.cands, key=lambda x: x.score(vw, ow), reverse=True)
        others = [x for x in rest if not x.overlaps(best)]
        lead = best.score(vw, ow) - others[0].score(vw, ow) if others else float("inf")
        chosen.append((best.margin, lead, best.contains))
    right = sum(x[2] for x in chosen)
    print(f"\nanswered {len(chosen)} of {len(pos)} answerable, {right / max(1, len(chosen)):.2f} of them "
          f"right (contains {right / len(pos):.3f}); refusing the least sure first:")
    print("signal  accuracy_of_answers  answers_kept  contains")
    for name, col in (("margin", 0), ("lead", 1)):
        ordered = sorted(chosen, key=lambda x: x[col], reverse=True)
        hits = [0.0]
        for x in ordered:
            hits.append(hits[-1] + x[2])
        for target in (0.95, 0.90, 0.85, 0.80):
            keep = max((i for i in range(1, len(ordered) + 1) if hits[i] / i >= target), default=0)
            kept = keep / max(1, len(chosen))
            print(f"{name:6}  {target:19.2f}  {kept:12.2f}  {hits[keep] / len(pos):8.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
