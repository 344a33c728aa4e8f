"""docchat's library: documents in, grounded answers with their sources out.

The stages, each a subpackage that imports only the ones above it in this list:

- ``rag.settings``, ``rag.types``, ``rag.text``: the typed settings, the shared data types
  and protocols, the shared text helpers. They import no other part of ``rag``.
- ``rag.store``: the index on disk (FAISS + BM25 in SQLite generations) or in Milvus.
- ``rag.models``: the models: encoder, decoder, extractive span reader, the device, the
  decoder as a LangChain chat model, a remote OpenAI-compatible chat model.
- ``rag.retrieval``: the hybrid retriever (dense + BM25 fused), statement pages.
- ``rag.answer``: the chain: reading, lookups, verification, citations, prompts; and
  ``rag.answer.build``, the one place the real models are built from settings.
- ``rag.evaluation``: retrieval and answer metrics over QA files.
- ``rag.testing``: deterministic fakes for tests (imports whatever it fakes).

What a LangChain user needs is importable from here (``from rag import build_chain``);
the names load on first use, so ``import rag.settings`` stays cheap (no torch, no FAISS).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.answer.build import build_chain
    from rag.answer.chain import ABSTAIN_TEXT, Done, RagChain, Retrieved, Token
    from rag.models.chat_model import GeneratorChatModel
    from rag.retrieval.hybrid import HybridRetriever
    from rag.settings import Settings
    from rag.types import Answer, Source

_EXPORTS = {
    "build_chain": "rag.answer.build",
    "RagChain": "rag.answer.chain",
    "ABSTAIN_TEXT": "rag.answer.chain",
    "Retrieved": "rag.answer.chain",
    "Token": "rag.answer.chain",
    "Done": "rag.answer.chain",
    "GeneratorChatModel": "rag.models.chat_model",
    "HybridRetriever": "rag.retrieval.hybrid",
    "Settings": "rag.settings",
    "Answer": "rag.types",
    "Source": "rag.types",
}

__all__ = [
    "ABSTAIN_TEXT",
    "Answer",
    "Done",
    "GeneratorChatModel",
    "HybridRetriever",
    "RagChain",
    "Retrieved",
    "Settings",
    "Source",
    "Token",
    "build_chain",
]


def __getattr__(name: str) -> Any:
    # PEP 562: load the stage that defines a name only when it is asked for.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
