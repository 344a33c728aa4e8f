"""Showing document text and answers as text: escaping and supporting-sentence highlights.

Document text is untrusted data. Streamlit's markdown would otherwise interpret it: HTML
is not rendered by default, but links, images (which the browser would fetch), LaTeX
(``$...$``), emoji shortcodes and colour directives (``:red[...]``), headings and code
blocks would be. So every ASCII punctuation character is backslash-escaped (CommonMark
allows escaping any of them) and whitespace is collapsed; the only markup in the output is
the highlight directive this module adds itself.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_SPACE = re.compile(r"\s+")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]*|\n|$)")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CITATION = re.compile(r"\[(\d{1,3})\]")

# Words too common to signal that a sentence supports an answer.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "more",
        "most",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)

HIGHLIGHT_COLOR = "orange"


def escape_markdown(text: str) -> str:
    """Text that Streamlit's markdown shows literally, on one paragraph."""
    return _PUNCT.sub(r"\\\1", _SPACE.sub(" ", text))


@dataclass(frozen=True)
class Segment:
    text: str
    supported: bool


def content_words(text: str) -> set[str]:
    return {w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOPWORDS}


def split_sentences(text: str) -> list[str]:
    """Sentences covering ``text`` exactly: ``"".join(split_sentences(t)) == t``."""
    out: list[str] = []
    pos = 0
    for m in _SENTENCE.finditer(text):
        # Bare terminators the pattern skips ("...Foo", blank lines) join the next piece.
        out.append(text[pos : m.end()])
        pos = m.end()
    if pos < len(text):
        if out:
            out[-1] += text[pos:]
        else:
            out.append(text[pos:])
    return out


def supporting_segments(passage: str, answer: str, *, min_overlap: float = 0.5) -> list[Segment]:
    """The passage as sentences, those sharing enough content words with the answer marked.

    A sentence (or line: PDF tables have no full stops) supports the answer when it shares
    at least two content words with the answer (one, when the answer or the sentence has
    only one) and they make up ``min_overlap`` of the sentence's content words or of the
    answer's: a crude but transparent signal that works on any language split into words.
    """
    answer_words = content_words(_CITATION.sub(" ", answer))
    segments = []
    for sentence in split_sentences(passage):
        words = content_words(sentence)
        shared = words & answer_words
        # Two shared words, unless the sentence or the answer has fewer ("Helsinki [1]").
        enough = bool(shared) and len(shared) >= min(2, len(words), len(answer_words))
        dense = bool(words) and (
            len(shared) / len(words) >= min_overlap
            or (bool(answer_words) and len(shared) / len(answer_words) >= min_overlap)
        )
        segments.append(Segment(sentence, enough and dense))
    return segments


def highlighted_markdown(passage: str, answer: str) -> str:
    """Markdown of the passage, escaped, with supporting sentences on a coloured background."""
    out = []
    for seg in supporting_segments(passage, answer):
        body = escape_markdown(seg.text)
        if seg.supported and body.strip():
            lead = body[: len(body) - len(body.lstrip())]
            trail = body[len(body.rstrip()) :]
            out.append(f"{lead}:{HIGHLIGHT_COLOR}-background[{body.strip()}]{trail}")
        else:
            out.append(body)
    return _SPACE.sub(" ", "".join(out)).strip()


def answer_markdown(answer: str, anchor: str = "") -> str:
    """The model's answer shown literally, with its [n] citation markers in bold; with an
    ``anchor``, each marker links to its source on the page (``#src-ANCHOR-n``).

    The decoder can echo document text, so the answer is escaped like a passage.
    """
    escaped = escape_markdown(answer)
    if anchor:
        return re.sub(r"\\\[(\d{1,3})\\\]", rf"[**\\[\1\\]**](#src-{anchor}-\1)", escaped)
    return re.sub(r"\\\[(\d{1,3})\\\]", r"**\\[\1\\]**", escaped)


_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+(.*)$")
_PRIVATE = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")  # icon-font glyphs: boxes in any other font


def support_words(answer: str, question: str) -> set[str]:
    """The answer's own words: its content words that the question did not already say.

    "The capital of Denmark is Copenhagen [1]" asked as "What is the capital of Denmark?"
    gives {"copenhagen"}: the words a reader looks for in the source.
    """
    return content_words(_CITATION.sub(" ", answer)) - content_words(question)


def _mark_words(line: str, words: AbstractSet[str]) -> str:
    """One line, escaped, with the given words (case-insensitive, whole words) highlighted."""
    out = []
    pos = 0
    for m in _WORD.finditer(line):
        if m.group().lower() in words:
            out.append(escape_markdown(line[pos : m.start()]))
            out.append(f":{HIGHLIGHT_COLOR}-background[{escape_markdown(m.group())}]")
            pos = m.end()
    out.append(escape_markdown(line[pos:]))
    return "".join(out)


_CELL_SEP = " | "  # how ingestion writes a PDF table row (ingest.tables)


def _table_row(line: str) -> list[str] | None:
    parts = line.strip().split(_CELL_SEP)
    return parts if len(parts) >= 3 else None


def _table_markdown(rows: list[list[str]], words: AbstractSet[str]) -> str:
    """Rows written as "Austria | Capital: Vienna | ..." (a header row of plain headings
    first, when the passage holds it) as a Markdown table, cells escaped."""
    header: list[str] = []
    if all(": " not in c for c in rows[0][1:]):
        header, rows = rows[0], rows[1:]
    if not header:  # the passage starts inside the table: headings from the rows' cells
        for row in sorted(rows, key=len, reverse=True):  # a whole row first: its order
            for cell in row[1:]:
                h = cell.partition(": ")[0] if ": " in cell else ""
                if h and h not in header:
                    header.append(h)
        header = ["", *header]
    body = []
    for row in rows:
        cells = [""] * len(header)
        cells[0] = row[0]
        for cell in row[1:]:
            h, sep, v = cell.partition(": ")
            key = h if h in header[1:] else h.strip()
            if sep and key in header[1:]:
                cells[header.index(key, 1)] = v
            else:  # a cell without its heading: the first free column
                free = [i for i, c in enumerate(cells) if not c and i]
                if free:
                    cells[free[0]] = cell
        body.append(cells)
    lines = [header, ["---"] * len(header), *body]
    return "\n".join(
        "| " + " | ".join(c if c == "---" else _mark_words(c, words) for c in line) + " |"
        for line in lines
    )


def passage_markdown(text: str, words: AbstractSet[str] = frozenset()) -> str:
    """A passage as readable, safe Markdown: its lines kept, PDF table rows as a table,
    Markdown headings and bullets shown as such, everything else escaped (no links, images
    or HTML from the document ever reach the page), ``words`` highlighted."""
    blocks: list[list[str]] = [[]]
    table: list[list[str]] = []
    for raw in [*_PRIVATE.sub("", text).splitlines(), ""]:
        if (row := _table_row(raw)) is not None:
            table.append(row)
            continue
        if table:  # a table is a block of its own
            if blocks[-1]:
                blocks.append([])
            blocks[-1].append(_table_markdown(table, words))
            blocks.append([])
            table = []
        if not raw.strip():
            if blocks[-1]:
                blocks.append([])
        elif h := _HEADING.match(raw):
            blocks[-1].append(f"**{_mark_words(h.group(2), words)}**")
        elif b := _BULLET.match(raw):
            blocks[-1].append(f"• {_mark_words(b.group(1), words)}")
        else:
            blocks[-1].append(_mark_words(raw.strip(), words))
    # A backslash at a line's end is a hard line break in CommonMark.
    return "\n\n".join("\\\n".join(b) for b in blocks if b)
