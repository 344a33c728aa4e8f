"""Collections: a named index plus the folder of documents it was built from.

Layout (one folder per collection under ``settings.indexes_dir``)::

    indexes_dir/NAME/            the index (CURRENT, gen-*/, .lock; see docs/architecture.md)
    indexes_dir/NAME/documents/  the corpus folder: uploads land here, ingestion reads here

The app (ui/) and the HTTP API (api/) both manage collections through this module, so a
collection made by one is served by the other. (Named ``collection`` rather than
``collections``, which would shadow the standard library on a script's ``sys.path``.)
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.settings import Settings

if TYPE_CHECKING:
    from ingest.jobs import Job
    from rag.store import FileRecord

DOCUMENTS_FOLDER = "documents"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")


class CollectionNameError(ValueError):
    """A collection name the user typed is not a plain folder name."""


@dataclass(frozen=True)
class Collection:
    name: str
    index_dir: Path

    @property
    def documents_dir(self) -> Path:
        return self.index_dir / DOCUMENTS_FOLDER


def validate_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise CollectionNameError(
            f"collection name {name!r} is not allowed: use 1-48 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def collection(settings: Settings, name: str) -> Collection:
    return Collection(validate_name(name), settings.index_path(validate_name(name)))


def list_collections(settings: Settings) -> list[str]:
    """Names of the collections on disk (folders with a documents folder or an index)."""
    root = settings.indexes_dir
    if not root.is_dir():
        return []
    names = []
    for p in sorted(root.iterdir()):
        if not p.is_dir() or not _NAME.match(p.name):
            continue
        if (p / DOCUMENTS_FOLDER).is_dir() or (p / "CURRENT").is_file():
            names.append(p.name)
    return names


def create_collection(settings: Settings, name: str) -> Collection:
    """Make an empty collection; an existing one with that name is an error."""
    c = collection(settings, name)
    if c.index_dir.exists():
        raise CollectionNameError(f"a collection named {c.name!r} already exists")
    c.documents_dir.mkdir(parents=True)
    return c


def delete_collection(settings: Settings, name: str) -> None:
    """Remove the collection's folder: its index and its documents.

    The caller makes sure no ingestion job is writing to it. Renamed aside first, so a
    crash half-way leaves a hidden folder rather than a half-deleted collection that
    ``list_collections`` would still show.
    """
    c = collection(settings, name)
    if not c.index_dir.is_dir():
        raise FileNotFoundError(f"no collection named {c.name!r}")
    trash = c.index_dir.with_name(f".deleted-{c.name}-{uuid.uuid4().hex[:8]}")
    c.index_dir.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def document_files(c: Collection) -> list[str]:
    """Documents in the corpus folder (POSIX paths relative to it), hidden files excluded."""
    if not c.documents_dir.is_dir():
        return []
    out = []
    for p in sorted(c.documents_dir.rglob("*")):
        rel = p.relative_to(c.documents_dir)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append(rel.as_posix())
    return out


def index_revision(c: Collection, settings: Settings | None = None) -> str:
    """Names the live revision of the index; changes whenever a writer commits ("" when
    there is no index yet).

    Used as a cache key so every session picks up a re-ingested index on its next run.
    For the folder store, the CURRENT file is the atomic switch described in
    docs/architecture.md; a server store (``settings.store``) keeps its own revision.
    """
    if settings is not None and settings.store != "faiss":
        from rag.store import StoreError
        from rag.store.backends import store_revision

        try:
            return store_revision(settings, c.index_dir)
        except StoreError:
            return ""
    try:
        return (c.index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class DocumentState:
    """One document of a collection as a user sees it: indexed, or waiting in the folder."""

    name: str  # POSIX path relative to the documents folder (= the index's source)
    pages: int | None
    chunks: int | None
    added_at: str  # ISO 8601 UTC, "" when not indexed
    status: str  # "ready", "processing", "waiting" or "not added"
    reason: str = ""  # why a file was not added


def document_states(
    records: Sequence[FileRecord], on_disk: Sequence[str], job: Job | None
) -> list[DocumentState]:
    """Indexed documents plus files waiting in the folder (being ingested, or failed)."""
    failed: dict[str, str] = {}
    if job is not None and not job.running and job.summary is not None:
        for item in [*job.summary.files_failed, *job.summary.files_skipped]:
            failed[str(item["path"])] = str(item["reason"])
    states = [DocumentState(r.source, r.pages, r.chunks, r.added_at, "ready") for r in records]
    indexed = {r.source for r in records}
    for name in on_disk:
        if name in indexed:
            continue
        if job is not None and job.running:
            states.append(DocumentState(name, None, None, "", "processing"))
        elif name in failed:
            states.append(DocumentState(name, None, None, "", "not added", failed[name]))
        else:
            states.append(DocumentState(name, None, None, "", "waiting"))
    return states
