"""Tables on a PDF page kept as rows and cells, written so a reader can answer from a row.

PDFium puts a table row on one line but joins its cells with plain spaces ("Czech Republic
10.7 78,866 Prague Czech"): nobody, reader or model, can tell which number is the area, and
in a table laid out by columns ("Capital Jakarta Berlin Vienna ...") nothing says which
capital belongs to which country. The cells are still visible in the geometry: within a
line, words of one cell are a space apart, cells are further apart. This module finds runs
of such lines, aligns their cells into columns, and rewrites each data row with the
headers it sits under::

    Country | Population (millions) | Area (km2) | Capital | Official Language
    Austria | Population (millions): 8.9 | Area (km2): 83,879 | Capital: Vienna | ...

so "What is the capital of Austria?" finds its answer next to "Austria" and "Capital" in
one line (see :mod:`rag.answer.lookup`), for BM25, the encoder and the reader alike. Text that is
not a table is left exactly as PDFium wrote it.

Cost: two character-box calls per word (first and last character), about as much again as
PDFium's own text extraction.
"""

from __future__ import annotations

import ctypes
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: A gap wider than this many character heights separates two cells (a word space is
#: about a third of one).
CELL_GAP = 1.1
#: Longest cell: longer runs of words are prose (two text columns), not a table.
MAX_CELL_CHARS = 60
MAX_HEADING_CHARS = 40
MIN_ROWS = 2  # data rows under a header
#: Share of a table's rows a column gutter must be clear in (merged cells cross some).
GUTTER_CLEAR = 0.6
MIN_GUTTER = 3  # points
MIN_COLUMNS = 3  # label column included
#: Lines with more words than this and fewer than two figures are taken as prose.
MAX_PLAIN_WORDS = 8
MAX_INNER = 2  # one-cell lines (section labels) allowed between two rows
CELL_SEP = " | "

_NUMBER = re.compile(r"^[-+(]?[$€£]?\d[\d.,]*%?\)?$")
_YEAR = re.compile(r"^(19|20)\d\d$")
_WORD = re.compile(r"\S+")
_CURRENCY = {"$", "€", "£", "¥"}  # "$ 5,363": the symbol belongs to the number after it


@dataclass
class _Word:
    text: str
    x0: float
    x1: float
    bottom: float
    top: float


@dataclass
class _Line:
    """One visual line: PDFium lines at the same height (a superscript is a line of its
    own for PDFium) merged, its words left to right."""

    start: int  # first PDFium line of it
    stop: int  # one past the last
    words: list[_Word] = field(default_factory=list)
    plain: str = ""  # a line read without geometry: its text, one cell

    @property
    def bottom(self) -> float:
        return min(w.bottom for w in self.words)

    @property
    def top(self) -> float:
        return max(w.top for w in self.words)


@dataclass
class _Cell:
    text: str
    x0: float
    x1: float


def linearize_tables(textpage: Any, text: str) -> str:
    """``text`` (PDFium's text of ``textpage``) with every table found rewritten row by row;
    unchanged when the page holds no table or its characters cannot be located."""
    import pypdfium2.raw as pdfium_c

    if textpage.count_chars() != len(text):
        return text  # characters outside the BMP shift indices: no reliable geometry
    raw_lines = _split_lines(text)
    if sum(len(ln) > 0 for _, ln in raw_lines) < MIN_ROWS + 1:
        return text
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    get_box, handle = pdfium_c.FPDFText_GetCharBox, textpage.raw
    refs = [ctypes.byref(v) for v in (left, right, bottom, top)]

    def box(i: int) -> tuple[float, float, float, float]:
        get_box(handle, i, *refs)
        return left.value, right.value, bottom.value, top.value

    lines: list[_Line] = []
    for n, (offset, line) in enumerate(raw_lines):
        found = list(_WORD.finditer(line))
        if len(found) > MAX_PLAIN_WORDS and sum(bool(_NUMBER.match(m.group())) for m in found) < 2:
            # A long line without figures is prose (or a long row label): one cell, and no
            # geometry needed, which halves the cost on text-heavy pages.
            lines.append(_Line(n, n + 1, plain=line.strip()))
            continue
        words = []
        for m in found:
            x0, _, b, t = box(offset + m.start())
            _, x1, b2, t2 = box(offset + m.end() - 1)
            words.append(_Word(m.group(), x0, x1, min(b, b2), max(t, t2)))
        if not words:
            lines.append(_Line(n, n + 1))
            continue
        prev = lines[-1] if lines else None
        if prev is not None and prev.words and _same_height(prev, words):
            prev.words.extend(words)
            prev.stop = n + 1
        else:
            lines.append(_Line(n, n + 1, words))
    cells = [_cells(ln) for ln in lines]

    def as_written(a: int, b: int) -> list[str]:
        """PDFium's own lines behind visual lines a..b-1."""
        return [raw_lines[k][1] for ln in lines[a:b] for k in range(ln.start, ln.stop)]

    out: list[str] = []
    i = 0
    while i < len(lines):
        j = _block_end(cells, i)
        rows = _table(cells[i:j]) if j - i >= MIN_ROWS + 1 else None
        if rows is not None and _loses_text(as_written(i, j), rows):
            rows = None  # keep the text as it was rather than lose any of it
        if rows is None:
            stop = max(j, i + 1)
            out.extend(as_written(i, stop))
            i = stop
            continue
        out.extend(rows)
        i = j
    return "\n".join(out)


def _loses_text(original: Sequence[str], rows: Sequence[str]) -> bool:
    """Whether the rows miss a character of the lines they replace (footnote marks, which
    are dropped on purpose, excepted)."""
    lost = Counter("".join("".join(original).split())) - Counter("".join("".join(rows).split()))
    return any(not ch.isdigit() for ch in lost)


def _split_lines(text: str) -> list[tuple[int, str]]:
    """PDFium's lines with the character index each starts at (\\r\\n or \\n ends one)."""
    out: list[tuple[int, str]] = []
    pos = 0
    for m in re.finditer(r"\r\n|\n|\r", text):
        out.append((pos, text[pos:m.start()]))
        pos = m.end()
    out.append((pos, text[pos:]))
    return out


def _same_height(line: _Line, words: Sequence[_Word]) -> bool:
    """The new PDFium line sits beside ``line`` (overlaps most of its height) and to its
    right: a superscript or a cell PDFium broke out."""
    b, t = min(w.bottom for w in words), max(w.top for w in words)
    overlap = min(t, line.top) - max(b, line.bottom)
    smaller = min(t - b, line.top - line.bottom)
    return smaller > 0 and overlap > 0.5 * smaller and words[0].x0 > line.words[0].x0


def _cells(line: _Line) -> list[_Cell]:
    if line.plain:
        return [_Cell(line.plain, 0.0, 0.0)]
    if not line.words:
        return []
    words = sorted(line.words, key=lambda w: w.x0)
    height = statistics.median(w.top - w.bottom for w in words) or 1.0
    base = statistics.median(w.bottom for w in words)
    cells: list[_Cell] = []
    prev: _Word | None = None
    for w in words:
        gap = w.x0 - prev.x1 if prev is not None else 0.0
        raised = w.bottom > base + 0.25 * height and (w.top - w.bottom) < 0.8 * height
        if raised and w.text.isdigit() and len(w.text) <= 2 and gap > 0.5:
            continue  # a footnote mark ("273.879.750 ¹"), not content
        if prev is None or (gap > CELL_GAP * height and cells[-1].text not in _CURRENCY):
            cells.append(_Cell(w.text, w.x0, w.x1))
        else:
            last = cells[-1]
            last.text += ("" if gap < 0.5 and raised else " ") + w.text  # km² stays "km2"
            last.x1 = max(last.x1, w.x1)
        prev = w
    return cells


def _tabular(cells: Sequence[_Cell]) -> bool:
    # The row label may be long ("Proceeds from maturities and sale of marketable
    # securities"); values are short.
    return (len(cells) >= 2 and len(cells[0].text) <= 2 * MAX_CELL_CHARS
            and all(len(c.text) <= MAX_CELL_CHARS for c in cells[1:]))


def _block_end(cells: Sequence[list[_Cell]], i: int) -> int:
    """One past the last line of the table starting at line ``i`` (i itself when line i
    does not start one). Up to ``MAX_INNER`` lines of one cell (a section label inside a
    financial statement, a wrapped row label) may sit between rows."""
    if not _tabular(cells[i]):
        return i
    end = j = i + 1
    while j < len(cells) and j - end <= MAX_INNER:
        if _tabular(cells[j]):
            end = j + 1
        elif len(cells[j]) != 1 or len(cells[j][0].text) > 2 * MAX_CELL_CHARS:
            break
        j += 1
    return end


def _is_header(cells: Sequence[_Cell]) -> bool:
    """Column headings: names, or years (financial statements); a row of plain numbers (a
    table of contents' "1 Foo 2") is data, not a header."""
    return all(not _NUMBER.match(c.text) or _YEAR.match(c.text) for c in cells)


def _clear_gutters(block: Sequence[list[_Cell]]) -> int:
    """How many vertical gutters run down most of the block between its cells.

    A table's columns leave gutters that (almost) no row writes across; the wide gaps of
    justified prose (a full stop's extra space) fall at a different place on every line,
    with words of the neighbouring lines running through them.
    """
    rows = [cells for cells in block if len(cells) >= 2]  # positioned rows, not labels
    lo = int(min(c.x0 for cells in rows for c in cells))
    hi = int(max(c.x1 for cells in rows for c in cells)) + 1
    covered = [0] * (hi - lo + 1)
    for cells in rows:
        for c in cells:
            for x in range(int(c.x0) - lo, int(c.x1) - lo + 1):
                covered[x] += 1
    limit = (1 - GUTTER_CLEAR) * len(rows)
    gutters, run = 0, 0
    for n in covered:
        if n <= limit:
            run += 1
        else:
            gutters += run >= MIN_GUTTER  # a run ended by a column: a gutter inside the table
            run = 0
    return gutters


def _tidy(cell: str) -> str:
    # Words joined across a superscript or a font change: "(km2 )" -> "(km2)".
    return re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", cell))


def _table(block: Sequence[list[_Cell]]) -> list[str] | None:
    """The block's lines as linearised rows, or None when it is not a table we can read."""
    widest = max(block, key=len)
    if len(widest) < MIN_COLUMNS or not _is_header(block[0]):
        return None
    if any(len(c.text) > MAX_HEADING_CHARS or sum(ch.isalnum() for ch in c.text) < 2
           for c in block[0]):
        return None  # a heading is a few words, not a line of prose nor a formula's "="
    if sum(len(cells) >= 2 for cells in block[1:]) < MIN_ROWS:
        return None  # one row under the header: a displayed formula, not a table
    if sum(len(cells) >= MIN_COLUMNS for cells in block) * 2 < sum(len(c) >= 2 for c in block):
        return None  # mostly pairs: two columns of prose, or a list, not a table
    if _clear_gutters(block) < MIN_COLUMNS - 1:
        return None  # wide gaps that do not line up: justified prose, not columns
    columns = [(c.x0, c.x1) for c in widest]

    def column(c: _Cell) -> int:
        # The column this cell overlaps most; a merged cell (one value across several
        # columns) goes to the first of its best overlaps.
        overlaps = [min(c.x1, b) - max(c.x0, a) for a, b in columns]
        best = max(range(len(columns)), key=lambda k: overlaps[k])
        if overlaps[best] > 0:
            return best
        return min(range(len(columns)), key=lambda k: abs((columns[k][0] + columns[k][1]) / 2
                                                           - (c.x0 + c.x1) / 2))

    def place(cells: Sequence[_Cell]) -> list[str]:
        row = [""] * len(columns)
        for c in cells:
            k = column(c)
            row[k] = f"{row[k]} {c.text}".strip()
        return row

    header = place(block[0])
    top = 1
    # Headings stacked over two lines ("December 31," over "2018"): a line of headings
    # with no row label, or one whose values are all years, continues the header.
    while top < len(block) and _is_header(block[top]):
        line = place(block[top])
        values = [v for v in line[1:] if v]
        if line[0] and not (values and all(_YEAR.match(v) for v in values)):
            break
        header = [f"{a} {b}".strip() for a, b in zip(header, line, strict=True)]
        top += 1
    rows: list[list[str]] = []
    for cells in block[top:]:
        row = place(cells)
        if not row[0] and rows:  # a wrapped cell continues the row above
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], row, strict=True)]
        else:
            rows.append(row)
    if len(rows) < MIN_ROWS:
        return None
    header = [_tidy(h) for h in header]
    rows = [[_tidy(v) for v in row] for row in rows]
    out = [CELL_SEP.join(h for h in header if h)]
    for row in rows:
        label = row[0]
        parts = [f"{h}: {v}" if h else v for h, v in zip(header[1:], row[1:], strict=True) if v]
        out.append(CELL_SEP.join([label, *parts]) if label else CELL_SEP.join(parts))
    return out
