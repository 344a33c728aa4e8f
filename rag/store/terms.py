"""Text as the keyword (BM25) side sees it: numbers and fiscal years, and question boilerplate.

Two rules, applied to passages and questions alike (:func:`keyword_text`):
- letters glued to a year are cut off ("FY2018" -> "FY 2018", "2023Q2" -> "2023 Q2"), so
  a question's fiscal year matches the "2018" of a page or a file name;
- thousands separators are dropped ("1,577" -> "1577"): the tokenizer would otherwise keep
  only "577" (one-character tokens are dropped) and match unrelated figures.

And one for questions only (:func:`query_keywords`): words that instruct the reader rather
than describe the content ("Give a response ... round your answer to two decimal places",
"Assume that you are an analyst") are removed. They are rare in documents, so BM25 gives
them a high weight and ranks pages that happen to contain "response" or "round" on top; on
the financebench questions this dragged hybrid search below dense search alone.
"""

from __future__ import annotations

import re

_YEAR_GLUE = re.compile(r"(?<=\d{4})(?=[A-Za-z])|(?<=[A-Za-z])(?=\d{4}\b)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")

#: Instruction words of questions put to a reader. Kept short and generic: a word that
#: could name content ("statement", "income", "cash") is not here.
INSTRUCTION_WORDS = frozenset([
    "answer", "answers", "answering", "response", "respond", "responses", "reply", "question",
    "questions", "please", "give", "giving", "provide", "providing", "rely", "relying", "based",
    "base", "basing", "using", "use", "primarily", "shown", "show", "details", "detail",
    "information", "info", "calculate", "calculated", "calculation", "compute", "computed",
    "extract", "extracted", "round", "rounded", "rounding", "decimal", "decimals", "places",
    "place", "assume", "assuming", "analyst", "analysts", "equities", "units", "unit", "percents",
    "explain", "describe", "tell", "define", "defined", "judgments", "judgment", "judge",
    "consider", "considering",
])


def split_years(text: str) -> str:
    """Letters glued to a 4-digit year cut off: "FY2018" -> "FY 2018"; "10K" and "3M" stay."""
    return _YEAR_GLUE.sub(" ", text)


def keyword_text(text: str) -> str:
    """``text`` with fiscal years and thousands separators normalised (see module doc)."""
    return _THOUSANDS.sub("", split_years(text))


def query_keywords(question: str) -> str:
    """The question as a keyword query: normalised, instruction words removed.

    If nothing would be left (a question made only of such words), it is kept whole.
    """
    text = keyword_text(question)
    kept = [w for w in re.findall(r"\w[\w'&.-]*", text) if w.lower() not in INSTRUCTION_WORDS]
    return " ".join(kept) if kept else text
