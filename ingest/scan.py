"""Which files of a corpus folder are ingested, and why the others are not.

Only what lies inside the folder is read (symlinks out of it are skipped, with the reason),
and nothing is ignored silently: every file or folder left out is listed with its reason.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.load import SUPPORTED_SUFFIXES

__all__ = ["Candidate", "check_corpus_dir", "scan_folder"]


@dataclass(frozen=True)
class Candidate:
    source: str  # relative to the corpus root, POSIX separators
    path: Path
    size: int
    mtime_ns: int = 0


def check_corpus_dir(corpus_dir: Path) -> Path:
    if not corpus_dir.exists():
        raise FileNotFoundError(f"corpus folder {str(corpus_dir)!r} does not exist")
    if not corpus_dir.is_dir():
        raise NotADirectoryError(f"corpus path {str(corpus_dir)!r} is not a folder")
    return corpus_dir.resolve()


def scan_folder(
    corpus: Path, max_file_mb: float, exclude: Sequence[Path] = ()
) -> tuple[list[Candidate], list[dict[str, str]]]:
    """Files to ingest, and the ones skipped with the reason (nothing is ignored silently).

    Only what lies inside ``corpus`` is read: a symlink (file or folder) whose target is
    outside it is skipped, with the reason. Otherwise `ln -s /etc/passwd c/passwd.txt` in
    a shared folder would index the password file, and `rag ask` would quote it.
    """
    corpus = corpus.resolve()
    excluded = {p.resolve() for p in exclude}
    max_bytes = int(max_file_mb * 1024 * 1024)
    found: list[Candidate] = []
    skipped: list[dict[str, str]] = []

    def skip(rel: str, reason: str) -> None:
        skipped.append({"path": rel, "reason": reason})

    def outside(full: Path) -> str | None:
        """Why ``full`` (a symlink) may not be read, or None when its target is inside."""
        try:
            real = full.resolve(strict=True)
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop
            return "broken symlink (its target does not exist or loops)"
        if not real.is_relative_to(corpus):
            return f"symlink to {real}, outside the folder being ingested (not followed)"
        return None

    def walk_error(e: OSError) -> None:
        where = Path(e.filename or corpus)
        rel = where.relative_to(corpus).as_posix() if where.is_relative_to(corpus) else str(where)
        skip(rel + "/", f"cannot read folder: {e.strerror or e}; its files were not ingested")

    # Symlinked folders inside the corpus are followed, but each real folder is scanned
    # once, so a link back up the tree cannot loop forever.
    visited = {corpus}
    for root, dirs, files in os.walk(corpus, followlinks=True, onerror=walk_error):
        here = Path(root)
        dirs.sort()
        for d in list(dirs):
            full = here / d
            rel = _rel(full, corpus)
            why = outside(full) if full.is_symlink() else None
            real = full.resolve()
            if real in excluded:
                dirs.remove(d)  # the index folder inside the corpus: not a document
            elif d.startswith("."):
                dirs.remove(d)
                skip(rel + "/", "hidden folder (not searched)")
            elif why is not None:
                dirs.remove(d)
                skip(rel + "/", why)
            elif real in visited:
                dirs.remove(d)
                skip(rel + "/", f"links to a folder already scanned ({real})")
            else:
                visited.add(real)
        for name in sorted(files):
            full = here / name
            rel = _rel(full, corpus)
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                skip(rel.encode("utf-8", "replace").decode(), "file name is not valid UTF-8")
                continue
            suffix = full.suffix.lower()
            if name.startswith("."):
                skip(rel, "hidden file")
                continue
            if suffix not in SUPPORTED_SUFFIXES:
                skip(rel, f"unsupported file type {suffix or '(no suffix)'!r}")
                continue
            if full.is_symlink() and (why := outside(full)) is not None:
                skip(rel, why)
                continue
            try:
                st = full.stat()  # follows symlinks: a link to a PDF in the corpus is a PDF
                size = st.st_size
            except OSError as e:
                skip(rel, f"cannot read: {e.strerror or e}")
                continue
            if not stat.S_ISREG(st.st_mode):
                # A FIFO would block the parser forever; a device file never ends.
                skip(rel, "not a regular file (a pipe, socket or device)")
            elif size == 0:
                skip(rel, "empty file (0 bytes)")
            elif size > max_bytes:
                skip(rel, f"{size / 2**20:.1f} MB is larger than max_file_mb={max_file_mb:g}")
            else:
                found.append(Candidate(rel, full, size, st.st_mtime_ns))
    return found, skipped


def _rel(full: Path, corpus: Path) -> str:
    """Path relative to the corpus, as shown to users (the walk stays in the corpus path,
    so this is a plain prefix removal, never a resolve)."""
    return full.relative_to(corpus).as_posix()
