"""PDF pages as text: PDFium first, pypdf where PDFium cannot open a file, OCR for scans.

Why PDFium (pypdfium2): on the financebench filings it extracts the same words as pypdf
about 20x faster (3M's 160-page 10-K: 0.9 s against 21 s) and keeps a table row on one
line ("Depreciation and amortization 1,488 1,544 1,474"; :mod:`ingest.tables` then puts
each value under its column heading), where pypdf puts every cell on a
line of its own and splits words at font changes ("Cash Flow\\n \\ns"). pypdf stays as the
fallback for files PDFium refuses (it repairs some damaged cross-reference tables), and
decrypts AES files with its ``cryptography`` extra.

A page without usable text (a scan) is OCRed (see :mod:`ingest.ocr`) when it shows an
image and OCR is on; pages with a text layer never pay for OCR.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from ingest.tables import linearize_tables
from rag.types import Page

NO_TEXT_LAYER = "no text layer: scanned PDF? OCR found no text (or is off: RAG_OCR)"
#: A page with neither text nor an image: blank, or only drawn (paths). Not a scan, so
#: "scanned PDF?" would send the user looking for an OCR problem that is not there.
NO_TEXT = "no text and no image: a blank page or drawings only"
#: A page with fewer non-space characters than this is treated as having no text layer
#: (scans often carry a stray page number or a copier's stamp as real text).
MIN_PAGE_CHARS = 16

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class PdfError(Exception):
    """The PDF cannot be read at all; the message is the reason shown to the user."""


class PdfPasswordError(PdfError):
    """The PDF needs a user password we do not have."""


@dataclass(frozen=True)
class PdfText:
    pages: list[Page]
    title: str  # the document's metadata title ("" when absent)
    engine: str  # "pdfium" or "pypdf"


def clean_page_text(raw: str) -> str:
    # NFKC folds ligatures ("ﬁ" -> "fi") and full-width forms, which the tokenizer and
    # BM25 would otherwise treat as unknown symbols; newlines are normalised so the
    # splitter sees "\n\n" paragraphs everywhere.
    text = unicodedata.normalize("NFKC", raw).replace("\r\n", "\n").replace("\r", "\n")
    # Subtle: PDFium marks a hyphen that breaks a word at a line end as U+FFFE (a
    # non-character) and joins the lines: dropping it gives the whole word back
    # ("adip\ufffeiscing" -> "adipiscing"), which search and the reader both want.
    return _CONTROL.sub(" ", text.replace("\ufffe", ""))


def page_count(data: bytes) -> int:
    """Pages of a PDF from its page tree; raises PdfError when unreadable."""
    doc = _open_pdfium(data)
    try:
        return len(doc)
    finally:
        doc.close()


def read_pdf(
    data: bytes,
    warnings: list[str],
    page_range: tuple[int, int] | None = None,
    *,
    ocr: bool = True,
) -> PdfText:
    """Text of each page (1-based numbers) of ``data``; page problems go to ``warnings``."""
    try:
        doc = _open_pdfium(data)
    except PdfPasswordError:
        raise
    except PdfError as pdfium_error:
        try:
            return read_pypdf(data, warnings, page_range)
        except PdfPasswordError:
            raise
        except PdfError:
            raise pdfium_error from None
    try:
        n = len(doc)
        if n == 0:
            raise PdfError("PDF has no pages")
        first, stop = page_range if page_range is not None else (0, n)
        pages: list[Page] = []
        for i in range(max(0, first), min(stop, n)):
            pages.append(Page(i + 1, _pdfium_page_text(doc, i, warnings, ocr)))
        title = str(doc.get_metadata_dict(skip_empty=True).get("Title", ""))
        return PdfText(pages, _clean_title(title), "pdfium")
    finally:
        doc.close()


def _open_pdfium(data: bytes) -> Any:
    import pypdfium2 as pdfium

    try:
        # password=None tries the empty user password, which opens the many "encrypted"
        # PDFs that only restrict printing or copying (AES ones included).
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        if "password" in str(e).lower():
            raise PdfPasswordError(
                "encrypted PDF: a password is required to open it (remove the password, "
                "e.g. print to PDF, and ingest again)"
            ) from e
        raise PdfError(f"corrupt or unreadable PDF: {e}") from e


def _pdfium_page_text(doc: Any, i: int, warnings: list[str], ocr: bool) -> str:
    try:
        page = doc[i]
    except Exception as e:  # one damaged page should not lose the rest of the book
        warnings.append(f"page {i + 1}: cannot be read ({type(e).__name__}: {e})")
        return ""
    try:
        textpage = page.get_textpage()
        try:
            raw = textpage.get_text_range()
            try:
                raw = linearize_tables(textpage, raw)
            except Exception as e:  # the page's plain text is still good
                warnings.append(f"page {i + 1}: table layout not read ({type(e).__name__}: {e})")
            text = clean_page_text(raw)
        finally:
            textpage.close()
        if _usable(text):
            return text
        has_image = _has_image(page)
        if not has_image:
            warnings.append(f"page {i + 1}: {NO_TEXT}")
            return text
        if ocr:
            from ingest.ocr import ocr_page

            try:
                found = ocr_page(page)
            except Exception as e:  # an OCR failure costs this page, not the file
                warnings.append(f"page {i + 1}: OCR failed ({type(e).__name__}: {e})")
                found = ""
            if _usable(found):
                warnings.append(f"page {i + 1}: no text layer; text recognised by OCR")
                return clean_page_text(found)
        warnings.append(f"page {i + 1}: {NO_TEXT_LAYER}")
        return text
    except Exception as e:
        warnings.append(f"page {i + 1}: text extraction failed ({type(e).__name__}: {e})")
        return ""
    finally:
        page.close()


def _usable(text: str) -> bool:
    return sum(not c.isspace() for c in text) >= MIN_PAGE_CHARS


def _has_image(page: Any) -> bool:
    import pypdfium2.raw as pdfium_c

    # Only image objects can hold a scan; a page of vector drawings or a blank page is
    # not worth a second of OCR. max_depth reaches images nested in form XObjects.
    return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3))


_ACCESSION = re.compile(r"^[\d\s-]+$")


def _clean_title(title: str) -> str:
    title = " ".join(title.split())
    # Producers fill Title with junk: an SEC accession number, "untitled", "Microsoft Word - x".
    if not title or _ACCESSION.match(title) or title.lower() in {"untitled", "title"}:
        return ""
    return title.removeprefix("Microsoft Word - ")[:200]


def read_pypdf(
    data: bytes, warnings: list[str], page_range: tuple[int, int] | None = None
) -> PdfText:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    # pypdf logs every recoverable oddity of real-world PDFs at WARNING; we report what
    # matters ourselves (per file and per page), so keep its noise out of the terminal.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise PdfPasswordError("encrypted PDF: a password is required to open it")
        n = len(reader.pages)
    except PdfError:
        raise
    except (FileNotDecryptedError, DependencyError) as e:
        raise PdfError(f"encrypted PDF: cannot decrypt ({e})") from e
    # pypdf raises a zoo of exceptions on corrupt input (PdfReadError, ValueError,
    # KeyError, struct errors, ...); each means "this file is damaged".
    except Exception as e:
        raise PdfError(f"corrupt or unreadable PDF: {type(e).__name__}: {e}") from e
    if n == 0:
        raise PdfError("PDF has no pages")
    first, stop = page_range if page_range is not None else (0, n)
    pages: list[Page] = []
    for i in range(max(0, first), min(stop, n)):
        try:
            text = clean_page_text(reader.pages[i].extract_text() or "")
        except Exception as e:
            warnings.append(f"page {i + 1}: text extraction failed ({type(e).__name__}: {e})")
            text = ""
        else:
            if not _usable(text):
                # No OCR here: pypdf cannot render a page; PDFium refused this file.
                warnings.append(f"page {i + 1}: {NO_TEXT_LAYER}")
        pages.append(Page(i + 1, text))
    meta = reader.metadata
    title = str(meta.title) if meta is not None and meta.title else ""
    return PdfText(pages, _clean_title(title), "pypdf")
