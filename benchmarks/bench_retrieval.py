"""Retrieval latency at 1k / 10k / 100k chunks, flat and HNSW FAISS indexes.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_retrieval.py [--sizes 1000 10000 100000]
        [--kinds flat hnsw] [--queries 100]

Synthetic scale-up: the index is built directly with IndexWriter from random unit vectors
and the real SQuAD paragraph texts repeated (no embedding at build time, so 100k chunks
build in minutes). Queries are timed end to end through HybridRetriever with the real
encoder: query embedding + FAISS + BM25 + reciprocal-rank fusion + chunk lookup, one
question at a time, as the chat does. Also printed: the dense-only and BM25-only parts.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rag.evaluation.metrics import load_qa  # noqa: E402
from rag.models.embed import build_encoder  # noqa: E402
from rag.retrieval.hybrid import HybridRetriever  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.store import FileRecord, IndexWriter, now_iso, open_index  # noqa: E402
from rag.types import Chunk, Encoder  # noqa: E402

CHUNKS_PER_FILE = 1000


def paragraph_texts() -> list[str]:
    docs = sorted((ROOT / "corpora" / "squad_paragraphs" / "docs").rglob("*.txt"))
    return [p.read_text(encoding="utf-8").strip() for p in docs]


def build_index(path: Path, n: int, kind: str, encoder: Encoder, texts: list[str]) -> float:
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with IndexWriter(path, encoder_name=encoder.name, dimension=encoder.dimension,
                     max_tokens=encoder.max_tokens, chunk_tokens=200, chunk_overlap=32,
                     index_kind=kind) as writer:
        for f, start in enumerate(range(0, n, CHUNKS_PER_FILE)):
            count = min(CHUNKS_PER_FILE, n - start)
            source = f"synthetic/{f:05d}.txt"
            chunks = [Chunk(source=source, page=None, start=i, end=i + 1,
                            text=texts[(start + i) % len(texts)]) for i in range(count)]
            vecs = rng.standard_normal((count, encoder.dimension)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            writer.add_file(FileRecord(source=source, sha256=f"{f:064x}", pages=1, chunks=count,
                                       added_at=now_iso()), chunks, vecs)
        writer.commit()
    return time.perf_counter() - t0


def percentiles(fn: Callable[[str], object], queries: list[str]) -> tuple[float, float]:
    for q in queries[:5]:  # warm-up: first calls pay for lazy loading
        fn(q)
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    return float(p50), float(p95)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--kinds", nargs="+", choices=["flat", "hnsw"], default=["flat", "hnsw"])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=4, help="passages returned (the chat's k)")
    args = parser.parse_args()

    settings = Settings()  # type: ignore[call-arg]  # mypy misreads Field(default)
    encoder = build_encoder(settings)
    texts = paragraph_texts()
    queries = [i.question for i in load_qa(ROOT / "corpora" / "squad" / "qa.jsonl")]
    queries = queries[: args.queries]
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs; "
          f"encoder {encoder.name} on {getattr(encoder, 'device', '?')} "
          f"({getattr(encoder, 'precision', '?')}); {len(queries)} queries, k={args.k}, "
          f"fetch_k={settings.fetch_k}\n")
    emb50, emb95 = percentiles(lambda q: encoder.embed([q]), queries)
    print(f"query embedding alone: p50 {emb50:.1f} ms, p95 {emb95:.1f} ms\n")
    print("| chunks | index | build s | hybrid p50 ms | hybrid p95 ms | dense p50 ms | "
          "bm25 p50 ms |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        for kind in args.kinds:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "index"
                build_s = build_index(path, n, kind, encoder, texts)
                index = open_index(path, encoder)
                try:
                    r = HybridRetriever(index=index, encoder=encoder, k=args.k,
                                        fetch_k=settings.fetch_k, rrf_k=settings.rrf_k)
                    h50, h95 = percentiles(r.search, queries)
                    d50, _ = percentiles(partial(r.search, mode="dense"), queries)
                    b50, _ = percentiles(partial(r.search, mode="bm25"), queries)
                finally:
                    index.close()
            print(f"| {n:,} | {kind} | {build_s:.1f} | {h50:.1f} | {h95:.1f} | {d50:.1f} | "
                  f"{b50:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
