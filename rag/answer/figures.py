"""Figures read from statement tables: a line item, in a period, with its unit.

"What is the FY2018 capital expenditure amount (in USD millions)?" names a line item in
the words people use ("capital expenditure"), which the filing writes its own way
("Purchases of property, plant and equipment"), and a period ("FY2018") that the table
writes as a column heading ("2018", "Year ended December 31, 2018"). Ingestion keeps a
table row with its headings ("label | 2018: (1,577) | 2017: (1,373)", see
:mod:`rag.answer.lookup`), so the figure is the cell whose row is one of the item's names
and whose heading holds the year. The unit comes from the table's heading ("(in
millions)"), above the row on the same page.

The vocabulary is generic accounting, not the wording of any evaluation question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.lookup import table_rows
from rag.types import Source


@dataclass(frozen=True)
class Item:
    """A line item: what a question calls it and what a statement row is titled."""

    name: str  # as the answer says it
    asked: re.Pattern[str]  # in a question
    rows: re.Pattern[str]  # a whole (cleaned) row label
    outflow: bool = False  # shown in parentheses in the cash flow statement, asked as positive


def _item(name: str, asked: str, rows: str, *, outflow: bool = False) -> Item:
    return Item(name, re.compile(rf"\b(?:{asked})\b", re.IGNORECASE),
                re.compile(rf"(?:{rows})", re.IGNORECASE), outflow)


_PPE = r"property,?\s+(?:plant|buildings?),?\s+and\s+equipment"
#: Most specific first: "cost of sales" must win over "sales", "gross profit" over "profit".
ITEMS: tuple[Item, ...] = (
    _item("cost of sales", r"cost\s+of\s+(?:goods\s+sold|sales|revenues?|products\s+sold)|cogs",
          r"(?:total\s+)?cost\s+of\s+(?:goods\s+sold|sales|revenues?|products\s+sold)"),
    _item("gross profit", r"gross\s+profit", r"gross\s+(?:profit|margin)"),
    _item("operating income", r"operating\s+(?:income|profit)|income\s+from\s+operations",
          r"(?:total\s+)?operating\s+(?:income|profit)(?:\s*\(loss\))?|income\s+from\s+operations"),
    _item("pretax income", r"pre-?tax\s+income|income\s+before\s+(?:income\s+)?taxes",
          r"(?:income|earnings)\s+(?:\(loss\)\s+)?(?:from\s+continuing\s+operations\s+)?before\s+"
          r"(?:provision\s+for\s+)?income\s+taxes"),
    _item("income tax expense",
          r"income\s+tax(?:es)?(?:\s+expense)?|tax\s+expense|provision\s+for\s+income\s+taxes",
          r"(?:provision\s+for\s+)?income\s+tax(?:es)?(?:\s+expense)?(?:\s*\(benefit\))?|"
          r"provision\s+for\s+\(benefit\s+from\)\s+income\s+taxes"),
    _item("net income", r"net\s+(?:income|earnings|profit)",
          r"net\s+(?:income|earnings)(?:\s*\(loss\))?(?:\s+attributable\s+to\s+.{1,60})?"),
    _item("capital expenditure", rf"capital\s+expenditures?|capex|purchases?\s+of\s+{_PPE}",
          rf"(?:purchases?|acquisitions?|additions\s+to|payments\s+for)\s+(?:of\s+)?{_PPE}|"
          r"capital\s+expenditures?", outflow=True),
    _item("dividends paid", r"dividends?(?:\s+paid)?",
          r"(?:cash\s+)?dividends\s+paid(?:\s+to\s+.{1,40})?|(?:payments?\s+of\s+)?(?:cash\s+)?dividends"
          r"(?:\s+(?:paid|on\s+common\s+stock))?", outflow=True),
    _item("net PP&E", rf"net\s+(?:pp&e|ppe|{_PPE})|(?:pp&e|ppe|{_PPE}),?\s+net",
          rf"{_PPE},?\s*(?:-\s*)?net|net\s+{_PPE}"),
    _item("total current assets", r"(?:total\s+)?current\s+assets", r"total\s+current\s+assets"),
    _item("total current liabilities", r"(?:total\s+)?current\s+liabilities",
          r"total\s+current\s+liabilities"),
    _item("total assets", r"total\s+assets", r"total\s+assets"),
    _item("inventories", r"inventor(?:y|ies)", r"(?:merchandise\s+)?inventor(?:y|ies)(?:,\s*net)?"),
    _item("operating cash flow", r"(?:operating\s+cash\s+flows?|cash\s+(?:flows?\s+)?from\s+operations|"
          r"cash\s+(?:provided\s+by|from)\s+operating\s+activities)",
          r"net\s+cash\s+(?:provided\s+by|from)\s+(?:\(used\s+in\)\s+)?operating\s+activities"),
    _item("revenue", r"(?:total\s+|net\s+)?(?:revenues?|sales)|top\s+line",
          r"(?:total\s+)?(?:net\s+)?(?:sales|revenues?)(?:,\s*net)?|total\s+net\s+sales\s+and\s+revenues?|"
          r"net\s+sales\s+and\s+(?:operating\s+)?revenues?|(?:total\s+)?operating\s+revenues?"),
)
BY_NAME = {i.name: i for i in ITEMS}

_YEAR = re.compile(r"\b(?:FY\s?|fiscal\s+(?:year\s+)?)?((?:19|20)\d\d)\b|\bFY\s?'?(\d\d)\b", re.IGNORECASE)
_SCALE = re.compile(r"\bin\s+(thousands|millions|billions)\b", re.IGNORECASE)
_NUMBER = re.compile(r"^\(?-?\s*[$€£]?\s*\(?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*\)?$")
# Footnote marks, note references, currency signs and a trailing abbreviation ("(PP&E)").
_LABEL_NOISE = re.compile(r"\s*(?:\(\d\)|\(note\s+\d+\)|\([a-z&]{2,8}\)$|[*†‡]+|\$)\s*|:$", re.IGNORECASE)
# A heading holding the year but not a figure of that year ("% change 2023 vs 2022").
_NOT_A_PERIOD = re.compile(r"%|change|vs\.?|versus|increase|decrease", re.IGNORECASE)


def items_in(question: str) -> list[Item]:
    """The line items a question names, in the order it names them (a name inside a longer
    one, "sales" in "cost of sales", is the longer one's)."""
    spans: list[tuple[int, int, Item]] = []
    for item in ITEMS:
        for m in item.asked.finditer(question):
            if not any(a <= m.start() and m.end() <= b for a, b, _ in spans):
                spans.append((m.start(), m.end(), item))
    out: list[Item] = []
    for _, _, item in sorted(spans, key=lambda s: s[0]):
        if item not in out:
            out.append(item)
    return out


def years_in(question: str) -> list[int]:
    """The fiscal years a question names, in order: "FY2018", "fiscal 2018", "FY18"."""
    out: list[int] = []
    for m in _YEAR.finditer(question):
        year = int(m.group(1)) if m.group(1) else 2000 + int(m.group(2))
        if year not in out:
            out.append(year)
    return out


def parse_number(cell: str) -> float | None:
    """A cell's figure: "$ 1,577" -> 1577, "(1,577)" -> -1577; None for text or a dash."""
    text = cell.strip()
    m = _NUMBER.match(text)
    if m is None:
        return None
    value = float(m.group(1).replace(",", "") + (m.group(2) or ""))
    return -value if "(" in text or "-" in text else value


@dataclass(frozen=True)
class Figure:
    """One cell read from a source: ``source.text[start:end] == text``."""

    item: Item
    year: int
    value: float
    text: str
    label: str  # the row as the statement titles it
    heading: str
    scale: str  # "million", "" when the page does not say
    currency: str  # "$" or ""
    source: Source
    start: int
    end: int

    @property
    def amount(self) -> float:
        """The value as asked: an outflow ("(1,577)" spent on equipment) as positive."""
        return abs(self.value) if self.item.outflow else self.value

    def shown(self) -> str:
        """"$1,577 million": the cell's own digits, the unit its table gives."""
        digits = re.sub(r"[^\d.,]", "", self.text)
        sign = "-" if self.amount < 0 else ""
        return f"{sign}{self.currency}{digits}" + (f" {self.scale}" if self.scale else "")

    def checked(self) -> bool:
        """The figure is what the cited text says, at the place it says it."""
        return self.source.text[self.start:self.end] == self.text


def _clean_label(label: str) -> str:
    return " ".join(_LABEL_NOISE.sub(" ", label).split()).strip(" .,")


def _scale_of(src: Source, before: int) -> str:
    found = list(_SCALE.finditer(src.text[:before])) or list(_SCALE.finditer(src.heading))
    return found[-1].group(1).lower().rstrip("s") if found else ""


def find_figure(item: Item, year: int, sources: Sequence[Source]) -> Figure | None:
    """The first cell (in the sources' rank order) in a row titled as ``item`` under a
    heading of ``year``."""
    pattern = re.compile(rf"(?<!\d){year}(?!\d)")
    for src in sources:
        for label, cells in table_rows(src.text):
            if not item.rows.fullmatch(_clean_label(label)):
                continue
            for cell in cells:
                if not pattern.search(cell.heading) or _NOT_A_PERIOD.search(cell.heading):
                    continue
                value = parse_number(cell.value)
                if value is None:
                    continue
                line = src.text[:cell.start].rfind("\n") + 1
                # Statements print "$" on a table's first and total rows only.
                currency = "$" if "$" in src.text or "dollar" in src.text.lower() else ""
                return Figure(item, year, value, cell.value, label, cell.heading, _scale_of(src, line),
                              currency, src, cell.start, cell.end)
    return None
