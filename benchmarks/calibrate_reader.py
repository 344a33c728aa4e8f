"""Pick the reader's "no answer" margin on the tuning articles (never the evaluation ones).

Builds a temporary index of the reader's TUNE_ARTICLES (scripts/train_reader.py), asks
their questions (answerable) and questions from the training articles, which are not in
that index (unanswerable), retrieves with the default hybrid retriever, runs the reader on
the top passages and prints, for a sweep of margins, how many of each would be refused
(together with the cosine abstention threshold already in the settings), and the reader's
F1 on the answerable ones.

    HF_HUB_OFFLINE=1 PYTHONPATH=. python benchmarks/calibrate_reader.py [--questions 300]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from train_reader import TRAIN_ARTICLES, TUNE_ARTICLES  # noqa: E402

from ingest.pipeline import ingest_folder  # noqa: E402
from rag.chain_read import OVERLAP_WEIGHT, support  # noqa: E402
from rag.chain_steps import to_sources  # noqa: E402
from rag.embed import build_encoder  # noqa: E402
from rag.evaluate import best_over_golds, token_f1  # noqa: E402
from rag.read import build_reader  # noqa: E402
from rag.retrieve import build_retriever  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.store import open_index  # noqa: E402
from rag.verify import mask_injections  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad", type=Path, default=ROOT.parent / "shared/evaldata/squad_v1.1/dev-v1.1.json")
    ap.add_argument("--questions", type=int, default=300, help="of each kind")
    args = ap.parse_args()
    data = {a["title"]: a for a in json.loads(args.squad.read_text())["data"]}
    rng = random.Random(7)
    answerable = [(qa["question"], [a["text"] for a in qa["answers"]])
                  for t in TUNE_ARTICLES for p in data[t]["paragraphs"] for qa in p["qas"]]
    unanswerable = [(qa["question"], []) for t in TRAIN_ARTICLES for p in data[t]["paragraphs"]
                    for qa in p["qas"]]
    answerable = rng.sample(answerable, min(args.questions, len(answerable)))
    unanswerable = rng.sample(unanswerable, min(args.questions, len(unanswerable)))

    settings = Settings()
    encoder = build_encoder(settings)
    reader = build_reader("cpu")
    with tempfile.TemporaryDirectory(prefix="docchat-calib-") as tmp:
        corpus = Path(tmp, "docs")
        corpus.mkdir()
        for t in TUNE_ARTICLES:
            paras = "\n\n".join(p["context"].strip() for p in data[t]["paragraphs"])
            (corpus / f"{t}.md").write_text(f"# {t.replace('_', ' ')}\n\n{paras}\n")
        ingest_folder(corpus, Path(tmp, "idx"), settings, encoder=encoder)
        index = open_index(Path(tmp, "idx"), encoder)
        retriever = build_retriever(settings, index, encoder)
        # answerable, best cosine, margin, f1, support (rag.chain_read.support)
        rows: list[tuple[bool, float, float, float, float]] = []
        for kind, items in (("answerable", answerable), ("unanswerable", unanswerable)):
            for q, golds in items:
                docs = retriever.invoke(q)[: settings.k]
                cosines = [float(d.metadata["dense_score"]) for d in docs
                           if d.metadata.get("dense_score") is not None]
                best_cos = max(cosines, default=-1.0)
                masked = [mask_injections(s.text) for s in to_sources(docs)]
                spans = reader.read(q, masked)
                margin = spans[0].margin if spans else -99.0
                f1 = best_over_golds(token_f1, spans[0].text, golds) if spans and golds else 0.0
                rows.append((kind == "answerable", best_cos, margin, f1,
                             support(q, masked, spans[0]) if spans else -99.0))
        index.close()
    pos = [r for r in rows if r[0]]
    neg = [r for r in rows if not r[0]]
    print(f"{len(pos)} answerable ({', '.join(TUNE_ARTICLES)}), {len(neg)} unanswerable; "
          f"cosine threshold {settings.abstain_threshold}")
    print(f"reader F1 on answerable (top {settings.k} retrieved passages): "
          f"{100 * sum(r[3] for r in pos) / len(pos):.1f}")
    print("cosine  margin  answerable_refused  unanswerable_refused  F1 (refusals count 0)")
    for c in (0.0, 0.2, 0.25, 0.3, 0.35, 0.4):
        for t in (-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0):
            pr = sum(r[1] < c or r[2] < t for r in pos) / len(pos)
            nr = sum(r[1] < c or r[2] < t for r in neg) / len(neg)
            f1 = 100 * sum(r[3] for r in pos if not (r[1] < c or r[2] < t)) / len(pos)
            print(f"{c:6.2f}  {t:6.1f}  {pr:18.3f}  {nr:20.3f}  {f1:6.1f}")
    c, t = settings.abstain_threshold, settings.reader_min_margin
    print(f"\nat cosine {c} and margin {t}: refusing also when margin + {OVERLAP_WEIGHT:g} x "
          "overlap < min_support (rag.chain_read.supported_span)")
    print("min_support  answerable_refused  unanswerable_refused  F1  right_answers_lost")
    for sup in (0.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0):
        def refused(r: tuple[bool, float, float, float, float], sup: float = sup) -> bool:
            return r[1] < c or r[2] < t or r[4] < sup
        pr = sum(map(refused, pos)) / len(pos)
        nr = sum(map(refused, neg)) / len(neg)
        f1 = 100 * sum(r[3] for r in pos if not refused(r)) / len(pos)
        lost = sum(1 for r in pos if refused(r) and not (r[1] < c or r[2] < t) and r[3] == 1.0)
        print(f"{sup:11.1f}  {pr:18.3f}  {nr:20.3f}  {f1:4.1f}  {lost:18d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
