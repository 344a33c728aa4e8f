"""Decoder plumbing without loading a model: device choice, source resolution, GGUF cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from rag.models import generate
from rag.models.device import resolve_device
from rag.models.generate import (
    cache_usable,
    decoder_source,
    default_decoder_source,
    gguf_cache_dir,
    gguf_cache_key,
    prune_cache,
    write_cache,
)
from rag.settings import Settings


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


def test_explicit_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu0")


def test_default_source_is_the_packaged_gguf() -> None:
    src = default_decoder_source()
    assert src.gguf_file is not None and src.gguf_file.endswith(".gguf")
    assert Path(src.model, src.gguf_file).is_file()
    assert decoder_source(Settings()) == src


def test_source_from_gguf_path_folder_or_id(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"x")
    assert decoder_source(Settings(decoder_model=str(f))) == generate.DecoderSource(str(tmp_path), "m.gguf")
    s = Settings(decoder_model="HuggingFaceTB/SmolLM2-360M-Instruct")
    assert decoder_source(s) == generate.DecoderSource("HuggingFaceTB/SmolLM2-360M-Instruct", None)
    with pytest.raises(FileNotFoundError, match=r"missing\.gguf"):
        decoder_source(Settings(decoder_model=str(tmp_path / "missing.gguf")))
    with pytest.raises(ValueError, match="decoder_gguf_file"):
        decoder_source(Settings(decoder_gguf_file="x.gguf"))


def test_cache_key_follows_file_changes(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"abc")
    k1 = gguf_cache_key(f)
    assert gguf_cache_key(f) == k1
    os.utime(f, ns=(1, 1))
    assert gguf_cache_key(f) != k1
    assert gguf_cache_dir(tmp_path / "c", f).name.startswith("m-")


class _Saver:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.config = object()

    def save_pretrained(self, path: Path, **_: object) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "weights.bin").write_bytes(b"w" * 10)
        if self.fail:
            raise OSError("disk full")


def test_cache_written_aside_then_renamed(tmp_path: Path) -> None:
    entry = tmp_path / "cache" / "m-key"
    write_cache(entry, _Saver(), _Saver())
    assert cache_usable(entry)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["m-key"]


def test_crash_mid_write_leaves_no_entry(tmp_path: Path) -> None:
    entry = tmp_path / "cache" / "m-key"
    with pytest.raises(OSError, match="disk full"):
        write_cache(entry, _Saver(fail=True), _Saver())
    assert not entry.exists()
    assert list((tmp_path / "cache").iterdir()) == []  # the aside folder was cleaned up


def test_stale_converted_decoders_are_pruned(tmp_path: Path) -> None:
    """A new install or upgrade of the model package must not leave a 517 MB copy behind."""
    cache, here, other = tmp_path / "cache", tmp_path / "new", tmp_path / "other"
    here.mkdir()
    other.mkdir()
    gguf = here / "m.gguf"
    gguf.write_bytes(b"v2")
    (other / "m.gguf").write_bytes(b"v1")

    def entry(name: str, source: Path | None) -> Path:
        e = cache / name
        write_cache(e, _Saver(), _Saver(), source)
        return e

    keep = entry(gguf_cache_dir(cache, gguf).name, gguf)
    same_file_before = entry("m-" + "a" * 24, gguf)  # the file changed since (mtime)
    removed_install = entry("m-" + "b" * 24, tmp_path / "gone" / "m.gguf")
    unrecorded = entry("m-" + "c" * 24, None)  # written before entries recorded their file
    other_install = entry("m-" + "d" * 24, other / "m.gguf")
    other_model = entry("m-v2-" + "e" * 24, None)
    not_ours = cache / "onnx"
    not_ours.mkdir()

    removed = prune_cache(cache, gguf, keep=keep)
    assert sorted(removed) == sorted([same_file_before, removed_install, unrecorded])
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [keep.name, other_install.name, other_model.name, "onnx"])
    assert cache_usable(keep) and cache_usable(other_install)


def test_entry_without_marker_is_not_used(tmp_path: Path) -> None:
    entry = tmp_path / "m-key"
    entry.mkdir()
    (entry / "model.safetensors").write_bytes(b"half written")
    assert not cache_usable(entry)
