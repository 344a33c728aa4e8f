"""The write side of an ingest run, shared by the local pipeline and the Ray engine.

``Transaction``: the store's writer, committing a checkpoint now and then and carrying on
in a fresh generation; ``trusted_mtime``: the mtime a file record may keep.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType

from ingest.scan import Candidate
from rag.settings import Settings
from rag.store import IndexWriter
from rag.store.backends import open_writer, store_exists

#: A file modified this close to when it was read may change again within the same mtime
#: tick: its stat is not trusted next time (it is hashed).
RACY_NS = 2_000_000_000



def trusted_mtime(c: Candidate) -> int:
    return 0 if time.time_ns() - c.mtime_ns < RACY_NS else c.mtime_ns



class Transaction:
    """An IndexWriter that can commit a checkpoint and carry on in a fresh generation."""

    def __init__(self, index_dir: Path, writer_args: dict[str, object], rebuild: bool,
                 settings: Settings) -> None:
        self.index_dir = index_dir
        self.writer_args = writer_args
        self.settings = settings  # RAG_STORE: the FAISS folder or a Milvus server
        self.writer = self._open(rebuild)
        self.dirty = rebuild or not store_exists(settings, index_dir)
        self.commits = 0

    def _open(self, rebuild: bool) -> IndexWriter:
        w: IndexWriter = open_writer(self.settings, self.index_dir, rebuild=rebuild, **self.writer_args)
        w.__enter__()
        return w

    def commit(self, reopen: bool) -> None:
        if reopen:
            # Keeps the lock across the checkpoint: no other writer can slip in between.
            self.writer.checkpoint()
        else:
            self.writer.commit()
            self.writer.__exit__(None, None, None)
        self.commits += 1
        self.dirty = False

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.writer.__exit__(et, ev, tb)  # discards uncommitted work


