"""A follow-up question rewritten to stand alone, by code (no model).

"and its population?" after "What is the capital of Germany?" is about Germany; searched
with the two questions glued together, the reader found "Denmark" in a passage about
neighbours (docchat issue 28). Three shapes are rewritten:

- a changed slot: "what about France?" / "and in 1990?" -> the previous question with its
  subject (or year) replaced;
- a bare attribute: "and its population?" -> "What is the population of Germany?";
- a pronoun: "When was it built?" after "Who designed the Eiffel Tower?" -> "When was the
  Eiffel Tower built?" ("he"/"she" after a "Who ...?" stand for the name answered).

The previous question's subject is its last capitalised name ("the Eiffel Tower",
"Germany"), else what its last "of" names, else its last "the ..." phrase. A question that
names its own subject, or one none of the shapes fits, is returned unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.text import FUNCTION_WORDS

#: How many earlier turns a chain of follow-ups ("and its population?", "and France?") is
#: resolved through; each turn is rewritten against the ones before it.
_DEPTH = 3

# Capitalised words that start a question without being a name.
_STARTERS = frozenset({
    "what", "who", "whom", "whose", "which", "when", "where", "why", "how", "is", "are", "was",
    "were", "do", "does", "did", "has", "have", "had", "can", "could", "will", "would", "should",
    "and", "but", "or", "in", "on", "at", "the", "a", "an", "tell", "list", "name", "give",
    "describe", "explain", "show", "find", "please", "i", "also", "so", "then", "for", "about",
})
# A name: capitalised words, joined by a few lower-case particles ("Statue of Liberty").
_NAME = re.compile(r"\b(?:[Tt]he\s+)?[A-Z][\w'.-]*(?:\s+(?:(?:of|de|da|von|van|del|la|du|and)\s+)?"
                   r"[A-Z][\w'.-]*)*")
_LOCATIVE = re.compile(r"\b(?:in|at|from|near|on)\s+$", re.IGNORECASE)
_YEAR = re.compile(r"\b(?:1[0-9]{3}|20[0-9]{2})s?\b")
_SLOT = re.compile(r"^\s*(?:and|but)?\s*(?:what|how)\s+about\s+(?P<y>.+?)\s*[?.!]*\s*$|"
                   r"^\s*(?:and|but)\s+(?:for\s+|in\s+)?(?P<z>.+?)\s*[?.!]*\s*$", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"^\s*(?:and|but|(?:what|how)\s+about)?\s*(?P<p>its|their|his|her)\s+"
                        r"(?P<x>[\w' -]+?)\s*[?.!]*\s*$", re.IGNORECASE)
_PERSONAL = frozenset({"he", "she", "him", "his", "her", "hers"})
_PRONOUN = re.compile(r"\b(it|its|they|them|their|he|she|him|his|her|there)\b", re.IGNORECASE)
# "it" standing for nothing ("how long does it take", "is it true that"), and "there" that
# only says something exists ("there is").
_DUMMY = re.compile(r"\bit\s+takes?\b|\bis\s+it\s+(?:true|possible)\b|\bthere\s+(?:is|are|was|were)\b",
                    re.IGNORECASE)
_CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


def _names(question: str) -> list[tuple[int, int]]:
    """Character spans of the capitalised names in ``question``, a leading "the" included;
    the question's first word only when it is no question word ("Germany's capital?")."""
    out: list[tuple[int, int]] = []
    for m in _NAME.finditer(question):
        a, b = m.span()
        words = m.group().split()
        # The first word of the question is capitalised anyway: a name only if it is not a
        # word questions start with ("What", "Is", "Tell").
        while words and question[:a].strip() == "" and words[0].lower() in _STARTERS:
            a = question.index(words[0], a) + len(words[0])
            a += len(question[a:b]) - len(question[a:b].lstrip())
            words = words[1:]
        if words and words[0].lower() == "the" and len(words) == 1:
            continue
        if not words:
            continue
        # An acronym before "of" is a title, not part of a name: "the GDP of Japan" is
        # about Japan, "the Statue of Liberty" is one name.
        cut = re.search(r"\b[A-Z]{2,}\s+of\s+", question[a:b])
        if cut:
            out.append((a, a + cut.start() + len(cut.group().split()[0])))
            a += cut.end()
        out.append((a, b))
    return out


def _phrase_after(words: list[str]) -> str:
    """The first words of ``words`` up to a function word (at most four)."""
    out: list[str] = []
    for w in words:
        if w.lower() in FUNCTION_WORDS or not re.match(r"[\w'-]+$", w):
            break
        out.append(w)
        if len(out) == 4:
            break
    return " ".join(out)


