"""Ingestion in the background, so the app and the HTTP API stay responsive meanwhile.

A Streamlit script run is interrupted whenever the user clicks anything, and an HTTP
request should not hold a connection open for minutes; running a long ingestion inside
either would freeze it or cut it off half-way. Instead each job runs in its own thread;
the page (or an API client) polls its progress, and answers keep coming from the last
committed index, which the index writer swaps atomically when the job commits. One job per
collection at a time: the index has one writer; uploads arriving meanwhile queue one
follow-up job (``enqueue``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.summary import IngestSummary, ProgressFn

log = logging.getLogger(__name__)

#: Share of the bar each ingestion stage fills, in order: embedding dominates the time.
STAGE_SPAN: dict[str, tuple[float, float]] = {
    "parse": (0.0, 0.25),
    "embed": (0.25, 0.9),
    "index": (0.9, 1.0),
}
STAGE_LABEL = {
    "parse": "Reading documents",
    "embed": "Embedding passages",
    "index": "Building the index",
}


class JobBusyError(RuntimeError):
    """A job is already running on this collection."""


@dataclass
class Job:
    collection: str
    label: str  # what the user asked for, e.g. "Adding 3 documents"
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: float = field(default_factory=time.monotonic)
    stage: str = ""
    done_units: int = 0
    total_units: int = 0
    summary: IngestSummary | None = None
    error: str | None = None
    queued: bool = False  # waiting for the collection's running job (JobBoard.enqueue)
    finished: threading.Event = field(default_factory=threading.Event)

    def report(self, stage: str, done: int, total: int) -> None:
        # Called from the worker thread; plain attribute writes are atomic in CPython and
        # the page only reads them, so no lock is needed for a progress display.
        self.stage, self.done_units, self.total_units = stage, done, total

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    @property
    def fraction(self) -> float:
        lo, hi = STAGE_SPAN.get(self.stage, (0.0, 0.0))
        within = self.done_units / self.total_units if self.total_units > 0 else 0.0
        return max(0.0, min(1.0, lo + (hi - lo) * within))

    @property
    def progress_text(self) -> str:
        if not self.stage:
            return f"{self.label}: starting…"
        label = STAGE_LABEL.get(self.stage, self.stage)
        count = f" {self.done_units}/{self.total_units}" if self.total_units else ""
        return f"{self.label}: {label}{count}"

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class JobBoard:
    """The jobs of this process, shared by all sessions (one board per server)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, Job] = {}
        # At most one follow-up per collection, with its work: it re-reads the whole folder,
        # so one run picks up every file that arrived while the current job ran.
        self._next: dict[str, tuple[Job, Callable[[ProgressFn], IngestSummary]]] = {}

    def last(self, collection: str) -> Job | None:
        """The running job of the collection, else the last one that finished."""
        with self._lock:
            return self._last.get(collection)

    def queued(self, collection: str) -> Job | None:
        """The follow-up job waiting for the running one, if any."""
        with self._lock:
            pending = self._next.get(collection)
            return None if pending is None else pending[0]

    def find(self, job_id: str) -> Job | None:
        """The job with this id, while it is its collection's latest."""
        with self._lock:
            return next((j for j in self._last.values() if j.id == job_id), None)

    def forget(self, collection: str) -> None:
        """Drop a finished job's record (its collection was deleted)."""
        with self._lock:
            job = self._last.get(collection)
            if job is not None and not job.running:
                del self._last[collection]

    def running(self, collection: str) -> bool:
        job = self.last(collection)
        return job is not None and job.running

    def start(self, collection: str, label: str, work: Callable[[ProgressFn], IngestSummary]) -> Job:
        with self._lock:
            current = self._last.get(collection)
            if current is not None and current.running:
                raise JobBusyError(
                    f"{current.label.lower()} is still running on {collection!r}; wait for it to finish"
                )
            job = Job(collection, label)
            self._last[collection] = job
        self._launch(job, work)
        return job

    def enqueue(self, collection: str, label: str, work: Callable[[ProgressFn], IngestSummary]) -> Job:
        """Start the job now, or, while another runs on the collection, as its follow-up.

        For work that reads the collection's current files (an upload's ingestion): a
        follow-up already waiting covers the new files too, so it is returned as is (with a
        label saying it now carries more than one request).
        """
        with self._lock:
            current = self._last.get(collection)
            if current is None or not current.running:
                job = Job(collection, label)
                self._last[collection] = job
            else:
                pending = self._next.get(collection)
                if pending is not None:
                    pending[0].label = "Adding the documents uploaded meanwhile"
                    return pending[0]
                queued = Job(collection, label, queued=True)
                self._next[collection] = (queued, work)
                return queued
        self._launch(job, work)
        return job

    def _launch(self, job: Job, work: Callable[[ProgressFn], IngestSummary]) -> None:
        thread = threading.Thread(
            target=self._run, args=(job, work), name=f"ingest-{job.collection}", daemon=True
        )
        thread.start()

    def _run(self, job: Job, work: Callable[[ProgressFn], IngestSummary]) -> None:
        try:
            job.summary = work(job.report)
        except Exception as e:
            # The thread boundary: nothing above us would see the exception, so every
            # failure becomes the job's message (the full traceback goes to the server log).
            log.exception("job %s on %s failed", job.label, job.collection)
            job.error = str(e) or type(e).__name__
        finally:
            # Hand over under the lock: an enqueue either sees this job running (and queues)
            # or sees it finished (and starts its own), never neither.
            with self._lock:
                follow = self._next.pop(job.collection, None)
                if follow is not None:
                    follow[0].queued = False
                    follow[0].started = time.monotonic()
                    self._last[job.collection] = follow[0]
                job.finished.set()
            if follow is not None:
                self._launch(*follow)

    def wait(self, collection: str, timeout: float) -> bool:
        """Block until the collection's job, and its follow-up, are done (tests and
        scripts); True if they are."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.last(collection)
            if job is None:
                return True
            if not job.finished.wait(max(0.0, deadline - time.monotonic())):
                return False
            if self.last(collection) is job:
                return True
