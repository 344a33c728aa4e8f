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
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import NamedTuple

from rag.answer.documents import DocumentStore
from rag.answer.figures import Figure, Item, find_figure, items_in, scale_in, years_in
from rag.answer.kinds import question_kind
from rag.answer.lookup import CELL_SEP
from rag.answer.measures import Formula, Measure, measure_of, shown_change, shown_result
from rag.answer.routes import RouteContext, named_documents
from rag.answer.steps import to_sources
from rag.types import Answer, Chunk, Source, heading_of

SEARCH_K = 20  # passages searched for one missing figure (then kept to the asked reports)


# A statement page's heading: its tables hold the figures a question asks for.
_STATEMENT = re.compile(r"consolidated\s+(?:statements?|balance\s+sheets?)|statements?\s+of\s+"
                        r"(?:income|operations|earnings|cash\s+flows?|financial\s+position)|"
                        r"balance\s+sheets?", re.IGNORECASE)


def _is_statement(s: Source) -> bool:
    return _STATEMENT.search(s.heading or s.text[:200]) is not None


def _unique(sources: Sequence[Source]) -> list[Source]:
    """``sources`` without repeats (a passage both shown and in the report), first kept."""
    seen: set[str] = set()
    out: list[Source] = []
    for s in sources:
        if s.chunk_id not in seen:
            seen.add(s.chunk_id)
            out.append(s)
    return out


@dataclass
class Scope:
    """The reports one question may be answered from, with their chunks read once."""

    documents: list[str]
    _chunks: dict[str, list[Chunk]] = field(default_factory=dict)

    def chunks(self, store: DocumentStore, source: str) -> list[Chunk]:
        if source not in self._chunks:
            self._chunks[source] = store.document_chunks(source)
        return self._chunks[source]


class ReportRoute:
    """Answers ``figure`` and ``computed`` questions (:mod:`rag.answer.kinds`); None else."""

    def __init__(self, store: DocumentStore | None = None, search_k: int = SEARCH_K) -> None:
        self.store = store
        self.search_k = search_k

    def __call__(self, ctx: RouteContext) -> Answer | None:
        kind = question_kind(ctx.question)
        if kind == "computed":
            measure = measure_of(ctx.question)
            return None if measure is None else self._computed(ctx, measure)
        if kind == "figure":
            return self._figure(ctx)
        return None

    def documents(self, ctx: RouteContext) -> Scope:
        """Where the figures may come from: the reports the question names by file name
        ("3M" for 3M_2018_10K.pdf), else the one of the best retrieved passage. One
        company's figure must never be read from another's statements."""
        if self.store is not None:
            named = named_documents(ctx.question, [f.source for f in self.store.files()],
                                    years_in(ctx.question))
            if named:
                return Scope(named)
        return Scope([ctx.sources[0].source] if ctx.sources else [])

    def _find(self, ctx: RouteContext, shown: list[Source], item: Item, year: int,
              scope: Scope) -> Figure | None:
        """The figure from the reports of ``scope``: their statement pages first (earliest
        first: primary statements come before notes and condensed schedules), then the
        passages shown, found by a search for it, or read from the whole report. A new
        passage joins ``shown``, numbered after it."""
        docs = scope.documents
        page_above = None if self.store is None else (lambda src: self._page_above(src, scope))
        by_id = {s.chunk_id: s for s in shown}
        mine = [s for s in shown if s.source in docs]
        # The report's own name in the query ("3M 2018 10K"): its pages rank first.
        owner = PurePosixPath(docs[0]).stem.replace("_", " ") if docs else ""
        found = [s for s in to_sources(ctx.search(f"{owner} {item.name} {year}", self.search_k))
                 if s.chunk_id not in by_id and s.source in docs]
        whole = self._whole(scope)
        pool = mine + found + whole
        statements = sorted((s for s in pool if _is_statement(s)),
                            key=lambda s: (docs.index(s.source), s.page or 0))
        rest = sorted((s for s in pool if not _is_statement(s)), key=lambda s: docs.index(s.source))
        figure = find_figure(item, year, _unique(statements + rest), page_above)
        if figure is None:
            return None
        if figure.source.chunk_id in by_id:
            figure = dataclasses.replace(figure, source=by_id[figure.source.chunk_id])
        else:
            src = dataclasses.replace(figure.source, n=len(shown) + 1)
            shown.append(src)
            figure = dataclasses.replace(figure, source=src)
        if (not figure.scale or not figure.currency) and self.store is not None:
            above = self._page_above(figure.source, scope)
            figure = dataclasses.replace(figure, scale=figure.scale or scale_in(above),
                                         currency=figure.currency or ("$" if "$" in above else ""))
        return figure

    def _whole(self, scope: Scope) -> list[Source]:
        """The reports' passages that hold a table, read from the store (retrieval ranks a
        page by its words, and a statement is mostly numbers)."""
        if self.store is None:
            return []
        return [Source(0, c.source, c.page, 0.0, c.text, c.id, c.start, c.end, heading_of(c.header))
                for doc in scope.documents for c in scope.chunks(self.store, doc) if CELL_SEP in c.text]

    def _page_above(self, src: Source, scope: Scope) -> str:
        """The page's text above the passage: where its table's scale ("(in millions)")
        and currency are, when the passage is a chunk cut from the page's middle."""
        assert self.store is not None
        return "\n".join(c.text for c in scope.chunks(self.store, src.source)
                         if c.page == src.page and c.start < src.start)

    def _figure(self, ctx: RouteContext) -> Answer | None:
        item, year = items_in(ctx.question)[0], max(years_in(ctx.question))
        shown = list(ctx.sources)
        figure = self._find(ctx, shown, item, year, self.documents(ctx))
        if figure is None or not figure.checked():
            return None
        n = figure.source.n
        value = figure.shown()
        asked = in_scale(ctx.question, figure)
        value = f"{asked} ({value} [{n}])" if asked else f"{value} [{n}]"
        text = f"The FY{year} {item.name} was {value} ({figure.label}, {figure.heading})."
        return Answer(text, False, shown, [n], evidence=[_evidence(figure)], method="figure")

    def _computed(self, ctx: RouteContext, measure: Measure) -> Answer:
        shown = list(ctx.sources)
        results = self.results(ctx, shown, measure)
        return results if isinstance(results, Answer) else computed_answer(measure, results, shown)

    def results(self, ctx: RouteContext, shown: list[Source], measure: Measure) -> list[Result] | Answer:
        """The measure in each of its periods, or the refusal naming what is missing."""
        results: list[Result] = []
        scope = self.documents(ctx)
        for year in measure.periods:
            got = self.inputs(ctx, shown, measure, year, scope)
            if isinstance(got, str):
                why = (f"The documents do not give the {got}, needed for the FY{year} "
                       f"{measure.name} ({measure.formulas[0].text}).")
                return Answer(why, True, shown, [], method="abstained")
            formula, figures = got
            try:
                value = formula.compute([f.amount for f in figures])
            except ZeroDivisionError:
                return Answer(f"The FY{year} {measure.name} cannot be computed: a divisor is zero.",
                              True, shown, [], method="abstained")
            results.append(Result(year, value, formula, figures))
        return results

    def inputs(self, ctx: RouteContext, shown: list[Source], measure: Measure, year: int,
               scope: Scope) -> tuple[Formula, list[Figure]] | str:
        """The first formula whose every input the documents give for ``year``, with them;
        else the first missing input's name ("FY2023 gross profit")."""
        first_missing = ""
        for formula in measure.formulas:
            got: list[Figure] = []
            for need in formula.inputs:
                figure = self._find(ctx, shown, need.item, year - need.offset, scope)
                if figure is None or not figure.checked():
                    first_missing = first_missing or f"FY{year - need.offset} {need.item.name}"
                    break
                got.append(figure)
            else:
                return formula, got
        return first_missing


