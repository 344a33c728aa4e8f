"""Saving uploaded files into a collection's documents folder, safely.

An upload's name comes from the user's browser, so it is untrusted: it may carry a path
(``../../etc/passwd``, ``C:\\x\\y.pdf``), be hidden (``.bashrc``), empty, huge, or collide
with a document already in the collection. Everything here is pure file-system logic so it
is unit tested without Streamlit.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rag.text import file_sha256

#: Suffixes the ingestion pipeline parses (PDF, plain text, Markdown, HTML).
ALLOWED_SUFFIXES: tuple[str, ...] = (".pdf", ".txt", ".md", ".markdown", ".html", ".htm")

# Long names are legal but unreadable in the UI and can hit the 255-byte file-name limit
# once a " (2)" suffix is added; UTF-8 may take 4 bytes a character.
_MAX_STEM_CHARS = 60
# Anything outside letters, digits and a few harmless marks becomes "_": no separators,
# no shell or markdown specials, no control characters.
_UNSAFE = re.compile(r"[^\w.\- ()]+", re.UNICODE)
_RUNS = re.compile(r"[_ ]{2,}")
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(1, 10)] + [f"lpt{i}" for i in range(1, 10)]
)

Outcome = Literal["saved", "duplicate", "rejected"]


class UploadNameError(ValueError):
    """The upload's name cannot be turned into a safe document name."""


@dataclass(frozen=True)
class SaveResult:
    """What happened to one uploaded file; ``message`` is shown to the user as is."""

    original_name: str
    outcome: Outcome
    message: str
    path: Path | None = None  # the file in the documents folder (saved or already there)

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else self.original_name


def sanitize_filename(name: str) -> str:
    """A plain, visible file name with an allowed suffix, derived from an untrusted one.

    Raises UploadNameError naming the bad value when nothing usable is left or the type is
    not supported.
    """
    # Browsers send a bare name, but a hand-made request may send a path in either
    # convention: keep only the last component.
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFC", base).strip()
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = "." + suffix.lower() if suffix else ""
    if suffix not in ALLOWED_SUFFIXES:
        allowed = ", ".join(ALLOWED_SUFFIXES)
        raise UploadNameError(f"{name!r}: unsupported file type {suffix or '(none)'!r}; allowed: {allowed}")
    stem = _UNSAFE.sub("_", stem)
    stem = _RUNS.sub("_", stem)
    # Leading dots would hide the file (and ".." is a parent reference); trailing dots and
    # spaces are silently dropped by some file systems.
    stem = stem.lstrip(". _-").rstrip(". ")
    stem = stem[:_MAX_STEM_CHARS].rstrip(". ")
    if not stem:
        raise UploadNameError(f"{name!r}: the name has no usable characters; rename the file")
    if stem.lower() in _WINDOWS_RESERVED:
        stem = f"{stem}_"
    return stem + suffix



def _candidates(name: str) -> Iterable[str]:
    stem, suffix = os.path.splitext(name)
    yield name
    for i in range(2, 10_000):
        yield f"{stem} ({i}){suffix}"


def find_same_content(documents_dir: Path, digest: str, size: int) -> Path | None:
    """The document in the folder whose bytes are exactly these, if any."""
    if not documents_dir.is_dir():
        return None
    for p in sorted(documents_dir.rglob("*")):
        # Size first: hashing every document on each upload would be slow for big folders.
        if (
            p.is_file()
            and not p.name.startswith(".")
            and p.stat().st_size == size
            and file_sha256(p) == digest
        ):
            return p
    return None


def save_upload(documents_dir: Path, name: str, data: bytes, *, max_bytes: int) -> SaveResult:
    """Save one upload under a sanitised, unused name; never overwrite another file.

    The same bytes already in the collection (under any name) are a no-op; a different file
    with a taken name gets a " (2)" style suffix.
    """
    try:
        safe = sanitize_filename(name)
    except UploadNameError as e:
        return SaveResult(name, "rejected", str(e))
    if len(data) > max_bytes:
        limit_mb = max_bytes / (1024 * 1024)
        size_mb = len(data) / (1024 * 1024)
        return SaveResult(
            name,
            "rejected",
            f"{name!r} is {size_mb:.1f} MB, above the {limit_mb:g} MB limit (RAG_MAX_FILE_MB); "
            "split the file or raise the limit",
        )
    if not data:
        return SaveResult(name, "rejected", f"{name!r} is empty")

    documents_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    same = find_same_content(documents_dir, digest, len(data))
    if same is not None:
        rel = same.relative_to(documents_dir).as_posix()
        return SaveResult(name, "duplicate", f"{name!r} is already in the collection as {rel!r}", same)

    # Write aside (outside the documents folder, so a concurrent ingest never sees a
    # half-written file), then hard-link into place: link() fails if the name exists, so two
    # sessions uploading the same name at once cannot overwrite each other.
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", dir=documents_dir.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        for candidate in _candidates(safe):
            target = documents_dir / candidate
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            renamed = "" if candidate == name else f" (saved as {candidate!r})"
            return SaveResult(name, "saved", f"{name!r} added{renamed}", target)
    finally:
        tmp.unlink(missing_ok=True)
    return SaveResult(name, "rejected", f"{name!r}: too many files named like it already")
