"""Parse one file into a ``ParsedDocument``: PDF per page (1-based), text, Markdown, HTML.

``parse_file`` is a pure function of a path, so it can run in a worker process (see
``ingest.runner``). It never raises for a bad document: the outcome says what went wrong,
because one corrupt file must not stop a folder of thousands.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.pdf import NO_TEXT, NO_TEXT_LAYER, PdfError, page_count, read_pdf
from rag.types import Page, ParsedDocument

__all__ = ["NO_TEXT", "NO_TEXT_LAYER", "ParseError", "ParseOutcome", "compact_warnings", "failed_job",
           "parse_file", "parse_job"]

PDF_SUFFIXES = frozenset({".pdf"})
TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
SUPPORTED_SUFFIXES = PDF_SUFFIXES | TEXT_SUFFIXES | HTML_SUFFIXES



class ParseError(Exception):
    """A file that cannot be turned into text; the message is the reason shown to the user."""


@dataclass(frozen=True)
class ParseOutcome:
    """What parsing one file produced. Plain data, so it crosses process boundaries."""

    source: str  # path relative to the corpus root, POSIX separators
    sha256: str  # of the bytes that were parsed (the file may change while we run)
    document: ParsedDocument | None  # None when the file failed
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. pages without a text layer
    page_range: tuple[int, int] | None = None  # the part of a PDF parsed, if only a part


def parse_file(
    path: Path, source: str, page_range: tuple[int, int] | None = None, *, ocr: bool = True
) -> ParseOutcome:
    """Parse ``path`` (shown to the user as ``source``) by its suffix; never raises ParseError.

    ``page_range`` = (first, stop), 0-based, parses only those pages of a PDF (page numbers
    stay those of the whole document), so one long book can be parsed by several workers;
    the caller then merges the parts and applies :func:`check_has_text`. ``ocr`` lets
    scanned PDF pages be read by OCR (``Settings.ocr``).
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        return ParseOutcome(source, "", None, f"cannot read file: {e.strerror or e}",
                            page_range=page_range)
    sha = hashlib.sha256(data).hexdigest()
    warnings: list[str] = []
    suffix = path.suffix.lower()
    try:
        pages, title = parse_bytes(data, suffix, warnings, page_range, ocr=ocr)
        if page_range is None:
            check_has_text(pages, suffix, warnings)
    except ParseError as e:
        return ParseOutcome(source, sha, None, str(e), warnings, page_range)
    doc = ParsedDocument(source=source, pages=pages, title=title)
    return ParseOutcome(source, sha, doc, None, warnings, page_range)


# (path, source, PDF page range or None, OCR scanned pages)
ParseJob = tuple[str, str, tuple[int, int] | None, bool]


def parse_job(job: ParseJob) -> ParseOutcome:
    """``parse_file`` on plain data, for ``StageRunner.map``.

    It lives here, not in the pipeline module, so a worker process imports only what
    parsing needs (spawned workers start from scratch).
    """
    path, source, page_range, ocr = job
    return parse_file(Path(path), source, page_range, ocr=ocr)


def count_job(job: tuple[str, str]) -> tuple[str, int | None]:
    """(source, pages of the PDF at path, or None if unreadable), for ``StageRunner.map``."""
    path, source = job
    return source, pdf_page_count(Path(path))


def count_failed(job: tuple[str, str], reason: str) -> tuple[str, int | None]:
    return job[1], None


def failed_job(job: ParseJob, reason: str) -> ParseOutcome:
    """The outcome of a job whose parser was stopped (time or memory limit, a crash)."""
    _, source, page_range, _ = job
    return ParseOutcome(source, "", None, reason, page_range=page_range)


_PAGE_WARNING = re.compile(r"^page (\d+): (.*)$", re.DOTALL)


def compact_warnings(warnings: list[str], keep: int = 2) -> list[str]:
    """Page warnings with the same reason merged into one ("pages 1-60 (60 pages): ...")."""
    pages: dict[str, list[int]] = {}
    out: list[str] = []
    for w in warnings:
        m = _PAGE_WARNING.match(w)
        if m is None:
            out.append(w)
        else:
            pages.setdefault(m.group(2), []).append(int(m.group(1)))
    for reason, numbers in pages.items():
        if len(numbers) <= keep:
            out.extend(f"page {n}: {reason}" for n in numbers)
        else:
            out.append(f"pages {_ranges(sorted(numbers))} ({len(numbers)} pages): {reason}")
    return out


def _ranges(numbers: list[int]) -> str:
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs[:8])
    return text + (", ..." if len(runs) > 8 else "")


def check_has_text(pages: list[Page], suffix: str, warnings: Sequence[str] = ()) -> None:
    """Raise ParseError, with the most likely reason, when no page has any text."""
    if any(p.text.strip() for p in pages):
        return
    if suffix not in PDF_SUFFIXES:
        raise ParseError("no text in file (only whitespace or markup)")
    n = len(pages)
    unreadable = sum(": cannot be read" in w or "extraction failed" in w for w in warnings)
    if unreadable and unreadable >= n:
        raise ParseError(f"corrupt PDF: none of its {n} page(s) can be read (a damaged page "
                         "tree, e.g. a reference loop)")
    if any(NO_TEXT_LAYER in w for w in warnings):
        raise ParseError(f"no text on any of its {n} page(s): {NO_TEXT_LAYER}")
    raise ParseError(f"no text on any of its {n} page(s): no text layer and no images (blank "
                     "pages or drawings only)")


