"""Numeric gold answers scored as numbers: "$1,577 million" is right for "$1577.00".

A gold answer is numeric when it is one figure and its unit ("$1577.00", "24.26", "1.9%",
"(3.2)"). A reply is right when one of the figures it states is within ``TOLERANCE`` of the
gold once its scale is applied ("1.577 billion", "1,577 million"), allowing one shift of a
thousand, a million or a billion either way (a reply in millions for a gold in thousands
reads the same table; a gold "$8.70" for a question asking "in USD billions" carries no
scale word) and, for percentages, a share written as a fraction ("0.019" for "1.9%").
Negative values may be written in parentheses, as filings do: "(1,234)" is -1234.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

#: Relative difference under which two figures are the same answer (FinanceBench's 1%).
TOLERANCE = 0.01

SCALES = {
    "thousand": 1e3, "thousands": 1e3, "k": 1e3,
    "million": 1e6, "millions": 1e6, "mn": 1e6, "m": 1e6, "mm": 1e6,
    "billion": 1e9, "billions": 1e9, "bn": 1e9, "b": 1e9,
    "trillion": 1e12, "trillions": 1e12, "tn": 1e12,
}

_NUMBER = re.compile(
    r"(?P<neg>-|−|\()?\s*(?P<cur>[$€£¥])?\s*(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"\)?\s*(?P<pct>%|percent\b)?(?:\s*(?P<scale>thousands?|millions?|billions?|trillions?|mn|bn|tn|mm|[kmb])\b)?",
    re.IGNORECASE,
)
#: A whole gold answer that is one figure: currency, sign or parentheses, unit words after.
_ONE_FIGURE = re.compile(
    r"^\s*[(\-−]?\s*[$€£¥]?\s*[\d.,]+\s*\)?\s*(%|percent|x|times)?\s*"
    r"(thousands?|millions?|billions?|mn|bn|[kmb])?\s*(usd|dollars?)?\s*\.?\s*$",
    re.IGNORECASE,
)


def figures(text: str) -> list[tuple[float, bool]]:
    """Each figure stated in ``text`` as (value with its scale applied, is a percentage)."""
    out: list[tuple[float, bool]] = []
    for m in _NUMBER.finditer(text):
        raw = m.group("num").replace(",", "")
        try:
            value = float(raw)
        except ValueError:
            continue
        neg = m.group("neg")
        # "(1,234)" is negative only when the parenthesis closes on the figure.
        if neg in ("-", "−") or (neg == "(" and ")" in m.group(0)):
            value = -value
        scale = (m.group("scale") or "").lower()
        if scale:
            value *= SCALES[scale]
        out.append((value, bool(m.group("pct"))))
    return out


def numeric_gold(gold: str) -> tuple[float, bool] | None:
    """The figure a gold answer is, or None when it is text (a judgment, a list...)."""
    if not _ONE_FIGURE.match(gold):
        return None
    got = figures(gold)
    return got[0] if len(got) == 1 else None


def close(a: float, b: float, tolerance: float = TOLERANCE) -> bool:
    if b == 0:
        return abs(a) < 1e-9
    return abs(a - b) <= tolerance * abs(b) + 1e-12


def same_figure(pred: tuple[float, bool], gold: tuple[float, bool], tolerance: float = TOLERANCE) -> bool:
    """``pred`` states ``gold``, up to one thousand/million/billion shift (or percent vs fraction)."""
    value, _ = pred
    target, gold_pct = gold
    shifts = [1.0, 1e3, 1e-3, 1e6, 1e-6, 1e9, 1e-9]
    if gold_pct or pred[1]:
        shifts += [100.0, 0.01]
    return any(close(value * s, target, tolerance) for s in shifts)


def number_right(reply: str, golds: Sequence[str], tolerance: float = TOLERANCE) -> bool | None:
    """True/False when a gold is numeric (does the reply state it?); None when none is."""
    targets = [g for g in (numeric_gold(x) for x in golds) if g is not None]
    if not targets:
        return None
    stated = figures(reply)
    return any(same_figure(p, t, tolerance) for p in stated for t in targets)


def states_a_figure(reply: str) -> bool:
    """The reply gives some figure (a wrong figure counts as confidently wrong)."""
    return any(not math.isnan(v) for v, _ in figures(reply))
