"""Which torch device a model runs on."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> str:
    """Map a device setting to a torch device string.

    ``"auto"`` picks CUDA, then Apple MPS, then CPU. Anything else is passed through after a
    check that torch can use it, so a typo or a missing GPU fails here with a clear message
    instead of deep inside a model's ``.to()``.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ValueError(
            f"device {name!r} is not a torch device; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU; use 'auto' or 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
        )
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ValueError(f"device {name!r} asked for, but MPS is not available; use 'auto' or 'cpu'")
    return str(dev)