def pdf_page_count(path: Path) -> int | None:
    """Pages of a PDF from its page tree (cheap: no text is extracted); None if unreadable."""
    try:
        return page_count(path.read_bytes())
    except (OSError, PdfError):  # the whole-file parse reports it properly
        return None


def parse_bytes(
    data: bytes, suffix: str, warnings: list[str], page_range: tuple[int, int] | None = None,
    *, ocr: bool = True,
) -> tuple[list[Page], str]:
    """Pages and title ("" if none) of a document given its bytes and lower-case suffix;
    appends page-level warnings."""
    if not data:
        raise ParseError("empty file (0 bytes)")
    if suffix in PDF_SUFFIXES:
        try:
            pdf = read_pdf(data, warnings, page_range, ocr=ocr)
        except PdfError as e:
            raise ParseError(str(e)) from e
        return pdf.pages, pdf.title
    if suffix in HTML_SUFFIXES:
        return [Page(None, html_to_text(data))], ""
    if suffix in TEXT_SUFFIXES:
        return [Page(None, _clean(decode_text(data)))], ""
    raise ParseError(
        f"unsupported file type {suffix!r} (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})"
    )


# --- text decoding ---------------------------------------------------------------------

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    # The plain utf-16/utf-32 codecs read the BOM and drop it; UTF-32-LE's BOM starts
    # like UTF-16-LE's, so it is tried first.
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# Control characters that never occur in real text (tab, newlines, form feed do).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode_text(data: bytes) -> str:
    """Decode text of unknown encoding: BOM, then UTF-8, then Windows-1252, then Latin-1.

    Windows-1252 before Latin-1 because that is what "not UTF-8" usually means for files
    written on Windows (curly quotes, euro sign); Latin-1 accepts any byte, so it is the
    last resort. Binary junk is rejected rather than indexed as mojibake.
    """
    text: str | None = None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as e:
                raise ParseError(
                    f"starts with a {codec} byte-order mark but is not {codec}: {e}"
                ) from e
            break
    if text is None:
        for codec in ("utf-8", "cp1252", "latin-1"):
            try:
                text = data.decode(codec)
                break
            except UnicodeDecodeError:
                continue
    assert text is not None  # latin-1 decodes every byte string
    sample = text[:65536]
    bad = len(_CONTROL.findall(sample))
    # subtle: a single NUL is enough to call it binary (UTF-16 without a BOM lands here too,
    # and indexing it as text would be garbage either way).
    if "\x00" in sample or bad > max(8, len(sample) // 100):
        raise ParseError("binary content, not text (control bytes found); is the suffix wrong?")
    return text


def _clean(text: str) -> str:
    # Newlines are normalised so paragraph detection in the splitter sees "\n\n" everywhere;
    # stray control characters would only confuse the tokenizer.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(" ", text)


# --- HTML ------------------------------------------------------------------------------

_DROP_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
    "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul", "title",
)
_WS = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n[ \t\f\v]*(?:\n[ \t\f\v]*)+")


def html_to_text(data: bytes) -> str:
    """Visible text of an HTML page as a browser lays it out: blocks separated by blank
    lines, inline markup (<b>, <a>, ...) joined without breaking words."""
    from bs4 import BeautifulSoup
    from bs4.element import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction

    # Decode ourselves so non-UTF-8 pages follow the same rules as text files; a <meta
    # charset> that disagrees is rare and the fallback chain handles the usual cp1252 case.
    soup = BeautifulSoup(decode_text(data), "html.parser")
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    # subtle: these are strings too; the whitespace pass below would turn them into plain
    # text ("html" from <!DOCTYPE html> leading the first chunk).
    hidden = (Comment, Doctype, Declaration, ProcessingInstruction)
    for node in soup.find_all(string=lambda t: isinstance(t, hidden)):
        node.extract()
    # HTML collapses whitespace runs (except in <pre>); do that before adding our breaks.
    for string in soup.find_all(string=True):
        if string.find_parent("pre") is None:
            string.replace_with(_WS.sub(" ", str(string)))
    for br in soup.find_all("br"):
        br.replace_with(NavigableString("\n"))
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before(NavigableString("\n\n"))
        tag.insert_after(NavigableString("\n\n"))
    for cell in soup.find_all(("td", "th")):
        cell.insert_after(NavigableString(" "))
    text = _clean(soup.get_text(""))
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


# --- PDF ---------------------------------------------------------------------------------
# (the PDF readers and OCR live in ingest.pdf / ingest.ocr)


def merge_parts(parts: list[ParseOutcome]) -> ParseOutcome:
    """One outcome from the page-range parts of one PDF (see ``parse_file(page_range=)``)."""
    parts = sorted(parts, key=lambda o: o.page_range or (0, 0))
    first = parts[0]
    warnings = [w for o in parts for w in o.warnings]
    failed = next((o for o in parts if o.error is not None), None)
    if failed is not None:
        return ParseOutcome(first.source, failed.sha256, None, failed.error, warnings)
    if len({o.sha256 for o in parts}) > 1:
        return ParseOutcome(first.source, first.sha256, None,
                            "file changed while it was being read; run ingest again", warnings)
    pages = [p for o in parts if o.document is not None for p in o.document.pages]
    try:
        check_has_text(pages, ".pdf", warnings)
    except ParseError as e:
        return ParseOutcome(first.source, first.sha256, None, str(e), warnings)
    title = next((o.document.title for o in parts if o.document is not None), "")
    doc = ParsedDocument(source=first.source, pages=pages, title=title)
    return ParseOutcome(first.source, first.sha256, doc, None, warnings)
