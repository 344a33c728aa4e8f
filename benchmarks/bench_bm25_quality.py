"""BM25-only retrieval quality of one or more indexes on a QA file, without the encoder.

    python benchmarks/bench_bm25_quality.py --qa corpora/squad_paragraphs/qa.jsonl \\
        INDEX_DIR [INDEX_DIR ...]

Uses only ``open_index``, ``Index.bm25_search`` and ``Index.chunks``, which every index
format so far has, so the same script scores an index under the previous release's code
(run it with that checkout on PYTHONPATH) and under this one: that is how "BM25 quality
unchanged" was checked (docs/benchmarks.md). Prints one JSON line per index.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import common  # noqa: F401  (the repository on sys.path, HF_HUB_OFFLINE, before any model loads)
from langchain_core.documents import Document

from rag.evaluation.metrics import load_qa
from rag.evaluation.run import run_eval
from rag.store import open_index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qa", type=Path, required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("indexes", type=Path, nargs="+")
    args = parser.parse_args()
    items = load_qa(args.qa)
    for path in args.indexes:
        index = open_index(path)

        def retrieve(question: str, index: object = index) -> list[Document]:
            hits = index.bm25_search(question, args.k)  # type: ignore[attr-defined]
            chunks = index.chunks([r for r, _ in hits])  # type: ignore[attr-defined]
            return [c.to_document(score=s) for c, (_, s) in zip(chunks, hits, strict=True)]

        t = time.perf_counter()
        report = run_eval(items, retrieve, k=args.k).to_json()
        report["seconds"] = round(time.perf_counter() - t, 1)
        print(json.dumps({"index": str(path), **report}), flush=True)
        index.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
