"""Ingestion throughput and memory on real documents, next to plain sentence-transformers.

Ingests the given files/folders (linked into one temporary corpus folder) into a fresh
index and prints: files, pages, chunks, parse seconds (the process-pool parse stage on its
own, and LangChain's PyPDFLoader one file after another for the PDFs, as in the tutorial
pipeline), embed seconds, chunks/s, peak RSS. Then it encodes the same chunk texts with
plain fp32 ``SentenceTransformer(path).encode(batch_size=64)`` (no autocast) and compares
speed and vectors. Retrieval-quality impact (nDCG) is measured by the eval harness.

    python benchmarks/bench_ingest.py \\
        tests/data/pdfs ../shared/evaldata/pdf_samples/py-pdf-sample-files/GeoTopo-komprimiert.pdf
    python benchmarks/bench_ingest.py --parse-only corpora/squad_paragraphs/docs
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from common import ROOT

from ingest.load import failed_job, parse_job
from ingest.parse_plan import limits, plan_parse_jobs
from ingest.pipeline import ingest_folder
from ingest.runner import make_runner
from ingest.scan import scan_folder
from rag.settings import Settings
from rag.store import open_index

# rag.models.embed (torch, sentence-transformers) is imported inside main(): parse workers are
# spawned and re-import this module, and should not pay for torch.

DEFAULT_PATHS = [ROOT / "tests" / "data" / "pdfs", ROOT / "corpora" / "sample"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class ChildRSS:
    """Peak summed RSS of this process's children (the parse workers), sampled.

    ru_maxrss of RUSAGE_CHILDREN is useless here: a spawned child counts the parent's
    whole RSS for the instant between fork and exec.
    """

    def __init__(self, every_s: float = 0.1) -> None:
        import psutil

        self._me = psutil.Process()
        self._every = every_s
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for child in self._me.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # exited between listing and reading
                    total += child.memory_info().rss
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self._stop.wait(self._every)

    def __enter__(self) -> ChildRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def link_corpus(paths: list[Path], into: Path) -> None:
    """One corpus folder of symlinks, so files and folders from anywhere can be ingested."""
    for p in paths:
        p = p.resolve()
        if not p.exists():
            sys.exit(f"error: {p} does not exist")
        name, n = p.name, 1
        while (into / name).exists():
            n += 1
            name = f"{p.stem}-{n}{p.suffix}"
        (into / name).symlink_to(p, target_is_directory=p.is_dir())


def time_parse(corpus: Path, settings: Settings) -> tuple[float, float, int, int]:
    """(pool seconds, serial PyPDFLoader seconds for the PDFs, files, pages)."""
    candidates, _ = scan_folder(corpus, settings.max_file_mb)
    workers = settings.parse_workers or os.cpu_count() or 1
    t = time.perf_counter()
    jobs, _ = plan_parse_jobs(candidates, workers)  # long PDFs cut into page ranges
    runner = make_runner(workers, len(jobs), limits(settings))
    outs = list(runner.map(parse_job, jobs, failed_job))
    pool_s = time.perf_counter() - t
    pages = sum(len(o.document.pages) for o in outs if o.document is not None)
    pdfs = [c.path for c in candidates if c.path.suffix.lower() == ".pdf"]
    ref_s = float("nan")
    if pdfs:
        from langchain_community.document_loaders import PyPDFLoader

        t = time.perf_counter()
        for p in pdfs:
            PyPDFLoader(str(p)).load()
        ref_s = time.perf_counter() - t
    return pool_s, ref_s, len(candidates), pages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", type=Path, help="files or folders (default: "
                    "tests/data/pdfs and corpora/sample)")
    ap.add_argument("--workers", type=int, default=0, help="parse processes (0 = CPU count)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--parse-only", action="store_true", help="measure the parse stage only")
    ap.add_argument("--no-baseline", action="store_true", help="skip plain sentence-transformers")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    paths = args.paths or [p for p in DEFAULT_PATHS if p.exists()]
    settings = Settings(parse_workers=args.workers, embed_batch_size=args.batch_size,  # type: ignore[call-arg]
                        device=args.device)

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        link_corpus(paths, corpus)
        pool_s, ref_s, n_files, n_pages = time_parse(corpus, settings)
        rows: list[tuple[str, str]] = [
            ("inputs", ", ".join(str(p) for p in paths)),
            ("files parsed", str(n_files)),
            ("pages", str(n_pages)),
            (f"parse s, process pool ({settings.parse_workers or 'all'} workers)", f"{pool_s:.2f}"),
            ("parse s, PyPDFLoader serial (PDFs only)", f"{ref_s:.2f}"),
        ]
        if args.parse_only:
            _print(rows)
            return

        from rag.models.embed import build_encoder, default_encoder_path

        t = time.perf_counter()
        encoder = build_encoder(settings)
        load_s = time.perf_counter() - t
        idx = Path(tmp) / "index"
        with ChildRSS() as workers_rss:
            s = ingest_folder(corpus, idx, settings, encoder=encoder, rebuild=True)
        rss_ours = peak_rss_mb()
        rows += [
            ("device / precision", f"{encoder.device} / {encoder.precision}"),
            ("files ok / skipped / failed",
             f"{s.files_ok} / {len(s.files_skipped)} / {len(s.files_failed)}"),
            ("chunks", str(s.chunks)),
            ("encoder load s", f"{load_s:.2f}"),
            ("ingest total s (parse+split+embed+index)", f"{s.seconds:.2f}"),
            ("  waiting for parse s", f"{s.parse_seconds:.2f}"),
            ("  split s", f"{s.split_seconds:.2f}"),
            ("  embed s", f"{s.embed_seconds:.2f}"),
            ("  index write + commit s", f"{s.index_seconds:.2f}"),
            ("chunks/s end to end", f"{s.chunks_per_s:.1f}"),
            ("chunks/s embedding only", f"{s.chunks / max(s.embed_seconds, 1e-9):.1f}"),
            ("peak RSS MB (main, after ingest)", f"{rss_ours:.0f}"),
            ("peak RSS MB (all parse workers together)", f"{workers_rss.peak_mb:.0f}"),
        ]

        index = open_index(idx, encoder)
        ids = index.rows()
        texts = [c.text for c in index.chunks(ids)]
        ours = index.vectors(ids)
        index.close()
        if not args.no_baseline and texts:
            from sentence_transformers import SentenceTransformer

            st = SentenceTransformer(str(default_encoder_path()), device=encoder.device)
            t = time.perf_counter()
            ref = st.encode(texts, batch_size=64, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)
            base_s = time.perf_counter() - t
            cos = np.sum(ours * ref.astype(np.float32), axis=1)
            rows += [
                ("baseline ST fp32 encode s (same chunks, batch 64)", f"{base_s:.2f}"),
                ("baseline chunks/s", f"{len(texts) / base_s:.1f}"),
                ("cosine ours vs baseline: min / mean", f"{cos.min():.4f} / {cos.mean():.4f}"),
                ("peak RSS MB (main, after baseline)", f"{peak_rss_mb():.0f}"),
            ]
        # A second run over the unchanged folder: what an incremental update costs.
        s2 = ingest_folder(corpus, idx, settings, encoder=encoder)
        rows.append(("re-run, nothing changed: s / chunks embedded",
                     f"{s2.seconds:.2f} / {s2.chunks}"))
    _print(rows)


def _print(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"| {'measure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for k, v in rows:
        print(f"| {k:<{width}} | {v} |")


if __name__ == "__main__":
    main()
