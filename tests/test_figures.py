"""Figures read from statement tables (rag.answer.figures) and the report route end to end,
on a generated annual report PDF ingested for real (tests/report_pdf.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_pdf import BALANCE, INCOME, report_pdf

from ingest.pipeline import ingest_folder
from rag.answer.build import build_chain
from rag.answer.chain import RagChain
from rag.answer.figures import BY_NAME, find_figure, items_in, parse_number, years_in
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator
from rag.types import Source

ROWS = ("Acme Corp\nConsolidated Statements of Cash Flows\n(in millions)\n"
        "Net income | 2018: 5,349 | 2017: 4,858\n"
        "Purchases of property, plant and equipment (PP&E) | 2018: (1,577) | 2017: (1,373)\n"
        "Net sales | % change 2018 vs 2017: 3.5 | 2018: $ 32,765 | 2017: $ 31,657\n")


def src(text: str = ROWS, n: int = 1) -> Source:
    return Source(n, "acme.pdf", 7, 0.5, text, chunk_id=f"c{n}")


@pytest.mark.parametrize(("question", "names"), [
    ("What is the FY2018 capital expenditure amount (in USD millions) for 3M?", ["capital expenditure"]),
    ("What was the cost of sales in FY2023?", ["cost of sales"]),
    ("How much were purchases of property, plant and equipment in 2019?", ["capital expenditure"]),
    ("What is FY2022 net PP&E?", ["net PP&E"]),
    ("Total revenue and net income for fiscal 2021", ["revenue", "net income"]),
    ("What is the weather in Vienna?", []),
])
def test_items_a_question_names(question: str, names: list[str]) -> None:
    assert [i.name for i in items_in(question)] == names


def test_years_in_the_forms_people_write() -> None:
    assert years_in("FY2018 vs fiscal year 2017") == [2018, 2017]
    assert years_in("in FY19, compared with 2018") == [2019, 2018]
    assert years_in("page 12 of 300") == []


@pytest.mark.parametrize(("cell", "value"), [
    ("$ 1,577", 1577.0), ("(1,577)", -1577.0), ("12.5", 12.5), ("-3", -3.0), ("—", None), ("n/a", None),
])
def test_parse_number(cell: str, value: float | None) -> None:
    assert parse_number(cell) == value


def test_capex_is_read_from_its_row_and_year_column_with_the_table_unit() -> None:
    fig = find_figure(BY_NAME["capital expenditure"], 2018, [src()])
    assert fig is not None and fig.checked()
    label = "Purchases of property, plant and equipment (PP&E)"
    assert (fig.value, fig.amount, fig.scale, fig.label) == (-1577.0, 1577.0, "million", label)
    assert fig.shown() == "$1,577 million"


def test_a_change_column_is_not_the_period() -> None:
    fig = find_figure(BY_NAME["revenue"], 2018, [src()])
    assert fig is not None and fig.text == "$ 32,765"


def test_no_figure_for_a_year_the_table_lacks_or_a_row_it_lacks() -> None:
    assert find_figure(BY_NAME["capital expenditure"], 2016, [src()]) is None
    assert find_figure(BY_NAME["inventories"], 2018, [src()]) is None


def test_the_first_ranked_source_wins() -> None:
    other = ROWS.replace("(1,577)", "(9,999)")
    fig = find_figure(BY_NAME["capital expenditure"], 2018, [src(other, 1), src(ROWS, 2)])
    assert fig is not None and fig.source.n == 1 and fig.amount == 9999.0


# --- end to end on a real PDF --------------------------------------------------------------


def _chain(settings: Settings, tmp_path: Path, **tables: object) -> RagChain:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    report_pdf(corpus / "acme.pdf", **tables)  # type: ignore[arg-type]
    enc = FakeEncoder()
    ingest_folder(corpus, tmp_path / "idx", settings, encoder=enc)
    s = settings.model_copy(update={"abstain_threshold": 0.0, "k": 2})
    return build_chain(s, tmp_path / "idx", encoder=enc, generator=FakeGenerator(script="no idea [1]"))


def test_revenue_is_read_from_the_income_statement_page(settings: Settings, tmp_path: Path) -> None:
    answer = _chain(settings, tmp_path).invoke("What was the FY2023 revenue (in USD millions)?")
    assert answer.method == "figure" and not answer.abstained
    assert "$12,400 million" in answer.text
    (cited,) = [s for s in answer.sources if s.n in answer.cited]
    assert cited.page == 1 and "Net sales | 2023: $ 12,400" in cited.text
    assert answer.evidence == ['acme.pdf, page 1: "Net sales | 2023: $ 12,400 | 2022: $ 11,000"']


def test_gross_margin_is_computed_with_formula_and_cited_inputs(settings: Settings, tmp_path: Path) -> None:
    question = "What was the gross margin in FY2023? Round to two decimal places."
    answer = _chain(settings, tmp_path).invoke(question)
    assert answer.method == "computed"
    assert "gross profit / revenue" in answer.text and "= 40.00%" in answer.text
    assert "$4,960 million [" in answer.text and "$12,400 million [" in answer.text
    assert all(s.page == 1 for s in answer.sources if s.n in answer.cited)


def test_current_ratio_reads_the_balance_sheet(settings: Settings, tmp_path: Path) -> None:
    answer = _chain(settings, tmp_path).invoke("What is the FY2023 current ratio?")
    assert answer.method == "computed" and "= 2.00" in answer.text  # 5,200 / 2,600
    assert all(s.page == 2 for s in answer.sources if s.n in answer.cited)


def test_a_missing_input_is_a_refusal_naming_it(settings: Settings, tmp_path: Path) -> None:
    income = [r for r in INCOME if r[0] not in ("Gross profit", "Cost of sales")]
    answer = _chain(settings, tmp_path, income=income, balance=BALANCE).invoke(
        "What was the gross margin in FY2023?")
    assert answer.abstained and answer.method == "abstained"
    assert "FY2023 gross profit" in answer.text and "%" not in answer.text


def test_other_questions_go_to_the_decoder(settings: Settings, tmp_path: Path) -> None:
    answer = _chain(settings, tmp_path).invoke("Who is the chief executive of Acme?")
    assert answer.method != "figure" and answer.method != "computed"


def test_a_figure_is_given_in_the_scale_asked(settings: Settings, tmp_path: Path) -> None:
    answer = _chain(settings, tmp_path).invoke("What was the FY2023 revenue? Answer in USD billions.")
    assert answer.method == "figure" and "$12.40 billion ($12,400 million [" in answer.text


def test_an_average_over_years_shows_each_year(settings: Settings, tmp_path: Path) -> None:
    question = ("What is the FY2022 - FY2023 2 year average net profit margin (as a %)? "
                "Round to two decimal places.")
    answer = _chain(settings, tmp_path).invoke(question)
    assert answer.method == "computed", answer.text
    # 1,240 / 12,400 = 10.00% and 1,001 / 11,000 = 9.10%: the mean 9.55%.
    assert answer.text.startswith("The FY2022-FY2023 average net margin is 9.55%"), answer.text
    assert "FY2022: net income / revenue = 9.10%" in answer.text and "= 10.00%" in answer.text


def test_a_change_between_two_years_in_percentage_points(settings: Settings, tmp_path: Path) -> None:
    answer = _chain(settings, tmp_path).invoke("How did the operating margin change from FY2022 to FY2023?")
    # 1,540 / 11,000 = 14.0% -> 1,860 / 12,400 = 15.0%
    assert answer.text.startswith("The operating margin went from 14.0% in FY2022 to 15.0% in FY2023 "
                                  "(+1.0 percentage points)"), answer.text


def test_yes_no_on_a_trend_is_decided_by_the_figures(settings: Settings, tmp_path: Path) -> None:
    chain = _chain(settings, tmp_path)
    answer = chain.invoke("Does Acme have an improving gross margin profile as of FY2023?")
    assert answer.method == "judged" and not answer.abstained
    assert answer.text.startswith("Yes: the gross margin rose from 38.0% in FY2022 to 40.0% in FY2023")
    assert answer.cited and all(s.page == 1 for s in answer.sources if s.n in answer.cited)
    answer = chain.invoke("Has Acme's current ratio improved or declined between FY2022 and FY2023?")
    assert answer.text.startswith("Improved: the current ratio rose from 1.78 in FY2022 to 2.00"), answer.text
    answer = chain.invoke("Is Acme's net margin declining as of FY2023?")
    assert answer.text.startswith("No: the net margin rose"), answer.text


def test_yes_no_on_a_sign(settings: Settings, tmp_path: Path) -> None:
    question = "Does Acme have positive working capital based on FY2023 data?"
    answer = _chain(settings, tmp_path).invoke(question)
    assert answer.text.startswith("Yes: the FY2023 working capital was 2,600 million, positive"), answer.text


def test_a_yes_no_without_its_figures_goes_to_the_reader(settings: Settings, tmp_path: Path) -> None:
    answer = _chain(settings, tmp_path).invoke("Does Acme have an improving quick ratio as of FY2021?")
    assert answer.method not in ("judged", "computed")


# Questions written for these tests (not from any evaluation set), by the kind a reader of
# reports asks; the kind decides the answer path.
KINDS = [
    ("What was Siemens' FY2021 net income?", "figure"),
    ("How much did Nestle spend on capital expenditures in fiscal 2020 (in CHF millions)?", "figure"),
    ("What were total assets at the end of FY2019?", "figure"),
    ("What is the FY2022 operating margin of Unilever?", "computed"),
    ("Compute the quick ratio for FY2020. Round to two decimal places.", "computed"),
    ("What is the revenue growth from FY2020 to FY2021?", "computed"),
    ("What is Tesla's FY2021 days sales outstanding?", "computed"),
    ("What was the average effective tax rate over FY2019 - FY2021?", "computed"),
    ("Is Danone's gross margin improving as of FY2022?", "yesno"),
    ("Does the company have positive free cash flow in FY2021?", "yesno"),
    ("Summarize the risk factors of the report.", "summary"),
    ("List the segments the company reports.", "list"),
    ("Who is the chief financial officer?", "other"),
    ("What was the organic sales growth in FY2022, excluding currency effects?", "other"),
    ("What drove the change in operating income?", "other"),
]


@pytest.mark.parametrize(("question", "kind"), KINDS)
def test_question_kinds(question: str, kind: str) -> None:
    from rag.answer.kinds import question_kind

    assert question_kind(question) == kind
