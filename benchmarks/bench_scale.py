"""Past one machine, measured: ingest throughput (local vs Ray) and store query latency
(FAISS vs Milvus) -- the inputs of the capacity model in docs/scaling.md.

    # store: p50/p95 of dense and BM25 searches at each size, FAISS and Milvus in one run
    python benchmarks/bench_scale.py store --milvus-uri http://127.0.0.1:19530 \\
        [--sizes 100000 1000000] [--queries 200]

    # ingest: the real encoder over a corpus, local engine vs Ray with 1 and 2 embedding actors
    python benchmarks/bench_scale.py ingest --ray-address 127.0.0.1:6379 \\
        [--corpus corpora/squad/docs]

Store: synthetic chunks through the stores' own write paths (``IndexWriter`` /
``MilvusWriter``, files of 1,000 chunks): random unit vectors of dimension 384 (the
default encoder's) and texts of 40 words drawn Zipf-like from a 20,000-word vocabulary,
so BM25 posting lists have a realistic skew. Queries: random unit vectors (dense, top 50)
and 4-word queries from the same vocabulary (BM25, top 50), one at a time as the chat
asks, plus the chunk lookup of the hits. Exact (FLAT) search on both sides.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import ROOT, machine

from rag.settings import Settings
from rag.store import FileRecord, now_iso
from rag.store.backends import open_reader, open_writer
from rag.types import Chunk

DIM = 384
PER_FILE = 1000
K = 50


def _vocab(n: int = 20_000) -> list[str]:
    rng = np.random.default_rng(7)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=int(rng.integers(4, 10)))) for _ in range(n)]


def _zipf_words(rng: np.random.Generator, vocab: list[str], n: int) -> list[str]:
    idx = np.minimum(rng.zipf(1.2, size=n) - 1, len(vocab) - 1)
    return [vocab[i] for i in idx]


def _percentiles(xs: list[float]) -> dict[str, float]:
    a = np.array(xs) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2)}


def build(settings: Settings, index: Path, n: int, vocab: list[str]) -> float:
    rng = np.random.default_rng(n)
    args: dict[str, Any] = dict(encoder_name="synthetic", dimension=DIM, max_tokens=256,
                                chunk_tokens=200, chunk_overlap=32, rebuild=True)
    t0 = time.perf_counter()
    with open_writer(settings, index, **args) as w:
        for f in range(0, n, PER_FILE):
            m = min(PER_FILE, n - f)
            source = f"doc{f // PER_FILE:06d}.txt"
            vecs = rng.standard_normal((m, DIM)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            chunks = [Chunk(source, None, i * 300, i * 300 + 290, " ".join(_zipf_words(rng, vocab, 40)))
                      for i in range(m)]
            w.add_file(FileRecord(source, f"{f:064d}", 1, m, now_iso()), chunks, vecs)
        w.commit()
    return time.perf_counter() - t0


def query(settings: Settings, index: Path, vocab: list[str], queries: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    reader = open_reader(settings, index)
    open_s = time.perf_counter() - t0
    dense: list[float] = []
    bm25: list[float] = []
    lookup: list[float] = []
    for _ in range(queries):
        q = rng.standard_normal(DIM).astype(np.float32)
        q /= np.linalg.norm(q)
        t = time.perf_counter()
        hits = reader.dense_search(q[None, :], K)[0]
        dense.append(time.perf_counter() - t)
        t = time.perf_counter()
        reader.chunks([r for r, _ in hits])
        lookup.append(time.perf_counter() - t)
        words = " ".join(vocab[int(i)] for i in rng.integers(0, 2000, size=4))
        t = time.perf_counter()
        reader.bm25_search(words, K)
        bm25.append(time.perf_counter() - t)
    out = {"open_s": round(open_s, 2), "dense": _percentiles(dense), "bm25": _percentiles(bm25),
           "chunks_lookup": _percentiles(lookup), "n": len(reader)}
    reader.close()
    return out


def bench_store(args: argparse.Namespace) -> list[dict[str, Any]]:
    vocab = _vocab()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"faiss": Settings(indexes_dir=Path(tmp)),
                  "milvus": Settings(indexes_dir=Path(tmp), store="milvus", store_uri=args.milvus_uri,
                                     store_prefix="bench")}
        for n in args.sizes:
            for name, s in stores.items():
                if name not in args.stores:
                    continue
                index = Path(tmp) / f"bench_{n}"
                build_s = build(s, index, n, vocab)
                row = {"store": name, "chunks": n, "build_s": round(build_s, 1),
                       "insert_chunks_per_s": round(n / build_s), **query(s, index, vocab, args.queries)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def bench_ingest(args: argparse.Namespace) -> list[dict[str, Any]]:
    from ingest.pipeline import ingest_folder
    from rag.models.embed import build_encoder

    base = Settings(ocr=False)
    encoder = build_encoder(base)  # warm: model loading is not ingestion
    runs: list[tuple[str, Settings]] = [("local", base)]
    if args.ray_address:
        for actors in (1, 2):
            runs.append((f"ray x{actors}", base.with_overrides(
                ingest_engine="ray", ray_address=args.ray_address, ray_embed_workers=actors)))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, s in runs:
            # Ray workers load the model themselves (as on a cluster), so pass no encoder.
            t = time.perf_counter()
            summary = ingest_folder(Path(args.corpus), Path(tmp) / name.replace(" ", "_"), s,
                                    encoder=encoder if name == "local" else None, rebuild=True)
            secs = time.perf_counter() - t
            row = {"engine": name, "files": summary.files_ok, "chunks": summary.chunks,
                   "seconds": round(secs, 1), "chunks_per_s": round(summary.chunks / secs, 1)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    st = sub.add_parser("store")
    st.add_argument("--milvus-uri", required=True)
    st.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    st.add_argument("--queries", type=int, default=200)
    st.add_argument("--stores", nargs="+", default=["faiss", "milvus"])
    ing = sub.add_parser("ingest")
    ing.add_argument("--ray-address", default=None)
    ing.add_argument("--corpus", default=str(ROOT / "corpora" / "squad" / "docs"))
    args = ap.parse_args()
    print(json.dumps({"machine": machine()}))
    rows = bench_store(args) if args.what == "store" else bench_ingest(args)
    print(json.dumps({"results": rows}))


if __name__ == "__main__":
    main()
