"""Retrieval: a question to ranked passages.

- ``hybrid``: ``HybridRetriever`` (a LangChain ``BaseRetriever``): dense (FAISS or any
  LangChain vector store) and BM25 fused by reciprocal rank, one passage per PDF page,
  plus the pages that are the financial statement a question needs; ``build_retriever``.
- ``statements``: which statements a question needs and which one a page is.

May import: ``rag.settings``, ``rag.types``, ``rag.text``, ``rag.store``.
"""
