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

from rag.retrieval.statements import page_statements
from rag.store.terms import split_years
from rag.types import HEADER_SEP, ParsedDocument

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


def document_header(doc: ParsedDocument) -> str:
    """File name words, title and reporting period of ``doc`` (first line of a header)."""
    stem = PurePosixPath(doc.source).stem
    # "3M_2018_10K" -> "3M 2018 10K"; "AMCOR_2023Q2_10Q" -> "AMCOR 2023 Q2 10Q" (letters
    # glued to years are split, so "2023" matches a question's "FY2023" after the same
    # split on the query side; see rag.store.terms).
    words = re.sub(r"[_\-.]+", " ", stem)
    words = split_years(" ".join(words.split()))
    # A name without letters ("0003.txt", "2019-04.pdf") says nothing about the
    # content and would only add noise to every chunk of the file.
    parts = [words] if any(c.isalpha() for c in words) else []
    if doc.title and doc.title.lower() not in words.lower():  # "" if no title
        parts.append(doc.title)
    period = _period(doc)
    if period:
        parts.append(period)
    return HEADER_SEP.join(p for p in parts if p)[:MAX_HEADER_CHARS]


def _period(doc: ParsedDocument) -> str:
    for page in doc.pages[:3]:
        m = _PERIOD.search(page.text[:6000])
        if m:
            return " ".join(m.group(0).split())
    return ""


def page_headings(doc: ParsedDocument) -> list[str]:
    """One heading per page of ``doc``: its first lines that are not running headers."""
    # One line more than is looked at: joining unfinished lines shortens the list.
    firsts = [_continued(_lines(p.text)[:7])[:6] for p in doc.pages]
    counts = Counter(line for lines in firsts for line in set(lines))
    limit = max(2, int(len(doc.pages) * _RUNNING_SHARE))
    out: list[str] = []
    for lines in firsts:
        # Running headers, page numbers and rows of figures say nothing about the page.
        candidates = [line for line in lines if any(c.isalpha() for c in line)
                      and not (len(doc.pages) > 2 and counts[line] > limit)]
        kept: list[str] = []
        for line in candidates:
            kept.append(line)
            if sum(len(k) for k in kept) >= 40 or len(kept) == 2:
                break
        # A statement's title comes after a long company name ("JOHNSON & JOHNSON AND
        # SUBSIDIARY COMPANIES"): keep it, the retriever ranks statement pages by it.
        if not page_statements(HEADER_SEP.join(kept)):
            title = next((line for line in candidates if page_statements(line)), None)
            if title is not None and title not in kept:
                kept = [kept[0], title]
        out.append(HEADER_SEP.join(kept)[:_HEADING_CHARS])
    return out


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.split("\n") if line.strip()]


def _continued(lines: list[str]) -> list[str]:
    """``lines`` with unfinished lines joined: one that ends in a comma continues on the
    next, and a run of one-word lines is one line. Headings set in large type break early
    ("SQUARE, / INC. / CONSOLIDATED / BALANCE / SHEETS"); their fragments would otherwise
    fill the heading's two lines before the title."""
    out: list[str] = []
    single = False  # the last line of ``out`` is made of one-word lines only
    for line in lines:
        one_word = " " not in line
        if out and (out[-1].endswith(",") or (single and one_word)):
            out[-1] = f"{out[-1]} {line}"
            single = single and one_word
        else:
            out.append(line)
            single = one_word
    return out


def chunk_headers(doc: ParsedDocument) -> list[str]:
    """The header of every page of ``doc`` (document line, then page heading)."""
    head = document_header(doc)
    if len(doc.pages) == 1 and doc.pages[0].number is None:
        return [head]  # a text/HTML file: its name (and title) is the context
    return [f"{head}\n{h}" if h else head for h in page_headings(doc)]
