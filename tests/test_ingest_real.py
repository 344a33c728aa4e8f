"""Ingestion with the real encoder: page numbers, real token counts, and a SIGKILL mid-run."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from transformers import AutoTokenizer

from ingest.pipeline import ingest_folder
from ingest.tables import linearize_tables
from rag.models.embed import SentenceTransformerEncoder, build_encoder, default_encoder_path
from rag.settings import Settings
from rag.store import Index, open_index
from rag.types import Chunk

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[1]
PDFS = Path(__file__).parent / "data" / "pdfs"
MULTI_PAGE = ["pdflatex-4-pages.pdf", "multicolumn.pdf", "pdflatex-outline.pdf"]


@pytest.fixture(scope="module")
def encoder() -> SentenceTransformerEncoder:
    return build_encoder(Settings(parse_workers=1))  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def pdf_index(tmp_path_factory: pytest.TempPathFactory,
              encoder: SentenceTransformerEncoder) -> Iterator[Index]:
    corpus = tmp_path_factory.mktemp("pdfs")
    for name in MULTI_PAGE:
        shutil.copy(PDFS / name, corpus / name)
    idx = tmp_path_factory.mktemp("index") / "idx"
    summary = ingest_folder(corpus, idx, Settings(parse_workers=1),  # type: ignore[call-arg]
                            encoder=encoder)
    assert summary.files_ok == 3 and summary.pages == 11 and not summary.warnings
    index = open_index(idx, encoder)
    yield index
    index.close()


def _all_chunks(index: Index) -> list[Chunk]:
    rows = index.rows()
    return index.chunks(rows)


def _pypdf_pages(name: str) -> list[str]:
    # Independent of the splitter and the store: the PDF engine's own text (PDFium, which
    # ingest reads PDFs with; tables rewritten row by row as ingest.tables does), with the
    # same NFKC folding and PDFium's end-of-line hyphen mark dropped.
    doc = pdfium.PdfDocument(PDFS / name)
    try:
        pages = []
        for i in range(len(doc)):
            textpage = doc[i].get_textpage()
            text = linearize_tables(textpage, textpage.get_text_range())
            pages.append(unicodedata.normalize("NFKC", text).replace("\r\n", "\n")
                         .replace("\r", "\n").replace("\ufffe", ""))
        return pages
    finally:
        doc.close()


def test_chunk_pages_match_the_pages_their_text_is_on(pdf_index: Index) -> None:
    chunks = _all_chunks(pdf_index)
    for name in MULTI_PAGE:
        pages = _pypdf_pages(name)
        mine = [c for c in chunks if c.source == name]
        assert {c.page for c in mine} == set(range(1, len(pages) + 1)), name
        for c in mine:
            assert c.page is not None
            assert pages[c.page - 1][c.start : c.end] == c.text, (name, c.page, c.start)
            # Passages found on exactly one page must be attributed to that page.
            on = [i + 1 for i, p in enumerate(pages) if c.text in p]
            if len(on) == 1:
                assert on == [c.page]
    # The table on page 3 of multicolumn.pdf is cited as page 3.
    table = [c for c in chunks if c.source == "multicolumn.pdf" and "Vienna" in c.text]
    assert table and all(c.page == 3 for c in table)


def test_every_chunk_fits_the_real_model(pdf_index: Index) -> None:
    tok = AutoTokenizer.from_pretrained(str(default_encoder_path()))
    cfg = json.loads((default_encoder_path() / "sentence_bert_config.json").read_text())
    max_seq = int(cfg["max_seq_length"])
    assert max_seq == 256
    counts = [len(tok(c.text, add_special_tokens=True)["input_ids"])
              for c in _all_chunks(pdf_index)]
    assert max(counts) <= max_seq
    assert np.median(counts) > 100  # chunks are filled, not crumbs


def test_sigkill_mid_ingest_keeps_the_old_index(tmp_path: Path,
                                                encoder: SentenceTransformerEncoder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(PDFS / "multicolumn.pdf", corpus / "multicolumn.pdf")
    idx = tmp_path / "idx"
    settings = Settings(parse_workers=1, embed_batch_size=8)  # type: ignore[call-arg]
    first = ingest_folder(corpus, idx, settings, encoder=encoder)
    words = ["river", "mountain", "valley", "harbour", "lantern", "orchard", "meadow"]
    for i in range(60):
        text = " ".join(words[(i + j) % len(words)] for j in range(1500))
        (corpus / f"bulk{i:02d}.txt").write_text(f"Bulk document {i}. {text}")

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "RAG_EMBED_BATCH_SIZE": "8", "RAG_PARSE_WORKERS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", str(corpus), "--index", str(idx)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
        start_new_session=True,  # its own process group: the kill takes any workers too
    )
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 180
    try:
        # Kill once the embedding bar has moved: inside the embed stage, well before the end.
        while b"embed" not in seen or b"/" not in seen.rsplit(b"embed", 1)[1]:
            assert proc.poll() is None, f"ingest ended before the kill: {seen.decode()[-2000:]}"
            assert time.monotonic() < deadline, "embedding never started"
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            if ready:
                seen += os.read(proc.stderr.fileno(), 65536)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # The dead writer's half-built generation is still on disk, beside the live one.
    assert len([p for p in idx.iterdir() if p.is_dir()]) == 2

    index = open_index(idx, encoder)
    assert [f.source for f in index.files()] == ["multicolumn.pdf"]
    assert len(index) == first.total_chunks
    hits = index.dense_search(encoder.embed(["Two-column document with Lorem Ipsum"]), 1)[0]
    assert index.chunks([hits[0][0]])[0].source == "multicolumn.pdf"
    index.close()

    # The next run takes the lock the dead process held, drops its half-built generation
    # and completes (most bulk files removed first to keep the test short).
    for p in sorted(corpus.glob("bulk*.txt"))[2:]:
        p.unlink()
    s = ingest_folder(corpus, idx, settings, encoder=encoder)
    assert s.files_ok == 2 and s.files_unchanged == 1 and not s.files_failed
    live = (idx / "CURRENT").read_text().strip()
    assert [p.name for p in idx.iterdir() if p.is_dir()] == [live]
    assert {f.source for f in open_index(idx).files()} == {
        "multicolumn.pdf", "bulk00.txt", "bulk01.txt"}