def subject_of(question: str, *, personal: bool = False) -> str | None:
    """What ``question`` is about: its last capitalised name (its first one not after "the"
    when ``personal``, for "he"/"she"), else what its last "of" names, else its last
    "the ..." phrase; None when it has none."""
    text = question.strip().rstrip("?.! ")
    names = [text[a:b] for a, b in _names(text)]
    if names:
        if personal:
            people = [n for n in names if not n.lower().startswith("the ")]
            return people[0] if people else None
        # "the Colosseum in Rome" is about the Colosseum: a name after a place's preposition
        # says where, not what.
        heads = [text[a:b] for a, b in _names(text) if not _LOCATIVE.search(text[:a])]
        return heads[-1] if heads else names[-1]
    if personal:
        return None
    words = text.split()
    lowered = [w.lower() for w in words]
    for marker in ("of", "the"):
        if marker in lowered:
            i = len(lowered) - 1 - lowered[::-1].index(marker)
            phrase = _phrase_after(words[i + 1:])
            if phrase:
                return phrase if marker == "of" else f"the {phrase}"
    return None


def _answered_name(answer: str) -> str | None:
    """The name a short answer gives ("Gustave Eiffel [1]"), for "he"/"she" after "Who"."""
    text = _CITATION.sub("", answer).strip().rstrip(".")
    if not text or len(text.split()) > 6:
        return None
    padded = " " + text  # so that the answer's first word may be a name
    names = [padded[a:b] for a, b in _names(padded)] if text[0].isupper() else []
    return names[0] if names else None


def _swap_slot(previous: str, new: str) -> str | None:
    """``previous`` with its year, or its subject, replaced by ``new``."""
    bare = previous.strip().rstrip("?.! ")
    end = previous.strip()[len(bare):]  # "?" for a question, "" for "Tell me about X"
    if _YEAR.fullmatch(new):
        if _YEAR.search(bare):
            return _YEAR.sub(new, bare, count=1) + end
        return f"{bare} in {new}{end}"
    # Swap like for like: "the Pantheon" for "the Colosseum", "Paris" for "Rome" in "Tell me
    # about the Colosseum in Rome".
    names = [bare[a:b] for a, b in _names(bare)]
    alike = [n for n in names if n.lower().startswith("the ") == new.lower().startswith("the ")]
    old = alike[-1] if alike else subject_of(bare)
    if old is None or old.lower() == new.lower():
        return None
    i = bare.rfind(old)
    return f"{bare[:i]}{new}{bare[i + len(old):]}{end}"


def _resolved(question: str, history: Sequence[tuple[str, str]], depth: int) -> str:
    if not history or depth <= 0:
        return question
    prev_q, prev_a = history[-1]
    previous = _resolved(prev_q, history[:-1], depth - 1)
    own_names = _names(question)

    attribute = _ATTRIBUTE.match(question)
    if attribute:
        personal = attribute.group("p").lower() in _PERSONAL
        subject = _subject(previous, prev_a, personal=personal)
        if subject is None:
            return question
        thing = attribute.group("x").strip()
        if personal:
            return f"Who is {subject}'s {thing}?"
        return f"What is the {thing} of {subject}?"

    slot = _SLOT.match(question)
    if slot:
        new = (slot.group("y") or slot.group("z") or "").strip()
        new = re.sub(r"^(?:in|for)\s+", "", new, flags=re.IGNORECASE)
        # Only a name, a year or a short "the ..." phrase fills a slot: "and what is its
        # area?" is a question of its own (the pronoun rule below).
        is_name = bool(own_names) and len(new.split()) <= 5
        if is_name or _YEAR.fullmatch(new) or (new.lower().startswith("the ") and len(new.split()) <= 4):
            swapped = _swap_slot(previous, new)
            if swapped is not None:
                return swapped

    if own_names or _DUMMY.search(question):
        return question
    return _replace_pronouns(question, previous, prev_a)


def _subject(previous: str, answer: str, *, personal: bool) -> str | None:
    if personal and re.match(r"\s*who\b", previous, re.IGNORECASE):
        named = _answered_name(answer)
        if named is not None:
            return named
    return subject_of(previous, personal=personal)


def _replace_pronouns(question: str, previous: str, answer: str) -> str:
    matches = list(_PRONOUN.finditer(question))
    if not matches:
        return question
    out: list[str] = []
    last = 0
    for m in matches:
        word = m.group().lower()
        personal = word in _PERSONAL
        subject = _subject(previous, answer, personal=personal)
        if subject is None:
            return question
        after = question[m.end():]
        possessive = word in ("its", "their", "his") or (
            word == "her" and re.match(r"\s+[a-z]+", after) is not None
            and after.split()[0].lower() not in FUNCTION_WORDS)
        if word == "there":
            repl = f"in {subject}"
        elif possessive:
            repl = f"{subject}'s"
        else:
            repl = subject
        if m.start() == 0 and repl[:1].islower():
            repl = repl[0].upper() + repl[1:]
        out.append(question[last:m.start()])
        out.append(repl)
        last = m.end()
    out.append(question[last:])
    return "".join(out)


def resolve_follow_up(question: str, history: Sequence[tuple[str, str]]) -> str:
    """``question`` rewritten to name what the previous turns were about, or unchanged.

    ``history`` holds (user question, assistant answer) turns, oldest first.
    """
    return _resolved(question, history, _DEPTH)
