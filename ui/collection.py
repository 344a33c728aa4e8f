"""Collections: a named index plus the folder of documents it was built from.

Layout (one folder per collection under ``settings.indexes_dir``)::

    indexes_dir/NAME/            the index (CURRENT, gen-*/, .lock; see docs/architecture.md)
    indexes_dir/NAME/documents/  the corpus folder: uploads land here, ingestion reads here

The default collection ("sample") is seeded by copying the repository's sample corpus into
its documents folder, so uploads never modify ``corpora/``.

(Named ``collection`` rather than ``collections``: Streamlit puts the script's folder on
``sys.path``, where a ``collections.py`` would shadow the standard library.)
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rag.settings import Settings

DEFAULT_COLLECTION = "sample"
DOCUMENTS_FOLDER = "documents"
#: The sample corpus the default collection starts from (tests point this elsewhere).
SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "sample"

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


def seed_sample(settings: Settings, sample_corpus: Path | None = None) -> Collection:
    """The default collection, its documents folder filled from the sample corpus once.

    Copies into a temporary folder and renames it into place, so a crash (or a second
    session starting at the same moment) never leaves a half-copied corpus.
    """
    src = SAMPLE_CORPUS if sample_corpus is None else sample_corpus
    c = collection(settings, DEFAULT_COLLECTION)
    if c.documents_dir.is_dir():
        return c
    c.index_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".seed-", dir=c.index_dir))
    try:
        if src.is_dir():
            for p in sorted(src.iterdir()):
                if p.name.startswith("."):
                    continue
                if p.is_dir():
                    shutil.copytree(p, tmp / p.name)
                else:
                    shutil.copy2(p, tmp / p.name)
        try:
            tmp.rename(c.documents_dir)
        except OSError:
            # Another session seeded it first: theirs is as good as ours.
            if not c.documents_dir.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return c


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


def index_revision(c: Collection) -> str:
    """Names the live generation of the index; changes whenever a writer commits.

    Used as a cache key so every session picks up a re-ingested index on its next run.
    The CURRENT file is the atomic switch described in docs/architecture.md.
    """
    try:
        return (c.index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except OSError:
        return ""
