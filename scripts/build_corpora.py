"""Build the evaluation corpora in corpora/ (and tests/data/squad_ref/) from ../shared/evaldata.

    python scripts/build_corpora.py [--shared /work/shared/evaldata] [--check-scorer]

Idempotent: every output is rewritten from the source data with fixed choices (article
lists, a seeded sample), so running it twice gives byte-identical files. The generated
files are committed, so the project never reads ../shared at run time.

Layout written (corpus roots are the ``docs/`` folders, so QA files are never ingested):

    corpora/sample/                 documents the app ships with (every file gets ingested)
    corpora/sample_qa.jsonl         page-level PDF questions + a few article questions
    corpora/squad/docs/*.md         one Markdown document per SQuAD article
    corpora/squad/qa.jsonl          one question per paragraph, relevant = the article
    corpora/squad/unanswerable.jsonl  SQuAD questions from articles NOT in the corpus
    corpora/squad_paragraphs/docs/<article>/pNNN.txt  one document per paragraph, all 48 articles
    corpora/squad_paragraphs/qa.jsonl  all 10,570 dev questions, relevant = their paragraph
    tests/data/squad_ref/           500 reference predictions + gold answers (scorer test)

``--check-scorer`` also scores the official reference predictions on the full dev set with
rag.evaluation.metrics's SQuAD EM/F1 (expected: BERT ensemble 86.2 / 92.2, logistic regression
40.1 / 51.0) and writes tests/data/squad_ref/expected.json from the subset.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# 16 of the 48 dev articles (~300k characters, ~450 chunks at 200 tokens): small enough to
# embed in a few seconds in CI, large enough that hit@k is not trivially 1.
SQUAD_ARTICLES = [
    "Southern_California",
    "Sky_(United_Kingdom)",
    "Victoria_(Australia)",
    "1973_oil_crisis",
    "Amazon_rainforest",
    "Fresno,_California",
    "Packet_switching",
    "Black_Death",
    "Geology",
    "Pharmacy",
    "Civil_disobedience",
    "Construction",
    "Private_school",
    "Jacksonville,_Florida",
    "Intergovernmental_Panel_on_Climate_Change",
    "Prime_number",
]
# Articles whose questions serve as "not in the corpus" questions: topics with no overlap
# with SQUAD_ARTICLES (Teacher, Immune_system, Computational_complexity_theory, ... were
# left out because the corpus partly answers their questions).
UNANSWERABLE_ARTICLES = [
    "Super_Bowl_50",
    "Normans",
    "Ctenophora",
    "Doctor_Who",
    "Force",
]
# 5 x 52 = 260 questions. (Until the reader's second training these were 20 questions from
# each of 13 articles; 8 of those articles now train the reader, which needs every article
# no evaluation asks about: scripts/train_reader.py.)
UNANSWERABLE_PER_ARTICLE = 52
# Sample corpus: one article per text format, so users can ask real questions out of the box.
SAMPLE_ARTICLES = {"Oxygen": "md", "Steam_engine": "txt", "Apollo_program": "html"}
SAMPLE_PDFS = ["pdflatex-4-pages.pdf", "pdflatex-outline.pdf", "multicolumn.pdf",
               "google-doc-document.pdf"]
SAMPLE_ARTICLE_QUESTIONS = 5  # per sample article, first questions of evenly spread paragraphs
REF_SUBSET = 500
SEED = 20161  # fixed: the committed files must not change between runs

# Page-level questions written by reading the PDFs page by page (pypdf). Sources are
# relative to corpora/sample. Several list every page that honestly answers them.
MC, GD, OUTLINE, FOURPAGES = (
    "multicolumn.pdf",
    "google-doc-document.pdf",
    "pdflatex-outline.pdf",
    "pdflatex-4-pages.pdf",
)


def _q(qid: str, question: str, answer: str, *relevant: tuple[str, int | None]) -> dict[str, Any]:
    rel = [{"source": s} if p is None else {"source": s, "page": p} for s, p in relevant]
    return {"id": qid, "question": question, "answers": [answer], "relevant": rel}


PDF_QUESTIONS: list[dict[str, Any]] = [
    _q("pdf-01", "What is the capital of Austria according to the table of EU countries?",
       "Vienna", (MC, 3)),
    _q("pdf-02", "What is the population of Belgium in millions?", "11.5", (MC, 3)),
    _q("pdf-03", "Which official languages does Finland have?", "Finnish, Swedish", (MC, 3)),
    _q("pdf-04", "What is the area of Denmark in square kilometres?", "42,951", (MC, 3)),
    _q("pdf-05", "What is the capital of the Czech Republic?", "Prague", (MC, 3)),
    _q("pdf-06", "What is the title of the two-column document?",
       "Two-Column Document with Lorem Ipsum", (MC, 1)),
    _q("pdf-07", "What date is given on the two-column Lorem Ipsum document?",
       "January 3, 2024", (MC, 1)),
    _q("pdf-08", "According to its abstract, what is the two-column sample document filled with?",
       "Lorem Ipsum text", (MC, 1)),
    _q("pdf-09", "What is the capital of Indonesia?", "Jakarta", (GD, 1)),
    _q("pdf-10", "What currency is used in Indonesia?", "Rupia", (GD, 1)),
    _q("pdf-11", "What was the 2020 population estimate for Germany?", "83,190,556", (GD, 1)),
    _q("pdf-12", "According to the example document, what is better than ugly?", "Beautiful",
       (GD, 1)),
    _q("pdf-13", "What is called one honking great idea?", "Namespaces", (GD, 1)),
    _q("pdf-14", "Which continent is Indonesia listed under?", "Asia", (GD, 1)),
    # Austria appears in both PDFs' tables.
    _q("pdf-15", "Which city is the capital of Austria?", "Vienna", (MC, 3), (GD, 1)),
    _q("pdf-16", "On which page does section 5 Bar start, according to the table of contents?",
       "3", (OUTLINE, 1)),
    _q("pdf-17", "Which document has a table of contents listing sections Foo, Bar and Baz?",
       "pdflatex-outline.pdf", (OUTLINE, 1)),
    # The blind text repeats on every page of both pdflatex files: any page of either is right.
    _q("pdf-18", "What nonsense phrase does the blind text compare itself with?",
       "Huardest gefburn", (FOURPAGES, None), (OUTLINE, None)),
]


def slug(title: str) -> str:
    """File-name-safe article name: 'Fresno,_California' -> 'Fresno_California'."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_-]", "", title)).strip("_")


