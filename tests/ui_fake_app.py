"""The docchat page with fake models that take their time, for browser tests of the page
itself (tests/test_ui_first_minute.py): `streamlit run tests/ui_fake_app.py`.

The real page (ui.app.main) with ui.resources' model builders replaced, as the AppTest
fixture does in-process: loading the decoder takes DOCCHAT_FAKE_DECODER_LOAD_S seconds,
embedding takes a while per batch (so indexing is seen), and the chain's drafts are
re-emitted one word at a time with a pause, as a real decoder writes them. The sample
collection is seeded from DOCCHAT_FAKE_SAMPLE.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from rag.testing import FakeEncoder, FakeGenerator  # noqa: E402
from rag.types import FloatArray  # noqa: E402
from ui import app, resources  # noqa: E402
from ui import collection as ui_collection  # noqa: E402

WORD_PAUSE_S = 0.35


class SlowEncoder(FakeEncoder):
    def embed(self, texts: Sequence[str]) -> FloatArray:
        time.sleep(0.25 * len(texts))  # indexing a few documents takes seconds, as it does
        return super().embed(texts)


class WordByWordChain:
    """The real chain's events, its drafts (the decoder's reply as written) split into
    words with a pause: the fake decoder writes at once, a real one word by word."""

    def __init__(self, chain: Any) -> None:
        self._chain = chain

    def stream(self, question: str, history: Sequence[tuple[str, str]] = (), **kw: Any) -> Iterator[Any]:
        from rag.answer.chain import Draft

        for event in self._chain.stream(question, history, **kw):
            if isinstance(event, Draft):
                for i, word in enumerate(event.text.split(" ")):
                    time.sleep(WORD_PAUSE_S)
                    yield Draft(word if i == 0 else " " + word)
            else:
                yield event


def _slow_generator(settings: Any) -> FakeGenerator:
    time.sleep(float(os.environ.get("DOCCHAT_FAKE_DECODER_LOAD_S", "8")))
    return FakeGenerator()


def _encoder(settings: Any) -> SlowEncoder:
    return SlowEncoder()


def _chain(settings: Any, index_dir: Path, encoder: Any, generator: Any) -> Any:
    # Built here, not by wrapping resources.make_chain: this script runs again on every
    # rerun, and would wrap its own wrapper.
    from rag.answer.build import build_chain

    return WordByWordChain(build_chain(settings, index_dir, encoder=encoder, generator=generator))


resources.make_encoder = _encoder
resources.make_generator = _slow_generator
resources.make_chain = _chain
ui_collection.SAMPLE_CORPUS = Path(os.environ["DOCCHAT_FAKE_SAMPLE"])

# As in ui/app.py: ingestion's "spawn" workers import this script again as "__mp_main__";
# they must not draw the page and start jobs of their own.
if __name__ == "__main__":
    app.main()
