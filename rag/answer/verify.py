"""Evidence for an answer and the checks that decide whether a reply may be shown as one.

The chain never trusts the decoder's word: a reply is shown as an answer only when its
key content (every content word, every number digit for digit) stands in the passage it
cites and, when the extractive reader ran, it agrees with one of the reader's best spans.
Otherwise the user gets the reader's span with the sentence it comes from quoted, or a
refusal when the reader does not believe any span either.

Passages are data, not instructions: text that speaks to the model (role labels, "ignore
the previous instructions", a question-and-answer pair laid out like our prompt) is blanked
before the reader or the decoder sees it, so a document cannot plant its own answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.citations import says_unknown, strip_markers
from rag.text import content_words, normalize_text, number_tokens, sentence_spans
from rag.types import Source, Span

# Labels of a dialogue or prompt laid out inside a document.
_ROLE_LABEL = re.compile(
    r"\b(question|answer|system|user|assistant|instructions?|human|ai)\s*:", re.IGNORECASE
)
# Imperatives aimed at a model rather than a reader of the document.
_COMMAND = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.!?\n]{0,60}\b(instructions?|prompts?|rules|context|"
    r"above|previous|earlier)\b"
    r"|\b(reply|respond|answer|say|output|print)\b\s+(only\s+)?(with|exactly)\b"
    r"|\byou\s+(must|should|are\s+to)\s+(now\s+)?(reply|respond|answer|say|ignore)\b",
    re.IGNORECASE,
)
_QUOTE_CHARS = 300  # longest evidence quote; longer sentences (flattened tables) are windowed


def mask_injections(text: str) -> str:
    """``text`` with every sentence that addresses a model blanked (same length, so offsets
    into the original stay valid)."""
    out = list(text)
    for a, b in sentence_spans(text):
        seg = text[a:b]
        if _COMMAND.search(seg) or _ROLE_LABEL.search(seg):
            out[a:b] = " " * (b - a)
    return "".join(out)


@dataclass(frozen=True)
class Evidence:
    """The sentence of a passage that holds a candidate answer."""

    source: Source
    start: int  # character span of the quoted text in source.text
    end: int
    span: Span | None = None

    @property
    def text(self) -> str:
        return self.source.text[self.start:self.end].strip()

    def quote(self) -> str:
        """``multicolumn.pdf, page 3: "..."``: where, then the words themselves."""
        s = self.source
        where = s.source if s.page is None else f"{s.source}, page {s.page}"
        return f'{where}: "{" ".join(self.text.split())}"'


def _window(text: str, a: int, b: int, span: Span | None) -> tuple[int, int]:
    """The sentence [a, b), or a word-aligned window of it around the span when too long."""
    if b - a <= _QUOTE_CHARS or span is None:
        return a, b
    mid = (span.start + span.end) // 2
    lo = max(a, mid - _QUOTE_CHARS // 2)
    hi = min(b, lo + _QUOTE_CHARS)
    lo = max(a, hi - _QUOTE_CHARS)
    while lo > a and not text[lo - 1].isspace():
        lo -= 1
    while hi < b and not text[hi].isspace():
        hi += 1
    return lo, hi


def evidence_for(span: Span, sources: Sequence[Source]) -> Evidence:
    src = sources[span.passage]
    for a, b in sentence_spans(src.text):
        if a <= span.start < b:
            lo, hi = _window(src.text, a, max(b, span.end), span)
            return Evidence(src, lo, hi, span)
    return Evidence(src, span.start, span.end, span)


def select_evidence(spans: Sequence[Span], sources: Sequence[Source], limit: int = 2) -> list[Evidence]:
    """Sentences holding the reader's best spans, best first, each sentence once."""
    out: list[Evidence] = []
    seen: set[tuple[int, int, int]] = set()
    for span in spans:
        ev = evidence_for(span, sources)
        key = (span.passage, ev.start, ev.end)
        if key in seen:
            continue
        seen.add(key)
        out.append(ev)
        if len(out) == limit:
            break
    return out


def _names(text: str) -> set[str]:
    """Normalised words written with a capital letter, past the first word: the names."""
    words = re.findall(r"[\w'-]+", text)
    return {normalize_text(w) for w in words[1:] if any(c.isupper() for c in w)} - {""}


def supported(reply: str, passage: str) -> bool:
    """The reply's key content stands in ``passage``: every name, every number digit for
    digit ("16" is not supported by a passage that says "8"), and at least half of its
    other content words (a paraphrase may add "the year" to "1889")."""
    plain = strip_markers(reply)
    words = content_words(plain)
    if not words:
        return False
    vocab = set(normalize_text(passage).split())
    if not number_tokens(plain) <= number_tokens(passage):
        return False
    if not {w for n in _names(plain) for w in n.split()} <= vocab:
        return False
    return sum(w in vocab for w in words) * 2 >= len(words)


def agrees(reply: str, spans: Sequence[Span]) -> bool:
    """The reply states one of the reader's candidate answers (contains it, or is a part of
    it sharing at least half of its content words)."""
    plain = f" {normalize_text(strip_markers(reply))} "
    mine = set(content_words(strip_markers(reply)))
    for s in spans:
        gold = normalize_text(s.text)
        if gold and f" {gold} " in plain:
            return True
        theirs = set(content_words(s.text))
        if mine and theirs and mine <= set(gold.split()) \
                and len(mine & theirs) * 2 >= len(theirs):
            return True
    return False


# Beyond this many words the decoder wrote an explanation, not a rival answer.
RIVAL_WORDS = 12


def competing(reply: str, span: str) -> str:
    """The decoder's reply when it is a short answer of its own that does not contain the
    reader's span (a real disagreement worth telling the user), else "".

    Most overruled replies only failed to be backed up (a rephrasing, a sentence too many);
    saying so on every answer read as a failure, so only a rival answer is reported."""
    text = strip_markers(reply).strip()
    words = normalize_text(text).split()
    if not words or len(words) > RIVAL_WORDS or normalize_text(span) in " ".join(words):
        return ""
    return "" if says_unknown(text) else text
