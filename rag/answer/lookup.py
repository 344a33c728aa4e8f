"""Answers looked up in table rows: the cell under the heading the question names, in the
row it names.

Ingestion writes a PDF table row with its headings (see :mod:`ingest.tables`)::

    Austria | Population (millions): 8.9 | Area (km2): 83,879 | Capital: Vienna

"What is the capital of Austria?" names the row ("Austria") and the heading ("capital");
the answer is that cell, "Vienna". A table laid out by columns comes out with the roles
swapped ("Capital | Indonesia: Jakarta | Germany: Berlin"), so a question may name either
as the row. The extractive reader (trained on prose) is unsure in such lines; this lookup
is exact, and refuses when two different cells fit the question equally well.

The same goes for a table of contents ("5 Bar 3": "on which page does section 5 Bar
start?") and for questions about a document rather than its content: its title (the first
line of its first page) and which document says something (the file the best passage
comes from). Each looked-up span says what it is (``Span.kind``) and what the decoder reads
of it (``statement``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.text import FUNCTION_WORDS, content_stems, content_words, normalize_text, sentence_spans
from rag.types import Source, Span

CELL_SEP = " | "  # as written by ingest.tables
#: Margin given to a looked-up cell: above any margin the reader gives a prose span, so
#: the cell is the chain's best candidate; the decoder must still state it.
LOOKUP_MARGIN = 20.0

_LINE = re.compile(r"[^\n]+")
# A table-of-contents line: "5 Bar 3", "2.1 Methods ........ 14": a label ending in a letter
# or bracket, dots or spaces, a page number.
_TOC_LINE = re.compile(r"^(?P<label>\S.{0,120}?[^\d\s.])[\s.]+(?P<page>\d{1,4})\s*$")
_SECTION_NUMBER = re.compile(r"\d+(?:\.\d+)*\.?\s+(?=\S)")
_TOC_MIN_LINES = 3  # fewer lines ending in a number are more likely prose than contents
# "What is the title of the (two-column) document?", "the paper's title": a question about
# the document itself, not "the title of the book Dewar wrote".
_DOC = r"(?:document|file|pdf|paper|report|article|notes?)"
_TITLE_Q = re.compile(
    rf"\btitle of (?:the|this|that|my|our)\s+(?:[\w-]+\s+){{0,3}}{_DOC}\b|\b{_DOC}'s title\b", re.IGNORECASE
)
# "Which document / file / PDF ...?", "what document ...?" ("what file format" asks for a
# format, "which report" may be about one the text names: neither is taken).
_WHICH_DOC_Q = re.compile(r"\bwhich\s+(?:document|file|pdf)s?\b|\bwhat\s+documents?\b", re.IGNORECASE)
#: Words a "which document ..." question uses to ask, not to say what the document holds.
_ASKING = frozenset(["document", "documents", "file", "files", "pdf", "paper", "report", "source",
                     "text", "mention", "mentions", "talk", "talks", "say", "says", "contain",
                     "contains", "describe", "describes", "list", "lists", "listing", "show",
                     "shows", "discuss", "discusses", "explain", "explains", "give", "gives"])
_TITLE_WORDS = (2, 20)  # a first line this long (in words) can be a title
_SHOWN_CHARS = 200  # of the passage a "which document" answer quotes


@dataclass(frozen=True)
class Cell:
    heading: str
    value: str
    start: int  # of the value in the passage
    end: int


def _rows(passage: str) -> list[tuple[str, list[Cell]]]:
    """(row label, cells) of every table row in ``passage``."""
    rows: list[tuple[str, list[Cell]]] = []
    for m in _LINE.finditer(passage):
        parts = m.group().split(CELL_SEP)
        if len(parts) < 3:
            continue
        cells: list[Cell] = []
        pos = m.start() + len(parts[0]) + len(CELL_SEP)
        for part in parts[1:]:
            heading, sep, value = part.partition(": ")
            if sep and value.strip():
                start = pos + len(heading) + len(sep)
                cells.append(Cell(heading.strip(), value.strip(), start, start + len(value.rstrip())))
            pos += len(part) + len(CELL_SEP)
        if len(cells) >= 2:
            rows.append((parts[0].strip(), cells))
    return rows


def table_rows(passage: str) -> list[tuple[str, list[Cell]]]:
    """(row label, cells) of every table row in ``passage`` (figures are read from them:
    :mod:`rag.answer.figures`)."""
    return _rows(passage)


def _toc_rows(passage: str) -> list[tuple[str, list[Cell]]]:
    """(entry, [its page]) of every table-of-contents line in ``passage``: a run of at least
    three such lines whose page numbers never go down."""
    rows: list[tuple[str, list[Cell]]] = []
    run: list[tuple[str, Cell]] = []

    def close() -> None:
        if len(run) >= _TOC_MIN_LINES:
            rows.extend((label, [cell]) for label, cell in run)
        run.clear()

    for m in _LINE.finditer(passage):
        entry = _TOC_LINE.match(m.group())
        if entry is None or CELL_SEP in m.group():
            close()
            continue
        cell = Cell("page", entry["page"], m.start() + entry.start("page"), m.start() + entry.end("page"))
        if run and int(cell.value) < int(run[-1][1].value):
            close()
        run.append((entry["label"].strip(" ."), cell))
    close()
    return rows


def _names(label: str, asked: set[str]) -> int:
    """How many words of ``label`` the question uses, when it uses most of them (0 if not)."""
    words = content_stems(label)
    hits = len(words & asked)
    return hits if words and hits * 3 >= len(words) * 2 else 0


def _entry_hits(label: str, asked: set[str]) -> int:
    """``_names`` for a contents entry, whose section number ("5 Bar", "2.1 Data") the
    question may leave out ("the Results section") but counts when given."""
    number = _SECTION_NUMBER.match(label)
    if number is None:
        return _names(label, asked)
    hits = _names(label[number.end():], asked)
    return hits + (hits > 0 and normalize_text(number.group()) in asked)


def lookup(question: str, passages: Sequence[str]) -> list[Span]:
    """The cell the question asks for, as a span (at most one; none when unsure)."""
    asked = content_stems(question)
    best: list[tuple[int, str, Cell]] = []  # (passage, kind, cell)
    top = 0
    for p, passage in enumerate(passages):
        rows = [(label, cells, "cell") for label, cells in _rows(passage)]
        rows += [(label, cells, "toc") for label, cells in _toc_rows(passage)]
        for label, cells, kind in rows:
            row_hits = _entry_hits(label, asked) if kind == "toc" else _names(label, asked)
            if not row_hits:
                continue
            for cell in cells:
                col_hits = len(content_stems(cell.heading) & asked)
                value = content_stems(cell.value)
                if not col_hits or (value & asked and not value - asked):
                    continue  # the question names no heading, or already says the value
                score = row_hits + col_hits
                if score > top:
                    best, top = [(p, kind, cell)], score
                elif score == top:
                    best.append((p, kind, cell))
    if not best or len({normalize_text(c.value) for _, _, c in best}) > 1:
        return []  # nothing fits, or two different cells fit equally well
    p, kind, cell = best[0]
    return [Span(p, cell.start, cell.end, cell.value, LOOKUP_MARGIN + top, 0.0, kind=kind)]


def document_lookup(question: str, sources: Sequence[Source], passages: Sequence[str]) -> list[Span]:
    """The title or the name of the document a question asks for (at most one span).

    ``passages`` are the sources' texts as the reader sees them (masked), in the same order.
    """
    if _TITLE_Q.search(question) and sources:
        for p, src in enumerate(sources):
            # The very start of the document the best passage comes from.
            if src.source == sources[0].source and src.start == 0 and src.page in (None, 1):
                line = _LINE.search(passages[p])
                if line is None:
                    continue
                a = line.start() + len(line.group()) - len(line.group().lstrip("# \t"))
                text = line.group()[a - line.start():].strip()
                if _TITLE_WORDS[0] <= len(text.split()) <= _TITLE_WORDS[1] and not text.endswith("."):
                    return [Span(p, a, a + len(text), text, LOOKUP_MARGIN, 0.0, kind="title")]
                return []  # the best-ranked document start has no title line: let the reader try
        return []
    if not _WHICH_DOC_Q.search(question) or not sources:
        return []
    # What the document must hold: the question's content words, less the asking words.
    wanted = set(content_words(question)) - _ASKING - FUNCTION_WORDS
    vocab = set(normalize_text(passages[0]).split())
    if not wanted or len(wanted & vocab) * 2 < len(wanted):
        return []  # the best passage does not hold most of it: not sure which document
    a, b = _showing(passages[0], wanted)
    return [Span(0, a, b, sources[0].source, LOOKUP_MARGIN, 0.0, kind="document")]


def _showing(passage: str, wanted: set[str]) -> tuple[int, int]:
    """Up to ``_SHOWN_CHARS`` of ``passage`` from the first sentence holding a wanted word
    (a list or contents spreads them over many short "sentences")."""
    a = next((x for x, y in sentence_spans(passage) if wanted & set(content_words(passage[x:y]))), 0)
    b = min(len(passage), a + _SHOWN_CHARS)
    while b < len(passage) and not passage[b].isspace():
        b += 1
    return a, b


def is_lookup(span: Span) -> bool:
    return bool(span.kind)


def statement(passage: str, span: Span) -> str:
    """What the decoder reads of a looked-up span.

    A table cell alone, heading and value ("Capital: Vienna"), rather than the whole row,
    whose other cells (and the next rows) a 135M model mixes up and tends to copy out whole;
    likewise one contents entry, the title line, or the document's name with the sentence
    that shows what it says.
    """
    line_start = passage.rfind("\n", 0, span.start) + 1
    if span.kind == "cell":
        cell_start = passage.rfind(CELL_SEP, 0, span.start) + len(CELL_SEP)
        return passage[cell_start:span.end]
    if span.kind == "toc":
        label = passage[line_start:span.start].rstrip(" .")
        return f"Contents: {label}, page {span.text}"
    if span.kind == "title":
        return f"Title: {span.text}"
    quoted = " ".join(passage[span.start:span.end].split())
    return f"The document {span.text} says: {quoted}"
