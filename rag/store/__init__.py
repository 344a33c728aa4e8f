"""The index on disk (see ``layout`` for the files, docs/architecture.md for the design).

Read side: ``open_index(path) -> Index``. Write side: ``IndexWriter`` (one writer at a
time, one transaction per commit). Both sit behind the protocols in ``protocols``, the
seam where a server vector database can replace this store. Nothing here uses pickle: a
user may be handed an index folder by someone else.
"""

from rag.store.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    StoreError,
)
from rag.store.keyword import bm25_tokenize
from rag.store.layout import index_exists, read_manifest
from rag.store.manifest import VERSION, FileRecord, Manifest, check_encoder, now_iso
from rag.store.protocols import IndexReader, IndexTransaction
from rag.store.reader import Index, open_index
from rag.store.writer import IndexWriter, no_writer_running

__all__ = [
    "VERSION",
    "FileRecord",
    "Index",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexMissingError",
    "IndexReader",
    "IndexTransaction",
    "IndexWriter",
    "Manifest",
    "StoreError",
    "bm25_tokenize",
    "check_encoder",
    "index_exists",
    "no_writer_running",
    "now_iso",
    "open_index",
    "read_manifest",
]
