"""Answer routes (rag.answer.routes): tried before the reader; the first Answer wins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rag.answer.build import build_chain
from rag.answer.chain import Done, Retrieved, Token
from rag.answer.routes import RouteContext
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator, FakeReader, write_index
from rag.types import Answer

DOCS = {
    "eiffel.txt": "The Eiffel Tower was completed in 1889. It is 330 metres tall.",
    "notes/rome.md": "The Colosseum in Rome was finished in 80 AD under emperor Titus.",
}
WHEN = "When was the Eiffel Tower completed?"


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return write_index(tmp_path / "idx", DOCS, FakeEncoder())


class Height:
    """Answers questions about height from the passages, by code; nothing else."""

    def __init__(self) -> None:
        self.seen: list[RouteContext] = []

    def __call__(self, ctx: RouteContext) -> Answer | None:
        self.seen.append(ctx)
        if "tall" not in ctx.question:
            return None
        more = ctx.search("Eiffel Tower metres", 1)
        src = ctx.sources[0]
        assert more and "330 metres" in more[0].page_content
        return Answer(f"330 metres [{src.n}]", False, ctx.sources, [src.n], method="figure")


def chain(settings: Settings, index_dir: Path, route: Height) -> object:
    s = settings.model_copy(update={"abstain_threshold": 0.0, "k": 2, "reader": True})
    return build_chain(s, index_dir, encoder=FakeEncoder(), generator=FakeGenerator(script="1889 [1]"),
                       reader=FakeReader({WHEN: "1889"}), routes=[route])  # type: ignore[arg-type]


def test_a_route_that_answers_replaces_the_reader(settings: Settings, index_dir: Path) -> None:
    route = Height()
    events = list(chain(settings, index_dir, route).stream("How tall is the Eiffel Tower?"))  # type: ignore[attr-defined]
    assert isinstance(events[0], Retrieved) and not events[0].abstained
    assert [e.text for e in events if isinstance(e, Token)] == ["330 metres [1]"]
    done = events[-1]
    assert isinstance(done, Done)
    assert (done.answer.text, done.answer.method, done.answer.cited) == ("330 metres [1]", "figure", [1])
    assert "total_s" in done.answer.timings


def test_a_route_that_declines_leaves_the_reader_path(settings: Settings, index_dir: Path) -> None:
    route = Height()
    c = chain(settings, index_dir, route)
    answer = c.invoke(WHEN, [("Who built it?", "Eiffel")])  # type: ignore[attr-defined]
    assert answer.method == "generated" and answer.text == "1889 [1]"
    assert route.seen[-1].history == [("Who built it?", "Eiffel")]


def test_routes_run_on_the_async_path_too(settings: Settings, index_dir: Path) -> None:
    c = chain(settings, index_dir, Height())

    async def collect() -> list[object]:
        return [e async for e in c.astream("How tall is the Eiffel Tower?")]  # type: ignore[attr-defined]

    events = asyncio.run(collect())
    assert isinstance(events[-1], Done) and events[-1].answer.method == "figure"
