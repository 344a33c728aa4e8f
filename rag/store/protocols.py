"""The narrow interface of a store: what a server vector database implements next.

docchat's own store (SQLite + FAISS + BM25 in a folder) is one implementation; a
Milvus or pgvector one would implement the same two protocols, and ingestion and
retrieval would not change. Rows are the store's ids for chunks; a server store may use
its own primary keys, as long as ``chunks``/``vectors`` accept what the searches return.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

from rag.store.manifest import FileRecord, Manifest
from rag.types import Chunk, FloatArray


class IndexReader(Protocol):
    """One consistent revision of a collection, for searching."""

    manifest: Manifest

    def __len__(self) -> int: ...

    def files(self) -> list[FileRecord]: ...

    def dense_search(self, vectors: FloatArray, k: int) -> list[list[tuple[int, float]]]:
        """Per query vector (unit length): up to ``k`` (row, cosine) pairs, best first."""
        ...

    def bm25_search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` (row, BM25 score) pairs for a keyword query, best first."""
        ...

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        """The chunks of ``rows``, in that order."""
        ...

    def document_chunks(self, source: str) -> list[Chunk]:
        """Every chunk of one document, in reading order (page, then offset): for answers
        built from a whole document (a summary, a list), not from the top k."""
        ...

    def vectors(self, rows: Sequence[int]) -> FloatArray: ...

    def close(self) -> None: ...


class IndexTransaction(Protocol):
    """Adds and removes whole documents; nothing is visible to readers before ``commit``.

    Used as a context manager: leaving it without ``commit()`` discards the changes.
    """

    def __enter__(self) -> IndexTransaction: ...

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def files(self) -> dict[str, FileRecord]: ...

    def add_file(self, record: FileRecord, chunks: Sequence[Chunk], vectors: FloatArray
                 ) -> None:
        """Add (or replace) one document's chunks with their vectors."""
        ...

    def remove_file(self, source: str) -> None: ...

    def commit(self) -> Manifest: ...
