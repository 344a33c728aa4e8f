"""Index updates at 10k / 100k / 1M chunks: add or remove one file, compaction, queries, memory.

    python benchmarks/bench_index.py \\
        [--sizes 10000 100000 1000000] [--kind hnsw] [--queries 100] [--rerun-files 10000]
    ... --sizes 300000 --kind hnsw --build DIR      # then, at leisure:
    ... --query-index DIR --queries 50; ... --open DIR before|scan|table

Synthetic scale: vectors are random unit vectors (dimension 384, the default encoder's);
texts are the real SQuAD paragraphs (corpora/squad_paragraphs), repeated, each copy with
a distinct word added so that no two chunks are identical. The index is built in files
of 1,000 chunks and committed once (a full base), then, on that index:

- add 1 file of 50 chunks (median of 5 commits) and remove 1 such file (median of 5);
- one commit forced to compact (what a commit costs every ~2% of the index);
- open a reader (with a delta of those files), hybrid / dense / BM25 query latency with
  the real encoder (query embedding included), one question at a time as the chat asks;
- peak RSS of the process (build included) and RSS after opening the reader;
- remove ~1% of the base (one 1,000-chunk file per 100k chunks, at least one), then open
  a reader in a fresh process with the table of removed rows and with the full comparison
  of rows that every open made before that table (``--open``): time (loading the base
  files, and in all) and RSS of each, best of two.

``--rerun-files`` also times an unchanged re-run of ``ingest_folder`` over that many
small text files (fake encoder: nothing is embedded when nothing changed). Each size runs
in its own process, so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from functools import cache, partial
from pathlib import Path

import numpy as np
from common import latency_ms, machine, paragraph_texts, squad_questions

import rag.store.writer as writer_module
from rag.store import FileRecord, Index, IndexWriter, now_iso
from rag.types import Chunk

DIM = 384
PER_FILE = 1000
SMALL_FILE = 50
VARIANTS = ("amber", "basalt", "cedar", "dune", "ember", "fjord", "granite", "heath", "iris",
            "juniper", "kelp", "lichen", "marsh", "nectar", "opal", "pine", "quartz", "reed")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memo_tokenizer() -> None:
    """Tokenise each distinct paragraph once: the build is about the index, not stemming."""
    real = writer_module.bm25_tokenize

    @cache
    def one(text: str) -> tuple[str, ...]:
        return tuple(real([text])[0])

    def tokenize(texts: list[str]) -> list[list[str]]:
        out = []
        for t in texts:
            base, _, extra = t.rpartition(" ~ ")
            out.append([*one(base), *one(extra)] if base else list(one(t)))
        return out

    writer_module.bm25_tokenize = tokenize  # type: ignore[assignment]


def make_chunks(source: str, count: int, start: int, texts: list[str]) -> list[Chunk]:
    out = []
    for i in range(count):
        g = start + i
        # The added word varies the copies; "~" keeps it apart for the memo tokenizer.
        text = f"{texts[g % len(texts)]} ~ {VARIANTS[(g // len(texts)) % len(VARIANTS)]}"
        out.append(Chunk(source=source, page=None, start=i, end=i + 1, text=text))
    return out


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


#: Norm of the noise added to a paragraph's real embedding (``--vectors paragraph``): each
#: copy keeps a cosine of ~0.9 with its paragraph, so copies cluster as real chunks do.
PARAGRAPH_NOISE = 0.5


@cache
def paragraph_vectors() -> np.ndarray:
    """The real embeddings of ``paragraph_texts()`` (the default encoder), in that order."""
    from rag.models.embed import build_encoder
    from rag.settings import Settings

    return build_encoder(Settings()).embed(paragraph_texts())  # type: ignore[call-arg]


def paragraph_copies(rng: np.random.Generator, start: int, n: int) -> np.ndarray:
    """Vectors for chunks ``start .. start + n`` of ``make_chunks``: each the real embedding
    of the paragraph its text copies, plus noise. Random unit vectors have no neighbours
    worth the name (any two are at cosine ~0 +- 0.05): an approximate index's recall on them
    says nothing, and its search time little, about real text."""
    base = paragraph_vectors()
    v = base[np.arange(start, start + n) % len(base)].astype(np.float32)
    noise = rng.standard_normal(v.shape).astype(np.float32)
    v += noise * (PARAGRAPH_NOISE / np.linalg.norm(noise, axis=1, keepdims=True))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def writer(path: Path, kind: str, dim: int = DIM) -> IndexWriter:
    return IndexWriter(path, encoder_name="sentence-transformers/all-MiniLM-L6-v2",
                       dimension=dim, max_tokens=254, chunk_tokens=200, chunk_overlap=32,
                       index_kind=kind)


def record(source: str, n: int) -> FileRecord:
    return FileRecord(source=source, sha256=f"{abs(hash(source)):064x}"[:64], pages=1,
                      chunks=n, added_at=now_iso())


def opens_after_removing(path: Path, n: int, kind: str, dim: int = DIM) -> dict[str, dict[str, float]]:
    """~1% of the base removed (no compaction: that is under 2%), then a reader opened each
    way (``--open``), each in a fresh process, best of two."""
    with writer(path, kind, dim) as w:
        for f in range(max(1, n // 100_000)):
            w.remove_file(f"synthetic/{f * 7:05d}.txt")
        w.commit()
        assert not w.compacted
    best = {}
    for mode in ("before", "scan", "table"):
        runs = [json.loads(subprocess.run(
            [sys.executable, __file__, "--open", str(path), mode], check=True,
            capture_output=True, text=True).stdout) for _ in range(2)]
        best[mode] = min(runs, key=lambda r: r["open_s"])
    return best


def one_size(n: int, kind: str, n_queries: int) -> dict[str, object]:
    from rag.evaluation.run import BatchedQueryEncoder
    from rag.models.embed import build_encoder
    from rag.retrieval.hybrid import HybridRetriever
    from rag.settings import Settings

    memo_tokenizer()
    texts = paragraph_texts()
    rng = np.random.default_rng(0)
    out: dict[str, object] = {"chunks": n, "kind": kind}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        path = Path(tmp) / "index"
        t0 = time.perf_counter()
        with writer(path, kind) as w:
            for f, start in enumerate(range(0, n, PER_FILE)):
                count = min(PER_FILE, n - start)
                source = f"synthetic/{f:05d}.txt"
                w.add_file(record(source, count), make_chunks(source, count, start, texts),
                           unit_vectors(rng, count))
            t1 = time.perf_counter()
            w.commit()
        out["build_rows_s"] = round(t1 - t0, 1)
        out["build_commit_s"] = round(time.perf_counter() - t1, 1)
        out["peak_build_mb"] = round(peak_mb())
        print(json.dumps(out), flush=True)  # partial figures, in case a big size is cut short

        def commit_one(change: str, i: int) -> tuple[float, bool]:
            source = f"added/{i:03d}.txt"
            t = time.perf_counter()
            with writer(path, kind) as w:
                if change == "add":
                    w.add_file(record(source, SMALL_FILE),
                               make_chunks(source, SMALL_FILE, n + i * SMALL_FILE, texts),
                               unit_vectors(rng, SMALL_FILE))
                else:
                    w.remove_file(source)
                w.commit()
                compacted = w.compacted
            return time.perf_counter() - t, compacted

        adds = [commit_one("add", i) for i in range(6)]
        removes = [commit_one("remove", i) for i in range(5)]
        out["add_file_s"] = round(float(np.median([t for t, _ in adds])), 3)
        out["add_file_max_s"] = round(max(t for t, _ in adds), 3)
        out["remove_file_s"] = round(float(np.median([t for t, _ in removes])), 3)
        out["compactions_in_these"] = sum(c for _, c in adds + removes)
        print(json.dumps(out), flush=True)

        # One reader over base + delta (one added file left, five removed).
        t = time.perf_counter()
        index = Index(path)
        out["open_s"] = round(time.perf_counter() - t, 2)
        out["rss_reader_mb"] = round(rss_mb())
        if kind == "hnsw":
            out["ef_search"] = index.ef_search
        settings = Settings()  # type: ignore[call-arg]
        encoder = build_encoder(settings)
        questions = squad_questions(n_queries)
        r = HybridRetriever(index=index, encoder=encoder, k=4, fetch_k=settings.fetch_k,
                            rrf_k=settings.rrf_k)
        # The index's own share: the same search with the query vectors embedded beforehand
        # (on a loaded machine the model's time swamps everything else).
        cached = BatchedQueryEncoder(encoder, questions)
        r_index = HybridRetriever(index=index, encoder=cached, k=4, fetch_k=settings.fetch_k,
                                  rrf_k=settings.rrf_k)
        for name, fn in (("embed", lambda q: encoder.embed([q])), ("hybrid", r.search),
                         ("hybrid_index_only", r_index.search),
                         ("dense", partial(r.search, mode="dense")),
                         ("bm25", partial(r.search, mode="bm25"))):
            p50, p95 = latency_ms(fn, questions)
            out[f"{name}_p50_ms"] = round(float(p50), 1)
            out[f"{name}_p95_ms"] = round(float(p95), 1)
        index.close()
        print(json.dumps(out), flush=True)

        for mode, best in opens_after_removing(path, n, kind).items():
            for key in ("open_s", "base_files_s", "rss_mb", "rss_before_mb", "removed",
                        "chunks"):
                out[f"removed_1pct_{mode}_{key}"] = best[key]
        print(json.dumps(out), flush=True)

        writer_module.COMPACT_MIN_ROWS = 0
        writer_module.COMPACT_FRACTION = 0.0
        t_c, compacted = commit_one("add", 99)
        assert compacted
        out["compaction_commit_s"] = round(t_c, 1)
    out["peak_mb"] = round(peak_mb())
    return out


def rerun(n_files: int) -> dict[str, object]:
    """An unchanged re-run of ingest_folder over ``n_files`` files already in the index."""
    from ingest.pipeline import ingest_folder
    from ingest.split import effective_sizes
    from rag.settings import Settings
    from rag.testing import FakeEncoder
    from rag.text import file_sha256

    memo_tokenizer()
    texts = paragraph_texts()
    enc = FakeEncoder(dimension=DIM)
    settings = Settings(parse_workers=1)  # type: ignore[call-arg]
    size, overlap = effective_sizes(enc.max_tokens, settings.chunk_tokens, settings.chunk_overlap)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        corpus, index = Path(tmp) / "corpus", Path(tmp) / "index"
        old = time.time() - 3600
        t = time.perf_counter()
        # Set up directly with the writer (what a first ingest records), one chunk a file.
        with IndexWriter(index, encoder_name=enc.name, dimension=DIM,
                         max_tokens=enc.max_tokens, chunk_tokens=size, chunk_overlap=overlap) as w:
            for i in range(n_files):
                p = corpus / f"d{i // 1000:02d}" / f"p{i:05d}.txt"
                p.parent.mkdir(parents=True, exist_ok=True)
                source = p.relative_to(corpus).as_posix()
                p.write_text(texts[i % len(texts)])
                os.utime(p, (old, old))
                st = p.stat()
                w.add_file(FileRecord(source, file_sha256(p), 1, 1, now_iso(), st.st_size,
                                      st.st_mtime_ns),
                           make_chunks(source, 1, i, texts), unit_vectors(rng, 1))
            w.commit()
        setup_s = time.perf_counter() - t
        t = time.perf_counter()
        again = ingest_folder(corpus, index, settings, encoder=enc)
        again_s = time.perf_counter() - t
        assert again.files_unchanged == n_files and again.commits == 0, again
        t = time.perf_counter()
        for p in corpus.rglob("*.txt"):
            file_sha256(p)
        hash_s = time.perf_counter() - t
    return {"files": n_files, "setup_s": round(setup_s, 1),
            "unchanged_rerun_s": round(again_s, 2), "hash_all_files_s": round(hash_s, 2)}


def split_copy(src: Path, dst: Path) -> dict[str, object]:
    """Copy index ``src`` into ``dst`` in two commits: half the files in the base, half in
    the delta, for measuring retrieval quality between compactions (``rag eval`` on both)."""
    from rag.store import open_index

    index = open_index(src)
    files = index.files()
    rows_by_source: dict[str, list[int]] = {}
    for r, c in zip(index.rows(), index.chunks(index.rows()), strict=True):
        rows_by_source.setdefault(c.source, []).append(r)
    m = index.manifest
    half = len(files) // 2
    compacted = []
    for part in (files[:half], files[half:]):
        with IndexWriter(dst, encoder_name=m.encoder, dimension=m.dimension,
                         max_tokens=m.max_tokens, chunk_tokens=m.chunk_tokens,
                         chunk_overlap=m.chunk_overlap, index_kind=m.index_kind) as w:
            for f in part:
                rows = rows_by_source.get(f.source, [])
                w.add_file(f, index.chunks(rows), index.vectors(rows))
            w.commit()
            compacted.append(w.compacted)
    index.close()
    return {"files": len(files), "base_files": half, "compacted": compacted}


def open_once(path: Path, mode: str) -> dict[str, float]:
    """Open a reader in this (fresh) process. ``table``: as this release does (the removed
    rows read from their table, flat vectors memory-mapped); ``scan``: every base row
    compared with the live ones instead (an index written before the table, until its
    next write); ``before``: as the previous release did (``scan``, and the flat vectors
    read into memory)."""
    import bm25s  # noqa: F401  (imports are not the open's cost)
    import faiss

    import rag.store.reader as reader_module
    from rag.store.base import Base

    if mode in ("scan", "before"):
        reader_module.read_removed = lambda *_: None  # type: ignore[assignment]
    if mode == "before":
        faiss.IO_FLAG_MMAP_IFC = 0

    load_base = reader_module._load_base
    base_s = []

    def timed(path: Path, dimension: int | None = None) -> Base:
        t = time.perf_counter()
        base = load_base(path, dimension)
        base_s.append(time.perf_counter() - t)
        return base

    reader_module._load_base = timed
    before = rss_mb()
    t = time.perf_counter()
    index = Index(path)
    took = time.perf_counter() - t
    return {"open_s": round(took, 2), "base_files_s": round(sum(base_s), 2),
            "rss_mb": round(rss_mb()), "rss_before_mb": round(before),
            "removed": int(index._removed_dense.size), "chunks": len(index)}


def open_removed(n: int) -> dict[str, object]:
    """Only the open with ~1% of the base removed, at ``n`` rows, cheaply: vectors of
    dimension 8 and two-word texts. The row comparison and the table do not depend on
    either (they read row ids); loading the base files does, so compare ``open_s`` less
    ``base_files_s`` with the full-size runs."""
    dim = 8
    rng = np.random.default_rng(0)
    out: dict[str, object] = {"chunks": n, "kind": "flat", "dimension": dim}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        path = Path(tmp) / "index"
        with writer(path, "flat", dim) as w:
            for f, start in enumerate(range(0, n, PER_FILE)):
                count = min(PER_FILE, n - start)
                source = f"synthetic/{f:05d}.txt"
                chunks = [Chunk(source=source, page=None, start=i, end=i + 1,
                                text=f"{VARIANTS[i % len(VARIANTS)]} k{(start + i) % 997}")
                          for i in range(count)]
                vecs = rng.standard_normal((count, dim)).astype(np.float32)
                w.add_file(record(source, count), chunks, vecs)
            w.commit()
        for mode, best in opens_after_removing(path, n, "flat", dim).items():
            for key in ("open_s", "base_files_s", "rss_mb", "rss_before_mb", "removed"):
                out[f"{mode}_{key}"] = best[key]
    return out


def build_only(path: Path, n: int, kind: str, vectors: str = "random") -> dict[str, object]:
    """Build the index ``one_size`` builds (files of 1,000 chunks, one commit) into ``path``
    and remove ~1% of it, for ``--open`` and ``--query-index`` to measure at leisure.
    ``vectors``: "random" unit vectors, or "paragraph" copies (``paragraph_copies``)."""
    memo_tokenizer()
    texts = paragraph_texts()
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    with writer(path, kind) as w:
        for f, start in enumerate(range(0, n, PER_FILE)):
            count = min(PER_FILE, n - start)
            source = f"synthetic/{f:05d}.txt"
            vecs = (paragraph_copies(rng, start, count) if vectors == "paragraph"
                    else unit_vectors(rng, count))
            w.add_file(record(source, count), make_chunks(source, count, start, texts), vecs)
        w.commit()
    built = time.perf_counter() - t
    with writer(path, kind) as w:
        for f in range(max(1, n // 100_000)):
            w.remove_file(f"synthetic/{f * 7:05d}.txt")
        w.commit()
    return {"chunks": n, "kind": kind, "vectors": vectors, "build_s": round(built, 1)}


def query_index(path: Path, n_queries: int) -> dict[str, object]:
    """The index's own share of a query (vectors embedded beforehand), and its parts."""
    from rag.evaluation.run import BatchedQueryEncoder
    from rag.models.embed import build_encoder
    from rag.retrieval.hybrid import HybridRetriever
    from rag.settings import Settings

    index = Index(path)
    settings = Settings()  # type: ignore[call-arg]
    questions = squad_questions(n_queries)
    enc = BatchedQueryEncoder(build_encoder(settings), questions)
    r = HybridRetriever(index=index, encoder=enc, k=4, fetch_k=settings.fetch_k,
                        rrf_k=settings.rrf_k)
    out: dict[str, object] = {"chunks": len(index), "kind": index.manifest.index_kind,
                              "ef_search": index.ef_search}
    for name, fn in (("hybrid_index_only", r.search),
                     ("dense", lambda q: index.dense_search(enc.embed([q]), settings.fetch_k)),
                     ("bm25", lambda q: index.bm25_search(q, settings.fetch_k))):
        p50, p95 = latency_ms(fn, questions)
        out[f"{name}_p50_ms"] = round(float(p50), 1)
        out[f"{name}_p95_ms"] = round(float(p95), 1)
    out["load_average"] = round(os.getloadavg()[0], 1)
    if index.ef_search is not None:
        out.update(dense_recall(index, enc.embed(questions[:50]), settings.fetch_k))
    index.close()
    return out