def pretty(title: str) -> str:
    return title.replace("_", " ")


def gold(qa: dict[str, Any]) -> list[str]:
    """Distinct gold answer texts, in order (SQuAD repeats them across annotators)."""
    return list(dict.fromkeys(a["text"].strip() for a in qa["answers"]))


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def reset_dir(path: Path) -> None:
    # Rebuilt from scratch so a renamed/dropped article never lingers.
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def article_markdown(article: dict[str, Any]) -> str:
    paras = [p["context"].strip() for p in article["paragraphs"]]
    return f"# {pretty(article['title'])}\n\n" + "\n\n".join(paras) + "\n"


def article_text(article: dict[str, Any]) -> str:
    paras = [p["context"].strip() for p in article["paragraphs"]]
    title = pretty(article["title"])
    return f"{title}\n{'=' * len(title)}\n\n" + "\n\n".join(paras) + "\n"


def article_html(article: dict[str, Any]) -> str:
    title = html.escape(pretty(article["title"]))
    body = "\n".join(f"<p>{html.escape(p['context'].strip())}</p>" for p in article["paragraphs"])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
        f"<title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
    )


def build_squad(data: dict[str, dict[str, Any]], out: Path) -> int:
    docs = out / "docs"
    reset_dir(docs)
    rows: list[dict[str, Any]] = []
    for title in SQUAD_ARTICLES:
        article = data[title]
        source = f"{slug(title)}.md"
        write_text(docs / source, article_markdown(article))
        # One question per paragraph (its first): every paragraph is asked about once, so
        # the set covers the whole article rather than the few paragraphs with most questions.
        for para in article["paragraphs"]:
            qa = para["qas"][0]
            rows.append({"id": qa["id"], "question": qa["question"].strip(), "answers": gold(qa),
                         "relevant": [{"source": source}]})
    write_jsonl(out / "qa.jsonl", rows)

    rng = random.Random(SEED)
    unanswerable: list[dict[str, Any]] = []
    for title in UNANSWERABLE_ARTICLES:
        qas = [qa for p in data[title]["paragraphs"] for qa in p["qas"]]
        for qa in rng.sample(qas, UNANSWERABLE_PER_ARTICLE):
            unanswerable.append({"id": qa["id"], "question": qa["question"].strip(),
                                 "answers": gold(qa), "relevant": []})
    write_jsonl(out / "unanswerable.jsonl", unanswerable)
    return len(rows)


def build_paragraphs(articles: list[dict[str, Any]], out: Path) -> int:
    docs = out / "docs"
    reset_dir(docs)
    rows: list[dict[str, Any]] = []
    for article in articles:
        for i, para in enumerate(article["paragraphs"]):
            # Paragraph text only, as in the README's reference setup (no title line).
            source = f"{slug(article['title'])}/p{i:03d}.txt"
            write_text(docs / source, para["context"].strip() + "\n")
            for qa in para["qas"]:
                rows.append({"id": qa["id"], "question": qa["question"].strip(),
                             "answers": gold(qa), "relevant": [{"source": source}]})
    write_jsonl(out / "qa.jsonl", rows)
    return len(rows)