class Result(NamedTuple):
    """A measure in one period, with the formula used and its cited inputs."""

    year: int
    value: float
    formula: Formula
    figures: list[Figure]


def with_unit(measure: Measure, results: Sequence[Result]) -> Measure:
    """The measure with its inputs' scale ("million"), for a measure that is an amount."""
    unit = next((f.scale for r in results for f in r.figures if f.scale), "")
    return dataclasses.replace(measure, unit=unit)


def workings(measure: Measure, results: Sequence[Result]) -> str:
    """How each period's value was computed: formula = result (each input, cited)."""
    parts = []
    for r in results:
        inputs = "; ".join(f"FY{f.year} {f.item.name} {f.shown()} [{f.source.n}]" for f in r.figures)
        parts.append(f"FY{r.year}: {r.formula.text} = {shown_result(measure, r.value)} ({inputs})")
    return ". ".join(parts) + "."


def headline(measure: Measure, results: Sequence[Result]) -> str:
    """What was asked, computed: one period's value, a mean over several, or a change."""
    values = [r.value for r in results]
    if measure.combine == "average":
        return (f"The FY{results[0].year}-FY{results[-1].year} average {measure.name} is "
                f"{shown_result(measure, sum(values) / len(values))}, the mean of {len(values)} years")
    if measure.combine == "change":
        return (f"The {measure.name} went from {shown_result(measure, values[0])} in FY{results[0].year} "
                f"to {shown_result(measure, values[1])} in FY{results[1].year} "
                f"({shown_change(measure, values[0], values[1])})")
    return f"The FY{results[0].year} {measure.name} is {shown_result(measure, values[0])}"


def computed_answer(measure: Measure, results: Sequence[Result], shown: list[Source], *,
                    head: str = "", method: str = "computed") -> Answer:
    """The result first (what the user asked), then how: formula and each input cited."""
    measure = with_unit(measure, results)
    head = head or headline(measure, results)
    figures = [f for r in results for f in r.figures]
    cited = sorted({f.source.n for f in figures})
    evidence = list(dict.fromkeys(_evidence(f) for f in figures))
    return Answer(f"{head}. {workings(measure, results)}", False, shown, cited, evidence=evidence,
                  method=method)


_ASKED_SCALE = re.compile(
    r"\bin\s+(?:units\s+of\s+)?(?:usd\s+|us\$\s*|\$\s*)?(thousands|millions|billions)\b", re.IGNORECASE)
_FACTORS = {"thousand": 1e3, "million": 1e6, "billion": 1e9}


def in_scale(question: str, figure: Figure) -> str:
    """The figure in the scale the question asks for ("Answer in USD billions": "$8.74
    billion" for a table's 8,738 in millions), or "" when it asks for none or the same."""
    m = _ASKED_SCALE.search(question)
    if m is None or not figure.scale:
        return ""
    asked = m.group(1).lower().rstrip("s")
    if asked == figure.scale:
        return ""
    value = figure.amount * _FACTORS[figure.scale] / _FACTORS[asked]
    sign = "-" if value < 0 else ""
    return f"{sign}{figure.currency}{abs(value):,.2f} {asked}"


def _evidence(figure: Figure) -> str:
    src = figure.source
    line_start = src.text.rfind("\n", 0, figure.start) + 1
    line_end = src.text.find("\n", figure.end)
    row = src.text[line_start:line_end if line_end != -1 else len(src.text)]
    place = f"{src.source}, page {src.page}" if src.page is not None else src.source
    return f'{place}: "{row}"'
