"""RAG_STORE=milvus against a real Milvus server (milvus-lite's gRPC server, its own process).

The same ingestion and chain code runs over both stores; each test compares Milvus with the
FAISS store on the same input: chunks, search results, incremental runs, deletes, the
transaction's guarantees and the chain's answers. The SQuAD parity test (``real``) checks
retrieval quality with the real encoder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from procs import REPO

from ingest.pipeline import ingest_folder, remove_documents
from ingest.summary import IngestSummary
from rag.answer.build import build_chain
from rag.retrieval.hybrid import HybridRetriever
from rag.settings import Settings
from rag.store import FileRecord, IndexLockedError, IndexMismatchError, IndexMissingError
from rag.store.backends import open_reader, open_writer, store_exists
from rag.store.milvus import MilvusIndex, collection_names
from rag.testing import FakeEncoder, FakeGenerator
from rag.types import Chunk

pytestmark = pytest.mark.scale

SAMPLE = REPO / "corpora" / "sample"
QUERIES = ["When did Apollo 11 land on the Moon?", "oxygen atomic number", "steam engine pressure",
           "Watt separate condenser", "multicolumn layout text", "outline of the document"]


@pytest.fixture
def milvus(settings: Settings, milvus_uri: str, request: pytest.FixtureRequest) -> Settings:
    # A prefix per test: tests share the server, not collections.
    prefix = "t_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:40]
    return settings.with_overrides(store="milvus", store_uri=milvus_uri, store_prefix=prefix,
                                   parse_workers=1, ocr=False)


def faiss(settings: Settings) -> Settings:
    return settings.with_overrides(parse_workers=1, ocr=False)


def chunk_table(reader: object) -> list[tuple[str, str, int | None, str, str]]:
    """Every chunk of an index: (id, source, page, text, header), sorted."""
    if isinstance(reader, MilvusIndex):
        rows = [h[0] for h in reader.dense_search(np.ones((1, reader.manifest.dimension),
                                                          dtype=np.float32) / 8, 10_000)[0]]
    else:
        rows = reader.rows()  # type: ignore[attr-defined]
    return sorted((c.id, c.source, c.page, c.text, c.header) for c in reader.chunks(rows))  # type: ignore[attr-defined]


def counts(s: IngestSummary) -> tuple[int, ...]:
    return (s.files_ok, s.files_unchanged, s.files_removed, len(s.files_failed), s.chunks,
            s.total_files, s.total_chunks)


def both(tmp: Path, settings: Settings, milvus: Settings, corpus: Path, **kw: object
         ) -> tuple[IngestSummary, IngestSummary]:
    enc = FakeEncoder()
    a = ingest_folder(corpus, tmp / "idx", faiss(settings), encoder=enc, **kw)  # type: ignore[arg-type]
    b = ingest_folder(corpus, tmp / "idx", milvus, encoder=enc, **kw)  # type: ignore[arg-type]
    return a, b


def test_ingest_gives_the_same_chunks_and_search_results(settings: Settings, milvus: Settings,
                                                         tmp_path: Path) -> None:
    a, b = both(tmp_path, settings, milvus, SAMPLE)
    assert counts(a) == counts(b) and a.total_chunks > 20
    enc = FakeEncoder()
    fa, mi = open_reader(faiss(settings), tmp_path / "idx", enc), open_reader(milvus, tmp_path / "idx", enc)
    assert isinstance(mi, MilvusIndex)
    assert chunk_table(fa) == chunk_table(mi)
    assert [f.source for f in fa.files()] == [f.source for f in mi.files()]
    for f in fa.files():  # a whole document, in reading order, from either store
        whole = [(c.id, c.page, c.start) for c in fa.document_chunks(f.source)]
        assert whole and whole == [(c.id, c.page, c.start) for c in mi.document_chunks(f.source)]
        assert whole == sorted(whole, key=lambda t: (t[1] or 0, t[2]))
    assert any(p is not None for _, _, p, *_ in chunk_table(mi))  # PDF pages survived
    assert any("\n" in h for *_, h in chunk_table(mi))  # and page headings with them
    for mode in ("hybrid", "dense", "bm25"):
        for q in QUERIES:
            ra = HybridRetriever(index=fa, encoder=enc, mode=mode, k=5).invoke(q)
            rb = HybridRetriever(index=mi, encoder=enc, mode=mode, k=5).invoke(q)
            assert [d.metadata["id"] for d in ra] == [d.metadata["id"] for d in rb], (mode, q)
            for da, db in zip(ra, rb, strict=True):
                assert da.metadata["dense_score"] == pytest.approx(db.metadata["dense_score"], abs=1e-5)
                if da.metadata.get("bm25_score") is not None:
                    assert da.metadata["bm25_score"] == pytest.approx(db.metadata["bm25_score"], rel=1e-4)


def test_incremental_runs_and_deletes_behave_the_same(settings: Settings, milvus: Settings,
                                                       tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE, corpus)
    for f in corpus.glob("*.pdf"):
        if f.name != "multicolumn.pdf":
            f.unlink()  # a smaller corpus: this test is about bookkeeping
    both(tmp_path, settings, milvus, corpus)
    again = both(tmp_path, settings, milvus, corpus)
    assert counts(again[0]) == counts(again[1])
    assert again[1].files_ok == 0 and again[1].files_unchanged == 4
    (corpus / "Oxygen.md").write_text("# Oxygen\n\nOxygen is the element with atomic number eight.\n")
    (corpus / "Steam_engine.txt").unlink()
    (corpus / "new.txt").write_text("Zorblatt Institute was founded in 1923.")
    changed = both(tmp_path, settings, milvus, corpus)
    assert counts(changed[0]) == counts(changed[1])
    assert (changed[1].files_ok, changed[1].files_removed) == (2, 1)
    gone = [remove_documents(corpus, tmp_path / "idx", s, ["new.txt"])
            for s in (faiss(settings), milvus)]
    assert gone[0].total_chunks == gone[1].total_chunks and gone[1].files_removed == 1
    fa, mi = open_reader(faiss(settings), tmp_path / "idx"), open_reader(milvus, tmp_path / "idx")
    assert chunk_table(fa) == chunk_table(mi)
    assert "new.txt" not in {f.source for f in mi.files()}
    assert mi.bm25_search("Zorblatt", 5) == []
    assert "eight" in " ".join(row[3] for row in chunk_table(mi))


def _writer(milvus: Settings, **kw: object) -> object:
    enc = FakeEncoder()
    args: dict[str, object] = dict(encoder_name=enc.name, dimension=enc.dimension, max_tokens=128,
                                   chunk_tokens=100, chunk_overlap=10)
    return open_writer(milvus, Path("idx"), **{**args, **kw})


def _add(w: object, source: str, text: str) -> None:
    c = Chunk(source, 3, 0, len(text), text)
    w.add_file(FileRecord(source, "0" * 64, 1, 1, "2026-01-01"), [c],  # type: ignore[attr-defined]
               FakeEncoder().embed([text]))


def test_nothing_is_visible_before_commit_and_aborts_leave_nothing(milvus: Settings) -> None:
    with _writer(milvus) as w:  # type: ignore[attr-defined]
        _add(w, "a.txt", "alpha beta gamma")
        w.commit()
    reader = open_reader(milvus, Path("idx"))
    with pytest.raises(RuntimeError, match="boom"), _writer(milvus) as w:  # type: ignore[attr-defined]
        _add(w, "b.txt", "delta epsilon")
        w.remove_file("a.txt")
        # Uncommitted: a reader opened now still sees revision 1, whole.
        during = open_reader(milvus, Path("idx"))
        assert [f.source for f in during.files()] == ["a.txt"]
        assert len(during.bm25_search("alpha", 5)) == 1 and during.bm25_search("delta", 5) == []
        raise RuntimeError("boom")
    after = open_reader(milvus, Path("idx"))
    assert after.manifest.revision == 1 and [f.source for f in after.files()] == ["a.txt"]
    assert len(after.bm25_search("alpha", 5)) == 1 and after.bm25_search("delta", 5) == []
    assert reader.chunks([h[0] for h in reader.bm25_search("alpha", 5)])[0].page == 3


def test_a_killed_writer_is_cleaned_up_by_the_next(milvus: Settings) -> None:
    w = _writer(milvus).__enter__()  # type: ignore[attr-defined]
    _add(w, "a.txt", "alpha beta gamma")
    # It dies: no commit, no abort, its lease left behind.
    with pytest.raises(IndexLockedError, match="being written"):
        _writer(milvus).__enter__()  # type: ignore[attr-defined]
    assert not store_exists(milvus, Path("idx"))
    w._put_meta("lock", {"owner": w._owner, "expires": 1.0})  # ... and its lease runs out
    w._client.close()
    w._client = None
    with _writer(milvus) as w2:  # type: ignore[attr-defined]
        assert w2.files() == {}
        _add(w2, "b.txt", "delta")
        w2.commit()
    r = open_reader(milvus, Path("idx"))
    assert [f.source for f in r.files()] == ["b.txt"] and r.bm25_search("alpha", 5) == []
    stats = r.client.get_collection_stats(collection_names(milvus.store_prefix, "idx")[0])
    assert int(stats["row_count"]) == 1  # the dead writer's row is gone, not just hidden


def test_other_settings_and_missing_index_are_clear_errors(milvus: Settings) -> None:
    with pytest.raises(IndexMissingError, match="rag ingest"):
        open_reader(milvus, Path("idx"))
    with _writer(milvus) as w:  # type: ignore[attr-defined]
        _add(w, "a.txt", "alpha")
        w.commit()
    with pytest.raises(IndexMismatchError, match="chunk_tokens"), \
            _writer(milvus, chunk_tokens=50):  # type: ignore[attr-defined]
        pass


def test_search_filtered_by_document(milvus: Settings) -> None:
    other = 'notes/café "draft".txt'  # quotes and non-ASCII survive Milvus's filter syntax
    with _writer(milvus) as w:  # type: ignore[attr-defined]
        _add(w, "a.txt", "alpha beta gamma")
        _add(w, other, "alpha delta")
        w.commit()
    r = open_reader(milvus, Path("idx"))
    assert isinstance(r, MilvusIndex)
    q = FakeEncoder().embed(["alpha"])
    assert {c.source for c in r.chunks([h[0] for h in r.dense_search(q, 5)[0]])} == {"a.txt", other}
    only = r.chunks([h[0] for h in r.dense_search(q, 5, sources=[other])[0]])
    assert [c.source for c in only] == [other]
    assert [c.source for c in r.chunks([h[0] for h in r.bm25_search("alpha", 5, sources=["a.txt"])])] \
        == ["a.txt"]


def test_chain_answers_the_same_over_milvus(settings: Settings, milvus: Settings, tmp_path: Path) -> None:
    both(tmp_path, settings, milvus, SAMPLE)
    answers = []
    for s in (faiss(settings), milvus):
        chain = build_chain(s.with_overrides(abstain_threshold=0.2, k=3), tmp_path / "idx",
                            encoder=FakeEncoder(), generator=FakeGenerator())
        answers.append([chain.invoke(q) for q in QUERIES[:3]])
    for a, b in zip(*answers, strict=True):
        assert (a.text, a.cited, a.abstained) == (b.text, b.cited, b.abstained)
        assert [(s.source, s.page) for s in a.sources] == [(s.source, s.page) for s in b.sources]


@pytest.mark.real
def test_squad_paragraph_quality_is_the_same_on_milvus(settings: Settings, milvus: Settings,
                                                       tmp_path: Path, real_encoder: object) -> None:
    """SQuAD paragraphs (the slice tests/test_retrieval_quality.py uses), real encoder:
    hybrid hit@5 and nDCG@10 on Milvus within 0.005 of FAISS (measured: equal to four
    decimals in all three modes; docs/scaling.md). Embedded once: the Milvus index gets the
    FAISS index's chunks and vectors, file by file, through its own writer."""
    from test_retrieval_quality import PARAGRAPH_ARTICLES

    from rag.evaluation.metrics import load_qa
    from rag.evaluation.run import BatchedQueryEncoder, run_eval
    from rag.store import Index

    corpus = tmp_path / "docs"
    for article in PARAGRAPH_ARTICLES:
        shutil.copytree(REPO / "corpora" / "squad_paragraphs" / "docs" / article, corpus / article)
    items = [i for i in load_qa(REPO / "corpora" / "squad_paragraphs" / "qa.jsonl")
             if i.relevant[0].source.split("/")[0] in PARAGRAPH_ARTICLES]
    enc: object = real_encoder
    ingest_folder(corpus, tmp_path / "idx", faiss(settings), encoder=enc)  # type: ignore[arg-type]
    fa = open_reader(faiss(settings), tmp_path / "idx", enc)
    assert isinstance(fa, Index)
    rows = fa.rows()
    by_source: dict[str, list[int]] = {}
    for row, chunk in zip(rows, fa.chunks(rows), strict=True):
        by_source.setdefault(chunk.source, []).append(row)
    m = fa.manifest
    with open_writer(milvus, tmp_path / "idx", encoder_name=m.encoder, dimension=m.dimension,
                     max_tokens=m.max_tokens, chunk_tokens=m.chunk_tokens,
                     chunk_overlap=m.chunk_overlap) as w:
        for source, file_rows in by_source.items():
            w.add_file(m.files[source], fa.chunks(file_rows), fa.vectors(file_rows))
        w.commit()
    mi = open_reader(milvus, tmp_path / "idx", enc)
    assert chunk_table(fa) == chunk_table(mi)
    questions = BatchedQueryEncoder(enc, [i.question for i in items])  # type: ignore[arg-type]
    got = {}
    for name, reader in (("faiss", fa), ("milvus", mi)):
        retriever = HybridRetriever(index=reader, encoder=questions, mode="hybrid", k=10)
        got[name] = run_eval(items, retriever.invoke, k=10).to_json()
        print(f"\nsquad paragraphs hybrid {name}: " + " ".join(f"{k}={v:.4f}" for k, v in got[name].items()))
    assert got["faiss"]["n"] == got["milvus"]["n"] == 1008
    for metric in ("hit@5", "ndcg@10"):
        assert abs(got["faiss"][metric] - got["milvus"][metric]) <= 0.005, (metric, got)
