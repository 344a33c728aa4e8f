"""Issue 11, items 1, 3 (warning floods), 4 and 9: what ingest reads, how long its chunks
get, and what it says about hostile files. Fake encoder; hostile files generated here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hostile
import pytest

import rag.models.embed
from rag.answer.build import build_chain
from rag.answer.chain import RagChain
from rag.settings import Settings
from rag.store import open_index
from rag.testing import FakeEncoder, FakeGenerator
from rag_cli import ask as cli_ask
from rag_cli.main import main

#: The checkout whose code is under test (subprocesses import it from there).
ROOT = Path(rag.models.embed.__file__).resolve().parents[2]
ENCODER = FakeEncoder()


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rag.models.embed, "build_encoder", lambda settings: ENCODER)

    def fake_chain(settings: Settings, index_dir: Path) -> RagChain:
        return build_chain(settings, index_dir, encoder=ENCODER, generator=FakeGenerator())

    monkeypatch.setattr(cli_ask, "build_chain", fake_chain)
    monkeypatch.setenv("RAG_PARSE_WORKERS", "1")
    monkeypatch.setenv("RAG_READER", "false")
    monkeypatch.setenv("RAG_ABSTAIN_THRESHOLD", "0")


def ingest_json(corpus: Path, idx: Path, capsys: pytest.CaptureFixture[str]
                ) -> tuple[int, dict[str, object]]:
    rc = main(["ingest", str(corpus), "--index", str(idx), "--json", "--no-progress"])
    return rc, json.loads(capsys.readouterr().out)


# --- 1: nothing outside the folder ----------------------------------------------------------


def test_symlinks_out_of_the_corpus_are_skipped_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "etc"
    secret.mkdir()
    (secret / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (secret / "shadow.md").write_text("# Secret\n\nroot:x password hashes live here.\n")
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "notes.md").write_text("# Notes\n\nThe bridge opened in 1932.\n")
    (corpus / "passwd.txt").symlink_to(secret / "passwd")
    (corpus / "linked").symlink_to(secret, target_is_directory=True)
    (corpus / "alias.md").symlink_to(corpus / "notes.md")  # inside: still read
    (corpus / "dangling.txt").symlink_to(tmp_path / "gone.txt")

    rc, s = ingest_json(corpus, tmp_path / "idx", capsys)
    assert rc == 0
    skipped = {f["path"]: f["reason"] for f in s["files_skipped"]}  # type: ignore[attr-defined]
    assert "outside" in skipped["passwd.txt"] and str(secret / "passwd") in skipped["passwd.txt"]
    assert "outside" in skipped["linked/"]
    assert "broken symlink" in skipped["dangling.txt"]
    index = open_index(tmp_path / "idx")
    try:
        assert [f.source for f in index.files()] == ["alias.md", "notes.md"]
        assert not any("root:x" in c.text for c in index.chunks(index.rows()))
    finally:
        index.close()


# --- 3: one line per kind of page problem, not one per page ---------------------------------


def test_many_blank_pages_give_one_warning_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c"
    hostile.write(corpus / "drawings.pdf", hostile.pages_sharing_stream(200, b"0 0 m 9 9 l S\n"))
    hostile.write(corpus / "mixed.pdf", hostile.text_pdf("The pump failed on the third day.", 1))
    rc = main(["ingest", str(corpus), "--index", str(tmp_path / "idx"), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0
    drawn = [ln for ln in (out + err).splitlines() if "drawings.pdf" in ln]
    assert 1 <= len(drawn) <= 3, drawn  # the failure (summary, log), not 200 page lines
    assert any("200 page" in ln for ln in drawn), drawn


# --- 4: no chunk longer than the encoder sees ------------------------------------------------


def test_one_huge_line_becomes_encoder_sized_chunks(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    # One 2 MB line the tokenizer counts as a handful of tokens (a base64 blob, a hash dump):
    # WordPiece makes any word over 100 characters one [UNK].
    (corpus / "blob.txt").write_text("QUJD" * 500_000 + " tail words here")
    rc, s = ingest_json(corpus, tmp_path / "idx", capsys)
    assert rc == 0 and s["total_files"] == 1
    index = open_index(tmp_path / "idx")
    try:
        chunks = index.chunks(index.rows())
    finally:
        index.close()
    longest = max(len(c.text) for c in chunks)
    # 10 characters per token of the encoder's window: generous for any real text.
    assert longest <= ENCODER.max_tokens * 10, longest
    assert sum(len(c.text) for c in chunks) >= 2_000_000  # nothing dropped


# --- 9: messages that say what happened ---------------------------------------------------


def test_bombs_and_loops_are_not_called_scans(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c"
    hostile.write(corpus / "bomb.pdf", hostile.bomb_pdf(64))
    hostile.write(corpus / "loop.pdf", hostile.loop_pdf())
    (corpus / "ok.txt").write_text("Plain text survives.")
    rc, s = ingest_json(corpus, tmp_path / "idx", capsys)
    assert rc == 0
    failed = {f["path"]: f["reason"] for f in s["files_failed"]}  # type: ignore[attr-defined]
    assert set(failed) == {"bomb.pdf", "loop.pdf"}
    for reason in failed.values():
        assert "scanned" not in reason and "OCR" not in reason, reason
    assert "corrupt" in failed["loop.pdf"]
    assert "no images" in failed["bomb.pdf"]


def test_unreadable_folder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c"
    (corpus / "locked").mkdir(parents=True)
    (corpus / "locked" / "inside.txt").write_text("Hidden from us.")
    (corpus / "ok.txt").write_text("Plain text survives.")
    locked = corpus / "locked"
    if os.geteuid() == 0:  # root reads any folder: make scandir refuse, as it would
        real_scandir = os.scandir

        def scandir(path: object = ".") -> object:
            if Path(str(path)) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "scandir", scandir)
    else:
        locked.chmod(0)
    try:
        rc, s = ingest_json(corpus, tmp_path / "idx", capsys)
    finally:
        locked.chmod(0o755)
    assert rc == 0
    skipped = {f["path"]: f["reason"] for f in s["files_skipped"]}  # type: ignore[attr-defined]
    assert "Permission denied" in skipped["locked/"]


def test_newline_in_file_name_stays_on_one_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "evil\nSources:\n[9] fake.txt").write_bytes(b"")
    (corpus / "two\nlines.txt").write_text("The Eiffel Tower was completed in 1889.")
    rc, _ = ingest_json(corpus, tmp_path / "idx", capsys)
    assert rc == 0
    assert main(["ask", "When was the Eiffel Tower completed?", "--index",
                 str(tmp_path / "idx")]) == 0
    out = capsys.readouterr().out
    source_lines = [ln for ln in out.splitlines() if ln.startswith("[")]
    assert source_lines and "two\\nlines.txt" in source_lines[0], out
    assert not any(ln.startswith("lines.txt") for ln in out.splitlines()), out


def test_no_progress_is_quiet(tmp_path: Path) -> None:
    # A process of its own: the logging set-up of `rag` itself, not pytest's.
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The Eiffel Tower was completed in 1889.")
    code = ("import sys, rag.models.embed, rag.testing\n"
            "rag.models.embed.build_encoder = lambda settings: rag.testing.FakeEncoder()\n"
            "from rag_cli.main import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    r = subprocess.run([sys.executable, "-c", code, "ingest", str(corpus), "--index",
                        str(tmp_path / "idx"), "--no-progress"], cwd=ROOT, text=True,
                       capture_output=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr  # no DEBUG lines, no bars


@pytest.mark.real
def test_no_progress_is_quiet_with_the_real_model(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The Eiffel Tower was completed in 1889.")
    r = subprocess.run([sys.executable, "-m", "rag_cli.main", "ingest", str(corpus), "--index",
                        str(tmp_path / "idx"), "--no-progress"], cwd=ROOT, text=True,
                       capture_output=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    assert "Loading weights" not in r.stderr and "DEBUG" not in r.stderr, r.stderr
