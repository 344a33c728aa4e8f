"""Retrieval latency at 1k / 10k / 100k chunks, flat and HNSW FAISS indexes.

    python benchmarks/bench_retrieval.py [--sizes 1000 10000 100000]
        [--kinds flat hnsw] [--queries 100]

Synthetic scale-up: the index is built directly with IndexWriter from random unit vectors
and the real SQuAD paragraph texts repeated (no embedding at build time, so 100k chunks
build in minutes). Queries are timed end to end through HybridRetriever with the real
encoder: query embedding + FAISS + BM25 + reciprocal-rank fusion + chunk lookup, one
question at a time, as the chat does. Also printed: the dense-only and BM25-only parts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from common import latency_ms, machine, paragraph_texts, squad_questions

from rag.models.embed import build_encoder
from rag.retrieval.hybrid import HybridRetriever
from rag.settings import Settings
from rag.store import FileRecord, IndexWriter, now_iso, open_index
from rag.types import Chunk, Encoder

CHUNKS_PER_FILE = 1000


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
    queries = squad_questions(args.queries)
    print(f"machine: {machine()}; "
          f"encoder {encoder.name} on {getattr(encoder, 'device', '?')} "
          f"({getattr(encoder, 'precision', '?')}); {len(queries)} queries, k={args.k}, "
          f"fetch_k={settings.fetch_k}\n")
    emb50, emb95 = latency_ms(lambda q: encoder.embed([q]), queries)
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
                    h50, h95 = latency_ms(r.search, queries)
                    d50, _ = latency_ms(partial(r.search, mode="dense"), queries)
                    b50, _ = latency_ms(partial(r.search, mode="bm25"), queries)
                finally:
                    index.close()
            print(f"| {n:,} | {kind} | {build_s:.1f} | {h50:.1f} | {h95:.1f} | {d50:.1f} | "
                  f"{b50:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
