"""Citation markers: parse ``[n]`` in a reply, and add them when the model left them out.

A 135M model rarely writes markers reliably, so an answer without a valid one is mapped
to the passage(s) that contain it (normalised substring), else to the passage sharing the
most words with it, else to the top passage: every answer that is not an abstention cites
at least one passage the user can check.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rag.text import content_words
from rag.text import normalize_answer as normalize
from rag.types import Source

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_UNKNOWN = re.compile(
    r"\b(i\s+(do\s+not|don'?t|can\s*not|can'?t)\s+(know|find|answer|tell)"
    r"|(passages?|documents?|context|text)\s+(does|do)\s+not\s+(say|contain|mention|provide|answer)"
    r"|not\s+(mentioned|stated|provided|given)\s+in\s+the\s+(passages?|documents?|context)"
    r"|no\s+(passage|information|answer)\b)",
    re.IGNORECASE,
)


def parse_markers(text: str) -> list[int]:
    """Passage numbers cited in ``text`` (``[2]``, ``[1, 3]``, ``[1][2]``), first-seen order."""
    seen: list[int] = []
    for m in _MARKER.finditer(text):
        for part in m.group(1).split(","):
            n = int(part)
            if n not in seen:
                seen.append(n)
    return seen


def strip_markers(text: str) -> str:
    return re.sub(r"\s+", " ", _MARKER.sub("", text)).strip()


def says_unknown(text: str) -> bool:
    """True when a reply states that the passages do not hold the answer."""
    return bool(_UNKNOWN.search(text)) or not strip_markers(text).strip(string.punctuation + " ")




def _overlap(a: str, b: str) -> int:
    return sum((Counter(normalize(a).split()) & Counter(normalize(b).split())).values())


def supporting_passages(answer: str, sources: Sequence[Source]) -> list[int]:
    """Numbers of the passages that back ``answer`` (best first); never empty if any source."""
    if not sources:
        return []
    plain = normalize(strip_markers(answer))
    if plain:
        containing = [s.n for s in sources if plain in normalize(s.text)]
        if containing:
            return containing[:1] if len(containing) == len(sources) > 1 else containing
        scores = [(_overlap(plain, s.text), -i, s.n) for i, s in enumerate(sources)]
        best = max(scores)
        if best[0] > 0:
            return [best[2]]
    return [sources[0].n]


def _content_words(text: str) -> set[str]:
    return set(content_words(text))


@dataclass(frozen=True)
class Cited:
    text: str  # the answer with valid markers only (added when the model wrote none)
    cited: list[int]


def cite(answer: str, sources: Sequence[Source]) -> Cited:
    """Keep the model's valid markers; drop invented ones; add markers when none is valid."""
    by_n = {s.n: s for s in sources}
    plain = strip_markers(answer)
    # A marker must point at a passage that shares words with the answer; a small model
    # often writes "[2]" after words that stand only in [1].
    words = _content_words(plain)
    valid = {n for n in by_n if not words or words & _content_words(by_n[n].text)}
    cited = [n for n in parse_markers(answer) if n in valid]

    def keep_valid(m: re.Match[str]) -> str:
        ns = [p.strip() for p in m.group(1).split(",") if int(p) in valid]
        return f"[{', '.join(ns)}]" if ns else ""

    text = re.sub(r"[ \t]+", " ", _MARKER.sub(keep_valid, answer)).strip()
    if not cited:
        cited = supporting_passages(text, sources)
        if cited:
            text = f"{text} " + "".join(f"[{n}]" for n in cited)
    return Cited(text, cited)


def first_line(text: str) -> str:
    """The reply up to its first line break: the tuned prompt asks for one short line and
    whatever a small model adds after it is rambling."""
    return text.strip().split("\n", 1)[0].strip()
