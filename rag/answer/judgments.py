"""Yes/no questions about a report's measures, decided by code from computed figures.

"Does Amcor have an improving gross margin profile as of FY2023?", "Has the quick ratio
improved or declined between FY2022 and FY2023?", "Does Corning have positive working
capital based on FY2022 data?": the measure is computed (rag.answer.reports) in the periods
the question needs, and the verdict follows from the numbers, said first ("No: ..."), with
the workings and every input cited. A yes/no question that names no measure, or one whose
inputs cannot be found, goes on to the reader: a verdict on a guessed figure is worse than
the reader's sentence.
"""

from __future__ import annotations

import dataclasses
import re

from rag.answer.kinds import question_kind
from rag.answer.measures import Measure, measure_of, shown_change, shown_result
from rag.answer.reports import ReportRoute, Result, computed_answer, with_unit
from rag.answer.routes import RouteContext
from rag.types import Answer, Source

_UP = re.compile(r"\b(?:improv\w*|increas\w*|grow\w*|expand\w*|higher|better|rising|rise)\b", re.IGNORECASE)
_DOWN = re.compile(r"\b(?:declin\w*|decreas\w*|deteriorat\w*|shrink\w*|lower|worse|falling|fall|drop\w*)\b",
                   re.IGNORECASE)
_SIGN = re.compile(r"\b(positive|negative)\b", re.IGNORECASE)
# Ratios and margins: a higher value is the better one (a DPO or a tax rate is not judged).
_HIGHER_IS_BETTER = frozenset({"gross margin", "operating margin", "net margin", "current ratio",
                               "quick ratio", "asset turnover", "fixed asset turnover",
                               "operating cash flow ratio", "return on assets", "inventory turnover",
                               "working capital", "free cash flow"})


class YesNoRoute:
    """Answers ``yesno`` questions about a trend or the sign of a measure; None else."""

    def __init__(self, report: ReportRoute) -> None:
        self.report = report

    def __call__(self, ctx: RouteContext) -> Answer | None:
        if question_kind(ctx.question) != "yesno":
            return None
        measure = measure_of(ctx.question)
        if measure is None:
            return None
        sign = _SIGN.search(ctx.question)
        if sign is not None:
            return self._sign(ctx, dataclasses.replace(measure, years=(), combine=""), sign.group(1).lower())
        up, down = _UP.search(ctx.question), _DOWN.search(ctx.question)
        if (up or down) and measure.name in _HIGHER_IS_BETTER:
            first = measure.periods[0] if len(measure.periods) > 1 else measure.year - 1
            trend = dataclasses.replace(measure, years=(first, measure.year), combine="change")
            # "improved or declined": the first direction named is the one asked about.
            asks_up = up is not None and (down is None or up.start() < down.start())
            either = up is not None and down is not None  # "improved or declined?": say which
            return self._trend(ctx, trend, asks_up=asks_up, either=either)
        return None

    def _compute(self, ctx: RouteContext, measure: Measure) -> tuple[list[Result], list[Source]] | None:
        shown = list(ctx.sources)
        results = self.report.results(ctx, shown, measure)
        # Not found: no verdict, and the reader may still find the company's own words.
        return None if isinstance(results, Answer) else (results, shown)

    def _trend(self, ctx: RouteContext, measure: Measure, *, asks_up: bool, either: bool) -> Answer | None:
        got = self._compute(ctx, measure)
        if got is None:
            return None
        results, shown = got
        measure = with_unit(measure, results)
        then, now = results[0], results[-1]
        rose = now.value > then.value
        verdict = "Yes" if rose == asks_up else "No"
        if either:
            verdict = "Improved" if rose else "Declined"
        moved = "rose" if rose else ("fell" if now.value < then.value else "was unchanged")
        head = (f"{verdict}: the {measure.name} {moved} from {shown_result(measure, then.value)} in "
                f"FY{then.year} to {shown_result(measure, now.value)} in FY{now.year} "
                f"({shown_change(measure, then.value, now.value)})")
        return computed_answer(measure, results, shown, head=head, method="judged")

    def _sign(self, ctx: RouteContext, measure: Measure, asked: str) -> Answer | None:
        got = self._compute(ctx, measure)
        if got is None:
            return None
        results, shown = got
        measure = with_unit(measure, results)
        value = results[0].value
        positive = value > 0
        verdict = "Yes" if positive == (asked == "positive") else "No"
        head = (f"{verdict}: the FY{results[0].year} {measure.name} was {shown_result(measure, value)}, "
                f"{'positive' if positive else 'not positive'}")
        return computed_answer(measure, results, shown, head=head, method="judged")
