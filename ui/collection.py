"""The app's default collection, seeded from the repository's sample corpus.

The collection layout itself (names, folders, listing) lives in ``ingest.collection``,
shared with the HTTP API. The default collection ("sample") is seeded by copying the
sample corpus into its documents folder, so uploads never modify ``corpora/``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ingest.collection import Collection, collection
from rag.settings import Settings

DEFAULT_COLLECTION = "sample"
#: The sample corpus the default collection starts from (tests point this elsewhere).
SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "sample"


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
