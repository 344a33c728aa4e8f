"""SQuAD dev questions with their gold paragraph, read from the committed corpus.

The benchmarks read corpora/squad_paragraphs (one file per paragraph, questions in
qa.jsonl, same order as the official dev file), so they run without ../shared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from common import ROOT

CORPUS = ROOT / "corpora" / "squad_paragraphs"


@dataclass(frozen=True)
class SquadItem:
    title: str
    context: str
    question: str
    answers: list[str]


def load_items(corpus: Path = CORPUS) -> list[SquadItem]:
    items: list[SquadItem] = []
    texts: dict[str, str] = {}
    for line in (corpus / "qa.jsonl").read_text().splitlines():
        qa = json.loads(line)
        source = qa["relevant"][0]["source"]
        if source not in texts:
            texts[source] = (corpus / "docs" / source).read_text(encoding="utf-8")
        items.append(SquadItem(source.split("/")[0], texts[source], qa["question"], qa["answers"]))
    return items
