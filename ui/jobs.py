"""The app's job board is the shared one in ``ingest.jobs`` (the HTTP API uses it too)."""

from ingest.jobs import Job, JobBoard, JobBusyError

__all__ = ["Job", "JobBoard", "JobBusyError"]
