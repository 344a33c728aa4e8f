"""Saving uploads: names are sanitised, nothing escapes the folder, nothing is overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.uploads import (
    ALLOWED_SUFFIXES,
    UploadNameError,
    sanitize_filename,
    save_upload,
)

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("Report FINAL.PDF", "Report FINAL.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\me\\notes.md", "notes.md"),
        (".hidden.md", "hidden.md"),
        ("...dots.txt", "dots.txt"),
        ("a<b>c|d*e?.html", "a_b_c_d_e_.html"),
        ("naïve résumé.txt", "naïve résumé.txt"),
        ("con.txt", "con_.txt"),
        ("page.htm", "page.htm"),
        ("x" * 300 + ".pdf", "x" * 60 + ".pdf"),
    ],
)
def test_sanitize_filename(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected


@pytest.mark.parametrize("raw", ["evil.exe", "noext", "archive.tar.gz", "...", ".pdf", "../.pdf", "///"])
def test_sanitize_rejects_unsupported_or_empty(raw: str) -> None:
    with pytest.raises(UploadNameError, match=r"unsupported file type|no usable characters"):
        sanitize_filename(raw)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=80), st.sampled_from(ALLOWED_SUFFIXES))
def test_sanitized_names_are_plain_visible_files(stem: str, suffix: str) -> None:
    try:
        name = sanitize_filename(stem + suffix)
    except UploadNameError:
        return
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and name not in {".", ".."}
    assert name.endswith(suffix)
    assert len(name.encode()) < 255 - 10  # room for a " (NNNN)" collision suffix
    assert sanitize_filename(name) == name  # idempotent


def test_save_new_file(tmp_path: Path) -> None:
    docs = tmp_path / "c" / "documents"
    r = save_upload(docs, "../notes.md", b"# Notes\nhello", max_bytes=MB)
    assert r.outcome == "saved"
    assert r.path == docs / "notes.md"
    assert (docs / "notes.md").read_bytes() == b"# Notes\nhello"
    # Nothing is left outside the documents folder (the temporary file is gone too).
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["documents"]
    assert not (tmp_path / "notes.md").exists()


def test_same_name_different_content_gets_suffix(tmp_path: Path) -> None:
    docs = tmp_path / "documents"
    first = save_upload(docs, "a.txt", b"one", max_bytes=MB)
    second = save_upload(docs, "a.txt", b"two", max_bytes=MB)
    third = save_upload(docs, "a.txt", b"three", max_bytes=MB)
    assert (first.outcome, second.outcome, third.outcome) == ("saved", "saved", "saved")
    assert [r.name for r in (first, second, third)] == ["a.txt", "a (2).txt", "a (3).txt"]
    assert (docs / "a.txt").read_bytes() == b"one"  # never overwritten
    assert (docs / "a (2).txt").read_bytes() == b"two"
    assert "saved as" in second.message


def test_same_content_is_a_no_op(tmp_path: Path) -> None:
    docs = tmp_path / "documents"
    save_upload(docs, "a.txt", b"same bytes", max_bytes=MB)
    again = save_upload(docs, "a.txt", b"same bytes", max_bytes=MB)
    renamed = save_upload(docs, "copy of a.txt", b"same bytes", max_bytes=MB)
    assert again.outcome == "duplicate" and renamed.outcome == "duplicate"
    assert "already in the collection as 'a.txt'" in renamed.message
    assert sorted(p.name for p in docs.iterdir()) == ["a.txt"]


def test_too_large_is_rejected_with_sizes(tmp_path: Path) -> None:
    docs = tmp_path / "documents"
    r = save_upload(docs, "big.pdf", b"x" * (2 * MB), max_bytes=MB)
    assert r.outcome == "rejected"
    assert "2.0 MB" in r.message and "1 MB limit" in r.message
    assert not docs.exists() or not any(docs.iterdir())


def test_bad_type_and_empty_are_rejected(tmp_path: Path) -> None:
    docs = tmp_path / "documents"
    bad = save_upload(docs, "run.sh", b"rm -rf /", max_bytes=MB)
    empty = save_upload(docs, "empty.txt", b"", max_bytes=MB)
    assert bad.outcome == "rejected" and "'.sh'" in bad.message
    assert empty.outcome == "rejected" and "empty" in empty.message
    assert not docs.exists() or not any(docs.iterdir())


def test_hidden_files_are_not_duplicates(tmp_path: Path) -> None:
    docs = tmp_path / "documents"
    docs.mkdir()
    (docs / ".secret.txt").write_bytes(b"abc")
    r = save_upload(docs, "visible.txt", b"abc", max_bytes=MB)
    assert r.outcome == "saved"


def test_allowed_types_are_ones_ingestion_parses() -> None:
    from ingest.load import SUPPORTED_SUFFIXES

    assert set(ALLOWED_SUFFIXES) <= set(SUPPORTED_SUFFIXES)
