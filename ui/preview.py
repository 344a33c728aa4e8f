"""What a citation opens: the PDF page as an image with the passage marked, or the
passage in the text around it; and a first look at any document of a collection.

Pages are rendered locally with PDFium (pypdfium2, already used by ingest/pdf.py) and
marked with Pillow (a pypdfium2 dependency for ``to_pil``). The passage is found on the
page by its text, not by offsets: ingestion normalises the page text (NFKC, line ends,
hyphen marks), so offsets into it do not index PDFium's characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageDraw

from ingest.load import ParseError, parse_bytes

PASSAGE_FILL = (255, 196, 0, 45)  # the passage: faint amber
EVIDENCE_FILL = (255, 196, 0, 110)  # the sentence or table row holding the answer: amber
WORD_FILL = (255, 120, 0, 120)  # the words supporting the answer: stronger
_CELL_GAP = 80  # most characters between two cells of one table row in the page's text
_WS = re.compile(r"\s+")


class PreviewError(ValueError):
    """The document cannot be shown (gone, outside the collection, unreadable)."""


def document_path(documents_dir: Path, source: str) -> Path:
    """The file of ``source`` inside the documents folder; never a path outside it."""
    root = documents_dir.resolve()
    path = (root / source).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise PreviewError(f"{source!r} is no longer in the collection (it may have been removed)")
    return path


def _normalised(raw: str) -> tuple[str, list[int]]:
    """``raw`` with whitespace runs as one space and NFKC applied, and for each character of
    the result the index of the raw character it came from."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(raw):
        if ch == "\ufffe":  # PDFium's mark for a hyphen joining a word across lines
            continue
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                where.append(i)
            continue
        for c in unicodedata.normalize("NFKC", ch):
            out.append(c)
            where.append(i)
    return "".join(out), where


def _find(haystack: str, needle: str) -> tuple[int, int] | None:
    """Span of ``needle`` in ``haystack`` (both normalised); its head if the whole is not found."""
    needle = needle.strip()
    for probe in (needle, needle[:120], needle[:40]):
        if probe:
            i = haystack.find(probe)
            if i != -1:
                return i, i + (len(needle) if probe == needle else len(probe))
    return None


def _find_row(haystack: str, row: str) -> tuple[int, int] | None:
    """Span of a table row quoted as ingestion writes it ("Austria | Population (millions):
    8.9 | Capital: Vienna") in the page's own text ("Austria 8.9 83,879 Vienna German"):
    its cells' values in order, each close after the one before."""
    values = [cell.split(": ", 1)[-1].strip() for cell in row.split(" | ")]
    values = [v for v in values if v]
    if len(values) < 2:
        return None
    start = 0
    while (first := haystack.find(values[0], start)) != -1:
        end = first + len(values[0])
        for v in values[1:]:
            i = haystack.find(v, end, end + _CELL_GAP + len(v))
            if i == -1:
                break
            end = i + len(v)
        else:
            return first, end
        start = first + 1
    return None


def _locate(haystack: str, text: str) -> tuple[int, int] | None:
    """Span of a quoted sentence or table row on the page (normalised), or None."""
    text = text.strip()
    if not text:
        return None
    if " | " in text:
        return _find_row(haystack, text)
    i = haystack.find(text)
    return (i, i + len(text)) if i != -1 else None


def _passage_spans(haystack: str, passage: str) -> list[tuple[int, int]]:
    """Where the passage is on the page: the whole (or its head), else each of its table
    rows, which ingestion wrote with their column headings ("Capital: Vienna") and the
    page's text holds without them."""
    text = _WS.sub(" ", unicodedata.normalize("NFKC", passage)).strip()
    if (i := haystack.find(text)) != -1:
        return [(i, i + len(text))]
    lines = [_WS.sub(" ", unicodedata.normalize("NFKC", line)).strip() for line in passage.splitlines()]
    located = [(line, _locate(haystack, line)) for line in lines if line]
    if any(sp is not None and " | " in line for line, sp in located):
        return [sp for _, sp in located if sp is not None]  # the rows, and the lines around them
    head = _find(haystack, text)  # its head, at least
    return [head] if head is not None else []


