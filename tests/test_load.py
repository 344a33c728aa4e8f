"""Loaders per format, decoding of non-UTF-8 text, and bad input reported with a reason."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter

from ingest.load import NO_TEXT, ParseError, decode_text, parse_file

PDFS = Path(__file__).parent / "data" / "pdfs"


def test_pdf_pages_are_one_based_and_hold_their_text() -> None:
    out = parse_file(PDFS / "pdflatex-4-pages.pdf", "pdfs/pdflatex-4-pages.pdf")
    assert out.error is None and out.document is not None
    pages = out.document.pages
    assert [p.number for p in pages] == [1, 2, 3, 4]
    assert pages[0].text.startswith("Hello, here is some text without a meaning.")
    assert out.document.source == "pdfs/pdflatex-4-pages.pdf"
    assert len(out.sha256) == 64 and out.warnings == []


def test_pdf_ligatures_are_folded() -> None:
    out = parse_file(PDFS / "multicolumn.pdf", "m.pdf")
    assert out.document is not None
    text = "\n".join(p.text for p in out.document.pages)
    assert "\ufb01" not in text and "filled" in text  # pypdf gives "ﬁlled"


def test_text_markdown_html(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("plain\r\ntext\r\n")
    (tmp_path / "b.md").write_text("# Title\n\nSome *markdown*.")
    (tmp_path / "c.html").write_text(
        "<!DOCTYPE html><?xml-stylesheet href='s.css'?><!-- a comment -->"
        "<html><head><title>t</title><style>p{color:red}</style></head><body>"
        "<h1>Heading</h1><p>First <b>para</b>graph.</p><script>var x = 'hidden';</script>"
        "<p>Second</p></body></html>"
    )
    docs = {n: parse_file(tmp_path / n, n).document for n in ("a.txt", "b.md", "c.html")}
    assert docs["a.txt"] is not None and docs["a.txt"].pages[0].text == "plain\ntext\n"
    assert docs["b.md"] is not None and docs["b.md"].pages[0].number is None
    html = docs["c.html"]
    assert html is not None
    text = html.pages[0].text
    assert "Heading" in text and "paragraph" in text and "Second" in text
    assert "hidden" not in text and "color" not in text
    assert text.lstrip().startswith("Heading"), "doctype, processing instruction and comment are not text"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Caf\u00e9 \u201cquoted\u201d \u20ac5".encode("cp1252"), "Café “quoted” €5"),
        ("na\u00efve \u00fcber".encode("latin-1"), "naïve über"),
        ("\u00fcber".encode("utf-8-sig"), "über"),
        ("h\u00e9llo".encode("utf-16"), "héllo"),
        ("caf\u00e9 \U0001f600".encode(), "café 😀"),
    ],
)
def test_decode_text(raw: bytes, expected: str) -> None:
    assert decode_text(raw) == expected


def test_cp1252_file_is_ingested_not_dropped(tmp_path: Path) -> None:
    p = tmp_path / "win.txt"
    p.write_bytes("Gr\u00fc\u00dfe aus K\u00f6ln \u2013 sch\u00f6n!".encode("cp1252"))
    out = parse_file(p, "win.txt")
    assert out.document is not None and out.document.pages[0].text == "Grüße aus Köln – schön!"


def test_binary_junk_named_txt_fails(tmp_path: Path) -> None:
    p = tmp_path / "junk.txt"
    p.write_bytes(random.Random(0).randbytes(4096))
    out = parse_file(p, "junk.txt")
    assert out.document is None and out.error is not None and "binary" in out.error


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_decode_never_crashes_on_arbitrary_bytes(data: bytes) -> None:
    try:
        text = decode_text(data)
    except ParseError as e:
        assert str(e)
    else:
        assert isinstance(text, str)


def _pdf_bytes(text_pages: int = 1, encrypt: str | None = None) -> bytes:
    w = PdfWriter()
    src = PdfReader(PDFS / "pdflatex-4-pages.pdf")
    for i in range(text_pages):
        w.add_page(src.pages[i])
    if encrypt is not None:
        w.encrypt(user_password=encrypt, owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_bad_pdfs_fail_with_reasons(tmp_path: Path) -> None:
    good = _pdf_bytes(2)
    cases = {
        "truncated.pdf": good[: len(good) // 3],
        "encrypted.pdf": _pdf_bytes(1, encrypt="secret"),
        "notapdf.pdf": b"this is just text pretending to be a PDF",
    }
    blank = PdfWriter()
    blank.add_blank_page(612, 792)
    buf = io.BytesIO()
    blank.write(buf)
    cases["scanned.pdf"] = buf.getvalue()
    reasons = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        out = parse_file(tmp_path / name, name)
        assert out.document is None, name
        reasons[name] = out.error or ""
    assert "encrypted" in reasons["encrypted.pdf"] and "password" in reasons["encrypted.pdf"]
    assert "corrupt" in reasons["truncated.pdf"] or "no text" in reasons["truncated.pdf"]
    assert "corrupt" in reasons["notapdf.pdf"]
    # A blank page is not a scan: saying "scanned PDF?" would send the user after OCR.
    assert "no images" in reasons["scanned.pdf"] and "scanned" not in reasons["scanned.pdf"]


def test_empty_password_pdf_opens(tmp_path: Path) -> None:
    # "Encrypted" only to restrict printing: readable with the empty user password.
    (tmp_path / "restricted.pdf").write_bytes(_pdf_bytes(1, encrypt=""))
    out = parse_file(tmp_path / "restricted.pdf", "restricted.pdf")
    assert out.error is None and out.document is not None


def test_blank_page_in_text_pdf_is_reported(tmp_path: Path) -> None:
    w = PdfWriter()
    w.add_page(PdfReader(PDFS / "pdflatex-4-pages.pdf").pages[0])
    w.add_blank_page(612, 792)
    buf = io.BytesIO()
    w.write(buf)
    (tmp_path / "mixed.pdf").write_bytes(buf.getvalue())
    out = parse_file(tmp_path / "mixed.pdf", "mixed.pdf")
    assert out.document is not None and len(out.document.pages) == 2
    assert out.warnings == [f"page 2: {NO_TEXT}"]


def test_empty_and_whitespace_files(tmp_path: Path) -> None:
    (tmp_path / "zero.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text("  \n\n\t ")
    assert "empty" in (parse_file(tmp_path / "zero.txt", "zero.txt").error or "")
    assert "no text" in (parse_file(tmp_path / "blank.md", "blank.md").error or "")
    assert "cannot read" in (parse_file(tmp_path / "missing.txt", "missing.txt").error or "")


def test_page_range_parts_merge_to_the_whole_document() -> None:
    from ingest.load import merge_parts, pdf_page_count

    path = PDFS / "pdflatex-outline.pdf"
    whole = parse_file(path, "o.pdf")
    assert pdf_page_count(path) == 4
    parts = [parse_file(path, "o.pdf", r) for r in [(2, 4), (0, 1), (1, 2)]]
    assert [p.number for p in parts[0].document.pages] == [3, 4]  # type: ignore[union-attr]
    merged = merge_parts(parts)
    assert merged.error is None and merged.document == whole.document
    assert merged.sha256 == whole.sha256


def test_merge_reports_a_failed_part(tmp_path: Path) -> None:
    from ingest.load import merge_parts

    path = PDFS / "pdflatex-outline.pdf"
    ok = parse_file(path, "o.pdf", (0, 2))
    missing = parse_file(tmp_path / "gone.pdf", "o.pdf", (2, 4))
    merged = merge_parts([ok, missing])
    assert merged.document is None and "cannot read" in (merged.error or "")
