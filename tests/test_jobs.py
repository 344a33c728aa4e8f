"""Background jobs: progress, one writer per collection, failures become messages."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ingest.jobs import JobBoard, JobBusyError
from ingest.summary import IngestSummary


def test_progress_and_result() -> None:
    board = JobBoard()
    gate = threading.Event()
    result = IngestSummary(files_ok=2)

    def work(progress: Any) -> Any:
        progress("parse", 1, 2)
        gate.wait(5)
        progress("embed", 5, 10)
        return result

    job = board.start("c", "Adding 2 documents", work)
    with pytest.raises(JobBusyError, match="still running on 'c'"):
        board.start("c", "Removing 1 document", work)
    board.start("other", "Adding 1 document", lambda p: result)  # other collections are free
    assert job.running and board.running("c")
    gate.set()
    assert board.wait("c", 5)
    assert not job.running and job.summary is result and job.error is None
    assert job.stage == "embed" and job.fraction == pytest.approx(0.25 + 0.65 * 0.5)
    assert "Embedding passages 5/10" in job.progress_text
    assert board.last("c") is job


def test_failure_is_a_message() -> None:
    board = JobBoard()

    def work(progress: Any) -> Any:
        raise OSError("disk full while writing /x")

    job = board.start("c", "Adding 1 document", work)
    assert board.wait("c", 5)
    assert job.error == "disk full while writing /x" and job.summary is None
    # After a failure the collection accepts a new job.
    board.start("c", "Adding 1 document", lambda p: IngestSummary())
    assert board.wait("c", 5)
