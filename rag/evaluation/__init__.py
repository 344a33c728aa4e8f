"""Evaluation: retrieval and answer quality over a QA file.

- ``metrics``: the QA file format, hit@k, MRR@10, nDCG@10, SQuAD EM/F1, contains.
- ``run``: ``run_eval``: every question retrieved (and answered), then scored.
- ``numbers``: numeric gold answers scored as numbers (scale words, 1% tolerance).

May import every stage below it (``rag.answer`` for the citations of a reply).
"""
