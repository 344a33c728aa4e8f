"""Numeric answers scored as numbers (rag.evaluation.numbers), on FinanceBench-style golds."""

from __future__ import annotations

import pytest

from rag.evaluation.numbers import figures, number_right, numeric_gold, states_a_figure


@pytest.mark.parametrize(("gold", "value"), [
    ("$1577.00", (1577.0, False)),
    ("24.26", (24.26, False)),
    ("1.9%", (1.9, True)),
    ("(3.2)", (-3.2, False)),
    ("$8.70", (8.7, False)),
    ("$2,018 million", (2.018e9, False)),
])
def test_numeric_golds_are_read_as_figures(gold: str, value: tuple[float, bool]) -> None:
    got = numeric_gold(gold)
    assert got is not None and got[1] == value[1] and got[0] == pytest.approx(value[0])


@pytest.mark.parametrize("gold", [
    "No the operating margins of Adobe have recently declined from 36.8% in FY 2021 to 34.6%.",
    "Amcor is a global leader in packaging production for various use cases.",
    "Effective tax rate in FY2022 was 0.62%, compared to -14.76% in FY2021.",
])
def test_text_golds_are_not_numeric(gold: str) -> None:
    assert numeric_gold(gold) is None
    assert number_right("anything 1.0", [gold]) is None


@pytest.mark.parametrize(("reply", "gold", "right"), [
    ("3M's FY2018 capital expenditure was $1,577 million", "$1577.00", True),
    ("$1.577 billion", "$1577.00", True),
    ("$8.74 billion ($8,738 million)", "$8.70", True),  # the gold in billions, unit unsaid
    ("$9.00 billion", "$8.70", False),
    ("1,590", "$1577.00", True),  # 0.8% off: inside the 1% tolerance
    ("1,600", "$1577.00", False),  # 1.5% off
    ("The ratio is 24.3 (revenue 6,489 / average PP&E 267.5)", "24.26", True),
    ("capex was 1.9% of revenue", "1.9%", True),
    ("capex was 0.019 of revenue", "1.9%", True),
    ("The change was (3.2) points", "(3.2)", True),
    ("The change was 3.2 points", "(3.2)", False),
    ("The documents do not contain an answer to this question.", "$8.70", False),
])
def test_replies_are_scored_by_their_figures(reply: str, gold: str, right: bool) -> None:
    assert number_right(reply, [gold]) is right


def test_a_refusal_states_no_figure_and_a_wrong_figure_does() -> None:
    assert not states_a_figure("The documents do not contain an answer to this question.")
    assert states_a_figure("It was $12 million.")
    assert figures("(1,234) and -5 and 7 k") == [(-1234.0, False), (-5.0, False), (7000.0, False)]


def test_run_eval_scores_numeric_golds_as_numbers_and_lists_each_question() -> None:
    from langchain_core.documents import Document

    from rag.evaluation.metrics import QAItem, Relevant
    from rag.evaluation.run import run_eval
    from rag.types import Answer, Source

    items = [
        QAItem("a", "FY2018 capex?", ["$1577.00"], [Relevant("3M.pdf", 60)]),
        QAItem("b", "FY2018 net PP&E?", ["$8.70"], [Relevant("3M.pdf", 58)]),
        QAItem("c", "FY2019 ratio?", ["24.26"], [Relevant("3M.pdf", 1)]),
        QAItem("d", "Who leads?", ["Mike Roman"], [Relevant("3M.pdf", 2)]),
    ]
    replies = {
        "FY2018 capex?": ("3M's FY2018 capital expenditure was $1,577 million [1]", False),
        "FY2018 net PP&E?": ("The documents do not contain an answer to this question.", True),
        "FY2019 ratio?": ("The ratio was 12.10 [1]", False),
    }

    def answer(q: str) -> tuple[str, bool] | Answer:
        if q == "Who leads?":
            src = Source(1, "3M.pdf", 2, 0.9, "Mike Roman leads 3M.")
            return Answer("Mike Roman [1]", False, [src], [1])
        return replies[q]

    def retrieve(q: str) -> list[Document]:
        return [Document("x", metadata={"source": "3M.pdf", "page": 60})]

    report = run_eval(items, retrieve, k=5, answer=answer)
    out = report.to_json()
    assert out["numeric_n"] == 3
    assert out["numeric_right"] == pytest.approx(1 / 3)
    assert out["numeric_abstained"] == pytest.approx(1 / 3)
    assert out["numeric_wrong"] == pytest.approx(1 / 3)
    details = {d["id"]: d for d in report.details()}
    assert [details[i]["verdict"] for i in "abcd"] == ["right", "refused", "wrong", "right"]
    assert details["d"]["sources"] == [{"n": 1, "source": "3M.pdf", "page": 2, "cited": True}]
    assert details["a"]["numeric"] and not details["d"]["numeric"]
    assert all(isinstance(d["seconds"], float) for d in details.values())
