"""parse -> split -> embed -> store, incrementally: the one ingestion code path.

The CLI (``rag ingest``) and the UI's upload both call :func:`ingest_folder`. A run
re-embeds only files whose content (sha256) is new or changed and drops the chunks of
files that left the folder. A file whose size and mtime match what the index recorded is
not even read (the ``git status`` trick), so an unchanged re-run costs a folder scan.
All writes go through ``rag.store.IndexWriter``: one transaction per commit, so a crash,
kill or Ctrl-C leaves the last committed index intact.

Long runs commit a checkpoint every ``checkpoint_s`` seconds (default 10 minutes): a crash
an hour into embedding thousands of PDFs then loses at most 10 minutes, and the next run
skips the files already committed (their sha256 matches). A commit costs what changed
(plus, now and then, a compaction of the index), so the interval only bounds lost work.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.load import (
    compact_warnings,
    failed_job,
    parse_job,
)
from ingest.parse_plan import limits, merged_outcomes, n_jobs, plan_parse_jobs
from ingest.runner import SerialRunner, StageRunner, make_runner
from ingest.scan import Candidate, check_corpus_dir, scan_folder
from ingest.split import effective_sizes, split_document
from ingest.summary import IngestSummary, ProgressFn
from ingest.transaction import Transaction, trusted_mtime
from rag.models.lazy_encoder import LazyEncoder
from rag.settings import Settings, encoder_name
from rag.store import (
    FileRecord,
    StoreError,
    check_encoder,
    now_iso,
)
from rag.store.backends import store_exists, store_manifest
from rag.text import file_sha256, printable
from rag.types import Chunk, Encoder

log = logging.getLogger(__name__)


CHECKPOINT_S = 600.0
#: Chunks gathered (across files) before embedding, in units of the embedding batch: small
#: files then still fill whole batches, and at most this many vectors wait in memory.
_BATCHES_PER_FLUSH = 8


_RESTAT_FILES = 64
_RESTAT_BYTES = 64 << 20


def _stat_matches(rec: FileRecord, c: Candidate) -> bool:
    return rec.mtime_ns != 0 and rec.size == c.size and rec.mtime_ns == c.mtime_ns


def _sha256_or_none(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


# --- ingest_folder ---------------------------------------------------------------------


def ingest_folder(
    corpus_dir: Path,
    index_dir: Path,
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    rebuild: bool = False,
    progress: ProgressFn | None = None,
    runner: StageRunner | None = None,
    checkpoint_s: float = CHECKPOINT_S,
) -> IngestSummary:
    """Bring the index at ``index_dir`` up to date with the files under ``corpus_dir``.

    Raises FileNotFoundError/NotADirectoryError for a bad corpus folder and
    ``rag.store.StoreError`` subclasses for index problems (locked, built with another
    encoder); problems with single files end up in the summary instead.
    """
    t0 = time.perf_counter()
    corpus = check_corpus_dir(corpus_dir)
    given_encoder = encoder  # Ray workers get a copy of it, else load the model themselves
    if encoder is None:
        recorded = _known_encoder(settings, index_dir, rebuild)
        if recorded is None:  # a new index, or another encoder: its figures come from the model
            from rag.models.embed import build_encoder  # deferred: loads torch and the model

            encoder = build_encoder(settings)
        else:  # loaded only when something needs embedding: an unchanged re-run never does
            lazy: Encoder = LazyEncoder(settings, recorded)
            encoder = lazy
    size, overlap = effective_sizes(
        encoder.max_tokens, settings.chunk_tokens, settings.chunk_overlap
    )
    report: ProgressFn = progress or (lambda stage, done, total: None)

    candidates, skipped = scan_folder(corpus, settings.max_file_mb, exclude=[index_dir])
    summary = IngestSummary(index=str(index_dir), files_skipped=skipped)
    for s in skipped:
        log.warning("skipped %s: %s", printable(s["path"]), s["reason"])

    writer_args: dict[str, object] = dict(
        encoder_name=encoder.name, dimension=encoder.dimension, max_tokens=encoder.max_tokens,
        chunk_tokens=size, chunk_overlap=overlap, index_kind=settings.index_kind,
        hnsw_m=settings.hnsw_m, corpus_root=str(corpus),
    )
    with Transaction(index_dir, writer_args, rebuild, settings) as txn:
        known = txn.writer.files()
        present = {c.source for c in candidates}
        for source in sorted(set(known) - present):
            txn.writer.remove_file(source)
            summary.files_removed += 1
            txn.dirty = True
        todo: list[Candidate] = []
        restat: list[Candidate] = []
        for c in candidates:
            rec = known.get(c.source)
            if rec is not None and _stat_matches(rec, c):
                summary.files_unchanged += 1
            elif rec is not None and rec.sha256 == _sha256_or_none(c.path):
                summary.files_unchanged += 1
                # Touched (or indexed before stats were kept) but unchanged: record its
                # stat so the next run skips it; a file still being written waits.
                if (mtime := trusted_mtime(c)) != 0:
                    txn.writer.set_file_stat(c.source, c.size, mtime)
                    restat.append(c)
            else:
                todo.append(c)  # unreadable files too: parsing reports why
        # New stats ride along with the next commit; they are worth one of their own only
        # when the next run would otherwise re-read a lot.
        if len(restat) >= _RESTAT_FILES or sum(c.size for c in restat) >= _RESTAT_BYTES:
            txn.dirty = True
        if settings.ingest_engine == "ray":
            from ingest.ray_engine import ingest_files_ray  # Ray only on this path

            ingest_files_ray(todo, known, txn, given_encoder, settings, size, overlap, summary,
                             report, checkpoint_s)
        else:
            _ingest_files(todo, known, txn, encoder, settings, size, overlap, summary, report,
                          runner or make_runner(settings.parse_workers, n_jobs(todo),
                                                limits(settings)),
                          checkpoint_s)
        if txn.dirty:
            t = time.perf_counter()
            report("index", 0, 1)
            txn.commit(reopen=False)
            report("index", 1, 1)
            summary.index_seconds += time.perf_counter() - t
        files = txn.writer.files()
    summary.commits = txn.commits
    summary.total_files = len(files)
    summary.total_chunks = sum(f.chunks for f in files.values())
    return summary.finish(t0)


def _known_encoder(settings: Settings, index_dir: Path, rebuild: bool) -> tuple[int, int] | None:
    """(dimension, max_tokens) of the configured encoder as the index records them, when
    the index exists and was built with it; None means: load the model to know."""
    if rebuild:
        return None
    try:
        m = store_manifest(settings, index_dir)
    except (StoreError, OSError, ValueError):
        return None  # no index yet (IndexMissingError), or the writer will say what is wrong
    return (m.dimension, m.max_tokens) if m.encoder == encoder_name(settings) else None


@dataclass
class _Pending:
    """Parsed and split files waiting for their vectors."""

    files: list[tuple[FileRecord, list[Chunk]]] = field(default_factory=list)
    n_chunks: int = 0


def _ingest_files(
    todo: list[Candidate],
    known: dict[str, FileRecord],
    txn: Transaction,
    encoder: Encoder,
    settings: Settings,
    size: int,
    overlap: int,
    summary: IngestSummary,
    report: ProgressFn,
    runner: StageRunner,
    checkpoint_s: float,
) -> None:
    batch = settings.embed_batch_size
    pending = _Pending()
    split_total = 0
    last_commit = time.perf_counter()

    def flush() -> None:
        nonlocal last_commit
        if not pending.files:
            return
        texts = [c.indexed_text for _, chunks in pending.files for c in chunks]
        vectors = np.empty((len(texts), encoder.dimension), dtype=np.float32)
        t = time.perf_counter()
        for i in range(0, len(texts), batch):
            vectors[i : i + batch] = encoder.embed(texts[i : i + batch])
            summary.chunks += len(texts[i : i + batch])
            report("embed", summary.chunks, split_total)
        t2 = time.perf_counter()
        summary.embed_seconds += t2 - t
        row = 0
        for record, chunks in pending.files:
            txn.writer.add_file(record, chunks, vectors[row : row + len(chunks)])
            row += len(chunks)
            summary.files_ok += 1
        txn.dirty = True
        pending.files.clear()
        pending.n_chunks = 0
        if time.perf_counter() - last_commit >= checkpoint_s:
            txn.commit(reopen=True)
            last_commit = time.perf_counter()
            log.info("checkpoint: committed %d files so far", summary.files_ok)
        summary.index_seconds += time.perf_counter() - t2

    stat = {c.source: c for c in todo}
    workers = settings.parse_workers or os.cpu_count() or 1
    jobs, parts = plan_parse_jobs(todo, workers if not isinstance(runner, SerialRunner) else 1,
                                  settings.ocr, runner)
    results = merged_outcomes(runner.map(parse_job, jobs, failed_job), parts)
    report("parse", 0, len(todo))
    for done in range(1, len(todo) + 1):
        t = time.perf_counter()
        out = next(results)
        summary.parse_seconds += time.perf_counter() - t
        report("parse", done, len(todo))
        # One line per kind of problem, not one per page: a 200-page file of vector
        # drawings would otherwise print 200 lines. A file that failed as a whole has its
        # reason, which sums its pages up.
        for w in compact_warnings(out.warnings) if out.document is not None else []:
            summary.warnings.append({"path": out.source, "reason": w})
            log.warning("%s: %s", printable(out.source), w)
        chunks: list[Chunk] = []
        error = out.error
        if out.document is not None:
            summary.pages += len(out.document.pages)
            t = time.perf_counter()
            chunks = split_document(out.document, encoder, size, overlap,
                                    headers=settings.chunk_headers)
            summary.split_seconds += time.perf_counter() - t
            if not chunks:
                error = "no indexable text (the encoder's tokenizer found no tokens)"
        if error is not None:
            summary.files_failed.append({"path": out.source, "reason": error})
            log.warning("failed %s: %s", printable(out.source), error)
            if out.source in known:
                # Its old chunks describe content the file no longer has.
                txn.writer.remove_file(out.source)
                summary.files_removed += 1
                txn.dirty = True
            continue
        assert out.document is not None
        c = stat[out.source]
        record = FileRecord(source=out.source, sha256=out.sha256, pages=len(out.document.pages),
                            chunks=len(chunks), added_at=now_iso(), size=c.size,
                            mtime_ns=trusted_mtime(c))
        pending.files.append((record, chunks))
        pending.n_chunks += len(chunks)
        split_total += len(chunks)
        if pending.n_chunks >= batch * _BATCHES_PER_FLUSH:
            flush()
    flush()


# --- remove_documents ------------------------------------------------------------------


def remove_documents(
    corpus_dir: Path,
    index_dir: Path,
    settings: Settings,
    sources: Sequence[str],
    *,
    encoder: Encoder | None = None,
) -> IngestSummary:
    """Delete files (paths relative to the corpus root) from the folder and the index.

    The index is committed first, then the files are deleted: if we die in between, the
    next ingest simply adds the files back, and no search ever returns a deleted file.
    ``encoder`` is only used to check that the index belongs to it; the writer settings
    come from the index itself, so no model needs loading.
    """
    t0 = time.perf_counter()
    corpus = check_corpus_dir(corpus_dir)
    summary = IngestSummary(index=str(index_dir))
    targets: list[tuple[str, Path]] = []
    for source in sources:
        # normpath, not resolve: a symlink in the corpus is removed itself, not its target.
        full = Path(os.path.normpath(corpus / source))
        if not full.is_relative_to(corpus) or full == corpus:
            summary.files_failed.append(
                {"path": source, "reason": "not a file inside the corpus folder"}
            )
            continue
        targets.append((full.relative_to(corpus).as_posix(), full))

    in_index: set[str] = set()
    if store_exists(settings, index_dir):
        m = store_manifest(settings, index_dir)
        if encoder is not None:
            check_encoder(m, index_dir, encoder.name, encoder.dimension)
        writer_args: dict[str, object] = dict(
            encoder_name=m.encoder, dimension=m.dimension, max_tokens=m.max_tokens,
            chunk_tokens=m.chunk_tokens, chunk_overlap=m.chunk_overlap, index_kind=m.index_kind,
            hnsw_m=settings.hnsw_m, corpus_root=m.corpus_root or str(corpus),
        )
        with Transaction(index_dir, writer_args, False, settings) as txn:
            known = txn.writer.files()
            for source, _ in targets:
                if source in known:
                    txn.writer.remove_file(source)
                    in_index.add(source)
            if in_index:
                txn.commit(reopen=False)
            files = txn.writer.files()
        summary.commits = txn.commits
        summary.total_files = len(files)
        summary.total_chunks = sum(f.chunks for f in files.values())

    for source, full in targets:
        try:
            full.unlink()
        except FileNotFoundError:
            if source not in in_index:
                summary.files_failed.append(
                    {"path": source, "reason": "not in the corpus folder nor in the index"}
                )
                continue
        except OSError as e:
            summary.files_failed.append(
                {"path": source, "reason": f"cannot delete: {e.strerror or e}"}
            )
            continue
        summary.files_removed += 1
    return summary.finish(t0)
