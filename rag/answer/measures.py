"""Measures computed from figures, by code: a 135M decoder cannot be trusted to divide.

A measure is one or more formulas over line items in the asked year (``offset`` 0) or
the years before it; the first formula whose every input the documents give is used
("gross margin" is gross profit / revenue, or (revenue - cost of sales) / revenue where
the statement shows no gross profit row). Growth between two periods works on any line
item the question names ("revenue growth from FY2022 to FY2023").
"""

from __future__ import annotations

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


def _at(name: str, offset: int = 0) -> Input:
    return Input(BY_NAME[name], offset)


def _ratio(a: Sequence[float]) -> float:
    return a[0] / a[1]


def _share_of_revenue(name: str, text: str) -> tuple[Formula, ...]:
    return (Formula(f"{text} / revenue", (_at(name), _at("revenue")), _ratio),)


# (question pattern, name, percent, formulas): checked in order, first match wins.
_MEASURES: tuple[tuple[re.Pattern[str], str, bool, tuple[Formula, ...]], ...] = tuple(
    (re.compile(p, re.IGNORECASE), name, pct, formulas) for p, name, pct, formulas in (
        (r"\bgross\s+(?:profit\s+)?margin\b", "gross margin", True, (
            Formula("gross profit / revenue", (_at("gross profit"), _at("revenue")), _ratio),
            Formula("(revenue - cost of sales) / revenue", (_at("revenue"), _at("cost of sales")),
                    lambda a: (a[0] - a[1]) / a[0]))),
        (r"\boperating\s+(?:profit\s+|income\s+)?margin\b", "operating margin", True,
         _share_of_revenue("operating income", "operating income")),
        (r"\b(?:net\s+(?:profit\s+|income\s+)?margin|profit\s+margin)\b", "net margin", True,
         _share_of_revenue("net income", "net income")),
        (r"\bcurrent\s+ratio\b", "current ratio", False, (
            Formula("total current assets / total current liabilities",
                    (_at("total current assets"), _at("total current liabilities")), _ratio),)),
        (r"\bquick\s+ratio\b", "quick ratio", False, (
            Formula("(total current assets - inventories) / total current liabilities",
                    (_at("total current assets"), _at("inventories"), _at("total current liabilities")),
                    lambda a: (a[0] - a[1]) / a[2]),)),
        (r"\b(?:total\s+)?asset\s+turnover\b", "asset turnover", False, (
            Formula("revenue / ((total assets + prior-year total assets) / 2)",
                    (_at("revenue"), _at("total assets"), _at("total assets", 1)),
                    lambda a: a[0] / ((a[1] + a[2]) / 2)),)),
        (r"\b(?:capex|capital\s+expenditures?)\b.{0,40}\b(?:%|percent(?:age)?|share|ratio)\b.{0,20}\b(?:revenue|sales)",
         "capital expenditure as a share of revenue", True,
         _share_of_revenue("capital expenditure", "capital expenditure")),
        (r"\beffective\s+(?:income\s+)?tax\s+rate\b", "effective tax rate", True, (
            Formula("income tax expense / pretax income",
                    (_at("income tax expense"), _at("pretax income")), _ratio),)),
        (r"\b(?:dividend\s+)?payout\s+ratio\b", "dividend payout ratio", True, (
            Formula("dividends paid / net income", (_at("dividends paid"), _at("net income")), _ratio),)),
    ))
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


def measure_of(question: str) -> Measure | None:
    """The measure a question asks to compute, or None when it names none (or no year)."""
    years = years_in(question)
    if not years:
        return None
    year = max(years)
    for pattern, name, percent, formulas in _MEASURES:
        if pattern.search(question):
            return Measure(name, formulas, percent, year, digits_asked(question, 1 if percent else 2))
    items = items_in(question)
    if _GROWTH.search(question) and len(items) == 1:
        back = year - min(years) if len(years) > 1 else 1
        item = items[0]
        then = f"{item.name} FY{year - back}"
        formula = Formula(f"({item.name} FY{year} - {then}) / {then}",
                          (Input(item), Input(item, back)), lambda a: (a[0] - a[1]) / a[1])
        return Measure(f"{item.name} growth", (formula,), True, year, digits_asked(question, 1))
    return None


def shown_result(measure: Measure, value: float) -> str:
    """The result rounded as asked: "40.0%", "2.00"."""
    if measure.percent:
        return f"{value * 100:.{measure.digits}f}%"
    return f"{value:.{measure.digits}f}"
