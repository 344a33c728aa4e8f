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

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.answer.lookup import Cell, table_rows
from rag.types import Source


@dataclass(frozen=True)
class Item:
    """A line item: what a question calls it and what a statement row is titled."""

    name: str  # as the answer says it
    asked: re.Pattern[str]  # in a question
    rows: re.Pattern[str]  # a whole (cleaned) row label
    outflow: bool = False  # shown in parentheses in the cash flow statement, asked as positive
    # A balance sheet item: the cash flow statement's row of that name is its change.
    balance: bool = False


def _item(name: str, asked: str, rows: str, *, outflow: bool = False, balance: bool = False) -> Item:
    return Item(name, re.compile(rf"\b(?:{asked})\b", re.IGNORECASE),
                re.compile(rf"(?:{rows})", re.IGNORECASE), outflow, balance)


# "property, plant and equipment", "property and equipment", "property, buildings and equipment"
_PPE = r"property(?:,?\s+(?:plant|buildings?))?,?\s+and\s+equipment"
#: Most specific first: "cost of sales" must win over "sales", "gross profit" over "profit".
ITEMS: tuple[Item, ...] = (
    _item("cost of sales", r"cost\s+of\s+(?:goods\s+sold|sales|revenues?|products\s+sold)|cogs",
          r"(?:total\s+)?cost\s+of\s+(?:goods\s+sold|sales|revenues?|products\s+sold)"),
    _item("gross profit", r"gross\s+profit", r"gross\s+(?:profit|margin)"),
    _item("operating income", r"operating\s+(?:income|profit)|income\s+from\s+operations",
          r"(?:total\s+)?operating\s+(?:income|profit)(?:\s*\(loss\))?|income\s+from\s+operations"),
    _item("pretax income", r"pre-?tax\s+income|income\s+before\s+(?:income\s+)?taxes",
          r"(?:income|earnings)\s*(?:/\s*\(loss\)\s*|\(loss\)\s+)?(?:from\s+continuing\s+operations\s+)?before\s+"
          r"(?:provision\s+for\s+)?income\s+taxes"),
    _item("income tax expense",
          r"income\s+tax(?:es)?(?:\s+expense)?|tax\s+expense|provision\s+for\s+income\s+taxes",
          r"(?:provision\s+for\s+)?income\s+tax(?:es)?(?:\s+expense)?(?:\s*\(benefit\))?|"
          r"provision\s+for\s+\(benefit\s+from\)\s+income\s+taxes|"
          r"income\s+tax(?:es)?\s*\(expense\)\s*/\s*benefit|income\s+tax\s+benefit\s*/\s*\(expense\)",
          outflow=True),
    _item("net income", r"net\s+(?:income|earnings|profit)",
          r"net\s+(?:income|earnings)(?:\s*\(loss\))?(?:\s+attributable\s+to\s+.{1,60})?"),
    _item("capital expenditure", rf"capital\s+expenditures?|capex|purchases?\s+of\s+{_PPE}",
          rf"(?:purchases?|acquisitions?|additions\s+to|payments\s+for)\s+(?:of\s+)?{_PPE}|"
          r"capital\s+expenditures?", outflow=True),
    _item("dividends paid", r"dividends?(?:\s+paid)?",
          r"(?:cash\s+)?dividends\s+paid(?:\s+to\s+.{1,40})?|(?:payments?\s+of\s+)?(?:cash\s+)?dividends"
          r"(?:\s+(?:paid|on\s+common\s+stock))?", outflow=True),
    _item("net PP&E", rf"net\s+(?:pp&e|ppne|ppe|{_PPE})|(?:pp&e|ppne|ppe|{_PPE}),?\s+net|"
          r"fixed\s+assets|pp&e|ppne",
          rf"(?:total\s+)?{_PPE},?\s*(?:-\s*)?net|net\s+{_PPE}", balance=True),
    _item("accounts payable", r"accounts\s+payable|trade\s+payables?",
          r"accounts\s+payable(?:,?\s+(?:trade|net))?(?:\s+and\s+accrued\s+(?:expenses|liabilities))?|"
          r"trade\s+(?:accounts\s+)?payables?", balance=True),
    _item("accounts receivable", r"accounts\s+receivable|trade\s+receivables?|receivables",
          r"(?:accounts|trade)\s+receivables?(?:,?\s+net)?(?:\s+of\s+allowance.{0,80})?|receivables,?\s+net",
          balance=True),
    _item("total current assets", r"(?:total\s+)?current\s+assets", r"total\s+current\s+assets",
          balance=True),
    _item("total current liabilities", r"(?:total\s+)?current\s+liabilities",
          r"total\s+current\s+liabilities", balance=True),
    _item("total assets", r"total\s+assets", r"total\s+assets", balance=True),
    _item("inventories", r"inventor(?:y|ies)", r"(?:merchandise\s+)?inventor(?:y|ies)(?:,\s*net)?",
          balance=True),
    _item("operating cash flow", r"(?:operating\s+cash\s+flows?|cash\s+(?:flows?\s+)?from\s+operations|"
          r"cash\s+(?:flows?\s+)?(?:provided\s+by|from|generated\s+(?:by|from))\s+operating\s+activities)",
          r"net\s+cash\s+(?:provided\s+by|from)\s+(?:\(used\s+in\)\s+)?operating\s+activities"),
    _item("revenue", r"(?:total\s+|net\s+)?(?:revenues?|sales)|top\s+line",
          r"(?:total\s+)?(?:net\s+)?(?:sales|revenues?)(?:,\s*net)?|total\s+net\s+sales\s+and\s+revenues?|"
          r"net\s+sales\s+and\s+(?:operating\s+)?revenues?|(?:total\s+)?operating\s+revenues?"),
)
BY_NAME = {i.name: i for i in ITEMS}

