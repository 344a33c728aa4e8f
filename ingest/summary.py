"""What one ingest run did: the summary the CLI prints, the API returns and the app shows,
and the progress callback the pipeline drives."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

ProgressFn = Callable[[str, int, int], None]  # (stage "parse"|"embed"|"index", done, total)


@dataclass
class IngestSummary:
    index: str = ""
    files_ok: int = 0  # parsed, split and embedded in this run
    files_unchanged: int = 0  # same sha256 as in the index: nothing to do
    files_removed: int = 0  # gone from the folder (or now unreadable): chunks removed
    files_skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    files_failed: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    warnings: list[dict[str, str]] = field(default_factory=list)  # ingested, but e.g. a blank page
    pages: int = 0  # pages parsed in this run
    chunks: int = 0  # chunks embedded in this run
    total_files: int = 0  # in the index after the run
    total_chunks: int = 0
    commits: int = 0
    seconds: float = 0.0
    chunks_per_s: float = 0.0
    # Where the time went (main process): waiting for parse results, splitting,
    # embedding, and writing/committing the index.
    parse_seconds: float = 0.0
    split_seconds: float = 0.0
    embed_seconds: float = 0.0
    index_seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        for k in ("seconds", "chunks_per_s", "parse_seconds", "split_seconds",
                  "embed_seconds", "index_seconds"):
            d[k] = round(float(d[k]), 3)
        return d

    def finish(self, t0: float) -> IngestSummary:
        self.seconds = time.perf_counter() - t0
        self.chunks_per_s = self.chunks / self.seconds if self.seconds > 0 else 0.0
        return self
