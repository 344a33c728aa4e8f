"""Answering: retrieved passages to a checked answer with its sources.

- ``chain``: ``RagChain`` (a LangChain Runnable): follow-up rewrite -> retrieve ->
  abstain? -> read -> decoder on the evidence -> check -> cite.
- ``build``: ``build_chain(settings, index_dir)``, the one place the real encoder,
  reader and decoder are built (unless injected).
- ``steps``: the chain's pure steps (follow-up search text, sources, weak evidence).
- ``reading``: the reader and the lookups over the passages; ``span_scores``: the
  ranking of the reader's best spans; ``lookup``: table cells, contents entries, titles.
- ``verify``: injection masking, evidence sentences, the support and agreement checks;
  ``citations``: ``[n]`` markers; ``prompt``: passages as quoted data within a budget.
- ``routes``: the seam for answer paths tried before the reader; ``documents``
  (summaries, lists from a whole document), ``judgments`` (yes/no on a measure),
  ``reports`` (figures from statement tables, measures computed by code, with
  ``figures``, ``measures`` and ``kinds``, the question's kind told by code).

May import: ``rag.settings``, ``rag.types``, ``rag.text``, ``rag.store``,
``rag.models``, ``rag.retrieval``.
"""