_YEAR = re.compile(r"\b(?:FY\s?|fiscal\s+(?:year\s+)?)?((?:19|20)\d\d)\b|\bFY\s?'?(\d\d)\b", re.IGNORECASE)
# "(in millions)", "amounts in thousands", or a table's corner cell "(Millions)".
_SCALE = re.compile(r"\bin\s+(thousands|millions|billions)\b|"
                    r"\(\s*(?:\$|dollars)?\s*(thousands|millions|billions)\b", re.IGNORECASE)
_NUMBER = re.compile(r"^\(?-?\s*[$€£]?\s*\(?\s*(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*\)?$")
# Footnote marks, note references, currency signs and a trailing abbreviation ("(PP&E)").
_LABEL_NOISE = re.compile(r"\s*(?:\(\d\)|\(note\s+\d+\)|\([a-z&]{2,8}\)$|[*†‡]+|\$)\s*|:$", re.IGNORECASE)
_SIGNED = re.compile(r"\(expense\)\s*/\s*benefit|benefit\s*/\s*\(expense\)", re.IGNORECASE)
_CASH_FLOWS = re.compile(r"\bcash\s+flows?\b", re.IGNORECASE)
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
        """The value as asked: an outflow ("(1,577)" spent on equipment, "(491)" provided
        for taxes) as positive; but where the row says "(expense)/benefit", parentheses are
        the expense and a plain figure a benefit."""
        if self.item.outflow and _SIGNED.search(self.label):
            return -self.value
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


def scale_in(text: str) -> str:
    """The last scale ``text`` states ("(in millions)" -> "million"), else ""."""
    found = list(_SCALE.finditer(text))
    return (found[-1].group(1) or found[-1].group(2)).lower().rstrip("s") if found else ""


def _scale_of(src: Source, before: int) -> str:
    return scale_in(src.text[:before]) or scale_in(src.heading)


def find_figure(item: Item, year: int, sources: Sequence[Source],
                above: Callable[[Source], str] | None = None) -> Figure | None:
    """The first cell (in the sources' rank order) in a row titled as ``item`` under a
    heading of ``year``.

    Where the table's headings are not its years (the parser took the first row's values
    for them: "Total revenue | $ 16,388: 17,606 | $ 14,573: 15,785"), the years printed
    above the table ("December 2, 2022 ... December 3, 2021"), in the passage or, through
    ``above``, the page's text before it, name the columns in order."""
    pattern = re.compile(rf"(?<!\d){year}(?!\d)")
    for src in sources:
        if item.balance and _CASH_FLOWS.search(src.heading):
            continue
        for label, cells in table_rows(src.text):
            if not item.rows.fullmatch(_clean_label(label)):
                continue
            chosen = [c for c in cells if pattern.search(c.heading) and not _NOT_A_PERIOD.search(c.heading)]
            if not chosen and not any(_YEAR_ONLY.search(c.heading) for c in cells):
                # Named by the year above its column, not by its (wrong) heading.
                chosen = [dataclasses.replace(c, heading=str(year))
                          for c in _by_column_years(cells, year, src, above)]
            for cell in chosen:
                value = parse_number(cell.value)
                if value is None:
                    continue
                line = src.text[:cell.start].rfind("\n") + 1
                # Statements print "$" on a table's first and total rows only.
                currency = "$" if "$" in src.text or "dollar" in src.text.lower() else ""
                return Figure(item, year, value, cell.value, label, cell.heading, _scale_of(src, line),
                              currency, src, cell.start, cell.end)
    return None


_YEAR_ONLY = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")


def _by_column_years(cells: Sequence[Cell], year: int, src: Source,
                     above: Callable[[Source], str] | None) -> list[Cell]:
    """The cell of ``year`` by position, when the years above the table (the last run of
    as many distinct years as the row has cells, newest first) name its columns."""
    start = src.text.find(cells[0].heading) if cells else -1
    text = src.text[:max(start, 0)]
    years = [int(y) for y in _YEAR_ONLY.findall(text)]
    if len(years) < len(cells) and above is not None:
        years = [int(y) for y in _YEAR_ONLY.findall(above(src) + "\n" + text)]
    run = years[-len(cells):] if len(years) >= len(cells) else []
    if not run or run != sorted(set(run), reverse=True) or year not in run:
        return []
    return [cells[run.index(year)]]
