"""Financial statements: which one a question needs, and which pages are one.

Most questions put to a filing are answered from one of three primary statements (the
balance sheet, the income statement, the statement of cash flows), and many name none of
them: "Does AMCOR have an improving gross margin profile?" needs the income statement,
"What is the FY2018 capital expenditure?" the cash flow statement ("Purchases of property,
plant and equipment"). Neither search side bridges that: the statement page is a table of
figures whose words ("Net sales", "Cost of sales") are everywhere in the filing, and the
notes and MD&A pages that discuss the metric outrank it. On the 23-filing development
slice the statement page was the answer for 25 of 43 questions and missing from the top 5
for 14 of them.

So a question's statement(s) are read from its words (the statement's names and the line
items and ratios built from it), a page's from its heading (``Chunk.heading``, the
header's second line: "Amcor plc and Subsidiaries · Consolidated Statements of Income"),
and the retriever fuses a third list: the candidates on a matching statement page, in
their fused order (``rag.retrieval.hybrid``). A question that needs no statement, or a collection
without statement pages (SQuAD, manuals, notes), is ranked exactly as before.

The vocabulary is generic accounting (statement titles, line items and ratios), not the
wording of any evaluation question; it was written while reading the development slice's
misses, so the held-out filings are the test of it.
"""

from __future__ import annotations

import re
from typing import Literal

from rag.types import HEADER_SEP

Statement = Literal["balance", "income", "cash"]

# A page *is* a statement when its heading names one: the statement's title, not a phrase
# that contains it. "Off-Balance Sheet Arrangements", "Balance Sheet Data", "Income
# Statement Review" and "Notes to the Income Statement" are MD&A and note headings; the
# look-behind, the look-ahead and the "notes to" check keep them out. "Statements of
# comprehensive income" and "of stockholders' equity" are other statements: the words
# between "of" and the name keep them out. "Balance Shee t": PDF text layers split words
# at font changes.
_TITLES: dict[Statement, str] = {
    "balance": r"balance\s*shee|statements?\s+of\s+(?:consolidated\s+)?financial\s+(?:position|condition)",
    "income": r"statements?\s+of\s+(?:consolidated\s+)?(?:operations|income|earnings|profit\s+or\s+loss)"
              r"\b|income\s+statements?\b|profit\s+(?:and|&)\s+loss",
    "cash": r"statements?\s+of\s+(?:consolidated\s+)?cash\s*flows?|cash\s*flows?\s+statements?\b",
}
_NOT_A_TITLE_AFTER = (r"(?!\w*\s+(?:data|arrangements?|review|analysis|discussion|highlights|items?|"
                      r"information)\b)")
_PAGE: dict[Statement, re.Pattern[str]] = {
    s: re.compile(rf"(?<![\w-])(?:{t}){_NOT_A_TITLE_AFTER}", re.IGNORECASE) for s, t in _TITLES.items()
}
_NOTES = re.compile(r"^\s*notes?\b", re.IGNORECASE)

# A question *needs* a statement when it names it or a figure (or ratio) read from it.
_QUESTION: dict[Statement, re.Pattern[str]] = {
    "balance": re.compile(
        r"balance\s+sheets?|financial\s+position|financial\s+condition|working\s+capital|"
        r"quick\s+ratio|current\s+ratio|debt[\s-]+to[\s-]+equity|total\s+(?:assets|liabilities)|"
        r"current\s+(?:assets|liabilities)|inventor(?:y|ies)|accounts\s+(?:payable|receivable)|"
        r"\bpp&?e\b|\bppne\b|property,?\s+plant|fixed\s+assets?|shareholders.?\s+equity|"
        r"stockholders.?\s+equity|days\s+(?:payable|sales|inventory)|\bdpo\b|\bdso\b|\bdio\b|"
        r"book\s+value|goodwill|retained\s+earnings|asset\s+turnover|return\s+on\s+(?:assets|equity)|"
        r"(?:total|net|long[\s-]term)\s+debt",
        re.IGNORECASE),
    "income": re.compile(
        r"income\s+statements?|statements?\s+of\s+(?:income|operations|earnings)|\bp&l\b|"
        r"profit\s+(?:and|&)\s+loss|revenues?\b|net\s+sales|top\s+line|gross\s+(?:margin|profit)|"
        r"operating\s+(?:margin|income|profit|expenses?)|net\s+(?:income|profit|earnings|loss)|"
        r"\bebit(?:da)?\b|effective\s+tax|income\s+tax|cost\s+of\s+(?:goods|sales|revenues?)|"
        r"\bcogs\b|earnings\s+per\s+share|\beps\b|interest\s+expense|sg&a|selling,\s+general|"
        r"research\s+and\s+development|\br&d\b|asset\s+turnover|return\s+on\s+(?:assets|equity)",
        re.IGNORECASE),
    "cash": re.compile(
        r"cash\s+flow\s+statements?|statements?\s+of\s+cash\s+flows?|cash\s*flows?\b|"
        r"cash\s+(?:provided|used|generated)|"
        r"capital\s+expenditures?|\bcapex\b|free\s+cash\s*flow|dividends?\s+paid|"
        r"(?:paid|pay|payout)\s+(?:out\s+)?(?:in\s+)?(?:cash\s+)?dividends|cash\s+dividends|"
        r"(?:operating|investing|financing)\s+activities|operations,\s+investing|"
        r"depreciation\s+and\s+amortization|(?:share|stock)\s+(?:repurchases?|buybacks?)|"
        r"buybacks?|cash\s+conversion",
        re.IGNORECASE),
}


def question_statements(question: str) -> frozenset[Statement]:
    """The primary statements ``question`` is answered from (empty: none in particular)."""
    return frozenset(s for s, p in _QUESTION.items() if p.search(question))


def page_statements(heading: str) -> frozenset[Statement]:
    """The statements a page is, from its heading (``Chunk.heading``; see module doc).

    Only the heading counts, not the header's document line: a document's title may hold
    any words ("Annual report and statements of income ...").
    """
    segments = [g for g in heading.split(HEADER_SEP) if not _NOTES.match(g)]
    return frozenset(s for s, p in _PAGE.items() if any(p.search(g) for g in segments))
