"""``rag eval --index INDEX_DIR --qa QA.jsonl [--k 10] [--retriever MODE] [--answers] [--json]``.

Asks every question of a QA file against an index and prints hit@1/5/10, MRR@10 and
nDCG@10 (with ``--answers`` also the generated answers' SQuAD EM, F1 and how often the
gold answer is contained). Exit status: 0 done; 1 the index cannot be used (damaged,
built with another encoder); 2 usage error (no index there, bad QA file, bad flag value).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.evaluation.metrics import QAItem
    from rag.evaluation.run import EvalReport
    from rag.settings import Settings

# Keep this module light: `rag --help` imports it. Models load in run().

QA_FORMAT = (
    'one JSON object per line: {"id": str, "question": str, "answers": [str], '
    '"relevant": [{"source": str, "page": int}]} (source relative to the corpus root; '
    "page 1-based, optional)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, default=None, metavar="INDEX_DIR",
                        help="index folder to evaluate (default: RAG_INDEXES_DIR/default)")
    parser.add_argument("--qa", type=Path, required=True, metavar="QA.jsonl",
                        help=f"questions with their relevant sources: {QA_FORMAT}")
    parser.add_argument("--k", type=int, default=10,
                        help="chunks retrieved per question (default 10; metrics at cut-offs "
                        "above k see only k chunks)")
    parser.add_argument("--retriever", choices=["hybrid", "dense", "bm25"], default=None,
                        help="retriever mode (default RAG_RETRIEVER, i.e. hybrid)")
    parser.add_argument("--answers", action="store_true",
                        help="also generate answers with the chain and score EM / F1 / contains "
                        "(slow: one decoder call per question)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="only the first N questions (a quick check)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: hit@1, hit@5, hit@10, mrr@10, ndcg@10, n "
                        "(and em, f1, contains, abstained, confidently_wrong with --answers)")
    parser.add_argument("--details", type=Path, default=None, metavar="FILE.jsonl",
                        help="with --answers: write one JSON line per question (question, reply, "
                        "gold, verdict, sources, seconds) to see where it fails")
    parser.add_argument("--device", default=None,
                        help="'auto', 'cpu', 'cuda', 'cuda:1', ... (default RAG_DEVICE)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:

    from rag.evaluation.metrics import QAFormatError, load_qa
    from rag_cli.common import index_error, settings_from_flags

    if args.k < 1:
        print(f"error: --k must be at least 1, got {args.k}", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print(f"error: --limit must be at least 1, got {args.limit}", file=sys.stderr)
        return 2
    settings = settings_from_flags(retriever=args.retriever, device=args.device)
    if settings is None:
        return 2
    try:
        items = load_qa(args.qa)
    except QAFormatError as e:
        print(f"error: {e}\nexpected {QA_FORMAT}", file=sys.stderr)
        return 2
    if args.limit is not None:
        items = items[: args.limit]
    index_dir: Path = args.index if args.index is not None else settings.index_path("default")

    from rag.store import StoreError

    problem = index_error(settings, index_dir, str(index_dir))
    if problem is not None:
        print(f"error: {problem[1]}", file=sys.stderr)
        return problem[0]
    try:
        report, seconds = _evaluate(settings, index_dir, items, args)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    result = report.to_json()
    if args.details is not None:
        try:
            with args.details.open("w", encoding="utf-8") as f:
                for record in report.details():
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as e:
            print(f"error: cannot write --details {args.details}: {e.strerror}; "
                  "pick a writable path", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(format_report(result, settings.retriever, args.k, index_dir, args.qa, seconds))
    return 0


def _evaluate(settings: Settings, index_dir: Path, items: Sequence[QAItem],
              args: argparse.Namespace) -> tuple[EvalReport, float]:
    from tqdm import tqdm

    from rag.evaluation.run import AnswerFn, BatchedQueryEncoder, run_eval
    from rag.models.embed import build_encoder
    from rag.retrieval.hybrid import build_retriever
    from rag.store.backends import open_reader
    from rag.types import Answer

    encoder = build_encoder(settings)
    index = open_reader(settings, index_dir, encoder)
    try:
        questions = BatchedQueryEncoder(encoder, [item.question for item in items])
        retriever = build_retriever(settings, index, questions)
        # Not through Settings: it caps k at 50 (a prompt size), an evaluation may look deeper.
        retriever.k = args.k
        answer: AnswerFn | None = None
        if args.answers:
            from rag.answer.build import build_chain  # type: ignore[import-not-found]

            # Shares ``index`` (open_index hands out one loaded view per index and
            # process) instead of loading a second copy.
            chain = build_chain(settings, index_dir, encoder=encoder)

            def answer(question: str) -> Answer:
                return chain.invoke(question)

        bar = tqdm(total=len(items), unit="q", file=sys.stderr, disable=args.no_progress,
                   dynamic_ncols=True)
        t0 = time.perf_counter()
        try:
            report = run_eval(items, retriever.invoke, k=args.k, answer=answer,
                              progress=lambda done, total: bar.update(done - bar.n))
        finally:
            bar.close()
        return report, time.perf_counter() - t0
    finally:
        index.close()


def format_report(result: dict[str, Any], mode: str, k: int, index_dir: Path, qa: Path,
                  seconds: float) -> str:
    lines = [f"{result['n']} questions from {qa} against {index_dir} "
             f"(retriever {mode}, k={k}, {seconds:.1f} s)"]
    for key in ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "em", "f1", "contains", "abstained",
                "confidently_wrong", "numeric_n", "numeric_right", "numeric_abstained", "numeric_wrong"):
        if key in result:
            value = result[key]
            lines.append(f"  {key:<18}{value}" if isinstance(value, int) else f"  {key:<18}{value:.3f}")
    return "\n".join(lines)
