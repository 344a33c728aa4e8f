"""How a run's files become parse jobs: long PDFs cut into page ranges, parsed by several
workers at once, their parts merged back into one outcome per file; the workers' limits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ingest.load import ParseJob, ParseOutcome, count_failed, count_job, merge_parts
from ingest.runner import Limits, SerialRunner, StageRunner
from ingest.scan import Candidate
from rag.settings import Settings

#: Long PDFs are parsed in parts of this many pages, by several workers at once, so that
#: one 1,000-page book does not keep a single core busy long after the rest is done.
PAGES_PER_JOB = 24
#: Counting pages opens the PDF: done only for the few largest PDFs (by bytes, at least
#: this big), which is where the long books are.
_SPLIT_MIN_BYTES = 256 * 1024
_SPLIT_MAX_FILES = 64


def plan_parse_jobs(
    todo: Sequence[Candidate], workers: int, ocr: bool = True, runner: StageRunner | None = None
) -> tuple[list[ParseJob], dict[str, int]]:
    """Parse jobs, and how many parts each source was cut into.

    Pages are counted by ``runner``'s workers, under its limits: opening a hostile PDF is
    parsing too, and must not hang or crash this process (a PDF that fails to count is
    parsed whole, and fails there with its reason).
    """
    split: dict[str, int] = {}
    if workers > 1:
        pdfs = [c for c in todo if c.path.suffix.lower() == ".pdf" and c.size >= _SPLIT_MIN_BYTES]
        jobs_ = [(str(c.path), c.source) for c in sorted(pdfs, key=lambda c: -c.size)]
        counts = (runner or SerialRunner()).map(count_job, jobs_[:_SPLIT_MAX_FILES], count_failed)
        for source, n in counts:
            if n is not None and n > PAGES_PER_JOB:
                split[source] = n
    jobs: list[ParseJob] = []
    parts: dict[str, int] = {}
    for c in todo:
        n = split.get(c.source)
        if n is None:
            jobs.append((str(c.path), c.source, None, ocr))
            parts[c.source] = 1
        else:
            ranges = [(i, min(i + PAGES_PER_JOB, n)) for i in range(0, n, PAGES_PER_JOB)]
            jobs.extend((str(c.path), c.source, r, ocr) for r in ranges)
            parts[c.source] = len(ranges)
    return jobs, parts


def n_jobs(todo: Sequence[Candidate]) -> int:
    # One long PDF alone is still worth a pool: its parts run in parallel.
    return len(todo) + sum(1 for c in todo if c.size >= _SPLIT_MIN_BYTES)


def merged_outcomes(results: Iterator[ParseOutcome], parts: dict[str, int]) -> Iterator[ParseOutcome]:
    """Whole-file outcomes from a stream where long PDFs arrive in parts, in any order."""
    waiting: dict[str, list[ParseOutcome]] = {}
    for out in results:
        if parts.get(out.source, 1) == 1:
            yield out
            continue
        got = waiting.setdefault(out.source, [])
        got.append(out)
        if len(got) == parts[out.source]:
            yield merge_parts(waiting.pop(out.source))


def limits(settings: Settings) -> Limits:
    return Limits(timeout_s=settings.parse_timeout_s, memory_mb=settings.parse_memory_mb)
