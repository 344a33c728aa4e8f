"""ingest_folder / remove_documents with the fake encoder: incremental, bad input, crashes."""

from __future__ import annotations

import io
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from ingest.pipeline import ingest_folder, remove_documents
from ingest.runner import ProcessPoolRunner, SerialRunner
from ingest.summary import IngestSummary
from rag.settings import Settings
from rag.store import Index, IndexLockedError, IndexMismatchError, IndexWriter, open_index
from rag.testing import FakeEncoder
from rag.types import Chunk, FloatArray

PDFS = Path(__file__).parent / "data" / "pdfs"


def _settings(**kw: object) -> Settings:
    base: dict[str, object] = dict(parse_workers=1, chunk_tokens=64, chunk_overlap=8,
                                   embed_batch_size=16)
    base.update(kw)
    return Settings.model_validate(base)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "notes" / "deep").mkdir(parents=True)
    shutil.copy(PDFS / "pdflatex-4-pages.pdf", root / "paper.pdf")
    (root / "notes" / "alpha.txt").write_text("The alpha particle was found by Rutherford. " * 20)
    (root / "notes" / "deep" / "beta.md").write_text("# Beta\n\nBeta decay emits electrons.\n")
    (root / "page.html").write_text("<p>Gamma rays are photons of high energy.</p>")
    return root


def _all_chunks(index: Index) -> list[Chunk]:
    # Rows are not contiguous after deletions; an exhaustive search lists every one.
    rows = index.rows()
    assert len(rows) == len(index)
    return index.chunks(rows)


def _search(index_dir: Path, enc: FakeEncoder, query: str) -> list[str]:
    index = open_index(index_dir, enc)
    try:
        hits = index.dense_search(enc.embed([query]), 3)[0]
        return [c.text for c in index.chunks([r for r, _ in hits])]
    finally:
        index.close()


