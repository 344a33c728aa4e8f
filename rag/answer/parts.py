"""Questions with two or three parts: split them, and put the parts' answers together.

"When did the project start, and what is its goal?" asks two things; the reader finds one
span per question, so answered whole it gets only the date. The chain answers each part
through the normal path (retrieve, read, check) and combines the answers here: each
part's text with its own citations, renumbered over the merged sources, or a sentence
saying the documents do not answer that part.

The split is by rule, not by a model: an "and" (or a "?") followed by a question word or an
auxiliary verb starts a new question; "Who were Lewis and Clark?" and "the difference
between X and Y" stay whole. A later part leaning on a pronoun ("its goal") gets the first
part's subject written in ("the project's goal"), and a fragment ("and at what time?")
gets the rest of the first part ("at what time does the first ferry leave from?").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rag.text import content_words, ends_sentence
from rag.types import Answer, Source

_WH = r"(?:what|when|where|who|whom|whose|which|why|how)"
_AUX_WORDS = ("is are was were do does did has have had can could will would should may might must")
_AUX = r"(?:" + "|".join(_AUX_WORDS.split()) + r")"
_PREP = r"(?:at|in|on|for|by|from|to|with|of|since|until|during|after|before)"
# Where a new question starts: ", and" / " and" / "?" before a question word (possibly after
# a preposition: "and at what time") or an auxiliary ("and is it free?").
_SEPARATOR = re.compile(
    rf"(?:,?\s+and\s+|\?\s+)(?=(?:{_PREP}\s+)?{_WH}\b|{_AUX}\b)", re.IGNORECASE
)
_QUESTION_START = re.compile(rf"^(?:{_PREP}\s+)?{_WH}\b|^{_AUX}\b", re.IGNORECASE)
# "between X and Y", "both X and Y": the "and" joins a pair, even before a question word.
_PAIR = re.compile(r"\b(between|both)\b(?!.*\band\b)", re.IGNORECASE)
_BE = frozenset(["is", "are", "was", "were"])
_PREPOSITIONS = frozenset(_PREP[3:-1].split("|"))
# Past participles that do not end in -ed/-en: "when was the tower built".
_PARTICIPLES = frozenset(["built", "made", "born", "held", "sold", "found", "begun", "done", "known",
                          "called", "set", "put", "run"])
_POSSESSIVE = re.compile(r"\b(its|their|his|her)\b", re.IGNORECASE)
_PERSONAL = re.compile(r"\b(it|they|them|he|him|she)\b", re.IGNORECASE)
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
MAX_PARTS = 3  # beyond this it is a list of topics, better answered whole


@dataclass(frozen=True)
class Part:
    """One question of several: as the user wrote it ("at what time"), and standalone
    ("At what time does the first ferry leave from?"), which is what is searched and read."""

    asked: str
    question: str


def split_question(question: str) -> list[Part]:
    """The questions ``question`` asks; one Part, the question itself, for a single one."""
    text = " ".join(question.split())
    pieces: list[str] = []
    rest = text
    while m := _SEPARATOR.search(rest):
        head = rest[: m.start()]
        if _PAIR.search(head):
            # Subtle: "between what X says and what Y says" is one question.
            break
        pieces.append(head)
        rest = rest[m.end():]
    pieces.append(rest)
    pieces = [p.strip(" ,;?") for p in pieces]
    whole = [Part(question, question)]
    if len(pieces) < 2 or len(pieces) > MAX_PARTS:
        return whole
    if not all(_QUESTION_START.search(p) for p in pieces) or not all(content_words(p) for p in pieces):
        return whole
    first = pieces[0]
    return [Part(first, _sentence(first))] + [Part(p, _sentence(_standalone(p, first))) for p in pieces[1:]]


def _sentence(part: str) -> str:
    return part[:1].upper() + part[1:] + "?"


def _words_after_wh(first: str) -> list[str]:
    words = first.split()
    while words and not re.fullmatch(_WH, words[0], re.IGNORECASE):
        words = words[1:]  # a leading preposition: "In which year ..."
    return words[1:]


def subject_of(first: str) -> str:
    """The subject of a question: "When did [the project] start", "Where does [the first
    ferry] leave from", "What is [the capital of France]", "Who wrote [Hamlet]"."""
    words = _words_after_wh(first)
    if words and words[0].lower() in {"year", "time", "day", "date", "kind", "type"}:
        words = words[1:]  # "what year did ..." asks for a year, about what follows
    if not words:
        return ""
    head, body = words[0].lower(), words[1:]
    if not re.fullmatch(_AUX, head):
        return " ".join(body)  # "Who wrote Hamlet": the object is what it is about
    while body and body[-1].lower() in _PREPOSITIONS:
        body = body[:-1]
    last = body[-1].lower() if body else ""
    if head not in _BE or last.endswith(("ed", "en")) or last in _PARTICIPLES:
        body = body[:-1]  # the verb: "start", "leave", "completed"
    return " ".join(body)


