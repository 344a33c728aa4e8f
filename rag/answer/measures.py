"""Measures computed from figures, by code: a 135M decoder cannot be trusted to divide.

A measure is one or more formulas over line items in the asked year (``offset`` 0) or
the years before it; the first formula whose every input the documents give is used
("gross margin" is gross profit / revenue, or (revenue - cost of sales) / revenue where
the statement shows no gross profit row). Growth between two periods works on any line
item the question names ("revenue growth from FY2022 to FY2023").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.answer.figures import BY_NAME, Item, items_in, years_in


@dataclass(frozen=True)
class Input:
    item: Item
    offset: int = 0  # years before the asked year


@dataclass(frozen=True)
class Formula:
    text: str  # "gross profit / revenue"
    inputs: tuple[Input, ...]
    compute: Callable[[Sequence[float]], float]


@dataclass(frozen=True)
class Measure:
    name: str
    formulas: tuple[Formula, ...]
    percent: bool  # a share, shown as a percentage; else a ratio
    year: int  # the asked year (the latest of the question's)
    digits: int  # decimal places asked for
    # "FY2017 - FY2019 3 year average": the measure in each of these years, then their mean;
    # "FY2022 compared to FY2021": in each, then the change. Empty: ``year`` alone.
    years: tuple[int, ...] = ()
    combine: str = ""  # "average", "change" or "" (one year)
    unit: str = ""  # a plain amount's scale ("million"), for measures that are amounts

    @property
    def periods(self) -> tuple[int, ...]:
        return self.years or (self.year,)


def _at(name: str, offset: int = 0) -> Input:
    return Input(BY_NAME[name], offset)


def _ratio(a: Sequence[float]) -> float:
    return a[0] / a[1]


def _share_of_revenue(name: str, text: str) -> tuple[Formula, ...]:
    return (Formula(f"{text} / revenue", (_at(name), _at("revenue")), _ratio),)


def _average(name: str, offset: int = 0) -> tuple[Input, Input]:
    return _at(name, offset), _at(name, offset + 1)


# (question pattern, name, percent, formulas): checked in order, first match wins.
_MEASURES: tuple[tuple[re.Pattern[str], str, bool, tuple[Formula, ...]], ...] = tuple(
    (re.compile(p, re.IGNORECASE), name, pct, formulas) for p, name, pct, formulas in (
        (r"\bgross\s+(?:profit\s+)?margin\b", "gross margin", True, (
            Formula("gross profit / revenue", (_at("gross profit"), _at("revenue")), _ratio),
            Formula("(revenue - cost of sales) / revenue", (_at("revenue"), _at("cost of sales")),
                    lambda a: (a[0] - a[1]) / a[0]))),
        (r"\boperating\s+(?:profit\s+|income\s+)?%?\s*margin\b", "operating margin", True,
         _share_of_revenue("operating income", "operating income")),
        (r"\b(?:net\s+(?:profit\s+|income\s+)?margin|profit\s+margin)\b", "net margin", True,
         _share_of_revenue("net income", "net income")),
        (r"\b(?:current|working\s+capital)\s+ratio\b", "current ratio", False, (
            Formula("total current assets / total current liabilities",
                    (_at("total current assets"), _at("total current liabilities")), _ratio),)),
        (r"\bquick\s+ratio\b", "quick ratio", False, (
            Formula("(total current assets - inventories) / total current liabilities",
                    (_at("total current assets"), _at("inventories"), _at("total current liabilities")),
                    lambda a: (a[0] - a[1]) / a[2]),)),
        (r"\bfixed\s+asset\s+turnover\b", "fixed asset turnover", False, (
            Formula("revenue / ((net PP&E + prior-year net PP&E) / 2)",
                    (_at("revenue"), *_average("net PP&E")), lambda a: a[0] / ((a[1] + a[2]) / 2)),)),
        (r"\boperating\s+cash\s+flow\s+ratio\b", "operating cash flow ratio", False, (
            Formula("operating cash flow / total current liabilities",
                    (_at("operating cash flow"), _at("total current liabilities")), _ratio),)),
        (r"\bdays\s+payables?\s+outstanding\b|\bDPO\b", "days payable outstanding", False, (
            Formula("365 x ((accounts payable + prior-year accounts payable) / 2) / "
                    "(cost of sales + inventories - prior-year inventories)",
                    (*_average("accounts payable"), _at("cost of sales"), *_average("inventories")),
                    lambda a: 365 * ((a[0] + a[1]) / 2) / (a[2] + a[3] - a[4])),)),
        (r"\bdays\s+sales\s+outstanding\b|\bDSO\b", "days sales outstanding", False, (
            Formula("365 x ((accounts receivable + prior-year accounts receivable) / 2) / revenue",
                    (*_average("accounts receivable"), _at("revenue")),
                    lambda a: 365 * ((a[0] + a[1]) / 2) / a[2]),)),
        (r"\binventory\s+turnover\b", "inventory turnover", False, (
            Formula("cost of sales / ((inventories + prior-year inventories) / 2)",
                    (_at("cost of sales"), *_average("inventories")),
                    lambda a: a[0] / ((a[1] + a[2]) / 2)),)),
        (r"\breturn\s+on\s+(?:total\s+)?assets\b|\bROA\b", "return on assets", True, (
            Formula("net income / ((total assets + prior-year total assets) / 2)",
                    (_at("net income"), *_average("total assets")), lambda a: a[0] / ((a[1] + a[2]) / 2)),)),
        (r"\b(?:total\s+)?asset\s+turnover\b", "asset turnover", False, (
            Formula("revenue / ((total assets + prior-year total assets) / 2)",
                    (_at("revenue"), _at("total assets"), _at("total assets", 1)),
                    lambda a: a[0] / ((a[1] + a[2]) / 2)),)),
        (r"\b(?:capex|capital\s+expenditures?)\b.{0,40}(?:%|\bpercent(?:age)?\b|\bshare\b|\bratio\b)"
         r".{0,20}\b(?:revenue|sales)",
         "capital expenditure as a share of revenue", True,
         _share_of_revenue("capital expenditure", "capital expenditure")),
        (r"\beffective\s+(?:income\s+)?tax\s+rate\b", "effective tax rate", True, (
            Formula("income tax expense / pretax income",
                    (_at("income tax expense"), _at("pretax income")), _ratio),)),
        (r"\b(?:dividend\s+)?payout\s+ratio\b", "dividend payout ratio", True, (
            Formula("dividends paid / net income", (_at("dividends paid"), _at("net income")), _ratio),)),
        (r"\bfree\s+cash\s+flow\b(?!\s+conversion)", "free cash flow", False, (
            Formula("operating cash flow - capital expenditure",
                    (_at("operating cash flow"), _at("capital expenditure")), lambda a: a[0] - a[1]),)),
        (r"\bworking\s+capital\b", "working capital", False, (
            Formula("total current assets - total current liabilities",
                    (_at("total current assets"), _at("total current liabilities")),
                    lambda a: a[0] - a[1]),)),
    ))
#: Measures that are amounts (in the statements' unit), not ratios or shares.
AMOUNTS = frozenset({"free cash flow", "working capital"})
_AVERAGE = re.compile(r"\b(?:(\d|two|three|four|five)[\s-]+years?\s+)?average\b(?!\s+(?:pp&e|ppne|"
                      r"accounts|inventor|total|net\s+pp|property|assets|between))", re.IGNORECASE)
_COMPARE = re.compile(r"\b(?:compare[ds]?|comparison|versus|vs\.?|change[ds]?|changed|differ)\b",
                      re.IGNORECASE)
_GROWTH = re.compile(r"\b(?:growth|grow|grew|change[ds]?|increase[ds]?|decrease[ds]?|decline[ds]?|"
                     r"year[\s-]+over[\s-]+year|yoy)\b", re.IGNORECASE)
_DIGITS = re.compile(r"\b(?:round(?:ed|ing)?|to)\s+(?:(?:your|the)\s+answer\s+)?(?:to\s+)?"
                     r"(?:the\s+nearest\s+)?"
                     r"(one|two|three|four|zero|no|\d)\s+decimal", re.IGNORECASE)
_WHOLE = re.compile(r"\bnearest\s+(?:whole\s+)?(?:number|integer|percent(?:age)?(?:\s+point)?)\b",
                    re.IGNORECASE)
_WORDS = {"zero": 0, "no": 0, "one": 1, "two": 2, "three": 3, "four": 4}


def digits_asked(question: str, default: int) -> int:
    """Decimal places the question asks for ("round to two decimal places"), else ``default``."""
    m = _DIGITS.search(question)
    if m:
        word = m.group(1).lower()
        return _WORDS[word] if word in _WORDS else int(word)
    return 0 if _WHOLE.search(question) else default


# Figures the statements do not show as such: an adjusted or organic measure is the
# company's own calculation, to be read from its text, not computed from the tables.
_NOT_COMPUTABLE = re.compile(r"\b(?:exclud\w*|adjusted|organic|real\s+(?:change|growth)|non-gaap|"
                             r"constant\s+currency|pro\s+forma)\b", re.IGNORECASE)
# Where a question defines its measure ("DPO is defined as: 365 * ... between FY2016 and
# FY2017"): the periods named after it belong to the formula, not to what is asked.
_DEFINITION = re.compile(r"\b(?:is\s+)?defined\s+as\b|\bdefine\b", re.IGNORECASE)


def from_statements(question: str) -> bool:
    """Whether the figure asked is one the statements show (not an adjusted, organic or
    pro-forma one, which only the company's own text gives)."""
    return _NOT_COMPUTABLE.search(question) is None


def measure_of(question: str) -> Measure | None:
    """The measure a question asks to compute, or None when it names none (or no year)."""
    years = years_in(question)
    if not years or not from_statements(question):
        return None
    cut = _DEFINITION.search(question)
    asked = question[:cut.start()] if cut else question
    years = years_in(asked) or years
    year = max(years)
    for pattern, name, percent, formulas in _MEASURES:
        if pattern.search(question):
            measure = Measure(name, formulas, percent, year, digits_asked(question, 1 if percent else 2))
            return _over_periods(asked, measure, years)
    items = items_in(question)
    if _GROWTH.search(question) and len(items) == 1:
        back = year - min(years) if len(years) > 1 else 1
        item = items[0]
        then = f"{item.name} FY{year - back}"
        formula = Formula(f"({item.name} FY{year} - {then}) / {then}",
                          (Input(item), Input(item, back)), lambda a: (a[0] - a[1]) / a[1])
        return Measure(f"{item.name} growth", (formula,), True, year, digits_asked(question, 1))
    return None


_SPAN_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5}


