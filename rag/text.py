"""Shared text helpers: the SQuAD normaliser, function words, content words, sentences,
and the one file hash (SHA-256) that ingestion, uploads and the reader's base check use.

One home for them, so the evaluation, the answer checks and the citations agree on what
"the same words" means.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from pathlib import Path

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _unicode_punct(ch: str) -> str:
    cat = unicodedata.category(ch)
    if ch.isascii() or not cat.startswith("P"):
        return ch
    return "" if cat in ("Pi", "Pf") else " "  # opening / closing quote marks, else a separator


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, drop articles, collapse whitespace (SQuAD v1.1 order,
    exactly as SQuAD's script: the metric)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_text(text: str) -> str:
    """``normalize_answer`` with punctuation outside ASCII dropped too, for the answer checks:
    otherwise '“Huardest gefburn”' normalises to '“huardest gefburn”' and a span the reader
    took from inside the quotes is not found in its own passage. Quote marks go like ASCII
    ones ("Kennedy’s" = "Kennedy's"); other marks (dashes, ellipses) separate words."""
    if not text.isascii():
        text = "".join(_unicode_punct(ch) for ch in text)
    return normalize_answer(text)


# Function words carry no claim: an answer is grounded by its content words alone.
FUNCTION_WORDS = frozenset([
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "and", "or",
    "but", "not", "is", "are", "was", "were", "be", "been", "being", "it", "its", "this", "that",
    "these", "those", "as", "which", "who", "whom", "what", "when", "where", "why", "how", "he",
    "she", "they", "them", "his", "her", "their", "there", "here", "do", "does", "did", "has",
    "have", "had", "will", "would", "can", "could", "answer", "passage", "about", "approximately",
    "around", "than", "more", "less", "also", "so", "then", "into", "onto", "over", "under",
])


def content_words(text: str) -> list[str]:
    """Normalised words of ``text`` that carry content, in order (duplicates kept)."""
    return [w for w in normalize_text(text).split() if w not in FUNCTION_WORDS]


def singular(word: str) -> str:
    """``word`` without a plural ending ("languages" -> "language", "cities" -> "city")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_stems(text: str, *, prefix: int | None = None) -> set[str]:
    """The content words of ``text`` as a set, compared loosely.

    Two looseness levels, each where it was measured to work: plural endings dropped (the
    default: table headings, where "population" must not match "popular"), or the first
    ``prefix`` letters ("limits" ~ "limited": whether a sentence is about the question).
    """
    words = content_words(text)
    if prefix is not None:
        return {w[:prefix] for w in words}
    return {singular(w) for w in words}


def number_tokens(text: str) -> set[str]:
    """Numbers as written, without separators ("83,190,556" -> "83190556", "11.5" -> "115").

    Compared after SQuAD normalisation drops punctuation, so "11.5" and "115" would look the
    same; numbers are therefore also checked digit-for-digit by the answer checks.
    """
    return {re.sub(r"[,\s]", "", m) for m in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}


# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before
# whitespace and an upper-case letter, digit or opening quote; or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "Mr.", "Mrs.", "Dr.", "St.", "vs.", "No.", "U.S.", "Inc.")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences (or lines) of ``text``, whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        head = text[start:m.start()].rstrip()
        if head.endswith(_ABBREVIATIONS) and "\n" not in m.group():
            continue
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out: list[tuple[int, int]] = []
    for a, b in spans:
        seg = text[a:b]
        lead = len(seg) - len(seg.lstrip())
        trail = len(seg.rstrip())
        if trail > lead:
            out.append((a + lead, a + trail))
    return out


def ends_sentence(text: str) -> bool:
    return text.rstrip().endswith((".", "!", "?", '."', ".)", "!\"", "?\""))


def trim_to_sentence(text: str) -> str:
    """``text`` up to its last full sentence; "" when no sentence ends in it."""
    spans = sentence_spans(text)
    for a, b in reversed(spans):
        if ends_sentence(text[a:b]):
            return text[:b].strip()
    return ""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks (large PDFs never whole in memory)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(name: object) -> str:
    """A file name or path as one printable line: a newline in a name (legal on Linux)
    would otherwise split a listing, and bytes that are not UTF-8 (surrogate-escaped by
    Python) would raise UnicodeEncodeError on print. Both become backslash escapes."""
    text = str(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)
