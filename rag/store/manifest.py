"""What an index records about itself: the settings it was built with and its files."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rag.store.errors import IndexMismatchError

FORMAT = "docchat-index"
#: 2: one SQLite store (WAL) for every generation, FAISS/BM25 bases plus a delta, file
#: size and mtime recorded. Version 1 indexes (a full copy per generation) are upgraded
#: in place by the next write, without re-embedding.
VERSION = 2

#: The settings that make two writes compatible: chunks of one must be searchable beside
#: chunks of the other.
SETTING_KEYS = ("encoder", "dimension", "max_tokens", "chunk_tokens", "chunk_overlap",
                "index_kind")


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class FileRecord:
    source: str
    sha256: str
    pages: int
    chunks: int
    added_at: str
    # What the file looked like when it was hashed: an unchanged size and mtime lets the
    # next ingest skip reading it (0 = unknown, hash it).
    size: int = 0
    mtime_ns: int = 0


@dataclass(frozen=True)
class Manifest:
    encoder: str
    dimension: int
    max_tokens: int
    chunk_tokens: int
    chunk_overlap: int
    index_kind: str
    corpus_root: str = ""
    files: dict[str, FileRecord] = field(default_factory=dict)
    created_at: str = ""
    version: int = VERSION
    revision: int = 0  # commits so far; every commit adds one

    @property
    def chunk_count(self) -> int:
        return sum(f.chunks for f in self.files.values())


def check_encoder(manifest: Manifest, path: Path, encoder_name: str, dimension: int) -> None:
    if manifest.encoder != encoder_name or manifest.dimension != dimension:
        raise IndexMismatchError(
            f"index {path} was built with encoder {manifest.encoder!r} (dimension "
            f"{manifest.dimension}), but the configured encoder is {encoder_name!r} (dimension "
            f"{dimension}). Set RAG_ENCODER_MODEL={manifest.encoder!r} to use it, or rebuild it "
            f"with `rag ingest CORPUS_DIR --index {path} --rebuild`."
        )