def _over_periods(question: str, measure: Measure, years: list[int]) -> Measure:
    """The measure over the periods the question asks: a mean over a range of years ("FY2017
    - FY2019 3 year average"), a change between two ("FY2022 compared to FY2021"), else one.

    "average PP&E between FY2018 and FY2019" inside a formula's definition is not a mean of
    the measure: ``_AVERAGE`` skips an "average" followed by a line item."""
    first = min(years)
    m = _AVERAGE.search(question)
    if m is not None and (len(years) > 1 or m.group(1)):
        count = (m.group(1) or "").lower()
        n = int(count) if count.isdigit() else _SPAN_WORDS.get(count, measure.year - first + 1)
        span = tuple(range(measure.year - max(n, 1) + 1, measure.year + 1))
        if len(span) > 1:
            return dataclasses.replace(measure, years=span, combine="average")
    if len(years) == 2 and _COMPARE.search(question):
        return dataclasses.replace(measure, years=(first, measure.year), combine="change")
    return measure


def shown_result(measure: Measure, value: float) -> str:
    """The result rounded as asked: "40.0%", "2.00", "$831 million"."""
    if measure.percent:
        return f"{value * 100:.{measure.digits}f}%"
    if measure.name in AMOUNTS:
        sign = "-" if value < 0 else ""
        return f"{sign}{abs(value):,.0f}" + (f" {measure.unit}" if measure.unit else "")
    return f"{value:.{measure.digits}f}"


def shown_change(measure: Measure, then: float, now: float) -> str:
    """The change between two periods' values: percentage points for a share."""
    if measure.percent:
        return f"{(now - then) * 100:+.{measure.digits}f} percentage points"
    if measure.name in AMOUNTS:
        return f"{now - then:+,.0f}" + (f" {measure.unit}" if measure.unit else "")
    return f"{now - then:+.{measure.digits}f}"