def _standalone(part: str, first: str) -> str:
    """A later part with what it takes from the first: its subject, or the rest of it."""
    words = part.split()
    if not any(re.fullmatch(_AUX, w, re.IGNORECASE) for w in words) and len(words) <= 4 \
            and not _PERSONAL.search(part) and not _POSSESSIVE.search(part):
        # A fragment ("at what time", "and when"): it asks the first question again.
        return f"{part} {' '.join(_auxiliary_and_rest(first))}".strip()
    subject = subject_of(first)
    if not subject:
        return part
    part = _POSSESSIVE.sub(f"{subject}'s", part)
    return _PERSONAL.sub(subject, part)


def _auxiliary_and_rest(first: str) -> list[str]:
    words = _words_after_wh(first)
    if words and words[0].lower() in {"year", "time", "day", "date"}:
        words = words[1:]
    return words


def missing_text(part: Part) -> str:
    """What the answer says for a part the documents do not answer: "The documents do not
    say at what time.", "... what its goal is.", or the question quoted when it cannot be
    turned into a clause without guessing a verb's tense ("when did it start")."""
    plain = part.asked.rstrip("?").strip()
    words = plain.split()
    aux = next((i for i, w in enumerate(words[:3]) if re.fullmatch(_AUX, w, re.IGNORECASE)), None)
    if aux is not None:
        last = words[-1].lower()
        if words[aux].lower() not in _BE or aux == len(words) - 1 \
                or last.endswith(("ed", "en")) or last in _PARTICIPLES:
            return f'The documents do not answer "{part.question}"'
        # "what is the goal" -> "what the goal is", "how tall is it" -> "how tall it is"
        plain = " ".join([*words[:aux], *words[aux + 1:], words[aux]])
    return f"The documents do not say {plain[:1].lower() + plain[1:]}."


@dataclass(frozen=True)
class Merged:
    """The parts' sources as one numbered list, and each part's old number -> new number."""

    sources: list[Source]
    numbers: list[dict[int, int]]


def merge_sources(groups: Sequence[Sequence[Source]]) -> Merged:
    """One list of the parts' sources (a passage two parts share shown once), numbered 1.."""
    out: list[Source] = []
    at: dict[tuple[str, str, int | None, int, str], int] = {}
    numbers: list[dict[int, int]] = []
    for group in groups:
        mapping: dict[int, int] = {}
        for s in group:
            key = (s.chunk_id, s.source, s.page, s.start, s.text)
            if key not in at:
                at[key] = len(out) + 1
                out.append(replace(s, n=len(out) + 1))
            mapping[s.n] = at[key]
        numbers.append(mapping)
    return Merged(out, numbers)


def renumber(text: str, mapping: dict[int, int]) -> str:
    """``text`` with its ``[n]`` markers in the merged numbering."""
    def sub(m: re.Match[str]) -> str:
        ns = [mapping.get(int(n), int(n)) for n in m.group(1).split(",")]
        return "[" + ", ".join(str(n) for n in ns) + "]"
    return _MARKER.sub(sub, text)


def _as_sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    if ends_sentence(_MARKER.sub("", text).strip()):
        return text
    return text + "."


def combine(parts: Sequence[Part], answers: Sequence[Answer], merged: Merged,
            abstain_text: str, timings: dict[str, float]) -> Answer:
    """One answer for the whole question: each part's answer, or that it is missing."""
    if all(a.abstained for a in answers):
        return Answer(abstain_text, True, merged.sources, [], timings, method="abstained")
    texts: list[str] = []
    cited: list[int] = []
    evidence: list[str] = []
    for part, answer, mapping in zip(parts, answers, merged.numbers, strict=True):
        if answer.abstained:
            texts.append(missing_text(part))
            continue
        texts.append(_as_sentence(renumber(answer.text, mapping)))
        cited += [mapping.get(n, n) for n in answer.cited if mapping.get(n, n) not in cited]
        evidence += [q for q in answer.evidence if q not in evidence]
    answered = [a for a in answers if not a.abstained]
    methods = {a.method for a in answered}
    # One part shown as the reader's span makes the whole "extracted": the app reports a
    # rival decoder reply (overruled) only for those, and its length-limit note only for
    # answers that are all the decoder's own.
    method = "extracted" if "extracted" in methods else answered[0].method
    overruled = next((a.overruled for a in answered if a.overruled), "")
    return Answer(" ".join(texts), False, merged.sources, cited, timings, evidence=evidence,
                  method=method, overruled=overruled)


#: Timings that are moments (seconds since the question came), not durations: merged by
#: taking the earliest, where durations add up.
MOMENTS = frozenset({"first_token_s", "total_s", "decoder_first_token_s", "first_draft_s"})


def merge_timings(parts: Sequence[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for timings in parts:
        for key, value in timings.items():
            if key in {"first_token_s", "total_s"}:
                continue  # the combined answer's own, set when it is written
            if key in MOMENTS:
                out[key] = min(out.get(key, value), value)
            else:
                out[key] = out.get(key, 0.0) + value
    return out