def evidence_text(quote: str) -> str:
    """The words of an evidence quote ('multicolumn.pdf, page 3: "..."'), without its place."""
    _, sep, rest = quote.partition(': "')
    return rest[:-1] if sep and rest.endswith('"') else quote


@dataclass(frozen=True)
class PageImage:
    image: Image.Image
    found: bool  # whether the passage was located on the page (else shown unmarked)
    evidence_found: bool = False  # whether the answer's sentence or row was (and is marked)


def pdf_page_image(path: Path, page: int, passage: str, words: set[str], *, scale: float = 1.6,
                   evidence: Sequence[str] = ()) -> PageImage:  # fmt: skip
    """Page ``page`` (1-based) of the PDF at ``path``: the passage faintly marked, the
    sentences or table rows of ``evidence`` (what the answer rests on) clearly, and the
    supporting ``words`` strongest, within the evidence when it is found, else the passage.

    The evidence is what the eye should land on: the passage (a chunk) starts wherever
    the splitter cut it, often a table's title or mid-word, far from the answer."""
    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as e:
        raise PreviewError(f"cannot open {path.name}: {e}") from e
    try:
        if not 1 <= page <= len(pdf):
            raise PreviewError(f"{path.name} has no page {page} (it has {len(pdf)})")
        pg = pdf[page - 1]
        image = pg.render(scale=scale).to_pil().convert("RGBA")
        height = pg.get_height()
        textpage = pg.get_textpage()
        norm, where = _normalised(textpage.get_text_range())
        spans = _passage_spans(norm, passage)
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)

        def mark(a: int, b: int, fill: tuple[int, int, int, int]) -> None:
            first, last = where[a], where[b - 1]
            for k in range(textpage.count_rects(first, last - first + 1)):
                left, bottom, right, top = textpage.get_rect(k)
                box = [left * scale, (height - top) * scale, right * scale, (height - bottom) * scale]
                draw.rectangle(box, fill=fill)

        for a, b in spans:
            mark(a, b, PASSAGE_FILL)
        quotes = (_WS.sub(" ", unicodedata.normalize("NFKC", q)) for q in evidence)
        found = [sp for q in quotes if (sp := _locate(norm, q)) is not None]
        for a, b in found:
            mark(a, b, EVIDENCE_FILL)
        lowered = norm.lower()
        for a, b in found or spans:
            for w in words:
                for m in re.finditer(rf"(?<!\w){re.escape(w.lower())}(?!\w)", lowered[a:b]):
                    mark(a + m.start(), a + m.end(), WORD_FILL)
        textpage.close()
        pg.close()
        shown = Image.alpha_composite(image, overlay).convert("RGB")
        return PageImage(shown, bool(spans) or bool(found), bool(found))
    finally:
        pdf.close()


def pdf_pages(path: Path) -> int:
    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as e:
        raise PreviewError(f"cannot open {path.name}: {e}") from e
    try:
        return len(pdf)
    finally:
        pdf.close()


@dataclass(frozen=True)
class TextContext:
    before: str
    passage: str
    after: str


def document_text(path: Path) -> str:
    """The text ingestion read from a non-PDF document (offsets of its passages index it)."""
    try:
        pages, _ = parse_bytes(path.read_bytes(), path.suffix.lower(), [], ocr=False)
    except (OSError, ParseError) as e:
        raise PreviewError(f"cannot read {path.name}: {e}") from e
    return "\n\n".join(p.text for p in pages)


def text_context(text: str, passage: str, start: int, end: int, around: int = 1200) -> TextContext:
    """The passage with up to ``around`` characters either side, from the document's text."""
    if not (0 <= start < end <= len(text) and text[start:end] == passage):
        i = text.find(passage)  # offsets from an older parse: find the passage by its text
        if i == -1:
            return TextContext("", passage, "")
        start, end = i, i + len(passage)
    a, b = max(0, start - around), min(len(text), end + around)
    before = ("…" if a > 0 else "") + text[a:start]
    after = text[end:b] + ("…" if b < len(text) else "")
    return TextContext(before, text[start:end], after)