def test_first_ingest_indexes_every_format(corpus: Path, tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "index"
    seen: list[tuple[str, int, int]] = []
    s = ingest_folder(corpus, idx, _settings(), encoder=enc,
                      progress=lambda *a: seen.append(a))
    assert (s.files_ok, s.files_unchanged, s.files_removed) == (4, 0, 0)
    assert s.files_failed == [] and s.files_skipped == []
    assert s.pages == 4 + 1 + 1 + 1 and s.chunks == enc.calls == s.total_chunks > 4
    assert s.chunks_per_s > 0 and s.commits == 1
    index = open_index(idx, enc)
    chunks = _all_chunks(index)
    sources = {c.source for c in chunks}
    assert sources == {"paper.pdf", "notes/alpha.txt", "notes/deep/beta.md", "page.html"}
    pdf_pages = {c.page for c in chunks if c.source == "paper.pdf"}
    assert pdf_pages == {1, 2, 3, 4}
    assert all(c.page is None for c in chunks if c.source != "paper.pdf")
    assert all(len(enc.token_offsets(c.text)) <= 64 for c in chunks)
    index.close()
    assert "Beta decay emits electrons." in _search(idx, enc, "beta decay electrons")[0]
    stages = {st for st, _, _ in seen}
    assert {"parse", "embed", "index"} <= stages
    assert ("parse", 4, 4) in seen


def test_second_run_embeds_nothing(corpus: Path, tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "index"
    first = ingest_folder(corpus, idx, _settings(), encoder=enc)
    calls = enc.calls
    gen = (idx / "CURRENT").read_text()
    s = ingest_folder(corpus, idx, _settings(), encoder=enc)
    assert enc.calls == calls  # nothing re-embedded
    assert (s.files_ok, s.files_unchanged, s.chunks, s.commits) == (0, 4, 0, 0)
    assert s.total_chunks == first.total_chunks
    assert (idx / "CURRENT").read_text() == gen  # nothing to commit: same generation


def test_changed_and_deleted_files(corpus: Path, tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "index"
    ingest_folder(corpus, idx, _settings(), encoder=enc)
    calls = enc.calls
    (corpus / "notes" / "alpha.txt").write_text("Alpha now talks about zebras in Kenya.")
    (corpus / "page.html").unlink()
    s = ingest_folder(corpus, idx, _settings(), encoder=enc)
    assert (s.files_ok, s.files_unchanged, s.files_removed) == (1, 2, 1)
    assert enc.calls == calls + 1  # only the changed file's one chunk
    index = open_index(idx, enc)
    files = {f.source: f for f in index.files()}
    assert set(files) == {"paper.pdf", "notes/alpha.txt", "notes/deep/beta.md"}
    texts = [c.text for c in _all_chunks(index)]
    index.close()
    assert not any("Rutherford" in t or "Gamma" in t for t in texts)
    assert "Alpha now talks about zebras in Kenya." in texts
    assert s.total_chunks == len(texts)


def test_rebuild_reembeds_everything(corpus: Path, tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "index"
    first = ingest_folder(corpus, idx, _settings(), encoder=enc)
    s = ingest_folder(corpus, idx, _settings(), encoder=enc, rebuild=True)
    assert s.files_ok == 4 and s.files_unchanged == 0 and s.chunks == first.chunks
    assert enc.calls == 2 * first.chunks


def test_other_encoder_needs_rebuild(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "index"
    ingest_folder(corpus, idx, _settings(), encoder=FakeEncoder(dimension=64))
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        ingest_folder(corpus, idx, _settings(), encoder=FakeEncoder(dimension=32))
    s = ingest_folder(corpus, idx, _settings(), encoder=FakeEncoder(dimension=32), rebuild=True)
    assert s.files_ok == 4
    assert open_index(idx).manifest.dimension == 32


def _encrypted_pdf() -> bytes:
    w = PdfWriter()
    w.add_page(PdfReader(PDFS / "pdflatex-4-pages.pdf").pages[0])
    w.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def _blank_pdf() -> bytes:
    w = PdfWriter()
    w.add_blank_page(612, 792)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_bad_inputs_are_each_reported_and_the_rest_ingested(corpus: Path, tmp_path: Path) -> None:
    good = (PDFS / "pdflatex-outline.pdf").read_bytes()
    bad = corpus / "bad"
    bad.mkdir()
    (bad / "truncated.pdf").write_bytes(good[: len(good) // 2])
    (bad / "encrypted.pdf").write_bytes(_encrypted_pdf())
    (bad / "scanned.pdf").write_bytes(_blank_pdf())
    (bad / "zero.txt").write_bytes(b"")
    (bad / "junk.txt").write_bytes(random.Random(1).randbytes(3000))
    (bad / "report.docx").write_bytes(b"PK\x03\x04 not really a docx")
    (bad / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (bad / "huge.txt").write_text("x " * 700_000)  # 1.4 MB > max_file_mb below
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "secret.txt").write_text("should not be read")
    (corpus / ".DS_Store").write_bytes(b"\x00\x01")

    s = ingest_folder(corpus, tmp_path / "index", _settings(max_file_mb=1.0), encoder=FakeEncoder())
    failed = {f["path"]: f["reason"] for f in s.files_failed}
    skipped = {f["path"]: f["reason"] for f in s.files_skipped}
    assert set(failed) == {"bad/truncated.pdf", "bad/encrypted.pdf", "bad/scanned.pdf",
                           "bad/junk.txt"}
    assert "encrypted" in failed["bad/encrypted.pdf"]
    assert "no images" in failed["bad/scanned.pdf"]  # a blank page: not a scan
    assert "binary" in failed["bad/junk.txt"]
    assert set(skipped) == {"bad/zero.txt", "bad/report.docx", "bad/photo.png", "bad/huge.txt",
                            ".hidden/", ".DS_Store"}
    assert "0 bytes" in skipped["bad/zero.txt"]
    assert "'.docx'" in skipped["bad/report.docx"]
    assert "max_file_mb" in skipped["bad/huge.txt"]
    assert s.files_ok == 4  # the good files all made it
    assert all(f["reason"] for f in [*s.files_failed, *s.files_skipped])


def test_bad_input_warnings_name_the_file(corpus: Path, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    (corpus / "junk.txt").write_bytes(random.Random(2).randbytes(2000))
    (corpus / "x.docx").write_bytes(b"zip")
    ingest_folder(corpus, tmp_path / "index", _settings(), encoder=FakeEncoder())
    messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("junk.txt" in m and "binary" in m for m in messages)
    assert any("x.docx" in m and "unsupported" in m for m in messages)


def test_file_that_turns_bad_loses_its_old_chunks(corpus: Path, tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "index"
    ingest_folder(corpus, idx, _settings(), encoder=enc)
    (corpus / "notes" / "alpha.txt").write_bytes(random.Random(3).randbytes(1000))
    s = ingest_folder(corpus, idx, _settings(), encoder=enc)
    assert [f["path"] for f in s.files_failed] == ["notes/alpha.txt"]
    assert "notes/alpha.txt" not in {f.source for f in open_index(idx).files()}


def test_process_pool_gives_the_same_chunks(corpus: Path, tmp_path: Path) -> None:
    a = ingest_folder(corpus, tmp_path / "a", _settings(), encoder=FakeEncoder(),
                      runner=SerialRunner())
    b = ingest_folder(corpus, tmp_path / "b", _settings(parse_workers=2), encoder=FakeEncoder(),
                      runner=ProcessPoolRunner(2))
    ia, ib = open_index(tmp_path / "a"), open_index(tmp_path / "b")
    ids_a = {c.id for c in _all_chunks(ia)}
    ids_b = {c.id for c in _all_chunks(ib)}
    assert a.chunks == b.chunks and ids_a == ids_b


def test_checkpoints_commit_during_the_run(corpus: Path, tmp_path: Path) -> None:
    for i in range(30):
        (corpus / f"n{i:02d}.txt").write_text(f"note {i} " + "filler words here " * 60)
    s = ingest_folder(corpus, tmp_path / "index", _settings(), encoder=FakeEncoder(),
                      checkpoint_s=0.0)
    assert s.commits >= 2
    assert len(open_index(tmp_path / "index")) == s.total_chunks


class _CrashingEncoder(FakeEncoder):
    """Dies (like a kill or Ctrl-C) after embedding ``limit`` texts."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if self.calls + len(texts) > self.limit:
            raise KeyboardInterrupt
        return super().embed(texts)


def test_interrupted_ingest_leaves_the_old_index(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "index"
    enc = FakeEncoder()
    before = ingest_folder(corpus, idx, _settings(), encoder=enc)
    for i in range(10):
        (corpus / f"new{i}.txt").write_text(f"new document {i} " + "words " * 300)
    (corpus / "notes" / "alpha.txt").unlink()
    with pytest.raises(KeyboardInterrupt):
        ingest_folder(corpus, idx, _settings(), encoder=_CrashingEncoder(limit=20))
    index = open_index(idx, enc)
    assert len(index) == before.total_chunks
    assert "notes/alpha.txt" in {f.source for f in index.files()}
    index.close()
    assert sorted(p.name for p in idx.iterdir() if p.is_dir()) == [
        (idx / "CURRENT").read_text().strip()
    ]  # the half-built generation was thrown away
    s = ingest_folder(corpus, idx, _settings(), encoder=enc)  # lock released, run completes
    assert s.files_ok == 10 and s.files_removed == 1


def test_second_writer_gets_a_clear_error(corpus: Path, tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "index"
    ingest_folder(corpus, idx, _settings(), encoder=enc)
    with (
        IndexWriter(idx, encoder_name=enc.name, dimension=enc.dimension,
                    max_tokens=enc.max_tokens, chunk_tokens=64, chunk_overlap=8),
        pytest.raises(IndexLockedError, match=str(idx)),
    ):
        ingest_folder(corpus, idx, _settings(), encoder=enc)


def test_index_inside_the_corpus_is_not_ingested(corpus: Path) -> None:
    s = ingest_folder(corpus, corpus / "myindex", _settings(), encoder=FakeEncoder())
    s2 = ingest_folder(corpus, corpus / "myindex", _settings(), encoder=FakeEncoder())
    assert s.files_ok == 4 and s2.files_unchanged == 4
    assert not any("myindex" in f["path"] for f in [*s2.files_skipped, *s2.files_failed])


def test_missing_corpus_raises_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ingest_folder(tmp_path / "nowhere", tmp_path / "i", _settings(), encoder=FakeEncoder())


def test_remove_documents(corpus: Path, tmp_path: Path) -> None:
    enc = FakeEncoder()
    idx = tmp_path / "index"
    first = ingest_folder(corpus, idx, _settings(), encoder=enc)
    s = remove_documents(corpus, idx, _settings(), ["notes/alpha.txt", "../escape.txt",
                                                    "never-there.txt"])
    assert s.files_removed == 1
    assert {f["path"] for f in s.files_failed} == {"../escape.txt", "never-there.txt"}
    assert not (corpus / "notes" / "alpha.txt").exists()
    assert "notes/alpha.txt" not in {f.source for f in open_index(idx).files()}
    assert s.total_chunks < first.total_chunks
    again = ingest_folder(corpus, idx, _settings(), encoder=enc)
    assert (again.files_ok, again.files_unchanged, again.files_removed) == (0, 3, 0)


def test_summary_json_has_the_documented_keys() -> None:
    d = IngestSummary(files_failed=[{"path": "a.pdf", "reason": "corrupt"}]).to_json()
    for key in ("files_ok", "files_unchanged", "files_removed", "files_skipped", "files_failed",
                "pages", "chunks", "total_chunks", "seconds", "chunks_per_s"):
        assert key in d
    assert d["files_failed"] == [{"path": "a.pdf", "reason": "corrupt"}]


def test_symlinked_folders_are_followed_once_and_never_out(corpus: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "linked.txt").write_text("Delta is the fourth letter.")
    (corpus / "link").symlink_to(outside, target_is_directory=True)
    (corpus / "notes" / "loop").symlink_to(corpus, target_is_directory=True)
    s = ingest_folder(corpus, tmp_path / "index", _settings(), encoder=FakeEncoder())
    assert s.files_ok == 4
    assert "link/linked.txt" not in {f.source for f in open_index(tmp_path / "index").files()}
    skipped = {f["path"]: f["reason"] for f in s.files_skipped}
    assert set(skipped) == {"link/", "notes/loop/"}
    assert "outside the folder" in skipped["link/"]


def test_long_pdf_parsed_in_page_parts_by_the_pool(corpus: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.parse_plan as parse_plan
    from ingest.scan import Candidate

    shutil.copy(PDFS / "pdflatex-outline.pdf", corpus / "outline.pdf")
    serial = ingest_folder(corpus, tmp_path / "a", _settings(), encoder=FakeEncoder(),
                           runner=SerialRunner())
    monkeypatch.setattr(parse_plan, "PAGES_PER_JOB", 1)
    monkeypatch.setattr(parse_plan, "_SPLIT_MIN_BYTES", 0)
    todo = [Candidate("outline.pdf", corpus / "outline.pdf", 1)]
    jobs, parts = parse_plan.plan_parse_jobs(todo, workers=2)
    assert parts == {"outline.pdf": 4} and [j[2] for j in jobs] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    pooled = ingest_folder(corpus, tmp_path / "b", _settings(parse_workers=2),
                           encoder=FakeEncoder(), runner=ProcessPoolRunner(2))
    assert pooled.pages == serial.pages == 4 + 1 + 1 + 1 + 4
    ia, ib = open_index(tmp_path / "a"), open_index(tmp_path / "b")
    assert {c.id for c in _all_chunks(ia)} == {c.id for c in _all_chunks(ib)}


def _age(corpus: Path, seconds: float = 60.0) -> None:
    """Set every file's mtime in the past, out of the racy window of the stat fast path."""
    import os
    import time

    t = time.time() - seconds
    for p in corpus.rglob("*"):
        if p.is_file():
            os.utime(p, (t, t))


def test_unchanged_stat_skips_hashing(corpus: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.pipeline as pipeline

    _age(corpus)
    idx = tmp_path / "index"
    ingest_folder(corpus, idx, _settings(), encoder=FakeEncoder())
    hashed: list[Path] = []
    real = pipeline.file_sha256
    monkeypatch.setattr(pipeline, "file_sha256", lambda p: hashed.append(p) or real(p))
    s = ingest_folder(corpus, idx, _settings(), encoder=FakeEncoder())
    assert s.files_unchanged == 4 and s.commits == 0 and hashed == []
    # Touched, same bytes: hashed, found unchanged, its new stat kept for the next commit
    # (one file is not worth a commit of its own; many are).
    os_t = (corpus / "page.html").stat().st_mtime - 5
    import os

    os.utime(corpus / "page.html", (os_t, os_t))
    s = ingest_folder(corpus, idx, _settings(), encoder=FakeEncoder())
    assert s.files_unchanged == 4 and s.commits == 0 and hashed == [corpus / "page.html"]
    monkeypatch.setattr(pipeline, "_RESTAT_FILES", 1)
    s = ingest_folder(corpus, idx, _settings(), encoder=FakeEncoder())
    assert s.files_unchanged == 4 and s.files_ok == 0 and s.commits == 1
    hashed.clear()
    s = ingest_folder(corpus, idx, _settings(), encoder=FakeEncoder())
    assert s.files_unchanged == 4 and s.commits == 0 and hashed == []
    # New bytes, new mtime: re-ingested.
    (corpus / "page.html").write_text("<p>Delta rays are photons of low energy.</p>")
    s = ingest_folder(corpus, idx, _settings(), encoder=FakeEncoder())
    assert s.files_ok == 1


def test_unchanged_rerun_never_loads_the_encoder(
        tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.models.embed

    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Sourdough bread is leavened by wild yeast.")
    builds: list[str] = []

    def build(s: Settings) -> FakeEncoder:
        builds.append(s.encoder_model)
        return FakeEncoder()

    monkeypatch.setattr(rag.models.embed, "build_encoder", build)
    # The configured encoder's name is the one the index records: here the fake's.
    s = settings.model_copy(update={"encoder_model": FakeEncoder.name})
    first = ingest_folder(corpus, tmp_path / "idx", s)
    assert first.files_ok == 1 and builds == [FakeEncoder.name]
    again = ingest_folder(corpus, tmp_path / "idx", s)
    assert again.files_unchanged == 1 and builds == [FakeEncoder.name]  # not loaded again
    (corpus / "b.txt").write_text("Rye bread is denser.")
    third = ingest_folder(corpus, tmp_path / "idx", s)
    assert third.files_ok == 1 and len(builds) == 2  # something to embed: loaded
