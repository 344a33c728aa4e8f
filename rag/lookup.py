"""Answers looked up in table rows: the cell under the heading the question names, in the
row it names.

Ingestion writes a PDF table row with its headings (see :mod:`ingest.tables`)::

    Austria | Population (millions): 8.9 | Area (km2): 83,879 | Capital: Vienna

"What is the capital of Austria?" names the row ("Austria") and the heading ("capital");
the answer is that cell, "Vienna". A table laid out by columns comes out with the roles
swapped ("Capital | Indonesia: Jakarta | Germany: Berlin"), so a question may name either
as the row. The extractive reader (trained on prose) is unsure in such lines; this lookup
is exact, and refuses when two different cells fit the question equally well.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.read import Span
from rag.text import content_words, normalize_answer

CELL_SEP = " | "  # as written by ingest.tables
#: Margin given to a looked-up cell: above any margin the reader gives a prose span, so
#: the cell is the chain's best candidate; the decoder must still state it.
LOOKUP_MARGIN = 20.0

_LINE = re.compile(r"[^\n]+")


@dataclass(frozen=True)
class _Cell:
    heading: str
    value: str
    start: int  # of the value in the passage
    end: int


def _stem(word: str) -> str:
    # "languages" ~ "language", "kilometres" ~ "kilometre": enough for table headings.
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _stems(text: str) -> set[str]:
    return {_stem(w) for w in content_words(text)}


def _rows(passage: str) -> list[tuple[str, list[_Cell]]]:
    """(row label, cells) of every table row in ``passage``."""
    rows: list[tuple[str, list[_Cell]]] = []
    for m in _LINE.finditer(passage):
        parts = m.group().split(CELL_SEP)
        if len(parts) < 3:
            continue
        cells: list[_Cell] = []
        pos = m.start() + len(parts[0]) + len(CELL_SEP)
        for part in parts[1:]:
            heading, sep, value = part.partition(": ")
            if sep and value.strip():
                start = pos + len(heading) + len(sep)
                cells.append(_Cell(heading.strip(), value.strip(), start, start + len(value.rstrip())))
            pos += len(part) + len(CELL_SEP)
        if len(cells) >= 2:
            rows.append((parts[0].strip(), cells))
    return rows


def _names(label: str, asked: set[str]) -> int:
    """How many words of ``label`` the question uses, when it uses most of them (0 if not)."""
    words = _stems(label)
    hits = len(words & asked)
    return hits if words and hits * 3 >= len(words) * 2 else 0


def lookup(question: str, passages: Sequence[str]) -> list[Span]:
    """The cell the question asks for, as a span (at most one; none when unsure)."""
    asked = _stems(question)
    best: list[tuple[int, int, _Cell]] = []
    top = 0
    for p, passage in enumerate(passages):
        for label, cells in _rows(passage):
            row_hits = _names(label, asked)
            if not row_hits:
                continue
            for cell in cells:
                col_hits = len(_stems(cell.heading) & asked)
                value = _stems(cell.value)
                if not col_hits or (value & asked and not value - asked):
                    continue  # the question names no heading, or already says the value
                score = row_hits + col_hits
                if score > top:
                    best, top = [(p, score, cell)], score
                elif score == top:
                    best.append((p, score, cell))
    if not best or len({normalize_answer(c.value) for _, _, c in best}) > 1:
        return []  # nothing fits, or two different cells fit equally well
    p, score, cell = best[0]
    return [Span(p, cell.start, cell.end, cell.value, LOOKUP_MARGIN + score, 0.0)]


def is_lookup(span: Span) -> bool:
    return span.margin >= LOOKUP_MARGIN


def cell_statement(passage: str, span: Span) -> str:
    """The looked-up cell alone, heading and value: "Capital: Vienna". The decoder reads
    this rather than the whole row, whose other cells (and the next rows) a 135M model
    mixes up, and which it tends to copy out whole."""
    cell_start = passage.rfind(CELL_SEP, 0, span.start) + len(CELL_SEP)
    return passage[cell_start:span.end]
