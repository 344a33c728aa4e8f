"""Re-ranking the reader's answer spans, measured on the tuning articles (never evaluated on).

Two routes issue 9 named, neither adopted (docs/benchmarks.md, "Answers"):

- the decoder scoring each of the reader's best spans by likelihood: SmolLM2's
  log-probability of the span as its reply (chat template, end-of-turn token included) to
  the question over the span's sentence; alone, and added to the reader's score;
- widening a name span over capitalised neighbours ("Mercury" -> "Project Mercury").

Gold paragraph given; prints token F1 (SQuAD) of the top span under each ranking, and the
best F1 among the candidates (what a perfect re-ranker would reach).

    python benchmarks/score_spans.py [--questions 200] [--skip 0] [--weights W]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path
from typing import Any

from common import ROOT
from train_reader import TUNE_ARTICLES

from rag.answer.span_scores import CANDIDATES, sentence_around, vote_prompt
from rag.evaluation.metrics import best_over_golds, token_f1
from rag.models.generate import build_generator
from rag.models.span_reader import DEFAULT_WEIGHTS, build_reader
from rag.settings import Settings
from rag.text import FUNCTION_WORDS

_PREV_NAME = re.compile(r"([A-Z][\w'-]*) $")
_NEXT_NAME = re.compile(r" ([A-Z][\w'-]*)")


def widened(context: str, a: int, b: int) -> str:
    """The span grown over capitalised words next to it, when it starts with a capital."""
    if not context[a:a + 1].isupper():
        return context[a:b]
    while (m := _PREV_NAME.search(context[max(0, a - 40):a])) and m.group(1).lower() not in FUNCTION_WORDS:
        a -= len(m.group(0))
    while (m := _NEXT_NAME.match(context[b:b + 40])) and m.group(1).lower() not in FUNCTION_WORDS:
        b += len(m.group(0))
    return context[a:b]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad", type=Path, default=ROOT.parent / "shared/evaldata/squad_v1.1/dev-v1.1.json")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--skip", type=int, default=0, help="start after this many (shuffled) questions")
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    args = ap.parse_args()
    data = [a for a in json.loads(args.squad.read_text())["data"] if a["title"] in TUNE_ARTICLES]
    items = [(p["context"], q["question"], [x["text"] for x in q["answers"]])
             for a in data for p in a["paragraphs"] for q in p["qas"]]
    random.Random(0).shuffle(items)
    items = items[args.skip:args.skip + args.questions]
    reader = build_reader("cpu", args.weights)
    gen = build_generator(Settings())
    rows: list[list[dict[str, float]]] = []
    widened_f1 = 0.0
    t0 = time.perf_counter()
    for context, question, golds in items:
        spans = reader.read(question, [context])[:CANDIDATES]
        if not spans:
            continue
        widened_f1 += best_over_golds(token_f1, widened(context, spans[0].start, spans[0].end), golds)
        # The chain's own vote (rag.answer.span_scores): same prompt, one batched pass; the sum
        # over the reply's tokens (its end-of-turn token included) is the mean times them.
        means = gen.reply_log_probs([vote_prompt(question, sentence_around(context, s)) for s in spans],
                                    [s.text for s in spans])
        row = [{"reader": s.score, "sum": mean * (gen.count_tokens(s.text) + 1), "mean": mean,
                "f1": best_over_golds(token_f1, s.text, golds)} for s, mean in zip(spans, means, strict=True)]
        rows.append(row)
    n = len(rows)

    def f1_by(key: Any) -> float:
        return 100 * sum(max(r, key=key)["f1"] for r in rows) / n

    print(f"{n} questions ({', '.join(TUNE_ARTICLES)}), gold paragraph, {CANDIDATES} candidates, "
          f"{(time.perf_counter() - t0) / n:.2f} s per question")
    print(f"reader's top span          F1 {f1_by(lambda x: x['reader']):.1f}")
    print(f"top span widened over names F1 {100 * widened_f1 / n:.1f}")
    print(f"best of the candidates      F1 {100 * sum(max(x['f1'] for x in r) for r in rows) / n:.1f}")
    print(f"decoder log-prob, sum       F1 {f1_by(lambda x: x['sum']):.1f}")
    print(f"decoder log-prob, mean      F1 {f1_by(lambda x: x['mean']):.1f}")
    for lam in (0.1, 0.25, 0.5, 1.0):
        print(f"reader + {lam} x mean         F1 {f1_by(lambda x, w=lam: x['reader'] + w * x['mean']):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
