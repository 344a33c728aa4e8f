"""The configured encoder's identity without loading it, and an encoder that loads on use.

Kept apart from :mod:`rag.models.embed`, which imports torch: an ingest run with nothing to embed
(an unchanged folder) should cost its scan, not seconds of importing and loading a model.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from rag.settings import Settings, encoder_name
from rag.types import Encoder, FloatArray


class LazyEncoder:
    """The configured encoder, loaded on first use.

    Until then its dimension and token window are ``known`` (read off an index it built),
    so an ingest run with nothing to embed never loads the model: an unchanged re-run of a
    large folder costs its scan, not seconds of model loading.
    """

    def __init__(self, settings: Settings, known: tuple[int, int]) -> None:
        self._settings = settings
        self._known = known
        self._encoder: Encoder | None = None
        self._lock = threading.Lock()

    def _load(self) -> Encoder:
        with self._lock:
            if self._encoder is None:
                from rag.models.embed import build_encoder  # torch and the model: only now

                self._encoder = build_encoder(self._settings)
            return self._encoder

    @property
    def name(self) -> str:
        return encoder_name(self._settings) if self._encoder is None else self._encoder.name

    @property
    def dimension(self) -> int:
        return self._known[0] if self._encoder is None else self._encoder.dimension

    @property
    def max_tokens(self) -> int:
        return self._known[1] if self._encoder is None else self._encoder.max_tokens

    def embed(self, texts: Sequence[str]) -> FloatArray:
        return self._load().embed(texts)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self._load().token_offsets(text)
