"""What kind of answer a question wants, told by code from its words (no model).

``figure``: one line item in a period ("What is the FY2018 capital expenditure?");
``computed``: a measure built from figures (margins, ratios, growth); ``yesno``, ``summary``
and ``list`` for the answer paths that shape those; ``other`` for everything else (the
reader's path, as before). A yes/no question that names a measure ("Does Amcor have an
improving gross margin?") is ``yesno``: what decides it may be a measure, but the answer
is a judgment, not the figure.
"""

from __future__ import annotations

import re
from typing import Literal

from rag.answer.figures import items_in, years_in
from rag.answer.measures import from_statements, measure_of

Kind = Literal["figure", "computed", "yesno", "summary", "list", "other"]

_YESNO = re.compile(r"^\s*(?:is|are|was|were|does|do|did|has|have|had|can|could|will|would|should)\b",
                    re.IGNORECASE)
_SUMMARY = re.compile(r"^\s*(?:summari[sz]e|describe|explain|outline)\b|\b(?:summary|overview)\s+of\b",
                      re.IGNORECASE)
_LIST = re.compile(r"^\s*(?:list|enumerate)\b|^\s*name\s+(?:all|every|each)\b|"
                   r"\bwhat\s+are\s+(?:the|all)\b.*\b(?:segments|risks|products|factors|reasons|names)\b|"
                   r"^\s*which\s+\w+\s+(?:are|were)\b", re.IGNORECASE)
_AMOUNT = re.compile(r"\b(?:amount|how\s+much|what\s+(?:is|was|were)|in\s+(?:usd\s+)?(?:millions|thousands|"
                     r"billions)|total)\b", re.IGNORECASE)


def question_kind(question: str) -> Kind:
    if _YESNO.search(question):
        return "yesno"
    if measure_of(question) is not None:
        return "computed"
    if _SUMMARY.search(question):
        return "summary"
    if _LIST.search(question):
        return "list"
    if (len(items_in(question)) == 1 and years_in(question) and _AMOUNT.search(question)
            and from_statements(question)):
        return "figure"
    return "other"