def dense_recall(index: Index, queries: np.ndarray, k: int) -> dict[str, float]:
    """The approximate base's recall@10 and @k against exact search over the same live rows."""
    rows = np.asarray(index.rows(), dtype=np.int64)
    best: list[list[tuple[float, int]]] = [[] for _ in queries]
    for start in range(0, len(rows), 100_000):  # in slices: 1M x 384 floats are 1.5 GB
        part = rows[start:start + 100_000]
        sims = index.vectors(part.tolist()) @ queries.T
        for q in range(len(queries)):
            top = np.argsort(-sims[:, q])[:k]
            best[q] = sorted(best[q] + [(float(sims[i, q]), int(part[i])) for i in top],
                             reverse=True)[:k]
    approx = index.dense_search(queries, k)
    r10 = rk = same = 0.0

    def paragraphs(rows: list[int]) -> list[str]:  # the paragraph a synthetic chunk copies
        return [c.text.rpartition(" ~ ")[0] for c in index.chunks(rows[:10])]

    for q in range(len(queries)):
        exact = [r for _, r in best[q]]
        got = [r for r, _ in approx[q]]
        rk += len(set(got) & set(exact)) / k
        r10 += len(set(got[:10]) & set(exact[:10])) / 10
        # Copies of one paragraph are near-ties: which copies come first matters less than
        # whether the same paragraphs do.
        same += len(set(paragraphs(got)) & set(paragraphs(exact))) / len(set(paragraphs(exact)))
    return {"dense_recall_at_10": round(r10 / len(queries), 3),
            f"dense_recall_at_{k}": round(rk / len(queries), 3),
            "dense_paragraph_recall_at_10": round(same / len(queries), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--kind", choices=["flat", "hnsw"], default="hnsw")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rerun-files", type=int, default=10_000)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--build", type=Path, metavar="INDEX",
                        help="only build the first of --sizes (--kind) into INDEX, ~1%% removed")
    parser.add_argument("--vectors", choices=["random", "paragraph"], default="random",
                        help="with --build: random unit vectors, or noisy copies of the real "
                             "embeddings of the paragraphs the chunks copy (for recall)")
    parser.add_argument("--query-index", type=Path, metavar="INDEX",
                        help="only time --queries index-only queries (hybrid, dense, BM25)")
    parser.add_argument("--open-removed", action="store_true",
                        help="only time opening a reader with ~1%% removed, at --sizes, with "
                             "small vectors")
    parser.add_argument("--open", nargs=2, metavar=("INDEX", "MODE"),
                        help="only open INDEX once, MODE 'table', 'scan' or 'before'; print time and RSS")
    parser.add_argument("--split-copy", nargs=2, type=Path, metavar=("SRC", "DST"),
                        help="only copy index SRC to DST with half its files in the delta")
    args = parser.parse_args()
    if args.build:
        print(json.dumps(build_only(args.build, args.sizes[0], args.kind, args.vectors)))
        return 0
    if args.query_index:
        print(json.dumps(query_index(args.query_index, args.queries)))
        return 0
    if args.open_removed:
        for n in args.sizes:
            print(json.dumps(open_removed(n)), flush=True)
        return 0
    if args.open:
        print(json.dumps(open_once(Path(args.open[0]), args.open[1])))
        return 0
    if args.split_copy:
        print(json.dumps(split_copy(*args.split_copy)))
        return 0
    if args.one is not None:
        print(json.dumps(one_size(args.one, args.kind, args.queries)), flush=True)
        return 0
    print(f"machine: {machine()}; {args.kind}; "
          f"{args.queries} queries", flush=True)
    if args.rerun_files:
        print(json.dumps(rerun(args.rerun_files)), flush=True)
    for n in args.sizes:
        # Its own process: peak memory per size, and a failure at 1M keeps the rest. It
        # prints a line after each phase; the last line of a size has all its figures.
        proc = subprocess.run([sys.executable, __file__, "--one", str(n), "--kind", args.kind,
                               "--queries", str(args.queries)], stdout=sys.stdout,
                              stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print(json.dumps({"chunks": n, "error": proc.stderr[-800:]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
