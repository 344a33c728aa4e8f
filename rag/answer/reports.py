"""The report route: figures read from statement tables and measures computed from them.

A figure question is answered with the cell that holds it, its unit and its page cited;
a computed one with the formula, each input cited where it was read, and the result
rounded as asked. A figure missing from the retrieved passages is searched for (the
chain's own retrieval, by the item's name and year). When an input of a measure cannot be
found the answer is a refusal naming it: a measure with a guessed input is wrong.
Any other kind of question, or a figure that cannot be found, goes on to the reader.
"""

from __future__ import annotations

import dataclasses

from rag.answer.figures import Figure, Item, find_figure, items_in, years_in
from rag.answer.kinds import question_kind
from rag.answer.measures import Formula, Measure, measure_of, shown_result
from rag.answer.routes import Route, RouteContext
from rag.answer.steps import to_sources
from rag.settings import Settings
from rag.types import Answer, Source

SEARCH_K = 8  # passages searched for one missing figure


class ReportRoute:
    """Answers ``figure`` and ``computed`` questions (:mod:`rag.answer.kinds`); None else."""

    def __init__(self, search_k: int = SEARCH_K) -> None:
        self.search_k = search_k

    def __call__(self, ctx: RouteContext) -> Answer | None:
        kind = question_kind(ctx.question)
        if kind == "computed":
            measure = measure_of(ctx.question)
            return None if measure is None else self._computed(ctx, measure)
        if kind == "figure":
            return self._figure(ctx)
        return None

    def _find(self, ctx: RouteContext, shown: list[Source], item: Item, year: int) -> Figure | None:
        """The figure in the passages shown so far, else in a search for it (whose new
        passages join ``shown``, numbered after it)."""
        figure = find_figure(item, year, shown)
        if figure is not None:
            return figure
        known = {s.chunk_id for s in shown}
        found = [s for s in to_sources(ctx.search(f"{item.name} {year}", self.search_k))
                 if s.chunk_id not in known]
        figure = find_figure(item, year, found)
        if figure is None:
            return None
        src = dataclasses.replace(figure.source, n=len(shown) + 1)
        shown.append(src)
        return dataclasses.replace(figure, source=src)

    def _figure(self, ctx: RouteContext) -> Answer | None:
        item, year = items_in(ctx.question)[0], max(years_in(ctx.question))
        shown = list(ctx.sources)
        figure = self._find(ctx, shown, item, year)
        if figure is None or not figure.checked():
            return None
        n = figure.source.n
        text = f"The FY{year} {item.name} was {figure.shown()} [{n}] ({figure.label}, {figure.heading})."
        return Answer(text, False, shown, [n], evidence=[_evidence(figure)], method="figure")

    def _computed(self, ctx: RouteContext, measure: Measure) -> Answer:
        shown = list(ctx.sources)
        first_missing = ""
        for formula in measure.formulas:
            got: list[Figure] = []
            for need in formula.inputs:
                figure = self._find(ctx, shown, need.item, measure.year - need.offset)
                if figure is None or not figure.checked():
                    first_missing = first_missing or f"FY{measure.year - need.offset} {need.item.name}"
                    break
                got.append(figure)
            else:
                return _computed_answer(measure, formula, got, shown)
        why = (f"The documents do not give the {first_missing}, needed for the FY{measure.year} "
               f"{measure.name} ({measure.formulas[0].text}).")
        return Answer(why, True, shown, [], method="abstained")


def _computed_answer(measure: Measure, formula: Formula, got: list[Figure], shown: list[Source]) -> Answer:
    try:
        value = formula.compute([f.amount for f in got])
    except ZeroDivisionError:
        return Answer(f"The FY{measure.year} {measure.name} cannot be computed: a divisor is zero.",
                      True, shown, [], method="abstained")
    inputs = "; ".join(f"FY{f.year} {f.item.name} {f.shown()} [{f.source.n}]" for f in got)
    text = f"FY{measure.year} {measure.name} = {formula.text} = {shown_result(measure, value)} ({inputs})."
    cited = sorted({f.source.n for f in got})
    return Answer(text, False, shown, cited, evidence=[_evidence(f) for f in got], method="computed")


def _evidence(figure: Figure) -> str:
    src = figure.source
    line_start = src.text.rfind("\n", 0, figure.start) + 1
    line_end = src.text.find("\n", figure.end)
    row = src.text[line_start:line_end if line_end != -1 else len(src.text)]
    place = f"{src.source}, page {src.page}" if src.page is not None else src.source
    return f'{place}: "{row}"'


def default_routes(settings: Settings) -> list[Route]:
    """The routes the chain tries before the reader, as the settings ask."""
    return [ReportRoute()] if settings.report_answers else []
