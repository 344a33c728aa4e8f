"""Metrics on hand-computed cases, the QA file format, and the SQuAD scorer vs reference data."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from langchain_core.documents import Document

from rag.evaluation.metrics import (
    QAFormatError,
    QAItem,
    Relevant,
    contains_answer,
    exact_match,
    hit_at,
    load_qa,
    ndcg,
    normalize_answer,
    reciprocal_rank,
    relevant_ranks,
    squad_scores,
    token_f1,
)
from rag.evaluation.run import BatchedQueryEncoder, run_eval
from rag.testing import FakeEncoder

REPO = Path(__file__).resolve().parent.parent
SQUAD_REF = Path(__file__).parent / "data" / "squad_ref"


# --- ranks: each relevant item counts once, at its best chunk ------------------------------


def test_ranks_count_each_document_once_at_its_best_chunk() -> None:
    retrieved = [("b.md", None), ("a.md", None), ("a.md", None), ("c.md", None)]
    assert relevant_ranks(retrieved, [Relevant("a.md")]) == [2]
    assert relevant_ranks(retrieved, [Relevant("a.md"), Relevant("c.md")]) == [2, 4]
    assert relevant_ranks(retrieved, [Relevant("z.md")]) == []


def test_page_must_match_when_given() -> None:
    retrieved = [("r.pdf", 1), ("r.pdf", 3), ("s.pdf", 3)]
    assert relevant_ranks(retrieved, [Relevant("r.pdf", 3)]) == [2]
    assert relevant_ranks(retrieved, [Relevant("r.pdf")]) == [1]  # no page: any page
    assert relevant_ranks(retrieved, [Relevant("r.pdf", 2)]) == []


def test_one_chunk_never_counts_for_two_items() -> None:
    # Both items match the chunk at rank 1; only one may take it, the other waits for rank 3.
    retrieved = [("r.pdf", 3), ("x.md", None), ("r.pdf", 5)]
    ranks = relevant_ranks(retrieved, [Relevant("r.pdf", 3), Relevant("r.pdf")])
    assert ranks == [1, 3]
    assert ndcg(ranks, 2) <= 1.0


# --- hit@k, MRR, nDCG on hand-computed values ---------------------------------------------------


def test_hit_at_k() -> None:
    assert hit_at([3], 1) == 0.0
    assert hit_at([3], 3) == 1.0
    assert hit_at([3], 5) == 1.0
    assert hit_at([], 10) == 0.0
    assert hit_at([7, 2], 2) == 1.0


def test_reciprocal_rank() -> None:
    assert reciprocal_rank([1]) == 1.0
    assert reciprocal_rank([4]) == 0.25
    assert reciprocal_rank([4, 2]) == 0.5
    assert reciprocal_rank([11]) == 0.0  # past the @10 cut-off
    assert reciprocal_rank([]) == 0.0


def test_ndcg_single_relevant() -> None:
    assert ndcg([1], 1) == 1.0
    assert ndcg([2], 1) == pytest.approx(1 / math.log2(3))  # 0.6309
    assert ndcg([3], 1) == pytest.approx(0.5)
    assert ndcg([], 1) == 0.0
    assert ndcg([11], 1) == 0.0


def test_ndcg_two_relevant_found_at_1_and_3() -> None:
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) = 1.6309
    assert ndcg([1, 3], 2) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    # one of two relevant found, at rank 1: 1 / 1.6309
    assert ndcg([1], 2) == pytest.approx(0.6131, abs=1e-4)


def test_ndcg_idcg_capped_at_cutoff() -> None:
    # 12 relevant items: IDCG sums 10 positions, so the first 10 found at 1..10 give 1.0.
    assert ndcg(list(range(1, 11)), 12) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one relevant"):
        ndcg([1], 0)


# --- SQuAD EM / F1 --------------------------------------------------------------------------


def test_normalize_answer() -> None:
    assert normalize_answer("  The  Eiffel-Tower! ") == "eiffeltower"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("Theory") == "theory"  # 'the' only as a whole word


def test_answer_checks_drop_punctuation_outside_ascii_but_the_metric_does_not() -> None:
    from rag.answer.verify import supported
    from rag.text import normalize_text

    passage = "Is there a difference between this text and some nonsense like “Huardest gefburn”?"
    assert normalize_text(passage).endswith("nonsense like huardest gefburn")
    assert supported("Huardest gefburn", passage)  # was refused: '“huardest' is not 'huardest'
    assert normalize_text("Kennedy’s term, 1961–1963") == "kennedys term 1961 1963"
    assert normalize_answer("“Huardest”") == "“huardest”"  # SQuAD's script, unchanged


def test_exact_match_and_f1_hand_computed() -> None:
    assert exact_match("the Denver Broncos", "Denver Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0
    # pred [denver] vs gold [denver, broncos]: P=1, R=1/2 -> F1 = 2/3
    assert token_f1("Denver", "Denver Broncos") == pytest.approx(2 / 3)
    # pred [in, 1973, oil, crisis] vs gold [1973]: P=1/4, R=1 -> 0.4
    assert token_f1("in 1973, the oil crisis", "1973") == pytest.approx(0.4)
    assert token_f1("nothing", "1973") == 0.0
    assert token_f1("", "1973") == 0.0


def test_squad_scores_take_max_over_gold_answers() -> None:
    em, f1 = squad_scores([("Broncos", ["Denver Broncos", "Broncos"]), ("x", ["y"])])
    assert em == 0.5
    assert f1 == 0.5
    with pytest.raises(ValueError):
        squad_scores([])


def test_contains_answer_on_word_boundaries() -> None:
    assert contains_answer("It was in 1973, during the crisis.", "1973") == 1.0
    assert contains_answer("It was in 19734.", "1973") == 0.0
    assert contains_answer("anything", "") == 0.0


def _ref_rows() -> list[dict[str, object]]:
    lines = (SQUAD_REF / "subset.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("system", ["bert_ensemble", "logistic_regression"])
def test_scorer_matches_reference_predictions(system: str) -> None:
    # expected.json was written by scripts/build_corpora.py --check-scorer, whose same scorer
    # reproduced the official full-dev figures (BERT ensemble EM 86.21 / F1 92.20, logistic
    # regression 40.14 / 50.98; published 86.2 / 92.2 and 40.1 / 51.0).
    rows = _ref_rows()
    expected = json.loads((SQUAD_REF / "expected.json").read_text(encoding="utf-8"))
    assert len(rows) == expected["n"] == 500
    em, f1 = squad_scores([(str(r[system]), list(r["answers"])) for r in rows])  # type: ignore[call-overload]
    assert em == pytest.approx(expected[system]["em"], abs=1e-6)
    assert f1 == pytest.approx(expected[system]["f1"], abs=1e-6)
    # and the subset is a fair sample of full dev: within a few points of the full figures
    full = {"bert_ensemble": (0.862, 0.922), "logistic_regression": (0.401, 0.510)}[system]
    assert abs(em - full[0]) < 0.05 and abs(f1 - full[1]) < 0.05


# --- QA files ------------------------------------------------------------------------------


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = '{"id": "q1", "question": "Who?", "answers": ["x"], "relevant": [{"source": "a.pdf", "page": 2}]}'


def test_load_qa_reads_items_and_skips_blank_lines(tmp_path: Path) -> None:
    other = '{"id": "q2", "question": " Why? ", "answers": [], "relevant": [{"source": "b.md"}]}'
    items = load_qa(_write(tmp_path, GOOD, "", other))
    assert items == [
        QAItem("q1", "Who?", ["x"], [Relevant("a.pdf", 2)]),
        QAItem("q2", "Why?", [], [Relevant("b.md", None)]),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"id": "q", "question": "Q?", "answers": []}', "missing key(s) ['relevant']"),
        ('{"id": "q", "question": "Q?", "answers": [], "relevant": [], "x": 1}', "unknown key"),
        ('{"id": "", "question": "Q?", "answers": [], "relevant": []}', "'id' must be"),
        ('{"id": "q", "question": " ", "answers": [], "relevant": []}', "'question' must be"),
        ('{"id": "q", "question": "Q?", "answers": "x", "relevant": []}', "'answers' must be"),
        ('{"id": "q", "question": "Q?", "answers": [], "relevant": [{"page": 1}]}', "'source'"),
        ('{"id": "q", "question": "Q?", "answers": [], "relevant": [{"source": "a", "page": 0}]}',
         "1-based"),
        ('{"id": "q", "question": "Q?", "answers": [], "relevant": [{"source": "a", "page": true}]}',
         "1-based"),
    ],
)
def test_load_qa_errors_name_file_line_and_reason(tmp_path: Path, line: str, reason: str) -> None:
    path = _write(tmp_path, GOOD, line)
    with pytest.raises(QAFormatError) as err:
        load_qa(path)
    assert str(err.value).startswith(f"{path}:2: ")
    assert reason in str(err.value)


def test_load_qa_rejects_duplicate_ids_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(QAFormatError, match=r"qa.jsonl:2: duplicate id 'q1' \(first on line 1\)"):
        load_qa(_write(tmp_path, GOOD, GOOD))
    with pytest.raises(QAFormatError, match="no questions"):
        load_qa(_write(tmp_path, ""))
    with pytest.raises(QAFormatError, match="not found"):
        load_qa(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    "qa_file",
    ["corpora/squad/qa.jsonl", "corpora/squad/unanswerable.jsonl",
     "corpora/squad_paragraphs/qa.jsonl", "corpora/sample_qa.jsonl"],
)
def test_committed_qa_files_are_valid_and_point_at_real_documents(qa_file: str) -> None:
    items = load_qa(REPO / qa_file)
    root = {"corpora/sample_qa.jsonl": REPO / "corpora" / "sample"}.get(
        qa_file, (REPO / qa_file).parent / "docs"
    )
    for item in items:
        for rel in item.relevant:
            assert (root / rel.source).is_file(), f"{qa_file} {item.id}: {rel.source} missing"


def test_unanswerable_questions_come_from_articles_outside_the_corpus() -> None:
    answerable = {i.id for i in load_qa(REPO / "corpora/squad/qa.jsonl")}
    unanswerable = load_qa(REPO / "corpora/squad/unanswerable.jsonl")
    assert len(unanswerable) >= 100
    assert all(not i.relevant for i in unanswerable)
    assert not answerable & {i.id for i in unanswerable}


# --- run_eval end to end with a scripted retriever ----------------------------------------


def _doc(source: str, page: int | None = None) -> Document:
    return Document(page_content="t", metadata={"source": source, "page": page})


def test_run_eval_aggregates_hand_computed_metrics() -> None:
    items = [
        QAItem("1", "q1", ["Paris"], [Relevant("a.md")]),
        QAItem("2", "q2", ["1973"], [Relevant("b.pdf", 2)]),
        QAItem("3", "q3", [], []),  # no relevant items: not judged for retrieval
    ]
    lists = {
        "q1": [_doc("a.md"), _doc("a.md"), _doc("c.md")],  # rank 1
        "q2": [_doc("b.pdf", 1), _doc("c.md"), _doc("b.pdf", 2)],  # rank 3
        "q3": [_doc("c.md")],
    }
    answers = {"q1": ("It is Paris. [1]", False), "q2": ("1973 [2]", False), "q3": ("?", True)}
    report = run_eval(items, lambda q: lists[q], k=10, answer=lambda q: answers[q])
    out = report.to_json()
    assert out["n"] == 2
    assert out["hit@1"] == 0.5
    assert out["hit@5"] == 1.0
    assert out["mrr@10"] == pytest.approx((1 + 1 / 3) / 2)
    assert out["ndcg@10"] == pytest.approx((1 + 0.5) / 2)
    assert out["em"] == 0.5  # "It is Paris." != "Paris"; "1973" == "1973"
    assert out["contains"] == 1.0
    assert out["f1"] == pytest.approx((2 * (1 / 3) * 1 / (1 / 3 + 1) + 1) / 2)  # markers not scored
    assert out["abstained"] == 0.0 and out["confidently_wrong"] == 0.0


def test_refusals_and_confidently_wrong_answers_are_counted_apart() -> None:
    items = [QAItem(str(i), f"q{i}", ["Paris"], [Relevant("a.md")]) for i in range(4)]
    replies = {"q0": ("Paris [1]", False), "q1": ("Lyon [1]", False),
               "q2": ("The documents do not say.", True), "q3": ("Rome [2]", False)}
    out = run_eval(items, lambda q: [_doc("a.md")], answer=lambda q: replies[q]).to_json()
    assert out["contains"] == 0.25
    assert out["abstained"] == 0.25
    assert out["confidently_wrong"] == 0.5


def test_run_eval_judges_only_top_k() -> None:
    items = [QAItem("1", "q", [], [Relevant("a.md")])]
    docs = [_doc("x.md")] * 3 + [_doc("a.md")]
    assert run_eval(items, lambda q: docs, k=4).to_json()["hit@5"] == 1.0
    assert run_eval(items, lambda q: docs, k=3).to_json()["hit@5"] == 0.0
    with pytest.raises(ValueError, match="k must be"):
        run_eval(items, lambda q: docs, k=0)


def test_batched_query_encoder_gives_the_same_vectors() -> None:
    enc = FakeEncoder()
    batched = BatchedQueryEncoder(enc, ["alpha beta", "gamma"])
    calls = enc.calls
    assert (batched.embed(["gamma"]) == enc.embed(["gamma"])).all()
    assert enc.calls == calls + 1  # the direct call above; the batched one was a lookup
    assert (batched.embed(["unseen words"]) == enc.embed(["unseen words"])).all()
    assert batched.embed([]).shape == (0, enc.dimension)


def test_the_shipped_reader_never_trained_on_an_article_an_evaluation_asks_about() -> None:
    # The weights say which articles trained them (scripts/train_reader.py writes it); the
    # committed paragraph corpus maps every SQuAD question id to its article.
    from safetensors import safe_open

    from rag.models.span_reader import DEFAULT_WEIGHTS

    def slug(title: str) -> str:  # "Fresno,_California" is folder Fresno_California
        return re.sub(r"[^A-Za-z0-9]", "", title)

    with safe_open(str(DEFAULT_WEIGHTS), framework="pt") as f:
        trained = {slug(t) for t in f.metadata()["train_articles"].split(",")}
    assert len(trained) >= 14
    article = {item.id: slug(item.relevant[0].source.split("/")[0])
               for item in load_qa(REPO / "corpora/squad_paragraphs/qa.jsonl")}
    asked: set[str] = set()
    for qa_file in ("corpora/squad/qa.jsonl", "corpora/squad/unanswerable.jsonl",
                    "corpora/sample_qa.jsonl"):
        asked |= {article[i.id] for i in load_qa(REPO / qa_file) if i.id in article}
    assert len(asked) >= 20  # the files really were mapped (16 + 5 articles, and the sample's)
    assert not trained & asked, trained & asked
