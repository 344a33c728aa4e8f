"""Errors of the index; every message names the index, the reason and what to do."""

from __future__ import annotations

from pathlib import Path

from rag.text import printable


class StoreError(Exception):
    """Base of the index errors."""


class IndexMissingError(StoreError):
    """No index at that path yet."""


class IndexLockedError(StoreError):
    """Another writer holds the index."""


class IndexMismatchError(StoreError):
    """The index was built with other settings, another encoder or an older format."""


class IndexCorruptError(StoreError):
    """Files of the index are missing or damaged: a rebuild is the way out."""


class IndexUnwritableError(StoreError):
    """The index folder cannot be created or written (permissions, a file in the way, a
    full disk)."""


def rebuild_hint(path: Path) -> str:
    return f"rebuild it with `rag ingest CORPUS_DIR --index {shown(path)} --rebuild`"


def corrupt(path: Path, why: str) -> IndexCorruptError:
    """The one wording of "this index is damaged", with the command that repairs it."""
    return IndexCorruptError(f"index {shown(path)} is damaged ({why}); {rebuild_hint(path)}")


def shown(path: Path | str) -> str:
    """A path as it can be printed on one line (see ``rag.text.printable``)."""
    return printable(path)


def unwritable(path: Path, e: OSError) -> IndexUnwritableError:
    what = shown(e.filename) if e.filename else shown(path)
    return IndexUnwritableError(
        f"cannot write the index at {shown(path)} ({what}: {e.strerror or e}); choose another "
        "--index folder, or free space / fix its permissions"
    )
