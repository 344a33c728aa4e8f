"""Collections on disk: names, listing, seeding the sample corpus, documents listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.collection import (
    CollectionNameError,
    collection,
    create_collection,
    delete_collection,
    document_files,
    index_revision,
    list_collections,
    validate_name,
)
from rag.settings import Settings
from ui.collection import DEFAULT_COLLECTION, seed_sample


@pytest.mark.parametrize("name", ["sample", "My_docs-2", "a"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", " ", "../x", "a/b", ".hidden", "-dash", "x" * 49, "a b"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(CollectionNameError, match="not allowed"):
        validate_name(name)


def test_create_and_list(settings: Settings) -> None:
    assert list_collections(settings) == []
    c = create_collection(settings, "notes")
    assert c.documents_dir == settings.indexes_dir / "notes" / "documents"
    assert c.documents_dir.is_dir()
    (settings.indexes_dir / "stray-folder").mkdir()  # neither documents nor an index
    (settings.indexes_dir / ".hidden").mkdir()
    assert list_collections(settings) == ["notes"]
    with pytest.raises(CollectionNameError, match="already exists"):
        create_collection(settings, "notes")


def test_seed_sample_copies_once(settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "corpus"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.md").write_text("beta")
    (src / ".git").mkdir()
    c = seed_sample(settings, src)
    assert c.name == DEFAULT_COLLECTION
    assert document_files(c) == ["a.txt", "sub/b.md"]
    # The source corpus is untouched and a second seed does not copy again.
    (c.documents_dir / "a.txt").unlink()
    seed_sample(settings, src)
    assert document_files(c) == ["sub/b.md"]
    assert (src / "a.txt").read_text() == "alpha"
    # No temporary folders left next to the documents.
    assert [p.name for p in c.index_dir.iterdir()] == ["documents"]


def test_seed_without_sample_corpus_gives_empty_collection(settings: Settings, tmp_path: Path) -> None:
    c = seed_sample(settings, tmp_path / "missing")
    assert c.documents_dir.is_dir() and document_files(c) == []


def test_index_revision_follows_current(settings: Settings) -> None:
    c = collection(settings, "x")
    assert index_revision(c) == ""
    c.index_dir.mkdir(parents=True)
    (c.index_dir / "CURRENT").write_text("gen-000003\n")
    assert index_revision(c) == "gen-000003"


def test_delete_removes_the_folder(settings: Settings) -> None:
    c = create_collection(settings, "gone")
    (c.documents_dir / "a.txt").write_text("x")
    delete_collection(settings, "gone")
    assert not c.index_dir.exists() and list_collections(settings) == []
    assert list(settings.indexes_dir.iterdir()) == []  # nothing left aside either
    with pytest.raises(FileNotFoundError, match="no collection named 'gone'"):
        delete_collection(settings, "gone")
