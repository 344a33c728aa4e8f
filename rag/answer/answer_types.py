"""Whether a candidate answer is of the type its question asks for, by code (no model).

"What is its population?" answered with a place (docchat issue 28) is no answer: the reader
found a confident span in a passage about something else. The check is deliberately
conservative, rejecting only clear mismatches, because an answer type told from a few words
is a guess and a wrongly rejected span is a refusal where an answer was:

- a number asked ("how many", "how much", "population", "number of", "percentage"), and
  the span has no digit and no number word ("three", "several", "a dozen");
- a date asked ("when", "what year", "what date"), and the span has no digit, no month,
  weekday or season, and no word about time ("century", "during", "after the war");
- a person, organisation or place asked ("who", "where"), and the span is a bare number
  (no letter at all).
"""

from __future__ import annotations

import re
from typing import Literal

Expected = Literal["number", "date", "name", "any"]

_NUMBER_Q = re.compile(r"\bhow\s+(?:many|much)\b|\bpopulation\b|\bnumber\s+of\b|\bpercent(?:age)?\b",
                       re.IGNORECASE)
# "Which city has the largest population?" asks for a city: the question's own head noun
# names the type, and "population" there only says how the city is picked.
_NAMED_HEAD = re.compile(r"^\s*(?:which|who|whom|whose|where)\b|^\s*what\s+(?!is\b|was\b|are\b|were\b|"
                         r"percent|percentage\b|number\b|share\b|proportion\b)[a-z]+\s+(?:is|was|are|were|"
                         r"has|had|have|does|did)\b", re.IGNORECASE)
_DATE_Q = re.compile(r"^\s*when\b|\b(?:what|which|in\s+which|in\s+what)\s+(?:year|date|month|day|century|"
                     r"decade)\b", re.IGNORECASE)
_NAME_Q = re.compile(r"^\s*(?:who|whom|whose|where)\b", re.IGNORECASE)

_NUMBER_WORDS = re.compile(
    r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|"
    r"ninety|hundreds?|thousands?|millions?|billions?|trillions?|dozens?|several|few|many|none|"
    r"single|double|twice|half|quarter|both|no)\b", re.IGNORECASE)
_TIME_WORDS = re.compile(
    r"\b(?:january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|spring|summer|autumn|fall|winter|century|centuries|decades?|years?|months?|"
    r"weeks?|days?|ago|today|yesterday|tomorrow|now|era|age|period|reign|dynasty|war|after|before|"
    r"during|since|until|later|earlier|early|late|mid|morning|evening|night|noon|midnight|ad|bc|"
    r"bce|ce|recently|soon|once|when|while)\b", re.IGNORECASE)


def expected_type(question: str) -> Expected:
    """What kind of answer ``question`` asks for; "any" when its words do not say."""
    if _DATE_Q.search(question):
        return "date"
    if _NUMBER_Q.search(question) and not _NAMED_HEAD.search(question):
        return "number"
    if _NAME_Q.search(question):
        return "name"
    return "any"


def compatible(question: str, answer: str) -> bool:
    """False only when ``answer`` is clearly not of the type ``question`` asks for."""
    wanted = expected_type(question)
    has_digit = any(ch.isdigit() for ch in answer)
    if wanted == "number":
        return has_digit or _NUMBER_WORDS.search(answer) is not None
    if wanted == "date":
        return has_digit or _TIME_WORDS.search(answer) is not None
    if wanted == "name":
        return any(ch.isalpha() for ch in answer)
    return True
