"""Answer latency of the default decoder: load (cold / warm cache), time to first token, total.

Cold = no conversion cache (a fresh temporary model_cache_dir: the GGUF is dequantised and
the converted weights written); warm = the cache just written is loaded. Answers go through
the real chain (prompt budget, newline stop, citations) with 4 SQuAD dev paragraphs as the
retrieved passages, with the decoder alone, with the extractive reader, its evidence
sentence and the answer checks, and with the decoder's vote on the reader's spans too (the
default chain); the figures are medians over a few questions.

    python benchmarks/bench_answer.py [--questions 5] [--threads N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from pathlib import Path
from typing import Any

import common  # noqa: F401  (the repository on sys.path, HF_HUB_OFFLINE, before any model loads)
import torch
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from squad_sample import SquadItem, load_items

from rag.answer.chain import RagChain
from rag.answer.steps import decoding_params
from rag.models.device import resolve_device
from rag.models.generate import build_generator
from rag.models.span_reader import build_reader
from rag.settings import Settings


class FixedPassages(BaseRetriever):
    """Returns the passages it was given, whatever the query: the retriever is not timed."""

    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self.docs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=5)
    ap.add_argument("--passages", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="docchat-bench-") as tmp:
        settings = Settings(model_cache_dir=Path(tmp))
        cold = build_generator(settings)
        warm = build_generator(settings)
    gen = warm
    print(f"decoder {gen.name} on {gen.device}, torch threads {torch.get_num_threads()}")
    print(f"load cold (dequantise + write cache): {cold.load_seconds:.1f} s")
    print(f"load warm (cache present):            {warm.load_seconds:.1f} s")
    del cold

    # One (title, paragraph, its first question) per paragraph, as from the dev file.
    firsts: dict[str, SquadItem] = {}
    for it in load_items():
        firsts.setdefault(it.context, it)
    paras = [(it.title, {"context": it.context, "qas": [{"question": it.question}]})
             for it in firsts.values()]
    reader = build_reader(resolve_device(settings.device))
    rng = random.Random(args.seed)
    # Side by side in one run: the decoder alone reading the passages (reader off, as
    # before the reader existed), the reader with the evidence sentence and the checks, and
    # the same with the decoder's vote on the reader's spans (the default chain).
    runs: list[tuple[str, Any, float]] = [("decoder alone", None, 0.0), ("with reader", reader, 0.0),
                                          ("reader + vote", reader, settings.reader_decoder_weight)]
    timings: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label, _, _ in runs}
    for _ in range(args.questions):
        picked = rng.sample(paras, args.passages)
        question = picked[0][1]["qas"][0]["question"]
        docs = [
            Document(page_content=p["context"], metadata={
                "id": f"{title}-{i}", "source": f"{title}.txt", "page": None, "start": 0,
                "end": len(p["context"]), "score": 1.0 / (i + 1), "dense_score": 0.9, "rank": i + 1,
            })
            for i, (title, p) in enumerate(picked)
        ]
        for label, with_reader, weight in runs:
            chain = RagChain(FixedPassages(docs=docs), gen, abstain_threshold=0.0, reader=with_reader,
                             reader_min_margin=settings.reader_min_margin,
                             reader_min_support=settings.reader_min_support,
                             reader_decoder_weight=weight, params=decoding_params(settings))
            answer = chain.invoke(question)
            timings[label][0].append(answer.timings["first_token_s"])
            timings[label][1].append(answer.timings["total_s"])
            t = answer.timings
            print(f"  {label:<14} {t['first_token_s']:.2f} s / {t['total_s']:.2f} s  "
                  f"Q: {question[:50]!r} -> {answer.text[:50]!r} ({answer.method})")
    for label, (ttft, total) in timings.items():
        print(f"{label:<14} {args.passages} passages, median of {args.questions} questions: "
              f"first token {statistics.median(ttft):.2f} s, total {statistics.median(total):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
