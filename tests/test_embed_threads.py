"""One encoder shared by threads (the UI's ingest thread and chat queries) stays correct."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ingest.split import split_document
from rag.models.embed import SentenceTransformerEncoder
from rag.types import Page, ParsedDocument

pytestmark = pytest.mark.real

LONG = " ".join(f"Sentence number {i} talks about rivers, valleys and harbours." for i in range(120))


def test_offsets_while_another_thread_embeds(real_encoder: SentenceTransformerEncoder) -> None:
    enc = real_encoder
    want = enc.token_offsets(LONG)
    assert len(want) > 1000  # well past the 256 tokens embed() truncates at
    doc = ParsedDocument("long.txt", [Page(None, LONG)])
    chunks_alone = split_document(doc, enc, 128, 16)

    stop = threading.Event()
    errors: list[BaseException] = []

    def embed_queries() -> None:
        try:
            while not stop.is_set():
                enc.embed(["what do rivers carve?", LONG[:2000]])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=embed_queries) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        lengths = [len(enc.token_offsets(LONG)) for _ in range(200)]
        chunks_shared = split_document(doc, enc, 128, 16)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert set(lengths) == {len(want)}
    assert chunks_shared == chunks_alone


def test_two_threads_splitting_give_the_chunks_of_one(
        real_encoder: SentenceTransformerEncoder, tmp_path: Path) -> None:
    enc = real_encoder
    docs = [ParsedDocument(f"d{i}.txt", [Page(None, LONG[i * 50 :])]) for i in range(4)]
    alone = [split_document(d, enc, 128, 16) for d in docs]
    got: dict[int, list[object]] = {}

    def work(i: int) -> None:
        for _ in range(3):
            got.setdefault(i, []).append(split_document(docs[i], enc, 128, 16))
            enc.embed([c.text for c in alone[i][:8]])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert all(c == alone[i] for c in got[i])
