"""The models: built from settings, loaded once, used by the stages above.

- ``device``: ``resolve_device("auto")`` (CUDA, then MPS, then CPU).
- ``embed``: the sentence-transformers encoder (bf16 autocast where the CPU has bf16
  units) and ``build_encoder(settings)``; ``embed_onnx``: its int8 ONNX export (opt-in);
  ``lazy_encoder``: an encoder that loads on first use, so an unchanged ingest loads none.
- ``generate``: the local decoder (transformers, GGUF conversion cache), ``build_generator``.
- ``span_reader``: the extractive reader (LoRA + span head on MiniLM, weights in
  ``weights/``, rebuilt by ``scripts/train_reader.py``).
- ``chat_model``: any ``Generator`` as a LangChain chat model; ``remote``: an
  OpenAI-compatible server as the chat model (``RAG_DECODER=openai:URL``).

May import: ``rag.settings``, ``rag.types``, ``rag.text``. Nothing of the other stages.
"""
