"""The encoder on ONNX Runtime with int8 weights: the fast CPU path for embedding.

sentence-transformers' own ONNX backend needs ``optimum``, whose releases pin an older
``transformers`` than ours; so the export is done here with ``torch.onnx`` from the
installed weights (no download) and quantised with ONNX Runtime's dynamic int8
quantisation. The export is cached under ``model_cache_dir/onnx/<name>-<hash>/``, keyed by
a hash of the weights, the exporter versions and this module's format number, so a
changed model or library makes a new export instead of loading a stale one.

Pooling and normalisation are done in numpy, as the sentence-transformers model does
(mean over the attention mask, then unit length); only mean pooling models are accepted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.types import FloatArray

log = logging.getLogger(__name__)

#: Bumped whenever the exported graph or quantisation recipe changes.
EXPORT_FORMAT = 1


class OnnxEncoderError(RuntimeError):
    """The model cannot be run on ONNX Runtime (unsupported pooling, failed export)."""


def _weights_digest(model_dir: Path) -> str:
    h = hashlib.sha256()
    for name in sorted(p.name for p in model_dir.iterdir() if p.suffix in {".safetensors", ".bin", ".json"}):
        h.update(name.encode())
        h.update((model_dir / name).read_bytes())
    import onnxruntime
    import torch

    h.update(f"{EXPORT_FORMAT} {torch.__version__} {onnxruntime.__version__}".encode())
    return h.hexdigest()[:16]


def _check_pooling(model_dir: Path) -> None:
    pooling = model_dir / "1_Pooling" / "config.json"
    if pooling.exists():
        cfg = json.loads(pooling.read_text())
        if not cfg.get("pooling_mode_mean_tokens", False):
            raise OnnxEncoderError(
                f"{model_dir}: only mean-pooling models run on the int8 ONNX path; "
                "set RAG_ENCODER_PRECISION=fp32 (or auto) for this model"
            )


def export_int8(model_dir: Path, cache_dir: Path) -> Path:
    """The int8 ONNX file for the transformer in ``model_dir`` (exported once, cached)."""
    _check_pooling(model_dir)
    out_dir = cache_dir / "onnx" / f"{model_dir.name}-{_weights_digest(model_dir)}"
    target = out_dir / "model-int8.onnx"
    if target.exists():
        return target
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    log.info("exporting %s to int8 ONNX (once) in %s", model_dir, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bert = AutoModel.from_pretrained(str(model_dir)).eval()

    class _Hidden(torch.nn.Module):
        # subtle: passing the inputs positionally to a HF model maps them onto other
        # arguments (use_cache, ...) in recent transformers; name them.
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert  # a registered submodule: its weights export as weights

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    model = _Hidden().eval()
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        fp32 = Path(tmp) / "model.onnx"
        ids = torch.ones((2, 16), dtype=torch.long)
        with torch.no_grad():
            torch.onnx.export(
                model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(fp32),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in
                              ("input_ids", "attention_mask", "token_type_ids",
                               "last_hidden_state")},
                opset_version=17, dynamo=False,
            )
        tmp_target = Path(tmp) / target.name
        # Per-channel int8 weights keep the embeddings closest to fp32 (checked on SQuAD
        # nDCG@10 by benchmarks/bench_filings.py --check-int8); activations stay dynamic.
        quantize_dynamic(str(fp32), str(tmp_target), weight_type=QuantType.QInt8,
                         per_channel=True)
        os.replace(tmp_target, target)  # atomic: a killed export leaves no half file
    return target


class OnnxInt8Encoder:
    """Implements :class:`rag.types.Encoder`: the same model, int8 on ONNX Runtime (CPU)."""

    precision = "int8"
    device = "cpu"

    def __init__(self, model_dir: Path, cache_dir: Path, *, name: str, batch_size: int = 64,
                 threads: int = 0) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.name = name
        self.batch_size = batch_size
        self._tok: Any = AutoTokenizer.from_pretrained(str(model_dir))
        cfg = json.loads((model_dir / "config.json").read_text())
        self.dimension = int(cfg["hidden_size"])
        st_cfg = model_dir / "sentence_bert_config.json"
        max_len = json.loads(st_cfg.read_text()).get("max_seq_length") if st_cfg.exists() else None
        self._max_len = int(max_len or cfg.get("max_position_embeddings", 512))
        self.max_tokens = self._max_len - int(self._tok.num_special_tokens_to_add(pair=False))
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        path = export_int8(model_dir, cache_dir)
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}

    def embed(self, texts: Sequence[str]) -> FloatArray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Sorted by length so each batch pads to similar lengths (as sentence-transformers does).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            enc = self._tok([texts[i] for i in idx], padding=True, truncation=True,
                            max_length=self._max_len, return_tensors="np")
            feed = {k: v.astype(np.int64) for k, v in enc.items() if k in self._inputs}
            if "token_type_ids" in self._inputs and "token_type_ids" not in feed:
                feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
            hidden = self._session.run(None, feed)[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[idx] = pooled / np.clip(norms, 1e-12, None)
        return out

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        enc = self._tok(text, add_special_tokens=False, return_offsets_mapping=True,
                        truncation=False, verbose=False)
        return [(int(a), int(b)) for a, b in enc["offset_mapping"]]