def build_sample(data: dict[str, dict[str, Any]], shared: Path, out: Path) -> int:
    reset_dir(out)
    pdf_dir = shared / "pdf_samples" / "py-pdf-sample-files"
    for name in SAMPLE_PDFS:
        shutil.copyfile(pdf_dir / name, out / name)
    writers = {"md": article_markdown, "txt": article_text, "html": article_html}
    rows = list(PDF_QUESTIONS)
    for title, ext in SAMPLE_ARTICLES.items():
        article = data[title]
        source = f"{slug(title)}.{ext}"
        write_text(out / source, writers[ext](article))
        paras = article["paragraphs"]
        step = max(1, len(paras) // SAMPLE_ARTICLE_QUESTIONS)
        for para in paras[::step][:SAMPLE_ARTICLE_QUESTIONS]:
            qa = para["qas"][0]
            rows.append({"id": qa["id"], "question": qa["question"].strip(), "answers": gold(qa),
                         "relevant": [{"source": source}]})
    write_jsonl(out.parent / "sample_qa.jsonl", rows)
    return len(rows)


def build_reference_subset(articles: list[dict[str, Any]], shared: Path, out: Path) -> None:
    ref = shared / "squad_v1.1" / "reference_predictions"
    bert = json.loads((ref / "bert_ensemble_google_ai.json").read_text(encoding="utf-8"))
    logreg_file = ref / "logistic_regression_baseline_stanford.json"
    logreg = json.loads(logreg_file.read_text(encoding="utf-8"))
    qas = [qa for a in articles for p in a["paragraphs"] for qa in p["qas"]]
    picked = sorted(random.Random(SEED).sample(range(len(qas)), REF_SUBSET))
    rows = [
        {"id": qas[i]["id"], "answers": [a["text"] for a in qas[i]["answers"]],
         "bert_ensemble": bert[qas[i]["id"]], "logistic_regression": logreg[qas[i]["id"]]}
        for i in picked
    ]
    write_jsonl(out / "subset.jsonl", rows)


def check_scorer(articles: list[dict[str, Any]], shared: Path, out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from rag.evaluation.metrics import squad_scores

    ref = shared / "squad_v1.1" / "reference_predictions"
    golds = {qa["id"]: [a["text"] for a in qa["answers"]]
             for a in articles for p in a["paragraphs"] for qa in p["qas"]}
    for name in ("bert_ensemble_google_ai", "logistic_regression_baseline_stanford"):
        preds = json.loads((ref / f"{name}.json").read_text(encoding="utf-8"))
        em, f1 = squad_scores([(preds.get(qid, ""), g) for qid, g in golds.items()])
        print(f"full dev ({len(golds)} questions) {name}: EM {100 * em:.2f}  F1 {100 * f1:.2f}")
    lines = (out / "subset.jsonl").read_text(encoding="utf-8").splitlines()
    subset = [json.loads(line) for line in lines]
    expected: dict[str, Any] = {"n": len(subset)}
    for system in ("bert_ensemble", "logistic_regression"):
        em, f1 = squad_scores([(r[system], r["answers"]) for r in subset])
        expected[system] = {"em": round(em, 6), "f1": round(f1, 6)}
        print(f"subset ({len(subset)}) {system}: EM {100 * em:.2f}  F1 {100 * f1:.2f}")
    write_text(out / "expected.json", json.dumps(expected, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "evaldata")
    parser.add_argument("--check-scorer", action="store_true",
                        help="score the reference predictions on full dev and write expected.json")
    args = parser.parse_args()
    dev = args.shared / "squad_v1.1" / "dev-v1.1.json"
    if not dev.is_file():
        parser.error(f"{dev} not found: pass --shared pointing at the evaldata folder")
    articles: list[dict[str, Any]] = json.loads(dev.read_text(encoding="utf-8"))["data"]
    by_title = {a["title"]: a for a in articles}
    overlap = set(SQUAD_ARTICLES) & (set(UNANSWERABLE_ARTICLES) | set(SAMPLE_ARTICLES))
    assert not overlap, f"articles used twice: {overlap}"

    corpora = ROOT / "corpora"
    n_squad = build_squad(by_title, corpora / "squad")
    n_par = build_paragraphs(articles, corpora / "squad_paragraphs")
    n_sample = build_sample(by_title, args.shared, corpora / "sample")
    ref_out = ROOT / "tests" / "data" / "squad_ref"
    build_reference_subset(articles, args.shared, ref_out)
    print(f"squad: {len(SQUAD_ARTICLES)} articles, {n_squad} questions; "
          f"squad_paragraphs: {sum(len(a['paragraphs']) for a in articles)} paragraphs, "
          f"{n_par} questions; sample: {n_sample} questions")
    if args.check_scorer:
        check_scorer(articles, args.shared, ref_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
