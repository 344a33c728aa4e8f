"""Contextual chunk headers: what document and page a passage comes from, in words.

A passage of a long filing rarely names its company, period or statement ("Purchases of
property, plant and equipment (1,577)"), while the question does ("FY2018 capital
expenditure for 3M"). Each chunk therefore carries a short header, embedded and keyword-
indexed with it (``Chunk.indexed_text``):

    3M 2018 10K · 10-K - 02/07/2019 - 3M Company · fiscal year ended December 31, 2018
    3M Company and Subsidiaries · Consolidated Statement of Cash Flows

line 1 from the file name, the PDF's title and the reporting period found on its first
pages; line 2 the page's own heading (its first lines, minus running headers).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import PurePosixPath

from rag.types import ParsedDocument

#: Header length cap in characters (~40 tokens), so the passage keeps the encoder's budget.
MAX_HEADER_CHARS = 200
_HEADING_CHARS = 90
#: A line on more than this share of a document's pages is a running header or footer
#: ("Table of Contents", the company name), which says nothing about the page.
_RUNNING_SHARE = 0.2
_PERIOD = re.compile(
    r"\b(?:fiscal\s+)?(?:year|quarter|quarterly\s+period|period|(?:three|six|nine|twelve)"
    r"\s+months)\s+ended\s+[A-Z][a-z]+\s+\d{1,2},?\s+\d{4}",
    re.IGNORECASE,
)
_SEP = " · "


def document_header(doc: ParsedDocument) -> str:
    """File name words, title and reporting period of ``doc`` (first line of a header)."""
    stem = PurePosixPath(doc.source).stem
    # "3M_2018_10K" -> "3M 2018 10K"; "AMCOR_2023Q2_10Q" -> "AMCOR 2023 Q2 10Q" (letters
    # glued to years are split, so "2023" matches a question's "FY2023" after the same
    # split on the query side; see rag.keywords).
    words = re.sub(r"[_\-.]+", " ", stem)
    words = " ".join(_split_year(w) for w in words.split())
    # A name without letters ("0003.txt", "2019-04.pdf") says nothing about the
    # content and would only add noise to every chunk of the file.
    parts = [words] if any(c.isalpha() for c in words) else []
    if doc.title and doc.title.lower() not in words.lower():  # "" if no title
        parts.append(doc.title)
    period = _period(doc)
    if period:
        parts.append(period)
    return _SEP.join(p for p in parts if p)[:MAX_HEADER_CHARS]


def _split_year(word: str) -> str:
    # Only 4-digit runs (years) are cut from letters: "10K" and "3M" stay whole.
    return re.sub(r"(?<=\d{4})(?=[A-Za-z])|(?<=[A-Za-z])(?=\d{4}\b)", " ", word)


def _period(doc: ParsedDocument) -> str:
    for page in doc.pages[:3]:
        m = _PERIOD.search(page.text[:6000])
        if m:
            return " ".join(m.group(0).split())
    return ""


def page_headings(doc: ParsedDocument) -> list[str]:
    """One heading per page of ``doc``: its first lines that are not running headers."""
    firsts = [_lines(p.text)[:6] for p in doc.pages]
    counts = Counter(line for lines in firsts for line in set(lines))
    limit = max(2, int(len(doc.pages) * _RUNNING_SHARE))
    out: list[str] = []
    for lines in firsts:
        kept: list[str] = []
        for line in lines:
            if len(doc.pages) > 2 and counts[line] > limit:
                continue
            if not any(c.isalpha() for c in line):
                continue  # a page number or a row of figures
            kept.append(line)
            if sum(len(k) for k in kept) >= 40 or len(kept) == 2:
                break
        out.append(_SEP.join(kept)[:_HEADING_CHARS])
    return out


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.split("\n") if line.strip()]


def chunk_headers(doc: ParsedDocument) -> list[str]:
    """The header of every page of ``doc`` (document line, then page heading)."""
    head = document_header(doc)
    if len(doc.pages) == 1 and doc.pages[0].number is None:
        return [head]  # a text/HTML file: its name (and title) is the context
    return [f"{head}\n{h}" if h else head for h in page_headings(doc)]
